"""Forecast latency: the model alone (baseline) vs the whole HTTP request through the app
(routing, features, shadow-free logging to SQLite), in the same run.

Usage: python benchmarks/bench_serving.py [--requests 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table

from nba_forecast.data.pregame import latest_team_strength
from nba_forecast.data.shipped import load_shipped_games
from nba_forecast.lifecycle.training import train_ensemble
from nba_forecast.serving.app import create_app
from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.storage.object_store import FileStore
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.registry import Registry
from nba_forecast.storage.spool import SpoolingPredictionLog

MARGINS = [0, 2, 2, 4, 1, -1, 0, 3, 5, 5, 7, 6, 8, 10, 9, 9, 11, 12, 10]


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ms = sorted(s * 1000 for s in samples)
    return statistics.median(ms), ms[int(len(ms) * 0.95) - 1], ms[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    games = load_shipped_games()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model, _ = train_ensemble(games)
        registry = Registry(FileStore(root / "registry"))
        version = registry.register(model.save(root / "v1")).version
        registry.promote("production", version, reason="benchmark")
        log = PredictionLog(f"sqlite:///{root / 'log.db'}").migrate()
        engine = ForecastEngine(
            registry,
            SpoolingPredictionLog(log, root / "spool"),
            cache_dir=root / "cache",
            team_strength=latest_team_strength(games),
        )
        client = TestClient(create_app(engine))
        X = np.array([[*MARGINS, 1.5, 0.0]])
        direct, http = [], []
        for i in range(args.requests):
            start = time.perf_counter()
            model.predict_details(X)
            model.analogs(X, 5)
            direct.append(time.perf_counter() - start)
            start = time.perf_counter()
            response = client.post(
                "/v1/predict",
                json={
                    "game_id": f"b{i}",
                    "margins": MARGINS,
                    "home_team": "SAS",
                    "away_team": "PHI",
                },
            )
            http.append(time.perf_counter() - start)
            assert response.status_code == 200
    table = Table(
        title=f"forecast latency, {args.requests} requests (analog database "
        f"{len(model.components['dejavu'].ids_):,} games)"
    )
    for column in ("path", "median ms", "p95 ms", "max ms", "relative (median)"):
        table.add_column(column, justify="right")
    base = percentiles(direct)
    for name, samples in (
        ("model.predict_details + analogs (baseline)", direct),
        ("POST /v1/predict (logged)", http),
    ):
        med, p95, top = percentiles(samples)
        table.add_row(name, f"{med:.2f}", f"{p95:.2f}", f"{top:.2f}", f"{med / base[0]:.2f}x")
    Console(width=110).print(table)


if __name__ == "__main__":
    main()
