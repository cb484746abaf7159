"""``nba-forecast replay``: the main job, seasons replayed frozen and continuous."""

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


FIRST_SEASON, LAST_SEASON = 1946, 2100  # the league's first season; a generous future


def parse_seasons(text: str) -> list[int]:
    """``2014``, ``2010-2014`` or ``2014-15`` (seasons by start year, inclusive)."""
    first, dash, last = text.strip().partition("-")
    try:
        start = int(first)
        end = int(last) if dash else start
    except ValueError:
        raise fail(f"--seasons {text!r}: expected a start year or a range like 2010-2014") from None
    if dash and len(last.strip()) == 2 and end < 100:  # 2014-15: the season's own name
        end = start + 1 if (start + 1) % 100 == end else end
        if end < 100:
            raise fail(
                f"--seasons {text!r}: {first}-{last} is not a season; try {start}-{start + 1}"
            )
    if not FIRST_SEASON <= start <= end <= LAST_SEASON:
        raise fail(
            f"--seasons {text!r}: expected start years from {FIRST_SEASON} to {LAST_SEASON}, "
            "the first not after the last (e.g. 2010-2014)"
        )
    return list(range(start, end + 1))


def replay(
    season: Annotated[int, typer.Option(help="season to replay (start year)")] = 2014,
    seasons_text: Annotated[
        str | None,
        typer.Option(
            "--seasons",
            help="consecutive seasons replayed as one production run, e.g. 2010-2014 "
            "(overrides --season)",
        ),
    ] = None,
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
    """Replay seasons as production traffic, frozen vs continuous; print and write a report."""
    from nba_forecast.replay.report import write_replay_report

    wanted = parse_seasons(seasons_text) if seasons_text is not None else [season]
    games, seasons, title = _scenario(wanted, data, drift)
    state = report_dir / "state"  # registry, prediction log (SQLite), GitOps repo
    if state.exists():
        shutil.rmtree(state)
    results = _replay_both(games, seasons, state)
    served = results["continuous"]
    out.print(_season_table(results, title))
    out.print(_steps_table(served))
    out.print(_events_table(served))
    path = write_replay_report(results["frozen"], served, report_dir, title)
    out.print(
        f"report: {path} (and {report_dir / 'replay.png'}, summary.json, events.json); "
        f"state: {state}",
        highlight=False,
    )


def _scenario(
    seasons: list[int], data: Path | None, drift: bool
) -> tuple[pd.DataFrame, list[int], str]:
    """The games, the seasons to replay and the report's title."""
    from nba_forecast.data.simulate import midseason_shift
    from nba_forecast.replay.driver import replay_seasons

    if drift:
        return midseason_shift(), [DRIFT_SEASON], "Replay: simulated mid-season drift"
    games = _games_with(data)
    try:
        seasons = replay_seasons(games, seasons)
    except ValueError as error:
        raise fail(str(error)) from None
    first, last = seasons[0], seasons[-1]
    span = f"{first}-{(first + 1) % 100:02d}"
    if last != first:
        span += f" to {last}-{(last + 1) % 100:02d}"
    return games, seasons, f"Replay of {span}"


def _replay_both(games: pd.DataFrame, seasons: list[int], state: Path) -> dict[str, ReplayResult]:
    """Version 1 trained once on the earlier seasons, then the seasons frozen and
    continuous."""
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
            base = train_ensemble(games[games["season"].astype(int) < seasons[0]])
        except ValueError as error:
            raise fail(str(error)) from None
        results: dict[str, ReplayResult] = {}
        for mode in ("frozen", "continuous"):
            bar.update(task, description=f"replaying {mode}", completed=0)
            results[mode] = run_replay(
                games,
                seasons,
                continuous=mode == "continuous",
                workdir=state / mode,
                base=base,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    return results


def _season_table(results: dict[str, ReplayResult], title: str) -> Table:
    from nba_forecast.replay.driver import period_table

    table = Table(title=f"{title}: frozen vs continuous")
    columns = ("mode", "season", "games", "MAE", "persistence", "coverage", "width", "Winkler")
    for column in columns:
        table.add_column(column, justify="left" if column in ("mode", "season") else "right")
    periods = period_table(results["frozen"], results["continuous"])
    for r in periods[periods["month"] == "all"].itertuples(index=False):
        table.add_row(
            r.mode,
            "whole run" if r.season == "all" else str(r.season),
            str(r.games),
            f"{r.mae:.3f}",
            f"{r.persistence_mae:.3f}",
            f"{r.coverage:.1%}",
            f"{r.width:.2f}",
            f"{r.winkler:.2f}",
            end_section=r.season == "all",
        )
    return table


def _steps_table(result: ReplayResult) -> Table:
    from nba_forecast.replay.report import STEP_COLUMNS, step_counts

    table = Table(title="lifecycle steps (continuous): scheduled and due, ran, waited")
    table.add_column("step")
    for column in STEP_COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    for row in step_counts(result):
        table.add_row(row["step"], *(str(row[c]) for c in STEP_COLUMNS))
    return table


def _events_table(result: ReplayResult) -> Table:
    table = Table(title="lifecycle events (continuous)")
    for column in ("date", "event", "version", "what and why"):
        table.add_column(column, overflow="fold")
    for e in result.events:
        table.add_row(e["date"], e["kind"], e["version"], e["detail"])
    if not result.events:
        table.add_row("", "none", "", "")
    return table


__all__ = ["replay"]
