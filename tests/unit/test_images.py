"""The Dockerfiles as text: pins from pyproject only, our components in the image, a
non-root user, no entry point (KFP starts tasks with its own command). `make images` builds
them for real; tests/containers/ runs what it built."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from components import GPU_IMAGE, IMAGE

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"Dockerfile": IMAGE, "Dockerfile.gpu": GPU_IMAGE}


def pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {}
    for requirement in project["dependencies"]:
        name, _, version = requirement.partition("==")
        found[re.sub(r"\[.*\]", "", name).lower()] = version
    return found


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_dockerfile_installs_the_package_with_the_project_pins(name: str) -> None:
    text = (ROOT / "images" / name).read_text()
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    # the dependencies are pyproject's list, the package itself without re-resolving
    assert "['project']['dependencies']" in text and "pip install --no-deps ." in text
    for version in re.findall(r"torch==([\d.]+)", text):
        assert version == pins()["torch"]
    if name == "Dockerfile":
        base = re.search(r"^ARG BASE_IMAGE=python:(\d+\.\d+)", text, re.M)
        assert base and base.group(1) == python.split(",")[0].removeprefix(">=")
    else:
        base = re.search(r"^ARG BASE_IMAGE=pytorch/pytorch:([\d.]+)-cuda", text, re.M)
        assert base and base.group(1) == pins()["torch"]
    assert re.search(r"^USER 10001$", text, re.M), "must run as the non-root uid 10001"
    assert not re.search(r"^ENTRYPOINT", text, re.M), (
        "KFP's `sh -c` command would go to the entry point"
    )
    for folder in ("nba_forecast", "components", "pipelines"):
        assert f"COPY {folder} ./{folder}" in text


@pytest.mark.parametrize(("name", "image"), list(DOCKERFILES.items()))
def test_component_images_match_the_dockerfiles(name: str, image: str) -> None:
    text = (ROOT / "images" / name).read_text()
    assert f"-t {image} ." in text
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert image.endswith(f":{version}")
    build = (ROOT / "images" / "build.sh").read_text()
    assert f'"{name}:$' in build  # make images builds this Dockerfile
