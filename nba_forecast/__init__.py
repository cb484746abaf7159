"""nba-forecast: NBA halftime margin forecasts, kept good in production."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nba-forecast")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
