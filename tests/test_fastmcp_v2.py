"""The fork's v2.x line as a drop-in beneath fastmcp 4.x, which requires mcp>=2.3,<3 (tests/test_fastmcp.py
does the same for fastmcp 2.x and 3.x on the v1.x line).

One venv holds stock mcp 2.3.0 with fastmcp on top, another the fork's two v2.x distributions (mcp and
mcp-types) with fastmcp installed on top of them as a user would add it (race/envs.py). Both run
race/fastmcp_server.py, the 380 tools written for fastmcp with nothing that knows of the fork.

fastmcp 4.x has no SSE transport of its own: `http_app(transport="sse")` builds mcp's
`SseServerTransport` (with its defaults, so the fork's endpoint hint is on) and hands each connection
to `mcp.server.lowlevel.Server.run`, whose runner holds the premature requests. fastmcp's own
middleware sits in that server's middleware chain, so it sees a held request only once released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from race import checks, clients, envs, process, scenarios
from race.clients import Connection, Deadline, Flow
from race.process import Server
from race.scenarios import Result, Scenario

pytestmark = pytest.mark.slow

FASTMCP_VERSION = "4.1.6"
SERVER_SCRIPT = Path(process.__file__).resolve().parent / "fastmcp_server.py"
SESSIONS = 24


@pytest.fixture(scope="module")
def fork_server() -> Iterator[Server]:
    with process.running(envs.fastmcp_env(FASTMCP_VERSION, "fork-v2"), script=SERVER_SCRIPT) as server:
        yield server


@pytest.fixture(scope="module")
def stock_server() -> Iterator[Server]:
    with process.running(envs.fastmcp_env(FASTMCP_VERSION, "stock-v2"), script=SERVER_SCRIPT) as server:
        yield server


def run(server: Server, name: str, flow: Flow, style: str, sessions: int = SESSIONS) -> Result:
    return scenarios.run(server.url, Scenario(name, flow, style, sessions), seconds=60.0)


RACING = [
    pytest.param("pipelined", clients.pipelined, "fresh", id="pipelined-fresh"),
    pytest.param("pipelined", clients.pipelined, "pool", id="pipelined-pool"),
    pytest.param("tools/call first", clients.tools_call_first, "fresh", id="tools-call-first-fresh"),
    pytest.param("tools/call first", clients.tools_call_first, "pool", id="tools-call-first-pool"),
]


@pytest.mark.parametrize("distribution", list(envs.V2_PROJECTS))
def test_pip_keeps_the_fork_when_fastmcp_is_installed_on_top(distribution: str) -> None:
    fork_version, fork_source, _ = envs.installed(envs.fork_v2_env(), distribution)
    env = envs.fastmcp_env(FASTMCP_VERSION, "fork-v2")
    version, source, _ = envs.installed(env, distribution)
    assert (version, source) == (fork_version, fork_source), f"pip replaced the fork's {distribution} beneath fastmcp"
    assert version.endswith("+initfix.1")
    assert envs.installed(env, "fastmcp")[0] == FASTMCP_VERSION


def test_fastmcp_on_the_fork_reports_the_fork_and_the_release(fork_server: Server) -> None:
    features = fork_server.debug(collect=False)["features"]
    assert features["fastmcp_version"] == FASTMCP_VERSION
    assert features["mcp_version"] == envs.installed(envs.fork_v2_env(), "mcp")[0]
    assert (features["holds_premature_requests"], features["endpoint_hint"]) == (True, True)


@pytest.mark.parametrize(("name", "flow", "style"), RACING)
def test_fastmcp_on_the_fork_answers_every_request_of_clients_that_race_initialize(
    fork_server: Server, name: str, flow: Flow, style: str
) -> None:
    result = run(fork_server, name, flow, style)
    checks.assert_no_rejections(result)
    assert len(result.latencies()) == SESSIONS


def test_fastmcp_on_the_fork_runs_no_tool_before_initialize(fork_server: Server) -> None:
    # Pipelined over a pool, a client's notifications/initialized can overtake its initialize.
    run(fork_server, "pipelined", clients.pipelined, "pool")
    run(fork_server, "tools/call first", clients.tools_call_first, "pool", sessions=8)
    executions = fork_server.executions()
    assert executions, "no tool ran at all"
    checks.assert_no_execution_without_handshake(executions, handshake_free=())


def test_fastmcp_on_the_fork_announces_that_initialize_is_required(fork_server: Server) -> None:
    async def endpoint() -> str | None:
        deadline = Deadline(15.0)
        async with clients.http_clients("pool") as http, Connection(fork_server.url, http, deadline, 10.0) as conn:
            return conn.endpoint

    announced = asyncio.run(endpoint())
    assert announced is not None
    assert announced.endswith("&init_required=true"), announced


# The same scenarios on stock mcp 2.3.0 beneath the same fastmcp, which must fail them.


@pytest.mark.parametrize("distribution", list(envs.V2_PROJECTS))
def test_pip_installs_stock_mcp_beneath_fastmcp_from_the_index(distribution: str) -> None:
    version, source, _ = envs.installed(envs.fastmcp_env(FASTMCP_VERSION, "stock-v2"), distribution)
    # Stock mcp pins its mcp-types to its own version.
    assert f"mcp=={version}" == envs.stock_requirement(envs.V2_LINE)
    assert source is None


@pytest.mark.parametrize("style", ["fresh", "pool"])
def test_fastmcp_on_stock_rejects_every_tools_call_sent_before_initialize(stock_server: Server, style: str) -> None:
    result = run(stock_server, "tools/call first", clients.tools_call_first, style, sessions=8)
    with pytest.raises(AssertionError, match="-32602"):
        checks.assert_no_rejections(result)
    checks.assert_all_rejected(result, -32602)


def test_fastmcp_on_stock_rejects_pipelined_clients_on_a_shared_pool(stock_server: Server) -> None:
    for _ in range(10):  # a failure comes in the first batch or two; the bound keeps the test finite
        result = run(stock_server, "pipelined", clients.pipelined, "pool")
        if result.failures():
            break
    with pytest.raises(AssertionError, match="-32602"):
        checks.assert_no_rejections(result)
