from kfp import dsl
from kfp.dsl import Input, Model

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def roll_forward(model: Input[Model], gitops_repo: str, environment: str, as_of: str) -> str:
    """Promote the model to production at once (no A/B test), routing committed (and
    pushed)."""
    from nba_forecast.lifecycle.kfp_adapter import model_reference, run_component

    registry_url, version = model_reference(model.metadata)
    deployment = {
        "registry_url": registry_url,
        "gitops_repo": gitops_repo,
        "environment": environment,
    }
    return (
        run_component("roll_forward", as_of, deployment=deployment, version=version).version or ""
    )
