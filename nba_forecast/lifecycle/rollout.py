"""A/B rollout of a challenger: sticky arms, a traffic ramp with guardrails, an always-valid
sequential test on paired losses, and automatic promotion or rollback.

* Arms: a game goes to B when sha256(salt:game_id) falls below the current share, so a game
  never changes arm within one experiment, and raising the share only moves A games to B.
* Both versions score every game (one serves, the other runs in shadow), so the decision uses
  paired absolute errors on the same games, not two separate samples.
* Decision: a mixture sequential probability ratio test (mSPRT, Johari et al. 2017) on the
  paired differences d = |e_challenger| - |e_champion|. Its p-value is valid at every game,
  so checking after each game does not inflate false decisions.
* Guardrails: forecasts that are NaN or outside the plausible range, failures and slow
  answers count as errors; too many errors roll back at once.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from scipy import stats

from nba_forecast.evaluation.paired_tests import p_text
from nba_forecast.routing import assign_arm

Action = Literal["ramp", "promote", "rollback"] | None
MAX_PLAUSIBLE_MARGIN = 80.0


@dataclass(frozen=True)
class RolloutConfig:
    ramp: tuple[float, ...] = (0.1, 0.5, 1.0)  # share of games served by the challenger
    games_per_step: int = 200  # clean games before the next ramp step
    alpha: float = 0.05  # error rate of the sequential test
    tau: float = 0.25  # mSPRT mixing scale, in points of absolute error difference
    min_games: int = 100  # no decision before this many paired games
    max_error_rate: float = 0.02
    max_latency_ms: float = 250.0
    # an experiment ends after max_games paired games at the latest: the challenger is then
    # promoted only if it is shown non-inferior (worse by less than margin points)
    max_games: int = 400
    margin: float = 0.05

    def __post_init__(self) -> None:
        if (
            not self.ramp
            or any(not 0 < s <= 1 for s in self.ramp)
            or list(self.ramp) != sorted(self.ramp)
        ):
            raise ValueError(f"ramp must be increasing shares in (0, 1], got {self.ramp}")
        if not 0 < self.alpha < 1 or self.tau <= 0:
            raise ValueError("alpha must be in (0, 1) and tau positive")


def msprt_p_value(n: int, mean: float, variance: float, tau: float) -> float:
    """Always-valid p-value of H0: E[d] = 0 from n paired differences (normal mixture)."""
    if n < 2 or variance <= 0:
        return 1.0
    shrink = variance + n * tau**2
    log_lambda = 0.5 * math.log(variance / shrink) + (n**2 * tau**2 * mean**2) / (
        2 * variance * shrink
    )
    return min(1.0, math.exp(-log_lambda)) if log_lambda < 700 else 0.0


@dataclass
class Rollout:
    """State of one experiment; serialisable with ``to_json`` / ``from_json``."""

    champion: str
    challenger: str
    salt: str
    config: RolloutConfig = field(default_factory=RolloutConfig)
    step: int = 0
    games_in_step: int = 0
    n: int = 0
    sum_d: float = 0.0
    sum_d2: float = 0.0
    errors: int = 0
    p_value: float = 1.0  # running minimum: the always-valid p-value
    decision: str | None = None
    reason: str = ""
    seen: list[str] = field(default_factory=list)
    started_at: str = ""  # ISO time; only forecasts from then on count

    @property
    def share_b(self) -> float:
        ended = self.decision in ("rollback", "superseded")
        return 0.0 if ended else self.config.ramp[self.step]

    def arm(self, game_id: str) -> str:
        if self.decision == "promote":
            return "B"
        return assign_arm(game_id, self.salt, self.share_b)

    @property
    def mean_difference(self) -> float:
        return self.sum_d / self.n if self.n else 0.0

    def observe(
        self,
        game_id: str,
        actual: float,
        champion_forecast: float,
        challenger_forecast: float | None,
        challenger_latency_ms: float = 0.0,
    ) -> Action:
        """Record one game's outcome with both forecasts (the challenger's None if it
        failed); returns the action the rollout takes now, if any."""
        if self.decision is not None or game_id in self.seen:
            return None  # finished, or a replayed game: idempotent
        self.seen.append(game_id)
        bad = (
            challenger_forecast is None
            or not math.isfinite(challenger_forecast)
            or abs(challenger_forecast) > MAX_PLAUSIBLE_MARGIN
            or challenger_latency_ms > self.config.max_latency_ms
        )
        if bad:
            self.errors += 1
        else:
            d = abs(challenger_forecast - actual) - abs(champion_forecast - actual)  # type: ignore[operator]
            self.n += 1
            self.sum_d += d
            self.sum_d2 += d * d
            self.games_in_step += 1
        total = self.n + self.errors
        if total >= 20 and self.errors / total > self.config.max_error_rate:
            return self._decide(
                "rollback",
                f"guardrail: {self.errors} of {total} challenger "
                "forecasts failed, were implausible or too slow",
            )
        if self.n >= self.config.min_games:
            mean = self.mean_difference
            variance = max(self.sum_d2 / self.n - mean**2, 1e-9)
            self.p_value = min(self.p_value, msprt_p_value(self.n, mean, variance, self.config.tau))
            if self.p_value < self.config.alpha:
                action: Literal["promote", "rollback"] = "promote" if mean < 0 else "rollback"
                return self._decide(
                    action,
                    f"sequential test after {self.n} paired games: "
                    f"challenger {mean:+.3f} points of absolute error per game "
                    f"(always-valid {p_text(self.p_value)})",
                )
        if self.n >= self.config.max_games:
            return self._final_decision()
        last_step = self.step + 1 >= len(self.config.ramp)
        if self.games_in_step >= self.config.games_per_step and not last_step:
            self.step += 1
            self.games_in_step = 0
            return "ramp"
        return None

    def why_undecided(self) -> str:
        """Why a running test has not decided yet, in words."""
        if self.n < self.config.min_games:
            return (
                f"(no decision before {self.config.min_games} paired games; "
                f"{self.config.min_games - self.n} to go)"
            )
        return (
            f"(no significant difference yet: challenger {self.mean_difference:+.3f} points per "
            f"game, always-valid {p_text(self.p_value)} against {self.config.alpha:g}; it decides "
            f"by {self.config.max_games} paired games)"
        )

    def _final_decision(self) -> Action:
        """Inconclusive after max_games: the challenger is promoted only if it was at least
        as accurate on the paired games (mean difference <= 0) and is shown non-inferior (a
        one-sided t test of E[d] < margin); otherwise the champion stays. Ties go to the
        champion: a string of "not worse" promotions would otherwise drift the error up."""
        mean = self.mean_difference
        sd = math.sqrt(max(self.sum_d2 / self.n - mean**2, 1e-12) * self.n / (self.n - 1))
        se = sd / math.sqrt(self.n)
        p_value = float(stats.t.cdf((mean - self.config.margin) / se, df=self.n - 1))
        half = float(stats.t.ppf(0.975, df=self.n - 1)) * se
        promote = mean <= 0 and p_value < self.config.alpha
        verdict: Literal["promote", "rollback"] = "promote" if promote else "rollback"
        why = (
            "at least as accurate and non-inferior"
            if promote
            else ("less accurate on these games" if mean > 0 else "not shown non-inferior")
        )
        return self._decide(
            verdict,
            f"no decisive difference after {self.n} paired games: challenger {mean:+.3f} "
            f"points of absolute error per game (95% CI {mean - half:+.3f} to "
            f"{mean + half:+.3f}), {why} (non-inferiority margin {self.config.margin}, "
            f"{p_text(p_value)})",
        )

    def _decide(self, action: Literal["promote", "rollback"], reason: str) -> Action:
        self.decision, self.reason = action, reason
        return action

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Rollout:
        data: dict[str, Any] = json.loads(text)
        config = data.pop("config")
        config["ramp"] = tuple(config["ramp"])
        return cls(config=RolloutConfig(**config), **data)
