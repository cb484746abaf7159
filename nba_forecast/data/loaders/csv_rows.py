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
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from nba_forecast.data.errors import DataError

MAX_LINE_BYTES = 8 * 1024  # a game row is < 1 KB; 5,000 rows of a game stay < 40 MB
MAX_BLANK_LINES = 100_000
MAX_FIELD_CHARS = 131_072  # the csv module's own limit (``csv.field_size_limit()``)
GZIP_MAGIC = b"\x1f\x8b"
BLOCK_BYTES = 1 << 20  # read and decode this much at a time

# (code, problem, expected) of a damaged row
RowProblem = tuple[str, str, str]

TOO_LONG: RowProblem = (
    "line_too_long",
    f"the line is longer than {MAX_LINE_BYTES:,} bytes",
    f"lines of at most {MAX_LINE_BYTES:,} bytes (a game row is < 1 KB)",
)
BARE_RETURN: RowProblem = (
    "bad_csv",
    "a carriage return inside the line",
    "one row per line, lines ending in LF or CRLF",
)
NO_LINE_BREAK: RowProblem = (
    "truncated_line",
    "the file's last line has no line break at its end: the file looks cut off",
    "every line ending with a line break (if the last line is complete, add one)",
)


# One record: (the line it starts on, the header being line 1; its fields; what is wrong
# with it, or None). A plain tuple: a file has millions of them.
Row = tuple[int, list[str], RowProblem | None]


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


@dataclass
class _Lines:
    """The file's physical lines, decoded, at most ``MAX_LINE_BYTES`` each (a longer one is
    cut there, the rest skipped), read a block at a time; ``problems`` by line number."""

    stream: BinaryIO
    source: str
    counted: int = 0  # lines handed out so far
    bytes_out: int = 0  # their size
    blank: int = 0
    problems: dict[int, RowProblem] = field(default_factory=dict)

    def _read(self, size: int) -> bytes:
        try:
            return self.stream.read(size)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            where = f"after line {self.counted:,}" if self.counted else "before the first line"
            raise DataError(
                "truncated_file",
                f"the compressed data ends or breaks {where} ({exc})",
                source=self.source,
                expected="a complete gzip file (the copy or download was cut off?)",
            ) from None
        except OSError as exc:
            raise DataError(
                "unreadable_file",
                f"read failed after line {self.counted}: {exc}",
                source=self.source,
            ) from None

    def _decode(self, lines: list[bytes]) -> list[str]:
        try:
            return b"\n".join(lines).decode("utf-8").split("\n")
        except UnicodeDecodeError:
            pass
        decoded = []
        for number, line in enumerate(lines, start=self.counted + 1):
            try:
                decoded.append(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                problem = (
                    "bad_encoding",
                    f"byte {exc.start + 1} of the line is not UTF-8",
                    "UTF-8 text",
                )
                self.problems.setdefault(number, problem)
                decoded.append(line.decode("utf-8", errors="replace"))
        return decoded

    def _bounded(self, lines: list[bytes]) -> list[bytes]:
        """Lines cut to ``MAX_LINE_BYTES`` (their problem noted)."""
        if max(map(len, lines), default=0) <= MAX_LINE_BYTES:
            return lines
        for number, line in enumerate(lines, start=self.counted + 1):
            if len(line) > MAX_LINE_BYTES:
                self.problems.setdefault(number, TOO_LONG)
        return [line[:MAX_LINE_BYTES] for line in lines]

    def _without_bare_returns(self, lines: list[bytes]) -> list[bytes]:
        """A carriage return inside a line (not CRLF's) would end the csv reader's record
        mid-line: it becomes a space and the line is reported."""
        joined = b"\n".join(lines) + b"\n"
        if joined.count(b"\r") == joined.count(b"\r\n"):
            return lines
        out = []
        for number, line in enumerate(lines, start=self.counted + 1):
            crlf = line.endswith(b"\r")
            inner = line[:-1] if crlf else line
            if b"\r" in inner:
                self.problems.setdefault(number, BARE_RETURN)
                line = inner.replace(b"\r", b" ") + (b"\r" if crlf else b"")
            out.append(line)
        return out

    def _count_blank(self, lines: list[bytes]) -> None:
        """Blank lines are skipped, but not without end (a gzip bomb of line breaks)."""
        self.blank += lines.count(b"") + lines.count(b"\r")
        if self.blank > MAX_BLANK_LINES:
            raise DataError(
                "too_many_blank_lines",
                f"more than {MAX_BLANK_LINES:,} blank lines "
                f"(by line {self.counted + len(lines):,})",
                source=self.source,
                expected="rows, not empty lines",
            )

    def _hand_out(self, lines: list[bytes]) -> list[str]:
        self._count_blank(lines)
        self.bytes_out += sum(map(len, lines))
        text = self._decode(self._without_bare_returns(self._bounded(lines)))
        if self.counted == 0 and text:
            text[0] = text[0].removeprefix("\ufeff")
        self.counted += len(lines)
        return text

    def __iter__(self) -> Iterator[str]:
        # lines are pulled one at a time by the csv reader: chaining the blocks' lists keeps
        # that loop in C
        return itertools.chain.from_iterable(self._blocks())

    def _blocks(self) -> Iterator[list[str]]:
        tail = b""  # the start of a line whose break is not read yet
        skipping = False  # inside a line already handed out cut
        while block := self._read(BLOCK_BYTES):
            if skipping:
                newline = block.find(b"\n")
                if newline < 0:
                    continue
                block, skipping = block[newline + 1 :], False
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            if len(tail) > MAX_LINE_BYTES:
                lines.append(tail)  # cut and noted as too long; its rest is skipped
                tail, skipping = b"", True
            yield self._hand_out(lines)
        if tail:
            self.problems.setdefault(self.counted + 1, NO_LINE_BREAK)
            yield self._hand_out([tail])


class CsvRows:
    """The header and then the rows of a CSV file; use as a context manager.

    File-level failures (no header, a broken gzip stream) raise ``DataError``; row-level
    ones come back on the row (its third item).
    """

    def __init__(self, path: Path) -> None:
        self.source = str(path)
        if not path.exists():
            raise DataError("file_not_found", "no such file", source=self.source)
        if not path.is_file():  # a directory, a FIFO or a device would block or fail
            raise DataError(
                "not_a_file", "is not a regular file", source=self.source, expected="a file"
            )
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

    @property
    def bytes_read(self) -> int:
        """Bytes of text handed to the csv reader so far (a block ahead of the rows)."""
        return self._lines.bytes_out

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def _next_record(self) -> Row | None:
        """The next non-blank record with its first line, or None at the end of the file."""
        while True:
            start = self._reader.line_num + 1
            try:
                fields = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                raise self._csv_error(exc, start) from None
            if self._reader.line_num != start:
                raise self._joined_lines(start)
            problem = self._lines.problems.pop(start, None)
            if fields or problem:
                return start, fields, problem

    def _joined_lines(self, line: int) -> DataError:
        """A quoted field that runs over a line break: a game row is one line, so it is an
        unclosed quote, and the rows it swallowed cannot be told apart: the file ends here
        (the games read whole before it stand)."""
        return DataError(
            "bad_csv",
            f"a quote opened on this line closes on line {self._reader.line_num} "
            "(an unclosed quote?); the rest of the file is not read",
            source=self.source,
            row=line,
            expected="one row per line, quotes closed on the line they open",
        )

    def _csv_error(self, error: csv.Error, line: int) -> DataError:
        """The reader cannot be trusted after this (an unclosed quote swallows the lines
        after it), so it ends the file: the games read whole before it stand."""
        if "field limit" in str(error):
            return DataError(
                "field_too_long",
                f"a quoted field longer than {MAX_FIELD_CHARS:,} characters (an unclosed "
                "quote?); the rest of the file is not read",
                source=self.source,
                row=line,
                expected="fields of at most a line; quotes closed on the line they open",
            )
        return DataError("bad_csv", f"not valid CSV: {error}", source=self.source, row=line)

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
                f"column(s) {', '.join(name[:40] for name in repeated[:8])} appear more than "
                "once in the header",
                source=self.source,
                row=1,
                expected="each column once",
            )
        return header

    def __iter__(self) -> Iterator[Row]:
        width = len(self.header)
        reader, problems = self._reader, self._lines.problems
        while True:
            if problems:  # a damaged line is ahead in this block: the careful way
                record = self._next_record()
                if record is None:
                    return
            else:  # the common case, inline: a file can have millions of rows
                start = reader.line_num + 1
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise self._csv_error(exc, start) from None
                else:
                    if reader.line_num != start:
                        raise self._joined_lines(start)
                    if len(fields) == width and not problems:
                        yield start, fields, None
                        continue
                    if not fields and not problems:
                        continue  # a blank line
                    record = (start, fields, problems.pop(start, None))
            line, fields, problem = record
            if problem is None and len(fields) != width:
                problem = (
                    "wrong_field_count",
                    f"the row has {len(fields)} field(s), the header {width}",
                    "one field per column (a cut or merged line?)",
                )
            yield line, fields, problem
