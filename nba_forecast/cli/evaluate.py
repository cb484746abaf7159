"""``nba-forecast evaluate``: train every model on earlier seasons, score the test seasons."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.table import Table

from nba_forecast.cli.console import err, fail, out, report_problems
from nba_forecast.data.errors import DataError
from nba_forecast.data.shipped import shipped_plus

if TYPE_CHECKING:
    from nba_forecast.evaluation.backtest import BacktestResult


def _parse_seasons(text: str) -> list[int]:
    """'2013,2014' or '2013-14,2014-15' -> [2013, 2014]."""
    seasons = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        start = part.split("-")[0]
        if not (start.isdigit() and len(start) == 4):
            raise fail(f"bad season {part!r}: use the start year (2013) or 2013-14")
        seasons.append(int(start))
    if not seasons:
        raise fail("--test-seasons is empty")
    return seasons


def _games_with(data: Path | None) -> pd.DataFrame:
    """The shipped games plus those of ``data`` (our margins format); the file wins on a
    shared game id."""
    try:
        games, extra = shipped_plus(data)
    except DataError as error:
        raise fail(str(error)) from None
    if extra is not None:
        report_problems(extra)
        if extra.games.empty:
            raise fail(f"{data}: no valid games")
    return games


TABLE_COLUMNS = (
    "model",
    "MAE",
    "vs pers.",
    "RMSE",
    "coverage",
    "width",
    "Winkler",
    "DM p vs pers.",
)


def _run_backtest(games: pd.DataFrame, seasons: list[int], seed: int) -> BacktestResult:
    """The backtest behind a status line that shows its progress."""
    # torch loads only for the commands that need it: `--help` stays fast
    from nba_forecast.evaluation.backtest import run_backtest

    with err.status("evaluating") as status:
        try:
            return run_backtest(
                games, seasons, random_state=seed, progress=lambda message: status.update(message)
            )
        except ValueError as error:
            raise fail(str(error)) from None


def _results_table(result: BacktestResult, seasons: list[int]) -> Table:
    table = Table(
        title=f"test seasons {', '.join(map(str, seasons))}: halftime margin "
        f"forecasts at 6:00 Q2 ({int(result.table['n'].iloc[0]):,} games)"
    )
    for column in TABLE_COLUMNS:
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in result.table.itertuples(index=False):
        table.add_row(
            r.model,
            f"{r.mae:.3f}",
            f"{r.vs_persistence:+.2%}",
            f"{r.rmse:.3f}",
            f"{r.coverage:.1%}",
            f"{r.mean_width:.2f}",
            f"{r.winkler:.2f}",
            "" if pd.isna(r.dm_p_value) else f"{r.dm_p_value:.4f}",
        )
    return table


def _ensemble_coverage_line(result: BacktestResult) -> str:
    by_season = result.by_season[result.by_season["model"] == "ensemble"]
    return "ensemble coverage by season: " + ", ".join(
        f"{int(r.season)}: {r.coverage:.1%}" for r in by_season.itertuples(index=False)
    )


def _write_report(result: BacktestResult, report_dir: Path) -> Path:
    # matplotlib loads only for the commands that need it: `--help` stays fast
    from nba_forecast.evaluation.report import write_report

    try:
        return write_report(result, report_dir)
    except OSError as error:
        raise fail(f"cannot write the report to {report_dir}: {error}") from None


def evaluate(
    test_seasons: Annotated[
        str,
        typer.Option(
            help="test seasons (start years), e.g. 2013,2014; training uses the seasons before"
        ),
    ] = "2013,2014",
    data: Annotated[
        Path | None,
        typer.Option(
            help="more games in our margins format (CSV/Parquet), added to the shipped ones"
        ),
    ] = None,
    report_dir: Annotated[
        Path, typer.Option("--out", help="where report.md, metrics.json and evaluation.png go")
    ] = Path("reports/evaluate"),
    seed: Annotated[int, typer.Option(help="random seed (LSTM)")] = 0,
) -> None:
    """Train every model on earlier seasons and compare them on the test seasons."""
    seasons = _parse_seasons(test_seasons)
    games = _games_with(data)
    with err.status(f"training on the seasons before {seasons[0]}, testing on {test_seasons}"):
        result = _run_backtest(games, seasons, seed)
    out.print(_results_table(result, seasons))
    out.print(_ensemble_coverage_line(result), highlight=False)
    path = _write_report(result, report_dir)
    from nba_forecast.cli.options import command_seconds

    out.print(
        f"report: {path} (and {report_dir / 'evaluation.png'}); training and testing "
        f"{result.seconds:.0f} s, command {command_seconds():.0f} s",
        highlight=False,
    )
