"""Writing a backtest: Markdown report, metrics JSON and a PNG figure."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from nba_forecast.evaluation.backtest import BacktestResult

FIGURE = "evaluation.png"


def season_label(season: int) -> str:
    return f"{season}-{(season + 1) % 100:02d}"


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _figure(result: BacktestResult, path: Path) -> None:
    p = result.predictions
    fig, (scatter, coverage) = plt.subplots(1, 2, figsize=(12, 5))
    order = np.argsort(p["ensemble"].to_numpy())
    scatter.scatter(p["ensemble"], p["actual"], s=4, alpha=0.3, label="games")
    scatter.fill_between(
        p["ensemble"].to_numpy()[order],
        p["lower"].to_numpy()[order],
        p["upper"].to_numpy()[order],
        alpha=0.15,
        label="95% interval",
    )
    lim = [min(p["actual"].min(), p["ensemble"].min()), max(p["actual"].max(), p["ensemble"].max())]
    scatter.plot(lim, lim, color="black", linewidth=1, label="forecast = actual")
    scatter.set(
        xlabel="ensemble forecast of m_24",
        ylabel="actual halftime margin m_24",
        title="Forecast vs actual (test seasons)",
    )
    scatter.legend(loc="upper left")
    seasons = sorted(result.by_season["season"].unique())
    models = list(result.table["model"])
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        rows = result.by_season[result.by_season["model"] == model].set_index("season")
        coverage.bar(
            np.arange(len(seasons)) + i * width,
            rows.loc[seasons, "coverage"] * 100,
            width,
            label=model,
        )
    coverage.axhline(95, color="black", linewidth=1, linestyle="--")
    coverage.set_ylim(90, 100)
    coverage.set_xticks(
        np.arange(len(seasons)) + 0.4 - width / 2, [season_label(s) for s in seasons]
    )
    coverage.set(ylabel="coverage of the 95% interval (%)", title="Interval coverage by season")
    coverage.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


MODEL_HEADERS = [
    "model",
    "MAE",
    "vs persistence",
    "RMSE",
    "bias",
    "coverage",
    "mean width",
    "Winkler",
    "DM vs persistence",
]
SEASON_HEADERS = ["model", "season", "games", "MAE", "coverage", "mean width"]


def _model_rows(table: pd.DataFrame) -> list[list[str]]:
    rows = []
    for r in table.itertuples(index=False):
        dm = "" if np.isnan(r.dm_p_value) else f"{r.dm_statistic:.2f} (p={r.dm_p_value:.4f})"
        rows.append(
            [
                r.model,
                f"{r.mae:.3f}",
                f"{r.vs_persistence:+.2%}",
                f"{r.rmse:.3f}",
                f"{r.bias:+.3f}",
                f"{r.coverage:.1%}",
                f"{r.mean_width:.2f}",
                f"{r.winkler:.2f}",
                dm,
            ]
        )
    return rows


def _season_rows(by_season: pd.DataFrame) -> list[list[str]]:
    return [
        [
            r.model,
            season_label(int(r.season)),
            str(r.n),
            f"{r.mae:.3f}",
            f"{r.coverage:.1%}",
            f"{r.mean_width:.2f}",
        ]
        for r in by_season.itertuples(index=False)
    ]


def _method_paragraph(result: BacktestResult) -> str:
    """Split sizes, how intervals and the DM test were made, and the run time."""
    sizes = result.split_sizes
    return (
        f"Trained on earlier seasons ({sizes.get('train', 0):,} games); "
        f"validation {sizes.get('validation', 0):,}, calibration "
        f"{sizes.get('calibration', 0):,}, test "
        f"{sizes.get('test', 0):,} games. Intervals: split conformal (95%) on "
        "each model's absolute residuals in the calibration season. DM: one-sided "
        f"Diebold-Mariano (HLN) on absolute errors against persistence. Run time "
        f"{result.seconds:.0f} s."
    )


def _report_markdown(result: BacktestResult) -> str:
    seasons = ", ".join(season_label(s) for s in result.test_seasons)
    weights = [[k, f"{v:.3f}"] for k, v in result.weights.items()]
    tuning = [
        [str(r.k), str(r.window), f"{r.validation_mae:.4f}"]
        for r in result.dejavu_tuning.itertuples(index=False)
    ]
    sections = [
        f"# Halftime margin forecasts: backtest on {seasons}",
        _method_paragraph(result),
        _markdown_table(MODEL_HEADERS, _model_rows(result.table)),
        "## By season",
        _markdown_table(SEASON_HEADERS, _season_rows(result.by_season)),
        "## Ensemble weights (fitted on the validation season)",
        _markdown_table(["component", "weight"], weights),
        "## Dejavu tuning (validation MAE)",
        _markdown_table(["k", "window", "validation MAE"], tuning),
        f"![forecast vs actual and coverage by season]({FIGURE})",
    ]
    return "\n\n".join(sections) + "\n"


def _metrics_json(result: BacktestResult) -> str:
    metrics = {
        "test_seasons": result.test_seasons,
        "models": result.table.replace({np.nan: None}).to_dict(orient="records"),
        "by_season": result.by_season.to_dict(orient="records"),
        "weights": result.weights,
        "seconds": result.seconds,
    }
    return json.dumps(metrics, indent=2, default=float)


def write_report(result: BacktestResult, directory: Path) -> Path:
    """``report.md``, ``metrics.json`` and ``evaluation.png`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _figure(result, directory / FIGURE)
    (directory / "report.md").write_text(_report_markdown(result))
    (directory / "metrics.json").write_text(_metrics_json(result))
    return directory / "report.md"
