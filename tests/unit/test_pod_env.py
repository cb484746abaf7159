"""The Pod environment worked out from the overlay, a Secrets file and the compiled
pipeline: what `pipeline run --runner container` gives every task."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from nba_forecast.pod_env import (
    Overlay,
    PodEnvError,
    executor_environments,
    load_secrets,
    pipeline_environment,
    render_overlay,
)
from pipelines import pipelines
from pipelines.cluster import SETTINGS_KEYS

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "nba-forecast-database": {"url": "postgresql://db/forecast"},
    "nba-forecast-s3": {"access-key-id": "id", "secret-access-key": "key"},
}


def test_the_staging_overlay_gives_every_task_its_settings_and_secrets() -> None:
    overlay = render_overlay(ROOT / "manifests", "staging")
    assert overlay.pipeline_root == "s3://nba-forecast-staging/pipeline-root"
    env, images = pipeline_environment(pipelines()["continuous_improvement"], overlay, SECRETS)
    assert env.variables["NBA_FORECAST_REGISTRY_URL"] == "s3://nba-forecast-staging/registry"
    assert env.variables["NBA_FORECAST_ENVIRONMENT"] == "staging"
    assert env.variables["NBA_FORECAST_DATABASE_URL"] == "postgresql://db/forecast"
    assert env.sources["AWS_SECRET_ACCESS_KEY"] == "Secret nba-forecast-s3"
    assert set(SETTINGS_KEYS) <= set(env.variables)
    assert "NBA_FORECAST_GITOPS_TOKEN" not in env.variables  # optional Secret, absent
    assert images["exec-retrain-lstm"].endswith("nba-forecast-gpu:0.1.0")


def test_a_missing_secret_or_key_fails_as_the_kubelet_would() -> None:
    overlay = render_overlay(ROOT / "manifests", "staging")
    pipeline = pipelines()["monitor"]
    with pytest.raises(PodEnvError, match="Secret nba-forecast-s3 not found"):
        pipeline_environment(pipeline, overlay, {"nba-forecast-database": {"url": "x"}})
    broken = {**SECRETS, "nba-forecast-database": {"uri": "x"}}
    with pytest.raises(PodEnvError, match="nba-forecast-database has no key 'url'"):
        pipeline_environment(pipeline, overlay, broken)
    no_settings = Overlay("x", {}, "")
    with pytest.raises(PodEnvError, match="ConfigMap nba-forecast-settings not found"):
        pipeline_environment(pipeline, no_settings, SECRETS)


def test_secrets_file_with_string_and_base64_data(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    encoded = base64.b64encode(b"s3cret").decode()
    path.write_text(
        yaml.safe_dump_all(
            [
                {"kind": "Secret", "metadata": {"name": "a"}, "stringData": {"k": "v"}},
                {"kind": "Secret", "metadata": {"name": "b"}, "data": {"k": encoded}},
            ]
        )
    )
    assert load_secrets(path) == {"a": {"k": "v"}, "b": {"k": "s3cret"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Secret\nmetadata: {name: a}\ndata: {k: '***'}\n", "key k: not base64"),
        ("kind: ConfigMap\nmetadata: {name: a}\n", "document 1 is not a Secret"),
        ("kind: Secret\n", "document 1 is not a Secret with metadata.name"),
        ("- just\n- a list\n", "document 1 is not a Secret"),
        ("key: [unclosed\n", "not YAML"),
    ],
)
def test_bad_secrets_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text(text)
    with pytest.raises(PodEnvError, match=message):
        load_secrets(path)


@pytest.mark.parametrize(("env", "message"), [("../..", "bad --env"), ("qa", "no overlay 'qa'")])
def test_bad_overlay(env: str, message: str) -> None:
    with pytest.raises(PodEnvError, match=message):
        render_overlay(ROOT / "manifests", env)


def test_an_executor_without_the_optional_secret_still_starts() -> None:
    platform = {
        "platforms": {
            "kubernetes": {
                "deploymentSpec": {
                    "executors": {
                        "exec-a": {
                            "secretAsEnv": [
                                {
                                    "secretName": "missing",
                                    "optional": True,
                                    "keyToEnv": [{"secretKey": "k", "envVar": "V"}],
                                }
                            ]
                        }
                    }
                }
            }
        }
    }
    envs = executor_environments(platform, Overlay("x", {}, ""), {})
    assert envs["exec-a"].variables == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Secret\nmetadata: nba-forecast-database\n", "not a Secret with metadata.name"),
        ("kind: Secret\nmetadata: {name: a}\nstringData: [url]\n", "stringData must be a mapping"),
        ("kind: Secret\nmetadata: {name: a}\nstringData: {url: }\n", "key url: no text value"),
    ],
)
def test_malformed_secrets(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text(text)
    with pytest.raises(PodEnvError, match=message):
        load_secrets(path)


def test_a_secrets_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_bytes(b"\xff\xfe\x00kind")
    with pytest.raises(PodEnvError, match="not UTF-8"):
        load_secrets(path)


def test_no_secrets_file_says_how_to_give_one() -> None:
    overlay = render_overlay(ROOT / "manifests", "staging")
    with pytest.raises(PodEnvError, match="give the Secrets with --secrets FILE"):
        pipeline_environment(pipelines()["monitor"], overlay, {})
