from __future__ import annotations

import itertools

import pandas as pd
import pytest

from nba_forecast.data.splits import SPLIT_NAMES, SeasonSplit, order_dates, split_games

SHIPPED_SPLIT = SeasonSplit(validation=[2011], calibration=[2012], test=[2013, 2014])


def test_no_game_in_two_splits_and_every_game_placed(shipped_games: pd.DataFrame) -> None:
    splits = split_games(shipped_games, SHIPPED_SPLIT)
    ids = [set(splits[name]["game_id"]) for name in SPLIT_NAMES]
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            assert not ids[i] & ids[j]
    assert sum(len(s) for s in ids) == len(shipped_games)
    assert set(splits["test"]["season"]) == {2013, 2014}
    assert len(splits["test"]) == 2459


def test_no_split_looks_ahead(shipped_games: pd.DataFrame) -> None:
    splits = split_games(shipped_games, SHIPPED_SPLIT)
    dates = {name: order_dates(frame) for name, frame in splits.items()}
    for earlier, later in itertools.pairwise(SPLIT_NAMES):
        assert dates[earlier].max() < dates[later].min(), (earlier, later)
    for frame in splits.values():
        assert order_dates(frame).is_monotonic_increasing


def test_undated_playoffs_follow_their_regular_season(shipped_games: pd.DataFrame) -> None:
    dates = order_dates(shipped_games)
    playoffs = shipped_games["season_type"] == "playoff"
    regular_2012 = (shipped_games["season"] == 2012) & ~playoffs
    assert dates[playoffs].min() > dates[regular_2012].max()
    assert dates[playoffs].max() < dates[shipped_games["season"] == 2013].min()
    splits = split_games(shipped_games, SHIPPED_SPLIT)
    assert (splits["calibration"]["season_type"] == "playoff").sum() == 84


def test_explicit_train_seasons_leave_the_rest_unused(shipped_games: pd.DataFrame) -> None:
    split = SeasonSplit(
        train=[2008, 2009, 2010], validation=[2011], calibration=[2012], test=[2013]
    )
    splits = split_games(shipped_games, split)
    assert set(splits["train"]["season"]) == {2008, 2009, 2010}
    assert set(splits["test"]["season"]) == {2013}


def test_last_seasons_helper() -> None:
    split = SeasonSplit.last_seasons(range(1996, 2015), n_test=2)
    assert (list(split.validation), list(split.calibration), list(split.test)) == (
        [2011],
        [2012],
        [2013, 2014],
    )
    with pytest.raises(ValueError, match="at least 5 seasons"):
        SeasonSplit.last_seasons([2013, 2014])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"validation": [2012], "calibration": [2011], "test": [2013]},
        {"validation": [2011], "calibration": [2011], "test": [2013]},
        {"validation": [], "calibration": [2012], "test": [2013]},
        {"train": [2012], "validation": [2011], "calibration": [2012], "test": [2013]},
    ],
)
def test_invalid_splits_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SeasonSplit(**kwargs)


def test_split_with_missing_season_names_it(shipped_games: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no games in season"):
        split_games(shipped_games, SeasonSplit(validation=[2011], calibration=[2012], test=[2030]))
