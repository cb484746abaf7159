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

import numpy as np
import pandas as pd

from nba_forecast.data.pregame import pregame_features
from nba_forecast.data.splits import SeasonSplit, split_games
from nba_forecast.evaluation.metrics import forecast_metrics
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
    games = pd.concat(
        [games.reset_index(drop=True), pregame_features(games.reset_index(drop=True))], axis=1
    )
    splits = split_games(games, split_for_test(games["season"], test_seasons))
    if splits["train"].empty:
        raise ValueError("no training games before the validation season")
    X, y = design_matrix(splits["train"])
    Xv, yv = design_matrix(splits["validation"])
    Xc, yc = design_matrix(splits["calibration"])
    Xt, yt = design_matrix(splits["test"])

    say("tuning Dejavu on the validation season")
    dejavu, tuning = _tune_dejavu(X, y, Xv, yv, splits["train"])
    components = default_components(random_state)
    components["dejavu"] = dejavu
    say("fitting the other components (LSTM with early stopping) and the ensemble weights")
    ensemble = HalftimeEnsemble(components)
    ensemble.fit(X, y, Xv, yv, splits["train"], prefitted={"dejavu"}).conformalize(Xc, yc)

    say("scoring on the test seasons")
    models = {"persistence": Persistence().fit(X, y), **components}
    forecasts = {name: m.predict(Xt) for name, m in models.items()}
    forecasts["ensemble"] = ensemble.predict(Xt)
    calibration = {name: m.predict(Xc) for name, m in models.items()}
    calibration["ensemble"] = ensemble.predict(Xc)

    persistence_errors = forecasts["persistence"] - yt
    rows, season_rows = [], []
    seasons = splits["test"]["season"].astype(int).to_numpy()
    predictions = pd.DataFrame(
        {
            "game_id": splits["test"]["game_id"].to_numpy(),
            "season": seasons,
            "m_18": Xt[:, N_INPUT_MINUTES - 1],
            "actual": yt,
        }
    )
    for name in MODEL_ORDER:
        conformal = AbsoluteResidualConformal().conformalize(yc, calibration[name])
        lower, upper = conformal.interval(forecasts[name])
        metrics = forecast_metrics(yt, forecasts[name], lower, upper)
        dm = diebold_mariano(forecasts[name] - yt, persistence_errors)
        rows.append(
            {
                "model": name,
                **metrics.as_dict(),
                "vs_persistence": metrics.mae / np.abs(persistence_errors).mean() - 1,
                "dm_statistic": dm.statistic if name != "persistence" else np.nan,
                "dm_p_value": dm.p_value if name != "persistence" else np.nan,
            }
        )
        for season in sorted(set(seasons)):
            mask = seasons == season
            m = forecast_metrics(yt[mask], forecasts[name][mask], lower[mask], upper[mask])
            season_rows.append({"model": name, "season": season, **m.as_dict()})
        predictions[name] = forecasts[name]
        if name == "ensemble":
            predictions["lower"], predictions["upper"] = lower, upper
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
