from kfp import dsl
from kfp.dsl import Metrics, Output

from components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def retrain_lstm(
    registry_url: str, games_uri: str, as_of: str, force: bool, metrics: Output[Metrics]
) -> str:
    """When due (or forced), retrain every component (LSTM warm start, GPU when present)
    -> candidate version id ('' when not due, or while an A/B test runs)."""
    from nba_forecast.lifecycle.kfp_adapter import run_component

    deployment = {"registry_url": registry_url, "games_uri": games_uri}
    return (
        run_component("retrain", as_of, metrics, deployment=deployment, force=force).version or ""
    )
