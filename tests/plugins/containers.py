"""What the container tests need beside the S3 server and PostgreSQL: the images `make
images` built (podman), and a git remote on loopback (`git daemon`, pushes enabled)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / "images" / "containers.conf"


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def require_images(*images: str) -> None:
    """Skip (locally) or fail (CI) unless podman holds every image."""
    from tests.plugins.ci_guard import in_ci

    problem = ""
    if shutil.which("podman") is None:
        problem = "podman is not installed (apt-get install podman runc; then make images)"
    else:
        for image in images:
            found = subprocess.run(
                ["podman", "image", "exists", image], env=podman_env(), check=False
            )
            if found.returncode != 0:
                problem = f"image {image} not built (make images)"
                break
    if problem:
        if in_ci():
            pytest.fail(problem)
        pytest.skip(problem)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def git_daemon(base: Path, name: str = "config.git") -> Iterator[tuple[str, Path]]:
    """A bare repository served over git:// on loopback; yields (URL, bare path)."""
    bare = base / name
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    port = _free_port()
    process = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("git daemon did not start")
            time.sleep(0.1)
        yield f"git://127.0.0.1:{port}/{name}", bare
    finally:
        process.terminate()
        process.wait(10)
