"""Issue 11's acceptance, the way a cluster runs it: every task of continuous_improvement in
its image (podman through KFP's DockerRunner), with exactly the staging overlay's Pod
environment (ConfigMap values, Secret values from a file), the registry and the games on an
S3 server over HTTP, the prediction log on PostgreSQL, the GitOps remote over git://, and no
filesystem shared between tasks but the pipeline root. Marker `container`: `.ci/run` builds
the images and runs these."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from components import GPU_IMAGE, IMAGE
from tests.plugins.containers import ROOT, git_daemon, podman_env, require_images

pytestmark = [pytest.mark.container, pytest.mark.postgres, pytest.mark.slow]
BUCKET = "nba-forecast-staging"  # the staging overlay's registry and pipeline root
CLI = [sys.executable, "-m", "nba_forecast.cli"]
ROUTING = "manifests/overlays/staging/model-routing.yaml"


@pytest.fixture
def cluster(s3, pg_schema_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The services a staging cluster gives its Pods, and the Secrets file naming them."""
    require_images(IMAGE, GPU_IMAGE)
    endpoint, _ = s3
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    if BUCKET in {b["Name"] for b in client.list_buckets()["Buckets"]}:  # a fresh cluster
        for key in keys(client, ""):
            client.delete_object(Bucket=BUCKET, Key=key)
    else:
        client.create_bucket(Bucket=BUCKET)
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "nba-forecast-database"},
                    "stringData": {"url": pg_schema_url},
                },
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "nba-forecast-s3"},
                    "stringData": {"access-key-id": "test", "secret-access-key": "test"},
                },
            ]
        )
    )
    with git_daemon(tmp_path / "remotes") as (git_url, bare):
        env = {
            "NBA_FORECAST_REGISTRY_URL": f"s3://{BUCKET}/registry",
            "NBA_FORECAST_S3_ENDPOINT_URL": endpoint,
            "NBA_FORECAST_DATABASE_URL": pg_schema_url,
            "NBA_FORECAST_GITOPS_REPO": git_url,
            "NBA_FORECAST_ENVIRONMENT": "staging",
            "NBA_FORECAST_HOME": str(tmp_path / "operator-home"),
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }
        yield {"env": env, "secrets": secrets, "bare": bare, "s3": client, "tmp": tmp_path}


def cli(args: list[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        cwd=ROOT,
        env={**podman_env(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def keys(client, prefix: str) -> list[str]:  # type: ignore[no-untyped-def]
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_continuous_improvement_runs_every_task_in_its_image(cluster) -> None:  # type: ignore[no-untyped-def]
    env = cluster["env"]
    # the operator bootstraps production into the staging registry (S3) from here
    bootstrap = cli(["bootstrap", "--through-season", "2013"], env)
    assert bootstrap.returncode == 0, bootstrap.stderr
    # the tasks get only the overlay's environment: the endpoint and the remote, which are
    # cluster addresses in the overlay, point at this machine's servers
    run = cli(
        [
            "pipeline",
            "run",
            "continuous_improvement",
            "--runner",
            "container",
            "--env",
            "staging",
            "--secrets",
            str(cluster["secrets"]),
            "--set-env",
            f"NBA_FORECAST_S3_ENDPOINT_URL={env['NBA_FORECAST_S3_ENDPOINT_URL']}",
            "--set-env",
            f"NBA_FORECAST_GITOPS_REPO={env['NBA_FORECAST_GITOPS_REPO']}",
            "--root",
            str(cluster["tmp"] / "pipeline-root"),
            "--param",
            "as_of=2014-04-17T12:00:00Z",
            "--param",
            "force_retrain=true",
        ],
        {k: v for k, v in env.items() if not k.startswith("NBA_FORECAST_")},
    )
    output = run.stdout + run.stderr
    (cluster["tmp"] / "run.log").write_text(output)  # kept by pytest for a failed run
    assert run.returncode == 0, output[-6000:]
    assert "NBA_FORECAST_DATABASE_URL=***  [Secret nba-forecast-database]" in run.stdout
    assert "NBA_FORECAST_ENVIRONMENT=staging  [ConfigMap nba-forecast-settings]" in run.stdout
    rows = {
        cells[0]: cells[1]
        for line in run.stdout.splitlines()
        if line.startswith("│") and (cells := [c.strip() for c in line.strip("│").split("│")])[0]
    }
    for task in (
        "collect-predictions",
        "update-dejavu",
        "retrain-lstm",
        "validate-challenger",
        "register-version",
        "rollout-ab-2",
        "record-run",
    ):
        assert rows.get(task) == "succeeded", (task, rows)
    assert 'decision: rollout-ab-2 -> "A/B start:' in run.stdout
    # the artifacts are under the overlay's pipeline root in the bucket
    artifacts = keys(cluster["s3"], "pipeline-root/")
    assert any(k.endswith("retrain-lstm/model") for k in artifacts), artifacts[:20]
    # the retrain task read production from S3 and registered its model there
    model_key = next(k for k in artifacts if k.endswith("retrain-lstm/model"))
    manifest = json.loads(cluster["s3"].get_object(Bucket=BUCKET, Key=model_key)["Body"].read())
    assert manifest["parent"] and keys(cluster["s3"], f"registry/versions/{manifest['version']}/")
    assert "image ghcr.io/nba-forecast/nba-forecast-gpu" in manifest["code_version"]
    # the exit handler recorded the run and the code it ran
    (record_key,) = keys(cluster["s3"], "registry/runs/continuous_improvement/")
    record = json.loads(cluster["s3"].get_object(Bucket=BUCKET, Key=record_key)["Body"].read())
    assert record["state"] == "SUCCEEDED" and record["image"] == IMAGE and record["image_id"]
    # the prediction log the tasks used is the PostgreSQL one (collect read it: no SQLite)
    assert not list((cluster["tmp"] / "pipeline-root").rglob("*.db"))
    # the rollout's routing left the pod: a commit on the remote, in the staging overlay
    routing = subprocess.run(
        ["git", "-C", str(cluster["bare"]), "show", "main:" + ROUTING],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f'"challenger": "{manifest["version"]}"' in routing, routing
    # no task container stays behind
    left = subprocess.run(
        ["podman", "ps", "-aq", "--filter", "label=nba-forecast.local-run"],
        env=podman_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not left.strip()


def test_the_retrain_executor_reads_production_from_s3_with_the_pod_environment(
    cluster,  # type: ignore[no-untyped-def]
) -> None:
    """The compiled retrain executor's own command, in its image, with the staging Pod's
    environment and nothing else: no `aliases: none yet`."""
    env = cluster["env"]
    assert cli(["bootstrap", "--through-season", "2012"], env).returncode == 0
    from kfp import compiler

    from nba_forecast.pod_env import load_secrets, pipeline_environment, render_overlay
    from pipelines import pipelines

    overlay = render_overlay(ROOT / "manifests", "staging")
    pod_env, _ = pipeline_environment(
        pipelines()["retrain"], overlay, load_secrets(cluster["secrets"])
    )
    variables = {
        **pod_env.variables,
        "NBA_FORECAST_S3_ENDPOINT_URL": env["NBA_FORECAST_S3_ENDPOINT_URL"],
        "NBA_FORECAST_GITOPS_REPO": env["NBA_FORECAST_GITOPS_REPO"],
    }
    package = cluster["tmp"] / "retrain.yaml"
    compiler.Compiler().compile(pipelines()["retrain"], str(package))
    command = [
        "python3",
        "-c",
        "from nba_forecast.lifecycle.kfp_adapter import run_component as r; "
        "print(r('retrain', '2013-06-30T00:00:00Z', deployment={'registry_url': ''}, "
        "force=False).detail)",
    ]
    flags = [f"--env={k}={v}" for k, v in variables.items()]
    result = subprocess.run(
        ["podman", "run", "--rm", "--network", "host", *flags, GPU_IMAGE, *command],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "none yet" not in result.stdout + result.stderr
    assert "since 2013-" in result.stdout or "retrained" in result.stdout, result.stdout
    assert os.environ.get("NBA_FORECAST_REGISTRY_URL") is None  # nothing leaked from here
