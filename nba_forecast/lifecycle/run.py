"""Running a step the way the policy says: the producing step, then the chain that follows
its new version (validate, register, A/B test or roll forward). The CLI and the replay run
steps through here; KFP pipelines run the same chain as tasks (checked by a test)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from nba_forecast.lifecycle.bootstrap import bootstrap
from nba_forecast.lifecycle.collect import collect
from nba_forecast.lifecycle.context import Context, StepResult
from nba_forecast.lifecycle.monitor import monitor
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.promotion import (
    decide_rollout,
    register,
    roll_forward,
    running_rollout,
    start_rollout,
)
from nba_forecast.lifecycle.recalibrate import recalibrate
from nba_forecast.lifecycle.retrain import retrain
from nba_forecast.lifecycle.update_dejavu import update_dejavu
from nba_forecast.lifecycle.validate import validate_candidate

StepFunction = Callable[..., StepResult]
STEPS: dict[Step, StepFunction] = {
    Step.BOOTSTRAP: bootstrap,
    Step.COLLECT: collect,
    Step.MONITOR: monitor,
    Step.RECALIBRATE: recalibrate,
    Step.UPDATE_DEJAVU: update_dejavu,
    Step.RETRAIN: retrain,
    Step.VALIDATE: validate_candidate,
    Step.REGISTER: register,
    Step.START_ROLLOUT: start_rollout,
    Step.DECIDE_ROLLOUT: decide_rollout,
    Step.ROLL_FORWARD: roll_forward,
}


def produce(ctx: Context, step: Step, as_of: dt.datetime, **options: Any) -> StepResult:
    """Run one step, unless the policy makes it wait for a running A/B test."""
    live = running_rollout(ctx) if ctx.policy.blocked_by_rollout(step) else None
    if live is not None:
        return StepResult(
            step, f"skipped: the A/B test of {live.challenger} is still running", status="blocked"
        )
    return STEPS[step](ctx, as_of, **options)


def follow_up(ctx: Context, made: StepResult, as_of: dt.datetime) -> list[StepResult]:
    """The policy's chain after a step that made ``made.version``; stops at a failed gate."""
    results: list[StepResult] = []
    report = ""
    for step in ctx.policy.chain(Step(made.step)):
        if step is Step.VALIDATE:
            result = validate_candidate(ctx, as_of, candidate=made.version or "candidate")
            report = result.report.to_markdown()
        elif step is Step.REGISTER:
            result = register(ctx, as_of, candidate=made.version or "candidate", report=report)
        elif step is Step.START_ROLLOUT:
            result = start_rollout(ctx, as_of, candidate=made.version or "candidate", report=report)
        else:
            result = roll_forward(
                ctx, as_of, version=made.version or "candidate", reason=made.detail
            )
        results.append(result)
        if not result.passed:
            break
    return results


def run_step(ctx: Context, step: Step, as_of: dt.datetime, **options: Any) -> list[StepResult]:
    """A step and, when it made a version the policy acts on, what follows."""
    made = produce(ctx, step, as_of, **options)
    if made.version is None or step not in ctx.policy.follow_ups:
        return [made]
    return [made, *follow_up(ctx, made, as_of)]
