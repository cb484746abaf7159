"""The real NBA games shipped with the package (see README, "Data").

22,387 games: regular seasons 1996-97 to 2014-15 and the 2012-13 playoffs, as minute margins,
plus every first-half scoring event, derived from stats.nba.com play-by-play.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import pandas as pd

from nba_forecast.data.errors import LoadResult
from nba_forecast.data.loaders.margins import load_margins

MARGINS_FILE = "nba_margins.csv.gz"
EVENTS_FILE = "nba_first_half_scoring_events.csv.gz"
DROPPED_FILE = "nba_margins_dropped_games.csv"


def shipped_path(name: str) -> Path:
    """Filesystem path of a shipped data file (package data)."""
    path = resources.files("nba_forecast.data") / "files" / name
    return Path(str(path))


@functools.cache
def _shipped_games() -> pd.DataFrame:
    return load_margins(shipped_path(MARGINS_FILE)).games


def load_shipped_games() -> pd.DataFrame:
    """All shipped games as a game table (schema in ``nba_forecast.data.schema``)."""
    return _shipped_games().copy()


def load_shipped_events() -> pd.DataFrame:
    """Every first-half scoring event: ``game_id, period, elapsed_s, home, away``."""
    return pd.read_csv(
        shipped_path(EVENTS_FILE),
        dtype={
            "game_id": str,
            "period": "int8",
            "elapsed_s": "int16",
            "home": "int16",
            "away": "int16",
        },
    )


def load_dropped_games() -> pd.DataFrame:
    """Games of the shipped seasons that the source pipeline dropped, with the reason."""
    return pd.read_csv(shipped_path(DROPPED_FILE), dtype={"game_id": str})


def shipped_plus(path: Path | None) -> tuple[pd.DataFrame, LoadResult | None]:
    """The shipped games plus those of a margins file (the file wins on a shared game id),
    and the file's load result: bad games there are skipped, listed in its ``problems``."""
    games = load_shipped_games()
    if path is None:
        return games, None
    extra = load_margins(path, on_error="skip")
    kept = games[~games["game_id"].isin(extra.games["game_id"])]
    return pd.concat([kept, extra.games], ignore_index=True), extra
