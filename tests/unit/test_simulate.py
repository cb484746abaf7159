from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nba_forecast.data.schema import COLUMNS, margin_matrix
from nba_forecast.data.simulate import DriftSchedule, GameModel, simulate_games


def _per_minute_variance(games: pd.DataFrame) -> float:
    return float(np.diff(margin_matrix(games), axis=1).var(axis=0).mean())


def _sd_change(games: pd.DataFrame) -> float:
    m = margin_matrix(games)
    return float((m[:, 24] - m[:, 18]).std())


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_games(30_000, seed=7)


def test_matches_real_data_within_ten_percent(
    simulated: pd.DataFrame, shipped_games: pd.DataFrame
) -> None:
    assert _per_minute_variance(simulated) == pytest.approx(
        _per_minute_variance(shipped_games), rel=0.10
    )
    assert _sd_change(simulated) == pytest.approx(_sd_change(shipped_games), rel=0.10)


def test_has_mean_reversion_and_home_advantage(simulated: pd.DataFrame) -> None:
    m = margin_matrix(simulated)
    slope = np.polyfit(m[:, 18], m[:, 24] - m[:, 18], 1)[0]
    assert -0.12 < slope < -0.01  # real data: -0.046
    assert 1.5 < m[:, 48].mean() < 5.0  # real data: 3.1


def test_games_are_consistent(simulated: pd.DataFrame) -> None:
    assert list(simulated.columns) == COLUMNS
    assert simulated["game_id"].is_unique
    assert (simulated["m_0"] == 0).all()
    regulation = simulated["n_periods"] == 4
    final = (simulated["final_home"] - simulated["final_away"]).astype(int)
    assert (final[regulation] == simulated.loc[regulation, "m_48"].astype(int)).all()
    assert (simulated.loc[~regulation, "m_48"] == 0).all()
    assert (final != 0).all()
    assert 0.01 < (~regulation).mean() < 0.10
    assert (simulated["home_team"] != simulated["away_team"]).all()
    assert simulated["game_date"].is_monotonic_increasing


def test_seed_makes_it_deterministic() -> None:
    a, b = simulate_games(500, seed=3), simulate_games(500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not simulate_games(500, seed=4).equals(a)


def test_drift_changes_variance_as_scheduled() -> None:
    games = simulate_games(24_000, seed=1, drift=DriftSchedule(pace=(0.85, 1.2)))
    early, late = games.iloc[:6000], games.iloc[-6000:]
    ratio = _per_minute_variance(late) / _per_minute_variance(early)
    # variance scales with possessions: mean pace of the last quarter over the first
    expected = (0.85 + 0.35 * 0.875) / (0.85 + 0.35 * 0.125)
    assert ratio == pytest.approx(expected, rel=0.08)
    assert _per_minute_variance(games.iloc[:6000]) < _per_minute_variance(games.iloc[6000:12000])


def test_three_point_drift_raises_variance_not_scoring_much() -> None:
    games = simulate_games(20_000, seed=2, drift=DriftSchedule(three_share=(1.0, 2.0)))
    early, late = games.iloc[:5000], games.iloc[-5000:]
    assert _per_minute_variance(late) > 1.05 * _per_minute_variance(early)
    total = (games["final_home"] + games["final_away"]).astype(float)
    assert total.iloc[-5000:].mean() == pytest.approx(total.iloc[:5000].mean(), rel=0.05)


def test_drift_parse() -> None:
    schedule = DriftSchedule.parse("pace=1:1.1, home_advantage=4.5:2")
    assert schedule.pace == (1.0, 1.1) and schedule.home_advantage == (4.5, 2.0)
    assert DriftSchedule.parse("") == DriftSchedule()
    for bad in ["speed=1:2", "pace=1", "pace=a:b", "pace=0:1"]:
        with pytest.raises(ValueError):
            DriftSchedule.parse(bad)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        simulate_games(0)
    with pytest.raises(ValueError, match="sum to less than 1"):
        GameModel(p_two=0.9)
    with pytest.raises(ValueError, match="below 0"):
        simulate_games(10, drift=DriftSchedule(three_share=(1.0, 8.0)))
