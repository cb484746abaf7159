"""One KFP component per lifecycle step, each a thin wrapper of one library call
(``nba_forecast.lifecycle.kfp_adapter.run_component``). They run in our image (``IMAGE``), so
no packages are installed at run time; the local runner ignores images and runs them in this
environment. Empty URL parameters mean the deployment's settings (environment)."""

IMAGE = "ghcr.io/nba-forecast/nba-forecast:0.1.0"
GPU_IMAGE = "ghcr.io/nba-forecast/nba-forecast-gpu:0.1.0"
