from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nba_forecast.data.pregame import pregame_features
from nba_forecast.data.simulate import DriftSchedule, simulate_games
from nba_forecast.models.base import NotFittedError
from nba_forecast.models.baselines import DampedPersistence, LinearForecaster, Persistence
from nba_forecast.models.conformal import AbsoluteResidualConformal
from nba_forecast.models.dejavu import Dejavu
from nba_forecast.models.ensemble import HalftimeEnsemble, simplex_least_squares
from nba_forecast.models.inputs import design_matrix
from nba_forecast.models.lstm import LSTMForecaster


@pytest.fixture(scope="module")
def exchangeable() -> dict[str, np.ndarray]:
    games = simulate_games(12_000, seed=11).sample(frac=1.0, random_state=0)  # shuffled
    X, y = design_matrix(games, features=[])
    return {"X": X, "y": y}


def test_split_conformal_covers_95_percent_on_exchangeable_games(exchangeable: dict) -> None:
    X, y = exchangeable["X"], exchangeable["y"]
    model = DampedPersistence().fit(X[:4000], y[:4000])
    conformal = AbsoluteResidualConformal().conformalize(y[4000:6000], model.predict(X[4000:6000]))
    lower, upper = conformal.interval(model.predict(X[6000:]))
    covered = ((y[6000:] >= lower) & (y[6000:] <= upper)).sum()
    n = len(y) - 6000
    # two-sided binomial test at 1%: calibration noise adds variance, so widen by sqrt(2)
    sd = np.sqrt(n * 0.95 * 0.05) * np.sqrt(1 + n / 2000)
    assert abs(covered - 0.95 * n) < 2.58 * sd
    assert stats.binomtest(int(covered), n, 0.95).pvalue > 0.001


def test_finite_sample_quantile_rank() -> None:
    # n = 19 scores 1..19: ceil(20 * 0.95) = 19 -> the largest; n = 18 -> infinite
    conformal = AbsoluteResidualConformal(0.05).conformalize(np.arange(1, 20), np.zeros(19))
    assert conformal.half_width() == 19
    small = AbsoluteResidualConformal(0.05).conformalize(np.arange(1, 19), np.zeros(18))
    assert small.half_width() == np.inf
    ten = AbsoluteResidualConformal(0.5).conformalize(np.arange(1, 11), np.zeros(10))
    assert ten.half_width() == 6  # ceil(11 * 0.5) = 6


def test_recency_weighting_follows_recent_residuals() -> None:
    rng = np.random.default_rng(0)
    old, new = rng.normal(0, 3, 3000), rng.normal(0, 6, 300)
    residuals = np.concatenate([old, new])
    equal = AbsoluteResidualConformal().conformalize(residuals, np.zeros_like(residuals))
    recent = AbsoluteResidualConformal(half_life=100).conformalize(
        residuals, np.zeros_like(residuals)
    )
    assert recent.half_width() > equal.half_width()
    assert recent.half_width() == pytest.approx(1.96 * 6, rel=0.15)


def test_aci_restores_long_run_coverage_under_drift() -> None:
    games = simulate_games(16_000, seed=5, drift=DriftSchedule(pace=(0.8, 1.3)))
    X, y = design_matrix(games, features=[])
    model = DampedPersistence().fit(X[:3000], y[:3000])
    cal_f, test_f = model.predict(X[3000:5000]), model.predict(X[5000:])
    static = AbsoluteResidualConformal().conformalize(y[3000:5000], cal_f)
    lower, upper = static.interval(test_f)
    static_miss = 1 - ((y[5000:] >= lower) & (y[5000:] <= upper)).mean()
    adaptive = AbsoluteResidualConformal(gamma=0.01).conformalize(y[3000:5000], cal_f)
    adaptive.update(y[5000:], test_f)
    adaptive_miss = adaptive.misses_ / adaptive.n_updates_
    assert static_miss > 0.07  # the variance grew: a frozen interval under-covers
    # ACI's guarantee: |miss rate - alpha| <= (max(alpha_1, 1 - alpha_1) + gamma) / (gamma T)
    bound = (0.95 + 0.01) / (0.01 * adaptive.n_updates_)
    assert abs(adaptive_miss - 0.05) <= bound + 1e-9


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-30, 30), min_size=30, max_size=200),
    st.floats(0.01, 0.3),
    st.floats(0.01, 0.3),
)
def test_interval_invariants(residuals: list[float], a: float, b: float) -> None:
    r = np.array(residuals)
    low_alpha, high_alpha = min(a, b), max(a, b)
    wide = AbsoluteResidualConformal(low_alpha).conformalize(r, np.zeros_like(r))
    narrow = AbsoluteResidualConformal(high_alpha).conformalize(r, np.zeros_like(r))
    lower, upper = narrow.interval(np.array([0.0, 5.0]))
    assert (lower <= upper).all()
    assert wide.half_width() >= narrow.half_width()  # higher confidence, wider interval


def test_conformal_errors_and_round_trip(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="conformalize"):
        AbsoluteResidualConformal().half_width()
    for kwargs in [{"alpha": 0.0}, {"alpha": 1.5}, {"half_life": 0.0}, {"gamma": -1.0}]:
        with pytest.raises(ValueError):
            AbsoluteResidualConformal(**kwargs)
    with pytest.raises(ValueError, match="non-empty"):
        AbsoluteResidualConformal().conformalize([], [])
    with pytest.raises(ValueError, match="finite"):
        AbsoluteResidualConformal().conformalize([1.0, np.nan], [0.0, 0.0])
    model = AbsoluteResidualConformal(half_life=50).conformalize(np.arange(100.0), np.zeros(100))
    model.update([3.0, 90.0], [0.0, 0.0])
    loaded = AbsoluteResidualConformal.load(model.save(tmp_path / "c"))
    assert loaded.half_width() == model.half_width() and loaded.alpha_t_ == model.alpha_t_
    with pytest.raises(ValueError, match="finite"):
        model.update([np.nan], [0.0])


def test_simplex_weights() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(0, 5, 500)
    good, noisy = y + rng.normal(0, 1, 500), y + rng.normal(0, 3, 500)
    useless = rng.normal(0, 30, 500)
    weights = simplex_least_squares(np.column_stack([good, noisy, useless]), y)
    assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all()
    # inverse-variance optimum: about 0.9 / 0.1 / 0.001
    assert weights[0] == pytest.approx(0.9, abs=0.05) and weights[2] < 0.01


@pytest.fixture(scope="module")
def fitted_ensemble(shipped_games: pd.DataFrame) -> dict:
    games = shipped_games[shipped_games["season"] >= 2010].reset_index(drop=True)
    games = pd.concat([games, pregame_features(games)], axis=1)
    X, y = design_matrix(games)
    components = {
        "damped_persistence": DampedPersistence(),
        "linear": LinearForecaster(),
        "dejavu": Dejavu(k=100),
        "lstm": LSTMForecaster(max_epochs=3),
    }
    ensemble = HalftimeEnsemble(components)
    ensemble.fit(X[:2500], y[:2500], X[2500:3500], y[2500:3500], info=games.iloc[:2500])
    ensemble.conformalize(X[3500:4500], y[3500:4500])
    return {"model": ensemble, "X": X[4500:4800], "y": y[4500:4800]}


def test_ensemble_predicts_forecast_interval_components_and_analogs(fitted_ensemble: dict) -> None:
    model, X = fitted_ensemble["model"], fitted_ensemble["X"]
    weights = model.weights
    assert set(weights) == {"damped_persistence", "linear", "dejavu", "lstm"}
    assert sum(weights.values()) == pytest.approx(1.0)
    details = model.predict_details(X)
    assert (details.lower < details.forecast).all() and (details.forecast < details.upper).all()
    combined = sum(weights[name] * f for name, f in details.components.items())
    np.testing.assert_allclose(details.forecast, combined)
    np.testing.assert_allclose(model.predict(X), details.forecast)
    analogs = model.analogs(X, n_analogs=3)
    assert analogs is not None and len(analogs) == 3 * len(X)
    assert set(analogs["game_id"]) <= set(model.components["dejavu"].ids_)
    width = (details.upper - details.lower).mean()
    assert 15 < width < 26


def test_ensemble_save_load_and_online_update(fitted_ensemble: dict, tmp_path: Path) -> None:
    model, X, y = fitted_ensemble["model"], fitted_ensemble["X"], fitted_ensemble["y"]
    loaded = HalftimeEnsemble.load(model.save(tmp_path / "ensemble"))
    a, b = model.predict_details(X), loaded.predict_details(X)
    np.testing.assert_array_equal(a.forecast, b.forecast)
    np.testing.assert_array_equal(a.upper, b.upper)
    pd.testing.assert_frame_equal(model.analogs(X), loaded.analogs(X))
    loaded.update(y, b.forecast)
    assert loaded.conformal_.n_updates_ == len(y)


def test_ensemble_errors(fitted_ensemble: dict, tmp_path: Path) -> None:
    X = fitted_ensemble["X"]
    fresh = HalftimeEnsemble({"persistence": Persistence()})
    with pytest.raises(NotFittedError, match="fit"):
        fresh.predict(X)
    with pytest.raises(NotFittedError, match="fit"):
        fresh.conformalize(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="at least one component"):
        HalftimeEnsemble({})
    with pytest.raises(ValueError, match="prefitted"):
        fresh.fit(X, np.zeros(len(X)), X, np.zeros(len(X)), prefitted={"nope"})
    with pytest.raises(FileNotFoundError, match=r"ensemble\.json"):
        HalftimeEnsemble.load(tmp_path)
    with pytest.raises(ValueError, match="columns"):
        fitted_ensemble["model"].predict(X[:, :19])
