"""The server's Prometheus metrics, in a registry of their own.

With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set by ``serve --workers``),
each worker writes its values to that directory and a scrape of any worker adds them up:
one pod, one set of numbers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.multiprocess import MultiProcessCollector

from nba_forecast.serving.engine import Forecast, ForecastEngine

_PID = re.compile(r"_(\d+)\.db$")


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._info_labels: set[tuple[str, str]] = set()
        self.latency = Histogram(
            "nba_halftime_request_seconds",
            "request latency",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.served = Counter(
            "nba_halftime_predictions_total",
            "games forecast (each game once, by the version and arm that served it)",
            ["model_version", "arm"],
            registry=self.registry,
        )
        self.adhoc = Counter(
            "nba_halftime_adhoc_predictions_total",
            "forecasts without a game id (not logged)",
            registry=self.registry,
        )
        self.repeats = Counter(
            "nba_halftime_repeated_requests_total",
            "requests for a game already forecast, answered with its logged forecast",
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "nba_halftime_fallbacks_total", "degraded forecasts", ["kind"], registry=self.registry
        )
        # gauges: with several workers a scrape adds up (livesum) or takes the largest
        # (livemax) value of the live workers
        self.spool = self._gauge("spool_depth", "records waiting for the database", "livesum")
        self.torn = self._gauge(
            "spool_torn_lines",
            "spool lines that were not records, moved aside to the .torn file",
            "livesum",
        )
        self.rejected = self._gauge(
            "spool_rejected_records",
            "spooled records the database refused, kept in the .rejected file",
            "livesum",
        )
        self.info = self._gauge(
            "model_info", "served versions", "livemax", ["model_version", "role"]
        )
        self.routing_stale = self._gauge(
            "routing_stale",
            "1 while the newest routing cannot be loaded and the last good one serves",
            "livemax",
        )

    def _gauge(
        self,
        name: str,
        documentation: str,
        mode: Literal["livesum", "livemax"],
        labels: list[str] | None = None,
    ) -> Gauge:
        return Gauge(
            f"nba_halftime_{name}",
            documentation,
            labels or [],
            registry=self.registry,
            multiprocess_mode=mode,
        )

    def respond(self, result: Forecast) -> Forecast:
        """Count a forecast's fallback, if it had one, and return it."""
        if result.fallback:
            self.fallbacks.labels(result.fallback.split(":")[0]).inc()
        return result

    def count_game(self, result: Forecast) -> Forecast:
        """A game's forecast, logged for the first time."""
        self.served.labels(result.model_version, result.arm).inc()
        return self.respond(result)

    def exposition(self, engine: ForecastEngine) -> str:
        self.refresh(engine)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            combined = CollectorRegistry()
            MultiProcessCollector(combined)
            return generate_latest(combined).decode()
        return generate_latest(self.registry).decode()

    def refresh(self, engine: ForecastEngine) -> None:
        """Set this process's gauges (every worker does, every second: a scrape reaches one
        worker but reports the sum over all), and forget workers that died."""
        log = engine.log
        self.spool.set(log.pending())
        self.torn.set(log.torn())
        self.rejected.set(log.rejected())
        self.routing_stale.set(int(engine.reload_error is not None))
        serving: set[tuple[str, str]] = set()
        if engine.routing is not None:
            serving.add((engine.routing.production, "production"))
            if engine.routing.challenger:
                serving.add((engine.routing.challenger, "challenger"))
        for labels in self._info_labels - serving:  # a version no longer served reads 0
            self.info.labels(*labels).set(0)
        for labels in serving:
            self.info.labels(*labels).set(1)
        self._info_labels |= serving
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            forget_dead_workers(Path(directory))


def forget_dead_workers(directory: Path) -> None:
    """Drop the live gauges of worker processes that no longer run (a killed worker's
    spool depth must not count for ever)."""
    pids = {
        int(m.group(1)) for p in directory.glob("gauge_live*_*.db") if (m := _PID.search(p.name))
    }
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))
        except PermissionError:
            continue
