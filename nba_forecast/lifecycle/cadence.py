"""The one cadence table of the lifecycle. The replay clock fires steps from it, and the
schedules manifest (KFP recurring runs: 6-field cron, seconds first, UTC) is generated from
it (``nba-forecast schedules render``).

Recalibration has no cadence: online adaptation (ACI) is the recalibration. Every replica
applies every logged outcome to the served interval as it arrives (the new score joins the
calibration set, the level alpha_t moves), and a version that takes over carries the state
on; a daily binomial test of coverage never fired in any replay (ACI had already corrected
what it tests). The ``recalibrate`` step and pipeline stay for runs by hand, e.g. with
``--force`` after a known break in the game (a rule change)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from nba_forecast.lifecycle.policy import Step

Period = Literal["hour", "day", "week", "month"]


@dataclass(frozen=True)
class Cadence:
    step: Step
    period: Period
    cron: str  # KFP: seconds minutes hours day-of-month month day-of-week, UTC

    def bucket(self, when: dt.datetime) -> tuple[int, ...]:
        """Identifies the period ``when`` falls in; the step fires when it changes."""
        if self.period == "hour":
            return (when.year, when.month, when.day, when.hour)
        if self.period == "day":
            return (when.year, when.month, when.day)
        if self.period == "week":
            year, week, _ = when.isocalendar()
            return (year, week)
        return (when.year, when.month)

    def fires_between(self, previous: dt.datetime, now: dt.datetime) -> bool:
        return self.bucket(previous) != self.bucket(now)


CADENCES: tuple[Cadence, ...] = (
    Cadence(Step.MONITOR, "hour", "0 0 * * * *"),
    Cadence(Step.DECIDE_ROLLOUT, "hour", "0 30 * * * *"),
    Cadence(Step.UPDATE_DEJAVU, "week", "0 0 9 * * 1"),
    Cadence(Step.RETRAIN, "month", "0 0 9 1 * *"),
)


def cadence(step: str) -> Cadence:
    for item in CADENCES:
        if item.step == step:
            return item
    raise KeyError(f"no cadence for step {step!r}; steps: {[c.step.value for c in CADENCES]}")


def due_steps(previous: dt.datetime, now: dt.datetime) -> list[Step]:
    """Steps whose period changed between two clock ticks, in table order."""
    return [c.step for c in CADENCES if c.fires_between(previous, now)]
