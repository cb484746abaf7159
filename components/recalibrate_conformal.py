from kfp import dsl
from kfp.dsl import Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def recalibrate_conformal(
    database_url: str,
    registry_url: str,
    as_of: str,
    window_days: float,
    model: Output[Model],
    metrics: Output[Metrics],
) -> str:
    """On drift since production's own recalibration (the step's test, as in the CLI and
    the replay): a recalibrated copy of production as a Model artifact, and its version id
    ('' if none)."""
    from nba_forecast.lifecycle.kfp_adapter import export_model, run_component

    deployment = {"database_url": database_url, "registry_url": registry_url}
    result = run_component(
        "recalibrate", as_of, metrics, deployment=deployment, window_days=window_days
    )
    return export_model(model, result.version, registry_url)
