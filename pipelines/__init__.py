"""One KFP pipeline per module. ``PIPELINES`` names them for the CLI and ``make compile``."""

from __future__ import annotations

from typing import Any


def pipelines() -> dict[str, Any]:
    from pipelines.continuous_improvement import continuous_improvement
    from pipelines.scheduled import dejavu_update, monitor, recalibration, retraining

    return {
        "continuous_improvement": continuous_improvement,
        "monitor": monitor,
        "recalibration": recalibration,
        "dejavu_update": dejavu_update,
        "retraining": retraining,
    }
