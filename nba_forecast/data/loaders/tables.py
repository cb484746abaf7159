"""From rows of an input file to frames of whole games, with errors that say what is wrong.

The loaders read a file as a stream of rows (``csv_rows``), group them into games (a game's
rows must be together, as in every export of the league's play-by-play) and check and sample
the games in chunks of ``CHUNK_CELLS`` cells, so memory stays bounded however large the file.
"""

from __future__ import annotations

import csv
import functools
import gc
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from nba_forecast.data.errors import DataError
from nba_forecast.data.loaders.csv_rows import NO_LINE_BREAK, CsvRows, Row
from nba_forecast.data.schema import (
    GAME_ID_EXPECTED,
    GAME_ID_PATTERN,
    STATS_GAME_ID_PATTERN,
    empty_games,
)

P = ParamSpec("P")
T = TypeVar("T")
PARQUET_SUFFIXES = (".parquet", ".pq")
PARQUET_MAGIC = b"PAR1"
CHUNK_CELLS = 500_000  # cells held as text at a time (~40 MB): 9,000 margin rows
CHUNK_BYTES = 16 * 1024 * 1024  # ... or this much text, whichever comes first


def chunk_rows(width: int) -> int:
    """Rows per chunk for a file whose header has ``width`` columns."""
    return max(1_000, CHUNK_CELLS // max(width, 1))


MAX_GAMES = 200_000  # per load: every NBA game ever played is ~75,000
MAX_ROW_GROUP_BYTES = 128 * 1024 * 1024  # uncompressed size of one Parquet row group
LINE = "__line"  # the row's line in the file, a column of every frame built here
DAMAGE = "__damage"  # what the reader found wrong with the row, or None


def without_cyclic_gc(load: Callable[P, T]) -> Callable[P, T]:
    """Run a loader with the cyclic garbage collector paused: a chunk holds ~100,000 rows
    (lists and tuples, no cycles) that every collection would scan again (loads took three
    times as long)."""

    @functools.wraps(load)
    def paused(*args: P.args, **kwargs: P.kwargs) -> T:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return load(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused


def is_parquet(path: Path) -> bool:
    """By its name, or by its first bytes (a Parquet file named .csv)."""
    if path.name.lower().endswith(PARQUET_SUFFIXES):
        return True
    if not path.is_file():  # opening a FIFO would block
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(4) == PARQUET_MAGIC
    except OSError:
        return False


def require_columns(header: Iterable[str], required: Iterable[str], source: str) -> None:
    present = set(header)
    missing = [c for c in required if c not in present]
    if missing:
        raise DataError(
            "missing_columns",
            f"missing column(s) {', '.join(missing)}",
            source=source,
            row=1,
            expected=f"a header with {', '.join(required)}",
        )


def normalize_game_id(text: str) -> str:
    """stats.nba.com ids lose their leading zeros in spreadsheets; restore them."""
    text = text.strip()
    return text.zfill(10) if re.fullmatch(r"[0-9]{1,10}", text) else text


def normalize_game_ids(ids: pd.Series) -> pd.Series:
    text = ids.astype("string").str.strip()
    digits = text.str.fullmatch(r"[0-9]{1,10}").fillna(False).astype(bool)
    return text.where(~digits, text.str.zfill(10))


def bad_game_ids(game_ids: pd.Series, *, stats_only: bool = False) -> pd.Series:
    """Ids that are present but break the documented pattern (``schema.GAME_ID_PATTERN``)."""
    pattern = STATS_GAME_ID_PATTERN if stats_only else GAME_ID_PATTERN
    ok = game_ids.astype("string").str.fullmatch(pattern).fillna(False).astype(bool)
    return ~ok & game_ids.notna() & (game_ids != "")


@dataclass(frozen=True)
class Shown:
    """Per-row message text around a cell, made only for the rows that are reported:
    ``"season " + shown(frame["season"])`` -> ``season '20x3'`` (quoted, cut to 40
    characters, ``<empty>`` for an empty cell)."""

    values: pd.Series
    before: str = ""
    after: str = ""

    def __radd__(self, text: str) -> Shown:
        return Shown(self.values, text + self.before, self.after)

    def __add__(self, text: str) -> Shown:
        return Shown(self.values, self.before, self.after + text)

    def __getitem__(self, index: object) -> str:
        value = self.values[index]
        cell = "<empty>" if pd.isna(value) else repr(str(value)[:40])
        return f"{self.before}{cell}{self.after}"


def shown(values: pd.Series) -> Shown:
    return Shown(values)


def game_id_check(game_ids: pd.Series, *, stats_only: bool = False) -> RowCheck:
    return (
        bad_game_ids(game_ids, stats_only=stats_only),
        "bad_game_id",
        "game id " + shown(game_ids) + " breaks the id format",
        "a stats.nba.com game id (10 digits, e.g. 0021300001)" if stats_only else GAME_ID_EXPECTED,
    )


def rows_frame(header: list[str], rows: list[Row]) -> pd.DataFrame:
    """The rows as text cells (empty -> None) under the header's names, plus their lines
    (``LINE``) and the damage the reader found (``DAMAGE``: (code, text, expected) or None).
    Damaged rows keep the fields they have, padded or cut to the header's width."""
    width = len(header)
    cells = np.empty((len(rows), width), dtype=object)
    for i, row in enumerate(rows):
        cells[i] = row[1] if row[2] is None else (row[1] + [""] * width)[:width]
    cells[cells == ""] = None
    frame = pd.DataFrame(cells, columns=header, copy=False)
    frame[LINE] = np.array([row[0] for row in rows], dtype=np.int64)
    # a column, not frame.attrs: pandas deep-copies attrs on every operation (quadratic)
    damage = np.full(len(rows), None, dtype=object)
    for position, row in enumerate(rows):
        if row[2] is not None:
            damage[position] = row[2]
    frame[DAMAGE] = damage
    return frame


def as_numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The columns as float64: NaN where empty or not a number (a number in words, ``True``).

    Text columns go through pandas' C parser, which turns text into numbers about ten times
    faster than ``pd.to_numeric`` (the shipped 22,387 games: 0.05 s instead of 0.4 s)."""
    out = pd.DataFrame(index=frame.index)
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        buffer = io.StringIO()
        cells = frame[text].astype(object).where(frame[text].notna(), "")
        csv.writer(buffer).writerows(cells.itertuples(index=False, name=None))
        buffer.seek(0)
        parsed = (
            pd.read_csv(buffer, header=None, names=text, keep_default_na=False, na_values=[""])
            if len(frame)
            else pd.DataFrame({c: pd.Series(dtype=np.float64) for c in text})
        )
        for column in text:
            values = parsed[column]
            if values.dtype.kind not in "iuf":  # some cell is not a number (or all are words)
                values = pd.to_numeric(values.astype(object).astype(str), errors="coerce")
                values = values.where(parsed[column].notna())
            out[column] = values.to_numpy(np.float64)
    for column in columns:
        if column not in text:
            out[column] = frame[column].astype(np.float64).to_numpy()
    return out[columns]


def damaged_row_errors(frame: pd.DataFrame, game_ids: pd.Series, source: str) -> list[DataError]:
    """One error per game for the first row the reader found damaged (cut, too long, ...)."""
    errors: list[DataError] = []
    seen: set[str] = set()
    if DAMAGE not in frame.columns:
        return []
    damaged = frame[DAMAGE].to_numpy()
    for position in [i for i, damage in enumerate(damaged) if damage is not None]:
        code, text, expected = damaged[position]
        game_id = game_ids.iloc[position]
        game = None if pd.isna(game_id) or game_id == "" else str(game_id)
        if game is not None and game in seen:
            continue
        seen.add(game or "")
        line = int(frame[LINE].iloc[position])
        errors.append(
            DataError(code, text, source=source, game_id=game, row=line, expected=expected)
        )
    return errors


def _garbled_id(row: Row, id_column: int) -> bool:
    """A damaged row whose id breaks the id format: it cannot start a game of its own."""
    return (
        row[2] is not None
        and re.fullmatch(GAME_ID_PATTERN, normalize_game_id(row[1][id_column])) is None
    )


def _cut_id(row: Row, id_column: int) -> bool:
    """The row is the file's cut last line and its id may be cut (nothing follows it)."""
    return row[2] is NO_LINE_BREAK and len(row[1]) == id_column + 1


@dataclass
class GameChunks:
    """Rows grouped into games, handed out in chunks of whole games.

    A game's rows must be together; a game seen again after another game's rows, or with more
    than ``max_rows_per_game`` rows, is reported in ``problems`` (its rows are not kept).
    A file that breaks off (``DataError`` from the reader) ends the stream: the games read
    whole so far are handed out, the one in progress is reported.
    """

    rows: Iterable[Row]
    id_column: int
    source: str
    max_rows_per_game: int
    chunk_rows: int = 100_000
    bytes_read: Callable[[], int] = lambda: 0
    problems: list[DataError] = field(default_factory=list)
    games: int = 0

    def _problem(self, code: str, text: str, game_id: str, line: int, expected: str) -> None:
        self.problems.append(
            DataError(code, text, source=self.source, game_id=game_id, row=line, expected=expected)
        )

    def __iter__(self) -> Iterator[list[Row]]:
        chunk: list[Row] = []
        chunk_start = 0  # bytes read when the chunk began
        game: list[Row] = []
        current: str | None = None
        current_raw: str | None = None
        finished: dict[str, int] = {}  # game id -> its first line
        too_long = False
        try:
            for row in self.rows:
                line, fields = row[0], row[1]
                # a row too broken to have fields stays with the game it is in, and so does
                # a cut last line whose id is cut too
                if len(fields) <= self.id_column or fields[self.id_column] == current_raw:
                    game_id = current or ""
                elif _garbled_id(row, self.id_column) and current is not None:
                    # a damaged row (bad bytes, cut) whose id is garbled stays in its game
                    game_id = current
                    row = (
                        line,
                        [
                            *fields[: self.id_column],
                            current_raw or "",
                            *fields[self.id_column + 1 :],
                        ],
                        row[2],
                    )
                elif _cut_id(row, self.id_column) and (current_raw or "").startswith(
                    fields[self.id_column]
                ):
                    game_id = current or ""
                    row = (line, [*fields[: self.id_column], current_raw or ""], row[2])
                else:
                    current_raw = fields[self.id_column]
                    game_id = normalize_game_id(current_raw)
                if game_id != current:
                    if current is not None and not too_long:
                        chunk += game
                    if current is not None:
                        finished.setdefault(current, game[0][0] if game else line)
                    full = self.bytes_read() - chunk_start >= CHUNK_BYTES
                    if chunk and (full or len(chunk) >= self.chunk_rows):
                        yield chunk
                        chunk, chunk_start = [], self.bytes_read()
                    current, game, too_long = game_id, [], False
                    self._count_game(line)
                    if game_id in finished:
                        self._problem(
                            "game_rows_split",
                            f"the game's rows start again after other games' rows "
                            f"(first seen at line {finished[game_id]})",
                            game_id,
                            line,
                            "each game's rows together (sort the file by game)",
                        )
                        too_long = True  # nothing more of it is kept
                if too_long:
                    continue
                game.append(row)
                if len(game) > self.max_rows_per_game:
                    self._problem(
                        "too_many_rows",
                        f"the game has more than {self.max_rows_per_game:,} rows",
                        game_id,
                        line,
                        f"at most {self.max_rows_per_game:,} rows per game",
                    )
                    game, too_long = [], True
        except DataError as error:
            self.problems.append(
                DataError(
                    error.code,
                    error.problem,
                    source=self.source,
                    game_id=current,
                    row=error.row if error.row is not None else (game[-1][0] if game else None),
                    expected=error.expected,
                )
            )
            if chunk:
                yield chunk
            return
        if current is not None and not too_long:
            chunk += game
        if chunk:
            yield chunk
        if current is None:
            self.problems.append(
                DataError("empty_file", "the file has a header but no rows", source=self.source)
            )

    def _count_game(self, line: int) -> None:
        self.games += 1
        if self.games > MAX_GAMES:
            raise DataError(
                "too_many_games",
                f"more than {MAX_GAMES:,} games",
                source=self.source,
                row=line,
                expected=f"at most {MAX_GAMES:,} games per load (split the file)",
            )


def open_parquet(path: Path, source: str, required: Iterable[str]) -> pq.ParquetFile:
    """A Parquet file whose schema has the ``required`` columns."""
    if not path.exists():
        raise DataError("file_not_found", "no such file", source=source)
    try:
        file = pq.ParquetFile(str(path))
    except Exception as exc:  # pyarrow raises many types for a damaged footer
        raise DataError(
            "unreadable_file", f"cannot be read as Parquet: {exc}".strip(), source=source
        ) from None
    require_columns(file.schema_arrow.names, required, source)
    if file.metadata.num_rows > MAX_GAMES:  # before anything is decompressed
        raise DataError(
            "too_many_games",
            f"{file.metadata.num_rows:,} rows",
            source=source,
            expected=f"at most {MAX_GAMES:,} games per load (split the file)",
        )
    return file


def parquet_batches(file: pq.ParquetFile, source: str) -> Iterator[pd.DataFrame]:
    """The file one row group at a time (each bounded by ``MAX_ROW_GROUP_BYTES`` before it is
    decompressed), with ``LINE`` = the 1-based record number."""
    offset = 0
    for group in range(file.num_row_groups):
        size = file.metadata.row_group(group).total_byte_size
        if size > MAX_ROW_GROUP_BYTES:
            raise DataError(
                "row_group_too_large",
                f"row group {group} holds {size:,} bytes uncompressed",
                source=source,
                expected=f"row groups of at most {MAX_ROW_GROUP_BYTES:,} bytes",
            )
        # one batch decoded at a time (a list of them would hold the whole row group)
        batches = file.iter_batches(batch_size=chunk_rows(64), row_groups=[group])
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # pyarrow raises many types for a damaged page
                raise DataError(
                    "unreadable_file", f"row group {group} cannot be read: {exc}", source=source
                ) from None
            if batch is None:
                break
            frame = batch.to_pandas()
            frame[LINE] = np.arange(offset + 1, offset + len(frame) + 1, dtype=np.int64)
            offset += len(frame)
            yield frame


def open_csv(path: Path, required: list[str]) -> CsvRows:
    """A CSV file whose header has the ``required`` columns, open for its rows."""
    rows = CsvRows(path)
    try:
        require_columns(rows.header, required, str(path))
    except DataError:
        rows.close()
        raise
    return rows


def game_frames(
    path: Path, required: list[str], id_column: str, max_rows_per_game: int
) -> tuple[list[str], GameChunks, Iterator[pd.DataFrame]]:
    """A CSV file of rows per game: its header, the grouping (whose ``problems`` grow while
    the frames are read) and the frames of whole games, ``CHUNK_CELLS`` cells or so each.
    A file that cannot be opened or lacks columns fails here."""
    source = str(path)
    rows = open_csv(path, required)
    grouping = GameChunks(
        rows,
        rows.header.index(id_column),
        source,
        max_rows_per_game,
        chunk_rows=chunk_rows(len(rows.header)),
        bytes_read=lambda: rows.bytes_read,
    )

    def frames() -> Iterator[pd.DataFrame]:
        with rows:
            for chunk in grouping:
                yield rows_frame(rows.header, chunk)

    return rows.header, grouping, frames()


def drop_reported(parts: list[pd.DataFrame], problems: list[DataError]) -> pd.DataFrame:
    """The games of all chunks but those with a problem anywhere in the file (a game whose
    rows resume later, say, was sampled from its first rows before that was known)."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty_games()
    # the parts are game tables already: concatenating and filtering keeps their dtypes
    games = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    bad = {p.game_id for p in problems if p.game_id is not None}
    return games[~games["game_id"].isin(bad)].reset_index(drop=True) if bad else games


RowCheck = tuple[pd.Series, str, "str | pd.Series | Shown", str]


def first_row_errors(
    game_ids: pd.Series, rows: pd.Series, checks: list[RowCheck], source: str
) -> list[DataError]:
    """One error per game: the first failing row of the first failing check.

    Each check is ``(bad_mask, code, problem, expected)``; ``problem`` is a string or a
    Series of per-row messages.
    """
    errors: list[DataError] = []
    failed_games: set[str] = set()
    for bad, code, problem, expected in checks:
        hits = bad.fillna(False).astype(bool) & ~game_ids.isin(failed_games)
        for index in game_ids[hits].drop_duplicates().index:
            text = problem if isinstance(problem, str) else str(problem[index])
            game_id = None if pd.isna(game_ids[index]) else str(game_ids[index])
            errors.append(
                DataError(
                    code,
                    text,
                    source=source,
                    game_id=game_id,
                    row=int(rows[index]),
                    expected=expected,
                )
            )
            failed_games.add(game_id or "")
    return errors
