"""The forecast server the way the StatefulSet runs it: the CPU image, `serve --workers 2`,
user 10001, a read-only root filesystem with only /tmp and the spool volume writable, no
capabilities, the API token and the PostgreSQL URL from the environment. Marker
`container`: `.ci/run` builds the images and runs these."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from components import IMAGE
from nba_forecast.data.shipped import load_shipped_events
from nba_forecast.serving.feed import replay_game, score_updates
from tests.plugins.containers import podman_env, require_images

pytestmark = [pytest.mark.container, pytest.mark.postgres, pytest.mark.slow]
TOKEN = "container-test-token-0123"
GAME = "0021400333"
MARGINS = [0, 2, 2, 4, 1, -1, 0, 3, 5, 5, 7, 6, 8, 10, 9, 9, 11, 12, 10]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_server_runs_in_its_image_as_the_manifest_runs_it(
    pg_schema_url: str, tmp_path: Path
) -> None:
    require_images(IMAGE)
    spool = tmp_path / "spool-volume"  # the replica's PersistentVolumeClaim
    spool.mkdir(mode=0o777)
    spool.chmod(0o777)
    port, name = free_port(), f"nba-forecast-server-{uuid.uuid4().hex[:8]}"
    run = [
        "podman", "run", "-d", "--name", name, "--network", "host",
        "--read-only", "--tmpfs", "/tmp", "-v", f"{spool}:/var/lib/nba-forecast",
        "--user", "10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-e", "HOME=/tmp", "-e", "NBA_FORECAST_HOME=/var/lib/nba-forecast",
        "-e", f"NBA_FORECAST_API_TOKEN={TOKEN}",
        "-e", f"NBA_FORECAST_DATABASE_URL={pg_schema_url}",
        IMAGE,
        "nba-forecast", "serve", "--host", "0.0.0.0", "--port", str(port),
        "--workers", "2", "--bootstrap",
    ]  # fmt: skip
    started = subprocess.run(run, env=podman_env(), capture_output=True, text=True, check=False)
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(1)
        else:
            pytest.fail(f"the server did not become ready:\n{logs(name)}")
        body = {"game_id": "c-1", "margins": MARGINS}
        assert httpx.post(f"{url}/v1/predict", json=body).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        served = httpx.post(f"{url}/v1/predict", json=body, headers=auth)
        assert served.status_code == 200, served.text
        events = load_shipped_events()
        state = replay_game(
            url, GAME, score_updates(events[events["game_id"] == GAME], GAME), token=TOKEN
        )
        assert state["forecast"] is not None and state["outcome"] is not None
        metrics = "\n".join(httpx.get(f"{url}/metrics").text for _ in range(4))
        # two workers, one set of numbers: both games counted once, whichever worker answers
        counted = [
            line
            for line in metrics.splitlines()
            if line.startswith("nba_halftime_predictions_total{")
        ]
        assert counted and all(line.endswith(" 2.0") for line in counted), counted
    finally:
        output = logs(name)
        subprocess.run(
            ["podman", "rm", "-f", name], env=podman_env(), capture_output=True, check=False
        )
    assert "Read-only file system" not in output and "Traceback" not in output, output[-3000:]
    assert (spool / "spool").is_dir()  # the spool lives on the volume


def logs(name: str) -> str:
    result = subprocess.run(
        ["podman", "logs", name], env=podman_env(), capture_output=True, text=True, check=False
    )
    return result.stdout + result.stderr
