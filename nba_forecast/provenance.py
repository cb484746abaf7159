"""What code a run ran: the git commit and the container image. Images carry both in their
environment (``images/Dockerfile`` bakes ``NBA_FORECAST_GIT_SHA`` and
``NBA_FORECAST_BUILT_IMAGE``; ``NBA_FORECAST_IMAGE`` only chooses the image at compile time);
a source checkout asks git. An image cannot know its own digest: whoever starts the
container says it (``NBA_FORECAST_IMAGE_IDS``: JSON ``{image reference: id}``, set by
``pipeline run --runner container``; podman's ``/run/.containerenv`` has it for privileged
containers). On a cluster, compile the pipelines with digest-pinned references
(``NBA_FORECAST_IMAGE=repo/name@sha256:...``): the Pod spec and KFP's task record then name
the digest."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

CONTAINERENV = Path("/run/.containerenv")
SOURCE_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_PATHS = ("nba_forecast", "components", "pipelines", "pyproject.toml", "images")


@functools.cache
def checkout_sha() -> str:
    """The source checkout's commit, '-dirty' appended when it has changes; 'unknown' elsewhere."""
    if not (SOURCE_ROOT / ".git").exists():
        return "unknown"
    try:
        result = subprocess.run(
            ["git", "-C", str(SOURCE_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if result.returncode != 0:
        return "unknown"
    # as images/build.sh: changes to tracked or untracked files of the shipped code
    status = subprocess.run(
        ["git", "-C", str(SOURCE_ROOT), "status", "--porcelain", "--", *SHIPPED_PATHS],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def _container_image_id(path: Path = CONTAINERENV) -> str:
    """The image id podman ran this container from (its ``imageid=`` line), or ''."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "imageid":
            return value.strip().strip('"')
    return ""


def _image_id_given(image: str) -> str:
    try:
        given = json.loads(os.environ.get("NBA_FORECAST_IMAGE_IDS") or "{}")
    except json.JSONDecodeError:
        return ""
    return str(given.get(image, "")) if isinstance(given, dict) else ""


def provenance() -> dict[str, str]:
    """``git_sha``, ``image`` (the reference the image was built as) and ``image_id`` (its
    id where the container's starter or runtime says; '' elsewhere)."""
    image = os.environ.get("NBA_FORECAST_BUILT_IMAGE", "")
    return {
        "git_sha": os.environ.get("NBA_FORECAST_GIT_SHA") or checkout_sha(),
        "image": image,
        "image_id": _image_id_given(image) or _container_image_id(),
    }


def code_version() -> str:
    """One string for a registry manifest: ``git <sha>`` plus the image where there is one."""
    facts = provenance()
    text = f"git {facts['git_sha']}"
    if facts["image"]:
        text += f", image {facts['image']}"
    if facts["image_id"]:
        text += f"@{facts['image_id'][:19]}"
    return text
