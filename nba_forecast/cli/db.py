"""``nba-forecast db``: the prediction log database."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from nba_forecast.cli.console import fail, out
from nba_forecast.cli.options import settings_or_fail
from nba_forecast.lifecycle.deployment import mask_url, open_log

db_app = typer.Typer(help="The prediction log database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    create: Annotated[
        bool,
        typer.Option(
            "--create", help="make the database (a SQLite file and its folder) if it is not there"
        ),
    ] = False,
) -> None:
    """Migrate the prediction log's tables to the latest revision (Alembic); a database
    that does not exist is an error unless --create."""
    settings = settings_or_fail()
    target = mask_url(settings.resolved_database_url())  # never a password on the screen
    try:
        counts = open_log(settings, create=create, initialize=True).counts()
    except (SQLAlchemyError, ValueError, RuntimeError) as error:  # RuntimeError: a refused step
        first = str(error).splitlines()[0]
        hint = (
            " (--create makes SQLite files; a PostgreSQL database is made by its server: "
            "CREATE DATABASE)"
            if "does not exist" in first and not target.startswith("sqlite")
            else ""
        )
        raise fail(f"cannot migrate {target}: {first}{hint}") from None
    out.print(
        f"{target}: schema up to date ({counts['predictions']:,} predictions, "
        f"{counts['outcomes']:,} outcomes)",
        highlight=False,
    )
