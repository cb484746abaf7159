"""Errors for bad input data, and the result of a load that may skip bad games.

Every problem names the file, the game, the row (1-based line of the file, the header being
line 1) and what was expected, so a user can open the file and fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from nba_forecast.data.schema import GAME_ID_PATTERN

OnError = Literal["raise", "skip"]


# Every code a DataError may carry and what it means (docs/data-import.md lists them with an
# example message; a test keeps the two equal). Codes are stable: scripts match on them.
CODES: dict[str, str] = {
    "file_not_found": "the path does not exist",
    "not_a_file": "the path is a directory where a file is needed",
    "no_input_files": "a directory without `.csv` / `.csv.gz` files",
    "unreadable_file": "the file cannot be read (I/O error, not Parquet)",
    "unknown_format": "the header matches no format",
    "empty_file": "no header, or a header without rows",
    "missing_columns": "a required column is absent",
    "duplicate_columns": "a column name appears twice in the header",
    "truncated_file": "a gzip stream ends or breaks before its end",
    "truncated_line": "the last line has no line break: the file was cut",
    "line_too_long": "a line over 8 KiB",
    "field_too_long": "a quoted field over 131,072 characters (ends the file)",
    "bad_csv": "a quote that runs over a line break (ends the file), a carriage return in a line",
    "bad_encoding": "bytes that are not UTF-8",
    "wrong_field_count": "a row with more or fewer fields than the header",
    "too_many_rows": "a game with more rows than the limit",
    "too_many_blank_lines": "more than 100,000 blank lines (a bomb of line breaks)",
    "too_many_games": "more games than the limit in one load",
    "row_group_too_large": "a Parquet row group over 128 MiB uncompressed",
    "game_rows_split": "a game's rows start again after another game's",
    "missing_game_id": "an empty game id",
    "bad_game_id": "a game id that breaks the id format",
    "duplicate_game_id": "a game twice in a file or in two files",
    "unknown_season": "no season column and an id that is not the league's",
    "bad_season": "a season that is not a year 1946-2100",
    "bad_season_type": "a season type not in the list",
    "bad_date": "a date that does not parse or lies outside 1946-2101",
    "bad_team": "a team abbreviation that is not 2-8 letters or digits",
    "bad_period": "a period that is not a whole number",
    "period_out_of_range": "a period outside 1-14",
    "unparseable_clock": "a clock that is not `mm:ss` or whole seconds",
    "clock_out_of_range": "a time outside its period (or beyond a game)",
    "bad_score_string": "a `SCORE` that is not `AWAY - HOME`",
    "bad_score": "a score that is not a whole number",
    "score_out_of_range": "a score outside 0-300",
    "non_monotonic_score": "a team's score goes down",
    "score_step_inconsistent": "a scoring row that does not add 1 or 2-3 points to one team",
    "clock_anomaly": "a broken clock (shared seconds, over 6:00 without points)",
    "missing_period": "a period without a scoring event",
    "ends_before_halftime": "events that stop before the end of Q2",
    "incomplete_game": "a game cut short",
    "overtime_inconsistent": "overtime without a tie, or a tie without the overtime",
    "period_score_mismatch": "an end-of-period row whose score is not the scoring rows' up to it",
    "final_score_mismatch": "a final score that disagrees with the scoring rows or `m_48`",
    "bad_final_score": "a final score that is not whole points 0-300",
    "bad_n_periods": "a period count that is not 4-14",
    "missing_margin": "an empty first-half margin",
    "bad_margin": "a margin that is not a whole number",
    "nonfinite_margin": "an infinite margin",
    "nonzero_tipoff": "`m_0` is not 0",
    "impossible_margin_change": "a margin that moves over 20 points in a minute",
    "incomplete_second_half": "some but not all of `m_25 .. m_48`",
}


class DataError(ValueError):
    """Input data that cannot become a valid game table.

    ``code`` is a stable, machine-readable name of the problem (e.g. ``non_monotonic_score``).
    """

    def __init__(
        self,
        code: str,
        problem: str,
        *,
        source: str | None = None,
        game_id: str | None = None,
        row: int | None = None,
        expected: str | None = None,
    ) -> None:
        if code not in CODES:  # a new kind of problem gets a documented code first
            raise ValueError(f"unknown DataError code {code!r}; add it to CODES")
        self.code = code
        self.problem = problem
        self.source = source
        self.game_id = game_id
        self.row = row
        self.expected = expected
        super().__init__(self._message())

    def _message(self) -> str:
        where = [self.source or "<input>"]
        if self.game_id is not None:
            where.append(f"game {_shown_id(self.game_id)}")
        if self.row is not None:
            where.append(f"row {self.row}")
        text = f"{', '.join(where)}: {self.problem}"
        if self.expected:
            text += f" (expected {self.expected})"
        return f"{text} [{self.code}]"

    def with_source(self, source: str, row: int | None = None) -> DataError:
        """The same problem in ``source`` (at ``row`` where it has no row yet)."""
        return DataError(
            self.code,
            self.problem,
            source=source,
            game_id=self.game_id,
            row=self.row if self.row is not None else row,
            expected=self.expected,
        )


def _shown_id(game_id: str) -> str:
    """A well-formed id as it is; anything else quoted and cut (it may be 5,000 characters
    of someone's choosing, or hold a line break)."""
    if re.fullmatch(GAME_ID_PATTERN, game_id):
        return game_id
    return repr(game_id[:40]) + ("..." if len(game_id) > 40 else "")


@dataclass
class LoadResult:
    """Valid games as a table (see ``schema``) and the problems of games that were skipped."""

    games: pd.DataFrame
    problems: list[DataError] = field(default_factory=list)

    @property
    def skipped_game_ids(self) -> list[str]:
        return sorted({p.game_id for p in self.problems if p.game_id is not None})


def one_per_game(problems: list[DataError]) -> list[DataError]:
    """The first problem of each game of each file (a game can break several rules; the
    first one found is the one to fix first). Problems without a game all stay."""
    seen: set[tuple[str | None, str]] = set()
    kept = []
    for problem in problems:
        if problem.game_id is not None:
            key = (problem.source, problem.game_id)
            if key in seen:
                continue
            seen.add(key)
        kept.append(problem)
    return kept


def collect(problems: list[DataError], error: DataError, on_error: OnError) -> None:
    """Raise ``error`` or record it, depending on ``on_error``."""
    if on_error == "raise":
        raise error
    problems.append(error)
