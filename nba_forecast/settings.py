"""Typed settings from the environment (prefix ``NBA_FORECAST_``), read when the CLI runs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path.home() / ".nba-forecast"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NBA_FORECAST_", extra="ignore")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    # embedded defaults live under one directory; a cluster points these elsewhere
    home: Path = DEFAULT_HOME
    database_url: str | None = None  # default: SQLite file under home
    registry_url: str | None = None  # default: file:// directory under home
    s3_endpoint_url: str | None = None  # MinIO or another S3-compatible server
    # the A/B routing the rollout step writes (the model-routing ConfigMap, mounted)
    routing_file: Path | None = None
    # where lifecycle steps commit the routing: a GitOps repository (a local path, or a URL
    # that steps clone and push to) and its overlay
    gitops_repo: str | None = None  # default: a local repository under home
    environment: str = "production"
    # extra games (margins CSV/Parquet: a path, or s3://bucket/key) beside the shipped ones
    games_uri: str | None = None
    # the bearer token the server requires on every endpoint that writes (from a Secret)
    api_token: SecretStr | None = None

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.expanduser() / 'predictions.db'}"

    def resolved_registry_url(self) -> str:
        return self.registry_url or (self.home.expanduser() / "registry").as_uri()

    def resolved_gitops_repo(self) -> str:
        return self.gitops_repo or str((self.home / "gitops").expanduser())

    def spool_path(self) -> Path:
        return self.home.expanduser() / "spool" / "prediction-log.jsonl"
