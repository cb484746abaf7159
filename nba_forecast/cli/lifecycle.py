"""One command per lifecycle step, on the configured deployment (embedded defaults: SQLite,
a local registry and GitOps repository under ``NBA_FORECAST_HOME``). A step that makes a
version is followed by what the policy says (validate, A/B test, roll forward) unless
``--only`` is given, exactly as the KFP pipelines and the replay do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from nba_forecast.cli.console import check_table_path, err, fail, out, write_table
from nba_forecast.data.errors import DataError
from nba_forecast.lifecycle.context import Context, StepResult, parse_as_of
from nba_forecast.lifecycle.policy import Step
from nba_forecast.storage.registry import RegistryError

AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="the step's time, ISO 8601 (UTC if no zone); default now"),
]
Data = Annotated[Path | None, typer.Option(help="more games (our margins format)")]
Only = Annotated[
    bool, typer.Option("--only", help="run just this step: no validation, A/B or roll forward")
]
# RuntimeError: a git command of the GitOps step failed
STEP_ERRORS = (RegistryError, ValueError, DataError, SQLAlchemyError, OSError, RuntimeError)


def context(
    data: Path | None = None,
    env: str | None = None,
    pull_request: bool | None = None,
    create: bool = False,
) -> Context:
    """The deployment from the settings; the games of ``data`` are read (and checked) now.
    ``create``: the command makes the registry and the log when they are not there."""
    from nba_forecast.cli.evaluate import _games_with
    from nba_forecast.cli.options import settings_or_fail
    from nba_forecast.lifecycle.context import GameSource
    from nba_forecast.lifecycle.deployment import build_context

    games = None if data is None else GameSource.of(_games_with(data))
    try:
        return build_context(
            settings_or_fail(),
            games=games,
            environment=env,
            pull_request=pull_request,
            create=create,
        )
    except (ValueError, RuntimeError) as error:  # bad URL, bad environment name
        raise fail(str(error)) from None


def run_cli_step(
    step: Step, as_of: str | None, *, only: bool = True, ctx: Context | None = None, **options: Any
) -> list[StepResult]:
    """Run a step (and its follow-ups unless ``only``); print one line per step."""
    try:
        when = parse_as_of(as_of)
    except ValueError as error:
        raise fail(str(error).replace("bad as_of", "bad --as-of")) from None
    from nba_forecast.lifecycle.run import produce, run_step

    try:
        ctx = ctx or context()
        # a spinner on a terminal only (training can take minutes); nothing in a log file
        with err.status(f"{step.kebab} ..."):
            results = (
                [produce(ctx, step, when, **options)]
                if only
                else run_step(ctx, step, when, **options)
            )
    except STEP_ERRORS as error:
        raise fail(str(error).splitlines()[0] if str(error) else repr(error)) from None
    for result in results:
        out.print(f"{result.step}: {result.detail}", highlight=False)
    return results


def _metrics_table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in ("version", "arm", "n", "MAE", "RMSE", "bias", "coverage", "width", "Winkler"):
        table.add_column(column, justify="left" if column in ("version", "arm") else "right")
    for r in frame.itertuples(index=False):
        table.add_row(
            r.model_version,
            r.arm,
            str(r.n),
            f"{r.mae:.3f}",
            f"{r.rmse:.3f}",
            f"{r.bias:+.3f}",
            f"{r.coverage:.1%}",
            f"{r.mean_width:.2f}",
            f"{r.winkler:.2f}",
        )
    return table


def collect_command(
    as_of: AsOf = None,
    window_days: Annotated[float, typer.Option(min=0.01)] = 30.0,
    output: Annotated[
        Path | None,
        typer.Option("--out", help="write the joined rows (.parquet, .csv or .json)"),
    ] = None,
) -> None:
    """Forecasts joined with outcomes known at --as-of, and metrics per version and arm."""
    if output is not None:
        check_table_path(output)
    (result,) = run_cli_step(Step.COLLECT, as_of, window_days=window_days)
    collection = result.report
    title = f"{collection.start:%Y-%m-%d %H:%M} .. {collection.as_of:%Y-%m-%d %H:%M} UTC"
    out.print(_metrics_table(collection.metrics, f"{title} ({len(collection.joined)} rows)"))
    if output is not None:
        write_table(collection.joined, output)
        out.print(f"wrote {output}", highlight=False)


def recalibrate_command(
    as_of: AsOf = None,
    window_days: Annotated[float, typer.Option(min=0.01)] = 30.0,
    min_games: Annotated[int, typer.Option(min=1)] = 100,
    force: Annotated[bool, typer.Option(help="recalibrate even without drift")] = False,
    only: Only = False,
) -> None:
    """Test served coverage; on drift register a recalibrated version (rolled forward)."""
    run_cli_step(
        Step.RECALIBRATE,
        as_of,
        only=only,
        window_days=window_days,
        min_games=min_games,
        force=force,
    )


def validate_command(
    candidate: Annotated[str, typer.Option(help="version id or alias")] = "candidate",
    champion: Annotated[str, typer.Option(help="version id or alias")] = "production",
    season: Annotated[
        int | None,
        typer.Option(
            help="validate on this season's games (default: the games after the candidate's "
            "last training game, else the 45 days before --as-of)"
        ),
    ] = None,
    as_of: AsOf = None,
    data: Data = None,
    report_dir: Annotated[Path, typer.Option("--out")] = Path("reports/validation"),
) -> None:
    """Champion vs candidate on the same games; exit 1 when the candidate fails."""
    (result,) = run_cli_step(
        Step.VALIDATE,
        as_of,
        ctx=context(data),
        candidate=candidate,
        champion=champion,
        season=season,
    )
    _, markdown = result.report.write(report_dir)
    out.print(result.report.to_markdown(), highlight=False)
    out.print(f"report: {markdown}", highlight=False)
    if not result.report.passed:
        raise typer.Exit(1)


def monitor_command(
    as_of: AsOf = None,
    window_days: Annotated[float, typer.Option(min=0.01)] = 7.0,
    prometheus: Annotated[Path | None, typer.Option(help="write Prometheus text here")] = None,
    fail_on_alert: Annotated[bool, typer.Option(help="exit 1 when an alert fires")] = False,
) -> None:
    """Rolling metrics, label lag and alert rules."""
    (result,) = run_cli_step(Step.MONITOR, as_of, window_days=window_days)
    out.print(_metrics_table(result.report.metrics, f"last {window_days:g} days"))
    if prometheus is not None:
        prometheus.write_text(result.report.prometheus())
    if fail_on_alert and result.report.alerts:
        raise typer.Exit(1)


def roll_forward_command(
    version: Annotated[str, typer.Argument(help="version or alias to serve as production")],
    reason: Annotated[str, typer.Option(help="why (the promotion log and the commit)")] = "",
    as_of: AsOf = None,
    env: Annotated[str | None, typer.Option(help="overlay environment")] = None,
    pull_request: Annotated[
        bool, typer.Option("--pull-request", help="push to a review branch, not main")
    ] = False,
) -> None:
    """Make a version production at once, without an A/B test: the alias moves and the
    routing is committed to the GitOps repository (what the servers follow)."""
    ctx = context(env=env, pull_request=pull_request or None)
    run_cli_step(Step.ROLL_FORWARD, as_of, ctx=ctx, version=version, reason=reason)


def update_dejavu_command(as_of: AsOf = None, data: Data = None, only: Only = False) -> None:
    """Games finished since production's analog database was filled join it -> a new
    version (A/B tested by default)."""
    run_cli_step(Step.UPDATE_DEJAVU, as_of, only=only, ctx=context(data))


def retrain_command(
    as_of: AsOf = None,
    data: Data = None,
    force: Annotated[bool, typer.Option(help="retrain even when not due")] = False,
    only: Only = False,
) -> None:
    """Retrain every component (when due) on the games before --as-of minus a 45-day
    holdout (or earlier, so that at least 300 games are held out) -> validated against
    production on the held-out games -> A/B test (or a data refresh)."""
    run_cli_step(Step.RETRAIN, as_of, only=only, ctx=context(data), force=force)


def rollout_command(
    action: Annotated[str, typer.Argument(help="start | decide | status")],
    candidate: Annotated[str, typer.Option(help="version or alias to test")] = "candidate",
    share: Annotated[float, typer.Option(help="first challenger share", min=0.01, max=1.0)] = 0.1,
    as_of: AsOf = None,
    env: Annotated[str | None, typer.Option(help="overlay environment")] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="validation report (Markdown) to put in the GitOps commit message"),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(help="status: also ask this server (URL) what it serves, and compare"),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(
            help="start: first compare the candidate's forecasts with production's on recent "
            "games; equal ones are rolled forward as a data refresh (--no-compare: A/B anyway)"
        ),
    ] = True,
) -> None:
    """A/B rollout: start one, decide from the logged paired forecasts, or show it (status:
    the routing in git, the registry's aliases and the server's, and whether they agree)."""
    from nba_forecast.lifecycle.promotion import rollout_state

    if action not in ("start", "decide", "status"):
        raise fail(f"unknown action {action!r}: start, decide or status")
    try:
        report_text = report.read_text() if report is not None else ""
    except OSError as error:
        raise fail(f"cannot read --report: {error}") from None
    ctx = context(env=env)
    if action == "start":
        run_cli_step(
            Step.START_ROLLOUT,
            as_of,
            ctx=ctx,
            candidate=candidate,
            share=share,
            report=report_text,
            compare=compare,
        )
    elif action == "decide":
        run_cli_step(Step.DECIDE_ROLLOUT, as_of, ctx=ctx)
    state = rollout_state(ctx)
    if state is None:
        out.print("no rollout", highlight=False)
    else:
        out.print(
            f"champion {state.champion}, challenger {state.challenger}: "
            f"{state.decision or f'running at {state.share_b:.0%}'}; {state.n} paired games "
            f"{state.reason if state.decision else state.why_undecided()}",
            highlight=False,
        )
    if action == "status":
        _report_agreement(ctx, server)


def _report_agreement(ctx: Context, server: str | None) -> None:
    """What serves, by each source of truth; exit 1 when they disagree."""
    from nba_forecast.lifecycle.promotion import serving_views

    try:
        views, disagreements = serving_views(ctx, server)
    except (RuntimeError, ValueError, OSError) as error:
        raise fail(str(error)) from None
    for source, (production, challenger, share) in views.items():
        out.print(
            f"{source:>8}: production {production}, challenger {challenger or '-'}"
            + (f" at {share:.0%}" if challenger else ""),
            highlight=False,
        )
    if disagreements:
        out.print("disagree: " + "; ".join(disagreements), highlight=False)
        raise typer.Exit(1)
    sources = list(views)
    out.print(f"{', '.join(sources[:-1])} and {sources[-1]} agree", highlight=False)


def bootstrap_command(
    through_season: Annotated[
        int | None, typer.Option(help="train on seasons up to this one (default: all games)")
    ] = None,
    data: Data = None,
) -> None:
    """Train on the shipped games and register the result as version 1 (production); makes
    the registry and the prediction log when they are not there."""
    ctx = context(data, create=True)
    run_cli_step(Step.BOOTSTRAP, None, ctx=ctx, through_season=through_season)
    try:
        ctx.open_log().engine.dispose()  # the log too: what serves next writes to it
    except STEP_ERRORS as error:
        raise fail(f"prediction log: {str(error).splitlines()[0]}") from None
