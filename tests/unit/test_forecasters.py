"""One contract for every forecaster: fit / predict / unfitted error / save -> load / bad input."""

from __future__ import annotations

import inspect
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
    """Every forecaster is fitted the same way: training games, validation games, game info."""
    X, y = data["X"], data["y"]
    return FACTORIES[name]().fit(
        X[:2500], y[:2500], X_val=X[2500:], y_val=y[2500:], info=data["info"].iloc[:2500]
    )


@pytest.mark.parametrize("name", FACTORIES)
def test_contract(name: str, data: dict[str, Any], tmp_path: Path) -> None:
    unfitted = FACTORIES[name]()
    keywords = inspect.signature(unfitted.fit).parameters
    for extra in ("X_val", "y_val", "info"):
        assert keywords[extra].kind is inspect.Parameter.KEYWORD_ONLY
        assert keywords[extra].default is None
    with pytest.raises(NotFittedError, match="fit"):
        unfitted.predict(data["X_new"])
    with pytest.raises(NotFittedError, match="fit"):
        unfitted.save(tmp_path / "unfitted")
    model = _fit(name, data)
    assert isinstance(model, type(unfitted))  # fit returns self
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
    model = Dejavu(k=50).fit(data["X"], data["y"], info=data["info"])
    analogs = model.analogs(data["X_new"][:3], n_analogs=4)
    assert list(analogs.columns) == ANALOG_COLUMNS and len(analogs) == 12
    first = analogs[analogs["query"] == 0]
    assert first["distance"].is_monotonic_increasing
    known = games.set_index("game_id")
    for row in first.itertuples(index=False):
        assert known.loc[row.game_id, "m_24"] == row.m_24
        assert known.loc[row.game_id, "home_team"] == row.home_team
        assert pd.Timestamp(known.loc[row.game_id, "game_date"]).date() == row.game_date
    with pytest.raises(ValueError, match="n_analogs"):
        model.analogs(data["X_new"][:3], n_analogs=0)


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
    model = Dejavu(k=10, max_games=2500).fit(
        data["X"][:2000], data["y"][:2000], info=info.iloc[:2000]
    )
    assert model.size == 2000
    model.add_games(data["X"][1500:3000], data["y"][1500:3000], info.iloc[1500:3000])
    assert model.size == 2500  # 3000 distinct games, the 500 oldest dropped
    assert len(set(model.ids_)) == model.size
    dates = pd.to_datetime(info["game_date"]).set_axis(info["game_id"])
    kept = dates[dates.index.isin(model.ids_)]
    dropped = dates[~dates.index.isin(model.ids_)]
    assert len(dropped) == 500 and dropped.max() <= kept.min()  # the oldest went
    aged = Dejavu(k=10, max_age_days=30).fit(data["X"], data["y"], info=info)
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
    X, y = data["X"], data["y"]
    model = LSTMForecaster(max_epochs=40, patience=2, random_state=1)
    model.fit(X[:2500], y[:2500], X_val=X[2500:], y_val=y[2500:])
    assert len(model.history_) < 40
    assert np.argmin(model.history_) == len(model.history_) - 3  # best epoch, then 2 stale
    before = model.predict(data["X_new"])
    model.warm_start = True
    model.max_epochs = 1
    model.fit(X[:2500], y[:2500], X_val=X[2500:], y_val=y[2500:])
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


def test_dejavu_with_games_adds_only_new_games_to_a_copy(data: dict[str, Any]) -> None:
    X, y, info, queries = data["X"], data["y"], data["info"], data["X_new"][:50]
    model = Dejavu(k=20).fit(X[:2000], y[:2000], info=info.iloc[:2000])
    ids, changes, before = model.ids_.copy(), model.changes_.copy(), model.predict(queries)
    # 500 known games (their margins altered: skipped, not replaced) and 1000 new ones
    y_late = y[1500:3000].copy()
    y_late[:500] += 7.0
    extended, added = model.with_games(X[1500:3000], y_late, info.iloc[1500:3000])
    assert added == 1000 and extended.size == 3000
    assert set(extended.ids_) == set(ids) | set(info["game_id"].astype(str).iloc[2000:3000])
    where = {game_id: i for i, game_id in enumerate(extended.ids_)}
    np.testing.assert_array_equal(extended.changes_[[where[i] for i in ids]], changes)
    # the original is untouched and shares no array with the copy
    np.testing.assert_array_equal(model.ids_, ids)
    np.testing.assert_array_equal(model.predict(queries), before)
    assert not np.shares_memory(model.paths_, extended.paths_)
    same, none = model.with_games(X[:100], y[:100], info.iloc[:100])
    assert none == 0 and same is not model
    np.testing.assert_array_equal(same.predict(queries), before)
    windowed, added = (
        Dejavu(k=20, max_games=2200)
        .fit(X[:2000], y[:2000], info=info.iloc[:2000])
        .with_games(X[2000:2500], y[2000:2500], info.iloc[2000:2500])
    )
    assert added == 500 and windowed.size == 2200  # the sliding window applies


def test_dejavu_with_games_bad_input(data: dict[str, Any]) -> None:
    X, y, info = data["X"], data["y"], data["info"]
    with pytest.raises(NotFittedError, match="fit"):
        Dejavu().with_games(X[:10], y[:10], info.iloc[:10])
    model = Dejavu(k=20).fit(X[:500], y[:500], info=info.iloc[:500])
    with pytest.raises(ValueError, match="rows for"):
        model.with_games(X[500:510], y[500:510], info.iloc[500:505])
    with pytest.raises(ValueError, match="lacks column"):
        model.with_games(X[500:510], y[500:510], info.iloc[500:510].drop(columns="game_id"))
    with pytest.raises(ValueError, match="info"):
        model.with_games(X[500:510], y[500:510], None)  # type: ignore[arg-type]


def test_lstm_warm_copy_leaves_the_original_alone(data: dict[str, Any]) -> None:
    X, y, queries = data["X"], data["y"], data["X_new"]
    with pytest.raises(NotFittedError, match="fit"):
        LSTMForecaster().warm_copy()
    original = LSTMForecaster(max_epochs=2, random_state=1)
    original.fit(X[:2500], y[:2500], X_val=X[2500:], y_val=y[2500:])
    before = original.predict(queries)
    copy = original.warm_copy()
    assert copy.warm_start and not original.warm_start
    np.testing.assert_array_equal(copy.predict(queries), before)
    for mine, theirs in zip(
        original.network_.parameters(), copy.network_.parameters(), strict=True
    ):
        assert mine.data_ptr() != theirs.data_ptr()
    copy.max_epochs = 1
    copy.fit(X[:2500], y[:2500], X_val=X[2500:], y_val=y[2500:])
    after = copy.predict(queries)
    assert not np.array_equal(after, before)
    assert np.abs(after - before).mean() < 1.0  # continued from the copied weights
    np.testing.assert_array_equal(original.predict(queries), before)
