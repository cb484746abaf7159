"""What every command shares: the consoles, one-line errors, the list of skipped games."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from nba_forecast.data.errors import LoadResult

if TYPE_CHECKING:
    import pandas as pd

# tables are ~95 columns wide: keep them whole when output goes to a file or CI log
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
MAX_LISTED_PROBLEMS = 20


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` and return the Exit to raise (2: bad input)."""
    # one line, however long: scripts and CI logs grep for it
    err.print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def report_problems(result: LoadResult) -> None:
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


TABLE_FORMATS = (".parquet", ".csv", ".json")


def check_table_path(path: Path) -> Path:
    """An ``--out`` for a table: its extension says the format; anything else is refused
    before any work is done (a .xlsx must not quietly hold CSV)."""
    if path.suffix.lower() not in TABLE_FORMATS:
        raise fail(
            f"--out {path}: expected a {', '.join(TABLE_FORMATS)} file (unknown format "
            f"{path.suffix or '(no extension)'!r})"
        )
    if path.is_dir():
        raise fail(f"--out {path} is a folder; give a file name")
    return path


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` in the format of ``path``'s extension (checked by check_table_path)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame.to_parquet(path, index=False)
        elif suffix == ".json":
            frame.to_json(path, orient="records", date_format="iso", indent=2)
        else:
            frame.to_csv(path, index=False)
    except OSError as error:
        raise fail(f"cannot write {path}: {error}") from None
