from kfp import dsl
from kfp.dsl import Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def update_dejavu(registry_url: str, games_uri: str, as_of: str, metrics: Output[Metrics]) -> str:
    """Finished games join production's analog database -> candidate version id ('' if none)."""
    from nba_forecast.lifecycle.kfp_steps import update_dejavu_kfp

    return update_dejavu_kfp(registry_url, games_uri, as_of, metrics)
