from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def validate_challenger(
    registry_url: str,
    games_uri: str,
    candidate: str,
    as_of: str,
    report: Output[Markdown],
    metrics: Output[Metrics],
) -> bool:
    """Champion (production) vs candidate on the holdout games; True when it passes."""
    from nba_forecast.lifecycle.kfp_steps import validate_kfp

    return validate_kfp(registry_url, games_uri, candidate, as_of, report.path, metrics)
