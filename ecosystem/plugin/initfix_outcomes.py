"""A pytest plugin that records what became of every test, one JSON object a line.

Loaded into fastmcp's own test run (`-p initfix_outcomes`, this folder on PYTHONPATH) by
ecosystem/fastmcp_suites.py; the file is $INITFIX_OUTCOMES. Each line is flushed at once, so a run
that is killed (a hang) still leaves what it saw: the ids collected, each test started, and the
report of each phase that finished. Under pytest-xdist these hooks run in the controller, which
receives every worker's reports; the workers, which load the plugin too, write nothing. Standard
library and pytest only.
"""

from __future__ import annotations

import json
import os

import pytest

_MESSAGE_CHARS = 300


def _write(record: dict[str, object]) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the controller writes what every worker reports
        return
    with open(os.environ["INITFIX_OUTCOMES"], "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.items:  # empty in an xdist controller: its workers collect
        _write({"event": "collected", "ids": [item.nodeid for item in session.items]})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    _write({"event": "collected", "ids": list(ids)})


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _write(
            {
                "event": "report",
                "id": report.nodeid,
                "when": "collect",
                "outcome": "failed",
                "message": _message(report),
            }
        )


def pytest_runtest_logstart(nodeid: str) -> None:
    _write({"event": "start", "id": nodeid})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    record: dict[str, object] = {"event": "report", "id": report.nodeid, "when": report.when, "outcome": report.outcome}
    if hasattr(report, "wasxfail"):
        record["xfail"] = True
    if report.failed:
        record["message"] = _message(report)
    _write(record)


def _message(report: pytest.BaseReport) -> str:
    """The first line of the exception a test failed with; for a collection error, the last line."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return (crash.message.strip().splitlines() or [""])[0][:_MESSAGE_CHARS]
    return (str(report.longrepr).strip().splitlines() or [""])[-1][:_MESSAGE_CHARS]
