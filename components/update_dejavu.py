from kfp import dsl
from kfp.dsl import Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def update_dejavu(registry_url: str, games_uri: str, as_of: str, metrics: Output[Metrics]) -> str:
    """Finished games join production's analog database -> candidate version id ('' if none,
    or while an A/B test runs)."""
    from nba_forecast.lifecycle.kfp_adapter import run_component

    deployment = {"registry_url": registry_url, "games_uri": games_uri}
    return run_component("update_dejavu", as_of, metrics, deployment=deployment).version or ""
