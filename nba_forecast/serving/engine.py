"""The forecasting side of the server: which versions serve (registry aliases + the routing
file GitOps commits), the A/B arm of each game, shadow scoring, fallbacks, logging, and the
online interval adaptation (ACI) from each outcome. The replay drives this same engine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.routing import Routing
from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionRecord
from nba_forecast.storage.registry import Registry, check_version_id

logger = logging.getLogger(__name__)
RELOAD_EVERY_S = 5.0
PENDING_GAMES = 10_000  # forecasts kept for the online interval update at their outcome


class ForecastLog(Protocol):
    def record_predictions(self, records: list[PredictionRecord]) -> object: ...
    def record_outcomes(self, records: list[OutcomeRecord]) -> object: ...


Scored = tuple[str, float, float]  # version, forecast, interval scale


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Forecast:
    """One version's forecast for one game, as served (the API's response body)."""

    forecast: float
    lower: float
    upper: float
    components: dict[str, float]
    analogs: list[dict[str, Any]]
    model_version: str
    arm: str
    fallback: str | None = None
    latency_ms: float = 0.0
    scale: float = 1.0  # the interval's game-state scale (1: a typical game)


@dataclass
class ForecastEngine:
    registry: Registry
    log: Any  # a PredictionLog or SpoolingPredictionLog (ForecastLog)
    cache_dir: Path
    routing_file: Path | None = None
    team_strength: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], dt.datetime] = _utc_now
    explain: bool = True  # attach Dejavu's closest analog games to each forecast
    online_intervals: bool = True  # adapt each served interval to outcomes (ACI)
    models: dict[str, HalftimeEnsemble] = field(default_factory=dict)
    routing: Routing | None = None
    fallbacks: dict[str, int] = field(default_factory=dict)
    # per game: (version, forecast, interval scale) of each version that scored it
    _pending: OrderedDict[str, list[Scored]] = field(default_factory=OrderedDict)
    _checked: float = 0.0
    reload_error: str | None = None  # why the newest routing is not served (None: it is)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- versions -----------------------------------------------------------------------
    def _routing_now(self) -> Routing:
        """What serves: the routing file (the ConfigMap GitOps carries, mounted) when there
        is one; the registry's ``production`` alias only where none is mounted (one
        machine) or before the first routing commit (its placeholder production). Only
        version ids route (no I/O here: loading pulls and verifies them)."""
        routing = Routing.mounted(self.routing_file)
        if routing is None:
            return Routing(self.registry.resolve("production"))
        for version in filter(None, (routing.production, routing.challenger)):
            check_version_id(version)
        return routing

    def reload(self, force: bool = False) -> Routing:
        """Re-read the aliases and routing (at most every few seconds); load new versions
        before switching, so requests in flight keep a complete model. A new production
        version inherits the online interval state of the one it replaces."""
        now = time.monotonic()
        if not force and self.routing is not None and now - self._checked < RELOAD_EVERY_S:
            return self.routing
        with self._lock:
            try:
                routing = self._routing_now()
                self._load(routing)
            except Exception as error:  # a bad routing file, a registry blip, a bad version
                if self.routing is None:
                    raise
                # keep serving what is loaded; /readyz and a metric say why
                logger.warning("routing not reloaded, keeping %s: %s", self.routing, error)
                self.reload_error = f"{type(error).__name__}: {error}"
                self._checked = now
                return self.routing
            self.reload_error = None
            serving = self.routing.production if self.routing else None
            if self.online_intervals and serving and serving != routing.production:
                self.models[routing.production].carry_online_state(self.models[serving])
            self.routing, self._checked = routing, now
            return routing

    def _load(self, routing: Routing) -> None:
        for version in filter(None, (routing.production, routing.challenger)):
            if version not in self.models:
                directory = self.registry.pull(version, self.cache_dir / version)
                self.models[version] = HalftimeEnsemble.load(directory)

    # -- forecasts ------------------------------------------------------------------------
    def features(self, home: str | None, away: str | None, back_to_back: float) -> list[float]:
        strength = self.team_strength.get(home or "", 0.0) - self.team_strength.get(away or "", 0.0)
        return [strength, back_to_back]

    def _score(self, version: str, X: np.ndarray, arm: str) -> Forecast:
        start = time.perf_counter()
        model = self.models[version]
        fallback: str | None = None
        analogs: list[dict[str, Any]] = []
        scale = 1.0
        try:
            details = model.predict_details(X)
            scale = float(details.scale[0])
            parts = {k: float(v[0]) for k, v in details.components.items()}
            forecast, lower, upper = (
                float(details.forecast[0]),
                float(details.lower[0]),
                float(details.upper[0]),
            )
            analogs = model.analog_records(X, 5) if self.explain else []
        except Exception as error:  # a broken component must not break the request
            forecast, parts, fallback = self._degraded(model, X, error)
            with contextlib.suppress(Exception):  # the scale, too, may be what broke
                scale = float(model.interval_scale(X)[0])
            half = model.conformal_.half_width(finite=True) * scale
            lower, upper = forecast - half, forecast + half
            kind = fallback.split(":")[0]
            self.fallbacks[kind] = self.fallbacks.get(kind, 0) + 1
        latency = (time.perf_counter() - start) * 1000
        return Forecast(
            forecast, lower, upper, parts, analogs, version, arm, fallback, latency, scale
        )

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
        """Forecast from m_0..m_18 and the teams (pre-game features from team strength)."""
        return self.predict_row(game_id, self.row(margins, home, away, back_to_back), log=log)

    def row(
        self, margins: list[float], home: str | None, away: str | None, back_to_back: float = 0.0
    ) -> np.ndarray:
        """One game's model input row: m_0..m_18, then the pre-game features."""
        return np.array([list(margins) + self.features(home, away, back_to_back)], dtype=float)

    def score(self, game_id: str, X: np.ndarray) -> list[Forecast]:
        """The game's arm's forecast, then the other version's in shadow (when an A/B test
        runs), from the routing loaded last: no I/O."""
        routing = self.routing or self.reload()
        arm = routing.arm(game_id)
        scored = [self._score(routing.version_for(arm), X, arm)]
        if routing.challenger:
            other = routing.production if arm == "B" else routing.challenger
            scored.append(self._score(other, X, "shadow"))
        return scored

    def predict_row(self, game_id: str, X: np.ndarray, log: bool = True) -> Forecast:
        """Forecast one game's model input row (m_0..m_18 then the pre-game features): the
        game's arm serves, the other version scores in shadow, both logged as one request
        (one timestamp)."""
        self.reload()
        scored = self.score(game_id, X)
        if log:
            self.log.record_predictions(self.records(game_id, scored, inputs_digest(X)))
            self._remember(game_id, scored)
        return scored[0]

    def _remember(self, game_id: str, scored: list[Forecast]) -> None:
        self._pending[game_id] = [(f.model_version, f.forecast, f.scale) for f in scored]
        while len(self._pending) > PENDING_GAMES:
            self._pending.popitem(last=False)

    def records(self, game_id: str, scored: list[Forecast], inputs: str) -> list[PredictionRecord]:
        """The prediction records of one request (one timestamp), served forecast first."""
        at = self.clock()
        return [self._record(game_id, f, at, inputs) for f in scored]

    @staticmethod
    def _record(game_id: str, f: Forecast, at: dt.datetime, inputs: str) -> PredictionRecord:
        return PredictionRecord(
            game_id,
            at,
            f.model_version,
            f.arm,
            f.forecast,
            f.lower,
            f.upper,
            components=f.components,
            latency_ms=f.latency_ms,
            inputs=inputs,
            scale=f.scale,
        )

    def record_outcome(self, game_id: str, actual: float) -> object:
        """Log the halftime margin, and adapt the interval of every version that scored the
        game (ACI) when it is still loaded."""
        stored = self.log.record_outcomes([OutcomeRecord(game_id, actual, self.clock())])
        self.adapt(self._pending.pop(game_id, []), actual)
        return stored

    def update_interval(
        self, version: str, actual: list[float], forecast: list[float], scale: list[float]
    ) -> None:
        """Online interval steps for one loaded version (outcomes in time order)."""
        with self._lock:
            self.models[version].update(actual, forecast, scale)

    def adapt(self, scored: list[Scored], actual: float) -> None:
        """Adapt the interval of each (version, forecast, scale) that scored a game to its
        outcome (ACI), for the versions still loaded."""
        if self.online_intervals:
            with self._lock:
                for version, forecast, scale in scored:
                    if version in self.models:
                        self.models[version].update([actual], [forecast], [scale])


def inputs_digest(X: np.ndarray) -> str:
    """A short digest of one request's model inputs: a repeat of the same request is
    recognised, a different one for the same game refused."""
    return hashlib.sha256(np.ascontiguousarray(X, dtype=np.float64).tobytes()).hexdigest()[:32]
