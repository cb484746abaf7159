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
    from nba_forecast.lifecycle.kfp_adapter import run_component

    deployment = {"registry_url": registry_url, "games_uri": games_uri}
    result = run_component("validate", as_of, metrics, deployment=deployment, candidate=candidate)
    with open(report.path, "w") as file:
        file.write(result.report.to_markdown())
    return result.report.passed
