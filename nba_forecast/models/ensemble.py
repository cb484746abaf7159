"""The served model: a weighted average of component forecasts with a conformal interval.

Components are fitted on the training games; their weights (non-negative, summing to 1) by
least squares on the validation games; the interval from the ensemble's absolute residuals on
the calibration games, normalised by a game-state scale (``GameStateScale``) when one,
fitted on the validation games, gives a lower Winkler score on held-out validation games
than one width for every game (else the interval is the same width for every game). Saved
as a directory: ``ensemble.json`` (names, weights, parameters, the interval scale),
``components/<name>/`` (each component's own directory) and the conformal state."""

from __future__ import annotations

import logging
from collections.abc import Collection
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

from nba_forecast.models.base import (
    NotFittedError,
    PathLike,
    check_margins,
    check_target,
    read_meta,
    write_meta,
)
from nba_forecast.models.baselines import DampedPersistence, LinearForecaster, Persistence
from nba_forecast.models.conformal import AbsoluteResidualConformal, GameStateScale
from nba_forecast.models.dejavu import Dejavu
from nba_forecast.models.estimator import NamedEstimators
from nba_forecast.models.lstm import LSTMForecaster

logger = logging.getLogger(__name__)

ENSEMBLE_FILE = "ensemble.json"
COMPONENT_CLASSES: dict[str, Any] = {
    cls.__name__: cls
    for cls in (Persistence, DampedPersistence, LinearForecaster, Dejavu, LSTMForecaster)
}


@dataclass
class EnsemblePrediction:
    forecast: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    components: dict[str, NDArray[np.float64]]
    scale: NDArray[np.float64]  # each game's interval scale s(x) (1: a typical game)


def default_components(random_state: int = 0) -> dict[str, Any]:
    return {
        "damped_persistence": DampedPersistence(),
        "linear": LinearForecaster(),
        "dejavu": Dejavu(),
        "lstm": LSTMForecaster(random_state=random_state),
    }


def simplex_least_squares(predictions: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray:
    """Weights w >= 0, sum(w) = 1 minimising ||predictions @ w - y||^2."""
    k = predictions.shape[1]
    result = minimize(
        lambda w: float(np.mean((predictions @ w - y) ** 2)),
        np.full(k, 1.0 / k),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
    )
    weights = np.clip(result.x, 0.0, None)
    return weights / weights.sum()


def _winkler(y: NDArray, lower: NDArray, upper: NDArray, alpha: float) -> float:
    miss = np.clip(lower - y, 0.0, None) + np.clip(y - upper, 0.0, None)
    return float(np.mean(upper - lower + (2.0 / alpha) * miss))


class HalftimeEnsemble(NamedEstimators):
    """Components by name (``components``), their weights, and a conformal interval at level
    ``alpha``. scikit-learn's protocol: ``get_params(deep=True)`` exposes each component as
    ``name`` and ``name__parameter`` (``set_params(lstm__hidden_size=32)``), ``clone`` gives
    an unfitted copy, ``score`` is R^2."""

    def __init__(
        self,
        components: dict[str, Any] | None = None,
        *,
        alpha: float = 0.05,
        conformal_half_life: float | None = None,
        gamma: float | None = None,  # one ACI step size; None: several, aggregated
    ) -> None:
        self.components = components if components is not None else default_components()
        if not self.components:
            raise ValueError("the ensemble needs at least one component")
        self.alpha = alpha
        self.conformal_half_life = conformal_half_life
        self.gamma = gamma

    def _require(self, attribute: str, step: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(f"HalftimeEnsemble: call {step} first")

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        X_val: ArrayLike,
        y_val: ArrayLike,
        info: pd.DataFrame | None = None,
        prefitted: Collection[str] = (),
    ) -> Self:
        """Fit the components on (X, y) and their weights on (X_val, y_val). ``info`` (game
        id, date, teams of X) lets Dejavu explain its forecasts. Components named in
        ``prefitted`` (e.g. tuned beforehand on the same games) are not fitted again. Every
        component is fitted the same way: ``fit(X, y, X_val=..., y_val=..., info=...)``."""
        X_, X_v = check_margins(X), check_margins(X_val, "X_val")
        y_, y_v = check_target(y, len(X_)), check_target(y_val, len(X_v))
        unknown = set(prefitted) - set(self.components)
        if unknown:
            raise ValueError(f"prefitted names no component: {sorted(unknown)}")
        for name, model in self.components.items():
            if name not in prefitted:
                model.fit(X_, y_, X_val=X_v, y_val=y_v, info=info)
        self.weights_ = self._validation_weights(X_v, y_v)
        self.n_features_in_ = X_.shape[1]
        self.scale_ = self._state_scale(X_v, y_v)
        return self

    def _state_scale(
        self, X_val: NDArray[np.float64], y_val: NDArray[np.float64]
    ) -> GameStateScale | None:
        """A ``GameStateScale`` fitted on the validation games if, fitted and calibrated on
        their first half, it beats one width for all games on the second half (Winkler
        score); else None."""
        f = self._point(X_val)
        half = len(y_val) // 2
        try:
            trial = GameStateScale().fit(X_val[:half], np.abs(y_val[:half] - f[:half]))
        except ValueError:
            return None
        scores = {}
        for name, scale in (("constant", None), ("state", trial)):
            conformal = AbsoluteResidualConformal(self.alpha).conformalize(
                y_val[:half], f[:half], None if scale is None else scale(X_val[:half])
            )
            lower, upper = conformal.interval(
                f[half:], None if scale is None else scale(X_val[half:])
            )
            scores[name] = _winkler(y_val[half:], lower, upper, self.alpha)
        logger.info("interval scale: Winkler %s", {k: round(v, 3) for k, v in scores.items()})
        if scores["state"] >= scores["constant"]:
            return None
        return GameStateScale().fit(X_val, np.abs(y_val - f))

    def interval_scale(self, X: ArrayLike) -> NDArray[np.float64]:
        """Each row's interval scale s(x): ones when the intervals do not depend on the
        game's state."""
        X_ = check_margins(X, n_columns=self.n_features_in_)
        scale = getattr(self, "scale_", None)
        return np.ones(len(X_)) if scale is None else np.asarray(scale(X_), dtype=np.float64)

    def _validation_weights(
        self, X_val: NDArray[np.float64], y_val: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        validation = np.column_stack([m.predict(X_val) for m in self.components.values()])
        return simplex_least_squares(validation, y_val)

    def conformalize(self, X_cal: ArrayLike, y_cal: ArrayLike) -> Self:
        """Calibrate the interval on games not used for fitting, oldest first."""
        self._require("weights_", "fit")
        X_ = check_margins(X_cal, "X_cal", n_columns=self.n_features_in_)
        y_ = check_target(y_cal, len(X_))
        self.conformal_ = AbsoluteResidualConformal(
            self.alpha, half_life=self.conformal_half_life, gamma=self.gamma
        ).conformalize(y_, self._point(X_), self.interval_scale(X_))
        return self

    def component_forecasts(self, X: ArrayLike) -> dict[str, NDArray[np.float64]]:
        self._require("weights_", "fit")
        X_ = check_margins(X, n_columns=self.n_features_in_)
        return {name: model.predict(X_) for name, model in self.components.items()}

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Point forecasts of the halftime margin."""
        return self._point(X)

    def predict_details(self, X: ArrayLike, alpha: float | None = None) -> EnsemblePrediction:
        """Forecast, interval (at level ``alpha``; None: the calibrated level, as served)
        and each component's forecast."""
        self._require("conformal_", "conformalize")
        parts = self.component_forecasts(X)
        forecast = self._combine(parts)
        scale = self.interval_scale(X)
        lower, upper = self.conformal_.interval(forecast, scale, alpha)
        return EnsemblePrediction(forecast, lower, upper, parts, scale)

    def predict_interval(
        self, X: ArrayLike, alpha: float | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lower and upper bounds of the (1 - alpha) interval of each game. None: the
        calibrated level with its online adaptation (what serving gives); another level:
        the split-conformal quantile of the calibration scores (``min_alpha()`` is the
        smallest they support; below it a ValueError)."""
        details = self.predict_details(X, alpha)
        return details.lower, details.upper

    def min_alpha(self) -> float:
        """The smallest interval level ``predict_interval`` supports."""
        self._require("conformal_", "conformalize")
        return self.conformal_.min_alpha()

    def analogs(self, X: ArrayLike, n_analogs: int = 5) -> pd.DataFrame | None:
        """Dejavu's ``n_analogs`` closest historical games to each query (see
        ``Dejavu.analogs``); None when the ensemble has no Dejavu component."""
        self._require("weights_", "fit")
        name = self.dejavu_name()
        if name is None:
            return None
        X_ = check_margins(X, n_columns=self.n_features_in_)
        analogs: pd.DataFrame = self.components[name].analogs(X_, n_analogs)
        return analogs

    def analog_records(self, X: ArrayLike, n_analogs: int = 5) -> list[dict[str, Any]]:
        """``analogs`` of one query as plain dicts ([] without a Dejavu component)."""
        self._require("weights_", "fit")
        name = self.dejavu_name()
        if name is None:
            return []
        records: list[dict[str, Any]] = self.components[name].analog_records(X, n_analogs)
        return records

    def dejavu_name(self) -> str | None:
        return next((n for n, m in self.components.items() if isinstance(m, Dejavu)), None)

    def _combine(self, parts: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        return np.column_stack(list(parts.values())) @ self.weights_

    def _point(self, X: ArrayLike) -> NDArray[np.float64]:
        return self._combine(self.component_forecasts(X))

    def update(self, y_true: ArrayLike, y_pred: ArrayLike, scale: ArrayLike | None = None) -> Self:
        """Online interval adaptation (ACI) with new outcomes, the forecasts served for them
        and their interval scales (``EnsemblePrediction.scale``; ones when None)."""
        self._require("conformal_", "conformalize")
        self.conformal_.update(y_true, y_pred, scale)
        return self

    def carry_online_state(self, previous: HalftimeEnsemble) -> Self:
        """Continue the online adaptation where ``previous`` (the model this one replaces in
        serving) left it: its adapted level alpha_t."""
        self._require("conformal_", "conformalize")
        previous._require("conformal_", "conformalize")
        self.conformal_.continue_from(previous.conformal_)
        return self

    @property
    def weights(self) -> dict[str, float]:
        self._require("weights_", "fit")
        return {name: float(w) for name, w in zip(self.components, self.weights_, strict=True)}

    # -- changes, as copies ----------------------------------------------------------------
    def copy(self) -> Self:
        """A deep copy: it shares no object with ``self``."""
        return deepcopy(self)

    def with_conformal(self, conformal: AbsoluteResidualConformal) -> Self:
        """A copy with (a copy of) the calibrated ``conformal`` as its interval."""
        self._require("weights_", "fit")
        conformal._require_calibrated()
        twin = self.copy()
        twin.conformal_ = deepcopy(conformal)
        return twin

    def recalibrated(
        self,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        *,
        half_life: float | None = 500.0,
        scale: ArrayLike | None = None,
    ) -> Self:
        """A copy whose interval is calibrated on recent outcomes ``y_true`` and the forecasts
        ``y_pred`` served for them (oldest first) with their interval scales: absolute
        residuals, recency-weighted with ``half_life`` games; alpha, step sizes and max_scores
        kept, the online state (each step size's level and weight) carried forward."""
        self._require("conformal_", "conformalize")
        old = self.conformal_
        new = AbsoluteResidualConformal(
            old.alpha,
            half_life=half_life,
            gammas=old.gammas,
            eta=old.eta,
            share=old.share,
            max_scores=old.max_scores,
        ).conformalize(y_true, y_pred, scale)
        new.continue_from(old)
        logger.info(
            "recalibrated on %d outcomes: half-width %.2f -> %.2f",
            len(np.asarray(y_true)),
            old.half_width(),
            new.half_width(),
        )
        return self.with_conformal(new)

    def with_analog_games(self, X: ArrayLike, y: ArrayLike, info: pd.DataFrame) -> tuple[Self, int]:
        """A copy whose Dejavu database also holds the finished games (X, y, ``info`` with
        game_id, game_date, home_team, away_team), and how many were added: games already in
        the database are skipped; Dejavu's sliding window applies."""
        self._require("weights_", "fit")
        name = self.dejavu_name()
        if name is None:
            raise ValueError(
                f"the ensemble has no Dejavu component (it has {list(self.components)}): "
                "there is no analog database to add games to"
            )
        dejavu, added = self.components[name].with_games(X, y, info)
        twin = self.copy()
        twin.components[name] = dejavu
        return twin, added

    def refit_weights(self, X_val: ArrayLike, y_val: ArrayLike) -> Self:
        """A copy with the component weights refitted (simplex least squares) on the games
        (X_val, y_val); the components and the interval's state are not changed."""
        self._require("weights_", "fit")
        X_v = check_margins(X_val, "X_val", n_columns=self.n_features_in_)
        y_v = check_target(y_val, len(X_v), "y_val")
        twin = self.copy()
        twin.weights_ = twin._validation_weights(X_v, y_v)
        return twin

    def reweighted(self, component_forecasts: ArrayLike, y: ArrayLike, component: str) -> Self:
        """A copy in which ``component``'s weight is refitted (least squares on [0, 1]) and
        the others keep their proportions, on forecasts the components already made (one
        column per component in the ensemble's order; e.g. as served, so out of sample).
        Refitting one share, not all, keeps collinear components from trading weight on
        noise."""
        self._require("weights_", "fit")
        P = np.asarray(component_forecasts, dtype=np.float64)
        y_ = check_target(y, len(P))
        if P.ndim != 2 or P.shape[1] != len(self.components) or not np.isfinite(P).all():
            raise ValueError(
                f"need finite forecasts of the {len(self.components)} components, one column "
                f"each, got shape {P.shape}"
            )
        names = list(self.components)
        if component not in names:
            raise ValueError(f"no component {component!r}; the ensemble has {names}")
        k = names.index(component)
        rest = np.delete(self.weights_, k)
        if rest.sum() <= 0:
            return self.copy()  # the component is all there is: nothing to share
        rest = rest / rest.sum()
        base = np.delete(P, k, axis=1) @ rest
        step = P[:, k] - base
        denominator = float(step @ step)
        share = 0.0 if denominator == 0 else float(np.clip(step @ (y_ - base) / denominator, 0, 1))
        twin = self.copy()
        twin.weights_ = np.insert(rest * (1 - share), k, share)
        return twin

    # -- persistence ---------------------------------------------------------------------
    def save(self, directory: PathLike) -> Path:
        self._require("conformal_", "conformalize")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        scale = getattr(self, "scale_", None)
        for name, model in self.components.items():
            model.save(directory / "components" / name)
        fields = {
            "params": {
                "alpha": self.alpha,
                "conformal_half_life": self.conformal_half_life,
                "gamma": self.gamma,
            },
            # lists keep the component order, so the weighted sum is bit-for-bit the same
            "components": [[name, type(m).__name__] for name, m in self.components.items()],
            "weights": [float(w) for w in self.weights_],
            "n_features_in": self.n_features_in_,
            "interval_scale": None if scale is None else scale.state(),
        }
        write_meta(directory, self, fields, ENSEMBLE_FILE)
        self.conformal_.save(directory)
        return directory

    @classmethod
    def load(cls, directory: PathLike) -> Self:
        directory = Path(directory)
        meta = read_meta(directory, cls, ENSEMBLE_FILE)
        components = {}
        for name, class_name in meta["components"]:
            if class_name not in COMPONENT_CLASSES:
                raise ValueError(f"{directory}: unknown component class {class_name!r}")
            components[name] = COMPONENT_CLASSES[class_name].load(directory / "components" / name)
        model = cls(components, **meta["params"])
        model.weights_ = np.array(meta["weights"], dtype=np.float64)
        model.n_features_in_ = int(meta["n_features_in"])
        scale = meta.get("interval_scale")  # absent in versions saved before it existed
        model.scale_ = None if scale is None else GameStateScale.from_state(scale)
        model.conformal_ = AbsoluteResidualConformal.load(directory)
        return model
