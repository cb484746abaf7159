"""The pipelines' parameters, described once: the KFP UI shows these texts beside each
input (KFP reads them from the pipeline's docstring, which ``documented`` writes)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

DESCRIPTIONS = {
    "database_url": "Prediction log, an SQLAlchemy URL. Empty: NBA_FORECAST_DATABASE_URL in "
    "the task's environment (Secret nba-forecast-database, key url).",
    "registry_url": "Model registry, s3://bucket/prefix. Empty: NBA_FORECAST_REGISTRY_URL "
    "(ConfigMap nba-forecast-settings).",
    "games_uri": "Margins file (CSV/Parquet) of games beside the shipped ones, "
    "s3://bucket/key. Empty: NBA_FORECAST_GAMES_URI (ConfigMap), else the shipped games.",
    "gitops_repo": "GitOps config repository the routing is committed and pushed to (a git "
    "URL). Empty: NBA_FORECAST_GITOPS_REPO (ConfigMap; credentials: Secret nba-forecast-git).",
    "environment": "Overlay the routing is written to (staging, production). Empty: "
    "NBA_FORECAST_ENVIRONMENT (ConfigMap).",
    "as_of": "The decision time, ISO 8601 UTC; a schedule passes its own time. Empty or "
    "'now': the task's clock.",
    "window_days": "Days of logged forecasts the step looks back over.",
    "force": "Retrain even when not due.",
    "force_retrain": "Retrain even when not due.",
    "first_share": "Traffic share of the challenger when an A/B test starts (0..1).",
}


def documented(func: F) -> F:
    """Append an ``Args:`` section describing every parameter of ``func``."""
    names = inspect.signature(func).parameters
    lines = [f"    {name}: {DESCRIPTIONS[name]}" for name in names]
    func.__doc__ = (func.__doc__ or "").rstrip() + "\n\nArgs:\n" + "\n".join(lines) + "\n"
    return func
