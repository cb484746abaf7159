"""One KFP component per lifecycle step, each a thin wrapper of one library function in
``nba_forecast.lifecycle``. They run in our image (``IMAGE``), so no packages are installed at
run time; the local runner ignores images and runs them in this environment."""

IMAGE = "ghcr.io/nba-forecast/nba-forecast:0.1.0"
GPU_IMAGE = "ghcr.io/nba-forecast/nba-forecast-gpu:0.1.0"
