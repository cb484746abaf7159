"""A live game from score updates: the minute margins so far, and the two moments that
matter (6:00 left in Q2: forecast; halftime: outcome).

Updates may arrive out of order or twice. Each is a point (game time, home, away); a team's
score can never be lower than at an earlier game time, so an update contradicting the
others is rejected and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nba_forecast.data.events import elapsed_seconds, first_counting_minute
from nba_forecast.data.schema import FORECAST_MINUTE, HALFTIME_MINUTE

FORECAST_S = FORECAST_MINUTE * 60
HALFTIME_S = HALFTIME_MINUTE * 60


class UpdateRejected(ValueError):
    """A score update that contradicts the game so far."""


@dataclass
class LiveGame:
    game_id: str
    home_team: str | None = None
    away_team: str | None = None
    points: set[tuple[int, int, int, int]] = field(default_factory=set)  # period, elapsed, h, a
    forecast: object | None = None  # the response served at 6:00 Q2
    outcome: float | None = None

    def add(self, period: int, remaining_s: int, home: int, away: int) -> bool:
        """Record an update; False if it was a duplicate."""
        elapsed = int(elapsed_seconds(np.array([period]), np.array([remaining_s]))[0])
        point = (period, elapsed, home, away)
        if point in self.points:
            return False
        for _, other_elapsed, other_home, other_away in self.points:
            earlier = other_elapsed < elapsed
            later = other_elapsed > elapsed
            if (earlier and (home < other_home or away < other_away)) or (
                later and (home > other_home or away > other_away)
            ):
                raise UpdateRejected(
                    f"score {home}-{away} at game second {elapsed} contradicts "
                    f"{other_home}-{other_away} at game second {other_elapsed}"
                )
        self.points.add(point)
        return True

    @property
    def elapsed_s(self) -> int:
        return max((p[1] for p in self.points), default=0)

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

    @property
    def forecast_due(self) -> bool:
        # the clock has passed 6:00 of Q2: m_18 can no longer change
        return self.forecast is None and self.elapsed_s > FORECAST_S

    @property
    def halftime_reached(self) -> bool:
        # any update from the third period, or one at 0:00 of the second
        return any(p[0] >= 3 or (p[0] == 2 and p[1] == HALFTIME_S) for p in self.points)
