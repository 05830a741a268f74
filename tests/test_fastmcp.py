"""The fork as a drop-in beneath the standalone `fastmcp` package: its servers get the fix with no code change.

One release of each major line of fastmcp: 2.x and 3.x require mcp>=1.24,<2 (the fork's v1.x line),
4.x requires mcp>=2.3,<3 (the fork's v2.x line). For each, one venv holds stock mcp with fastmcp on
top, another the fork (on the v2.x line its two distributions, mcp and mcp-types) with fastmcp
installed on top of it as a user would add it (race/envs.py). Both run race/fastmcp_server.py, the
380 tools written for fastmcp with nothing that knows of the fork, under the race harness's clients.
The stock tests show the same scenarios fail there, so the fork tests cannot pass vacuously. A fork
build that lacks a patch a test needs fails that test, naming the patch.

fastmcp 4.x has no SSE transport of its own: `http_app(transport="sse")` builds mcp's
`SseServerTransport` (with its defaults, so the fork's endpoint hint is on) and hands each connection
to `mcp.server.lowlevel.Server.run`, whose runner holds the premature requests. fastmcp's own
middleware sits in that server's middleware chain, so it sees a held request only once released.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from race import checks, clients, envs, process, testing
from race.clients import Flow
from race.envs import Env
from race.process import HINT_PATCH, HOLD_PATCH, Server
from race.testing import SESSIONS, announced_endpoint, require, run

pytestmark = pytest.mark.slow

SERVER_SCRIPT = Path(process.__file__).resolve().parent / "fastmcp_server.py"

HOLDING = ("holds_premature_requests", HOLD_PATCH)
HINT = ("endpoint_hint", HINT_PATCH)


@dataclass(frozen=True)
class Line:
    """The fork's line a fastmcp release sits on."""

    fork: str  # fastmcp_env's name of the base
    stock: str
    fork_env: Callable[[], Env]  # the fork without fastmcp
    upstream: Path | None  # for envs.stock_requirement
    distributions: tuple[str, ...]  # the fork's distributions, which fastmcp must leave in place


V1 = Line("fork", "stock", envs.fork_env, None, ("mcp",))
V2 = Line("fork-v2", "stock-v2", envs.fork_v2_env, envs.V2_LINE, tuple(envs.V2_PROJECTS))
# The fastmcp releases users run (the oldest and latest of 3.x and 4.x), and the line of the fork each requires.
FASTMCP_VERSIONS = {"2.14.7": V1, "3.2.4": V1, "3.4.11": V1, "4.1.7": V2, "4.2.3": V2}
# Each release with each distribution of its line.
DISTRIBUTIONS = [
    pytest.param(version, distribution, id=f"fastmcp-{version}-{distribution}" if line is V2 else f"fastmcp-{version}")
    for version, line in FASTMCP_VERSIONS.items()
    for distribution in line.distributions
]


@pytest.fixture(scope="module", params=list(FASTMCP_VERSIONS), ids=[f"fastmcp-{v}" for v in FASTMCP_VERSIONS])
def fastmcp_version(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def fork_server(fastmcp_version: str) -> Iterator[Server]:
    on = FASTMCP_VERSIONS[fastmcp_version].fork
    with process.running(envs.fastmcp_env(fastmcp_version, on), script=SERVER_SCRIPT) as server:
        yield server


@pytest.fixture(scope="module")
def stock_server(fastmcp_version: str) -> Iterator[Server]:
    on = FASTMCP_VERSIONS[fastmcp_version].stock
    with process.running(envs.fastmcp_env(fastmcp_version, on), script=SERVER_SCRIPT) as server:
        yield server


RACING = [
    pytest.param("pipelined", clients.pipelined, "fresh", id="pipelined-fresh"),
    pytest.param("pipelined", clients.pipelined, "pool", id="pipelined-pool"),
    pytest.param("tools/call first", clients.tools_call_first, "fresh", id="tools-call-first-fresh"),
    pytest.param("tools/call first", clients.tools_call_first, "pool", id="tools-call-first-pool"),
]


@pytest.mark.parametrize(("fastmcp_version", "distribution"), DISTRIBUTIONS)
def test_pip_keeps_the_fork_when_fastmcp_is_installed_on_top(fastmcp_version: str, distribution: str) -> None:
    line = FASTMCP_VERSIONS[fastmcp_version]
    fork_version, fork_source, _ = envs.installed(line.fork_env(), distribution)
    env = envs.fastmcp_env(fastmcp_version, line.fork)
    version, source, _ = envs.installed(env, distribution)
    assert (version, source) == (fork_version, fork_source), f"pip replaced the fork's {distribution} beneath fastmcp"
    if line is V2:
        assert "+initfix." in version
    assert envs.installed(env, "fastmcp")[0] == fastmcp_version


def test_fastmcp_on_the_fork_reports_the_fork_and_the_release(fork_server: Server, fastmcp_version: str) -> None:
    line = FASTMCP_VERSIONS[fastmcp_version]
    features = fork_server.debug(collect=False)["features"]
    assert features["fastmcp_version"] == fastmcp_version
    assert features["mcp_version"] == envs.installed(line.fork_env(), "mcp")[0]
    if line is V2:
        assert (features["holds_premature_requests"], features["endpoint_hint"]) == (True, True)


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


def test_fastmcp_on_the_fork_announces_only_what_is_true_of_the_session(
    fastmcp_version: str, fork_server: Server
) -> None:
    require(fork_server, HINT)
    announced = announced_endpoint(fork_server)
    if FASTMCP_VERSIONS[fastmcp_version] is V1:
        # 1.x serves only the handshake era: every client must initialize.
        assert announced.endswith("&init_required=true"), announced
    else:
        # 2.x also serves 2026-07-28, which has no handshake, and this GET names no version.
        assert "init_required" not in announced, announced


# The same scenarios on stock mcp beneath the same fastmcp, which must fail them.


@pytest.mark.parametrize(("fastmcp_version", "distribution"), DISTRIBUTIONS)
def test_pip_installs_stock_mcp_beneath_fastmcp_from_the_index(fastmcp_version: str, distribution: str) -> None:
    line = FASTMCP_VERSIONS[fastmcp_version]
    version, source, _ = envs.installed(envs.fastmcp_env(fastmcp_version, line.stock), distribution)
    # On the v2.x line stock mcp pins its mcp-types to its own version.
    assert f"mcp=={version}" == envs.stock_requirement(line.upstream)
    assert source is None


@pytest.mark.parametrize("style", ["fresh", "pool"])
def test_fastmcp_on_stock_rejects_every_tools_call_sent_before_initialize(stock_server: Server, style: str) -> None:
    testing.assert_stock_rejects_every_tools_call_sent_before_initialize(stock_server, style)


def test_fastmcp_on_stock_rejects_pipelined_clients_on_a_shared_pool(stock_server: Server) -> None:
    testing.assert_stock_rejects_pipelined_clients_on_a_shared_pool(stock_server)
