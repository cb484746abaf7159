from kfp import dsl
from kfp.dsl import Input, Markdown

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def rollout_ab(
    registry_url: str,
    candidate: str,
    gitops_repo: str,
    environment: str,
    share: float,
    report: Input[Markdown],
) -> str:
    """Start the A/B rollout: routing committed to the GitOps repository."""
    from nba_forecast.lifecycle.kfp_steps import rollout_kfp

    return rollout_kfp(registry_url, candidate, gitops_repo, environment, share, report.path)
