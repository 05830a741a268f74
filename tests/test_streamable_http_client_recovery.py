"""mcp's own client across a restart of a stock Streamable HTTP server (patch 0007): it starts a new session.

A Python client (tests/clients/restart_python_client.py) connects to a stock server of its line over Streamable
HTTP and calls a tool; the server is stopped and started again on the same port, so it no longer knows the
client's session and answers its requests 404. The client calls the tool twice more:

- the fork's client (mcp's `ClientSession` over `streamable_http_client` on v1.x, `Client` on v2.x, and fastmcp's
  `Client`, which uses mcp's transport) starts a new session with the `initialize` it sent before and the call
  is served: both calls after the restart succeed;
- stock's client keeps its session ID, and both calls fail.

The server is stock on purpose: a fork server re-creates the session (patch 0006) and never answers 404 here.
fastmcp 4.x is not a case: its `Client` made both calls after the restart on stock 2.3.0 too (measured on
2026-12-06), as it connects in the 2026-07-28 era when the server offers it, and that era has no session to lose.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from race import clients, envs, process
from race.envs import Env
from tests.test_reconnect import ClientRun

pytestmark = pytest.mark.slow

CLIENT_SCRIPT = Path(__file__).resolve().parent / "clients" / "restart_python_client.py"
TOOL, ARGUMENTS = clients.CALL_TOOL
READY_SECONDS = 60.0
REPORT_SECONDS = 60.0
PARALLEL = 2


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # mcp or fastmcp
    client_env: Callable[[], Env]
    server_env: Callable[[], Env]
    server_script: Path
    fork: bool


V1_SERVER = (envs.stock_env, process.SERVER_SCRIPT)
V2_SERVER = (envs.stock_v2_env, process.SERVER_V2_SCRIPT)
CASES = [
    Case("mcp-v1.x-fork", "mcp", envs.fork_env, *V1_SERVER, True),
    Case("mcp-v1.x-stock", "mcp", envs.stock_env, *V1_SERVER, False),
    Case("mcp-v2.x-fork", "mcp", envs.fork_v2_env, *V2_SERVER, True),
    Case("mcp-v2.x-stock", "mcp", envs.stock_v2_env, *V2_SERVER, False),
    Case("fastmcp-3.4.11-fork", "fastmcp", lambda: envs.fastmcp_env("3.4.11", "fork"), *V1_SERVER, True),
    Case("fastmcp-3.4.11-stock", "fastmcp", lambda: envs.fastmcp_env("3.4.11", "stock"), *V1_SERVER, False),
]


def run_case(case: Case) -> dict[str, Any]:
    """The client's report across one restart of its stock server."""
    server_env, client_env = case.server_env(), case.client_env()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="client-recovery-")))
        server = stack.enter_context(process.running(server_env, "--transport", "http", script=case.server_script))
        port = int(server.url.rsplit(":", 1)[1])
        command = [str(client_env.python), str(CLIENT_SCRIPT), case.kind, f"{server.url}/mcp", TOOL]
        run = ClientRun(case.id, [*command, json.dumps(ARGUMENTS)], workdir, {})
        stack.callback(run.stop)
        ready = run.line(READY_SECONDS)
        assert ready["first"]["ok"], f"{case.id}'s first call failed: {ready}"
        server.stop()
        stack.enter_context(process.running(server_env, "--transport", "http", script=case.server_script, port=port))
        run.signal()
        return run.line(REPORT_SECONDS)


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any] | BaseException]:
    for case in CASES:  # venvs first, one at a time
        case.server_env()
        case.client_env()
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {case.id: pool.submit(run_case, case) for case in CASES}
    return {case_id: future.exception() or future.result() for case_id, future in futures.items()}


def report_of(reports: dict[str, dict[str, Any] | BaseException], case: Case) -> dict[str, Any]:
    found = reports[case.id]
    if isinstance(found, BaseException):
        raise found
    return found


@pytest.mark.parametrize("case", [c for c in CASES if c.fork], ids=lambda c: c.id)
def test_the_forks_client_starts_a_new_session_after_a_restart(
    reports: dict[str, dict[str, Any] | BaseException], case: Case
) -> None:
    report = report_of(reports, case)
    assert "+initfix." in report["mcp_version"]
    assert [call["ok"] for call in report["calls"]] == [True, True], report


@pytest.mark.parametrize("case", [c for c in CASES if not c.fork], ids=lambda c: c.id)
def test_stocks_client_stays_on_the_lost_session(
    reports: dict[str, dict[str, Any] | BaseException], case: Case
) -> None:
    report = report_of(reports, case)
    assert "+initfix." not in report["mcp_version"]
    assert [call["ok"] for call in report["calls"]] == [False, False], report
