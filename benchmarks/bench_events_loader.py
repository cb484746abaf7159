"""Sampling scoring events into minute margins: the vectorised loader vs a per-game loop
that applies the README's rule literally (the baseline), on the shipped first-half events
(1.2M events, 22,387 games). Usage: python benchmarks/bench_events_loader.py [--games N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from nba_forecast.data.events import margins_from_events
from nba_forecast.data.shipped import load_shipped_events


def literal_rule(events: pd.DataFrame) -> dict[str, list[int]]:
    """Per game and minute: highest score on events with elapsed < B, or == B and
    period <= ceil(B / 720)."""
    out = {}
    for game_id, game in events.groupby("game_id", sort=False):
        period = game["period"].to_numpy()
        elapsed = game["elapsed_s"].to_numpy()
        home, away = game["home"].to_numpy(), game["away"].to_numpy()
        margins = []
        for minute in range(25):
            boundary = 60 * minute
            counted = (elapsed < boundary) | ((elapsed == boundary) & (period <= -(-minute // 12)))
            margins.append(int(home[counted].max(initial=0) - away[counted].max(initial=0)))
        out[str(game_id)] = margins
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--games", type=int, default=22_387)
    args = parser.parse_args()
    events = load_shipped_events()
    keep = events["game_id"].isin(events["game_id"].drop_duplicates().head(args.games))
    events = events[keep].reset_index(drop=True)
    frame = events.assign(row=np.arange(len(events)) + 2, kind="")

    start = time.perf_counter()
    reference = literal_rule(events)
    baseline_s = time.perf_counter() - start
    start = time.perf_counter()
    margins, problems = margins_from_events(frame, check_steps=False)
    vectorised_s = time.perf_counter() - start
    agree = all(
        margins.set_index("game_id").loc[g, [f"m_{k}" for k in range(25)]].astype(int).tolist() == m
        for g, m in list(reference.items())[:500]
    )
    table = Table(title=f"events -> margins: {len(events):,} events, {len(reference):,} games")
    for column in ("method", "seconds", "games/s", "speed-up"):
        table.add_column(column, justify="right")
    n = len(reference)
    table.add_row("per-game literal rule", f"{baseline_s:.2f}", f"{n / baseline_s:,.0f}", "1.0x")
    table.add_row(
        "margins_from_events (with checks)",
        f"{vectorised_s:.2f}",
        f"{n / vectorised_s:,.0f}",
        f"{baseline_s / vectorised_s:.1f}x",
    )
    Console(width=100).print(table)
    print(f"first 500 games agree: {agree}; problems: {len(problems)}")


if __name__ == "__main__":
    main()
