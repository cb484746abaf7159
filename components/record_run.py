from kfp import dsl
from kfp.dsl import Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def record_run(
    registry_url: str,
    pipeline: str,
    run_id: str,
    run_name: str,
    status: dsl.PipelineTaskFinalStatus,
    metrics: Output[Metrics],
) -> str:
    """The exit handler: record how the run ended and which code ran (git SHA, image) beside
    the registry; ``run_failed`` = 1 for a failed run."""
    from nba_forecast.lifecycle.kfp_adapter import record_pipeline_run

    record = record_pipeline_run(
        registry_url,
        pipeline=pipeline,
        run_id=run_id,
        run_name=run_name,
        state=status.state,
        failed_task=status.pipeline_task_name,
        error=status.error_message or "",
    )
    metrics.log_metric("run_failed", 0.0 if record["state"] == "SUCCEEDED" else 1.0)
    return str(record["state"])
