"""Validate a candidate against the champion on the SAME games.

Point gate: a one-sided Diebold-Mariano test (HLN correction) on paired absolute errors that
the candidate is not worse than the champion by more than a practical margin
(H1: E|e_cand| < E|e_champ| + margin). Interval gate: the candidate's coverage is not
significantly below target (Kupiec), and its mean width and Winkler score are not worse than
the champion's beyond tolerances. The persistence baseline is always reported alongside.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from nba_forecast.data.splits import order_dates
from nba_forecast.evaluation.interval_tests import CoverageTest, kupiec_pof
from nba_forecast.evaluation.metrics import forecast_metrics
from nba_forecast.evaluation.paired_tests import diebold_mariano_losses, p_text
from nba_forecast.lifecycle.context import Context, StepResult
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.retrain import HOLDOUT_DAYS
from nba_forecast.lifecycle.versions import load_model
from nba_forecast.models.base import N_INPUT_MINUTES, check_margins, check_target
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix

VALIDATION_REPORT = "validation"  # the name a version's validation is kept under


@dataclass(frozen=True)
class ValidationConfig:
    margin: float = 0.05  # points of MAE the candidate may lose and still pass
    significance: float = 0.05
    width_tolerance: float = 0.05  # candidate mean width at most 5% wider
    winkler_tolerance: float = 0.02
    min_games: int = 200


@dataclass
class ValidationReport:
    n: int
    passed: bool
    reasons: list[str]
    metrics: dict[str, dict[str, Any]]
    dm_statistic: float
    dm_p_value: float
    coverage_p_value: float
    config: dict[str, Any] = field(default_factory=dict)
    # one per gate: name, rule (its threshold in words), value, passed
    gates: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return value

        data = {k: clean(v) for k, v in asdict(self).items()}
        return json.dumps(data, indent=2, sort_keys=True)

    def to_markdown(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        rows = ["| model | MAE | coverage | mean width | Winkler |", "|---|---|---|---|---|"]
        for name, m in self.metrics.items():
            rows.append(
                f"| {name} | {m['mae']:.3f} | {m['coverage']:.1%} | "
                f"{m['mean_width']:.2f} | {m['winkler']:.2f} |"
            )
        lines = [
            f"# Validation: candidate {verdict} on {self.n} games",
            "",
            *rows,
            "",
            f"Diebold-Mariano (HLN, H1: candidate MAE < champion MAE + "
            f"{self.config.get('margin')}): statistic {self.dm_statistic:.2f}, "
            f"p = {self.dm_p_value:.4f}. Kupiec coverage test: p = {self.coverage_p_value:.4f}.",
            "",
            *(f"- {reason}" for reason in self.reasons),
        ]
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        json_path, md_path = directory / "validation.json", directory / "validation.md"
        json_path.write_text(self.to_json())
        md_path.write_text(self.to_markdown())
        return json_path, md_path


def _interval_metrics(
    y: NDArray, forecast: NDArray, lower: NDArray, upper: NDArray
) -> dict[str, Any]:
    return forecast_metrics(y, forecast, lower, upper).as_dict()


def _gate(name: str, rule: str, value: str, passed: bool) -> dict[str, Any]:
    return {"name": name, "rule": rule, "value": value, "passed": passed}


def _gates(
    metrics: dict[str, dict[str, Any]],
    dm_p_value: float,
    coverage: CoverageTest,
    alpha: float,
    config: ValidationConfig,
) -> tuple[bool, list[str], list[dict[str, Any]]]:
    """The four gates (points, coverage, width, Winkler): passed, one reason each, and each
    gate's rule (its threshold), value and verdict."""
    cand, champ = metrics["candidate"], metrics["champion"]
    point_ok = dm_p_value < config.significance
    coverage_ok = not coverage.too_many_misses
    width_ratio = cand["mean_width"] / champ["mean_width"]
    width_ok = width_ratio <= 1 + config.width_tolerance
    winkler_ratio = cand["winkler"] / champ["winkler"]
    winkler_ok = winkler_ratio <= 1 + config.winkler_tolerance
    reasons = [
        f"point forecasts: candidate MAE {cand['mae']:.3f} vs champion "
        f"{champ['mae']:.3f} (margin {config.margin}): "
        + ("non-inferior" if point_ok else "not shown to be within the margin"),
        f"coverage {1 - coverage.miss_rate:.1%} vs target {1 - alpha:.0%}: "
        + ("ok" if coverage_ok else "significantly below target"),
        f"mean width {width_ratio:.3f}x the champion's: "
        + ("ok" if width_ok else f"over {1 + config.width_tolerance:.2f}x"),
        f"Winkler score {winkler_ratio:.3f}x the champion's: "
        + ("ok" if winkler_ok else f"over {1 + config.winkler_tolerance:.2f}x"),
    ]
    gates = [
        _gate(
            "point forecasts",
            f"MAE below the champion's + {config.margin} (Diebold-Mariano, one-sided, "
            f"at {config.significance})",
            f"{cand['mae']:.3f} vs {champ['mae']:.3f}, {p_text(dm_p_value)}",
            point_ok,
        ),
        _gate(
            "coverage",
            f"not significantly below {1 - alpha:.0%} (Kupiec, at {config.significance})",
            f"{1 - coverage.miss_rate:.1%}, {p_text(coverage.p_value)}",
            coverage_ok,
        ),
        _gate(
            "mean width",
            f"at most {1 + config.width_tolerance:.2f}x the champion's",
            f"{width_ratio:.3f}x",
            width_ok,
        ),
        _gate(
            "Winkler score",
            f"at most {1 + config.winkler_tolerance:.2f}x the champion's",
            f"{winkler_ratio:.3f}x",
            winkler_ok,
        ),
    ]
    return point_ok and coverage_ok and width_ok and winkler_ok, reasons, gates


def validate(
    champion: HalftimeEnsemble,
    candidate: HalftimeEnsemble,
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    config: ValidationConfig | None = None,
) -> ValidationReport:
    """Score both models on the same games and apply the gates."""
    config = config or ValidationConfig()
    X_ = check_margins(X)
    y_ = check_target(y, len(X_))
    if len(y_) < config.min_games:
        raise ValueError(f"validation needs at least {config.min_games} games, got {len(y_)}")
    champ = champion.predict_details(X_)
    cand = candidate.predict_details(X_)
    persistence = X_[:, N_INPUT_MINUTES - 1]
    persistence_width = champ.upper - champ.forecast  # show persistence with the champion's width
    metrics = {
        "champion": _interval_metrics(y_, champ.forecast, champ.lower, champ.upper),
        "candidate": _interval_metrics(y_, cand.forecast, cand.lower, cand.upper),
        "persistence": _interval_metrics(
            y_, persistence, persistence - persistence_width, persistence + persistence_width
        ),
    }
    dm = diebold_mariano_losses(
        np.abs(cand.forecast - y_), np.abs(champ.forecast - y_) + config.margin
    )
    misses = (y_ < cand.lower) | (y_ > cand.upper)
    coverage = kupiec_pof(misses, candidate.alpha, config.significance)
    passed, reasons, gates = _gates(metrics, dm.p_value, coverage, candidate.alpha, config)
    return ValidationReport(
        n=len(y_),
        passed=passed,
        reasons=reasons,
        metrics=metrics,
        dm_statistic=dm.statistic,
        dm_p_value=dm.p_value,
        coverage_p_value=coverage.p_value,
        config=asdict(config),
        gates=gates,
    )


def holdout(
    ctx: Context,
    as_of: dt.datetime,
    *,
    holdout_days: int = HOLDOUT_DAYS,
    season: int | None = None,
    after: str | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
    """The games to validate on (X, y and a description): those of ``season``; else those
    after the date ``after`` (the candidate's last training game) and before ``as_of``;
    else those of the ``holdout_days`` before ``as_of`` (which retraining left out)."""
    data = ctx.games.with_features()
    dates = order_dates(data)
    if season is not None:
        chosen = data[data["season"].astype(int) == season]
        where = f"season {season}"
    elif after is not None:
        chosen = data[(dates > pd.Timestamp(after)) & (dates < pd.Timestamp(as_of.date()))]
        where = f"the games after {after} (the candidate's last training game)"
    else:
        start = pd.Timestamp((as_of - dt.timedelta(days=holdout_days)).date())
        chosen = data[(dates >= start) & (dates < pd.Timestamp(as_of.date()))]
        where = f"the {holdout_days} days before {as_of.date()}"
    if chosen.empty:
        raise ValueError(f"no games to validate on in {where}")
    X, y = design_matrix(chosen)
    return X, y, where


def validate_candidate(
    ctx: Context,
    as_of: dt.datetime,
    *,
    candidate: str = "candidate",
    champion: str = "production",
    holdout_days: int = HOLDOUT_DAYS,
    season: int | None = None,
    config: ValidationConfig | None = None,
) -> StepResult:
    """Champion vs candidate on the holdout games; the report says whether it passed."""
    trained_to = (
        ctx.registry.manifest(ctx.registry.resolve(candidate)).trained_to
        if season is None
        else None
    )
    X, y, where = holdout(ctx, as_of, holdout_days=holdout_days, season=season, after=trained_to)
    versions = [ctx.registry.resolve(name) for name in (champion, candidate)]
    models = [load_model(ctx.registry, version) for version in versions]
    report = validate(models[0], models[1], X, y, config)
    verdict = "passed" if report.passed else "failed"
    # kept beside the version: its model card shows how it was validated
    ctx.registry.attach_report(
        versions[1],
        VALIDATION_REPORT,
        {
            **json.loads(report.to_json()),
            "at": as_of.isoformat(),
            "champion": versions[0],
            "candidate": versions[1],
            "games_from": where,
        },
    )
    return StepResult(
        Step.VALIDATE,
        f"candidate {versions[1]} {verdict} against {versions[0]} on {report.n} games of {where}",
        versions[1],
        {
            "games": report.n,
            "dm_p_value": report.dm_p_value,
            "coverage_p_value": report.coverage_p_value,
            "champion_mae": report.metrics["champion"]["mae"],
            "candidate_mae": report.metrics["candidate"]["mae"],
            "persistence_mae": report.metrics["persistence"]["mae"],
            "passed": float(report.passed),
        },
        report,
    )
