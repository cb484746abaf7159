from kfp import dsl
from kfp.dsl import Metrics, Model, Output

from components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def retrain_lstm(
    registry_url: str,
    games_uri: str,
    as_of: str,
    force: bool,
    model: Output[Model],
    metrics: Output[Metrics],
) -> str:
    """When due (or forced), retrain every component (LSTM warm start, GPU when present):
    the candidate as a Model artifact (registry URL and version in its metadata) and its
    version id ('' when not due, or while an A/B test runs)."""
    from nba_forecast.lifecycle.kfp_adapter import export_model, run_component

    deployment = {"registry_url": registry_url, "games_uri": games_uri}
    result = run_component("retrain", as_of, metrics, deployment=deployment, force=force)
    return export_model(model, result.version, registry_url)
