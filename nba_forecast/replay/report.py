"""Writing a frozen-versus-continuous replay: Markdown, JSON (summary, events) and a PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from nba_forecast.replay.driver import ReplayResult, conditional_coverage, period_table

FIGURE = "replay.png"
ROLLING_GAMES = 100
EVENT_KINDS = (
    "promote",
    "rollback",
    "superseded",
    "ramp",
    "refresh",
    "queued",
    "recalibrate",
    "roll_forward",
    "update_dejavu",
    "retrain",
    "validate",
    "start_rollout",
)
MARKS = {  # colours apart from the two modes' lines (tab:blue, tab:orange)
    "retrain": ("saddlebrown", "retrain"),
    "start_rollout": ("purple", "A/B start"),
    "promote": ("green", "promotion"),
    "rollback": ("red", "rollback"),
    "superseded": ("grey", "A/B superseded"),
    "roll_forward": ("magenta", "rolled forward"),
}
STEP_COLUMNS = ("due", "ran", "blocked", "not_due")
GAP = pd.Timedelta(days=30)  # an off-season: the lines break there


def _rolling(result: ReplayResult) -> pd.DataFrame:
    p = result.predictions.reset_index(drop=True)
    error = (p["forecast"] - p["actual"]).abs()
    covered = ((p["actual"] >= p["lower"]) & (p["actual"] <= p["upper"])).astype(float)
    width = p["upper"] - p["lower"]
    least = max(1, min(20, len(p)))  # a short run still draws its lines
    rolling = pd.DataFrame(
        {
            "date": pd.to_datetime(p["date"]),
            "mae": error.rolling(ROLLING_GAMES, min_periods=least).mean(),
            "coverage": covered.rolling(ROLLING_GAMES, min_periods=least).mean() * 100,
            "width": width.rolling(ROLLING_GAMES, min_periods=least).mean(),
        }
    )
    # a row of NaN after the last game before each off-season, so no line crosses it
    gaps = rolling.index[rolling["date"].diff().shift(-1) > GAP]
    breaks = pd.DataFrame({"date": rolling.loc[gaps, "date"] + pd.Timedelta(days=1)})
    return pd.concat([rolling, breaks]).sort_values("date", kind="stable")


def _figure(frozen: ReplayResult, continuous: ReplayResult, path: Path, title: str) -> None:
    fig, axes = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    labels = {
        "mae": f"MAE, last {ROLLING_GAMES} games",
        "coverage": f"coverage % of the 95% interval, last {ROLLING_GAMES}",
        "width": f"interval width, last {ROLLING_GAMES}",
    }
    for result, style in ((frozen, "--"), (continuous, "-")):
        rolling = _rolling(result)
        for axis, column in zip(axes, labels, strict=True):
            axis.plot(rolling["date"], rolling[column], style, label=result.mode, linewidth=1)
    labelled: set[str] = set()
    for event in continuous.events:
        if event["kind"] in MARKS:
            color, label = MARKS[event["kind"]]
            for axis in axes:
                axis.axvline(
                    pd.Timestamp(event["date"]),
                    color=color,
                    alpha=0.6,
                    linewidth=1,
                    label=label if axis is axes[2] and label not in labelled else None,
                )
            labelled.add(label)
    refreshes = [pd.Timestamp(e["date"]) for e in continuous.events if e["kind"] == "refresh"]
    if refreshes:  # frequent: ticks along the top of the width panel, not lines
        top = axes[2].get_ylim()[1]
        axes[2].plot(
            refreshes,
            [top] * len(refreshes),
            "|",
            color="tab:cyan",
            markersize=10,
            label="data refresh (no A/B)",
        )
    axes[1].axhline(95, color="black", linewidth=0.8)
    for axis, label in zip(axes, labels.values(), strict=True):
        axis.set(ylabel=label)
        axis.yaxis.label.set_size(8)
    axes[0].set_title(title)
    axes[0].legend(loc="upper left")
    axes[2].legend(loc="lower left", fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def step_counts(result: ReplayResult) -> list[dict[str, Any]]:
    return [
        {"step": step, **{c: counts.get(c, 0) for c in STEP_COLUMNS}}
        for step, counts in sorted(result.steps.items())
    ]


def _markdown_table(table: pd.DataFrame) -> str:
    rows = [
        "| mode | season | month | games | MAE | persistence MAE | coverage | mean width "
        "| Winkler |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        rows.append(
            f"| {r.mode} | {r.season} | {r.month} | {r.games} | {r.mae:.3f} | "
            f"{r.persistence_mae:.3f} | {r.coverage:.1%} | {r.width:.2f} | {r.winkler:.2f} |"
        )
    return "\n".join(rows)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def summary(frozen: ReplayResult, continuous: ReplayResult) -> dict[str, Any]:
    """What a machine reads of a replay: per season and for the run, both modes; the step
    counts and the event counts of the continuous run."""
    table = period_table(frozen, continuous)
    whole = table[table["month"] == "all"]
    metrics = ["games", "mae", "persistence_mae", "coverage", "width", "winkler"]
    by_mode: dict[str, Any] = {}
    for mode, part in whole.groupby("mode"):
        by_mode[str(mode)] = {
            str(r["season"]): {k: _clean(r[k]) for k in metrics} for _, r in part.iterrows()
        }
    return {
        "seasons": sorted(int(s) for s in continuous.predictions["season"].unique()),
        "metrics": by_mode,  # mode -> season (or "all") -> metric
        "steps": step_counts(continuous),
        "events": {kind: continuous.count(kind) for kind in EVENT_KINDS},
        # mode -> "width" / "abs_m18" -> quintiles: games, range, coverage, mean width
        "conditional_coverage": {r.mode: conditional_coverage(r) for r in (frozen, continuous)},
    }


def write_replay_report(
    frozen: ReplayResult, continuous: ReplayResult, directory: Path, title: str
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    table = period_table(frozen, continuous)
    _figure(frozen, continuous, directory / FIGURE, title)
    seasons = table[table["month"] == "all"]
    steps = ["| step | due | ran | blocked | nothing due |", "|---|---|---|---|---|"]
    steps += [
        f"| {s['step']} | {s['due']} | {s['ran']} | {s['blocked']} | {s['not_due']} |"
        for s in step_counts(continuous)
    ]
    events = ["| date | event | version | what and why |", "|---|---|---|---|"]
    events += [
        f"| {e['date']} | {e['kind']} | {e['version']} | {e['detail']} |" for e in continuous.events
    ] or ["| | none | | |"]
    counts = {kind: continuous.count(kind) for kind in EVENT_KINDS}
    conditional = ["| mode | by | quintile | games | range | coverage | mean width |"]
    conditional.append("|---|---|---|---|---|---|---|")
    for result in (frozen, continuous):
        for by, rows in conditional_coverage(result).items():
            conditional += [
                f"| {result.mode} | {'predicted width' if by == 'width' else 'abs(m_18)'} | "
                f"{r['bucket']} | {r['games']} | {r['from']:.1f}-{r['to']:.1f} | "
                f"{r['coverage']:.1%} | {r['width']:.2f} |"
                for r in rows
            ]
    text = "\n\n".join(
        [
            f"# {title}",
            "Frozen: version 1 serves every game. Continuous: the scheduled lifecycle runs "
            "(online interval adaptation, weekly Dejavu update with refitted weights, monthly "
            "retrain when due; a candidate that forecasts like production is rolled forward as "
            "a data refresh, any other is A/B tested with a sequential test).",
            "## By season",
            _markdown_table(seasons),
            "## Coverage by quintile of predicted width and of abs(m_18)",
            "\n".join(conditional),
            "## Lifecycle steps (continuous): how often each was due, ran, waited",
            "\n".join(steps),
            "## Lifecycle events (continuous)",
            ", ".join(f"{k}: {v}" for k, v in counts.items()),
            "\n".join(events),
            f"![rolling MAE, coverage and width]({FIGURE})",
            "## By month",
            _markdown_table(table[table["month"] != "all"]),
        ]
    )
    (directory / "report.md").write_text(text + "\n")
    (directory / "events.json").write_text(json.dumps(continuous.events, indent=2))
    (directory / "summary.json").write_text(
        json.dumps(summary(frozen, continuous), indent=2, default=float)
    )
    return directory / "report.md"
