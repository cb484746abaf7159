from kfp import dsl
from kfp.dsl import Input, Markdown

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register_version(registry_url: str, candidate: str, report: Input[Markdown]) -> str:
    """Record the validated candidate under the ``candidate`` alias, citing the report."""
    from nba_forecast.lifecycle.kfp_steps import register_kfp

    return register_kfp(registry_url, candidate, report.path)
