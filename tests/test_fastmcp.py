"""The fork as a drop-in beneath the standalone `fastmcp` package: its servers get the fix with no code change.

For each fastmcp release, one venv holds stock mcp with fastmcp on top, another the fork with fastmcp
installed on top of it as a user would add it (race/envs.py). Both run race/fastmcp_server.py, the
380 tools written for fastmcp, under the race harness's clients. The stock tests show the same
scenarios fail there, so the fork tests cannot pass vacuously. A fork build that lacks a patch a
test needs fails that test, naming the patch.
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

# One release of each major line; both require mcp>=1.24,<2, which the fork's local version satisfies.
FASTMCP_VERSIONS = ["2.14.5", "3.2.4"]
SERVER_SCRIPT = Path(process.__file__).resolve().parent / "fastmcp_server.py"
SESSIONS = 24

HOLDING = ("holds_premature_requests", "patch 0002 (hold requests that arrive before initialize)")
HINT = ("endpoint_hint", "patch 0003 (init_required in the SSE endpoint event)")


def require(server: Server, feature: tuple[str, str]) -> None:
    key, patch = feature
    if not server.debug(collect=False)["features"][key]:
        pytest.fail(f"this build of the fork lacks {patch}")


@pytest.fixture(scope="module", params=FASTMCP_VERSIONS, ids=[f"fastmcp-{v}" for v in FASTMCP_VERSIONS])
def fastmcp_version(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def fork_server(fastmcp_version: str) -> Iterator[Server]:
    with process.running(envs.fastmcp_env(fastmcp_version, "fork"), script=SERVER_SCRIPT) as server:
        yield server


@pytest.fixture(scope="module")
def stock_server(fastmcp_version: str) -> Iterator[Server]:
    with process.running(envs.fastmcp_env(fastmcp_version, "stock"), script=SERVER_SCRIPT) as server:
        yield server


def run(server: Server, name: str, flow: Flow, style: str, sessions: int = SESSIONS) -> Result:
    return scenarios.run(server.url, Scenario(name, flow, style, sessions), seconds=60.0)


RACING = [
    pytest.param("pipelined", clients.pipelined, "fresh", id="pipelined-fresh"),
    pytest.param("pipelined", clients.pipelined, "pool", id="pipelined-pool"),
    pytest.param("tools/call first", clients.tools_call_first, "fresh", id="tools-call-first-fresh"),
    pytest.param("tools/call first", clients.tools_call_first, "pool", id="tools-call-first-pool"),
]


def test_pip_keeps_the_fork_when_fastmcp_is_installed_on_top(fastmcp_version: str) -> None:
    fork_version, fork_source, _ = envs.installed(envs.fork_env(), "mcp")
    env = envs.fastmcp_env(fastmcp_version, "fork")
    version, source, _ = envs.installed(env, "mcp")
    assert (version, source) == (fork_version, fork_source), "pip replaced the fork beneath fastmcp"
    assert envs.installed(env, "fastmcp")[0] == fastmcp_version


def test_fastmcp_on_the_fork_reports_the_fork_and_the_release(fork_server: Server, fastmcp_version: str) -> None:
    features = fork_server.debug(collect=False)["features"]
    assert features["fastmcp_version"] == fastmcp_version
    assert features["mcp_version"] == envs.installed(envs.fork_env(), "mcp")[0]


@pytest.mark.parametrize(("name", "flow", "style"), RACING)
def test_fastmcp_on_the_fork_answers_every_request_of_clients_that_race_initialize(
    fork_server: Server, name: str, flow: Flow, style: str
) -> None:
    require(fork_server, HOLDING)
    result = run(fork_server, name, flow, style)
    checks.assert_no_rejections(result)
    assert len(result.latencies()) == SESSIONS


def test_fastmcp_on_the_fork_runs_no_tool_before_initialize(fork_server: Server) -> None:
    require(fork_server, HOLDING)
    # Pipelined over a pool, a client's notifications/initialized can overtake its initialize.
    run(fork_server, "pipelined", clients.pipelined, "pool")
    run(fork_server, "tools/call first", clients.tools_call_first, "pool", sessions=8)
    executions = fork_server.executions()
    assert executions, "no tool ran at all"
    checks.assert_no_execution_without_handshake(executions, handshake_free=())


def test_fastmcp_on_the_fork_announces_that_initialize_is_required(fork_server: Server) -> None:
    require(fork_server, HINT)

    async def endpoint() -> str | None:
        deadline = Deadline(15.0)
        async with clients.http_clients("pool") as http, Connection(fork_server.url, http, deadline, 10.0) as conn:
            return conn.endpoint

    announced = asyncio.run(endpoint())
    assert announced is not None
    assert announced.endswith("&init_required=true"), announced


# The same scenarios on stock mcp beneath the same fastmcp, which must fail them.


def test_pip_installs_stock_mcp_beneath_fastmcp_from_the_index(fastmcp_version: str) -> None:
    version, source, _ = envs.installed(envs.fastmcp_env(fastmcp_version, "stock"), "mcp")
    assert f"mcp=={version}" == envs.stock_requirement()
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
