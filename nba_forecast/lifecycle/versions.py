"""Model versions as the steps use them: load one from the registry, register a new one
and point the ``candidate`` alias at it (the one place that does)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.storage.registry import Registry


def load_model(registry: Registry, name: str) -> HalftimeEnsemble:
    """A version (or an alias's version), pulled and checked against its manifest."""
    with tempfile.TemporaryDirectory() as tmp:
        return HalftimeEnsemble.load(registry.pull(name, Path(tmp) / "model"))


def register_candidate(
    registry: Registry,
    model: HalftimeEnsemble,
    *,
    parent: str,
    reason: str,
    data_window: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    made_by: str = "",
) -> str | None:
    """Register ``model`` and point ``candidate`` at it; None when its content equals
    ``parent`` (nothing new). Re-running with the same content changes nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = registry.register(
            model.save(Path(tmp) / "model"),
            parent=parent,
            data_window=data_window,
            metrics=metrics,
            made_by=made_by,
        )
    if manifest.version == parent:
        return None
    if registry.aliases().get("candidate") != manifest.version:
        registry.promote("candidate", manifest.version, reason=reason)
    return manifest.version
