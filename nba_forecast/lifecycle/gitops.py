"""GitOps: the served versions and traffic split live in a git repository of kustomize
overlays, which Argo CD or Flux sync to the cluster. A lifecycle step writes
``manifests/overlays/<env>/model-routing.yaml`` (the ConfigMap the server mounts) and
commits it with the reason in the message. Embedded default: a local repository.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from nba_forecast.routing import Routing

CONFIGMAP = "model-routing.yaml"


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result.stdout.strip()


def ensure_repo(repo: Path) -> Path:
    """A git repository at ``repo`` (created, with a committer identity, if missing)."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q")
        _git(repo, "config", "user.name", "nba-forecast")
        _git(repo, "config", "user.email", "nba-forecast@localhost")
    return repo


@dataclass(frozen=True)
class GitOpsTarget:
    """One environment's overlay in one GitOps repository."""

    repo: Path
    env: str = "production"

    @property
    def routing_path(self) -> Path:
        return self.repo / "manifests" / "overlays" / self.env / CONFIGMAP

    def commit(self, routing: Routing, message: str) -> str | None:
        """Write the routing ConfigMap and commit; returns the commit id, or None when
        nothing changed (a re-run with the same state adds no commit)."""
        ensure_repo(self.repo)
        path = self.routing_path
        path.parent.mkdir(parents=True, exist_ok=True)
        content = routing.configmap(self.env)
        if path.exists() and path.read_text() == content:
            return None
        path.write_text(content)
        _git(self.repo, "add", str(path.relative_to(self.repo)))
        _git(self.repo, "commit", "-q", "-m", message)
        return _git(self.repo, "rev-parse", "HEAD")

    def read(self) -> Routing | None:
        return Routing.read(self.routing_path) if self.routing_path.exists() else None
