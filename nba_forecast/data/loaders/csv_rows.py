"""Reading a CSV file (plain or gzipped) row by row, bounded, with a line number per row.

Nothing here holds more than one line (at most ``MAX_LINE_BYTES``) of the file at a time, so a
hostile file (a 200 MB field, a million lines, a gzip bomb) costs time in proportion to its
size and constant memory. A damaged row is not dropped silently: it comes back with the
problem (code, text, expected) so the loader can reject the game it belongs to.

Rules (see docs/data-import.md):
* UTF-8 text (a byte-order mark is allowed); gzip is recognised by its magic bytes.
* A line holds at most ``MAX_LINE_BYTES`` bytes; a quoted field spanning lines at most
  ``MAX_FIELD_CHARS`` characters.
* Every row has as many fields as the header; blank lines are skipped.
* Every line ends with a line break, the last one too: a file that does not was cut off
  mid-line (an interrupted copy or download) or written by a tool that leaves it out, and
  a cut line can hold a shorter, wrong number.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from nba_forecast.data.errors import DataError

MAX_LINE_BYTES = 64 * 1024
MAX_FIELD_CHARS = 131_072  # the csv module's own limit (``csv.field_size_limit()``)
GZIP_MAGIC = b"\x1f\x8b"
_SKIP_CHUNK = 1 << 20

# (code, problem, expected) of a damaged row
RowProblem = tuple[str, str, str]


@dataclass(frozen=True)
class Row:
    """One record: the line it starts on (the header is line 1), its fields, and what is
    wrong with it, if anything."""

    line: int
    fields: list[str]
    problem: RowProblem | None = None


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


@dataclass
class _Lines:
    """Physical lines, decoded and bounded; what went wrong on the line last handed out."""

    stream: BinaryIO
    source: str
    number: int = 0
    problems: dict[int, RowProblem] = field(default_factory=dict)
    ended_without_break: bool = False

    def _readline(self, limit: int) -> bytes:
        try:
            return self.stream.readline(limit)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(
                "truncated_file",
                f"the compressed data ends or breaks after line {self.number} ({exc})",
                source=self.source,
                expected="a complete gzip file (the copy or download was cut off?)",
            ) from None
        except OSError as exc:
            raise DataError(
                "unreadable_file",
                f"read failed after line {self.number}: {exc}",
                source=self.source,
            ) from None

    def _skip_rest_of_line(self) -> None:
        chunk = b""
        while not chunk.endswith(b"\n"):
            chunk = self._readline(_SKIP_CHUNK)
            if not chunk:
                return

    def __iter__(self) -> Iterator[str]:
        while True:
            raw = self._readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            self.number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                self._skip_rest_of_line()
                self.problems.setdefault(
                    self.number,
                    (
                        "line_too_long",
                        f"the line is longer than {MAX_LINE_BYTES:,} bytes",
                        f"lines of at most {MAX_LINE_BYTES:,} bytes (a game row is < 1 KB)",
                    ),
                )
                raw = raw[:MAX_LINE_BYTES] + b"\n"
            elif not raw.endswith(b"\n"):
                self.ended_without_break = True
                self.problems.setdefault(
                    self.number,
                    (
                        "truncated_line",
                        "the file's last line has no line break at its end: the file looks cut off",
                        "every line ending with a line break (if the last line is complete, "
                        "add one)",
                    ),
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.problems.setdefault(
                    self.number,
                    (
                        "bad_encoding",
                        f"byte {exc.start + 1} of the line is not UTF-8",
                        "UTF-8 text",
                    ),
                )
                text = raw.decode("utf-8", errors="replace")
            if self.number == 1:
                text = text.removeprefix("\ufeff")
            yield text


class CsvRows:
    """The header and then the rows of a CSV file; use as a context manager.

    File-level failures (no header, a broken gzip stream) raise ``DataError``; row-level
    ones come back on the row (``Row.problem``).
    """

    def __init__(self, path: Path) -> None:
        self.source = str(path)
        if not path.exists():
            raise DataError("file_not_found", "no such file", source=self.source)
        if path.is_dir():
            raise DataError("not_a_file", "is a directory", source=self.source, expected="a file")
        try:
            raw = path.open("rb")
            self._stream: BinaryIO = gzip.GzipFile(fileobj=raw) if _is_gzip(path) else raw  # type: ignore[assignment]
        except OSError as exc:
            raise DataError("unreadable_file", str(exc), source=self.source) from None
        self._raw = raw
        self._lines = _Lines(self._stream, self.source)
        self._reader = csv.reader(self._lines, skipinitialspace=True)
        self.header = self._read_header()

    def __enter__(self) -> CsvRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def _next_record(self) -> tuple[int, list[str], RowProblem | None] | None:
        """The next non-blank record with its first line, or None at the end of the file."""
        while True:
            start = self._lines.number + 1
            try:
                fields = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                return start, [], ("bad_csv", f"not valid CSV: {exc}", "RFC 4180 CSV")
            problem = None
            for line in range(start, self._lines.number + 1):
                problem = problem or self._lines.problems.pop(line, None)
            if fields or problem:
                return start, fields, problem

    def _read_header(self) -> list[str]:
        record = self._next_record()
        if record is None:
            raise DataError("empty_file", "the file is empty", source=self.source)
        line, fields, problem = record
        if problem is not None:
            code, text, expected = problem
            raise DataError(
                code, f"header: {text}", source=self.source, row=line, expected=expected
            )
        header = [name.strip() for name in fields]
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise DataError(
                "duplicate_columns",
                f"column(s) {', '.join(repeated)} appear more than once in the header",
                source=self.source,
                row=1,
                expected="each column once",
            )
        return header

    def __iter__(self) -> Iterator[Row]:
        width = len(self.header)
        while (record := self._next_record()) is not None:
            line, fields, problem = record
            if problem is None and len(fields) != width:
                problem = (
                    "wrong_field_count",
                    f"the row has {len(fields)} field(s), the header {width}",
                    "one field per column (a cut or merged line?)",
                )
            yield Row(line, fields, problem)
