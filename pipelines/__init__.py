"""One KFP pipeline per scheduled step (named after it), plus continuous_improvement.
``pipelines()`` names them for the CLI and ``make compile``; ``COMPONENT_OF_STEP`` says
which component runs each lifecycle step."""

from __future__ import annotations

from typing import Any


def pipelines() -> dict[str, Any]:
    from pipelines.continuous_improvement import continuous_improvement
    from pipelines.scheduled import (
        decide_rollout_pipeline,
        monitor_pipeline,
        recalibrate_pipeline,
        retrain_pipeline,
        update_dejavu_pipeline,
    )

    return {
        "continuous_improvement": continuous_improvement,
        "monitor": monitor_pipeline,
        "decide_rollout": decide_rollout_pipeline,
        "recalibrate": recalibrate_pipeline,
        "update_dejavu": update_dejavu_pipeline,
        "retrain": retrain_pipeline,
    }


COMPONENT_OF_STEP = {
    "collect": "collect_predictions",
    "monitor": "monitor_performance",
    "recalibrate": "recalibrate_conformal",
    "update_dejavu": "update_dejavu",
    "retrain": "retrain_lstm",
    "validate": "validate_challenger",
    "register": "register_version",
    "start_rollout": "rollout_ab",
    "decide_rollout": "decide_rollout",
    "roll_forward": "roll_forward",
}
