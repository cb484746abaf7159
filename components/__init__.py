"""One KFP component per lifecycle step, each a thin wrapper of one library call
(``nba_forecast.lifecycle.kfp_adapter``). They run in our images, so nothing is installed
at run time. Empty URL parameters mean the deployment's settings (the task's environment:
``pipelines/cluster.py``). ``NBA_FORECAST_IMAGE`` / ``NBA_FORECAST_GPU_IMAGE`` at compile
time name other images, e.g. pushed ones pinned by digest (``repo/name@sha256:...``)."""

import os

IMAGE = os.environ.get("NBA_FORECAST_IMAGE") or "ghcr.io/nba-forecast/nba-forecast:0.1.0"
GPU_IMAGE = (
    os.environ.get("NBA_FORECAST_GPU_IMAGE") or "ghcr.io/nba-forecast/nba-forecast-gpu:0.1.0"
)
