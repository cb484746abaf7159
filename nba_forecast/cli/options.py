"""The options every command takes, the same way: where the deployment is (database,
registry, GitOps repository, config file and profile) and how much to say (``-v``).

Each command is wrapped once (``with_common_options``): its own parameters stay as they
are; the common ones are appended to its signature, so they show in its ``--help``. A given
option is exported to the environment (``NBA_FORECAST_*``) while the command runs, so
``Settings()`` everywhere below, and every child process (server workers, local pipeline
tasks), resolves the same values: option > environment > config profile > default."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, get_type_hints

import typer
from rich.markup import escape

from nba_forecast.settings import CONFIG_ENV, ENV_PREFIX, PROFILE_ENV, ConfigError, Settings

# option name -> (the environment variable it sets, help)
COMMON_OPTIONS: dict[str, tuple[str, str]] = {
    "config": (CONFIG_ENV, "config file (TOML with [profiles.NAME])"),
    "profile": (PROFILE_ENV, "the config file's profile: local, staging, production, ..."),
    "home": (ENV_PREFIX + "HOME", "folder of the embedded defaults (SQLite log, registry, git)"),
    "database_url": (
        ENV_PREFIX + "DATABASE_URL",
        "prediction log: sqlite:///FILE or postgresql://",
    ),
    "registry_url": (
        ENV_PREFIX + "REGISTRY_URL",
        "model registry: file:///DIR or s3://BUCKET/PREFIX",
    ),
    "gitops_url": (ENV_PREFIX + "GITOPS_URL", "GitOps repository: a path or a git URL"),
    "s3_endpoint_url": (ENV_PREFIX + "S3_ENDPOINT_URL", "S3-compatible server (MinIO)"),
}
SETTING_OF_OPTION = {"gitops_url": "gitops_repo"}
# where a deployment is: given to a command that uses none, they are a mistake, not ignored
DEPLOYMENT_OPTIONS = ("database_url", "registry_url", "gitops_url", "s3_endpoint_url")
VERBOSE_ENV = ENV_PREFIX + "VERBOSE"
PANEL = "Deployment (every command)"
STARTED = time.perf_counter()  # the command's clock starts when the CLI is imported
_commands_run = 0
# what a command gave on its command line: `config show` names the option as the source
given_options: dict[str, str] = {}


def _parameters() -> list[inspect.Parameter]:
    params = []
    for name, (variable, help_text) in COMMON_OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        option = typer.Option(
            flag,
            help=escape(f"{help_text} [env {variable}]"),
            rich_help_panel=PANEL,
            show_default=False,
        )
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[str | None, option],
            )
        )
    verbose = typer.Option(
        "--verbose",
        "-v",
        count=True,
        help="say more: -v progress and the runners' own output, -vv debug",
        rich_help_panel=PANEL,
    )
    params.append(
        inspect.Parameter(
            "verbose", inspect.Parameter.KEYWORD_ONLY, default=0, annotation=Annotated[int, verbose]
        )
    )
    return params


COMMON_PARAMETERS = _parameters()
COMMON_NAMES = {p.name for p in COMMON_PARAMETERS}


def command_seconds() -> float:
    """Seconds since the command started (imports and loading included: the true time)."""
    return time.perf_counter() - STARTED


def verbosity() -> int:
    """How much the user asked to hear (0 by default; ``-v`` 1, ``-vv`` 2)."""
    try:
        return int(os.environ.get(VERBOSE_ENV, "0"))
    except ValueError:
        return 0


@contextlib.contextmanager
def applied(values: dict[str, Any]) -> Iterator[None]:
    """Export the given options to the environment while the command runs (restored after:
    commands also run in-process, in tests)."""
    exported = {}
    for name, value in values.items():
        if name == "verbose":
            if value:
                exported[VERBOSE_ENV] = str(value)
        elif value not in (None, ""):
            exported[COMMON_OPTIONS[name][0]] = str(value)
    before = {name: os.environ.get(name) for name in exported}
    given_before = dict(given_options)
    os.environ.update(exported)
    for name, value in values.items():
        if name != "verbose" and value not in (None, ""):
            given_options[SETTING_OF_OPTION.get(name, name)] = "option --" + name.replace("_", "-")
    try:
        yield
    finally:
        given_options.clear()
        given_options.update(given_before)
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def configure_logging(settings_level: str) -> None:
    """Warnings by default; ``-v`` info, ``-vv`` debug (ours and the libraries')."""
    level = {0: settings_level, 1: "INFO"}.get(verbosity(), "DEBUG")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    # migrations and the KFP runner narrate every step at INFO: not what a user reads
    for chatty in ("alembic", "kfp", "urllib3", "botocore", "docker"):
        logging.getLogger(chatty).setLevel(logging.WARNING if verbosity() == 0 else logging.NOTSET)


def with_common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with the common options appended to its parameters."""
    from nba_forecast.cli.console import fail

    signature = inspect.signature(command, eval_str=True)
    clash = COMMON_NAMES & set(signature.parameters)
    if clash:
        raise TypeError(f"{command.__name__} declares common option(s) {sorted(clash)}")

    uses_deployment = getattr(command, "uses_deployment", True)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global STARTED, _commands_run
        if _commands_run:  # a later command in the same process (tests): its own clock
            STARTED = time.perf_counter()
        _commands_run += 1
        common = {name: kwargs.pop(name) for name in COMMON_NAMES if name in kwargs}
        if not uses_deployment:
            given = [n for n in DEPLOYMENT_OPTIONS if common.get(n) not in (None, "")]
            if given:
                flags = ", ".join("--" + n.replace("_", "-") for n in given)
                raise fail(
                    f"{flags}: this command does not use a deployment (it works on files and "
                    "the shipped games); the option would be ignored"
                )
        with applied(common):
            configure_logging(settings_or_fail().log_level)
            return command(*args, **kwargs)

    return _with_parameters(wrapper, command, [], COMMON_PARAMETERS)


def _with_parameters(
    wrapper: Callable[..., Any],
    original: Callable[..., Any],
    before: list[inspect.Parameter],
    after: list[inspect.Parameter],
) -> Callable[..., Any]:
    """``wrapper`` with the original's parameters between ``before`` and ``after``: typer
    reads the signature and the annotations, so both are set (and not the original's)."""
    signature = inspect.signature(original, eval_str=True)
    params = [*before, *signature.parameters.values(), *after]
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    hints = get_type_hints(original, include_extras=True)
    wrapper.__annotations__ = {**hints, **{p.name: p.annotation for p in [*before, *after]}}
    del wrapper.__wrapped__  # type: ignore[attr-defined]
    return wrapper


def with_root_options(callback: Callable[..., Any]) -> Callable[..., Any]:
    """The app's callback, also taking the common options before the subcommand
    (``nba-forecast --profile staging collect``): applied for the whole invocation."""

    @functools.wraps(callback)
    def wrapper(ctx: typer.Context, *args: Any, **kwargs: Any) -> Any:
        common = {name: kwargs.pop(name) for name in COMMON_NAMES if name in kwargs}
        ctx.with_resource(applied(common))
        return callback(*args, **kwargs)

    context = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    return _with_parameters(wrapper, callback, [context], COMMON_PARAMETERS)


def without_deployment(*commands: Callable[..., Any]) -> None:
    """Mark commands that use no database, registry or GitOps repository."""
    for command in commands:
        command.uses_deployment = False  # type: ignore[attr-defined]


def add_common_options(app: typer.Typer) -> None:
    """Wrap every command of ``app`` and of its sub-apps."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = with_common_options(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            add_common_options(group.typer_instance)


def settings_or_fail() -> Settings:
    """The resolved settings; a bad config file or value is a one-line error."""
    from nba_forecast.cli.console import fail

    try:
        return Settings.load()
    except ConfigError as error:
        raise fail(str(error)) from None
