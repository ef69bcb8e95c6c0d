"""Suite-wide test configuration.

* ``MAILGW_ARGON2_FAST=1`` for the whole session (set at import, before any test
  module hashes a password): test-only cheap argon2 parameters, inherited by
  every ``mailgw`` subprocess the tests start.
* Every test under ``tests/interop/`` is marked ``interop``.
* With ``CI=true`` in the environment, a *skipped* ``interop`` test is reported
  as a failure carrying the skip reason: CI installs the real peers
  (``.ci/run``), so a missing peer there is a broken CI machine, not a reason to
  pass.  A module under ``tests/interop/`` skipped as a whole is listed in the
  summary and makes the exit status 1.  Expected failures (xfail) are left alone.
* Fixture ``free_port``: a callable returning a TCP port that was free on
  127.0.0.1 a moment ago (``port = free_port()``; call it again for more ports).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Generator
from pathlib import Path

import pytest
from _pytest.reports import CollectReport, TestReport

os.environ["MAILGW_ARGON2_FAST"] = "1"

INTEROP_DIR = Path(__file__).resolve().parent / "interop"


def ci_enabled() -> bool:
    """True when the suite runs in CI (``CI=true``): interop skips are failures."""
    return os.environ.get("CI", "").strip().lower() == "true"


def _under_interop(path: Path | None) -> bool:
    if path is None:
        return False
    resolved = Path(path).resolve()
    return resolved == INTEROP_DIR or INTEROP_DIR in resolved.parents


def _is_interop(item: pytest.Item) -> bool:
    return item.get_closest_marker("interop") is not None or _under_interop(item.path)


def _skip_reason(longrepr: object) -> str:
    # a skip's longrepr is (path, lineno, "Skipped: reason")
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _under_interop(item.path):
            item.add_marker(pytest.mark.interop)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, TestReport, TestReport]:
    report = yield
    if ci_enabled() and report.skipped and not hasattr(report, "wasxfail") and _is_interop(item):
        reason = _skip_reason(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"CI=true: the interop test {item.nodeid} was skipped, which counts as a "
            f"failure in CI: {reason}"
        )
    return report


_COLLECT_SKIPS = pytest.StashKey[list[str]]()


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, CollectReport, CollectReport]:
    # A module under tests/interop/ skipped as a whole: reported as a skip (a collection
    # error would interrupt the whole run), remembered, and it fails the session in CI.
    report = yield
    if ci_enabled() and report.skipped and _under_interop(collector.path):
        skips = collector.config.stash.setdefault(_COLLECT_SKIPS, [])
        skips.append(f"{collector.nodeid}: {_skip_reason(report.longrepr)}")
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skips = terminalreporter.config.stash.get(_COLLECT_SKIPS, [])
    if skips:
        terminalreporter.section("CI=true: interop modules skipped (counted as failures)")
        for line in skips:
            terminalreporter.line(f"FAILED (skipped in CI) {line}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.stash.get(_COLLECT_SKIPS, []) and exitstatus in (
        pytest.ExitCode.OK,
        pytest.ExitCode.NO_TESTS_COLLECTED,
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    """``port = free_port()``: a TCP port free on 127.0.0.1 (bind to port 0, close)."""
    return _free_port
