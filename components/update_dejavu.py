from kfp import dsl
from kfp.dsl import Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def update_dejavu(
    registry_url: str, games_uri: str, as_of: str, model: Output[Model], metrics: Output[Metrics]
) -> str:
    """Finished games join production's analog database: the candidate as a Model artifact
    and its version id ('' when no new games, or while an A/B test runs)."""
    from nba_forecast.lifecycle.kfp_adapter import export_model, run_component

    deployment = {"registry_url": registry_url, "games_uri": games_uri}
    result = run_component("update_dejavu", as_of, metrics, deployment=deployment)
    return export_model(model, result.version, registry_url)
