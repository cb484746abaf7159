from kfp import dsl
from kfp.dsl import Input, Markdown, Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def validate_challenger(
    games_uri: str,
    candidate: Input[Model],
    as_of: str,
    report: Output[Markdown],
    metrics: Output[Metrics],
) -> bool:
    """Champion (production) vs the candidate model on the holdout games; True when it
    passes. The registry is the one the candidate artifact names."""
    from nba_forecast.lifecycle.kfp_adapter import model_reference, run_component

    registry_url, version = model_reference(candidate.metadata)
    deployment = {"registry_url": registry_url, "games_uri": games_uri}
    result = run_component("validate", as_of, metrics, deployment=deployment, candidate=version)
    with open(report.path, "w") as file:
        file.write(result.report.to_markdown())
    return result.report.passed
