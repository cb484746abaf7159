"""Intervals on real games, on the same games each time:

1. one width for every game (conformal on absolute residuals, as before) against game-state
   widths (normalised conformal with ``GameStateScale``), without online adaptation (what
   each calibration gives by itself);
2. online adaptation over the test seasons, game by game in date order: none, one ACI step
   size (0.005, as before) and the aggregated step sizes (now).

The served ensemble is trained on the seasons before ``--test-from`` (the usual split:
the last 1200 games calibrate, the 1200 before them weight the components and fit the
scale); both intervals are calibrated on the same games and scored on the later seasons.
Prints coverage and width by quintile of predicted width and of |m_18|, the Winkler score,
and a paired test of the per-game Winkler difference (Diebold-Mariano, HLN).

    python benchmarks/bench_intervals.py [--test-from 2010]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from nba_forecast.data.shipped import load_shipped_games
from nba_forecast.evaluation.metrics import winkler_score
from nba_forecast.evaluation.paired_tests import diebold_mariano_losses
from nba_forecast.lifecycle.training import (
    DEFAULT_CALIBRATION_GAMES,
    DEFAULT_VALIDATION_GAMES,
    train_ensemble,
    with_features,
)
from nba_forecast.models.conformal import AbsoluteResidualConformal, GameStateScale
from nba_forecast.models.inputs import design_matrix


def _by_bucket(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    buckets = pd.qcut(frame[key], 5, labels=False, duplicates="drop")
    return frame.groupby(buckets).agg(
        games=("covered", "size"), coverage=("covered", "mean"), width=("width", "mean")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test-from", type=int, default=2010, help="first test season")
    args = parser.parse_args()
    started = time.perf_counter()
    games = with_features(load_shipped_games())
    seasons = games["season"].astype(int)
    model, _ = train_ensemble(games[seasons < args.test_from])
    history = games[seasons < args.test_from]
    cal_start = len(history) - DEFAULT_CALIBRATION_GAMES
    val_start = cal_start - DEFAULT_VALIDATION_GAMES
    Xv, yv = design_matrix(history.iloc[val_start:cal_start])
    Xc, yc = design_matrix(history.iloc[cal_start:])
    X, y = design_matrix(games[seasons >= args.test_from])
    fv, fc, f = model.predict(Xv), model.predict(Xc), model.predict(X)
    scale = GameStateScale().fit(Xv, np.abs(yv - fv))
    chosen = "state widths" if model.scale_ is not None else "one width"
    intervals = {
        "one width (before)": AbsoluteResidualConformal().conformalize(yc, fc).interval(f),
        "state widths": AbsoluteResidualConformal()
        .conformalize(yc, fc, scale(Xc))
        .interval(f, scale(X)),
    }
    winkler = {}
    print(f"test seasons {args.test_from}+: {len(y)} games; the ensemble chose: {chosen}")
    print(f"scale on the test games: min {scale(X).min():.2f}, max {scale(X).max():.2f}\n")
    for name, (lower, upper) in intervals.items():
        frame = pd.DataFrame(
            {
                "covered": (y >= lower) & (y <= upper),
                "width": upper - lower,
                "abs_m18": np.abs(X[:, 18]),
            }
        )
        winkler[name] = winkler_score(y, lower, upper)
        print(
            f"== {name}: coverage {frame['covered'].mean():.1%}, mean width "
            f"{frame['width'].mean():.2f}, Winkler {winkler[name].mean():.3f}"
        )
        for key, label in (("width", "predicted width"), ("abs_m18", "|m_18|")):
            if frame[key].round(9).nunique() == 1:
                print(f"   by quintile of {label:15s} (one width for every game: no quintiles)")
                continue
            table = _by_bucket(frame, key)
            cells = "  ".join(
                f"q{i + 1}: {r.coverage:.1%} ({r.width:.1f})"
                for i, r in enumerate(table.itertuples())
            )
            print(f"   by quintile of {label:15s} {cells}")
    names = list(intervals)
    dm = diebold_mariano_losses(winkler[names[1]], winkler[names[0]])
    difference = float((winkler[names[1]] - winkler[names[0]]).mean())
    print(
        f"\nWinkler, state widths minus one width: {difference:+.3f} per game "
        f"({difference / winkler[names[0]].mean():+.2%}); DM statistic {dm.statistic:.2f}, "
        f"two-sided p = {min(1.0, 2 * min(dm.p_value, 1 - dm.p_value)):.3f}"
    )
    print("\n== online adaptation over the test seasons, game by game (one width for all)")
    seasons_of = games.loc[seasons >= args.test_from, "season"].to_numpy()
    online = {}
    for name, kwargs in (
        ("none", {"gamma": 0.0, "max_scores": len(yc)}),  # calibration set never grows
        ("one step size 0.005 (before)", {"gamma": 0.005}),
        ("aggregated step sizes (now)", {}),
    ):
        conformal = AbsoluteResidualConformal(**kwargs).conformalize(yc, fc)  # type: ignore[arg-type]
        half = np.empty(len(y))
        for i in range(len(y)):
            half[i] = conformal.half_width(finite=True)
            if name != "none":
                conformal.update([y[i]], [f[i]])
        lower, upper = f - half, f + half
        covered = pd.Series((y >= lower) & (y <= upper)).groupby(seasons_of).mean()
        online[name] = winkler_score(y, lower, upper)
        print(
            f"   {name:30s} Winkler {online[name].mean():.3f}  mean width {2 * half.mean():.2f}"
            f"  coverage by season {' '.join(f'{c:.1%}' for c in covered)}"
        )
    before, now = online["one step size 0.005 (before)"], online["aggregated step sizes (now)"]
    dm = diebold_mariano_losses(now, before)
    print(
        f"   aggregated minus one step size: {float((now - before).mean()):+.3f} per game "
        f"({float((now - before).mean()) / before.mean():+.2%}); DM statistic "
        f"{dm.statistic:.2f}, one-sided p = {dm.p_value:.3f}"
    )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
