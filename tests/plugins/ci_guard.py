"""Under CI=true, tests that need real services must run: a skip there is a failure.

Locally a missing PostgreSQL skips the `postgres` tests, missing images (`make images`)
the `container` tests, and a missing chromium (or selenium) the `browser` tests; in CI all
are part of the machine (`.ci/run` installs them), so a skip means the suite checked less
than it claims.
"""

from __future__ import annotations

import os

import pytest

GUARDED_MARKERS = ("postgres", "container", "browser")
_skipped: list[str] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and any(m in report.keywords for m in GUARDED_MARKERS):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if in_ci() and _skipped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if in_ci() and _skipped:
        terminalreporter.write_line(
            f"CI=true: {len(_skipped)} test(s) needing PostgreSQL, the images or chromium were "
            "skipped; failing the run:",
            red=True,
        )
        for nodeid in _skipped:
            terminalreporter.write_line(f"  {nodeid}", red=True)
