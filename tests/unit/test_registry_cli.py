"""`nba-forecast registry ...` end to end on a local registry, with bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nba_forecast.cli import app

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def make_model(base: Path, name: str) -> Path:
    directory = base / name
    directory.mkdir(parents=True)
    (directory / "weights.npz").write_bytes(name.encode() * 100)
    return directory


def test_registry_lifecycle_through_the_cli(tmp_path: Path) -> None:
    store = (tmp_path / "reg").as_uri()
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"mae": 4.47}))
    first = run(
        "registry",
        "register",
        str(make_model(tmp_path, "a")),
        "--metrics",
        str(metrics),
        "--registry-url",
        store,
        "--create",
    )
    assert first.exit_code == 0, first.output
    version_a = first.output.split()[1]
    version_b = run(
        "registry",
        "register",
        str(make_model(tmp_path, "b")),
        "--parent",
        version_a,
        "--registry-url",
        store,
    ).output.split()[1]
    assert (
        run(
            "registry", "promote", version_a, "--reason", "bootstrap", "--registry-url", store
        ).exit_code
        == 0
    )
    promoted = run(
        "registry",
        "promote",
        version_b,
        "--reason",
        "better",
        "--report",
        "r.md",
        "--registry-url",
        store,
    )
    assert f"{version_a} -> {version_b}" in promoted.output
    listing = run("registry", "list", "--registry-url", store)
    assert version_a in listing.output and "production" in listing.output
    shown = run("registry", "show", "production", "--registry-url", store)
    assert json.loads(shown.output)["version"] == version_b
    back = run("registry", "rollback", "--registry-url", store)
    assert back.exit_code == 0 and f"{version_b} -> {version_a}" in back.output
    history = run("registry", "history", "--alias", "production", "--registry-url", store)
    assert "bootstrap" in history.output and "r.md" in history.output
    pulled = run(
        "registry", "pull", "production", "--out", str(tmp_path / "out"), "--registry-url", store
    )
    assert pulled.exit_code == 0
    assert (tmp_path / "out" / "weights.npz").read_bytes() == b"a" * 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["registry", "register", "{tmp}/missing"], "not a model directory"),
        (["registry", "show", "nope"], "no alias or version 'nope'"),
        (["registry", "show", "0123456789abcdef"], "no version"),
        (["registry", "promote", "0123456789abcdef"], "--reason is required"),
        (["registry", "promote", "0123456789abcdef", "--reason", "x"], "no version"),
        (["registry", "rollback"], "no promotions"),
        (
            ["registry", "promote", "0123456789abcdef", "--alias", "production\n", "--reason", "x"],
            "bad alias",
        ),
        (["registry", "pull", "production", "--out", "{tmp}/o"], "no alias or version"),
        (["registry", "list", "--registry-url", "ftp://x/y"], "unsupported store URL"),
        (["registry", "register", "{tmp}/model", "--metrics", "{tmp}/bad.json"], "not JSON"),
    ],
)
def test_registry_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    make_model(tmp_path, "model")
    (tmp_path / "bad.json").write_text("{not json")
    full = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--registry-url" not in full:
        (tmp_path / "reg").mkdir()
        full += ["--registry-url", (tmp_path / "reg").as_uri()]
    result = run(*full)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_db_upgrade_creates_and_reports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'log.db'}"
    first = run("db", "upgrade", "--create", "--database-url", url)
    assert first.exit_code == 0, first.output
    assert "0 predictions" in first.output
    assert run("db", "upgrade", "--create", "--database-url", url).exit_code == 0  # idempotent


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://x/y", "cannot migrate"), ("postgresql://nobody@127.0.0.1:1/x", "cannot migrate")],
)
def test_db_upgrade_bad_url(url: str, message: str) -> None:
    result = run("db", "upgrade", "--create", "--database-url", url)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize("env", ["../../..", "Staging", "staging\n"])
def test_rollout_start_refuses_a_bad_environment_before_anything_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    result = run("rollout", "start", "--env", env)
    assert result.exit_code == 2 and "bad environment" in result.output, result.output
    assert not (tmp_path / "home" / "registry" / "rollouts").exists()


def test_roll_forward_commits_the_routing_and_status_finds_disagreement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The routing in git is what serves: a roll forward moves the alias and commits; an
    alias moved by hand alone is a disagreement `rollout status` reports (exit 1)."""
    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NBA_FORECAST_REGISTRY_URL", raising=False)
    monkeypatch.delenv("NBA_FORECAST_GITOPS_REPO", raising=False)
    store = (tmp_path / "home" / "registry").as_uri()
    versions = []
    for name in ("a", "b"):
        result = run(
            "registry",
            "register",
            str(make_model(tmp_path, name)),
            "--registry-url",
            store,
            "--create",
        )
        assert result.exit_code == 0, result.output
        versions.append(re.search(r"[0-9a-f]{16}", result.output).group(0))  # type: ignore[union-attr]
    v1, v2 = versions
    assert run("roll-forward", v1, "--reason", "first").exit_code == 0
    forward = run("roll-forward", v2, "--reason", "better")
    assert forward.exit_code == 0, forward.output
    status = run("rollout", "status")
    assert status.exit_code == 0 and "git and registry agree" in status.output, status.output
    by_hand = run(
        "registry", "promote", v1, "--alias", "production", "--reason", "x", "--registry-url", store
    )
    assert by_hand.exit_code == 0, by_hand.output
    status = run("rollout", "status")
    assert status.exit_code == 1, status.output
    assert f"disagree: production: git {v2}, registry {v1}" in status.output
    unreachable = run("rollout", "status", "--server", "http://127.0.0.1:9")
    assert unreachable.exit_code == 2 and "cannot ask the server" in unreachable.output


def test_a_lost_routing_commit_is_completed_by_running_start_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    store = (tmp_path / "home" / "registry").as_uri()
    v1, v2 = (
        re.search(  # type: ignore[union-attr]
            r"[0-9a-f]{16}",
            run(
                "registry",
                "register",
                str(make_model(tmp_path, n)),
                "--registry-url",
                store,
                "--create",
            ).output,
        ).group(0)
        for n in ("a", "b")
    )
    assert run("roll-forward", v1, "--reason", "first").exit_code == 0
    # the stand-in models cannot forecast: no comparison, an A/B regardless
    assert run("rollout", "start", "--candidate", v2, "--no-compare").exit_code == 0
    gitops = tmp_path / "home" / "gitops"
    subprocess.run(["git", "-C", str(gitops), "reset", "-q", "--hard", "HEAD~1"], check=True)
    assert run("rollout", "status").exit_code == 1  # the A/B is not in git: disagreement
    again = run("rollout", "start", "--candidate", v2, "--no-compare")
    assert "already running" in again.output
    assert run("rollout", "status").exit_code == 0


def test_served_ab_without_a_running_test_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    result = run("served-ab", "--count", "2")
    assert result.exit_code == 2 and "no A/B test running" in result.output, result.output
    result = run("served-ab", "--season", "1990")
    assert result.exit_code == 2 and "no shipped games in season 1990" in result.output


@pytest.mark.parametrize(("status", "body"), [(200, b"[1, 2]"), (503, b'{"detail": "no"}')])
def test_status_against_a_server_that_answers_nonsense(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int, body: bytes
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        result = run("rollout", "status", "--server", url)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 2 and "cannot ask the server" in result.output, result.output
