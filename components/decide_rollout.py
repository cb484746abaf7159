from kfp import dsl
from kfp.dsl import Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def decide_rollout(
    database_url: str,
    registry_url: str,
    gitops_repo: str,
    environment: str,
    as_of: str,
    metrics: Output[Metrics],
    games_uri: str = "",
) -> str:
    """Feed the served and shadow forecasts to the running A/B test: ramp, promote or roll
    back, with the routing committed, then start the candidate waiting for it (compared with
    production on the recent games: those of ``games_uri`` beside the shipped ones); '' when
    no test runs."""
    from nba_forecast.lifecycle.kfp_adapter import run_component

    deployment = {
        "database_url": database_url,
        "registry_url": registry_url,
        "gitops_repo": gitops_repo,
        "environment": environment,
        "games_uri": games_uri,
    }
    result = run_component("decide_rollout", as_of, metrics, deployment=deployment)
    return result.detail if result.version else ""
