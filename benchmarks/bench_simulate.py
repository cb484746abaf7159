"""Simulator throughput: vectorised over N games vs one game per call (the baseline).

Prints games/s and the speed-up at 10k, 100k and 1M games. Usage:
    python benchmarks/bench_simulate.py [--max-games 1000000]
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from nba_forecast.data.simulate import simulate_games


def rate(n_games: int, calls: int = 1) -> float:
    start = time.perf_counter()
    for seed in range(calls):
        simulate_games(n_games, seed=seed)
    return n_games * calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-games", type=int, default=1_000_000)
    args = parser.parse_args()
    baseline = rate(1, calls=200)
    table = Table(title="simulate_games throughput (baseline: one game per call)")
    for column in ("games", "seconds", "games/s", "speed-up"):
        table.add_column(column, justify="right")
    table.add_row("1 x 200 calls", f"{200 / baseline:.2f}", f"{baseline:,.0f}", "1.0x")
    for n_games in (10_000, 100_000, 1_000_000):
        if n_games > args.max_games:
            continue
        games_per_s = rate(n_games)
        table.add_row(
            f"{n_games:,}",
            f"{n_games / games_per_s:.2f}",
            f"{games_per_s:,.0f}",
            f"{games_per_s / baseline:,.0f}x",
        )
    Console(width=100).print(table)


if __name__ == "__main__":
    main()
