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
            f"no database at {path}: check database_url, or create it with "
            f"`nba-forecast db upgrade --create --database-url {url}`"
        )


# what a registry's root holds; a folder or bucket with other things in it is not one
REGISTRY_ENTRIES = ("versions", "aliases.json", "promotions", "rollouts", "runs")


def require_registry(registry: Registry) -> None:
    """The registry's folder or bucket exists and holds a registry (or nothing yet); an
    unreachable store is one line, not a traceback."""
    store = registry.store
    try:
        exists = store.root_exists()
        tops = store.top_names() if exists else set()
    except Exception as error:  # boto raises many types: credentials, connection, auth
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NotFoundError(f"cannot reach the registry at {store.url}: {first}") from None
    if not exists:
        raise NotFoundError(
            f"no registry at {store.url}: check registry_url, or make one with "
            "`nba-forecast bootstrap --registry-url URL`"
        )
    strange = sorted(t for t in tops if t not in REGISTRY_ENTRIES and not t.startswith("."))
    if strange and not tops & set(REGISTRY_ENTRIES):
        raise NotFoundError(
            f"{store.url} is not a model registry (it holds {', '.join(strange[:5])}): check "
            "registry_url"
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


def open_log(
    settings: Settings, url: str | None = None, *, create: bool = False, initialize: bool = False
) -> PredictionLog:
    """The prediction log, migrated to the latest schema. A named SQLite file that does not
    exist is an error unless ``create``; a database without the log's tables (another
    application's, an empty one) is an error unless ``create`` or ``initialize`` (what
    `db upgrade` and the server do); the embedded default is made on first use."""
    target = url or settings.resolved_database_url()
    if create or (url is None and settings.database_url is None):
        return PredictionLog.open(target)  # made (and its folder) if it is not there
    require_database(target)
    log = PredictionLog(target)
    if not initialize:
        require_log_tables(log)
    return log.migrate()


def require_log_tables(log: PredictionLog) -> None:
    from sqlalchemy import inspect

    if "predictions" not in inspect(log.engine).get_table_names():
        log.engine.dispose()
        raise NotFoundError(
            f"{mask_url(log.url)} holds no prediction log (no predictions table): check the "
            "URL, or add the tables with `nba-forecast db upgrade`"
        )


def require_gitops(location: str | Path, create: bool) -> str | Path:
    """A named local GitOps repository must exist (a typo must not start a new repository
    that no server follows) unless ``create`` (made then); a remote is checked when it is
    cloned."""
    from nba_forecast.lifecycle.gitops import ensure_repo, is_remote

    path = Path(str(location)).expanduser()
    if is_remote(str(location)):
        return location
    if create:
        ensure_repo(path)
    elif not path.is_dir():
        raise NotFoundError(
            f"no GitOps repository at {path}: check gitops_url (the repository the servers' "
            "routing comes from)"
        )
    return location


def mask_url(url: str) -> str:
    """A URL fit to print: its password as ****."""
    from nba_forecast.settings import mask

    return mask("database_url", url)


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
            require_gitops(gitops_repo or settings.resolved_gitops_repo(), create)
            if gitops_repo is not None or settings.gitops_repo is not None
            else settings.resolved_gitops_repo(),
            environment or settings.environment,
            workdir=settings.home.expanduser(),
            pull_request=bool(pull_request),
        ),
        state=open_store(registry_target, endpoint_url=settings.s3_endpoint_url),
        open_log=lambda: open_log(settings, database_url, create=create),
        policy=policy or Policy(),
    )
