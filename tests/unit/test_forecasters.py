"""One contract for every forecaster: fit / predict / unfitted error / save -> load / bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nba_forecast.data.pregame import pregame_features
from nba_forecast.models.base import NotFittedError
from nba_forecast.models.baselines import DampedPersistence, LinearForecaster, Persistence
from nba_forecast.models.dejavu import ANALOG_COLUMNS, Dejavu
from nba_forecast.models.inputs import design_matrix
from nba_forecast.models.lstm import LSTMForecaster

FACTORIES: dict[str, Any] = {
    "persistence": Persistence,
    "damped_persistence": DampedPersistence,
    "linear": LinearForecaster,
    "dejavu": lambda: Dejavu(k=50),
    "lstm": lambda: LSTMForecaster(max_epochs=3, batch_size=512),
}


@pytest.fixture(scope="module")
def games(shipped_games: pd.DataFrame) -> pd.DataFrame:
    recent = shipped_games[shipped_games["season"] >= 2011].reset_index(drop=True)
    return pd.concat([recent, pregame_features(recent)], axis=1)


@pytest.fixture(scope="module")
def data(games: pd.DataFrame) -> dict[str, Any]:
    X, y = design_matrix(games)
    return {"X": X[:3000], "y": y[:3000], "X_new": X[3000:3400], "info": games.iloc[:3000]}


def _fit(name: str, data: dict[str, Any]) -> Any:
    model = FACTORIES[name]()
    if name == "dejavu":
        return model.fit(data["X"], data["y"], data["info"])
    return model.fit(data["X"], data["y"])


@pytest.mark.parametrize("name", FACTORIES)
def test_contract(name: str, data: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="fit"):
        FACTORIES[name]().predict(data["X_new"])
    model = _fit(name, data)
    forecast = model.predict(data["X_new"])
    assert forecast.shape == (400,) and np.isfinite(forecast).all()
    # forecasts stay near the current margin: a 6-minute change is rarely beyond 15 points
    assert np.abs(forecast - data["X_new"][:, 18]).max() < 15
    loaded = type(model).load(model.save(tmp_path / name))
    np.testing.assert_array_equal(loaded.predict(data["X_new"]), forecast)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.zeros((5, 18)), "shape"),
        (np.zeros((0, 21)), "empty"),
        (np.full((5, 21), np.nan), "NaN"),
        (np.zeros(21), "shape"),
    ],
)
def test_bad_input(name: str, X: np.ndarray, message: str, data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=message):
        FACTORIES[name]().fit(X, np.zeros(len(X)))
    model = _fit(name, data)
    with pytest.raises(ValueError, match=message):
        model.predict(X)


@pytest.mark.parametrize("name", ["linear", "dejavu", "lstm"])
def test_predict_needs_the_columns_of_fit(name: str, data: dict[str, Any]) -> None:
    model = _fit(name, data)
    with pytest.raises(ValueError, match="columns"):
        model.predict(data["X_new"][:, :20])


@pytest.mark.parametrize("name", FACTORIES)
def test_target_must_match(name: str, data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="y must have shape"):
        FACTORIES[name]().fit(data["X"], data["y"][:-1])


def test_dejavu_returns_explainable_analogs(data: dict[str, Any], games: pd.DataFrame) -> None:
    model = _fit("dejavu", data)
    forecast, analogs = model.predict(data["X_new"][:3], return_analogs=True, n_analogs=4)
    assert list(analogs.columns) == ANALOG_COLUMNS and len(analogs) == 12
    first = analogs[analogs["query"] == 0]
    assert first["distance"].is_monotonic_increasing
    known = games.set_index("game_id")
    for row in first.itertuples(index=False):
        assert known.loc[row.game_id, "m_24"] == row.m_24
        assert known.loc[row.game_id, "home_team"] == row.home_team
        assert pd.Timestamp(known.loc[row.game_id, "game_date"]).date() == row.game_date
    np.testing.assert_allclose(forecast, model.predict(data["X_new"][:3]))


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_dejavu_search_is_exact(metric: str, data: dict[str, Any]) -> None:
    model = Dejavu(k=25, window=6, metric=metric, recency=0.2).fit(data["X"], data["y"])
    queries = data["X_new"][:20]
    _indices, distances = model._neighbours(model._paths(queries), 25)
    weights = np.exp(-0.2 * np.arange(6)[::-1])
    q = queries[:, 13:19][:, None, :]
    db = data["X"][:, 13:19][None, :, :]
    brute = (
        (np.abs(q - db) * weights).sum(axis=2)
        if metric == "l1"
        else np.sqrt((((q - db) ** 2) * weights).sum(axis=2))
    )
    expected = np.sort(brute, axis=1)[:, :25]
    np.testing.assert_allclose(distances, expected, rtol=1e-4, atol=1e-3)


def test_dejavu_incremental_dedupe_and_window(data: dict[str, Any]) -> None:
    info = data["info"]
    model = Dejavu(k=10, max_games=2500).fit(data["X"][:2000], data["y"][:2000], info.iloc[:2000])
    assert model.size == 2000
    model.add_games(data["X"][1500:3000], data["y"][1500:3000], info.iloc[1500:3000])
    assert model.size == 2500  # 3000 distinct games, the 500 oldest dropped
    assert len(set(model.ids_)) == model.size
    dates = pd.to_datetime(info["game_date"]).set_axis(info["game_id"])
    kept = dates[dates.index.isin(model.ids_)]
    dropped = dates[~dates.index.isin(model.ids_)]
    assert len(dropped) == 500 and dropped.max() <= kept.min()  # the oldest went
    aged = Dejavu(k=10, max_age_days=30).fit(data["X"], data["y"], info)
    dates = pd.to_datetime(info["game_date"])
    recent = (dates >= dates.max() - pd.Timedelta(days=30)).sum()
    assert recent + dates.isna().sum() == aged.size  # undated games cannot age out


def test_dejavu_bad_parameters(data: dict[str, Any]) -> None:
    for params in [
        {"k": 0},
        {"window": 20},
        {"metric": "cosine"},
        {"aggregate": "mode"},
        {"recency": -1.0},
    ]:
        with pytest.raises(ValueError):
            Dejavu(**params).fit(data["X"], data["y"])


def test_lstm_stops_early_on_validation_and_warm_starts(data: dict[str, Any]) -> None:
    model = LSTMForecaster(max_epochs=40, patience=2, random_state=1)
    model.fit(data["X"][:2500], data["y"][:2500], data["X"][2500:], data["y"][2500:])
    assert len(model.history_) < 40
    assert np.argmin(model.history_) == len(model.history_) - 3  # best epoch, then 2 stale
    before = model.predict(data["X_new"])
    model.warm_start = True
    model.max_epochs = 1
    model.fit(data["X"][:2500], data["y"][:2500], data["X"][2500:], data["y"][2500:])
    after = model.predict(data["X_new"])
    assert not np.array_equal(before, after)
    assert np.abs(after - before).mean() < 1.0  # continued from the weights, not restarted


def test_lstm_is_reproducible_with_random_state(data: dict[str, Any]) -> None:
    a = LSTMForecaster(max_epochs=2, random_state=5).fit(data["X"], data["y"])
    b = LSTMForecaster(max_epochs=2, random_state=5).fit(data["X"], data["y"])
    np.testing.assert_array_equal(a.predict(data["X_new"]), b.predict(data["X_new"]))


def test_lstm_rejects_unavailable_cuda(data: dict[str, Any]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        LSTMForecaster(device="cuda").fit(data["X"], data["y"])


@pytest.mark.gpu
def test_lstm_trains_on_cuda(data: dict[str, Any]) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = LSTMForecaster(max_epochs=2, device="cuda").fit(data["X"], data["y"])
    assert np.isfinite(model.predict(data["X_new"])).all()
