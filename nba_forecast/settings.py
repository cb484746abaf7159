"""The deployment's settings, one way for every command, pod and server.

Each value comes from the first of: a command-line option (the CLI exports it to the
environment, so child processes see the same), an environment variable ``NBA_FORECAST_*``
(what a pod gets from its ConfigMap and Secrets), the selected profile of the config file,
the embedded default. The config file is TOML with named profiles::

    profile = "local"            # used when neither --profile nor NBA_FORECAST_PROFILE
    [profiles.local]
    home = "~/.nba-forecast"
    [profiles.staging]
    database_url = "postgresql://forecast@db.staging:5432/forecast"
    registry_url = "s3://nba-forecast-staging/registry"

It is ``--config`` / ``NBA_FORECAST_CONFIG``, else ``~/.nba-forecast/config.toml`` when it
exists. Unknown keys and profiles are errors: a typo must not fall back to a default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_HOME = Path.home() / ".nba-forecast"
DEFAULT_CONFIG_FILE = DEFAULT_HOME / "config.toml"
ENV_PREFIX = "NBA_FORECAST_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
PROFILE_ENV = ENV_PREFIX + "PROFILE"
# the name a user writes (option, config key) where the field's name differs
PUBLIC_NAMES = {"gitops_repo": "gitops_url"}
SECRET_FIELDS = {"api_token"}


class ConfigError(ValueError):
    """A config file, profile or value that cannot be used (the message says which)."""


def _env_names(field: str) -> tuple[str, ...]:
    """The environment variables behind a field, the preferred one first."""
    public = PUBLIC_NAMES.get(field, field)
    names = [ENV_PREFIX + public.upper()]
    if public != field:  # the older name stays: pods' ConfigMaps set it
        names.append(ENV_PREFIX + field.upper())
    return tuple(names)


@dataclass(frozen=True)
class ConfigFile:
    """The config file in use (or none) and the selected profile's values."""

    path: Path | None
    profile: str | None
    values: dict[str, Any]
    profiles: tuple[str, ...] = ()

    @classmethod
    def find(cls) -> ConfigFile:
        given = os.environ.get(CONFIG_ENV, "")
        path = Path(given).expanduser() if given else DEFAULT_CONFIG_FILE
        wanted = os.environ.get(PROFILE_ENV) or None
        if not path.exists() and not given:
            if wanted:
                raise ConfigError(
                    f"profile {wanted!r} asked for, but there is no config file "
                    f"({DEFAULT_CONFIG_FILE}; or give --config)"
                )
            return cls(None, None, {})
        return cls.read(path, wanted)

    @classmethod
    def read(cls, path: Path, wanted: str | None = None) -> ConfigFile:
        try:
            document = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read config file {path}: {error}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
        unknown = sorted(set(document) - {"profile", "profiles"})
        if unknown:
            raise ConfigError(
                f"config file {path}: unknown top-level key(s) {', '.join(unknown)}; "
                "settings go under [profiles.NAME], and `profile` names the default one"
            )
        profiles = document.get("profiles", {})
        if not isinstance(profiles, dict) or not all(
            isinstance(v, dict) for v in profiles.values()
        ):
            raise ConfigError(f"config file {path}: [profiles.NAME] must be tables of settings")
        default = document.get("profile")
        if default is not None and not isinstance(default, str):
            raise ConfigError(f"config file {path}: `profile` must be a profile's name")
        name = wanted or default
        if name is None:
            if profiles:
                raise ConfigError(
                    f"config file {path} has profiles {', '.join(profiles)} but none is "
                    f"selected: give --profile, set {PROFILE_ENV}, or `profile = ...` in the file"
                )
            return cls(path, None, {}, ())
        if name not in profiles:
            known = ", ".join(profiles) or "none"
            raise ConfigError(f"config file {path}: no profile {name!r} (profiles: {known})")
        values = dict(profiles[name])
        valid = {PUBLIC_NAMES.get(f, f): f for f in Settings.model_fields}
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ConfigError(
                f"config file {path} [profiles.{name}]: unknown setting(s) "
                f"{', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
            )
        return cls(path, name, {valid[k]: v for k, v in values.items()}, tuple(profiles))


class _ProfileSource(PydanticBaseSettingsSource):
    """The selected profile of the config file, below the environment."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.file = ConfigFile.find()

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.file.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.file.values)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True)

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
    gitops_repo: str | None = Field(
        default=None, validation_alias=AliasChoices(*_env_names("gitops_repo"))
    )
    environment: str = "production"
    # extra games (margins CSV/Parquet: a path, or s3://bucket/key) beside the shipped ones
    games_uri: str | None = None
    # the bearer token the server requires on every endpoint that writes (from a Secret)
    api_token: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _ProfileSource(settings_cls)

    @classmethod
    def load(cls) -> Settings:
        """The settings, or a ConfigError that names the bad value and where it came from."""
        try:
            return cls()
        except ValidationError as error:
            problem = error.errors()[0]
            field = str(problem["loc"][0]) if problem["loc"] else "?"
            source = describe_source(field)
            raise ConfigError(f"bad setting {field} ({source}): {problem['msg']}") from None

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.expanduser() / 'predictions.db'}"

    def resolved_registry_url(self) -> str:
        return self.registry_url or (self.home.expanduser() / "registry").as_uri()

    def resolved_gitops_repo(self) -> str:
        return self.gitops_repo or str((self.home / "gitops").expanduser())

    def spool_path(self) -> Path:
        return self.home.expanduser() / "spool" / "prediction-log.jsonl"

    def is_embedded(self, field: str) -> bool:
        """Whether ``field`` falls back to the embedded default under ``home`` (created on
        first use), rather than naming a database or registry that must already exist."""
        return getattr(self, field) is None


# -- what `config show` prints -----------------------------------------------------------
def describe_source(
    field: str, options: dict[str, str] | None = None, config: ConfigFile | None = None
) -> str:
    """Where ``field``'s value comes from: the option, variable, file or the default."""
    if options and field in options:
        return options[field]
    for name in _env_names(field):
        if os.environ.get(name, "") != "":
            return f"env {name}"
    config = config or ConfigFile.find()
    if field in config.values:
        return f"{config.path} [profiles.{config.profile}]"
    return "default"


def mask(field: str, value: object) -> str:
    """A value fit to print: secrets as ****, a URL's password as ****."""
    if value is None:
        return "-"
    if isinstance(value, SecretStr) or field in SECRET_FIELDS:
        return "****"
    text = str(value)
    parts = urlsplit(text)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    return text


def resolved_rows(settings: Settings, options: dict[str, str]) -> list[tuple[str, str, str]]:
    """(setting, value fit to print, where it came from) for every setting; the database,
    registry and GitOps repository as they will be used (embedded defaults filled in)."""
    resolved = {
        "database_url": settings.resolved_database_url(),
        "registry_url": settings.resolved_registry_url(),
        "gitops_repo": settings.resolved_gitops_repo(),
    }
    rows = []
    config = ConfigFile.find()  # read once, not once per setting
    for field in Settings.model_fields:
        value = resolved.get(field, getattr(settings, field))
        source = describe_source(field, options, config)
        if source == "default" and field in resolved:
            source = "default (under home)"
        rows.append((PUBLIC_NAMES.get(field, field), mask(field, value), source))
    return rows
