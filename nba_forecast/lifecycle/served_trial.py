"""A served A/B trial on one machine, the way a cluster runs it: the routing ConfigMap is
read from the GitOps repository and written where a Pod would mount it; a real server
process serves real games posted through the HTTP feed; the running A/B test then decides
from what that server logged (served and shadow forecasts paired by game)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nba_forecast.lifecycle.context import Context
from nba_forecast.lifecycle.promotion import decide_rollout, paired_forecasts, running_rollout

READY_TIMEOUT_S = 180.0


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
    import httpx

    port = _free_port()
    env = {**os.environ, "NBA_FORECAST_ROUTING_FILE": str(mounted)}
    command = [sys.executable, "-m", "nba_forecast.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                error = (process.stderr.read() if process.stderr else "").strip()
                raise RuntimeError(f"the server exited: {error.splitlines()[-1:] or '?'}")
            with contextlib.suppress(httpx.TransportError, ValueError):
                ready = httpx.get(f"{url}/readyz", timeout=2)
                if ready.status_code == 200 and ready.json().get("challenger") == challenger:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not serving {challenger} in time")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


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
    started = dt.datetime.now(dt.UTC)
    with _server(mounted, state.challenger) as url:
        fed = [game_id for game_id, _, _ in feed_games(url, game_ids)]
    now = dt.datetime.now(dt.UTC)
    pairs = paired_forecasts(ctx.log.joined(started - dt.timedelta(minutes=1), now), state)
    paired = int(pairs["game_id"].isin(fed).sum())
    result = decide_rollout(ctx, now)
    decided = result.report.decision if result.report is not None else None
    ramps = int(result.metrics.get("ramps", 0))
    return TrialResult(len(fed), paired, decided or ("ramp" if ramps else "continue"))
