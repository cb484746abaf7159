from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def monitor_performance(
    database_url: str,
    as_of: str,
    window_days: float,
    report: Output[Markdown],
    metrics: Output[Metrics],
) -> int:
    """Alert rules over the window (the report for the KFP UI); returns how many fire."""
    from nba_forecast.lifecycle.kfp_adapter import run_component

    result = run_component(
        "monitor",
        as_of,
        metrics,
        deployment={"database_url": database_url},
        window_days=window_days,
    )
    with open(report.path, "w") as file:
        file.write(result.report.to_markdown())
    return len(result.report.alerts)
