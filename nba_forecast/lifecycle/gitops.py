"""GitOps: the served versions and traffic split live in a git repository of kustomize
overlays, which Argo CD or Flux sync to the cluster. A lifecycle step writes
``manifests/overlays/<env>/model-routing.yaml`` (the ConfigMap the server mounts) and
commits it with the reason in the message.

Two shapes: a local repository (the embedded default, and the replay), or a remote one
(``NBA_FORECAST_GITOPS_REPO`` is a URL: https://, ssh://, git://, file://). For a remote the
step clones (or fetches) into a working copy, commits and pushes; a push that is rejected
because the remote moved is retried on the fresh remote state. A task pod's commit so leaves
the pod. Credentials come from the environment (the ``nba-forecast-git`` Secret):
``NBA_FORECAST_GITOPS_TOKEN`` for https, ``NBA_FORECAST_GITOPS_SSH_KEY`` for ssh.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nba_forecast.routing import Routing

CONFIGMAP = "model-routing.yaml"
PUSH_ATTEMPTS = 3
GIT_TIMEOUT_S = 120
# an environment names an overlay folder: no path separators, no "..", no newlines
ENV_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
CREDENTIALS_IN_URL = re.compile(r"(\w+://[^/@\s:]*):[^/@\s]*@")
REMOTE_PATTERN = re.compile(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")


class GitOpsError(RuntimeError):
    """A git command failed, or the target is malformed."""


def is_remote(location: str) -> bool:
    return bool(REMOTE_PATTERN.match(location))


@functools.cache
def _private_file(prefix: str, text: str) -> str:
    """``text`` in a file only this user reads (a deploy key, known hosts), written once per
    process and removed at exit."""
    handle, name = tempfile.mkstemp(prefix=prefix)
    with os.fdopen(handle, "w") as file:
        file.write(text if text.endswith("\n") else text + "\n")
    atexit.register(lambda: Path(name).unlink(missing_ok=True))
    return name


def _auth_env(remote: str | None) -> dict[str, str]:
    """The environment that carries the deploy credentials to git: never on its command line
    (other processes can read that), the token only to an https:// remote."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    token = os.environ.get("NBA_FORECAST_GITOPS_TOKEN", "")
    if token and remote and remote.startswith("https://"):
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    key = os.environ.get("NBA_FORECAST_GITOPS_SSH_KEY", "")
    if key:
        known_hosts = os.environ.get("NBA_FORECAST_GITOPS_KNOWN_HOSTS", "")
        # with the host's key from the Secret, only that host; without, trust on first use
        if known_hosts:
            hosts_file = _private_file("gitops-known-hosts-", known_hosts)
            checking = f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={hosts_file}"
        else:
            checking = "-o StrictHostKeyChecking=accept-new"
        env["GIT_SSH_COMMAND"] = (
            f"ssh -i {_private_file('gitops-key-', key)} -o IdentitiesOnly=yes {checking}"
        )
    return env


def redact(text: str) -> str:
    """A URL's password or token (``scheme://user:secret@host``) never reaches a message."""
    return CREDENTIALS_IN_URL.sub(r"\1***@", text)


def _git(repo: Path, *args: str, remote: str | None = None) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            check=False,
            env=_auth_env(remote),
            timeout=GIT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise GitOpsError(f"git {args[0]} timed out after {GIT_TIMEOUT_S} s in {repo}") from None
    if result.returncode != 0:
        raise GitOpsError(redact(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}"))
    return result.stdout.strip()


def _identity(repo: Path) -> None:
    _git(repo, "config", "user.name", "nba-forecast")
    _git(repo, "config", "user.email", "nba-forecast@localhost")


def ensure_repo(repo: Path) -> Path:
    """A git repository at ``repo`` (created, with a committer identity, if missing)."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q", "-b", "main")
        _identity(repo)
    return repo


@dataclass(frozen=True)
class GitOpsTarget:
    """One environment's overlay in one GitOps repository: ``repo`` is the working copy;
    with ``remote`` set it is a clone of that URL, kept in step before every read and
    commit, and every commit is pushed to ``branch``; with ``pull_request`` to a branch of
    its own (``review_branch``) for a person to merge instead."""

    repo: Path
    env: str = "production"
    remote: str | None = None
    branch: str = "main"
    pull_request: bool = False

    def __post_init__(self) -> None:
        if not ENV_PATTERN.fullmatch(self.env):
            raise GitOpsError(
                f"bad environment {self.env!r}: an overlay name (lowercase letters, digits, "
                "'-'), e.g. staging or production"
            )

    @property
    def routing_path(self) -> Path:
        return self.repo / "manifests" / "overlays" / self.env / CONFIGMAP

    def _sync(self) -> None:
        """The working copy at the remote branch's tip (clone on first use)."""
        assert self.remote is not None
        if not (self.repo / ".git").exists():
            self.repo.parent.mkdir(parents=True, exist_ok=True)
            _git(self.repo.parent, "clone", "-q", self.remote, self.repo.name, remote=self.remote)
            _identity(self.repo)
        else:
            if _git(self.repo, "remote", "get-url", "origin") != self.remote:
                # a working copy of another repository: never push there
                _git(self.repo, "remote", "set-url", "origin", self.remote)
            _git(self.repo, "fetch", "-q", "--prune", "origin", remote=self.remote)
        try:
            _git(self.repo, "rev-parse", "--verify", "-q", f"origin/{self.branch}")
        except GitOpsError:  # an empty remote: the first push creates the branch
            _git(self.repo, "checkout", "-q", "--orphan", self.branch)
            return
        _git(self.repo, "checkout", "-q", "-B", self.branch, f"origin/{self.branch}")
        _git(self.repo, "reset", "-q", "--hard", f"origin/{self.branch}")

    def _check_overlay(self) -> None:
        """In a repository of kustomize overlays the environment must be one of them: a
        mistyped name must not create an overlay nothing syncs."""
        overlays = self.repo / "manifests" / "overlays"
        existing = sorted(p.parent.name for p in overlays.glob("*/kustomization.yaml"))
        if existing and self.env not in existing:
            raise GitOpsError(
                f"no overlay {self.env!r} in the GitOps repository (have: {', '.join(existing)})"
            )

    def review_branch(self, commit: str) -> str:
        """Where a reviewed change goes (``--pull-request``): one branch per commit."""
        return f"nba-forecast/{self.env}-{commit[:12]}"

    def _revert_message(self, subject_prefix: str, reason: str) -> str | None:
        """``Revert "<subject>"`` of the newest commit of the routing file whose subject
        starts with ``subject_prefix`` (git's own revert form), or None when there is none."""
        relative = str(self.routing_path.relative_to(self.repo))
        try:
            log = _git(self.repo, "log", "--format=%H %s", "--", relative)
        except GitOpsError:  # no commits yet
            return None
        for line in log.splitlines():
            sha, _, subject = line.partition(" ")
            if subject.startswith(subject_prefix):
                return f'Revert "{subject}"\n\nThis reverts commit {sha}.\n\n{reason}'.strip()
        return None

    def _write_and_commit(
        self, content: str, message: str, reverting: str | None = None
    ) -> str | None:
        self._check_overlay()
        path = self.routing_path
        if path.exists() and path.read_text() == content:
            return None
        if reverting is not None:
            message = self._revert_message(reverting, message) or message
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        _git(self.repo, "add", str(path.relative_to(self.repo)))
        _git(self.repo, "commit", "-q", "-m", message)
        return _git(self.repo, "rev-parse", "HEAD")

    def commit(self, routing: Routing, message: str, *, reverting: str | None = None) -> str | None:
        """Write the routing ConfigMap and commit (and push, for a remote); returns the
        commit id, or None when nothing changed (a re-run with the same state adds no
        commit). ``reverting``: the subject of the commit this one undoes (a rollback is a
        revert commit of the A/B start)."""
        content = routing.configmap(self.env)
        if self.remote is None:
            ensure_repo(self.repo)
            return self._write_and_commit(content, message, reverting)
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            self._sync()
            commit = self._write_and_commit(content, message, reverting)
            if commit is None:
                return None
            target = self.review_branch(commit) if self.pull_request else self.branch
            try:
                _git(
                    self.repo,
                    "push",
                    "-q",
                    "origin",
                    f"HEAD:refs/heads/{target}",
                    remote=self.remote,
                )
                return commit
            except GitOpsError as error:
                if attempt == PUSH_ATTEMPTS:
                    raise GitOpsError(
                        redact(
                            f"push to {self.remote} failed {PUSH_ATTEMPTS} times, re-fetching "
                            f"and re-applying in between (the last: {error})"
                        )
                    ) from None
        return None  # unreachable: the loop returns or raises

    def read(self) -> Routing | None:
        if self.remote is not None:
            self._sync()
        return Routing.read(self.routing_path) if self.routing_path.exists() else None


def gitops_target(
    location: str | Path, env: str, *, workdir: Path, pull_request: bool = False
) -> GitOpsTarget:
    """A target from a setting: a URL is a remote (cloned under ``workdir``), anything else
    a local repository path (``pull_request`` needs a remote)."""
    text = str(location)
    if is_remote(text):
        # one working copy per remote: a clone of one repository never pushes to another
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return GitOpsTarget(
            workdir / "gitops-clones" / digest, env, remote=text, pull_request=pull_request
        )
    if pull_request:
        raise GitOpsError("--pull-request needs a remote GitOps repository (a URL)")
    return GitOpsTarget(Path(text).expanduser(), env)
