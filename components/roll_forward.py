from kfp import dsl

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def roll_forward(
    registry_url: str, version: str, gitops_repo: str, environment: str, as_of: str
) -> str:
    """Promote the version to production at once (no A/B test), routing committed."""
    from nba_forecast.lifecycle.kfp_adapter import run_component

    deployment = {
        "registry_url": registry_url,
        "gitops_repo": gitops_repo,
        "environment": environment,
    }
    return (
        run_component("roll_forward", as_of, deployment=deployment, version=version).version or ""
    )
