"""Our own minute-margin files (CSV or Parquet, the columns of ``schema``) -> game table.

Required: ``game_id, season, m_0 .. m_24``. Optional: ``season_type`` (derived from a
stats.nba.com id, else ``regular``), ``game_date, home_team, away_team, m_25 .. m_48,
final_home, final_away, n_periods``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from nba_forecast.data.errors import DataError, LoadResult, OnError, collect, one_per_game
from nba_forecast.data.loaders.csv_rows import CsvRows, Row
from nba_forecast.data.loaders.metadata import game_dates, metadata_checks
from nba_forecast.data.loaders.tables import (
    CHUNK_BYTES,
    LINE,
    MAX_GAMES,
    RowCheck,
    as_numbers,
    chunk_rows,
    damaged_row_errors,
    drop_reported,
    first_row_errors,
    game_id_check,
    is_parquet,
    normalize_game_ids,
    open_csv,
    open_parquet,
    parquet_batches,
    rows_frame,
    without_cyclic_gc,
)
from nba_forecast.data.schema import (
    COLUMNS,
    FINAL_COLUMNS,
    FIRST_HALF_COLUMNS,
    MARGIN_COLUMNS,
    SEASON_TYPES,
    STATS_GAME_ID_PATTERN,
    conform,
)

logger = logging.getLogger(__name__)

REQUIRED = ["game_id", "season", *FIRST_HALF_COLUMNS]
MAX_MINUTE_SWING = 20  # the real data never moves more than 11 points in one minute
MAX_POINTS = 300  # a team's final score (the record is 186)
MAX_PERIODS = 14  # 4 quarters and up to 10 overtimes
NUMBER_COLUMNS = [*MARGIN_COLUMNS, *FINAL_COLUMNS]


def _first_bad_column(bad: np.ndarray, columns: list[str]) -> pd.Series:
    return pd.Series([columns[i] for i in bad.argmax(axis=1)])


def _located(bad: np.ndarray, label: str, columns: list[str], joiner: str = " in ") -> pd.Series:
    """Per-row message naming the first bad margin column, e.g. 'empty margin in m_7'."""
    return label + joiner + _first_bad_column(bad, columns)


def _first_half(columns: list[str]) -> np.ndarray:
    """Which of ``columns`` (margin columns in minute order) belong to the first half."""
    return np.arange(len(columns)) < len(FIRST_HALF_COLUMNS)


def _id_checks(frame: pd.DataFrame, earlier: set[str]) -> list[RowCheck]:
    """Checks on a game's identity: game id present, well-formed and unique (also against the
    ids of ``earlier`` chunks of the file), a plausible season."""
    game_id = frame["game_id"]
    duplicate = (game_id.duplicated(keep="first") | game_id.isin(earlier)) & game_id.notna()
    return [
        (game_id.isna() | (game_id == ""), "missing_game_id", "empty game_id", "a game id"),
        game_id_check(game_id),
        (duplicate, "duplicate_game_id", "game id appears twice in the file", "each game id once"),
        (
            frame["season"].isna(),
            "bad_season",
            "season <empty>",
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
                f"margin moves more than {MAX_MINUTE_SWING} points in one minute",
                columns,
                joiner=", at ",
            ),
            f"at most {MAX_MINUTE_SWING} points of margin change per minute",
        ),
    ]


def _margin_checks(frame: pd.DataFrame, numbers: pd.DataFrame) -> list[RowCheck]:
    """Checks on the ``m_*`` columns the file has."""
    present = [c for c in MARGIN_COLUMNS if c in frame.columns]
    text_missing = frame[present].isna().to_numpy()
    v = numbers[present].to_numpy()
    return [*_cell_checks(v, text_missing, present), *_sequence_checks(v, text_missing, present)]


def _whole_number(
    frame: pd.DataFrame, numbers: pd.DataFrame, column: str, low: int, high: int
) -> pd.Series:
    """The column as numbers where it is a whole number in [low, high]; NaN where empty;
    -1 (never valid) where it is anything else."""
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    value = numbers[column]
    bad = frame[column].notna() & ~((value == value.round()) & (value >= low) & (value <= high))
    return value.mask(bad, -1.0)


def _final_score_checks(frame: pd.DataFrame, numbers: pd.DataFrame) -> list[RowCheck]:
    """The final score and periods, where given: in range, and consistent with m_48 (the end
    of regulation) -- the margin after 4 periods is the final one, or 0 before overtime."""
    home = _whole_number(frame, numbers, "final_home", 0, MAX_POINTS)
    away = _whole_number(frame, numbers, "final_away", 0, MAX_POINTS)
    periods = _whole_number(frame, numbers, "n_periods", 4, MAX_PERIODS)
    m_48 = numbers["m_48"] if "m_48" in numbers.columns else pd.Series(np.nan, index=frame.index)
    known = home.ge(0) & away.ge(0)
    regulation = known & periods.eq(4) & m_48.notna()
    return [
        (
            home.eq(-1) | away.eq(-1),
            "bad_final_score",
            "final score "
            + frame.get("final_home", pd.Series("", index=frame.index)).astype("string").fillna("")
            + " - "
            + frame.get("final_away", pd.Series("", index=frame.index)).astype("string").fillna(""),
            f"whole points from 0 to {MAX_POINTS}",
        ),
        (
            periods.eq(-1),
            "bad_n_periods",
            "n_periods "
            + frame.get("n_periods", pd.Series("", index=frame.index)).astype("string").fillna(""),
            f"a whole number of periods from 4 to {MAX_PERIODS}",
        ),
        (
            known & (home == away),
            "final_score_mismatch",
            "the final score is a tie",
            "a winner (basketball has no ties)",
        ),
        (
            regulation & ((home - away) != m_48),
            "final_score_mismatch",
            "final margin "
            + (home - away).astype("string")
            + " but m_48 is "
            + m_48.astype("string"),
            "m_48 = final_home - final_away in a game without overtime",
        ),
        (
            known & periods.gt(4) & m_48.notna() & (m_48 != 0),
            "overtime_inconsistent",
            "overtime played but m_48 is " + m_48.astype("string"),
            "m_48 = 0 (a tie at the end of regulation) in a game with overtime",
        ),
    ]


def _aligned(check: RowCheck, index: pd.Index) -> RowCheck:
    """The check with its mask and per-row messages on the frame's index."""
    mask, code, problem, expected = check
    if isinstance(problem, pd.Series):
        problem = pd.Series(problem.to_numpy(), index=index)
    return pd.Series(np.asarray(mask), index=index), code, problem, expected


def _checks(frame: pd.DataFrame, numbers: pd.DataFrame, earlier: set[str]) -> list[RowCheck]:
    """Every row check, in order: a game is reported for the first one it fails."""
    checks = [
        *_id_checks(frame, earlier),
        *_margin_checks(frame, numbers),
        *_final_score_checks(frame, numbers),
        *metadata_checks(frame),
    ]
    return [_aligned(check, frame.index) for check in checks]


def _complete(frame: pd.DataFrame, numbers: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out[list(numbers.columns)] = numbers
    for column in COLUMNS:
        if column not in out.columns:
            out[column] = None
    derived = out["game_id"].str.slice(2, 3).map(SEASON_TYPES)
    stats_id = out["game_id"].str.fullmatch(STATS_GAME_ID_PATTERN).fillna(False).astype(bool)
    fallback = derived.where(stats_id, "regular")
    out["season_type"] = out["season_type"].where(out["season_type"].notna(), fallback)
    out["season"] = pd.to_numeric(out["season"])
    out["game_date"] = game_dates(out["game_date"])
    return conform(out)


def _csv_chunks(rows: CsvRows, source: str) -> Iterator[pd.DataFrame]:
    batch: list[Row] = []
    size = chunk_rows(len(rows.header))
    start = 0
    with rows:
        try:
            for count, row in enumerate(rows, start=1):
                if count > MAX_GAMES:
                    raise DataError(
                        "too_many_games",
                        f"more than {MAX_GAMES:,} games",
                        source=source,
                        row=row[0],
                        expected=f"at most {MAX_GAMES:,} games per load (split the file)",
                    )
                batch.append(row)
                if len(batch) >= size or rows.bytes_read - start >= CHUNK_BYTES:
                    yield rows_frame(rows.header, batch)
                    batch, start = [], rows.bytes_read
        except DataError:
            # the rows read whole before the file broke off are checked like the others
            if batch:
                yield rows_frame(rows.header, batch)
            raise
    if batch:
        yield rows_frame(rows.header, batch)


def _chunks(path: Path, source: str) -> Iterator[pd.DataFrame]:
    """The file's rows as frames of ``chunk_rows`` rows. A file that cannot be opened
    or lacks columns fails here; what breaks later fails while iterating."""
    if is_parquet(path):
        return parquet_batches(open_parquet(path, source, REQUIRED), source)
    return _csv_chunks(open_csv(path, REQUIRED), source)


def _chunk_games(
    frame: pd.DataFrame,
    source: str,
    earlier: set[str],
    problems: list[DataError],
    on_error: OnError,
) -> pd.DataFrame:
    """The valid games of one chunk; the others' problems collected."""
    frame = frame.reset_index(drop=True)
    frame["game_id"] = normalize_game_ids(frame["game_id"])
    numbers = as_numbers(frame, [c for c in NUMBER_COLUMNS if c in frame.columns])
    errors = damaged_row_errors(frame, frame["game_id"], source)
    damaged = {e.game_id for e in errors}
    found = first_row_errors(
        frame["game_id"], frame[LINE], _checks(frame, numbers, earlier), source
    )
    errors += [e for e in found if e.game_id not in damaged]
    for error in errors:
        collect(problems, error, on_error)
    # every row of a bad game goes: with a duplicate id we cannot tell which row is right
    bad_rows = frame["game_id"].isin({e.game_id for e in errors}).fillna(False).to_numpy().copy()
    bad_rows |= frame[LINE].isin([e.row for e in errors if e.row is not None]).to_numpy()
    earlier.update(frame["game_id"].dropna().astype(str))
    return _complete(frame[~bad_rows].drop(columns=[LINE]), numbers[~bad_rows])


@without_cyclic_gc
def load_margins(path: Path, *, on_error: OnError = "raise") -> LoadResult:
    """Load a minute-margin CSV/Parquet file into a game table, a chunk at a time."""
    source = str(path)
    problems: list[DataError] = []
    parts: list[pd.DataFrame] = []
    earlier: set[str] = set()
    chunks = _chunks(path, source)
    while True:
        try:
            frame = next(chunks)
        except StopIteration:
            break
        except DataError as error:  # the file broke off: the games before it stand
            collect(problems, error, on_error)
            break
        parts.append(_chunk_games(frame, source, earlier, problems, on_error))
    if not parts and not problems:
        collect(
            problems,
            DataError("empty_file", "the file has a header but no rows", source=source),
            on_error,
        )
    # a duplicate in a later chunk also condemns the first copy
    games = drop_reported(parts, problems)
    logger.info("margins: %s -> %d games, %d skipped", source, len(games), len(problems))
    return LoadResult(games, one_per_game(problems))
