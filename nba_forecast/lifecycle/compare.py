"""Before an A/B test: does the candidate forecast anything differently from production?

Both versions forecast the most recent finished games offline. A candidate whose forecasts
differ from production's by at most the tolerance (mean absolute difference, points per game)
cannot win or lose an A/B test decided on that scale, so testing it would only block the
lifecycle for weeks; the policy rolls it forward as a data refresh instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from nba_forecast.lifecycle.context import Context
from nba_forecast.lifecycle.training import history_before
from nba_forecast.lifecycle.versions import load_model
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix


@dataclass(frozen=True)
class ForecastComparison:
    games: int
    mean_abs_difference: float  # points per game between the two versions' forecasts
    max_abs_difference: float
    production_mae: float
    candidate_mae: float  # in sample in part: the candidate may have trained on these games
    tolerance: float

    @property
    def equivalent(self) -> bool:
        return self.mean_abs_difference <= self.tolerance

    def describe(self) -> str:
        verdict = "within" if self.equivalent else "beyond"
        # no MAE here: the candidate may have been fitted on some of these games
        return (
            f"forecasts differ by {self.mean_abs_difference:.3f} points per game on average "
            f"(at most {self.max_abs_difference:.2f}) over the last {self.games} games, "
            f"{verdict} the tolerance of {self.tolerance:g}"
        )

    def as_metrics(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def compare_forecasts(
    production: HalftimeEnsemble,
    candidate: HalftimeEnsemble,
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    tolerance: float,
) -> ForecastComparison:
    if len(X) == 0:
        raise ValueError("no finished games to compare the two versions on")
    mine, theirs = production.predict(X), candidate.predict(X)
    difference = np.abs(theirs - mine)
    return ForecastComparison(
        games=len(X),
        mean_abs_difference=float(difference.mean()),
        max_abs_difference=float(difference.max()),
        production_mae=float(np.abs(mine - y).mean()),
        candidate_mae=float(np.abs(theirs - y).mean()),
        tolerance=tolerance,
    )


def compare_with_production(
    ctx: Context, as_of: dt.datetime, candidate: str, production: str
) -> ForecastComparison:
    """``candidate`` against ``production`` on the policy's number of most recent games
    finished before ``as_of``."""
    recent = history_before(ctx.games.with_features(), as_of).tail(ctx.policy.compare_games)
    X, y = design_matrix(recent)
    return compare_forecasts(
        load_model(ctx.registry, production),
        load_model(ctx.registry, candidate),
        X,
        y,
        ctx.policy.equivalence_tolerance,
    )
