"""Our own minute-margin files (CSV or Parquet, the columns of ``schema``) -> game table.

Required: ``game_id, season, m_0 .. m_24``. Optional: ``season_type`` (derived from a
stats.nba.com id, else ``regular``), ``game_date, home_team, away_team, m_25 .. m_48,
final_home, final_away, n_periods``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from nba_forecast.data.errors import DataError, LoadResult, OnError, collect
from nba_forecast.data.loaders.tables import (
    RowCheck,
    file_rows,
    first_row_errors,
    normalize_game_ids,
    read_table,
    require_columns,
)
from nba_forecast.data.schema import (
    COLUMNS,
    FIRST_HALF_COLUMNS,
    MARGIN_COLUMNS,
    SEASON_TYPES,
    conform,
)

logger = logging.getLogger(__name__)

REQUIRED = ["game_id", "season", *FIRST_HALF_COLUMNS]
MAX_MINUTE_SWING = 20  # the real data never moves more than 11 points in one minute


def _as_numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[columns].apply(pd.to_numeric, errors="coerce").astype(np.float64)


def _first_bad_column(bad: np.ndarray, columns: list[str]) -> pd.Series:
    return pd.Series([columns[i] for i in bad.argmax(axis=1)])


def _located(bad: np.ndarray, label: str, columns: list[str]) -> pd.Series:
    """Per-row message naming the first bad margin column, e.g. 'empty margin in m_7'."""
    return label + " in " + _first_bad_column(bad, columns)


def _first_half(columns: list[str]) -> np.ndarray:
    """Which of ``columns`` (margin columns in minute order) belong to the first half."""
    return np.arange(len(columns)) < len(FIRST_HALF_COLUMNS)


def _id_checks(frame: pd.DataFrame) -> list[RowCheck]:
    """Checks on a game's identity: game id present and unique, a plausible season."""
    season = pd.to_numeric(frame["season"], errors="coerce")
    game_id = frame["game_id"]
    duplicate = game_id.duplicated(keep="first") & game_id.notna()
    return [
        (game_id.isna() | (game_id == ""), "missing_game_id", "empty game_id", "a game id"),
        (duplicate, "duplicate_game_id", "game id appears twice in the file", "each game id once"),
        (
            season.isna() | (season != season.round()) | (season < 1946) | (season > 2100),
            "bad_season",
            "season " + frame["season"].astype("string").fillna("<empty>"),
            "the year the season starts in, e.g. 2013",
        ),
    ]


def _cell_checks(v: np.ndarray, text_missing: np.ndarray, columns: list[str]) -> list[RowCheck]:
    """Checks on single margin cells: first half present, whole finite numbers, 0 at tip-off."""
    not_number = np.isnan(v) & ~text_missing
    infinite = np.isinf(v)
    not_integer = np.isfinite(v) & (v != np.round(v))
    missing_first_half = text_missing & _first_half(columns)
    return [
        (
            pd.Series(missing_first_half.any(axis=1)),
            "missing_margin",
            _located(missing_first_half, "empty margin", columns),
            "m_0 .. m_24 all present",
        ),
        (
            pd.Series(not_number.any(axis=1)),
            "bad_margin",
            _located(not_number, "not a number", columns),
            "integer margins",
        ),
        (
            pd.Series(infinite.any(axis=1)),
            "nonfinite_margin",
            _located(infinite, "infinite margin", columns),
            "finite integer margins",
        ),
        (
            pd.Series(not_integer.any(axis=1)),
            "bad_margin",
            _located(not_integer, "fractional margin", columns),
            "integer margins (points)",
        ),
        (
            pd.Series(v[:, 0] != 0) & ~pd.Series(np.isnan(v[:, 0])),
            "nonzero_tipoff",
            "m_0 is " + pd.Series(v[:, 0]).astype(str),
            "m_0 = 0 at tip-off",
        ),
    ]


def _sequence_checks(v: np.ndarray, text_missing: np.ndarray, columns: list[str]) -> list[RowCheck]:
    """Checks across a game's minutes: a whole second half, no impossible minute swing."""
    # a second half is all present or all absent
    second = text_missing[:, ~_first_half(columns)]
    gap = second.any(axis=1) & ~second.all(axis=1)
    finite = np.where(np.isfinite(v), v, 0.0)
    swing = np.abs(np.diff(finite, axis=1)) > MAX_MINUTE_SWING
    swing &= np.isfinite(v[:, 1:]) & np.isfinite(v[:, :-1])
    return [
        (
            pd.Series(gap),
            "incomplete_second_half",
            "some of m_25 .. m_48 are empty",
            "all of m_25 .. m_48, or none (first-half-only game)",
        ),
        (
            pd.Series(swing.any(axis=1)),
            "impossible_margin_change",
            _located(
                np.pad(swing, ((0, 0), (1, 0))),
                f"margin moves more than {MAX_MINUTE_SWING} points in one minute at",
                columns,
            ),
            f"at most {MAX_MINUTE_SWING} points of margin change per minute",
        ),
    ]


def _margin_checks(frame: pd.DataFrame) -> list[RowCheck]:
    """Checks on the ``m_*`` columns the file has."""
    present = [c for c in MARGIN_COLUMNS if c in frame.columns]
    text_missing = frame[present].isna().to_numpy()
    v = _as_numbers(frame, present).to_numpy()
    return [*_cell_checks(v, text_missing, present), *_sequence_checks(v, text_missing, present)]


def _optional_column_checks(frame: pd.DataFrame) -> list[RowCheck]:
    """Checks on ``game_date`` and ``season_type``, where the file has them."""
    checks: list[RowCheck] = []
    if "game_date" in frame.columns:
        parsed = pd.to_datetime(frame["game_date"], errors="coerce", format="mixed")
        checks.append(
            (
                parsed.isna() & frame["game_date"].notna(),
                "bad_date",
                "unparseable game_date " + frame["game_date"].astype("string"),
                "an ISO date, e.g. 2013-10-29",
            )
        )
    if "season_type" in frame.columns:
        known = set(SEASON_TYPES.values())
        checks.append(
            (
                frame["season_type"].notna() & ~frame["season_type"].isin(known),
                "bad_season_type",
                "season_type " + frame["season_type"].astype("string"),
                f"one of {', '.join(sorted(known))}",
            )
        )
    return checks


def _aligned(check: RowCheck, index: pd.Index) -> RowCheck:
    """The check with its mask and per-row messages on the frame's index."""
    mask, code, problem, expected = check
    if not isinstance(problem, str):
        problem = pd.Series(np.asarray(problem), index=index)
    return pd.Series(np.asarray(mask), index=index), code, problem, expected


def _checks(frame: pd.DataFrame) -> list[RowCheck]:
    """Every row check, in order: a game is reported for the first one it fails."""
    checks = [*_id_checks(frame), *_margin_checks(frame), *_optional_column_checks(frame)]
    return [_aligned(check, frame.index) for check in checks]


def _complete(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in COLUMNS:
        if column not in out.columns:
            out[column] = None
    derived = out["game_id"].str.slice(2, 3).map(SEASON_TYPES)
    stats_id = out["game_id"].str.fullmatch(r"00\d{8}").fillna(False).astype(bool)
    fallback = derived.where(stats_id, "regular")
    out["season_type"] = out["season_type"].where(out["season_type"].notna(), fallback)
    out["season"] = pd.to_numeric(out["season"])
    out[MARGIN_COLUMNS] = _as_numbers(out, MARGIN_COLUMNS)
    for column in ("final_home", "final_away", "n_periods"):
        out[column] = pd.to_numeric(out[column], errors="coerce")
    out["game_date"] = pd.to_datetime(out["game_date"], format="mixed")
    return conform(out)


def load_margins(path: Path, *, on_error: OnError = "raise") -> LoadResult:
    """Load a minute-margin CSV/Parquet file into a game table."""
    source = str(path)
    frame = read_table(path)
    require_columns(frame, REQUIRED, source)
    frame = frame.reset_index(drop=True)
    frame["game_id"] = normalize_game_ids(frame["game_id"])
    errors = first_row_errors(frame["game_id"], file_rows(frame), _checks(frame), source)
    problems: list[DataError] = []
    for error in errors:
        collect(problems, error, on_error)
    # every row of a bad game goes: with a duplicate id we cannot tell which row is right
    bad_rows = frame["game_id"].isin({e.game_id for e in errors}).fillna(False).to_numpy().copy()
    bad_rows |= frame.index.isin([e.row - 2 for e in errors if e.row is not None])
    games = _complete(frame[~bad_rows])
    logger.info("margins: %s -> %d games, %d skipped", source, len(games), len(problems))
    return LoadResult(games, problems)
