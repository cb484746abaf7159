from kfp import dsl
from kfp.dsl import Input, Markdown

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register_version(registry_url: str, candidate: str, as_of: str, report: Input[Markdown]) -> str:
    """Record the validated candidate under the ``candidate`` alias, citing the report."""
    from nba_forecast.lifecycle.kfp_adapter import run_component

    deployment = {"registry_url": registry_url}
    result = run_component(
        "register", as_of, deployment=deployment, candidate=candidate, report=report.uri
    )
    return result.version or ""
