from kfp import dsl
from kfp.dsl import Metrics, Output

from components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def retrain_lstm(
    registry_url: str, games_uri: str, as_of: str, force: bool, metrics: Output[Metrics]
) -> str:
    """When due (or forced), retrain every component (LSTM warm start, GPU when present)
    -> candidate version id ('' when not due)."""
    from nba_forecast.lifecycle.kfp_steps import retrain_kfp

    return retrain_kfp(registry_url, games_uri, as_of, force, metrics)
