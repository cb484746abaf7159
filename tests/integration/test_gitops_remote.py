"""GitOps against a remote: the step's commit leaves the machine (a bare repository over
file:// and over git:// on loopback), a rejected push is retried on the remote's new state,
and bad targets are clear errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nba_forecast.lifecycle.gitops import GitOpsError, GitOpsTarget, gitops_target
from nba_forecast.routing import Routing
from tests.plugins.containers import git_daemon


def bare(tmp_path: Path) -> Path:
    path = tmp_path / "config.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


def remote_file(remote: Path, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(remote), "show", f"main:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_a_commit_reaches_an_empty_remote_and_a_fresh_clone(tmp_path: Path) -> None:
    remote = bare(tmp_path)
    target = gitops_target(remote.as_uri(), "staging", workdir=tmp_path / "pod-a")
    assert target.remote == remote.as_uri()
    commit = target.commit(Routing("v1", None, 0.0, ""), "bootstrap: v1 serves")
    assert commit and '"production": "v1"' in remote_file(
        remote, "manifests/overlays/staging/model-routing.yaml"
    )
    # another pod (another working copy) reads it and adds its own commit
    other = gitops_target(remote.as_uri(), "staging", workdir=tmp_path / "pod-b")
    assert other.read() == Routing("v1", None, 0.0, "")
    assert other.commit(Routing("v1", "v2", 0.1, "s"), "A/B start: v2 at 10%")
    assert other.commit(Routing("v1", "v2", 0.1, "s"), "again") is None  # nothing changed
    log = subprocess.run(
        ["git", "-C", str(remote), "log", "--format=%s", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert log == ["A/B start: v2 at 10%", "bootstrap: v1 serves"]


def test_a_rejected_push_is_retried_on_the_new_remote_state(tmp_path: Path) -> None:
    remote = bare(tmp_path)
    a = GitOpsTarget(tmp_path / "a", "production", remote=remote.as_uri())
    b = GitOpsTarget(tmp_path / "b", "staging", remote=remote.as_uri())
    a.commit(Routing("v1", None, 0.0, ""), "production v1")
    b.read()  # b's clone is now behind once a pushes again
    a.commit(Routing("v2", None, 0.0, ""), "production v2")
    assert b.commit(Routing("s1", None, 0.0, ""), "staging s1")
    assert '"production": "v2"' in remote_file(
        remote, "manifests/overlays/production/model-routing.yaml"
    )
    assert '"production": "s1"' in remote_file(
        remote, "manifests/overlays/staging/model-routing.yaml"
    )


def test_over_git_protocol_on_loopback(tmp_path: Path) -> None:
    with git_daemon(tmp_path / "served") as (url, remote):
        target = gitops_target(url, "staging", workdir=tmp_path / "pod")
        target.commit(Routing("v1", None, 0.0, ""), "v1")
        assert '"production": "v1"' in remote_file(
            remote, "manifests/overlays/staging/model-routing.yaml"
        )


def test_an_unreachable_remote_is_a_clear_error(tmp_path: Path) -> None:
    target = gitops_target((tmp_path / "nope.git").as_uri(), "staging", workdir=tmp_path)
    with pytest.raises(GitOpsError, match=r"git clone .* failed"):
        target.commit(Routing("v1", None, 0.0, ""), "v1")


@pytest.mark.parametrize("env", ["../../..", "Production", "prod\n", "", "a/b"])
def test_bad_environment_names(tmp_path: Path, env: str) -> None:
    with pytest.raises(GitOpsError, match="bad environment"):
        GitOpsTarget(tmp_path, env)


def test_a_working_copy_never_pushes_to_another_remote(tmp_path: Path) -> None:
    """One operator machine, two config repositories: each commit lands in its own."""
    first, second = bare(tmp_path / "one"), bare(tmp_path / "two")
    gitops_target(first.as_uri(), "staging", workdir=tmp_path).commit(
        Routing("v1", None, 0.0, ""), "v1 to one"
    )
    gitops_target(second.as_uri(), "staging", workdir=tmp_path).commit(
        Routing("v2", None, 0.0, ""), "v2 to two"
    )
    path = "manifests/overlays/staging/model-routing.yaml"
    assert '"production": "v1"' in remote_file(first, path)
    assert '"production": "v2"' in remote_file(second, path)


def test_credentials_never_reach_messages_or_other_remotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nba_forecast.lifecycle.gitops import _auth_env, redact

    assert redact("git clone https://user:hunter2@example.com/c.git failed") == (
        "git clone https://user***@example.com/c.git failed"
    )
    monkeypatch.setenv("NBA_FORECAST_GITOPS_TOKEN", "SEKRET")
    assert "GIT_CONFIG_VALUE_0" in _auth_env("https://example.com/c.git")
    assert "GIT_CONFIG_VALUE_0" not in _auth_env("http://example.com/c.git")  # plain text
    target = gitops_target("https://user:hunter2@127.0.0.1:9/c.git", "staging", workdir=tmp_path)
    with pytest.raises(GitOpsError) as raised:
        target.commit(Routing("v1", None, 0.0, ""), "v1")
    assert "hunter2" not in str(raised.value) and "SEKRET" not in str(raised.value)


def git_log(remote: Path, ref: str = "main") -> list[str]:
    return subprocess.run(
        ["git", "-C", str(remote), "log", "--format=%B%x00", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\x00")


def test_a_rollback_is_a_revert_commit_of_the_ab_start(tmp_path: Path) -> None:
    remote = bare(tmp_path)
    target = gitops_target(remote.as_uri(), "staging", workdir=tmp_path)
    target.commit(Routing("v1", None, 0.0, ""), "bootstrap: production v1")
    start = target.commit(Routing("v1", "v2", 0.1, "s"), "A/B start: v2 at 10% against v1")
    target.commit(Routing("v1", "v2", 0.25, "s"), "A/B running at 25%: v2")
    target.commit(
        Routing("v1", None, 0.0, ""),
        "A/B rollback: v2 after 80 paired games",
        reverting="A/B start: v2",
    )
    newest = git_log(remote)[0].strip()
    assert newest.startswith('Revert "A/B start: v2 at 10% against v1"')
    assert f"This reverts commit {start}." in newest and "A/B rollback: v2" in newest
    path = "manifests/overlays/staging/model-routing.yaml"
    assert '"challenger": null' in remote_file(remote, path)


def test_pull_request_mode_pushes_a_review_branch_not_main(tmp_path: Path) -> None:
    remote = bare(tmp_path)
    direct = gitops_target(remote.as_uri(), "production", workdir=tmp_path / "a")
    direct.commit(Routing("v1", None, 0.0, ""), "bootstrap: production v1")
    reviewed = gitops_target(
        remote.as_uri(), "production", workdir=tmp_path / "b", pull_request=True
    )
    commit = reviewed.commit(Routing("v2", None, 0.0, ""), "roll forward: production v2")
    assert commit is not None
    branch = reviewed.review_branch(commit)
    assert branch == f"nba-forecast/production-{commit[:12]}"
    path = "manifests/overlays/production/model-routing.yaml"
    assert '"production": "v1"' in remote_file(remote, path)  # main waits for the review
    shown = subprocess.run(
        ["git", "-C", str(remote), "show", f"{branch}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"production": "v2"' in shown
    with pytest.raises(GitOpsError, match="needs a remote"):
        gitops_target(tmp_path / "local", "production", workdir=tmp_path, pull_request=True)


def test_a_fresh_clone_renders_the_promoted_routing_with_kustomize(tmp_path: Path) -> None:
    """The config repository as Argo CD sees it: this project's manifests, the routing the
    step pushed, rendered by `kubectl kustomize`."""
    import shutil

    import yaml

    remote = bare(tmp_path)
    seed = tmp_path / "seed"
    subprocess.run(["git", "clone", "-q", remote.as_uri(), str(seed)], check=True)
    shutil.copytree(Path(__file__).resolve().parents[2] / "manifests", seed / "manifests")
    for args in (
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "manifests"],
        ["push", "-q", "origin", "HEAD:main"],
    ):
        subprocess.run(["git", "-C", str(seed), *args], check=True)
    target = gitops_target(remote.as_uri(), "staging", workdir=tmp_path / "pod")
    target.commit(Routing("0123456789abcdef", None, 0.0, ""), "roll forward: production 0123")
    clone = tmp_path / "argo"
    subprocess.run(["git", "clone", "-q", remote.as_uri(), str(clone)], check=True)
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(clone / "manifests" / "overlays" / "staging")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (configmap,) = [
        d
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] == "nba-forecast-model-routing"
    ]
    assert Routing.from_json(configmap["data"]["routing.json"]).production == "0123456789abcdef"


def test_an_environment_must_name_an_existing_overlay(tmp_path: Path) -> None:
    repo = tmp_path / "config"
    (repo / "manifests" / "overlays" / "production").mkdir(parents=True)
    (repo / "manifests" / "overlays" / "production" / "kustomization.yaml").write_text("{}\n")
    with pytest.raises(GitOpsError, match=r"no overlay 'stagin' .*have: production"):
        GitOpsTarget(repo, "stagin").commit(Routing("v1", None, 0.0, ""), "v1")
    assert not (repo / "manifests" / "overlays" / "stagin").exists()
    assert GitOpsTarget(repo, "production").commit(Routing("v1", None, 0.0, ""), "v1")


def test_a_deploy_key_goes_to_ssh_in_a_private_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import stat

    from nba_forecast.lifecycle.gitops import _auth_env

    monkeypatch.setenv("NBA_FORECAST_GITOPS_SSH_KEY", "-----BEGIN KEY-----\nabc")
    monkeypatch.setenv("NBA_FORECAST_GITOPS_KNOWN_HOSTS", "git.example.com ssh-ed25519 AAAA")
    command = _auth_env("ssh://git@git.example.com/c.git")["GIT_SSH_COMMAND"]
    key_file = command.split("-i ", 1)[1].split(" ", 1)[0]
    assert Path(key_file).read_text().endswith("abc\n")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert "StrictHostKeyChecking=yes" in command and "UserKnownHostsFile=" in command
    assert _auth_env("ssh://git@git.example.com/c.git")["GIT_SSH_COMMAND"] == command  # once
