"""CI must fail, not pass quietly, when PostgreSQL or browser tests are skipped under CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

INNER_TEST = """
import pytest

@pytest.mark.{marker}
def test_needs_a_service():
    pytest.skip("not reachable")
"""
INNER_INI = """
[pytest]
markers =
    {marker}: needs a service
"""


@pytest.mark.parametrize("marker", ["postgres", "browser"])
@pytest.mark.parametrize(("ci", "expected"), [("true", 1), ("", 0)])
def test_a_skipped_service_test_fails_only_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, marker: str, ci: str, expected: int
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(INNER_TEST.format(marker=marker))
    pytester.makeini(INNER_INI.format(marker=marker))
    result = pytester.runpytest_subprocess("-p", "tests.plugins.ci_guard")
    assert result.ret == expected
    if expected:
        result.stdout.fnmatch_lines(["*needing PostgreSQL, the images or chromium were skipped*"])


@pytest.mark.postgres
def test_postgres_fixture_reaches_the_server(postgres_url: str) -> None:
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(postgres_url)
    with socket.create_connection((parsed.hostname, parsed.port or 5432), 2) as conn:
        # PostgreSQL answers an SSLRequest with one byte: 'S' or 'N'
        conn.sendall((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
        assert conn.recv(1) in {b"S", b"N"}
