"""Schemathesis over the server's OpenAPI schema: generated requests for every operation get
a response, never a 500. (Driven by Hypothesis directly: schemathesis' pytest plugin does
not load with this pytest version.)"""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from nba_forecast.serving.app import create_app
from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.spool import SpoolingPredictionLog
from tests.integration.test_serving import deployed  # noqa: F401 - the trained registry


def test_no_server_errors_on_any_operation(deployed: dict, tmp_path: Path) -> None:  # noqa: F811
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    engine = ForecastEngine(
        deployed["registry"],
        SpoolingPredictionLog(log, tmp_path / "spool"),
        cache_dir=deployed["root"] / "cache",
        team_strength=deployed["strength"],
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(engine))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(checks=[not_a_server_error])

        run()
