from kfp import dsl
from kfp.dsl import Input, Markdown, Model

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register_version(candidate: Input[Model], as_of: str, report: Input[Markdown]) -> None:
    """Record the validated candidate model under the ``candidate`` alias, citing the
    validation report."""
    from nba_forecast.lifecycle.kfp_adapter import model_reference, run_component

    registry_url, version = model_reference(candidate.metadata)
    deployment = {"registry_url": registry_url}
    run_component("register", as_of, deployment=deployment, candidate=version, report=report.uri)
