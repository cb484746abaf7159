"""What a basketball score can do, as bounds the server checks every input against.

Calibrated on the shipped real games (22,387 first halves, 1.2M scoring events):

* a team scores at most ``TEAM_BURST`` points plus ``TEAM_RATE`` points per second between
  any two moments (the data needs 5.8 + 0.1/s; bursts are and-ones, free throws after a
  flagrant, a three at the same second as a steal);
* the margin moves at most ``MARGIN_BURST`` points plus ``MARGIN_RATE`` points per minute
  between any two minutes (the data needs 11.5 + 2.5/min), so a ramp to +80 by minute 18
  is refused while every real path passes;
* a live forecast needs the game followed from its start: the first update within
  ``FEED_START_S`` of tip-off and no silence longer than ``FEED_SILENCE_S`` before 6:00 of
  Q2 (real scoreless stretches before then: at most 295 s; a first basket: at most 256 s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

TEAM_BURST = 8
TEAM_RATE = 0.1  # points per second (6 per minute)
MARGIN_BURST = 16
MARGIN_RATE = 2.5  # points per minute
FEED_START_S = 360
FEED_SILENCE_S = 360
MAX_SCORE = 200  # per team in a first half (the record is 107)


def team_limit(seconds: float) -> float:
    """The most points one team can score in ``seconds`` of game time."""
    return TEAM_BURST + TEAM_RATE * seconds


def margin_limit(minutes: float) -> float:
    """The most the margin can move in ``minutes`` of game time."""
    return MARGIN_BURST + MARGIN_RATE * minutes


def check_margin_path(margins: Sequence[float]) -> list[int]:
    """m_0..m_k as whole numbers, or ValueError saying which minutes break which bound."""
    path: list[int] = []
    for minute, value in enumerate(margins):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"m_{minute} is {value!r}; expected a whole number of points")
        whole = isinstance(value, int) or (math.isfinite(value) and value == round(value))
        if not whole or abs(value) > 2 * MAX_SCORE:
            raise ValueError(
                f"m_{minute} is {value!r:.40}; expected a whole number of points between "
                f"{-2 * MAX_SCORE} and {2 * MAX_SCORE}"
            )
        path.append(int(value))
    if path and path[0] != 0:
        raise ValueError(f"m_0 is {path[0]}; the margin at tip-off is 0")
    # every pair of minutes at once: |m_t1 - m_t0| against the bound for t1 - t0
    values = np.array(path, dtype=np.int64)
    gap = np.subtract.outer(np.arange(len(path)), np.arange(len(path)))
    moved = np.abs(np.subtract.outer(values, values))
    limit = np.minimum(MARGIN_BURST + MARGIN_RATE * gap, TEAM_BURST + TEAM_RATE * 60 * gap)
    broken = np.argwhere((gap > 0) & (moved > limit))
    if len(broken):
        t1, t0 = (int(v) for v in broken[np.lexsort((broken[:, 0], broken[:, 1]))][0])
        raise ValueError(
            f"the margin moves from {path[t0]:+d} at minute {t0} to {path[t1]:+d} at minute "
            f"{t1}; at most {limit[t1, t0]:.0f} points in {t1 - t0} minute(s) is possible"
        )
    return path


def check_scores(earlier: tuple[int, int, int], later: tuple[int, int, int]) -> str | None:
    """Why the score ``later`` (game second, home, away) cannot follow ``earlier``; None
    when it can."""
    (t0, h0, a0), (t1, h1, a1) = earlier, later
    if h1 < h0 or a1 < a0:
        return f"a score never decreases: {h0}-{a0} at game second {t0}, {h1}-{a1} at {t1}"
    seconds = t1 - t0
    for side, gained in (("home", h1 - h0), ("away", a1 - a0)):
        if gained > team_limit(seconds):
            return (
                f"the {side} team cannot score {gained} points in {seconds} s "
                f"({h0}-{a0} at game second {t0}, {h1}-{a1} at {t1}; at most "
                f"{team_limit(seconds):.0f})"
            )
    moved = abs((h1 - a1) - (h0 - a0))
    if moved > margin_limit(seconds / 60):
        return (
            f"the margin cannot move {moved} points in {seconds} s "
            f"({h0}-{a0} at game second {t0}, {h1}-{a1} at {t1})"
        )
    return None
