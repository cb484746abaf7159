"""One command per lifecycle step, on the configured prediction log and registry
(embedded defaults: SQLite and a local directory under ``NBA_FORECAST_HOME``)."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from nba_forecast.cli.console import fail, out
from nba_forecast.cli.evaluate import _games_with
from nba_forecast.data.errors import DataError
from nba_forecast.data.loaders import load_margins
from nba_forecast.lifecycle.collect import collect
from nba_forecast.lifecycle.monitor import monitor
from nba_forecast.lifecycle.recalibrate import run_recalibration
from nba_forecast.lifecycle.registry import Registry, RegistryError
from nba_forecast.settings import Settings
from nba_forecast.storage.prediction_log import PredictionLog

AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="the step's time, ISO 8601 (UTC if no zone); default now"),
]


def _steps() -> ModuleType:
    """The step functions, imported when a command runs: they load torch, which `--help`
    and the light commands should not wait for."""
    from nba_forecast.lifecycle import steps

    return steps


def parse_as_of(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"bad --as-of {text!r}: use ISO 8601, e.g. 2015-01-15T09:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _log() -> PredictionLog:
    try:
        return PredictionLog.open()
    except (SQLAlchemyError, ValueError) as error:
        url = Settings().resolved_database_url()
        raise fail(f"prediction log {url}: {str(error).splitlines()[0]}") from None


def _registry() -> Registry:
    return Registry.open()


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
        Path | None, typer.Option("--out", help="write the joined rows (.parquet or .csv)")
    ] = None,
) -> None:
    """Forecasts joined with outcomes known at --as-of, and metrics per version and arm."""
    result = collect(_log(), parse_as_of(as_of), window_days=window_days)
    out.print(
        _metrics_table(
            result.metrics,
            f"{result.start:%Y-%m-%d %H:%M} .. "
            f"{result.as_of:%Y-%m-%d %H:%M} UTC ({len(result.joined)} rows)",
        )
    )
    if output is not None:
        if output.suffix == ".parquet":
            result.joined.to_parquet(output, index=False)
        else:
            result.joined.to_csv(output, index=False)
        out.print(f"wrote {output}", highlight=False)


def recalibrate_command(
    as_of: AsOf = None,
    window_days: Annotated[float, typer.Option(min=0.01)] = 30.0,
    min_games: Annotated[int, typer.Option(min=1)] = 100,
    force: Annotated[bool, typer.Option(help="recalibrate even without drift")] = False,
) -> None:
    """Test production's coverage; on drift register a recalibrated candidate."""
    try:
        result = run_recalibration(
            _log(),
            _registry(),
            parse_as_of(as_of),
            window_days=window_days,
            min_games=min_games,
            force=force,
        )
    except (RegistryError, ValueError) as error:
        raise fail(str(error)) from None
    out.print(result.drift.reason, highlight=False)
    if result.candidate:
        out.print(
            f"candidate {result.candidate} (parent {result.production})"
            + ("" if result.promoted else ", unchanged"),
            highlight=False,
        )


def validate_command(
    champion: Annotated[str, typer.Option(help="version id or alias")] = "production",
    candidate: Annotated[str, typer.Option(help="version id or alias")] = "candidate",
    season: Annotated[
        int | None,
        typer.Option(help="validate on this season's games (default: the 45 days before --as-of)"),
    ] = None,
    as_of: AsOf = None,
    data: Annotated[Path | None, typer.Option(help="more games (our margins format)")] = None,
    report_dir: Annotated[Path, typer.Option("--out")] = Path("reports/validation"),
) -> None:
    """Champion vs candidate on the same games; exit 1 when the candidate fails."""
    games = _games_with(data)
    if season is not None:
        chosen = games.assign(_evaluate=games["season"].astype(int) == season)
        chosen = chosen[chosen["season"].astype(int) <= season]
    else:
        chosen = _steps().holdout_games(games, parse_as_of(as_of))
    if not chosen["_evaluate"].any():
        raise fail(
            f"no games to validate on (season {season})"
            if season is not None
            else "no games in the 45 days before --as-of"
        )
    try:
        report = _steps().validate_step(_registry(), champion, candidate, chosen)
    except (RegistryError, ValueError) as error:
        raise fail(str(error)) from None
    _, markdown = report.write(report_dir)
    out.print(report.to_markdown(), highlight=False)
    out.print(f"report: {markdown}", highlight=False)
    if not report.passed:
        raise typer.Exit(1)


def monitor_command(
    as_of: AsOf = None,
    window_days: Annotated[float, typer.Option(min=0.01)] = 7.0,
    prometheus: Annotated[Path | None, typer.Option(help="write Prometheus text here")] = None,
    fail_on_alert: Annotated[bool, typer.Option(help="exit 1 when an alert fires")] = False,
) -> None:
    """Rolling metrics, label lag and alert rules."""
    report = monitor(_log(), parse_as_of(as_of), window_days=window_days)
    out.print(_metrics_table(report.metrics, f"last {window_days:g} days"))
    for alert in report.alerts or ["no alerts"]:
        out.print(alert, highlight=False)
    if prometheus is not None:
        prometheus.write_text(report.prometheus())
    if fail_on_alert and report.alerts:
        raise typer.Exit(1)


def update_dejavu_command(
    games_file: Annotated[Path, typer.Option("--games", help="finished games (margins format)")],
    as_of: AsOf = None,
) -> None:
    """Add finished games to production's analog database -> candidate version."""
    try:
        finished = load_margins(games_file).games
    except DataError as error:
        raise fail(str(error)) from None
    try:
        result = _steps().update_dejavu_step(
            _registry(), finished, _games_with(games_file), parse_as_of(as_of)
        )
    except (RegistryError, ValueError) as error:
        raise fail(str(error)) from None
    out.print(f"{result.detail}; candidate {result.candidate or 'unchanged'}", highlight=False)


def retrain_command(
    as_of: AsOf = None,
    data: Annotated[Path | None, typer.Option(help="more games (our margins format)")] = None,
    force: Annotated[bool, typer.Option(help="retrain even when not due")] = False,
) -> None:
    """Retrain every component (when due) on the games before --as-of minus a 45-day
    holdout that validate then uses -> candidate."""
    try:
        result = _steps().retrain_step(
            _registry(), _games_with(data), parse_as_of(as_of), force=force
        )
    except (RegistryError, ValueError) as error:
        raise fail(str(error)) from None
    out.print(f"{result.detail}; candidate {result.candidate or 'none'}", highlight=False)


def rollout_command(
    action: Annotated[str, typer.Argument(help="start | decide | status")],
    candidate: Annotated[str, typer.Option(help="version or alias to test")] = "candidate",
    share: Annotated[float, typer.Option(help="first challenger share", min=0.01, max=1.0)] = 0.1,
    as_of: AsOf = None,
    repo: Annotated[
        Path | None, typer.Option(help="GitOps repository (default: under NBA_FORECAST_HOME)")
    ] = None,
    env: Annotated[str, typer.Option(help="overlay environment")] = "production",
    report: Annotated[
        Path | None,
        typer.Option(help="validation report (Markdown) to put in the GitOps commit message"),
    ] = None,
) -> None:
    """A/B rollout: start one, decide from the logged paired forecasts, or show it."""
    registry = _registry()
    gitops_repo = repo or Settings().home.expanduser() / "gitops"
    try:
        report_text = report.read_text() if report is not None else ""
    except OSError as error:
        raise fail(f"cannot read --report: {error}") from None
    try:
        if action == "start":
            state = _steps().start_rollout(
                registry, candidate, gitops_repo, env=env, share=share, report=report_text
            )
        elif action == "decide":
            state = _steps().decide_rollout(
                registry, _log(), parse_as_of(as_of), gitops_repo, env=env
            )
        elif action == "status":
            found = _steps().rollout_state(registry)
            if found is None:
                out.print("no rollout", highlight=False)
                return
            state = found
        else:
            raise fail(f"unknown action {action!r}: start, decide or status")
    except RegistryError as error:
        raise fail(str(error)) from None
    out.print(
        f"champion {state.champion}, challenger {state.challenger}: "
        f"{state.decision or f'running at {state.share_b:.0%}'}; {state.n} paired games "
        f"{state.reason}",
        highlight=False,
    )


def bootstrap_command(
    through_season: Annotated[
        int | None, typer.Option(help="train on seasons up to this one (default: all games)")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="more games (our margins format)")] = None,
) -> None:
    """Train on the shipped games and register the result as version 1 (production)."""
    registry = _registry()
    games = _games_with(data)
    if through_season is not None:
        games = games[games["season"].astype(int) <= through_season]
    try:
        if "production" in registry.aliases():
            raise fail(
                f"production already exists ({registry.resolve('production')}); "
                "bootstrap only starts an empty registry"
            )
        model, window = _steps().train_ensemble(games)
        with tempfile.TemporaryDirectory() as tmp:
            manifest = registry.register(
                model.save(Path(tmp) / "v1"),
                data_window=window.as_dict(),
                metrics={"weights": model.weights},
            )
        registry.promote("production", manifest["version"], reason="bootstrap")
    except (RegistryError, ValueError) as error:
        raise fail(str(error)) from None
    out.print(
        f"production = {manifest['version']} (trained on {window.games:,} games "
        f"through {window.train_to})",
        highlight=False,
    )
