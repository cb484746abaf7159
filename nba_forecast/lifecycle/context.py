"""What every lifecycle step works on, built once by the caller (the CLI, the KFP adapter or
the replay) and passed down: nothing below reads settings or the environment.

Every step has one shape: ``step(ctx, as_of, **options) -> StepResult``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from nba_forecast.lifecycle.gitops import GitOpsTarget
from nba_forecast.lifecycle.policy import Policy
from nba_forecast.storage.object_store import ObjectStore
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.registry import Registry

MIN_YEAR = 1946  # the league's first season; earlier times overflow the step windows


def parse_as_of(text: str | None) -> dt.datetime:
    """A step's time in UTC: ISO 8601 (UTC when it has no zone) or ``now``. None, '' or an
    unresolved KFP placeholder (local runs) also mean now."""
    if not text or text == "now" or text.startswith("{{"):
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"bad as_of {text!r}: expected ISO 8601, e.g. 2015-01-15T09:00:00Z, or now"
        ) from None
    if value.year < MIN_YEAR:
        raise ValueError(f"bad as_of {text!r}: before {MIN_YEAR}, no NBA games to work on")
    return value


@dataclass(frozen=True)
class StepResult:
    """What a step did: one summary line, the version it made or acted on, numbers for the
    KFP Metrics artifact, and its full report (a Collection, MonitorReport, ValidationReport
    or Rollout) for callers that print or store it.

    ``status`` says whether the step ran, waited for a running A/B test (``blocked``) or
    found by its own rule that nothing was due (``not_due``); ``event`` names what it did
    when that is not the step's name (``refresh``, ``queued``, ``superseded``, ...);
    ``then``: the steps it started itself (a decided A/B test starts the queued one)."""

    step: str
    detail: str
    version: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    report: Any = None
    status: str = "ran"
    event: str = ""
    then: tuple[StepResult, ...] = ()

    @property
    def passed(self) -> bool:
        """For gates: did the step let its version through?"""
        return bool(getattr(self.report, "passed", self.version is not None))


class GameSource:
    """The finished games a step may learn from, loaded once per call and cached with
    their pre-game features."""

    def __init__(self, load: Callable[[], pd.DataFrame]) -> None:
        self._load = load
        self._games: pd.DataFrame | None = None
        self._featured: pd.DataFrame | None = None

    @classmethod
    def of(cls, games: pd.DataFrame) -> GameSource:
        return cls(lambda: games)

    def games(self) -> pd.DataFrame:
        if self._games is None:
            self._games = self._load()
        return self._games

    def with_features(self) -> pd.DataFrame:
        """All games sorted by date, with the pre-game features (earlier games only)."""
        if self._featured is None:
            from nba_forecast.lifecycle.training import with_features

            self._featured = with_features(self.games())
        return self._featured


@dataclass
class Context:
    registry: Registry
    games: GameSource
    gitops: GitOpsTarget
    state: ObjectStore  # lifecycle state that is not a model version (the running rollout)
    open_log: Callable[[], PredictionLog]  # opened on first use: retraining never needs it
    policy: Policy = field(default_factory=Policy)

    @functools.cached_property
    def log(self) -> PredictionLog:
        return self.open_log()
