"""Normalised conformal intervals (a game-state scale), the ensemble's choice of it, the
refit of one component's share, and the offline comparison before an A/B test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba_forecast.lifecycle.compare import compare_forecasts
from nba_forecast.models.baselines import DampedPersistence, Persistence
from nba_forecast.models.conformal import AbsoluteResidualConformal, GameStateScale
from nba_forecast.models.ensemble import HalftimeEnsemble


def games(n: int, *, seed: int, heteroscedastic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Margin paths m_0..m_18 (+ 2 pre-game columns) and m_24 as a random walk: each game's
    step size is its own (calm or wild) when ``heteroscedastic``, else the same for all."""
    rng = np.random.default_rng(seed)
    step = rng.uniform(0.5, 2.5, size=n) if heteroscedastic else np.full(n, 1.5)
    walk = np.cumsum(rng.normal(0, 1, size=(n, 24)) * step[:, None], axis=1)
    X = np.column_stack([np.zeros(n), walk[:, :18], rng.normal(0, 3, n), np.zeros(n)])
    return X, walk[:, 23]


def winkler(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    miss = np.clip(lower - y, 0, None) + np.clip(y - upper, 0, None)
    return upper - lower + 40 * miss


def test_a_game_state_scale_gives_coverage_in_every_width_quintile() -> None:
    X_fit, y_fit = games(4000, seed=1, heteroscedastic=True)
    X_cal, y_cal = games(4000, seed=2, heteroscedastic=True)
    X, y = games(20000, seed=3, heteroscedastic=True)
    f_fit, f_cal, f = X_fit[:, 18], X_cal[:, 18], X[:, 18]
    scale = GameStateScale().fit(X_fit, np.abs(y_fit - f_fit))
    normalised = AbsoluteResidualConformal().conformalize(y_cal, f_cal, scale(X_cal))
    constant = AbsoluteResidualConformal().conformalize(y_cal, f_cal)
    lower, upper = normalised.interval(f, scale(X))
    lower0, upper0 = constant.interval(f)
    covered = (y >= lower) & (y <= upper)
    quintile = pd.qcut(upper - lower, 5, labels=False, duplicates="drop")
    by_width = pd.Series(covered).groupby(quintile).mean()
    assert len(by_width) >= 2 and ((by_width - 0.95).abs() <= 0.02).all(), by_width
    # one width for all over-covers calm games and under-covers wild ones ...
    covered0 = (y >= lower0) & (y <= upper0)
    s = scale(X)
    calm, wild = s < np.quantile(s, 0.2), s > np.quantile(s, 0.8)
    assert covered0[wild].mean() < 0.92 and covered0[calm].mean() > 0.98
    # ... and scores worse
    assert winkler(y, lower, upper).mean() < 0.9 * winkler(y, lower0, upper0).mean()


def test_the_ensemble_uses_a_scale_only_where_the_data_calls_for_one(tmp_path: Path) -> None:
    for heteroscedastic in (True, False):
        X, y = games(3000, seed=4, heteroscedastic=heteroscedastic)
        Xv, yv = games(3000, seed=5, heteroscedastic=heteroscedastic)
        Xc, yc = games(2000, seed=6, heteroscedastic=heteroscedastic)
        model = HalftimeEnsemble({"persistence": Persistence()}).fit(X, y, Xv, yv)
        model.conformalize(Xc, yc)
        scale = model.interval_scale(Xc)
        details = model.predict_details(Xc[:50])
        np.testing.assert_allclose(details.scale, scale[:50])
        half = (details.upper - details.lower) / 2
        np.testing.assert_allclose(half, model.conformal_.half_width() * details.scale)
        if heteroscedastic:
            assert model.scale_ is not None and scale.std() > 0.3
        else:
            assert model.scale_ is None and (scale == 1).all()
        # saved and loaded, the interval is the same
        again = HalftimeEnsemble.load(model.save(tmp_path / str(heteroscedastic)))
        np.testing.assert_array_equal(
            again.predict_details(Xc).lower, model.predict_details(Xc).lower
        )


def test_a_version_saved_before_interval_scales_loads_with_one_width(tmp_path: Path) -> None:
    X, y = games(2000, seed=7, heteroscedastic=True)
    model = HalftimeEnsemble({"persistence": Persistence()}).fit(X, y, X, y).conformalize(X, y)
    directory = model.save(tmp_path / "m")
    meta = json.loads((directory / "ensemble.json").read_text())
    del meta["interval_scale"]
    (directory / "ensemble.json").write_text(json.dumps(meta))
    old = HalftimeEnsemble.load(directory)
    assert old.scale_ is None and (old.interval_scale(X[:5]) == 1).all()


def test_online_updates_use_each_games_scale() -> None:
    conformal = AbsoluteResidualConformal(alpha=0.5).conformalize([0.0] * 9, [1.0] * 9)
    lower, upper = conformal.interval([0.0, 0.0], [1.0, 3.0])
    assert list(upper) == [1.0, 3.0] and list(lower) == [-1.0, -3.0]
    conformal.update([10.0], [0.0], [5.0])  # a miss by 10 at scale 5 scores 2
    assert conformal.scores_[-1] == 2.0
    for bad in ([0.0], [float("nan")], [1.0, 1.0], [-1.0]):
        with pytest.raises(ValueError, match="scale must hold"):
            conformal.update([1.0], [0.0], bad)
    with pytest.raises(ValueError, match="scale must hold"):
        conformal.interval([0.0], [0.0])


def test_a_scale_needs_enough_finite_rows() -> None:
    X, _ = games(5, seed=8, heteroscedastic=True)
    with pytest.raises(ValueError, match="one finite residual per row"):
        GameStateScale().fit(X, np.ones(5))
    with pytest.raises(ValueError, match="one finite residual per row"):
        GameStateScale().fit(X, np.ones(4))
    with pytest.raises(ValueError, match="floor"):
        GameStateScale(floor=0)


def test_reweighting_refits_one_share_and_keeps_the_others_proportions() -> None:
    X, y = games(3000, seed=9, heteroscedastic=False)
    model = HalftimeEnsemble(
        {"persistence": Persistence(), "damped": DampedPersistence(), "also": Persistence()}
    ).fit(X, y, X, y)
    model.weights_ = np.array([0.5, 0.3, 0.2])
    truth = X[:, 18]  # forecasts where "also" (the last) is perfect and the others are off
    P = np.column_stack([truth + 3, truth - 3, truth])
    twin = model.reweighted(P, truth, component="also")
    assert twin.weights["also"] == pytest.approx(1.0, abs=1e-9)
    assert model.weights["also"] == 0.2  # the original is unchanged
    useless = model.reweighted(np.column_stack([truth, truth, truth + 50]), truth, "also")
    assert useless.weights["also"] == 0.0
    assert useless.weights["persistence"] / useless.weights["damped"] == pytest.approx(0.5 / 0.3)
    with pytest.raises(ValueError, match="no component 'dejavu'"):
        model.reweighted(P, truth, component="dejavu")
    with pytest.raises(ValueError, match="one column each"):
        model.reweighted(P[:, :2], truth, component="also")
    with pytest.raises(ValueError, match="one column each"):
        model.reweighted(np.where(P > 0, np.nan, P), truth, component="also")


def test_the_offline_comparison_before_an_ab_test() -> None:
    X, y = games(600, seed=10, heteroscedastic=False)
    model = HalftimeEnsemble({"persistence": Persistence(), "damped": DampedPersistence()})
    model.fit(X, y, X, y)
    same = model.copy()
    same.weights_ = model.weights_ + np.array([1e-6, -1e-6])
    equal = compare_forecasts(model, same, X, y, tolerance=0.05)
    assert equal.equivalent and equal.mean_abs_difference < 1e-3
    assert "within the tolerance of 0.05" in equal.describe()
    other = model.copy()
    other.weights_ = np.array([1.0, 0.0]) if model.weights_[0] < 0.5 else np.array([0.0, 1.0])
    different = compare_forecasts(model, other, X, y, tolerance=0.05)
    assert not different.equivalent and "beyond the tolerance" in different.describe()
    with pytest.raises(ValueError, match="no finished games"):
        compare_forecasts(model, other, X[:0], y[:0], tolerance=0.05)


def stream(seed: int, sds: list[tuple[int, float]]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, sd, n) for n, sd in sds])


def served_winkler(conformal: AbsoluteResidualConformal, y: np.ndarray) -> float:
    """The mean Winkler score of the intervals served one game at a time (forecast 0)."""
    total = 0.0
    for value in y:
        lower, upper = conformal.interval([0.0])
        total += float(winkler(np.array([value]), lower, upper)[0])
        conformal.update([value], [0.0])
    return total / len(y)


def test_aggregated_step_sizes_beat_one_step_size_where_it_is_wrong() -> None:
    calibration = stream(11, [(2000, 5.0)])
    calm = stream(12, [(3000, 5.0)])
    jump = stream(13, [(500, 5.0), (1500, 10.0)])

    def fresh(**kwargs: object) -> AbsoluteResidualConformal:
        return AbsoluteResidualConformal(**kwargs).conformalize(calibration, np.zeros(2000))  # type: ignore[arg-type]

    # in calm games a large step only adds noise to the width; after a jump a zero step
    # waits for thousands of new scores: the aggregate is better than each where it is wrong
    assert served_winkler(fresh(), calm) < served_winkler(fresh(gamma=0.02), calm)
    assert served_winkler(fresh(), jump) < served_winkler(fresh(gamma=0.0), jump)
    experts = fresh()
    served_winkler(experts, jump)
    assert experts.gamma > 0  # the weight moved to an expert that adapts
    assert experts.n_updates_ == 2000 and 0 < experts.misses_ < 2000


def test_online_state_is_saved_carried_over_and_read_from_older_versions(
    tmp_path: Path,
) -> None:
    conformal = AbsoluteResidualConformal().conformalize(stream(14, [(500, 5.0)]), np.zeros(500))
    conformal.update(stream(15, [(300, 9.0)]), np.zeros(300))
    again = AbsoluteResidualConformal.load(conformal.save(tmp_path / "c"))
    assert again.half_width() == conformal.half_width()
    np.testing.assert_array_equal(again.alphas_, conformal.alphas_)
    # one step size (a version saved before several existed) takes over the weighted level
    single = AbsoluteResidualConformal(gamma=0.005).conformalize([0.0, 1.0], [0.0, 0.0])
    single.continue_from(conformal)
    assert single.alpha_t_ == pytest.approx(conformal.alpha_t_)
    _meta, arrays = single.state()
    old = {
        "params": {"alpha": 0.05, "half_life": None, "gamma": 0.005, "max_scores": 5000},
        "fitted": {"alpha_t": 0.07, "n_updates": 3, "misses": 1},
    }
    loaded = AbsoluteResidualConformal.from_state(old, arrays)
    assert loaded.gammas == (0.005,) and loaded.alpha_t_ == pytest.approx(0.07)
    assert loaded.n_updates_ == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gamma": 0.01, "gammas": (0.0, 0.01)}, "not both"),
        ({"gammas": ()}, "step sizes"),
        ({"gamma": -0.1}, "step sizes"),
        ({"share": 1.0}, "share in"),
        ({"eta": -1.0}, "eta must be"),
    ],
)
def test_bad_online_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AbsoluteResidualConformal(**kwargs)


def test_bad_online_state() -> None:
    conformal = AbsoluteResidualConformal().conformalize([1.0, 2.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="levels and log weights"):
        conformal.set_online_state([0.05], [0.0])
    n = len(conformal.gammas)
    with pytest.raises(ValueError, match="must be finite"):
        conformal.set_online_state([float("nan")] * n, [0.0] * n)


def test_a_scale_fitted_on_tied_games_keeps_factor_one_in_empty_bins() -> None:
    X, _ = games(1, seed=16, heteroscedastic=True)
    same = np.tile(X, (400, 1))  # every game alike: every prediction in one bin
    scale = GameStateScale().fit(same, np.random.default_rng(17).gamma(2.0, 2.0, 400))
    assert np.isfinite(scale(same)).all() and (scale(same) > 0).all()


def test_differences_that_overflow_are_refused() -> None:
    with pytest.raises(ValueError, match="differences"):
        AbsoluteResidualConformal().conformalize([1e308], [-1e308])
    conformal = AbsoluteResidualConformal().conformalize([1.0, 2.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="differences are finite"):
        conformal.update([1e308], [-1e308])
    assert np.isfinite(conformal.half_width(finite=True))  # the state is untouched
