"""The lifecycle's step names and its one policy: what follows each step that makes a new
model version. KFP pipelines, the CLI and the replay all read it (a test checks that each
compiled pipeline runs exactly ``Policy.chain`` after its producing step).

* ``roll_forward``: promote to production at once (a recalibration changes no point
  forecast, so an A/B test on absolute errors could not tell the versions apart);
* ``ab_test``: start an A/B rollout against production (sticky arms, ramp, sequential test);
* ``candidate``: only move the ``candidate`` alias; a person decides.

Steps whose candidate must pass validation first run ``validate`` and ``register`` before
their follow-up.

No empty experiments: before an A/B test starts, the candidate and production forecast the
``compare_games`` most recent finished games offline; when their forecasts differ by at most
``equivalence_tolerance`` points per game on average (what an A/B test's non-inferiority
margin could not tell apart) the candidate is a data refresh and is rolled forward instead.

Never starved, one experiment at a time (``precedence``): a candidate whose step ranks higher
than the running test's ends that test ("superseded") and starts its own; otherwise it waits
in the queue (one slot: a newer candidate replaces the one waiting) and starts when the
running test is decided. Steps listed in ``wait_for_rollout`` do not run at all while a test
runs: the weekly analog update adds every game since its last one, so waiting loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from nba_forecast.lifecycle.rollout import RolloutConfig


class Step(StrEnum):
    """One spelling per step; CLI commands and KFP names use it with '-' for '_'."""

    BOOTSTRAP = "bootstrap"
    COLLECT = "collect"
    MONITOR = "monitor"
    RECALIBRATE = "recalibrate"
    UPDATE_DEJAVU = "update_dejavu"
    RETRAIN = "retrain"
    VALIDATE = "validate"
    REGISTER = "register"
    START_ROLLOUT = "start_rollout"
    DECIDE_ROLLOUT = "decide_rollout"
    ROLL_FORWARD = "roll_forward"

    @property
    def kebab(self) -> str:
        return self.value.replace("_", "-")


class FollowUp(StrEnum):
    CANDIDATE = "candidate"
    AB_TEST = "ab_test"
    ROLL_FORWARD = "roll_forward"


DEFAULT_FOLLOW_UPS: Mapping[Step, FollowUp] = MappingProxyType(
    {
        Step.RECALIBRATE: FollowUp.ROLL_FORWARD,
        Step.UPDATE_DEJAVU: FollowUp.AB_TEST,
        Step.RETRAIN: FollowUp.AB_TEST,
    }
)


@dataclass(frozen=True)
class Policy:
    follow_ups: Mapping[Step, FollowUp] = field(default_factory=lambda: DEFAULT_FOLLOW_UPS)
    validate_first: frozenset[Step] = frozenset({Step.RETRAIN})
    first_share: float = 0.1
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    # rank of the step that made a challenger: a higher one supersedes a running test
    precedence: Mapping[Step, int] = field(
        default_factory=lambda: MappingProxyType({Step.UPDATE_DEJAVU: 1, Step.RETRAIN: 2})
    )
    wait_for_rollout: frozenset[Step] = frozenset({Step.UPDATE_DEJAVU})
    equivalence_tolerance: float = 0.05  # mean |forecast difference|, points per game
    compare_games: int = 600

    def follow_up(self, step: Step) -> FollowUp:
        if step not in self.follow_ups:
            raise KeyError(f"step {step} makes no version; steps that do: {list(self.follow_ups)}")
        return self.follow_ups[step]

    def chain(self, step: Step) -> tuple[Step, ...]:
        """The steps that follow ``step``'s new version, in order."""
        gate = (Step.VALIDATE, Step.REGISTER) if step in self.validate_first else ()
        last = {
            FollowUp.AB_TEST: (Step.START_ROLLOUT,),
            FollowUp.ROLL_FORWARD: (Step.ROLL_FORWARD,),
            FollowUp.CANDIDATE: (),
        }[self.follow_up(step)]
        return (*gate, *last)

    def blocked_by_rollout(self, step: Step) -> bool:
        """Does ``step`` wait (not run) while an A/B test runs?"""
        return step in self.wait_for_rollout

    def supersedes(self, made_by: str, running_made_by: str) -> bool:
        """Does a candidate made by ``made_by`` end a running test of one made by
        ``running_made_by``? Only a strictly higher rank does (unknown steps rank 0)."""
        rank = {str(step): value for step, value in self.precedence.items()}
        return rank.get(made_by, 0) > rank.get(running_made_by, 0)
