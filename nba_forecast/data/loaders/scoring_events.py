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

from nba_forecast.data.errors import DataError, LoadResult, OnError, collect, one_per_game
from nba_forecast.data.events import (
    MAX_PERIOD,
    MAX_POINTS,
    MAX_SCORELESS_S,
    OVERTIME_S,
    QUARTER_S,
    REGULATION_S,
    elapsed_seconds,
    margins_from_events,
)
from nba_forecast.data.loaders.clock import parse_clock
from nba_forecast.data.loaders.metadata import attach_metadata, game_dates, metadata_checks
from nba_forecast.data.loaders.tables import (
    LINE,
    RowCheck,
    as_numbers,
    damaged_row_errors,
    drop_reported,
    first_row_errors,
    game_frames,
    game_id_check,
    normalize_game_ids,
    without_cyclic_gc,
)

logger = logging.getLogger(__name__)

TIME_COLUMNS = ("elapsed_s", "remaining_s", "clock")
OPTIONAL = ["season", "season_type", "game_date", "home_team", "away_team"]
REQUIRED = ["game_id", "period", "home", "away"]
MAX_EVENTS_PER_GAME = 1_000  # a whole game has ~150 scoring events
MAX_ELAPSED_S = REGULATION_S + (MAX_PERIOD - 4) * OVERTIME_S


def _time_column(header: list[str], source: str) -> str:
    """The first of ``TIME_COLUMNS`` the file has."""
    time_column = next((c for c in TIME_COLUMNS if c in header), None)
    if time_column is None:
        raise DataError(
            "missing_columns",
            "no time column",
            source=source,
            row=1,
            expected=f"one of {', '.join(TIME_COLUMNS)}",
        )
    return time_column


def _whole(values: pd.Series) -> pd.Series:
    return values.notna() & (values == values.round())


def _row_checks(
    game_id: pd.Series,
    period: pd.Series,
    time: pd.Series,
    home: pd.Series,
    away: pd.Series,
    time_column: str,
) -> list[RowCheck]:
    """Checks on single rows: a well-formed game id, whole numbers in range for period, time
    and scores (bounded before they become integers)."""
    most_time = MAX_ELAPSED_S if time_column == "elapsed_s" else QUARTER_S
    return [
        (game_id.isna() | (game_id == ""), "missing_game_id", "empty game_id", "a game id"),
        game_id_check(game_id),
        (
            ~_whole(period),
            "bad_period",
            "unparseable period",
            "an integer period, 1-4 or 5+ for overtime",
        ),
        (
            (period < 1) | (period > MAX_PERIOD),
            "period_out_of_range",
            "period out of range",
            f"a period from 1 to {MAX_PERIOD}",
        ),
        (
            ~_whole(time),
            "unparseable_clock",
            f"unparseable {time_column}",
            "whole seconds" if time_column != "clock" else "mm:ss time remaining",
        ),
        (
            (time < 0) | (time > most_time),
            "clock_out_of_range",
            f"{time_column} out of range",
            f"from 0 to {most_time} seconds",
        ),
        (
            ~_whole(home) | ~_whole(away),
            "bad_score",
            "home/away score is not a whole number",
            "cumulative points, e.g. 12",
        ),
        (
            (home < 0) | (away < 0) | (home > MAX_POINTS) | (away > MAX_POINTS),
            "score_out_of_range",
            "home/away score out of range",
            f"from 0 to {MAX_POINTS} points",
        ),
    ]


def _parse(
    frame: pd.DataFrame, source: str, time_column: str
) -> tuple[pd.DataFrame, list[DataError]]:
    """The frame's rows as an events frame, plus row-level errors (one per game)."""
    lines = frame[LINE]
    game_id = normalize_game_ids(frame["game_id"])
    numeric = ["period", "home", "away"] + ([] if time_column == "clock" else [time_column])
    numbers = as_numbers(frame, numeric)
    period, home, away = numbers["period"], numbers["home"], numbers["away"]
    time = parse_clock(frame["clock"]) if time_column == "clock" else numbers[time_column]
    checks = _row_checks(game_id, period, time, home, away, time_column)
    errors = damaged_row_errors(frame, game_id, source)
    damaged = {e.game_id for e in errors}
    found = first_row_errors(game_id, lines, [*checks, *metadata_checks(frame)], source)
    errors += [e for e in found if e.game_id not in damaged]
    keep = ~game_id.isin({e.game_id for e in errors}) & game_id.notna()
    period_int = period[keep].astype(np.int64).to_numpy()
    seconds = time[keep].astype(np.int64).to_numpy()
    elapsed = (
        seconds
        if time_column == "elapsed_s"
        else elapsed_seconds(np.clip(period_int, 1, None), seconds)
    )
    events = pd.DataFrame(
        {
            "game_id": game_id[keep].astype(str).to_numpy(),
            "period": period_int,
            "elapsed_s": elapsed,
            "home": home[keep].astype(np.int64).to_numpy(),
            "away": away[keep].astype(np.int64).to_numpy(),
            "row": lines[keep].to_numpy(),
            "kind": "",
        }
    )
    return events, errors


def _file_columns(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The optional per-game columns the file has, by game id."""
    present = [c for c in OPTIONAL if c in frame.columns]
    if not present:
        return None
    from_file = frame[present].assign(game_id=normalize_game_ids(frame["game_id"]))
    from_file = from_file.dropna(subset=["game_id"])
    if "season" in from_file:
        from_file["season"] = pd.to_numeric(from_file["season"], errors="coerce")
    if "game_date" in from_file:
        from_file["game_date"] = game_dates(from_file["game_date"])
    return from_file


def _quiet_ends(events: pd.DataFrame, margins: pd.DataFrame) -> list[DataError]:
    """Games whose events stop more than 6:00 before the end of their last period: this
    format marks no period ends, so that is how a game cut short shows (no real period has
    ended with more than 4:01 without points)."""
    last = events[events["game_id"].isin(margins["game_id"])]
    last = last.sort_values(["game_id", "elapsed_s"]).groupby("game_id").tail(1)
    period = last["period"].to_numpy()
    end = np.where(period <= 4, period * QUARTER_S, REGULATION_S + (period - 4) * OVERTIME_S)
    last = last.assign(gap=end - last["elapsed_s"].to_numpy())
    return [
        DataError(
            "incomplete_game",
            f"the events stop {r.gap // 60}:{r.gap % 60:02d} before the end of period {r.period}",
            game_id=str(r.game_id),
            row=int(r.row),
            expected="every scoring event to the end of the last period (the file cut short?)",
        )
        for r in last[last["gap"] > MAX_SCORELESS_S].itertuples(index=False)
    ]


@without_cyclic_gc
def load_scoring_events(
    path: Path,
    *,
    metadata: pd.DataFrame | None = None,
    on_error: OnError = "raise",
) -> LoadResult:
    """Load a scoring-event file into a game table (see module docstring for the format),
    a chunk of whole games at a time."""
    source = str(path)
    header, grouping, frames = game_frames(path, REQUIRED, "game_id", MAX_EVENTS_PER_GAME)
    time_column = _time_column(header, source)
    problems: list[DataError] = []
    parts = []
    reported = 0
    for frame in frames:
        for problem in grouping.problems[reported:]:
            collect(problems, problem, on_error)
        reported = len(grouping.problems)
        events, row_errors = _parse(frame, source, time_column)
        for error in row_errors:
            collect(problems, error, on_error)
        margins, event_errors = margins_from_events(events, check_steps=False, on_error="skip")
        quiet = _quiet_ends(events, margins)
        for error in [*event_errors, *quiet]:
            collect(problems, error.with_source(source), on_error)
        margins = margins[~margins["game_id"].isin({e.game_id for e in quiet})]
        games, unknown = attach_metadata(margins, _file_columns(frame), metadata)
        first_row = events.groupby("game_id")["row"].min()
        for error in unknown:
            row = int(first_row[error.game_id]) if error.game_id in first_row else None
            collect(problems, error.with_source(source, row), on_error)
        parts.append(games)
    for problem in grouping.problems[reported:]:
        collect(problems, problem, on_error)
    games = drop_reported(parts, problems)
    logger.info("events: %s -> %d games, %d skipped", source, len(games), len(problems))
    return LoadResult(games, one_per_game(problems))
