from kfp import dsl
from kfp.dsl import Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def collect_predictions(
    database_url: str, as_of: str, window_days: float, metrics: Output[Metrics]
) -> bool:
    """Forecasts joined with outcomes known at as_of (coverage, MAE, counts as metrics);
    returns whether coverage drifted."""
    from nba_forecast.lifecycle.kfp_adapter import run_component

    result = run_component(
        "collect",
        as_of,
        metrics,
        deployment={"database_url": database_url},
        window_days=window_days,
    )
    return result.report.drifted
