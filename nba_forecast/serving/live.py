"""A live game from score updates: the minute margins so far, and the two moments that
matter (6:00 left in Q2: forecast; halftime: outcome).

Updates may arrive out of order or twice. Each is a point (period, game second, home, away)
checked against every other point and the tip-off (0-0 at second 0) with the bounds of
``basketball``: scores never decrease, no team scores faster than a team can, the margin
moves no faster than it can, two scores at one second are in order. An update that breaks a
bound is rejected and changes nothing. Two moments close the past: once the forecast is made
(the first update after 6:00 of Q2), no update before 6:00 of Q2 may change the path it was
made from; once the first half is over (12:00 of Q3, or a minute into Q3), its score is the
outcome and nothing before halftime may change.

A game is JSON (``to_json``/``from_json``): the server keeps it in the prediction database,
so every replica and every restart sees the same game.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nba_forecast.data.events import elapsed_seconds, first_counting_minute
from nba_forecast.data.schema import FORECAST_MINUTE, HALFTIME_MINUTE
from nba_forecast.serving.basketball import FEED_SILENCE_S, FEED_START_S, check_scores

FORECAST_S = FORECAST_MINUTE * 60
HALFTIME_S = HALFTIME_MINUTE * 60
MAX_UPDATES = 600  # a whole game has about 200 scoring events
TIP_OFF = (1, 0, 0, 0)
HALF_CLOSES_AFTER_S = 60  # a Q3 update this far in closes the first half
FIRST_PLAY_POINTS = 4  # one scoring play from 0-0 (a three and a free throw) at most


class UpdateRejected(ValueError):
    """A score update that contradicts the game so far (HTTP 409, with the reason)."""


@dataclass
class LiveGame:
    game_id: str
    home_team: str | None = None
    away_team: str | None = None
    points: list[tuple[int, int, int, int]] = field(default_factory=list)  # period, s, h, a
    forecast: dict[str, Any] | None = None  # the response served at 6:00 Q2
    # (version, forecast, interval scale) of each logged forecast
    scored: list[tuple[str, float, float]] = field(default_factory=list)
    forecast_inputs: str | None = None  # the digest of the model inputs it was made from
    outcome: float | None = None  # the halftime margin, once logged
    note: str | None = None  # why the game has no forecast or outcome

    # -- updates ----------------------------------------------------------------------------
    def add(self, period: int, remaining_s: int, home: int, away: int) -> bool:
        """Record an update; False if it was already known. UpdateRejected (nothing
        changes) when it cannot be."""
        elapsed = int(elapsed_seconds(np.array([period]), np.array([remaining_s]))[0])
        point = (period, elapsed, home, away)
        if point in self.points or point == TIP_OFF:
            return False
        if len(self.points) >= MAX_UPDATES:
            raise UpdateRejected(f"game {self.game_id} has {MAX_UPDATES} updates; no more")
        if self.forecast is not None and elapsed <= FORECAST_S:
            raise UpdateRejected(
                f"the forecast was made at 6:00 of Q2 from the updates before it; an update "
                f"at game second {elapsed} (before 6:00 of Q2) arrived too late to change it"
            )
        if self.half_closed and elapsed <= HALFTIME_S:
            home_half, away_half = self.halftime_score or (0, 0)
            raise UpdateRejected(
                f"the first half is over (halftime score {home_half}-{away_half}); an update "
                f"at game second {elapsed} cannot change it"
            )
        for other in [TIP_OFF, *self.points]:
            problem = _contradiction(other, point)
            if problem:
                raise UpdateRejected(problem)
        self.points.append(point)
        self.points.sort()
        return True

    @property
    def elapsed_s(self) -> int:
        return max((p[1] for p in self.points), default=0)

    @property
    def half_closed(self) -> bool:
        """The first half is over, and its score final: the update at 12:00 of Q3 has
        arrived, or one at least a minute into Q3 (by then a late update from Q2 would have
        come; an earlier Q3 update alone could still be followed by one)."""
        return any(
            p[0] >= 3 and (p[1] == HALFTIME_S or p[1] >= HALFTIME_S + HALF_CLOSES_AFTER_S)
            for p in self.points
        )

    @property
    def halftime_score(self) -> tuple[int, int] | None:
        """(home, away) at the end of the first half, once it is over: the last score at or
        before game second 1440."""
        if not self.half_closed:
            return None
        first_half = [p for p in [TIP_OFF, *self.points] if p[1] <= HALFTIME_S]
        _, _, home, away = max(first_half, key=lambda p: (p[1], p[0], p[2] + p[3]))
        return home, away

    def margins(self, through_minute: int) -> list[int]:
        """m_0 .. m_through from the updates so far (the README's sampling rule)."""
        if not self.points:
            return [0] * (through_minute + 1)
        data = np.array(sorted(self.points))
        period, elapsed, home, away = data.T
        minute = first_counting_minute(period, elapsed)
        out = []
        for m in range(through_minute + 1):
            counted = minute <= m
            out.append(int(home[counted].max(initial=0) - away[counted].max(initial=0)))
        return out

    # -- the two moments ---------------------------------------------------------------------
    def forecast_blocked(self) -> str | None:
        """Why this game cannot be forecast from its feed (None: it can): the path to 6:00
        of Q2 must be known, so the game must be followed from its start."""
        seen = sorted({s for _, s, _, _ in self.points})
        if not seen or seen[0] > FORECAST_S:
            return (
                f"first update at game second {seen[0] if seen else '?'}, after 6:00 of Q2: "
                "no forecast (the path before it is unknown)"
            )
        first = min((p for p in self.points), key=lambda p: (p[1], p[0], p[2] + p[3]))
        if first[2] + first[3] > FIRST_PLAY_POINTS:
            return (
                f"first update {first[2]}-{first[3]} at game second {first[1]}: more than one "
                "scoring play from 0-0, so the feed missed the plays before it"
            )
        if seen[0] > FEED_START_S:
            return (
                f"first update at game second {seen[0]}; a forecast needs the game followed "
                f"from the first {FEED_START_S} s"
            )
        times = [0, *[s for s in seen if s <= FORECAST_S], FORECAST_S]
        gaps = [(b - a, a, b) for a, b in itertools.pairwise(times)]
        longest = max(gaps)
        if longest[0] > FEED_SILENCE_S:
            return (
                f"no updates between game seconds {longest[1]} and {longest[2]} "
                f"({longest[0]} s > {FEED_SILENCE_S} s): the path to 6:00 of Q2 is unknown"
            )
        return None

    @property
    def forecast_due(self) -> bool:
        """The clock has passed 6:00 of Q2 (m_18 can no longer change), no forecast yet,
        and none refused."""
        return self.forecast is None and self.note is None and self.elapsed_s > FORECAST_S

    @property
    def outcome_due(self) -> bool:
        """Halftime with a logged forecast and no outcome yet."""
        return (
            self.halftime_score is not None and self.forecast is not None and self.outcome is None
        )

    def halftime_margin(self) -> float:
        score = self.halftime_score
        if score is None:
            raise ValueError(f"game {self.game_id}: no update at halftime yet")
        return float(score[0] - score[1])

    def close_half_without_outcome(self) -> None:
        """Say why a game whose first half is over logs no outcome."""
        if self.half_closed and self.forecast is None and self.note is None:
            self.note = "no forecast was logged for this game, so no outcome is logged"

    # -- storage -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "game_id": self.game_id,
            "home_team": self.home_team,
            "away_team": self.away_team,
            "points": [list(p) for p in self.points],
            "forecast": self.forecast,
            "scored": [list(s) for s in self.scored],
            "forecast_inputs": self.forecast_inputs,
            "outcome": self.outcome,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LiveGame:
        return cls(
            game_id=data["game_id"],
            home_team=data.get("home_team"),
            away_team=data.get("away_team"),
            points=[tuple(p) for p in data.get("points", [])],
            forecast=data.get("forecast"),
            scored=[_scored(item) for item in data.get("scored", [])],
            forecast_inputs=data.get("forecast_inputs"),
            outcome=data.get("outcome"),
            note=data.get("note"),
        )


def _contradiction(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> str | None:
    """Why points ``a`` and ``b`` cannot both be true of one game (None: they can). At one
    game second the later period, then the higher total, comes second (free throws at
    0:00 of Q2 come before 12:00 of Q3)."""
    first, second = sorted((a, b), key=lambda p: (p[1], p[0], p[2] + p[3]))
    return check_scores(first[1:], second[1:])


def _scored(item: list[object]) -> tuple[str, float, float]:
    """(version, forecast, scale); games saved before intervals had a scale hold no scale."""
    version, forecast, *rest = item
    return str(version), float(forecast), float(rest[0]) if rest else 1.0  # type: ignore[arg-type]
