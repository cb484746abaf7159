"""LSTM training throughput (sequences/s): LSTMForecaster.fit against a bare PyTorch loop
over the same network, data, batch size and epochs, in the same run (CPU here; CUDA when
present). The forecaster also evaluates the validation split after every epoch.

Usage: python benchmarks/bench_lstm.py [--epochs 5] [--games 17000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from nba_forecast.models.lstm import LSTMForecaster, _Network, resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--games", type=int, default=17_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    steps = rng.normal(0, np.sqrt(5.6), (args.games, 24))
    margins = np.round(np.concatenate([np.zeros((args.games, 1)), np.cumsum(steps, 1)], 1))
    X = np.column_stack([margins[:, :19], rng.normal(0, 3, (args.games, 2))])
    y = margins[:, 24]
    n_train = int(args.games * 0.85)
    device = resolve_device("auto")

    def ours() -> LSTMForecaster:
        model = LSTMForecaster(
            max_epochs=args.epochs, patience=args.epochs + 1, batch_size=args.batch_size
        )
        return model.fit(X[:n_train], y[:n_train], X_val=X[n_train:], y_val=y[n_train:])

    def bare() -> None:
        torch.manual_seed(0)
        network = _Network(2, 16, 1).to(device)
        optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
        paths = torch.as_tensor(X[:n_train, :19] / 10, dtype=torch.float32, device=device)
        features = torch.as_tensor(X[:n_train, 19:] / 10, dtype=torch.float32, device=device)
        change = (y[:n_train] - X[:n_train, 18]) / 10
        target = torch.as_tensor(change, dtype=torch.float32, device=device)
        for _ in range(args.epochs):
            for batch in torch.randperm(n_train, device=device).split(args.batch_size):
                optimizer.zero_grad()
                loss = (network(paths[batch], features[batch]) - target[batch]).abs().mean()
                loss.backward()
                optimizer.step()

    # alternate the two, best of 3 each: warm-up and noise hit both alike
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    for _ in range(3):
        for name, fn in (("bare", bare), ("ours", ours)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    bare, ours = min(times["bare"]), min(times["ours"])

    sequences = n_train * args.epochs
    table = Table(
        title=f"LSTM training on {device}: {n_train:,} sequences x {args.epochs} "
        f"epochs, batch {args.batch_size}"
    )
    for column in ("loop", "seconds", "sequences/s", "relative"):
        table.add_column(column, justify="right")
    table.add_row("bare PyTorch loop", f"{bare:.2f}", f"{sequences / bare:,.0f}", "1.00x")
    table.add_row(
        "LSTMForecaster.fit (+ validation, early-stopping bookkeeping)",
        f"{ours:.2f}",
        f"{sequences / ours:,.0f}",
        f"{bare / ours:.2f}x",
    )
    Console(width=110).print(table)


if __name__ == "__main__":
    main()
