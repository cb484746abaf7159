"""The game record and its table form.

A game is the home-minus-away score margin at the end of every game minute, ``m_0 .. m_48``,
plus who played, when, and the final score. ``m_0`` is 0 (tip-off), ``m_18`` is the margin
with 6:00 left in the 2nd quarter (the forecast time), ``m_24`` the halftime margin (the
target), ``m_48`` the end of regulation (overtime excluded).

Table schema (one row per game; pandas dtypes, Arrow types in brackets):

=============  ======================  ==================================================
column         dtype                   meaning
=============  ======================  ==================================================
game_id        string [string]         unique id; stats.nba.com ids are 10 digits
season         Int16 [int16]           calendar year the season starts in (2013 = 2013-14)
season_type    string [string]         ``regular``, ``playoff``, ``preseason``, ...
game_date      datetime64 [date32]     local date; NaT where the source has none
home_team      string [string]         team abbreviation; <NA> where unknown
away_team      string [string]         team abbreviation; <NA> where unknown
m_0 .. m_24    Int16 [int16]           first-half minute margins, always present
m_25 .. m_48   Int16 [int16]           second-half margins; <NA> for first-half-only games
final_home     Int16 [int16]           final score including overtime; <NA> if unknown
final_away     Int16 [int16]
n_periods      Int8 [int8]             4, or 5+ with overtime; <NA> if unknown
=============  ======================  ==================================================
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

N_MINUTES = 48
FORECAST_MINUTE = 18  # 6:00 left in the 2nd quarter
HALFTIME_MINUTE = 24
HORIZON = HALFTIME_MINUTE - FORECAST_MINUTE

MARGIN_COLUMNS = [f"m_{k}" for k in range(N_MINUTES + 1)]
FIRST_HALF_COLUMNS = MARGIN_COLUMNS[: HALFTIME_MINUTE + 1]
META_COLUMNS = ["game_id", "season", "season_type", "game_date", "home_team", "away_team"]
FINAL_COLUMNS = ["final_home", "final_away", "n_periods"]
COLUMNS = META_COLUMNS + MARGIN_COLUMNS + FINAL_COLUMNS

DTYPES: dict[str, str] = {
    "game_id": "string",
    "season": "Int16",
    "season_type": "string",
    "game_date": "datetime64[s]",
    "home_team": "string",
    "away_team": "string",
    **{c: "Int16" for c in MARGIN_COLUMNS},
    "final_home": "Int16",
    "final_away": "Int16",
    "n_periods": "Int8",
}

ARROW_SCHEMA = pa.schema(
    [
        pa.field("game_id", pa.string(), nullable=False),
        pa.field("season", pa.int16(), nullable=False),
        pa.field("season_type", pa.string(), nullable=False),
        pa.field("game_date", pa.date32()),
        pa.field("home_team", pa.string()),
        pa.field("away_team", pa.string()),
        *[pa.field(c, pa.int16(), nullable=int(c[2:]) > HALFTIME_MINUTE) for c in MARGIN_COLUMNS],
        pa.field("final_home", pa.int16()),
        pa.field("final_away", pa.int16()),
        pa.field("n_periods", pa.int8()),
    ]
)

# Game ids: stats.nba.com's ten digits (``002YYGGGGG``) or any id of letters, digits, ``_`` and
# ``-`` up to 32 characters starting with a letter or digit (safe as a file name, in a URL
# path and in a spreadsheet cell: no ``=``/``+``/``@`` formula, no ``/`` or ``..``).
GAME_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"
STATS_GAME_ID_PATTERN = r"00[1-6][0-9]{7}"  # ASCII digits; type 1-6
TEAM_PATTERN = r"[A-Za-z][A-Za-z0-9]{1,7}"  # BOS, NOK, PHX ...
GAME_ID_EXPECTED = "a stats.nba.com id (10 digits) or up to 32 letters, digits, '_' or '-'"

SEASON_TYPES = {
    "1": "preseason",
    "2": "regular",
    "3": "all-star",
    "4": "playoff",
    "5": "play-in",
    "6": "cup-final",
}


@dataclass(frozen=True)
class Game:
    """One game. ``margins`` holds m_0..m_24 at least, m_0..m_48 when the game is complete."""

    game_id: str
    season: int
    season_type: str
    game_date: dt.date | None
    home_team: str | None
    away_team: str | None
    margins: tuple[int, ...]
    final_home: int | None = None
    final_away: int | None = None
    n_periods: int | None = None

    def __post_init__(self) -> None:
        if not HALFTIME_MINUTE + 1 <= len(self.margins) <= N_MINUTES + 1:
            raise ValueError(
                f"game {self.game_id}: expected {HALFTIME_MINUTE + 1} to {N_MINUTES + 1} "
                f"minute margins (m_0 through at least m_24), got {len(self.margins)}"
            )
        if self.margins[0] != 0:
            raise ValueError(
                f"game {self.game_id}: m_0 must be 0 at tip-off, got {self.margins[0]}"
            )

    @property
    def complete(self) -> bool:
        return len(self.margins) == N_MINUTES + 1

    def margin(self, minute: int) -> int:
        return self.margins[minute]


def is_game_id(text: str) -> bool:
    return re.fullmatch(GAME_ID_PATTERN, text) is not None


def season_from_game_id(game_id: str) -> tuple[int, str]:
    """Season start year and type from a stats.nba.com id (``002YYGGGGG``)."""
    if re.fullmatch(STATS_GAME_ID_PATTERN, game_id) is None:
        raise ValueError(
            f"not a stats.nba.com game id (expected 10 digits '00TYY#####'): {game_id!r}"
        )
    yy = int(game_id[3:5])
    season = 1900 + yy if yy >= 46 else 2000 + yy
    return season, SEASON_TYPES[game_id[2]]


def empty_games() -> pd.DataFrame:
    return conform(pd.DataFrame({c: [] for c in COLUMNS}))


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast a frame that has the schema's columns to the schema's dtypes and column order."""
    out = frame.loc[:, COLUMNS].copy()
    out["game_date"] = pd.to_datetime(out["game_date"], errors="raise").astype("datetime64[s]")
    for column, dtype in DTYPES.items():
        if column != "game_date":
            out[column] = out[column].astype(dtype)
    return out.reset_index(drop=True)


def games_to_frame(games: Iterable[Game]) -> pd.DataFrame:
    rows = []
    for g in games:
        margins = list(g.margins) + [None] * (N_MINUTES + 1 - len(g.margins))
        meta = [g.game_id, g.season, g.season_type, g.game_date, g.home_team, g.away_team]
        rows.append([*meta, *margins, g.final_home, g.final_away, g.n_periods])
    if not rows:
        return empty_games()
    return conform(pd.DataFrame(rows, columns=COLUMNS))


def frame_to_games(frame: pd.DataFrame) -> list[Game]:
    games = []
    margins = frame[MARGIN_COLUMNS].to_numpy(dtype=float, na_value=np.nan)
    for i, row in enumerate(frame.itertuples(index=False)):
        known = margins[i][~np.isnan(margins[i])].astype(int)
        games.append(
            Game(
                game_id=str(row.game_id),
                season=int(row.season),
                season_type=str(row.season_type),
                game_date=None if pd.isna(row.game_date) else pd.Timestamp(row.game_date).date(),
                home_team=None if pd.isna(row.home_team) else str(row.home_team),
                away_team=None if pd.isna(row.away_team) else str(row.away_team),
                margins=tuple(int(v) for v in known),
                final_home=None if pd.isna(row.final_home) else int(row.final_home),
                final_away=None if pd.isna(row.final_away) else int(row.final_away),
                n_periods=None if pd.isna(row.n_periods) else int(row.n_periods),
            )
        )
    return games


def margin_matrix(frame: pd.DataFrame, through: int = N_MINUTES) -> NDArray[np.float64]:
    """The margins m_0..m_through as a float array (NaN where unknown), one row per game."""
    columns: Sequence[str] = MARGIN_COLUMNS[: through + 1]
    return frame[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    out = conform(frame)
    out["game_date"] = out["game_date"].dt.date
    return pa.Table.from_pandas(out, schema=ARROW_SCHEMA, preserve_index=False)
