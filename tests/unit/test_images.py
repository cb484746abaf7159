"""Docker is not available on the development machines: keep the Dockerfiles right by test."""

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
    assert "pip install ." in text  # the pins of pyproject.toml, nowhere else
    for version in re.findall(r"torch==([\d.]+)", text):
        assert version == pins()["torch"]
    if name == "Dockerfile":
        base = re.search(r"^FROM python:(\d+\.\d+)", text, re.M)
        assert base and base.group(1) == python.split(",")[0].removeprefix(">=")
    else:
        base = re.search(r"^FROM pytorch/pytorch:([\d.]+)-cuda", text, re.M)
        assert base and base.group(1) == pins()["torch"]
    assert re.search(r"^USER forecast$", text, re.M), "must run as a non-root user"
    assert 'ENTRYPOINT ["nba-forecast"]' in text
    for folder in ("nba_forecast", "components", "pipelines"):
        assert f"COPY {folder} ./{folder}" in text


@pytest.mark.parametrize(("name", "image"), list(DOCKERFILES.items()))
def test_component_images_match_the_dockerfiles(name: str, image: str) -> None:
    text = (ROOT / "images" / name).read_text()
    assert f"-t {image} ." in text
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert image.endswith(f":{version}")
