"""``nba-forecast``: one subcommand per step. Exit codes: 0 ok, 1 data problems found,
2 bad input (unreadable file, bad option)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from nba_forecast.cli.config import config_app
from nba_forecast.cli.data import data_app, data_import, data_simulate, data_stats, data_validate
from nba_forecast.cli.db import db_app
from nba_forecast.cli.evaluate import evaluate
from nba_forecast.cli.lifecycle import (
    bootstrap_command,
    collect_command,
    monitor_command,
    recalibrate_command,
    retrain_command,
    roll_forward_command,
    rollout_command,
    update_dejavu_command,
    validate_command,
)
from nba_forecast.cli.options import add_common_options, with_root_options, without_deployment
from nba_forecast.cli.pipeline import (
    compile_pipelines,
    list_schedules,
    pipeline_app,
    render_schedules_file,
    schedules_app,
    submit_pipeline,
    sync_schedules,
)
from nba_forecast.cli.predict import predict
from nba_forecast.cli.registry import registry_app
from nba_forecast.cli.replay import replay
from nba_forecast.cli.serve import feed, serve, served_ab
from nba_forecast.lifecycle.policy import Step

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(registry_app, name="registry")
app.add_typer(db_app, name="db")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(schedules_app, name="schedules")
COMMANDS: dict[str, Callable[..., None]] = {
    "evaluate": evaluate,
    "predict": predict,
    "replay": replay,
    "serve": serve,
    "feed": feed,
    "served-ab": served_ab,
    # one command per lifecycle step, named after it (the step's one spelling)
    Step.BOOTSTRAP.kebab: bootstrap_command,
    Step.COLLECT.kebab: collect_command,
    Step.RECALIBRATE.kebab: recalibrate_command,
    Step.ROLL_FORWARD.kebab: roll_forward_command,
    Step.UPDATE_DEJAVU.kebab: update_dejavu_command,
    Step.RETRAIN.kebab: retrain_command,
    Step.VALIDATE.kebab: validate_command,
    "rollout": rollout_command,  # start_rollout and decide_rollout, and the state
    Step.MONITOR.kebab: monitor_command,
}
for name, command in COMMANDS.items():
    app.command(name)(command)
without_deployment(
    data_stats,
    data_validate,
    data_import,
    data_simulate,
    evaluate,
    replay,
    feed,
    compile_pipelines,
    submit_pipeline,
    render_schedules_file,
    list_schedules,
    sync_schedules,
)
add_common_options(app)


def _print_version(value: bool) -> None:
    if value:
        from nba_forecast import __version__

        typer.echo(f"nba-forecast {__version__}")
        raise typer.Exit()


@app.callback()
@with_root_options
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """NBA halftime margin forecasts, kept good in production. Every command takes the
    deployment options (--profile, --database-url, --registry-url, --gitops-url, ...):
    `nba-forecast config show` says what they resolve to and where each value came from."""


def main() -> None:
    app()


__all__ = ["app", "main"]
