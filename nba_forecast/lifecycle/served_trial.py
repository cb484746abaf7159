"""A served A/B trial on one machine, the way a cluster runs it: the routing ConfigMap is
read from the GitOps repository and written where a Pod would mount it; a real server
process serves real games posted through the HTTP feed; the running A/B test then decides
from what that server logged (served and shadow forecasts paired by game)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nba_forecast.lifecycle.context import Context
from nba_forecast.lifecycle.promotion import decide_rollout, paired_forecasts, running_rollout
from nba_forecast.local_runs import stop_process

READY_TIMEOUT_S = 180.0
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class TrialResult:
    games: int
    paired: int
    decision: str  # promote, rollback, ramp or continue

    def line(self) -> str:
        return f"served A/B: {self.games} games, {self.paired} paired, decision: {self.decision}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _server(mounted: Path, challenger: str) -> Iterator[str]:
    """`nba-forecast serve` on a free loopback port with the mounted routing; its URL."""

    port = _free_port()
    env = {**os.environ, "NBA_FORECAST_ROUTING_FILE": str(mounted)}
    command = [sys.executable, "-m", "nba_forecast.cli", "serve", "--port", str(port)]
    # stderr to a file, not a pipe: a chatty server must never block on a full pipe
    with tempfile.TemporaryFile("w+") as log:
        yield from _run_server(command, env, log, port, challenger)


def _run_server(
    command: list[str], env: dict[str, str], log: IO[str], port: int, challenger: str
) -> Iterator[str]:
    import httpx

    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}"
    # a stop by SIGTERM (a pod, a CI timeout) still stops the server: finally must run
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                log.seek(0)
                lines = log.read().strip().splitlines()
                raise RuntimeError(f"the server exited: {lines[-1] if lines else '?'}")
            with contextlib.suppress(httpx.TransportError, ValueError):
                ready = httpx.get(f"{url}/readyz", timeout=2)
                if ready.status_code == 200 and ready.json().get("challenger") == challenger:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not serving {challenger} in time")
            time.sleep(0.5)
        yield url
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_process(process, grace_s=30)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def served_trial(ctx: Context, game_ids: list[str], *, workdir: Path) -> TrialResult:
    """Serve ``game_ids`` through a real server on the routing git carries, then decide."""
    from nba_forecast.serving.feed import feed_games

    state = running_rollout(ctx)
    if state is None:
        raise ValueError("no A/B test running: start one with `nba-forecast rollout start`")
    routing = ctx.gitops.read()
    if routing is None or routing.challenger != state.challenger:
        raise ValueError(
            f"the routing in git does not route to the running A/B's challenger "
            f"{state.challenger} (`nba-forecast rollout status`)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    mounted = workdir / "model-routing.yaml"  # what the kubelet mounts from the ConfigMap
    mounted.write_text(routing.configmap(ctx.gitops.env))
    with _server(mounted, state.challenger) as url:
        fed = [game_id for game_id, _, _ in feed_games(url, game_ids)]
    now = dt.datetime.now(dt.UTC)
    # every pair of the fed games in the log (a game served before was logged then: the log
    # keeps a game's first forecast per version)
    pairs = paired_forecasts(ctx.log.joined(EARLIEST, now), state)
    paired = int(pairs["game_id"].isin(fed).sum())
    result = decide_rollout(ctx, now)
    decided = result.report.decision if result.report is not None else None
    ramps = int(result.metrics.get("ramps", 0))
    return TrialResult(len(fed), paired, decided or ("ramp" if ramps else "continue"))
