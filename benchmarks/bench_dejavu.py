"""Dejavu analog search: query latency and batch throughput for databases of 10k, 100k and
1M games, against scikit-learn's brute-force NearestNeighbors (same k, same distance) in the
same run. Databases are random-walk margin paths with the real per-minute variance.

Usage: python benchmarks/bench_dejavu.py [--sizes 10000,100000,1000000] [--k 800]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.neighbors import NearestNeighbors

from nba_forecast.models.dejavu import Dejavu

WINDOW = 3


def random_games(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    steps = rng.normal(0, np.sqrt(5.6), (n, 24))
    # continuous paths: integer margins tie at the k-th distance, and tied neighbours
    # may be picked differently by the two searches
    margins = np.concatenate([np.zeros((n, 1)), np.cumsum(steps, axis=1)], axis=1)
    return margins[:, :19], margins[:, 24]


def timed(fn, repeat: int = 1) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--k", type=int, default=800)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    table = Table(
        title=f"Dejavu vs sklearn brute-force kNN (k={args.k}, L1 over the last "
        f"{WINDOW} minutes; forecast = m_18 + weighted mean of analog changes)"
    )
    for column in (
        "database",
        "method",
        "1 query (ms)",
        f"batch of {args.queries} (s)",
        "queries/s",
        "speed-up",
    ):
        table.add_column(column, justify="right")
    for size in (int(s) for s in args.sizes.split(",")):
        X, y = random_games(size, rng)
        queries, _ = random_games(args.queries, rng)
        model = Dejavu(k=args.k, window=WINDOW).fit(X, y)
        changes = y - X[:, 18]
        nn = NearestNeighbors(n_neighbors=args.k, algorithm="brute", metric="manhattan")
        nn.fit(X[:, 19 - WINDOW :])

        def sklearn_forecast(
            q: np.ndarray, nn: NearestNeighbors = nn, changes: np.ndarray = changes
        ) -> np.ndarray:
            distances, indices = nn.kneighbors(q[:, 19 - WINDOW :])
            weights = 1.0 / (distances + 1.0)
            return q[:, 18] + (weights * changes[indices]).sum(axis=1) / weights.sum(axis=1)

        np.testing.assert_allclose(
            model.predict(queries[:50]), sklearn_forecast(queries[:50]), atol=0.05
        )
        one, many = queries[:1], queries
        single = {
            "dejavu": timed(lambda m=model, q=one: m.predict(q), 20),
            "sklearn": timed(lambda f=sklearn_forecast, q=one: f(q), 20),
        }
        batch = {
            "dejavu": timed(lambda m=model, q=many: m.predict(q)),
            "sklearn": timed(lambda f=sklearn_forecast, q=many: f(q)),
        }
        for method in ("sklearn", "dejavu"):
            table.add_row(
                f"{size:,}",
                method,
                f"{single[method] * 1000:.2f}",
                f"{batch[method]:.2f}",
                f"{args.queries / batch[method]:,.0f}",
                f"{batch['sklearn'] / batch[method]:.2f}x",
                end_section=method == "dejavu",
            )
    Console(width=110).print(table)


if __name__ == "__main__":
    main()
