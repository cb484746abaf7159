"""Issue 12: an A/B test decided from served traffic, the deployed way. The rollout commits
the routing to a GitOps remote; the "cluster" (a fresh clone, as Argo CD would sync it)
mounts the routing ConfigMap into a real server process; real games go through the HTTP
feed; `rollout decide` pairs the served and shadow forecasts by game and arm."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CLI = [sys.executable, "-m", "nba_forecast.cli"]
ROUTING = "manifests/overlays/staging/model-routing.yaml"
GAMES = 30


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def sync_mount(remote: Path, checkout: Path, mounted: Path) -> None:
    """What Argo CD and the kubelet do: the remote's routing ConfigMap, in the Pod's file."""
    if checkout.exists():
        subprocess.run(["git", "-C", str(checkout), "pull", "-q"], check=True)
    else:
        subprocess.run(["git", "clone", "-q", remote.as_uri(), str(checkout)], check=True)
    mounted.write_text((checkout / ROUTING).read_text())


def test_a_served_ab_test_pairs_every_game_and_decides(tmp_path: Path) -> None:
    remote = tmp_path / "config.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    mounted = tmp_path / "pod" / "routing.yaml"
    mounted.parent.mkdir()
    env = {
        **os.environ,
        "NBA_FORECAST_HOME": str(tmp_path / "home"),
        "NBA_FORECAST_GITOPS_REPO": remote.as_uri(),
        "NBA_FORECAST_ENVIRONMENT": "staging",
        "NBA_FORECAST_ROUTING_FILE": str(mounted),
    }
    cli(env, "bootstrap", "--through-season", "2012")
    cli(env, "update-dejavu", "--as-of", "2013-11-15T09:00:00Z", "--only")
    # the analog update forecasts like production (a data refresh): test it anyway
    started = cli(
        env, "rollout", "start", "--candidate", "candidate", "--share", "0.5", "--no-compare"
    )
    challenger = re.search(r"challenger (\w{16})", started.stdout).group(1)  # type: ignore[union-attr]
    sync_mount(remote, tmp_path / "argo", mounted)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(240):
            with contextlib.suppress(httpx.TransportError):
                ready = httpx.get(f"{url}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the server did not become ready")
        assert ready.json()["challenger"] == challenger  # from the mounted ConfigMap
        fed = cli(env, "feed", "--season", "2013", "--count", str(GAMES), "--url", url)
        assert len(fed.stdout.strip().splitlines()) == GAMES
        decided = cli(env, "rollout", "decide")
        paired = int(re.search(r"(\d+) paired games", decided.stdout).group(1))  # type: ignore[union-attr]
        assert paired >= 0.9 * GAMES, decided.stdout
        print(f"served A/B: {GAMES} games, {paired} paired: {decided.stdout.strip()}")
        # the routing the decision committed reaches the server through git and the mount
        sync_mount(remote, tmp_path / "argo", mounted)
        merged = time.monotonic()
        for _ in range(60):
            status = subprocess.run(
                [*CLI, "rollout", "status", "--server", url],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if status.returncode == 0:
                break
            time.sleep(0.5)
        assert "git, registry and server agree" in status.stdout, status.stdout
        print(f"server followed the routing commit in {time.monotonic() - merged:.1f} s")
    finally:
        server.terminate()
        server.wait(timeout=30)
