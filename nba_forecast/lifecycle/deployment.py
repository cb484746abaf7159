"""Building a step's ``Context`` from the deployment's settings: what the CLI and the KFP
adapter do once per call (explicit arguments win over the settings)."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from nba_forecast.lifecycle.context import Context, GameSource
from nba_forecast.lifecycle.gitops import gitops_target
from nba_forecast.lifecycle.policy import Policy
from nba_forecast.settings import Settings
from nba_forecast.storage.object_store import open_store
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.registry import Registry


class NotFoundError(ValueError):
    """A configured database or registry that does not exist (a typo must not quietly make
    a new, empty one)."""


def require_database(url: str) -> None:
    """A SQLite file must exist (PostgreSQL says itself when a database does not)."""
    if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
        return
    path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    if not path.is_file():
        raise NotFoundError(
            f"no database at {path} (database_url {url}): check the URL, or create it with "
            f"`nba-forecast db upgrade --create --database-url {url}`"
        )


def require_registry(registry: Registry) -> None:
    if not registry.store.root_exists():
        raise NotFoundError(
            f"no registry at {registry.store.url}: check registry_url, or make one with "
            "`nba-forecast bootstrap --registry-url URL`"
        )


def open_registry(settings: Settings, url: str | None = None, *, create: bool = False) -> Registry:
    """The registry at ``url`` (else the settings'); one that does not exist is an error
    unless ``create`` or it is the embedded default under ``home``."""
    registry = Registry.open(
        url or settings.resolved_registry_url(), endpoint_url=settings.s3_endpoint_url
    )
    if not create and (url is not None or settings.registry_url is not None):
        require_registry(registry)
    return registry


def open_log(settings: Settings, url: str | None = None, *, create: bool = False) -> PredictionLog:
    """The prediction log (migrated to the latest schema); a configured SQLite file that
    does not exist is an error unless ``create`` or it is the embedded default."""
    target = url or settings.resolved_database_url()
    if not create and (url is not None or settings.database_url is not None):
        require_database(target)
    return PredictionLog.open(target)


def _load_games_file(location: str | Path, endpoint_url: str | None):  # type: ignore[no-untyped-def]
    """The shipped games plus a margins file given as a path or an ``s3://bucket/key`` URI
    (downloaded to a temporary file first: a task pod shares no filesystem)."""
    from nba_forecast.data.shipped import shipped_plus

    text = str(location)
    if urlparse(text).scheme != "s3":
        return shipped_plus(Path(text).expanduser())[0]
    parsed = urlparse(text)
    key = PurePosixPath(parsed.path.lstrip("/"))
    if not key.name:
        raise ValueError(f"bad games URI {text!r}: expected s3://bucket/path/file.parquet")
    store = open_store(f"s3://{parsed.netloc}/{key.parent}", endpoint_url=endpoint_url)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / key.name
        local.write_bytes(store.get(key.name))
        return shipped_plus(local)[0]


def shipped_games_plus(
    location: str | Path | None, *, endpoint_url: str | None = None
) -> GameSource:
    """The shipped games plus those of a margins file (bad games there skipped): a local
    path or an s3:// URI; None: the shipped games only."""

    def load():  # type: ignore[no-untyped-def]
        from nba_forecast.data.shipped import shipped_plus

        if location is None or str(location) == "":
            return shipped_plus(None)[0]
        return _load_games_file(location, endpoint_url)

    return GameSource(load)


def build_context(
    settings: Settings,
    *,
    database_url: str | None = None,
    registry_url: str | None = None,
    gitops_repo: str | Path | None = None,
    environment: str | None = None,
    games: GameSource | None = None,
    policy: Policy | None = None,
    pull_request: bool | None = None,
    create: bool = False,
) -> Context:
    """``create``: the step makes the registry and log when they do not exist (bootstrap)."""
    registry_target = registry_url or settings.resolved_registry_url()
    return Context(
        registry=open_registry(settings, registry_url, create=create),
        games=games
        or shipped_games_plus(settings.games_uri, endpoint_url=settings.s3_endpoint_url),
        gitops=gitops_target(
            gitops_repo or settings.resolved_gitops_repo(),
            environment or settings.environment,
            workdir=settings.home.expanduser(),
            pull_request=bool(pull_request),
        ),
        state=open_store(registry_target, endpoint_url=settings.s3_endpoint_url),
        open_log=lambda: open_log(settings, database_url, create=create),
        policy=policy or Policy(),
    )
