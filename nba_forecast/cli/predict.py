"""``nba-forecast predict``: forecast a file of games with a registered model version."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nba_forecast.cli.console import check_table_path, err, fail, out, write_table

if TYPE_CHECKING:
    import pandas as pd

    from nba_forecast.models.ensemble import HalftimeEnsemble


def _model(name: str) -> tuple[str, HalftimeEnsemble]:
    """The version ``name`` resolves to, pulled into the model cache and loaded."""
    from nba_forecast.cli.options import settings_or_fail
    from nba_forecast.lifecycle.deployment import open_registry
    from nba_forecast.models.ensemble import HalftimeEnsemble
    from nba_forecast.storage.registry import RegistryError

    settings = settings_or_fail()
    try:
        registry = open_registry(settings)
        version = registry.resolve(name)
        directory = registry.pull(version, settings.home.expanduser() / "model-cache" / version)
        return version, HalftimeEnsemble.load(directory)
    except (RegistryError, ValueError, OSError) as error:
        raise fail(f"model {name!r}: {error}") from None


def _log_forecasts(forecasts: pd.DataFrame, version: str, alpha: float) -> str:
    """Record the forecasts as served by ``version`` (arm A); what happened, in words."""
    from nba_forecast.cli.options import settings_or_fail
    from nba_forecast.lifecycle.deployment import open_log
    from nba_forecast.storage.prediction_log import PredictionRecord, same_forecast

    if "game_id" not in forecasts.columns or forecasts["game_id"].isna().any():
        raise fail("--log needs a game_id for every game (the log keeps one forecast per game)")
    now = dt.datetime.now(dt.UTC)
    requests = [
        [PredictionRecord(str(r.game_id), now, version, "A", r.forecast, r.lower, r.upper,
                          alpha=alpha, inputs=r.inputs)]
        for r in forecasts.itertuples(index=False)
    ]  # fmt: skip
    try:
        logged = open_log(settings_or_fail()).record_forecasts(requests)
    except Exception as error:  # an unreachable or unmigrated database: one line, exit 2
        raise fail(f"the forecasts could not be logged: {error}") from None
    earlier = sum(
        not (rec is req[0] or same_forecast(rec, req[0]))
        for rec, req in zip(logged, requests, strict=True)
    )
    return f"logged {len(requests) - earlier}; {earlier} already had a forecast (kept)"


def predict(
    source: Annotated[
        Path, typer.Option("--in", help="games: CSV (.csv, .csv.gz) or Parquet", show_default=False)
    ],
    destination: Annotated[
        Path, typer.Option("--out", help="forecasts: .parquet, .csv or .json", show_default=False)
    ],
    model: Annotated[
        str, typer.Option(help="registry alias (production, staging, ...) or version id")
    ] = "production",
    alpha: Annotated[
        float | None,
        typer.Option(help="interval level, e.g. 0.1 for 90% (default: the model's own)"),
    ] = None,
    log: Annotated[
        bool, typer.Option("--log", help="also record the forecasts in the prediction log")
    ] = False,
) -> None:
    """Forecast every game of a file: m_0..m_18, home_team, away_team, game_date (optional
    game_id, back_to_back). Pre-game features come from the shipped games before each date."""
    check_table_path(destination)
    if destination.resolve() == source.resolve():
        raise fail(f"--out {destination} is the --in file: the games would be overwritten")
    if alpha is not None and not 0 < alpha < 1:
        raise fail(f"--alpha {alpha}: must be between 0 and 1 (0.05 gives 95% intervals)")
    from nba_forecast.forecast_table import forecast_details, read_games_table

    try:
        games = read_games_table(source)
    except ValueError as error:
        raise fail(str(error)) from None
    version, ensemble = _model(model)
    with err.status(f"forecasting {len(games):,} games with {version}"):
        try:
            forecasts, X = forecast_details(ensemble, games, alpha=alpha)
        except ValueError as error:
            raise fail(f"{source}: {error}") from None
    level = ensemble.alpha if alpha is None else alpha
    note = ""
    if log:
        from nba_forecast.serving.engine import inputs_digest

        digests = [inputs_digest(X[i : i + 1]) for i in range(len(X))]
        note = "; " + _log_forecasts(forecasts.assign(inputs=digests), version, level)
    dated = forecasts.assign(game_date=forecasts["game_date"].dt.strftime("%Y-%m-%d"))
    write_table(dated, destination)
    out.print(
        f"{len(forecasts):,} games forecast by {version} ({model}), {1 - level:.0%} intervals; "
        f"wrote {destination}{note}",
        highlight=False,
        soft_wrap=True,  # one line, however long: scripts read it
    )
