"""GitOps: the served versions and traffic split live in a git repository of kustomize
overlays, which Argo CD or Flux sync to the cluster. A rollout step writes
``manifests/overlays/<env>/model-routing.yaml`` (a ConfigMap the server reads) and commits it
with the reason and validation summary in the message. Embedded default: a local repository.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

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


def routing_manifest(
    env: str, production: str, challenger: str | None, share_b: float, salt: str
) -> str:
    routing = {
        "production": production,
        "challenger": challenger,
        "challenger_share": share_b,
        "salt": salt,
    }
    # JSON is valid YAML: one less dependency, and the server parses it with json
    return "\n".join(
        [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            "  name: nba-forecast-model-routing",
            "  labels:",
            "    app.kubernetes.io/name: nba-forecast",
            f"    nba-forecast/environment: {env}",
            "data:",
            f"  routing.json: '{json.dumps(routing, sort_keys=True)}'",
            "",
        ]
    )


def commit_routing(
    repo: Path,
    env: str,
    *,
    production: str,
    challenger: str | None,
    share_b: float,
    salt: str,
    message: str,
) -> str | None:
    """Write the overlay and commit; returns the commit id, or None if nothing changed (so a
    re-run with the same state adds no commit)."""
    ensure_repo(repo)
    path = repo / "manifests" / "overlays" / env / CONFIGMAP
    path.parent.mkdir(parents=True, exist_ok=True)
    content = routing_manifest(env, production, challenger, share_b, salt)
    if path.exists() and path.read_text() == content:
        return None
    path.write_text(content)
    _git(repo, "add", str(path.relative_to(repo)))
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def read_routing(repo: Path, env: str) -> dict[str, object]:
    text = (repo / "manifests" / "overlays" / env / CONFIGMAP).read_text()
    line = next(row for row in text.splitlines() if row.strip().startswith("routing.json:"))
    return json.loads(line.split(":", 1)[1].strip().strip("'"))
