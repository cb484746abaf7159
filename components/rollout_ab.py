from kfp import dsl
from kfp.dsl import Input, Markdown

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def rollout_ab(
    registry_url: str,
    candidate: str,
    gitops_repo: str,
    environment: str,
    as_of: str,
    share: float,
    report: Input[Markdown] = None,
) -> str:
    """Start the A/B rollout: routing committed to the GitOps repository."""
    from nba_forecast.lifecycle.kfp_adapter import run_component

    deployment = {
        "registry_url": registry_url,
        "gitops_repo": gitops_repo,
        "environment": environment,
    }
    from pathlib import Path

    text = Path(report.path).read_text() if report is not None else ""
    result = run_component(
        "start_rollout", as_of, deployment=deployment, candidate=candidate, share=share, report=text
    )
    return result.detail
