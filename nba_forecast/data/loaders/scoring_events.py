"""Simple scoring-event files -> minute margins.

One row per scoring event: ``game_id, period, home, away`` (cumulative scores after the event)
and the time as ``elapsed_s`` (game seconds since tip-off), ``remaining_s`` (seconds left in
the period) or ``clock`` (``mm:ss`` left in the period). This is the shape of the shipped
``nba_first_half_scoring_events.csv.gz`` and of basketball-reference play-by-play. Optional
per-game columns: ``season, season_type, game_date, home_team, away_team``.

A game's events must cover every period up to its last one; a file that stops after the 2nd
period gives first-half games (m_0..m_24 only).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from nba_forecast.data.errors import DataError, LoadResult, OnError, collect
from nba_forecast.data.events import elapsed_seconds, margins_from_events
from nba_forecast.data.loaders.clock import parse_clock
from nba_forecast.data.loaders.metadata import attach_metadata
from nba_forecast.data.loaders.tables import (
    RowCheck,
    file_rows,
    first_row_errors,
    normalize_game_ids,
    read_table,
    require_columns,
)

logger = logging.getLogger(__name__)

TIME_COLUMNS = ("elapsed_s", "remaining_s", "clock")
OPTIONAL = ["season", "season_type", "game_date", "home_team", "away_team"]


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce")


def _time_column(frame: pd.DataFrame, source: str) -> str:
    """The first of ``TIME_COLUMNS`` the file has."""
    time_column = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    if time_column is None:
        raise DataError(
            "missing_columns",
            "no time column",
            source=source,
            expected=f"one of {', '.join(TIME_COLUMNS)}",
        )
    return time_column


def _row_checks(
    game_id: pd.Series,
    period: pd.Series,
    remaining: pd.Series,
    home: pd.Series,
    away: pd.Series,
    time_column: str,
) -> list[RowCheck]:
    """Checks on single rows: a game id and whole-number period, time and scores."""
    return [
        (game_id.isna() | (game_id == ""), "missing_game_id", "empty game_id", "a game id"),
        (
            period.isna() | (period != period.round()),
            "bad_period",
            "unparseable period",
            "an integer period, 1-4 or 5+ for overtime",
        ),
        (
            remaining.isna() | (remaining != remaining.round()),
            "unparseable_clock",
            f"unparseable {time_column}",
            "whole seconds" if time_column != "clock" else "mm:ss time remaining",
        ),
        (
            home.isna() | away.isna() | (home != home.round()) | (away != away.round()),
            "bad_score",
            "home/away score is not a whole number",
            "cumulative points, e.g. 12",
        ),
    ]


def _parse(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[DataError]]:
    """The file's rows as an events frame, plus row-level parse errors (one per game)."""
    time_column = _time_column(frame, source)
    rows = file_rows(frame)
    game_id = normalize_game_ids(frame["game_id"])
    period = _numeric(frame, "period")
    home, away = _numeric(frame, "home"), _numeric(frame, "away")
    if time_column == "clock":
        remaining = parse_clock(frame["clock"])
    else:
        remaining = _numeric(frame, time_column)
    checks = _row_checks(game_id, period, remaining, home, away, time_column)
    errors = first_row_errors(game_id, rows, checks, source)
    keep = ~game_id.isin({e.game_id for e in errors})
    period_int = period[keep].astype(np.int64).to_numpy()
    time = remaining[keep].astype(np.int64).to_numpy()
    elapsed = (
        time if time_column == "elapsed_s" else elapsed_seconds(np.clip(period_int, 1, None), time)
    )
    events = pd.DataFrame(
        {
            "game_id": game_id[keep].astype(str).to_numpy(),
            "period": period_int,
            "elapsed_s": elapsed,
            "home": home[keep].astype(np.int64).to_numpy(),
            "away": away[keep].astype(np.int64).to_numpy(),
            "row": rows[keep].to_numpy(),
            "kind": "",
        }
    )
    return events, errors


def load_scoring_events(
    path: Path,
    *,
    metadata: pd.DataFrame | None = None,
    on_error: OnError = "raise",
) -> LoadResult:
    """Load a scoring-event file into a game table (see module docstring for the format)."""
    source = str(path)
    frame = read_table(path)
    require_columns(frame, ["game_id", "period", "home", "away"], source)
    events, problems = _parse(frame, source)
    if on_error == "raise" and problems:
        raise problems[0]
    margins, event_errors = margins_from_events(events, check_steps=False, on_error="skip")
    for error in event_errors:
        collect(problems, error.with_source(source), on_error)
    present = [c for c in OPTIONAL if c in frame.columns]
    from_file = None
    if present:
        from_file = frame[present].assign(game_id=normalize_game_ids(frame["game_id"]))
        from_file = from_file.dropna(subset=["game_id"])
        if "season" in from_file:
            from_file["season"] = pd.to_numeric(from_file["season"], errors="coerce")
    games = attach_metadata(margins, from_file, metadata)
    logger.info("events: %s -> %d games, %d skipped", source, len(games), len(problems))
    return LoadResult(games, problems)
