"""The one cadence table of the lifecycle. The replay clock fires steps from it, and the KFP
recurring runs are generated from it (6-field cron, seconds first, UTC)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

Period = Literal["hour", "day", "week", "month"]


@dataclass(frozen=True)
class Cadence:
    step: str
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
    Cadence("monitor", "hour", "0 0 * * * *"),
    Cadence("recalibrate", "day", "0 0 9 * * *"),
    Cadence("update-dejavu", "week", "0 0 9 * * 1"),
    Cadence("retrain", "month", "0 0 9 1 * *"),
)


def cadence(step: str) -> Cadence:
    for item in CADENCES:
        if item.step == step:
            return item
    raise KeyError(f"no cadence for step {step!r}; steps: {[c.step for c in CADENCES]}")


def due_steps(previous: dt.datetime, now: dt.datetime) -> list[str]:
    """Steps whose period changed between two clock ticks, in table order."""
    return [c.step for c in CADENCES if c.fires_between(previous, now)]
