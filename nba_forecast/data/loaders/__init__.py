"""Loaders: raw play-by-play and margin files -> validated game tables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from nba_forecast.data.errors import DataError, LoadResult, OnError
from nba_forecast.data.loaders.csv_rows import CsvRows
from nba_forecast.data.loaders.margins import load_margins
from nba_forecast.data.loaders.scoring_events import TIME_COLUMNS, load_scoring_events
from nba_forecast.data.loaders.stats_pbp import load_stats_pbp
from nba_forecast.data.loaders.tables import is_parquet

Format = Literal["auto", "stats-pbp", "events", "margins"]
FORMATS: tuple[str, ...] = ("auto", "stats-pbp", "events", "margins")

__all__ = [
    "FORMATS",
    "Format",
    "detect_format",
    "load_games",
    "load_margins",
    "load_scoring_events",
    "load_stats_pbp",
]


def detect_format(path: Path) -> str:
    """Guess a file's format from its header (a directory holds stats.nba.com files)."""
    if path.is_dir():
        return "stats-pbp"
    if is_parquet(path):
        return "margins"
    with CsvRows(path) as rows:
        header = set(rows.header)
    if "EVENTMSGTYPE" in header:
        return "stats-pbp"
    if "m_0" in header:
        return "margins"
    if "home" in header and header & set(TIME_COLUMNS):
        return "events"
    shown = [name[:40] for name in sorted(header)[:8]]
    raise DataError(
        "unknown_format",
        f"cannot tell the format from the header {shown}",
        source=str(path),
        expected="stats.nba.com play-by-play (EVENTMSGTYPE ...), scoring events "
        "(game_id, period, elapsed_s, home, away) or margins (game_id, season, m_0 ...)",
    )


def load_games(
    path: Path,
    format: Format = "auto",
    *,
    metadata: pd.DataFrame | None = None,
    on_error: OnError = "raise",
) -> LoadResult:
    """Load any supported file (or directory of stats.nba.com files) into a game table."""
    kind = detect_format(path) if format == "auto" else format
    if kind in ("stats-pbp", "events") and path.is_file() and is_parquet(path):
        raise DataError(
            "unknown_format",
            f"a Parquet file cannot be read as {kind}",
            source=str(path),
            expected="CSV (or .csv.gz) for stats-pbp and events; Parquet for margins",
        )
    if kind == "stats-pbp":
        return load_stats_pbp(path, metadata=metadata, on_error=on_error)
    if kind == "events":
        return load_scoring_events(path, metadata=metadata, on_error=on_error)
    if kind == "margins":
        return load_margins(path, on_error=on_error)
    raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
