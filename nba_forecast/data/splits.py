"""Chronological splits: train / validation / calibration / test, by date, never shuffled.

Each split is a date range; a split given by seasons starts at the first game of its first
season. Games without a date (the shipped 2012-13 playoffs) are placed the day after the last
dated game of their season, so playoffs follow their regular season.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SPLIT_NAMES = ("train", "validation", "calibration", "test")


def order_dates(games: pd.DataFrame) -> pd.Series:
    """Each game's date for ordering; undated games go after their season's last dated game."""
    dates = pd.to_datetime(games["game_date"])
    last_dated = dates.groupby(games["season"]).transform("max")
    fallback = last_dated + pd.Timedelta(days=1)
    # a season with no dated game at all: mid-year of its end year
    season_end = pd.to_datetime((games["season"].astype("int64") + 1).astype(str) + "-07-01")
    return dates.fillna(fallback).fillna(season_end)


@dataclass(frozen=True)
class SeasonSplit:
    """Seasons of each split; ``train`` defaults to every season before ``validation``."""

    validation: Sequence[int]
    calibration: Sequence[int]
    test: Sequence[int]
    train: Sequence[int] | None = None

    def __post_init__(self) -> None:
        groups = [list(self.validation), list(self.calibration), list(self.test)]
        if any(not g for g in groups):
            raise ValueError("validation, calibration and test each need at least one season")
        ordered = [s for g in groups for s in sorted(g)]
        if ordered != sorted(ordered) or len(set(ordered)) != len(ordered):
            raise ValueError(
                "splits must be chronological and disjoint: validation seasons < calibration "
                f"seasons < test seasons, got {groups}"
            )
        if self.train is not None and (not self.train or max(self.train) >= min(groups[0])):
            raise ValueError("train seasons must all come before the validation seasons")

    @classmethod
    def last_seasons(cls, seasons: Sequence[int], n_test: int = 2) -> SeasonSplit:
        """Test on the last ``n_test`` seasons, calibrate and validate on one season each."""
        unique = sorted(set(int(s) for s in seasons))
        if len(unique) < n_test + 3:
            raise ValueError(f"need at least {n_test + 3} seasons, have {len(unique)}")
        return cls(
            validation=[unique[-n_test - 2]],
            calibration=[unique[-n_test - 1]],
            test=unique[-n_test:],
        )


def split_games(games: pd.DataFrame, split: SeasonSplit) -> dict[str, pd.DataFrame]:
    """The games of each split, each sorted by date. Boundaries are dates, so no split can
    hold a game dated after a game of a later split."""
    dates = order_dates(games)
    season = games["season"].astype("int64")

    def start(seasons: Sequence[int]) -> pd.Timestamp:
        in_seasons = dates[season.isin(list(seasons))]
        if in_seasons.empty:
            raise ValueError(f"no games in season(s) {list(seasons)}")
        return in_seasons.min()

    bounds = [start(split.validation), start(split.calibration), start(split.test)]
    last_test = dates[season.isin(list(split.test))].max()
    labels = np.select(
        [dates < bounds[0], dates < bounds[1], dates < bounds[2], dates <= last_test],
        list(SPLIT_NAMES),
        default="after",
    )
    if split.train is not None:
        labels = np.where((labels == "train") & ~season.isin(list(split.train)), "unused", labels)
    ordered = games.assign(_date=dates).sort_values(["_date", "game_id"], kind="stable")
    ordered_labels = pd.Series(labels, index=games.index).loc[ordered.index]
    return {
        name: ordered[ordered_labels == name].drop(columns="_date").reset_index(drop=True)
        for name in SPLIT_NAMES
    }
