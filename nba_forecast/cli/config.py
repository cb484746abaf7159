"""``nba-forecast config``: what the deployment options resolve to, and from where."""

from __future__ import annotations

import typer
from rich.table import Table

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
    table = Table()
    for column in ("setting", "value", "from"):
        table.add_column(column, overflow="fold")
    for name, value, source in resolved_rows(settings, given_options):
        table.add_row(name, value, source)
    out.print(table)
