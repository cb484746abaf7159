"""``nba-forecast db``: the prediction log database."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from nba_forecast.cli.console import fail, out
from nba_forecast.settings import Settings
from nba_forecast.storage.prediction_log import PredictionLog

db_app = typer.Typer(help="The prediction log database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    url: Annotated[
        str | None,
        typer.Option(
            help="database URL; default NBA_FORECAST_DATABASE_URL or a SQLite file under "
            "~/.nba-forecast"
        ),
    ] = None,
) -> None:
    """Create or migrate the prediction log's tables to the latest revision (Alembic)."""
    target = url or Settings().resolved_database_url()
    try:
        counts = PredictionLog.open(target).counts()
    except (SQLAlchemyError, ValueError, RuntimeError) as error:  # RuntimeError: a refused step
        raise fail(f"cannot migrate {target}: {str(error).splitlines()[0]}") from None
    out.print(
        f"{target}: schema up to date ({counts['predictions']:,} predictions, "
        f"{counts['outcomes']:,} outcomes)",
        highlight=False,
    )
