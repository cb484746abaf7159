"""Prediction log: inserting N predictions (batched, with their outcomes) and the 30-day
metrics query over them, on SQLite and PostgreSQL. Baseline in the same run: one row per
transaction, the way a naive logger writes.

Usage: python benchmarks/bench_prediction_log.py [--rows 1000000] [--batch 10000]
       [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine
from sqlalchemy.schema import CreateSchema, DropSchema

from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionLog, PredictionRecord

T0 = dt.datetime(2025, 10, 1, tzinfo=dt.UTC)
BASELINE_ROWS = 2000


def records(
    start: int, n: int, span_s: float
) -> tuple[list[PredictionRecord], list[OutcomeRecord]]:
    preds, outs = [], []
    for i in range(start, start + n):
        at = T0 + dt.timedelta(seconds=i * span_s)
        forecast = float(i % 21 - 10)
        preds.append(
            PredictionRecord(
                f"g{i:08d}",
                at,
                f"v{i % 2}",
                "AB"[i % 2],
                forecast,
                forecast - 11,
                forecast + 11,
                components={"lstm": forecast, "dejavu": forecast},
            )
        )
        outs.append(OutcomeRecord(f"g{i:08d}", float(i % 17 - 8), at + dt.timedelta(hours=1)))
    return preds, outs


def run(log: PredictionLog, rows: int, batch: int) -> dict[str, float]:
    span_s = 90 * 86400 / rows  # the rows cover 90 days
    start = time.perf_counter()
    for offset in range(0, rows, batch):
        preds, outs = records(offset, min(batch, rows - offset), span_s)
        log.record_predictions(preds)
        log.record_outcomes(outs)
    insert_s = time.perf_counter() - start
    as_of = T0 + dt.timedelta(days=90)
    start = time.perf_counter()
    metrics = log.window_metrics(as_of - dt.timedelta(days=30), as_of)
    query_s = time.perf_counter() - start
    assert int(metrics["n"].sum()) > 0
    # baseline: one prediction and one outcome per transaction
    preds, outs = records(rows, BASELINE_ROWS, span_s)
    start = time.perf_counter()
    for p, o in zip(preds, outs, strict=True):
        log.record_predictions([p])
        log.record_outcomes([o])
    single_s = time.perf_counter() - start
    return {
        "insert_s": insert_s,
        "query_s": query_s,
        "single_rate": BASELINE_ROWS / single_s,
        "window_n": float(metrics["n"].sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    table = Table(
        title=f"prediction log: {args.rows:,} predictions + outcomes, batches of "
        f"{args.batch:,}; 30-day metrics query"
    )
    for column in (
        "database",
        "insert (s)",
        "rows/s batched",
        "rows/s one per txn",
        "batched speed-up",
        "30-day query (s)",
        "rows in window",
    ):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"SQLite": f"sqlite:///{Path(tmp) / 'bench.db'}"}
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = None
        try:
            admin = create_engine("postgresql+psycopg://" + args.postgres.split("://", 1)[1])
            with admin.begin() as connection:
                connection.execute(CreateSchema(schema))
            targets["PostgreSQL"] = f"{args.postgres}?options=-csearch_path%3D{schema}"
        except Exception as error:  # no server: report SQLite only
            print(f"PostgreSQL skipped: {error}")
            admin = None
        try:
            for name, url in targets.items():
                log = PredictionLog(url).migrate()
                result = run(log, args.rows, args.batch)
                log.engine.dispose()
                rate = args.rows / result["insert_s"]
                table.add_row(
                    name,
                    f"{result['insert_s']:.1f}",
                    f"{rate:,.0f}",
                    f"{result['single_rate']:,.0f}",
                    f"{rate / result['single_rate']:.0f}x",
                    f"{result['query_s']:.2f}",
                    f"{result['window_n']:,.0f}",
                )
        finally:
            if admin is not None:
                with admin.begin() as connection:
                    connection.execute(DropSchema(schema, cascade=True))
                admin.dispose()
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
