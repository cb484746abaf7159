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


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real S3 server over HTTP (moto) with injectable faults, for the whole session."""
    from tests.plugins.servers import s3_server

    credentials = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in credentials}
    os.environ.update(credentials)
    try:
        with s3_server() as (url, faults):
            yield url, faults
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_bucket(s3, request: pytest.FixtureRequest) -> tuple[str, str, object]:  # type: ignore[no-untyped-def]
    """A fresh bucket per test: (endpoint URL, bucket name, faults)."""
    import re

    import boto3

    url, faults = s3
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-b"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=name)
    faults.before = faults.after = 0
    return url, name, faults


@pytest.fixture
def pg_schema_url(postgres_url: str) -> str:  # type: ignore[misc]
    """A PostgreSQL URL whose connections use a fresh schema, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.schema import CreateSchema, DropSchema

    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = "postgresql+psycopg://" + postgres_url.split("://", 1)[1]
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(CreateSchema(schema))
    separator = "&" if "?" in url else "?"
    yield f"{url}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(DropSchema(schema, cascade=True))
    admin.dispose()
