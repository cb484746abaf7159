"""Writing a frozen-versus-continuous replay: Markdown, JSON events and a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from nba_forecast.replay.driver import ReplayResult, monthly_table

FIGURE = "replay.png"
ROLLING_GAMES = 100
EVENT_KINDS = (
    "promote",
    "rollback",
    "ramp",
    "recalibrate",
    "roll_forward",
    "update_dejavu",
    "retrain",
    "validate",
    "start_rollout",
)
MARKS = {
    "promote": ("green", "promotion"),
    "rollback": ("red", "rollback"),
    "roll_forward": ("purple", "recalibration rolled forward"),
}


def _rolling(result: ReplayResult) -> pd.DataFrame:
    p = result.predictions.reset_index(drop=True)
    error = (p["forecast"] - p["actual"]).abs()
    covered = ((p["actual"] >= p["lower"]) & (p["actual"] <= p["upper"])).astype(float)
    return pd.DataFrame(
        {
            "date": pd.to_datetime(p["date"]),
            "mae": error.rolling(ROLLING_GAMES, min_periods=20).mean(),
            "coverage": covered.rolling(ROLLING_GAMES, min_periods=20).mean(),
        }
    )


def _figure(frozen: ReplayResult, continuous: ReplayResult, path: Path, title: str) -> None:
    fig, (mae, coverage) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for result, style in ((frozen, "--"), (continuous, "-")):
        rolling = _rolling(result)
        mae.plot(rolling["date"], rolling["mae"], style, label=result.mode)
        coverage.plot(rolling["date"], rolling["coverage"] * 100, style, label=result.mode)
    labelled: set[str] = set()
    for event in continuous.events:
        if event["kind"] in MARKS:
            color, label = MARKS[event["kind"]]
            for axis in (mae, coverage):
                axis.axvline(
                    pd.Timestamp(event["date"]),
                    color=color,
                    alpha=0.5,
                    linewidth=1,
                    label=label if axis is coverage and label not in labelled else None,
                )
            labelled.add(label)
    coverage.axhline(95, color="black", linewidth=0.8)
    mae.set(ylabel=f"MAE, last {ROLLING_GAMES} games", title=title)
    coverage.set(ylabel=f"coverage % of the 95% interval, last {ROLLING_GAMES} games")
    mae.legend(loc="upper left")
    coverage.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_replay_report(
    frozen: ReplayResult, continuous: ReplayResult, directory: Path, title: str
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    table = monthly_table(frozen, continuous)
    _figure(frozen, continuous, directory / FIGURE, title)
    rows = [
        "| mode | month | games | MAE | persistence MAE | coverage | mean width |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        rows.append(
            f"| {r.mode} | {r.month} | {r.games} | {r.mae:.3f} | {r.persistence_mae:.3f} "
            f"| {r.coverage:.1%} | {r.width:.2f} |"
        )
    events = ["| date | event | version | detail |", "|---|---|---|---|"]
    events += [
        f"| {e['date']} | {e['kind']} | {e['version']} | {e['detail']} |" for e in continuous.events
    ]
    counts = {kind: continuous.count(kind) for kind in EVENT_KINDS}
    text = (
        "\n\n".join(
            [
                f"# {title}",
                "Frozen: version 1 serves the whole season. Continuous: the scheduled "
                "lifecycle runs (online interval adaptation, daily recalibration check, weekly "
                "Dejavu update, monthly retrain when due, A/B rollouts decided by a "
                "sequential test).",
                "\n".join(rows),
                "## Lifecycle events (continuous)",
                ", ".join(f"{k}: {v}" for k, v in counts.items()),
                "\n".join(events),
                f"![rolling MAE and coverage]({FIGURE})",
            ]
        )
        + "\n"
    )
    (directory / "report.md").write_text(text)
    (directory / "events.json").write_text(json.dumps(continuous.events, indent=2))
    season = table[table["month"] == "season"].set_index("mode")
    (directory / "summary.json").write_text(
        json.dumps(
            {
                mode: {
                    k: (None if isinstance(v, float) and np.isnan(v) else v)
                    for k, v in season.loc[mode].to_dict().items()
                    if k != "month"
                }
                for mode in season.index
            }
            | {"events": counts},
            indent=2,
            default=float,
        )
    )
    return directory / "report.md"
