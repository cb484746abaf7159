"""KFP recurring runs: the schedules file generated from the cadence table
(``nba_forecast.lifecycle.cadence``), read back, and reconciled with a KFP API server."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from nba_forecast.lifecycle.cadence import CADENCES

MANAGED_PREFIX = "nbaf-"


@dataclass(frozen=True)
class RecurringRun:
    """One declared recurring run. Its KFP name carries a hash of its content, because KFP
    cannot update a recurring run in place: a changed schedule is a new name."""

    name: str
    pipeline: str
    cron: str
    parameters: tuple[tuple[str, str], ...] = ()
    max_concurrency: int = 1
    no_catchup: bool = True

    @property
    def kfp_name(self) -> str:
        content = json.dumps(
            [self.pipeline, self.cron, list(self.parameters), self.max_concurrency, self.no_catchup]
        )
        return f"{MANAGED_PREFIX}{self.name}-{hashlib.sha256(content.encode()).hexdigest()[:8]}"


SCHEDULES_HEADER = """\
# Recurring KFP runs, kept in step with Git by `nba-forecast schedules sync` (a CronJob in the
# cluster runs it). Cron: 6 fields, seconds first, UTC. GENERATED from the cadence table in
# nba_forecast/lifecycle/cadence.py by `nba-forecast schedules render`; do not edit by hand.
"""


def render_schedules() -> str:
    """The schedules file: one recurring run per cadence, named after its step, running
    the pipeline of the same name."""
    lines = [
        SCHEDULES_HEADER.rstrip("\n"),
        "defaults:",
        "  max_concurrency: 1",
        "  no_catchup: true",
    ]
    lines.append("schedules:")
    for item in CADENCES:
        lines += [
            f"  - name: {item.step.kebab}",
            f"    pipeline: {item.step.value}",
            f'    cron: "{item.cron}"',
        ]
    return "\n".join(lines) + "\n"


def load_schedules(path: Path | None = None) -> list[RecurringRun]:
    """The declared recurring runs of a schedules file (``manifests/base/schedules.yaml``);
    None: the ones this version declares (rendered, so no checkout is needed)."""
    import yaml

    try:
        data = yaml.safe_load(render_schedules() if path is None else path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot read the schedules: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("schedules"), list):
        raise ValueError(f"{path}: expected a mapping with a 'schedules' list")
    defaults = data.get("defaults") or {}
    runs = []
    for index, item in enumerate(data["schedules"]):
        missing = [k for k in ("name", "pipeline", "cron") if not item.get(k)]
        if missing:
            raise ValueError(f"{path}: schedule #{index + 1} lacks {', '.join(missing)}")
        if len(str(item["cron"]).split()) != 6:
            raise ValueError(
                f"{path}: schedule {item['name']}: cron {item['cron']!r} must have "
                "6 fields (seconds first, UTC)"
            )
        params = tuple(sorted((str(k), str(v)) for k, v in (item.get("parameters") or {}).items()))
        runs.append(
            RecurringRun(
                str(item["name"]),
                str(item["pipeline"]),
                str(item["cron"]),
                params,
                int(item.get("max_concurrency", defaults.get("max_concurrency", 1))),
                bool(item.get("no_catchup", defaults.get("no_catchup", True))),
            )
        )
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: schedule names must be unique, got {names}")
    return runs


@dataclass(frozen=True)
class SyncPlan:
    create: tuple[RecurringRun, ...]
    delete: tuple[str, ...]  # KFP names of recurring runs to delete
    keep: tuple[str, ...]


def plan_sync(declared: list[RecurringRun], existing: list[str], *, prune: bool) -> SyncPlan:
    """What makes the cluster's recurring runs match the declaration. Runs we manage carry
    ``MANAGED_PREFIX``; one whose content changed is deleted and re-created; one no longer
    declared is deleted only with ``prune``; runs we do not manage are never touched."""
    wanted = {run.kfp_name: run for run in declared}
    managed = [name for name in existing if name.startswith(MANAGED_PREFIX)]
    declared_bases = {f"{MANAGED_PREFIX}{run.name}-" for run in declared}
    create = tuple(run for name, run in wanted.items() if name not in existing)
    keep = tuple(name for name in managed if name in wanted)
    delete = tuple(
        name
        for name in managed
        if name not in wanted
        and (
            prune
            or any(name.startswith(base) and len(name) == len(base) + 8 for base in declared_bases)
        )
    )
    return SyncPlan(create, delete, keep)
