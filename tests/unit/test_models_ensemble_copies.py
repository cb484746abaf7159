"""HalftimeEnsemble's changes return copies: the original stays bit for bit as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nba_forecast.data.pregame import pregame_features
from nba_forecast.models.base import NotFittedError
from nba_forecast.models.baselines import DampedPersistence, LinearForecaster
from nba_forecast.models.conformal import AbsoluteResidualConformal
from nba_forecast.models.dejavu import Dejavu
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix
from nba_forecast.models.lstm import LSTMForecaster


@pytest.fixture(scope="module")
def data(shipped_games: pd.DataFrame) -> dict[str, Any]:
    games = shipped_games[shipped_games["season"] >= 2012].reset_index(drop=True)
    games = pd.concat([games, pregame_features(games)], axis=1).iloc[:3000]
    X, y = design_matrix(games)
    return {"X": X, "y": y, "info": games}


def _ensemble(data: dict[str, Any], components: dict[str, Any]) -> HalftimeEnsemble:
    X, y = data["X"], data["y"]
    model = HalftimeEnsemble(components)
    model.fit(X[:1500], y[:1500], X[1500:2000], y[1500:2000], info=data["info"].iloc[:1500])
    return model.conformalize(X[2000:2500], y[2000:2500])


@pytest.fixture(scope="module")
def model(data: dict[str, Any]) -> HalftimeEnsemble:
    components = {
        "damped_persistence": DampedPersistence(),
        "linear": LinearForecaster(),
        "dejavu": Dejavu(k=50),
        "lstm": LSTMForecaster(max_epochs=2, batch_size=512),
    }
    return _ensemble(data, components)


@pytest.fixture(scope="module")
def plain(data: dict[str, Any]) -> HalftimeEnsemble:
    """An ensemble without Dejavu."""
    return _ensemble(
        data, {"damped_persistence": DampedPersistence(), "linear": LinearForecaster()}
    )


def snapshot(model: HalftimeEnsemble, X: np.ndarray) -> dict[str, Any]:
    details = model.predict_details(X)
    return {
        "predict": model.predict(X),
        "forecast": details.forecast,
        "lower": details.lower,
        "upper": details.upper,
        **{f"component {name}": f for name, f in details.components.items()},
        "weights": model.weights_.copy(),
        "analogs": model.analogs(X, 3),
    }


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(after[key], value)
        else:
            np.testing.assert_array_equal(after[key], value, err_msg=key)


def saved_files(model: HalftimeEnsemble, directory: Path) -> dict[str, bytes]:
    model.save(directory)
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*.*")}


def changed_files(a: dict[str, bytes], b: dict[str, bytes]) -> set[str]:
    assert a.keys() == b.keys()  # the saved layout never changes
    return {name for name in a if a[name] != b[name]}


def test_copy_shares_nothing_and_saves_the_same_bytes(
    model: HalftimeEnsemble, data: dict[str, Any], tmp_path: Path
) -> None:
    X = data["X"][2500:]
    before = snapshot(model, X)
    twin = model.copy()
    assert twin.components is not model.components
    assert all(twin.components[n] is not m for n, m in model.components.items())
    assert twin.conformal_ is not model.conformal_
    assert not np.shares_memory(twin.weights_, model.weights_)
    assert_same(before, snapshot(twin, X))
    twin.update(data["y"][2500:], twin.predict(X))  # in place, on the copy only
    assert_same(before, snapshot(model, X))
    assert (
        changed_files(saved_files(model, tmp_path / "a"), saved_files(model.copy(), tmp_path / "b"))
        == set()
    )


def test_recalibrated_widens_on_wilder_residuals(
    model: HalftimeEnsemble, data: dict[str, Any], tmp_path: Path
) -> None:
    X, y = data["X"][2500:], data["y"][2500:]
    before = snapshot(model, X)
    moved = model.copy().update(y[:200], model.predict(X[:200]))  # alpha_t moves
    served = moved.predict(X)
    wild = served + np.random.default_rng(0).normal(0, 20, len(served))
    recalibrated = moved.recalibrated(wild, served, half_life=100.0)
    assert_same(before, snapshot(model, X))
    old, new = moved.conformal_, recalibrated.conformal_
    assert new is not old and new.half_life == 100.0
    assert (new.alpha, new.gamma, new.max_scores) == (old.alpha, old.gamma, old.max_scores)
    assert new.alpha_t_ == old.alpha_t_ != old.alpha and new.n_updates_ == 0
    details, served_details = recalibrated.predict_details(X), moved.predict_details(X)
    np.testing.assert_array_equal(details.forecast, served_details.forecast)
    assert (details.upper - details.lower).mean() > 1.5 * (
        served_details.upper - served_details.lower
    ).mean()
    files = changed_files(
        saved_files(moved, tmp_path / "a"), saved_files(recalibrated, tmp_path / "b")
    )
    assert files == {"conformal.json", "conformal_scores.npz"}


def test_with_conformal(model: HalftimeEnsemble, data: dict[str, Any]) -> None:
    X = data["X"][2500:]
    before = snapshot(model, X)
    with pytest.raises(NotFittedError, match="conformalize"):
        model.with_conformal(AbsoluteResidualConformal())
    conformal = AbsoluteResidualConformal(0.2).conformalize(np.arange(100.0), np.zeros(100))
    swapped = model.with_conformal(conformal)
    conformal.update(np.full(50, 1000.0), np.zeros(50))  # the caller's object is not shared
    assert_same(before, snapshot(model, X))
    details = swapped.predict_details(X)
    np.testing.assert_array_equal(details.forecast, before["forecast"])
    np.testing.assert_allclose(details.upper - details.forecast, 80.0)  # ceil(101 * 0.8) = 81st


def test_with_analog_games_adds_exactly_the_new_ids(
    model: HalftimeEnsemble, data: dict[str, Any], tmp_path: Path
) -> None:
    X, y, info = data["X"], data["y"], data["info"]
    before = snapshot(model, X[2500:])
    known = set(model.components["dejavu"].ids_)
    extended, added = model.with_analog_games(X[1000:2500], y[1000:2500], info.iloc[1000:2500])
    assert added == 1000  # 500 known games skipped
    new_ids = set(extended.components["dejavu"].ids_)
    assert new_ids == known | set(info["game_id"].astype(str).iloc[1500:2500])
    assert set(model.components["dejavu"].ids_) == known
    assert_same(before, snapshot(model, X[2500:]))
    np.testing.assert_array_equal(extended.weights_, model.weights_)
    files = changed_files(saved_files(model, tmp_path / "a"), saved_files(extended, tmp_path / "b"))
    assert files and all(name.startswith("components/dejavu/") for name in files)
    again, none = extended.with_analog_games(X[1000:2500], y[1000:2500], info.iloc[1000:2500])
    assert none == 0
    assert_same(snapshot(extended, X[2500:]), snapshot(again, X[2500:]))


def test_refit_weights(model: HalftimeEnsemble, data: dict[str, Any]) -> None:
    X = data["X"][2500:]
    before = snapshot(model, X)
    # outcomes that the linear component forecasts perfectly: it takes (almost) all the weight
    target = model.components["linear"].predict(X)
    refitted = model.refit_weights(X, target)
    assert_same(before, snapshot(model, X))
    assert refitted.weights["linear"] > 0.95 and sum(refitted.weights.values()) == pytest.approx(1)
    parts, original = refitted.component_forecasts(X), model.component_forecasts(X)
    for name, forecast in original.items():
        np.testing.assert_array_equal(parts[name], forecast)


def test_bad_input_to_copies(
    model: HalftimeEnsemble, plain: HalftimeEnsemble, data: dict[str, Any]
) -> None:
    X, y, info = data["X"], data["y"], data["info"]
    assert plain.analogs(X[:5]) is None
    with pytest.raises(ValueError, match="no Dejavu component"):
        plain.with_analog_games(X[:5], y[:5], info.iloc[:5])
    with pytest.raises(ValueError, match="y_val must have shape"):
        model.refit_weights(X[2500:], y[2500:-1])
    with pytest.raises(ValueError, match="columns"):
        model.refit_weights(X[2500:, :19], y[2500:])
    with pytest.raises(ValueError, match="equal"):
        model.recalibrated(y[:10], y[:9])
    unfitted = HalftimeEnsemble({"linear": LinearForecaster()})
    for change in (
        lambda: unfitted.refit_weights(X[:5], y[:5]),
        lambda: unfitted.with_analog_games(X[:5], y[:5], info.iloc[:5]),
        lambda: unfitted.recalibrated(y[:5], y[:5]),
        lambda: unfitted.analogs(X[:5]),
    ):
        with pytest.raises(NotFittedError):
            change()
