"""``nba-forecast data``: summarise, validate, import and simulate game files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from nba_forecast.cli.console import err, fail, out, report_problems
from nba_forecast.data.errors import DataError, LoadResult
from nba_forecast.data.loaders import FORMATS, load_games
from nba_forecast.data.shipped import load_shipped_games
from nba_forecast.data.simulate import DriftSchedule, simulate_games
from nba_forecast.data.summary import season_summary
from nba_forecast.data.writer import write_games

MAX_TABLE_ROWS = 200  # a table of 200,000 rows takes rich minutes; --report has them all

data_app = typer.Typer(
    help="Game data: summarise, validate, import, simulate.", no_args_is_help=True
)

FormatOption = Annotated[
    str, typer.Option("--format", "-f", help=f"input format: {', '.join(FORMATS)}")
]


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise fail(f"unknown --format {value!r}; choose one of {', '.join(FORMATS)}")
    return value


def _load(path: Path, file_format: str) -> LoadResult:
    """Load a user's file, skipping bad games; file-level problems end the command."""
    _check_format(file_format)
    try:
        return load_games(path, file_format, metadata=load_shipped_games(), on_error="skip")  # type: ignore[arg-type]
    except DataError as error:
        raise fail(str(error)) from None


@data_app.command("stats")
def data_stats(
    file: Annotated[
        Path | None, typer.Argument(help="game file; default: the shipped games")
    ] = None,
    file_format: FormatOption = "auto",
) -> None:
    """Games by season, SD of m_24 - m_18 and the persistence forecast's MAE (m_24 = m_18)."""
    if file is None:
        games, source = load_shipped_games(), "shipped real NBA games"
    else:
        result = _load(file, file_format)
        report_problems(result)
        games, source = result.games, str(file)
    if games.empty:
        raise fail(f"{source}: no valid games")
    summary = season_summary(games)
    table = Table(
        title=Text(f"{source}: halftime margin m_24 from m_18 (6:00 left in Q2)"),
        caption="persistence = the naive forecast m_24 = m_18",
    )
    for column, justify in [
        ("season", "left"),
        ("type", "left"),
        ("games", "right"),
        ("mean m_24", "right"),
        ("sd m_24", "right"),
        ("sd m_24-m_18", "right"),
        ("persistence MAE", "right"),
        ("RMSE", "right"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in summary.itertuples(index=False):
        season = (
            row.season if row.season == "all" else f"{row.season}-{(int(row.season) + 1) % 100:02d}"
        )
        table.add_row(
            season,
            row.season_type,
            f"{row.games:,}",
            f"{row.mean_m24:.2f}",
            f"{row.sd_m24:.2f}",
            f"{row.sd_change:.3f}",
            f"{row.persistence_mae:.3f}",
            f"{row.persistence_rmse:.3f}",
            end_section=row.season == "all",
        )
    out.print(table)


@data_app.command("validate")
def data_validate(
    file: Annotated[Path, typer.Argument(help="file (or directory of stats.nba.com CSVs)")],
    file_format: FormatOption = "auto",
    report: Annotated[
        Path | None, typer.Option(help="also write every problem to this CSV file")
    ] = None,
) -> None:
    """Check a file and list every bad game with its file, row and what was expected.

    Exit code 0: all games valid; 1: some games are bad; 2: the file cannot be read.
    """
    result = _load(file, file_format)
    if report is not None:
        _write_report(result, report)
    if not result.problems:
        out.print(f"{file}: {len(result.games):,} games, all valid", highlight=False, markup=False)
        return
    table = Table(
        title=Text(f"{file}: {len(result.problems):,} bad game(s), {len(result.games):,} valid")
    )
    several_files = file.is_dir()
    for column in (["file"] if several_files else []) + ["game", "row", "problem", "code"]:
        table.add_column(column)
    for problem in result.problems[:MAX_TABLE_ROWS]:
        text = problem.problem + (f" (expected {problem.expected})" if problem.expected else "")
        cells = [problem.game_id or "", str(problem.row or ""), text, problem.code]
        if several_files:
            cells.insert(0, Path(problem.source).name if problem.source else "")
        table.add_row(*(Text(cell) for cell in cells))  # file text is never markup
    out.print(table)
    if len(result.problems) > MAX_TABLE_ROWS:
        counts = Counter(p.code for p in result.problems)
        out.print(
            f"... {len(result.problems) - MAX_TABLE_ROWS:,} more not shown; by code: "
            + ", ".join(f"{code} {n:,}" for code, n in counts.most_common())
            + ("" if report else " (--report FILE.csv lists all)"),
            highlight=False,
            markup=False,
        )
    raise typer.Exit(1)


def _write_report(result: LoadResult, report: Path) -> None:
    """Every problem as a CSV row: file, game, row, code, problem, expected."""
    rows = [
        {
            "file": p.source,
            "game_id": p.game_id,
            "row": p.row,
            "code": p.code,
            "problem": p.problem,
            "expected": p.expected,
        }
        for p in result.problems
    ]
    columns = ["file", "game_id", "row", "code", "problem", "expected"]
    try:
        pd.DataFrame(rows, columns=columns).to_csv(report, index=False)
    except OSError as error:
        raise fail(f"cannot write --report {report}: {error}") from None


@data_app.command("import")
def data_import(
    file: Annotated[Path, typer.Argument(help="file (or directory of stats.nba.com CSVs)")],
    output: Annotated[Path, typer.Option("--out", "-o", help="output .parquet, .csv or .csv.gz")],
    file_format: FormatOption = "auto",
    strict: Annotated[bool, typer.Option(help="fail (write nothing) if any game is bad")] = False,
) -> None:
    """Convert play-by-play or margin files into our game table (bad games listed, skipped)."""
    result = _load(file, file_format)
    report_problems(result)
    if strict and result.problems:
        raise fail(f"--strict: {len(result.problems)} bad game(s); nothing written", 1)
    if result.games.empty:
        raise fail(f"{file}: no valid games; nothing written", 1)
    try:
        write_games(result.games, output)
    except (ValueError, OSError) as error:
        raise fail(str(error)) from None
    out.print(f"wrote {len(result.games):,} games to {output}", highlight=False, markup=False)


@data_app.command("simulate")
def data_simulate(
    output: Annotated[Path, typer.Option("--out", "-o", help="output .parquet, .csv or .csv.gz")],
    games: Annotated[int, typer.Option(min=1, help="number of games")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    drift: Annotated[
        str,
        typer.Option(
            help="linear drift, e.g. 'pace=1.0:1.1,three_share=1.0:1.4,home_advantage=4.5:2'"
        ),
    ] = "",
    start_season: Annotated[int, typer.Option(help="season of the first game")] = 2000,
) -> None:
    """Simulate games (possession-level, calibrated on the real data), optionally drifting."""
    try:
        schedule = DriftSchedule.parse(drift)
    except ValueError as error:
        raise fail(str(error)) from None
    with Progress(
        TextColumn("simulating {task.fields[n]:,} games"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("simulate", total=1.0, n=games)
        try:
            frame = simulate_games(
                games,
                seed=seed,
                drift=schedule,
                start_season=start_season,
                progress=lambda share: progress.update(task, completed=share),
            )
        except ValueError as error:
            raise fail(str(error)) from None
    try:
        write_games(frame, output)
    except (ValueError, OSError) as error:
        raise fail(str(error)) from None
    summary = season_summary(frame).iloc[-1]
    out.print(
        f"wrote {len(frame):,} simulated games to {output}: SD(m_24 - m_18) "
        f"{summary['sd_change']:.3f}, persistence MAE {summary['persistence_mae']:.3f}",
        highlight=False,
        markup=False,
    )
