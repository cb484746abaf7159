from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from nba_forecast.data.shipped import load_shipped_games

pytest_plugins = ["pytester", "tests.plugins.ci_guard"]

FIXTURES = Path(__file__).parent / "fixtures"
PBP_DIR = FIXTURES / "pbp"
GOOD_PBP = [
    "0020400777",
    "0020900999",
    "0021100101",
    "0021300001",
    "0021300457",
    "0021301230",
    "0021400333",
]
BROKEN_PBP = {"0020100210": "score_step_inconsistent", "0020100531": "non_monotonic_score"}
DEFAULT_TEST_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def shipped_games() -> pd.DataFrame:
    return load_shipped_games()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a reachable PostgreSQL; skips locally when there is none, fails under CI."""
    from tests.plugins.ci_guard import in_ci  # after pytest registered the plugin

    url = os.environ.get("NBA_FORECAST_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE)
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), 2).close()
    except OSError as exc:
        message = f"PostgreSQL not reachable at {url}: {exc}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return url
