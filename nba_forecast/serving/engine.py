"""The forecasting side of the server: which versions serve (registry aliases + the routing
file the rollout step writes), the A/B arm of each game, shadow scoring, fallbacks, logging.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nba_forecast.lifecycle.registry import Registry
from nba_forecast.lifecycle.rollout import assign_arm
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionRecord
from nba_forecast.storage.spool import SpoolingPredictionLog

logger = logging.getLogger(__name__)
RELOAD_EVERY_S = 5.0


@dataclass
class Forecast:
    forecast: float
    lower: float
    upper: float
    components: dict[str, float]
    analogs: list[dict[str, Any]]
    model_version: str
    arm: str
    fallback: str | None = None
    latency_ms: float = 0.0


@dataclass
class Routing:
    production: str
    challenger: str | None = None
    share: float = 0.0
    salt: str = ""

    def arm(self, game_id: str) -> str:
        if not self.challenger or self.share <= 0:
            return "A"
        return assign_arm(game_id, self.salt, self.share)


@dataclass
class ForecastEngine:
    registry: Registry
    log: SpoolingPredictionLog
    cache_dir: Path
    routing_file: Path | None = None
    team_strength: dict[str, float] = field(default_factory=dict)
    models: dict[str, HalftimeEnsemble] = field(default_factory=dict)
    routing: Routing | None = None
    fallbacks: dict[str, int] = field(default_factory=dict)
    _checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- versions -----------------------------------------------------------------------
    def reload(self, force: bool = False) -> Routing:
        """Re-read the aliases and routing (at most every few seconds); load new versions
        before switching, so requests in flight keep a complete model."""
        now = time.monotonic()
        if not force and self.routing is not None and now - self._checked < RELOAD_EVERY_S:
            return self.routing
        with self._lock:
            production = self.registry.resolve("production")
            routing = Routing(production)
            if self.routing_file is not None and self.routing_file.exists():
                data = json.loads(self.routing_file.read_text())
                if data.get("production") == production and data.get("challenger"):
                    routing = Routing(
                        production,
                        data["challenger"],
                        float(data.get("challenger_share", 0.0)),
                        str(data.get("salt", "")),
                    )
            for version in filter(None, (routing.production, routing.challenger)):
                if version not in self.models:
                    directory = self.registry.pull(version, self.cache_dir / version)
                    self.models[version] = HalftimeEnsemble.load(directory)
            self.routing, self._checked = routing, now
            return routing

    # -- forecasts ------------------------------------------------------------------------
    def features(self, home: str | None, away: str | None, back_to_back: float) -> list[float]:
        strength = self.team_strength.get(home or "", 0.0) - self.team_strength.get(away or "", 0.0)
        return [strength, back_to_back]

    def _score(self, version: str, X: np.ndarray, arm: str) -> Forecast:
        start = time.perf_counter()
        model = self.models[version]
        fallback = None
        try:
            details = model.predict_details(X, n_analogs=5)
            parts = {k: float(v[0]) for k, v in details.components.items()}
            forecast, lower, upper = (
                float(details.forecast[0]),
                float(details.lower[0]),
                float(details.upper[0]),
            )
            analogs = (
                details.analogs.to_dict(orient="records") if details.analogs is not None else []
            )
        except Exception as error:  # a broken component must not break the request
            forecast, parts, fallback = self._degraded(model, X, error)
            half = model.conformal_.half_width(finite=True)
            lower, upper, analogs = forecast - half, forecast + half, []
            self.fallbacks[fallback.split(":")[0]] = (
                self.fallbacks.get(fallback.split(":")[0], 0) + 1
            )
        for analog in analogs:
            analog["game_date"] = str(analog["game_date"]) if analog.get("game_date") else None
        latency = (time.perf_counter() - start) * 1000
        return Forecast(forecast, lower, upper, parts, analogs, version, arm, fallback, latency)

    @staticmethod
    def _degraded(
        model: HalftimeEnsemble, X: np.ndarray, error: Exception
    ) -> tuple[float, dict[str, float], str]:
        parts, weights = {}, {}
        for (name, component), weight in zip(model.components.items(), model.weights_, strict=True):
            try:
                parts[name] = float(component.predict(X)[0])
                weights[name] = float(weight)
            except Exception:
                logger.warning("component %s failed: %s", name, error)
        total = sum(weights.values())
        if parts and total > 0:
            forecast = sum(parts[n] * weights[n] for n in parts) / total
            failed = sorted(set(model.components) - set(parts))
            return forecast, parts, f"components: without {', '.join(failed)}"
        return float(X[0, 18]), {}, "persistence: every component failed"

    def predict(
        self,
        game_id: str,
        margins: list[float],
        home: str | None = None,
        away: str | None = None,
        back_to_back: float = 0.0,
        log: bool = True,
    ) -> Forecast:
        routing = self.reload()
        X = np.array([list(margins) + self.features(home, away, back_to_back)], dtype=float)
        arm = routing.arm(game_id)
        served_version = (
            routing.challenger if arm == "B" and routing.challenger else routing.production
        )
        served = self._score(served_version, X, arm)
        records = [self._record(game_id, served, arm)]
        if routing.challenger:
            other = routing.production if arm == "B" else routing.challenger
            records.append(self._record(game_id, self._score(other, X, "shadow"), "shadow"))
        if log:
            self.log.record_predictions(records)
        return served

    @staticmethod
    def _record(game_id: str, f: Forecast, arm: str) -> PredictionRecord:
        return PredictionRecord(
            game_id,
            dt.datetime.now(dt.UTC),
            f.model_version,
            arm,
            f.forecast,
            f.lower,
            f.upper,
            components=f.components,
            latency_ms=f.latency_ms,
        )

    def record_outcome(self, game_id: str, actual: float) -> str:
        return self.log.record_outcomes([OutcomeRecord(game_id, actual, dt.datetime.now(dt.UTC))])
