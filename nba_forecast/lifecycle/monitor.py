"""Monitor: rolling metrics per version and arm, label lag, alert rules, Prometheus text.

Metric names start with ``nba_halftime_``; labels are model version, arm and rule, never a
game id (one series per game would explode a Prometheus server).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import pandas as pd

from nba_forecast.lifecycle.context import Context, StepResult
from nba_forecast.lifecycle.policy import Step
from nba_forecast.storage.prediction_log import PredictionLog


@dataclass(frozen=True)
class AlertRules:
    max_mae: float = 5.5  # persistence's MAE is about 4.5 on real games
    min_coverage: float = 0.90
    min_games: int = 30  # fewer outcomes than this: too noisy to alert on MAE or coverage
    max_hours_without_forecast: float = 48.0  # NBA days have games; two empty days are not normal
    label_lag_hours: float = 2.0  # a halftime outcome is due minutes after the forecast
    max_unlabelled: int = 0


@dataclass
class MonitorReport:
    as_of: dt.datetime
    window_days: float
    metrics: pd.DataFrame  # one row per model version and arm
    hours_since_forecast: float | None
    unlabelled: int
    alerts: list[str] = field(default_factory=list)
    # why a rule did not speak: an arm with too few games is not judged, and says so
    not_evaluated: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The alerts, else "no alerts"; then any arm the rules could not judge, and why."""
        text = "; ".join(self.alerts) or "no alerts"
        if self.not_evaluated:
            text += " (not evaluated: " + "; ".join(self.not_evaluated) + ")"
        return text

    def to_markdown(self) -> str:
        """The report for people (the KFP UI renders it): alerts, then metrics per arm."""
        lines = [
            f"# Monitor, {self.window_days:g} days to {self.as_of.isoformat(timespec='minutes')}",
            "",
            "**Alerts:** " + ("; ".join(self.alerts) if self.alerts else "none"),
            "",
            *(
                [f"**Not evaluated:** {'; '.join(self.not_evaluated)}", ""]
                if self.not_evaluated
                else []
            ),
            f"Unlabelled forecasts past due: {self.unlabelled}. Hours since the last forecast: "
            + (
                "none in the log"
                if self.hours_since_forecast is None
                else f"{self.hours_since_forecast:.1f}"
            ),
            "",
            "| model version | arm | games | MAE | coverage | mean width |",
            "|---|---|---|---|---|---|",
        ]
        for row in self.metrics.itertuples(index=False):
            lines.append(
                f"| {row.model_version} | {row.arm} | {int(row.n)} | {row.mae:.3f} "
                f"| {row.coverage:.1%} | {row.mean_width:.2f} |"
            )
        return "\n".join(lines) + "\n"

    def prometheus(self) -> str:
        """The report in Prometheus text exposition format."""
        lines: list[str] = []

        def family(name: str, help_text: str) -> None:
            lines.extend(
                [f"# HELP nba_halftime_{name} {help_text}", f"# TYPE nba_halftime_{name} gauge"]
            )

        for column, help_text in [
            ("mae", "mean absolute error of the halftime margin forecast"),
            ("rmse", "root mean squared error"),
            ("bias", "mean forecast minus actual"),
            ("coverage", "share of actual margins inside the interval"),
            ("mean_width", "mean interval width in points"),
            ("winkler", "mean Winkler interval score"),
            ("games", "games with outcomes in the window"),
        ]:
            family(f"{column}", f"{help_text} over the last {self.window_days:g} days")
            source = "n" if column == "games" else column
            for row in self.metrics.itertuples(index=False):
                labels = f'model_version="{row.model_version}",arm="{row.arm}"'
                lines.append(f"nba_halftime_{column}{{{labels}}} {float(getattr(row, source)):.6g}")
        family("hours_since_last_forecast", "hours since the newest forecast")
        hours = math.inf if self.hours_since_forecast is None else self.hours_since_forecast
        lines.append(f"nba_halftime_hours_since_last_forecast {hours:.6g}")
        family("unlabelled_games", "forecasts past their due time without an outcome")
        lines.append(f"nba_halftime_unlabelled_games {self.unlabelled}")
        family("alert", "1 while an alert rule fires")
        for rule in ("mae_above", "coverage_below", "no_forecasts", "label_lag"):
            firing = any(a.startswith(rule) for a in self.alerts)
            lines.append(f'nba_halftime_alert{{rule="{rule}"}} {int(firing)}')
        return "\n".join(lines) + "\n"


def monitor(
    ctx: Context,
    as_of: dt.datetime,
    *,
    window_days: float = 7.0,
    rules: AlertRules | None = None,
) -> StepResult:
    """The hourly step: the alert rules over the window ending at ``as_of``."""
    report = monitor_report(ctx.log, as_of, window_days=window_days, rules=rules)
    detail = report.summary()
    metrics = {"alerts": len(report.alerts), "unlabelled": report.unlabelled}
    return StepResult(Step.MONITOR, detail, metrics=metrics, report=report)


def monitor_report(
    log: PredictionLog,
    as_of: dt.datetime,
    *,
    window_days: float = 7.0,
    rules: AlertRules | None = None,
) -> MonitorReport:
    """Evaluate the alert rules over the window ending at ``as_of``."""
    rules = rules or AlertRules()
    metrics = log.window_metrics(as_of - dt.timedelta(days=window_days), as_of)
    last = log.last_prediction_at(as_of)
    hours = None if last is None else (as_of - last).total_seconds() / 3600
    unlabelled = log.label_lag(as_of, dt.timedelta(hours=rules.label_lag_hours))
    alerts, not_evaluated = [], []
    for row in metrics.itertuples(index=False):
        where = f"{row.model_version}/{row.arm}"
        if row.n < rules.min_games:
            not_evaluated.append(
                f"{where} has {int(row.n)} finished game(s), below the minimum of "
                f"{rules.min_games} for the MAE and coverage rules"
            )
            continue
        if row.mae > rules.max_mae:
            alerts.append(f"mae_above: {where} MAE {row.mae:.2f} > {rules.max_mae}")
        if row.coverage < rules.min_coverage:
            alerts.append(
                f"coverage_below: {where} coverage {row.coverage:.1%} < {rules.min_coverage:.0%}"
            )
    if hours is None or hours > rules.max_hours_without_forecast:
        shown = "ever" if hours is None else f"{hours:.0f} h"
        alerts.append(
            f"no_forecasts: none for {shown} (limit {rules.max_hours_without_forecast:g} h)"
        )
    if unlabelled > rules.max_unlabelled:
        alerts.append(
            f"label_lag: {unlabelled} game(s) without an outcome "
            f"{rules.label_lag_hours:g} h after the forecast"
        )
    return MonitorReport(as_of, window_days, metrics, hours, unlabelled, alerts, not_evaluated)
