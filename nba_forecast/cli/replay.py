"""``nba-forecast replay``: the main job, a season replayed frozen and continuous."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nba_forecast.cli.console import err, fail, out
from nba_forecast.cli.evaluate import _games_with

if TYPE_CHECKING:
    from nba_forecast.replay.driver import ReplayResult

DRIFT_SEASON = 2008  # the last season of the simulated drift scenario


def replay(
    season: Annotated[int, typer.Option(help="season to replay (start year)")] = 2014,
    data: Annotated[
        Path | None,
        typer.Option(help="more games in our margins format, added to the shipped ones"),
    ] = None,
    drift: Annotated[
        bool,
        typer.Option("--drift", help="simulated games whose scoring variance jumps mid-season"),
    ] = False,
    report_dir: Annotated[Path, typer.Option("--out", help="report directory")] = Path(
        "reports/replay"
    ),
) -> None:
    """Replay a season as production traffic, frozen vs continuous; print and write a report."""
    from nba_forecast.replay.report import EVENT_KINDS, write_replay_report

    games, season, title = _scenario(season, data, drift)
    state = report_dir / "state"  # registry, prediction log (SQLite), GitOps repo
    if state.exists():
        shutil.rmtree(state)
    results = _replay_both(games, season, state)
    out.print(_monthly_table(results, title))
    served = results["continuous"]
    out.print(", ".join(f"{kind}: {served.count(kind)}" for kind in EVENT_KINDS), highlight=False)
    path = write_replay_report(results["frozen"], served, report_dir, title)
    out.print(f"report: {path} (and {report_dir / 'replay.png'}); state: {state}", highlight=False)


def _scenario(season: int, data: Path | None, drift: bool) -> tuple[pd.DataFrame, int, str]:
    """The games, the season to replay and the report's title."""
    from nba_forecast.data.simulate import midseason_shift

    if drift:
        return midseason_shift(), DRIFT_SEASON, "Replay: simulated mid-season drift"
    games = _games_with(data)
    if season not in set(games["season"].astype(int)):
        raise fail(
            f"season {season} is not in the data (have {games['season'].min()}-"
            f"{games['season'].max()}); add newer games with --data"
        )
    return games, season, f"Replay of {season}-{(season + 1) % 100:02d}"


def _replay_both(games: pd.DataFrame, season: int, state: Path) -> dict[str, ReplayResult]:
    """Version 1 trained once on the earlier seasons, then the season frozen and continuous."""
    from nba_forecast.lifecycle.training import train_ensemble
    from nba_forecast.replay.driver import run_replay

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} days"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("training version 1", total=None)
        try:
            base = train_ensemble(games[games["season"].astype(int) < season])
        except ValueError as error:
            raise fail(str(error)) from None
        results: dict[str, ReplayResult] = {}
        for mode in ("frozen", "continuous"):
            bar.update(task, description=f"replaying {mode}", completed=0)
            results[mode] = run_replay(
                games,
                season,
                continuous=mode == "continuous",
                workdir=state / mode,
                base=base,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    return results


def _monthly_table(results: dict[str, ReplayResult], title: str) -> Table:
    from nba_forecast.replay.driver import monthly_table

    table = Table(title=f"{title}: frozen vs continuous")
    for column in ("mode", "month", "games", "MAE", "persistence", "coverage", "width"):
        table.add_column(column, justify="left" if column in ("mode", "month") else "right")
    for r in monthly_table(results["frozen"], results["continuous"]).itertuples(index=False):
        table.add_row(
            r.mode,
            r.month,
            str(r.games),
            f"{r.mae:.3f}",
            f"{r.persistence_mae:.3f}",
            f"{r.coverage:.1%}",
            f"{r.width:.2f}",
            end_section=r.month == "season",
        )
    return table


__all__ = ["replay"]
