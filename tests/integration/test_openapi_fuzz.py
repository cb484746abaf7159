"""Schemathesis over the server's OpenAPI schema: generated requests for every operation get
a response, never a 500; then the same generated bodies with a number swapped for NaN,
Infinity or a huge literal (which schemathesis never generates), sent as raw JSON. (Driven by
Hypothesis directly: schemathesis' pytest plugin does not load with this pytest version.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from nba_forecast.serving.app import create_app
from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.spool import SpoolingPredictionLog
from tests.integration.test_serving import deployed  # noqa: F401 - the trained registry

# an event stream stays open until its game reaches halftime: tested on its own
STREAMS = "/v1/games/{game_id}/events"
HOSTILE = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e999",
    "9" * 400,
    "1e19",
    "-9223372036854775809",
]


def _app(deployed: dict, tmp_path: Path):  # type: ignore[no-untyped-def]  # noqa: F811
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    engine = ForecastEngine(
        deployed["registry"],
        SpoolingPredictionLog(log, tmp_path / "spool"),
        cache_dir=deployed["root"] / "cache",
        team_strength=deployed["strength"],
    )
    return create_app(engine)


def test_no_server_errors_on_any_operation(deployed: dict, tmp_path: Path) -> None:  # noqa: F811
    schema = schemathesis.openapi.from_asgi("/openapi.json", _app(deployed, tmp_path))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:
        if operation.path == STREAMS:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(checks=[not_a_server_error])

        run()


def _with_hostile_number(body: Any, draw: Any) -> str:
    """``body`` as JSON text with one number (or any leaf, if it has none) replaced by a
    hostile literal."""
    marker = "__HOSTILE__"
    leaves: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, dict | list):
                walk(value)
            else:
                leaves.append((node, key))

    if isinstance(body, dict | list):
        walk(body)
    if not leaves:
        return draw(st.sampled_from(HOSTILE))
    numbers = [(n, k) for n, k in leaves if isinstance(n[k], int | float)] or leaves
    node, key = draw(st.sampled_from(numbers))
    node[key] = marker
    return json.dumps(body).replace(f'"{marker}"', draw(st.sampled_from(HOSTILE)))


def test_nan_infinity_and_huge_numbers_never_give_a_500(
    deployed: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    app = _app(deployed, tmp_path)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    client = TestClient(app)
    posts = [result.ok() for result in schema.get_all_operations() if result.ok().method == "post"]
    assert len(posts) >= 2
    for operation in posts:

        @given(case=operation.as_strategy(), data=st.data())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case, data) -> None:  # type: ignore[no-untyped-def]
            text = _with_hostile_number(case.body, data.draw)
            path = case.formatted_path
            response = client.post(path, content=text, headers={"Content-Type": "application/json"})
            assert response.status_code < 500, (path, text, response.text)
            assert response.status_code in (200, 401, 404, 409, 413, 422), response.text

        run()
