"""What every command shares: the consoles, one-line errors, the list of skipped games."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from nba_forecast.data.errors import LoadResult

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
