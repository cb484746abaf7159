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

    def with_source(self, source: str) -> DataError:
        return DataError(
            self.code,
            self.problem,
            source=source,
            game_id=self.game_id,
            row=self.row,
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
