from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def collect_predictions(
    database_url: str,
    as_of: str,
    window_days: float,
    rows: Output[Dataset],
    metrics: Output[Metrics],
) -> bool:
    """Forecasts joined with outcomes known at as_of; returns whether coverage drifted."""
    from nba_forecast.lifecycle.kfp_steps import collect_step

    return collect_step(database_url, as_of, window_days, rows.path, metrics)
