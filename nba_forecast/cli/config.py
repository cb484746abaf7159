"""``nba-forecast config``: what the deployment options resolve to, and from where."""

from __future__ import annotations

import typer

from nba_forecast.cli.console import fail, out
from nba_forecast.cli.options import given_options, settings_or_fail
from nba_forecast.settings import ConfigError, ConfigFile, resolved_rows

config_app = typer.Typer(
    help="The configuration every command resolves (options, environment, config file).",
    no_args_is_help=True,
)


@config_app.command("show")
def config_show() -> None:
    """Every setting's value (secrets masked) and where it came from: an option, an
    environment variable, the config file's profile, or the default."""
    settings = settings_or_fail()
    try:
        config = ConfigFile.find()
    except ConfigError as error:
        raise fail(str(error)) from None
    if config.path is None:
        out.print("config file: none (options, environment and defaults only)", highlight=False)
    else:
        profile = config.profile or "none selected"
        out.print(f"config file: {config.path} (profile {profile})", highlight=False)
    rows = resolved_rows(settings, given_options)
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:  # one line each, whole: easy to read and to grep
        out.print(
            f"{name:<{width}} = {value}  [{source}]", markup=False, highlight=False, soft_wrap=True
        )
