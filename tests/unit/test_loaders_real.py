"""Loaders against the real data: the shipped margins are the ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nba_forecast.data.loaders import load_games, load_margins, load_stats_pbp
from nba_forecast.data.schema import margin_matrix
from nba_forecast.data.shipped import load_shipped_events, shipped_path
from nba_forecast.data.writer import write_games
from tests.conftest import BROKEN_PBP, GOOD_PBP, PBP_DIR


def test_shipped_games_have_documented_shape(shipped_games: pd.DataFrame) -> None:
    assert len(shipped_games) == 22_387
    assert shipped_games["game_id"].is_unique
    assert (shipped_games["m_0"] == 0).all()
    counts = shipped_games.groupby(["season", "season_type"]).size()
    assert counts[(2012, "playoff")] == 84
    assert counts[(2013, "regular")] == 1230
    change = margin_matrix(shipped_games)[:, 24] - margin_matrix(shipped_games)[:, 18]
    assert change.std() == pytest.approx(5.519, abs=0.001)
    assert np.abs(change).mean() == pytest.approx(4.414, abs=0.001)


@pytest.mark.parametrize("game_id", GOOD_PBP)
def test_stats_pbp_reproduces_shipped_margins_exactly(
    game_id: str, shipped_games: pd.DataFrame
) -> None:
    result = load_stats_pbp(PBP_DIR / f"{game_id}.csv", metadata=shipped_games)
    assert result.problems == []
    loaded = result.games.iloc[0]
    expected = shipped_games.set_index("game_id").loc[game_id]
    assert np.array_equal(margin_matrix(result.games)[0], margin_matrix(expected.to_frame().T)[0])
    for column in ("final_home", "final_away", "n_periods", "home_team", "away_team", "season"):
        assert loaded[column] == expected[column], column
    assert loaded["game_date"] == expected["game_date"]


def test_stats_pbp_directory_skips_and_names_the_two_broken_games(
    shipped_games: pd.DataFrame,
) -> None:
    result = load_stats_pbp(PBP_DIR, metadata=shipped_games, on_error="skip")
    assert sorted(result.games["game_id"]) == GOOD_PBP
    assert {p.game_id: p.code for p in result.problems} == BROKEN_PBP
    for problem in result.problems:
        assert problem.source is not None and problem.source.endswith(f"{problem.game_id}.csv")
        assert problem.row is not None and problem.row > 1


@pytest.mark.parametrize(("game_id", "code"), sorted(BROKEN_PBP.items()))
def test_stats_pbp_rejects_broken_game(game_id: str, code: str) -> None:
    with pytest.raises(Exception) as info:
        load_stats_pbp(PBP_DIR / f"{game_id}.csv")
    assert getattr(info.value, "code", None) == code
    assert game_id in str(info.value) and "row" in str(info.value)


def test_stats_pbp_without_metadata_derives_season_and_leaves_teams_unknown() -> None:
    games = load_stats_pbp(PBP_DIR / "0021300001.csv").games
    assert games.loc[0, "season"] == 2013 and games.loc[0, "season_type"] == "regular"
    assert pd.isna(games.loc[0, "home_team"]) and pd.isna(games.loc[0, "game_date"])


@pytest.mark.slow
def test_events_loader_reproduces_first_half_of_every_shipped_game(
    shipped_games: pd.DataFrame,
) -> None:
    result = load_games(shipped_path("nba_first_half_scoring_events.csv.gz"), on_error="raise")
    loaded = result.games.set_index("game_id").loc[shipped_games["game_id"]]
    assert len(loaded) == len(shipped_games) == 22_387
    assert np.array_equal(margin_matrix(loaded, 24), margin_matrix(shipped_games, 24))
    # first-half-only games: the second half is unknown, not zero
    assert np.isnan(margin_matrix(loaded)[:, 25:]).all()
    assert loaded["final_home"].isna().all()


def test_shipped_events_table_loads_typed() -> None:
    events = load_shipped_events()
    assert list(events.columns) == ["game_id", "period", "elapsed_s", "home", "away"]
    assert len(events) == 1_208_953
    assert set(events["period"].unique()) == {1, 2}


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_margins_round_trip(suffix: str, shipped_games: pd.DataFrame, tmp_path) -> None:
    sample = shipped_games.sample(300, random_state=0).reset_index(drop=True)
    path = write_games(sample, tmp_path / f"games{suffix}")
    loaded = load_margins(path).games
    pd.testing.assert_frame_equal(loaded, sample)


def test_dropped_list_agrees_with_our_loader() -> None:
    from nba_forecast.data.shipped import load_dropped_games

    dropped = load_dropped_games().set_index("game_id")
    assert len(dropped) == 36
    for game_id, code in BROKEN_PBP.items():
        assert dropped.loc[game_id, "reason"] == code  # the source pipeline's reason, too
