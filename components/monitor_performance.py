from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def monitor_performance(
    database_url: str,
    as_of: str,
    window_days: float,
    prometheus: Output[Artifact],
    metrics: Output[Metrics],
) -> int:
    """Alert rules over the window; returns how many fire."""
    from nba_forecast.lifecycle.kfp_steps import monitor_kfp

    return monitor_kfp(database_url, as_of, window_days, prometheus.path, metrics)
