"""``nba-forecast``: one subcommand per step. Exit codes: 0 ok, 1 data problems found,
2 bad input (unreadable file, bad option)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from nba_forecast.data.errors import DataError, LoadResult
from nba_forecast.data.loaders import FORMATS, load_games, load_margins
from nba_forecast.data.shipped import load_shipped_games
from nba_forecast.data.simulate import DriftSchedule, simulate_games
from nba_forecast.data.summary import season_summary
from nba_forecast.data.writer import write_games
from nba_forecast.evaluation.backtest import run_backtest
from nba_forecast.evaluation.report import write_report
from nba_forecast.lifecycle.registry import Registry, RegistryError
from nba_forecast.settings import Settings
from nba_forecast.storage.object_store import open_store
from nba_forecast.storage.prediction_log import PredictionLog

app = typer.Typer(
    help="NBA halftime margin forecasts, kept good in production.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(
    help="Game data: summarise, validate, import, simulate.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
registry_app = typer.Typer(
    help="Model registry: versions, aliases, promotion log.", no_args_is_help=True
)
app.add_typer(registry_app, name="registry")
db_app = typer.Typer(help="The prediction log database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# tables are ~95 columns wide: keep them whole when output goes to a file or CI log
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
MAX_LISTED_PROBLEMS = 20

FormatOption = Annotated[
    str, typer.Option("--format", "-f", help=f"input format: {', '.join(FORMATS)}")
]


@app.callback()
def _configure() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False)
    return typer.Exit(code)


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise _fail(f"unknown --format {value!r}; choose one of {', '.join(FORMATS)}")
    return value


def _load(path: Path, file_format: str) -> LoadResult:
    """Load a user's file, skipping bad games; file-level problems end the command."""
    _check_format(file_format)
    try:
        return load_games(path, file_format, metadata=load_shipped_games(), on_error="skip")  # type: ignore[arg-type]
    except DataError as error:
        raise _fail(str(error)) from None


def _report_problems(result: LoadResult) -> None:
    if not result.problems:
        return
    err.print(
        f"[yellow]{len(result.problems)} game(s) skipped[/yellow] ({len(result.games)} valid):",
        markup=True,
        highlight=False,
    )
    for problem in result.problems[:MAX_LISTED_PROBLEMS]:
        err.print(f"  {problem}", markup=False, highlight=False)
    if len(result.problems) > MAX_LISTED_PROBLEMS:
        err.print(
            f"  ... and {len(result.problems) - MAX_LISTED_PROBLEMS} more "
            "(`nba-forecast data validate FILE` lists all)",
            markup=False,
        )


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
        _report_problems(result)
        games, source = result.games, str(file)
    if games.empty:
        raise _fail(f"{source}: no valid games")
    summary = season_summary(games)
    table = Table(
        title=f"{source}: halftime margin m_24 from m_18 (6:00 left in Q2)",
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
) -> None:
    """Check a file and list every bad game with its file, row and what was expected.

    Exit code 0: all games valid; 1: some games are bad; 2: the file cannot be read.
    """
    result = _load(file, file_format)
    if not result.problems:
        out.print(f"{file}: {len(result.games):,} games, all valid", highlight=False)
        return
    table = Table(title=f"{file}: {len(result.problems)} bad game(s), {len(result.games):,} valid")
    for column in ("game", "row", "problem", "code"):
        table.add_column(column)
    for problem in result.problems:
        text = problem.problem + (f" (expected {problem.expected})" if problem.expected else "")
        table.add_row(problem.game_id or "", str(problem.row or ""), text, problem.code)
    out.print(table)
    raise typer.Exit(1)


@data_app.command("import")
def data_import(
    file: Annotated[Path, typer.Argument(help="file (or directory of stats.nba.com CSVs)")],
    output: Annotated[Path, typer.Option("--out", "-o", help="output .parquet, .csv or .csv.gz")],
    file_format: FormatOption = "auto",
    strict: Annotated[bool, typer.Option(help="fail (write nothing) if any game is bad")] = False,
) -> None:
    """Convert play-by-play or margin files into our game table (bad games listed, skipped)."""
    result = _load(file, file_format)
    _report_problems(result)
    if strict and result.problems:
        raise _fail(f"--strict: {len(result.problems)} bad game(s); nothing written", 1)
    if result.games.empty:
        raise _fail(f"{file}: no valid games; nothing written", 1)
    try:
        write_games(result.games, output)
    except (ValueError, OSError) as error:
        raise _fail(str(error)) from None
    out.print(f"wrote {len(result.games):,} games to {output}", highlight=False)


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
        raise _fail(str(error)) from None
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
            raise _fail(str(error)) from None
    try:
        write_games(frame, output)
    except (ValueError, OSError) as error:
        raise _fail(str(error)) from None
    summary = season_summary(frame).iloc[-1]
    out.print(
        f"wrote {len(frame):,} simulated games to {output}: SD(m_24 - m_18) "
        f"{summary['sd_change']:.3f}, persistence MAE {summary['persistence_mae']:.3f}",
        highlight=False,
    )


def _parse_seasons(text: str) -> list[int]:
    """'2013,2014' or '2013-14,2014-15' -> [2013, 2014]."""
    seasons = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        start = part.split("-")[0]
        if not (start.isdigit() and len(start) == 4):
            raise _fail(f"bad season {part!r}: use the start year (2013) or 2013-14")
        seasons.append(int(start))
    if not seasons:
        raise _fail("--test-seasons is empty")
    return seasons


def _games_with(data: Path | None) -> pd.DataFrame:
    """The shipped games plus those of ``data`` (our margins format); the file wins on a
    shared game id."""
    games = load_shipped_games()
    if data is None:
        return games
    try:
        extra = load_margins(data, on_error="skip")
    except DataError as error:
        raise _fail(str(error)) from None
    _report_problems(extra)
    if extra.games.empty:
        raise _fail(f"{data}: no valid games")
    kept = games[~games["game_id"].isin(extra.games["game_id"])]
    return pd.concat([kept, extra.games], ignore_index=True)


@app.command("evaluate")
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
    with err.status("evaluating") as status:
        try:
            result = run_backtest(
                games, seasons, random_state=seed, progress=lambda message: status.update(message)
            )
        except ValueError as error:
            raise _fail(str(error)) from None
    table = Table(
        title=f"test seasons {', '.join(map(str, seasons))}: halftime margin "
        f"forecasts at 6:00 Q2 ({int(result.table['n'].iloc[0]):,} games)"
    )
    for column in (
        "model",
        "MAE",
        "vs pers.",
        "RMSE",
        "coverage",
        "width",
        "Winkler",
        "DM p vs pers.",
    ):
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
    out.print(table)
    by_season = result.by_season[result.by_season["model"] == "ensemble"]
    out.print(
        "ensemble coverage by season: "
        + ", ".join(
            f"{int(r.season)}: {r.coverage:.1%}" for r in by_season.itertuples(index=False)
        ),
        highlight=False,
    )
    try:
        path = write_report(result, report_dir)
    except OSError as error:
        raise _fail(f"cannot write the report to {report_dir}: {error}") from None
    out.print(
        f"report: {path} (and {report_dir / 'evaluation.png'}); {result.seconds:.0f} s",
        highlight=False,
    )


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="registry URL (file:// or s3://); default NBA_FORECAST_REGISTRY_URL or "
        "~/.nba-forecast/registry",
    ),
]


def _registry(store: str | None) -> Registry:
    try:
        return Registry(open_store(store or Settings().resolved_registry_url()))
    except ValueError as error:
        raise _fail(str(error)) from None


def _registry_call(call):  # type: ignore[no-untyped-def]
    """Run a registry operation; its errors become one clear line and exit code 2."""
    try:
        return call()
    except (RegistryError, ValueError, OSError) as error:
        raise _fail(str(error)) from None


@registry_app.command("register")
def registry_register(
    model_dir: Annotated[Path, typer.Argument(help="a saved model directory")],
    parent: Annotated[
        str | None, typer.Option(help="the version this one was derived from")
    ] = None,
    metrics: Annotated[Path | None, typer.Option(help="JSON file of metrics to record")] = None,
    store: StoreOption = None,
) -> None:
    """Register a model directory as an immutable version (idempotent)."""
    registry = _registry(store)
    values = None
    if metrics is not None:
        try:
            values = json.loads(metrics.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise _fail(f"{metrics}: not JSON metrics ({error})") from None
    manifest = _registry_call(lambda: registry.register(model_dir, parent=parent, metrics=values))
    out.print(
        f"version {manifest['version']} ({len(manifest['files'])} files, "
        f"created {manifest['created_at']})",
        highlight=False,
    )


@registry_app.command("list")
def registry_list(store: StoreOption = None) -> None:
    """Every version, oldest first, with the aliases that point at it."""
    registry = _registry(store)
    versions = _registry_call(registry.versions)
    aliases = _registry_call(registry.aliases)
    table = Table(title=f"registry {registry.store.url}")
    for column in ("version", "created", "parent", "aliases", "files"):
        table.add_column(column)
    for m in versions:
        names = ", ".join(sorted(a for a, v in aliases.items() if v == m["version"]))
        table.add_row(
            m["version"], m["created_at"], m.get("parent") or "", names, str(len(m["files"]))
        )
    out.print(table)


@registry_app.command("show")
def registry_show(
    name: Annotated[str, typer.Argument(help="version id or alias")], store: StoreOption = None
) -> None:
    """A version's manifest (JSON)."""
    registry = _registry(store)
    manifest = _registry_call(lambda: registry.manifest(registry.resolve(name)))
    out.print_json(json.dumps(manifest))


@registry_app.command("promote")
def registry_promote(
    version: Annotated[str, typer.Argument(help="version id (or an alias, to copy it)")],
    alias: Annotated[str, typer.Option(help="alias to move")] = "production",
    reason: Annotated[str, typer.Option(help="why (kept in the promotion log)")] = "",
    report: Annotated[str | None, typer.Option(help="validation report reference")] = None,
    store: StoreOption = None,
) -> None:
    """Point an alias at a version (compare-and-swap) and log the move."""
    if not reason.strip():
        raise _fail("--reason is required: the promotion log keeps why every move happened")
    registry = _registry(store)
    entry = _registry_call(
        lambda: registry.promote(alias, registry.resolve(version), reason=reason, report=report)
    )
    out.print(
        f"#{entry.seq} {alias}: {entry.from_version or '-'} -> {entry.to_version}", highlight=False
    )


@registry_app.command("rollback")
def registry_rollback(
    alias: Annotated[str, typer.Option(help="alias to roll back")] = "production",
    to: Annotated[
        int | None,
        typer.Option(
            help="re-promote the version of this log entry (default: the version before the "
            "last move)"
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Roll an alias back by re-promoting an earlier version (logged like any move)."""
    registry = _registry(store)
    entry = _registry_call(lambda: registry.rollback(alias, to_seq=to))
    out.print(
        f"#{entry.seq} {alias}: {entry.from_version} -> {entry.to_version} ({entry.reason})",
        highlight=False,
    )


@registry_app.command("history")
def registry_history(
    alias: Annotated[str | None, typer.Option(help="only this alias")] = None,
    store: StoreOption = None,
) -> None:
    """The promotion log, oldest first."""
    registry = _registry(store)
    entries = _registry_call(lambda: registry.history(alias))
    table = Table(title="promotion log")
    for column in ("#", "when", "alias", "from", "to", "reason", "report"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            str(e.seq), e.at, e.alias, e.from_version or "-", e.to_version, e.reason, e.report or ""
        )
    out.print(table)


@registry_app.command("pull")
def registry_pull(
    name: Annotated[str, typer.Argument(help="version id or alias")],
    destination: Annotated[Path, typer.Option("--out", help="directory to write")],
    store: StoreOption = None,
) -> None:
    """Download a version, checking every file's hash."""
    registry = _registry(store)
    path = _registry_call(lambda: registry.pull(name, destination))
    out.print(f"pulled {registry.resolve(name)} to {path}", highlight=False)


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
    settings = Settings()
    target = url or settings.resolved_database_url()
    if target.startswith("sqlite:///"):
        Path(target.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        log = PredictionLog(target).migrate()
        counts = log.counts()
    except (SQLAlchemyError, ValueError) as error:
        raise _fail(f"cannot migrate {target}: {str(error).splitlines()[0]}") from None
    out.print(
        f"{target}: schema up to date ({counts['predictions']:,} predictions, "
        f"{counts['outcomes']:,} outcomes)",
        highlight=False,
    )


def main() -> None:
    app()


__all__ = ["app", "main"]
