"""The lifecycle's step names and its one policy: what follows each step that makes a new
model version. KFP pipelines, the CLI and the replay all read it (a test checks that each
compiled pipeline runs exactly ``Policy.chain`` after its producing step).

* ``roll_forward``: promote to production at once (a recalibration changes no point
  forecast, so an A/B test on absolute errors could not tell the versions apart);
* ``ab_test``: start an A/B rollout against production (sticky arms, ramp, sequential test);
* ``candidate``: only move the ``candidate`` alias; a person decides.

Steps whose candidate must pass validation first run ``validate`` and ``register`` before
their follow-up. While an A/B test runs, steps that would start another are skipped.
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
        """A step whose version would start an A/B test waits while one runs."""
        return self.follow_ups.get(step) is FollowUp.AB_TEST
