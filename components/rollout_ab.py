from kfp import dsl
from kfp.dsl import Input, Markdown, Model

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def rollout_ab(
    candidate: Input[Model],
    gitops_repo: str,
    environment: str,
    as_of: str,
    share: float,
    report: Input[Markdown] = None,
    games_uri: str = "",
) -> str:
    """Start the A/B rollout of the candidate model: routing committed (and pushed) to the
    GitOps repository; or, when it forecasts like production on the recent games (those of
    ``games_uri`` beside the shipped ones), roll it forward as a data refresh."""
    from pathlib import Path

    from nba_forecast.lifecycle.kfp_adapter import model_reference, run_component

    registry_url, version = model_reference(candidate.metadata)
    deployment = {
        "registry_url": registry_url,
        "gitops_repo": gitops_repo,
        "environment": environment,
        "games_uri": games_uri,
    }
    text = Path(report.path).read_text() if report is not None else ""
    result = run_component(
        "start_rollout", as_of, deployment=deployment, candidate=version, share=share, report=text
    )
    return result.detail
