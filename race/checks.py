"""The assertions the tests make on results, shared so a test on stock can show each one fails there."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from race.scenarios import Result, failure_label

NOT_INITIALIZED = -31000


def assert_no_rejections(result: Result) -> None:
    """Every request of every session was answered with a result."""
    failures = result.failures()
    assert not failures, (
        f"{result.scenario.label}: {result.failed_sessions} of {len(result.sessions)} sessions had failed requests: "
        f"{dict(failures)}"
    )


def assert_all_rejected(result: Result, code: int, reason: str | None = None, method: str = "tools/call") -> None:
    """Every `method` request got the error `code`, with `error.data.reason` == `reason` if given."""
    labels = [failure_label(o) if not o.ok else "ok" for o in result.outcomes if o.method == method]
    expected = f"{code} {reason}" if reason else str(code)
    assert labels, f"{result.scenario.label}: no {method} requests"
    wrong = {label: labels.count(label) for label in set(labels) if label != expected}
    assert not wrong, f"{result.scenario.label}: expected every {method} to fail with {expected}, got {wrong}"


def assert_no_execution_without_handshake(executions: list[dict[str, Any]], handshake_free: Iterable[str]) -> None:
    """No tool ran in a session that had not received initialize, nor for a client that never sent it."""
    unshaken = [e for e in executions if not e["handshake"]]
    assert not unshaken, f"{len(unshaken)} tool calls ran before initialize, e.g. {unshaken[0]}"
    forbidden = set(handshake_free)
    ran = [e for e in executions if e["trace_id"] in forbidden]
    assert not ran, f"{len(ran)} tool calls of clients that never initialized ran, e.g. {ran[0]}"


def assert_nothing_kept(figures: dict[str, Any]) -> None:
    """With every request of the open sessions answered (the server's /debug figures), none is kept."""
    kept = {key: figures[key] for key in ("in_flight", "held") if figures[key]}
    assert not kept, f"the server keeps answered requests of {figures['sessions']} open sessions: {kept}"
