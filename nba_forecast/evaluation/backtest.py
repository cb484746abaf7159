"""Train on the seasons before the test seasons, score every model on the test seasons.

Split (chronological): validation = the season two before the first test season (Dejavu
tuning, LSTM early stopping, ensemble weights), calibration = the season just before it
(conformal intervals), train = everything earlier. Every model gets its own conformal
interval from the calibration season, so coverage is comparable across rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from nba_forecast.data.pregame import pregame_features
from nba_forecast.data.splits import SeasonSplit, split_games
from nba_forecast.evaluation.metrics import ForecastMetrics, forecast_metrics
from nba_forecast.evaluation.paired_tests import diebold_mariano
from nba_forecast.models.base import N_INPUT_MINUTES
from nba_forecast.models.baselines import Persistence
from nba_forecast.models.conformal import AbsoluteResidualConformal
from nba_forecast.models.dejavu import Dejavu
from nba_forecast.models.ensemble import HalftimeEnsemble, default_components
from nba_forecast.models.inputs import design_matrix

logger = logging.getLogger(__name__)

DEJAVU_GRID = [(k, window) for k in (200, 800) for window in (3, 6)]
MODEL_ORDER = ["persistence", "damped_persistence", "linear", "dejavu", "lstm", "ensemble"]


@dataclass
class BacktestResult:
    test_seasons: list[int]
    table: pd.DataFrame  # one row per model
    by_season: pd.DataFrame  # model x test season
    weights: dict[str, float]
    dejavu_tuning: pd.DataFrame
    predictions: pd.DataFrame  # test games: actual, each model's forecast, ensemble interval
    seconds: float
    split_sizes: dict[str, int] = field(default_factory=dict)


def split_for_test(seasons: Sequence[int], test_seasons: Sequence[int]) -> SeasonSplit:
    available = sorted(set(int(s) for s in seasons))
    test = sorted(set(int(s) for s in test_seasons))
    missing = [s for s in test if s not in available]
    if missing:
        raise ValueError(
            f"test season(s) {missing} not in the data (have {available[0]}-{available[-1]})"
        )
    first = test[0]
    if first - 3 < available[0]:
        raise ValueError(
            f"test season {first} leaves no training seasons: need a training, a validation "
            f"({first - 2}) and a calibration ({first - 1}) season before it"
        )
    return SeasonSplit(validation=[first - 2], calibration=[first - 1], test=test)


def _tune_dejavu(X, y, Xv, yv, info) -> tuple[Dejavu, pd.DataFrame]:  # type: ignore[no-untyped-def]
    rows, best, best_mae = [], None, np.inf
    for k, window in DEJAVU_GRID:
        model = Dejavu(k=k, window=window).fit(X, y, info=info)
        mae = float(np.abs(model.predict(Xv) - yv).mean())
        rows.append({"k": k, "window": window, "validation_mae": mae})
        if mae < best_mae:
            best, best_mae = model, mae
    assert best is not None
    return best, pd.DataFrame(rows)


Design = tuple[NDArray[np.float64], NDArray[np.float64]]
Interval = tuple[NDArray[np.float64], NDArray[np.float64]]


def _with_pregame_features(games: pd.DataFrame) -> pd.DataFrame:
    games = games.reset_index(drop=True)
    return pd.concat([games, pregame_features(games)], axis=1)


def _fit_models(
    designs: dict[str, Design],
    train_games: pd.DataFrame,
    random_state: int,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], HalftimeEnsemble, pd.DataFrame]:
    """Every model of the table (but the ensemble), the fitted and conformalized ensemble,
    and the Dejavu tuning grid."""
    (X, y), (Xv, yv), (Xc, yc) = designs["train"], designs["validation"], designs["calibration"]
    say("tuning Dejavu on the validation season")
    dejavu, tuning = _tune_dejavu(X, y, Xv, yv, train_games)
    components = default_components(random_state)
    components["dejavu"] = dejavu
    say("fitting the other components (LSTM with early stopping) and the ensemble weights")
    ensemble = HalftimeEnsemble(components)
    ensemble.fit(X, y, Xv, yv, train_games, prefitted={"dejavu"}).conformalize(Xc, yc)
    models = {"persistence": Persistence().fit(X, y), **components}
    return models, ensemble, tuning


def _predict_all(
    models: dict[str, Any], ensemble: HalftimeEnsemble, X: NDArray[np.float64]
) -> dict[str, NDArray[np.float64]]:
    forecasts = {name: m.predict(X) for name, m in models.items()}
    forecasts["ensemble"] = ensemble.predict(X)
    return forecasts


def _model_row(
    name: str,
    metrics: ForecastMetrics,
    errors: NDArray[np.float64],
    persistence_errors: NDArray[np.float64],
) -> dict[str, Any]:
    """One row of the results table; persistence gets no DM test against itself."""
    dm = diebold_mariano(errors, persistence_errors)
    return {
        "model": name,
        **metrics.as_dict(),
        "vs_persistence": metrics.mae / np.abs(persistence_errors).mean() - 1,
        "dm_statistic": dm.statistic if name != "persistence" else np.nan,
        "dm_p_value": dm.p_value if name != "persistence" else np.nan,
    }


def _season_rows(
    name: str,
    seasons: NDArray[np.int_],
    actual: NDArray[np.float64],
    forecast: NDArray[np.float64],
    interval: Interval,
) -> list[dict[str, Any]]:
    lower, upper = interval
    rows = []
    for season in sorted(set(seasons)):
        mask = seasons == season
        m = forecast_metrics(actual[mask], forecast[mask], lower[mask], upper[mask])
        rows.append({"model": name, "season": season, **m.as_dict()})
    return rows


def _score_models(
    yt: NDArray[np.float64],
    yc: NDArray[np.float64],
    forecasts: dict[str, NDArray[np.float64]],
    calibration: dict[str, NDArray[np.float64]],
    seasons: NDArray[np.int_],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Interval]]:
    """Table rows, model x season rows and each model's conformal interval on the test games
    (calibrated on that model's own calibration-season residuals)."""
    persistence_errors = forecasts["persistence"] - yt
    rows, season_rows, intervals = [], [], {}
    for name in MODEL_ORDER:
        conformal = AbsoluteResidualConformal().conformalize(yc, calibration[name])
        lower, upper = conformal.interval(forecasts[name])
        metrics = forecast_metrics(yt, forecasts[name], lower, upper)
        rows.append(_model_row(name, metrics, forecasts[name] - yt, persistence_errors))
        season_rows += _season_rows(name, seasons, yt, forecasts[name], (lower, upper))
        intervals[name] = lower, upper
    return rows, season_rows, intervals


def _predictions_frame(
    test_games: pd.DataFrame,
    seasons: NDArray[np.int_],
    test: Design,
    forecasts: dict[str, NDArray[np.float64]],
    intervals: dict[str, Interval],
) -> pd.DataFrame:
    """Per test game: actual, each model's forecast and the ensemble's interval."""
    Xt, yt = test
    predictions = pd.DataFrame(
        {
            "game_id": test_games["game_id"].to_numpy(),
            "season": seasons,
            "m_18": Xt[:, N_INPUT_MINUTES - 1],
            "actual": yt,
        }
    )
    for name in MODEL_ORDER:
        predictions[name] = forecasts[name]
        if name == "ensemble":
            predictions["lower"], predictions["upper"] = intervals[name]
    return predictions


def run_backtest(
    games: pd.DataFrame,
    test_seasons: Sequence[int],
    *,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Fit all models on the seasons before ``test_seasons`` and score them on those."""
    start = time.perf_counter()
    say = progress or (lambda message: None)
    games = _with_pregame_features(games)
    splits = split_games(games, split_for_test(games["season"], test_seasons))
    if splits["train"].empty:
        raise ValueError("no training games before the validation season")
    designs = {
        name: design_matrix(splits[name]) for name in ("train", "validation", "calibration", "test")
    }
    models, ensemble, tuning = _fit_models(designs, splits["train"], random_state, say)

    say("scoring on the test seasons")
    (Xc, yc), (Xt, yt) = designs["calibration"], designs["test"]
    forecasts = _predict_all(models, ensemble, Xt)
    calibration = _predict_all(models, ensemble, Xc)
    seasons = splits["test"]["season"].astype(int).to_numpy()
    rows, season_rows, intervals = _score_models(yt, yc, forecasts, calibration, seasons)
    predictions = _predictions_frame(splits["test"], seasons, designs["test"], forecasts, intervals)
    seconds = time.perf_counter() - start
    logger.info(
        "backtest on %s: ensemble MAE %.3f in %.0fs", list(test_seasons), rows[-1]["mae"], seconds
    )
    return BacktestResult(
        test_seasons=sorted(int(s) for s in test_seasons),
        table=pd.DataFrame(rows),
        by_season=pd.DataFrame(season_rows),
        weights=ensemble.weights,
        dejavu_tuning=tuning,
        predictions=predictions,
        seconds=seconds,
        split_sizes={name: len(frame) for name, frame in splits.items()},
    )
