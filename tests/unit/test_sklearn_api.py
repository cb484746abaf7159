"""The scikit-learn contract: every forecaster through ``sklearn.utils.estimator_checks``
(where a check can apply to a model of m_0..m_18), clone / get_params(deep) / set_params /
score on every model and the ensemble, save/load with str paths, ``predict_interval`` at any
level the calibration supports, and the names importable from ``nba_forecast``."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import nba_forecast
from nba_forecast.data.pregame import pregame_features
from nba_forecast.lifecycle.training import train_ensemble
from nba_forecast.models.baselines import DampedPersistence, LinearForecaster, Persistence
from nba_forecast.models.dejavu import Dejavu
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix
from nba_forecast.models.loading import load_model
from nba_forecast.models.lstm import LSTMForecaster

FACTORIES: dict[str, Any] = {
    "persistence": Persistence,
    "damped_persistence": DampedPersistence,
    "linear": LinearForecaster,
    "dejavu": lambda: Dejavu(k=20),
    "lstm": lambda: LSTMForecaster(max_epochs=2, batch_size=256),
}

# scikit-learn's checks fit on random data of 1 to 10 columns; a forecaster needs the margin
# path m_0..m_18 (19 columns) and says so. Each property such a check tests is tested on real
# games below (the test named after the arrow).
REAL_GAMES = "fits random data with under 19 columns (a model needs m_0..m_18) -> "
SHAPE_BOUND = {
    "check_dict_unchanged": "test_predict_changes_nothing",
    "check_dont_overwrite_parameters": "test_fit_keeps_parameters_and_returns_self",
    "check_dtype_object": "test_inputs_of_other_types",
    "check_estimators_dtypes": "test_inputs_of_other_types",
    "check_estimators_fit_returns_self": "test_fit_keeps_parameters_and_returns_self",
    "check_estimators_nan_inf": "test_forecasters.py::test_bad_input (NaN)",
    "check_estimators_overwrite_params": "test_fit_keeps_parameters_and_returns_self",
    "check_estimators_pickle": "models are saved as directories, never pickled: "
    "test_directory_round_trips",
    "check_f_contiguous_array_estimator": "test_inputs_of_other_types",
    "check_fit2d_1sample": "test_one_game_or_a_column_of_targets",
    "check_fit2d_predict1d": "test_predict_refuses_1d_input",
    "check_fit_check_is_fitted": "test_forecasters.py::test_contract (unfitted error)",
    "check_fit_idempotent": "test_fit_is_idempotent",
    "check_fit_score_takes_y": "test_score_is_r2",
    "check_methods_sample_order_invariance": "test_rows_are_forecast_independently",
    "check_methods_subset_invariance": "test_rows_are_forecast_independently",
    "check_n_features_in": "test_fit_keeps_parameters_and_returns_self",
    "check_n_features_in_after_fitting": "test_predict_refuses_other_columns",
    "check_pipeline_consistency": "test_works_in_a_pipeline",
    "check_positive_only_tag_during_fit": "every test here (real margins are often negative)",
    "check_readonly_memmap_input": "test_inputs_of_other_types",
    "check_regressor_data_not_an_array": "test_inputs_of_other_types",
    "check_regressors_int": "test_inputs_of_other_types",
    "check_regressors_no_decision_function": "test_fit_keeps_parameters_and_returns_self",
    "check_regressors_train": "test_score_is_r2",
    # after the shape, it would fail anyway: a column y is refused, not raveled with a warning
    "check_supervised_y_2d": "test_one_game_or_a_column_of_targets",
}
EXPECTED_FAILED = {name: REAL_GAMES + where for name, where in SHAPE_BOUND.items()} | {
    "check_estimators_unfitted": "raises nba_forecast's NotFittedError (a ValueError and "
    "AttributeError as scikit-learn's is, but not its class: scikit-learn is no runtime "
    "dependency) -> test_forecasters.py::test_contract",
}


with warnings.catch_warnings():
    # the protocol is duck-typed on purpose: scikit-learn stays a development dependency
    warnings.filterwarnings("ignore", message="Estimator .* does not inherit from `sklearn")
    SKLEARN_CHECKS = parametrize_with_checks(
        [factory() for factory in FACTORIES.values()],
        expected_failed_checks=lambda estimator: EXPECTED_FAILED,
    )


@SKLEARN_CHECKS
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


# -- the same properties on real games ------------------------------------------------------
@pytest.fixture(scope="module")
def data(shipped_games: pd.DataFrame) -> dict[str, Any]:
    recent = shipped_games[shipped_games["season"] >= 2012].reset_index(drop=True)
    X, y = design_matrix(pd.concat([recent, pregame_features(recent)], axis=1))
    return {"X": X[:1500], "y": y[:1500], "X_new": X[1500:1800], "y_new": y[1500:1800]}


@pytest.fixture(scope="module")
def fitted(data: dict[str, Any]) -> dict[str, Any]:
    return {name: factory().fit(data["X"], data["y"]) for name, factory in FACTORIES.items()}


@pytest.fixture(scope="module")
def ensemble(shipped_games: pd.DataFrame) -> HalftimeEnsemble:
    history = shipped_games[shipped_games["season"].between(2010, 2012)]
    model, _ = train_ensemble(history, validation_games=600, calibration_games=600)
    return model


@pytest.mark.parametrize("name", FACTORIES)
def test_clone_gives_an_unfitted_copy_with_the_same_parameters(
    name: str, fitted: dict[str, Any]
) -> None:
    model = fitted[name]
    twin = clone(model)  # failed before: get_params() took no `deep`
    assert type(twin) is type(model) and twin is not model
    assert twin.get_params(deep=True) == model.get_params(deep=True)
    assert not hasattr(twin, "n_features_in_")


@pytest.mark.parametrize("name", FACTORIES)
def test_fit_keeps_parameters_and_returns_self(name: str, data: dict[str, Any]) -> None:
    model = FACTORIES[name]()
    before = model.get_params(deep=True)
    assert model.fit(data["X"], data["y"]) is model
    assert model.get_params(deep=True) == before
    assert model.n_features_in_ == data["X"].shape[1]
    assert not hasattr(model, "decision_function")


@pytest.mark.parametrize("name", FACTORIES)
def test_fit_is_idempotent(name: str, data: dict[str, Any], fitted: dict[str, Any]) -> None:
    model = fitted[name]
    again = clone(model).fit(data["X"], data["y"]).fit(data["X"], data["y"])
    np.testing.assert_allclose(again.predict(data["X_new"]), model.predict(data["X_new"]))


@pytest.mark.parametrize("name", FACTORIES)
def test_rows_are_forecast_independently(name: str, data: dict[str, Any], fitted: dict) -> None:
    model, X = fitted[name], data["X_new"]
    whole = model.predict(X)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(model.predict(X[order]), whole[order], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.predict(X[:7]), whole[:7], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", FACTORIES)
def test_predict_changes_nothing(name: str, data: dict[str, Any], fitted: dict) -> None:
    model = fitted[name]
    before = {k: v for k, v in vars(model).items() if isinstance(v, np.ndarray | float | int)}
    model.predict(data["X_new"])
    after = {k: v for k, v in vars(model).items() if k in before}
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)


@pytest.mark.parametrize("name", FACTORIES)
def test_inputs_of_other_types(name: str, data: dict[str, Any], fitted: dict) -> None:
    model, X = fitted[name], data["X_new"]
    expected = model.predict(X)
    readonly = X.copy()
    readonly.flags.writeable = False
    for variant in (readonly, np.asfortranarray(X), X.astype(object), X.tolist(), pd.DataFrame(X)):
        np.testing.assert_allclose(model.predict(variant), expected, rtol=1e-6)
    whole = np.round(X)
    for dtype in (np.int64, np.int32, np.float32):
        np.testing.assert_allclose(model.predict(whole.astype(dtype)), model.predict(whole))
    with pytest.raises(ValueError, match="could not convert string"):
        model.predict(np.full(X.shape, "a", dtype=object))


@pytest.mark.parametrize("name", FACTORIES)
def test_works_in_a_pipeline(name: str, data: dict[str, Any], fitted: dict) -> None:
    pipeline = make_pipeline(clone(fitted[name])).fit(data["X"], data["y"])
    np.testing.assert_allclose(
        pipeline.predict(data["X_new"]), fitted[name].predict(data["X_new"]), rtol=1e-6
    )


@pytest.mark.parametrize("name", FACTORIES)
def test_one_game_or_a_column_of_targets(name: str, data: dict[str, Any]) -> None:
    """One game: a fitted model, or a ValueError that says why; y as a column: refused."""
    try:
        model = FACTORIES[name]().fit(data["X"][:1], data["y"][:1])
    except ValueError as error:
        assert re.search("games|database", str(error))
    else:
        assert np.isfinite(model.predict(data["X_new"])).all()
    with pytest.raises(ValueError, match=r"y must have shape \(1500,\)"):
        FACTORIES[name]().fit(data["X"], data["y"][:, None])


@pytest.mark.parametrize("name", FACTORIES)
def test_predict_refuses_1d_input(name: str, data: dict[str, Any], fitted: dict) -> None:
    with pytest.raises(ValueError, match="must be 2-d"):
        fitted[name].predict(data["X_new"][0])


@pytest.mark.parametrize("name", ["linear", "dejavu", "lstm"])
def test_predict_refuses_other_columns(name: str, data: dict[str, Any], fitted: dict) -> None:
    with pytest.raises(ValueError, match="the model was fit on 21"):
        fitted[name].predict(data["X_new"][:, :20])


@pytest.mark.parametrize("name", FACTORIES)
def test_score_is_r2(name: str, data: dict[str, Any], fitted: dict) -> None:
    model = fitted[name]
    score = model.score(data["X_new"], data["y_new"])  # failed before: no score
    assert score == pytest.approx(r2_score(data["y_new"], model.predict(data["X_new"])))
    assert 0.5 < score <= 1  # the halftime margin is mostly the margin at 6:00 Q2
    weights = np.linspace(1, 2, len(data["y_new"]))
    assert model.score(data["X_new"], data["y_new"], sample_weight=weights) == pytest.approx(
        r2_score(data["y_new"], model.predict(data["X_new"]), sample_weight=weights)
    )


@pytest.mark.parametrize("name", FACTORIES)
def test_directory_round_trips(
    name: str, data: dict[str, Any], fitted: dict, tmp_path: Path
) -> None:
    model = fitted[name]
    expected = model.predict(data["X_new"])
    saved = model.save(str(tmp_path / name))  # a str: failed before (str has no `/`)
    assert isinstance(saved, Path)
    for loaded in (type(model).load(str(saved)), load_model(str(saved))):
        np.testing.assert_allclose(loaded.predict(data["X_new"]), expected, rtol=1e-6)


def test_forecaster_directories_saved_before_still_load(
    data: dict[str, Any], fitted: dict, tmp_path: Path
) -> None:
    """Directories in the registry hold no ``n_features_in``: they load and forecast."""
    model = fitted["linear"]
    saved = model.save(tmp_path / "old")
    meta = json.loads((saved / "params.json").read_text())
    del meta["n_features_in"]
    (saved / "params.json").write_text(json.dumps(meta))
    old = LinearForecaster.load(saved)
    np.testing.assert_allclose(old.predict(data["X_new"]), model.predict(data["X_new"]))


def test_set_params_sets_and_names_the_valid_ones() -> None:
    model = Dejavu().set_params(k=7, window=4)
    assert (model.k, model.window) == (7, 4)
    with pytest.raises(ValueError, match=r"no parameter 'neighbours'; valid parameters: .*\bk\b"):
        Dejavu().set_params(neighbours=5)
    with pytest.raises(ValueError, match="valid parameters: none"):
        Persistence().set_params(alpha=1.0)


def test_a_grid_search_tunes_a_forecaster(data: dict[str, Any]) -> None:
    search = GridSearchCV(LinearForecaster(), {"alpha": [0.1, 1000.0]}, cv=TimeSeriesSplit(3)).fit(
        data["X"], data["y"]
    )
    assert search.best_params_["alpha"] in (0.1, 1000.0)
    assert search.best_estimator_.score(data["X_new"], data["y_new"]) > 0.5


# -- the ensemble --------------------------------------------------------------------------
def test_ensemble_exposes_its_components_as_parameters(ensemble: HalftimeEnsemble) -> None:
    params = ensemble.get_params(deep=True)
    assert params["lstm"] is ensemble.components["lstm"]
    assert params["lstm__hidden_size"] == ensemble.components["lstm"].hidden_size
    assert params["dejavu__k"] == ensemble.components["dejavu"].k
    assert set(ensemble.get_params(deep=False)) == {
        "alpha",
        "components",
        "conformal_half_life",
        "gamma",
    }
    twin = clone(ensemble)
    twin.set_params(lstm__hidden_size=8, dejavu=Dejavu(k=3), alpha=0.1)
    assert twin.components["lstm"].hidden_size == 8 and twin.components["dejavu"].k == 3
    assert twin.alpha == 0.1 and not hasattr(twin, "weights_")
    assert ensemble.components["lstm"].hidden_size == 16  # the original is untouched
    with pytest.raises(ValueError, match=r"no parameter 'beta'.*components: damped_persistence"):
        twin.set_params(beta=1)


def test_ensemble_score_save_and_load_with_str_paths(
    ensemble: HalftimeEnsemble, data: dict[str, Any], tmp_path: Path
) -> None:
    X, y = data["X_new"], data["y_new"]
    assert ensemble.score(X, y) == pytest.approx(r2_score(y, ensemble.predict(X)))
    ensemble.save(str(tmp_path / "model"))
    loaded = nba_forecast.load_model(str(tmp_path / "model"))
    assert isinstance(loaded, HalftimeEnsemble)
    np.testing.assert_allclose(loaded.predict_interval(X), ensemble.predict_interval(X))


def test_predict_interval_at_any_supported_level(
    ensemble: HalftimeEnsemble, data: dict[str, Any]
) -> None:
    X, y = data["X_new"], data["y_new"]
    served = ensemble.predict_details(X)
    lower, upper = ensemble.predict_interval(X)  # the default: as served, unchanged
    np.testing.assert_array_equal(lower, served.lower)
    np.testing.assert_array_equal(upper, served.upper)
    same = ensemble.predict_interval(X, alpha=ensemble.alpha)
    np.testing.assert_array_equal(same[0], served.lower)
    widths = [np.mean(np.subtract(*ensemble.predict_interval(X, alpha=a)[::-1])) for a in
              (0.5, 0.2, 0.1, 0.01)]  # fmt: skip
    assert widths == sorted(widths) and widths[0] > 0
    lower, upper = ensemble.predict_interval(X, alpha=0.5)
    coverage = np.mean((lower <= y) & (y <= upper))
    assert 0.5 - 0.1 < coverage < 0.5 + 0.1  # 300 games: about 3 binomial sds
    assert ensemble.min_alpha() == pytest.approx(1 / 601)


@pytest.mark.parametrize(
    ("alpha", "message"),
    [
        (1e-4, r"smallest level this interval supports is alpha=0\.001664"),
        (0.0, r"alpha must be a number in \(0, 1\)"),
        (1.0, r"alpha must be a number in \(0, 1\)"),
        ("0.1", r"alpha must be a number in \(0, 1\), got '0.1'"),
    ],
)
def test_predict_interval_refuses_a_level_it_cannot_give(
    ensemble: HalftimeEnsemble, data: dict[str, Any], alpha: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ensemble.predict_interval(data["X_new"], alpha=alpha)


def test_main_names_import_from_the_package() -> None:
    assert set(nba_forecast.__all__) == {"__version__", *nba_forecast._EXPORTS}
    for name in nba_forecast.__all__:
        assert getattr(nba_forecast, name) is not None
    from nba_forecast import HalftimeEnsemble as Exported
    from nba_forecast import forecast_games, load_model

    assert Exported is HalftimeEnsemble and callable(forecast_games) and callable(load_model)
    with pytest.raises(AttributeError, match="no attribute 'Forecast'"):
        nba_forecast.Forecast  # noqa: B018


def test_the_python_api_page_runs_as_written() -> None:
    """docs/python-api.md: its Python blocks, in order, as one script."""
    page = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 5
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)
    forecasts, narrow = namespace["forecasts"], namespace["narrow"]
    assert (narrow["upper"] - narrow["lower"] < forecasts["upper"] - forecasts["lower"]).all()
    assert isinstance(namespace["again"], HalftimeEnsemble)
    assert namespace["smaller"].components["lstm"].hidden_size == 8
