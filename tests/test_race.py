"""The SSE initialization race end to end: the 380-tool server on stock mcp and on this fork, driven by
raw-HTTP clients (race/).

The fork tests assert the fixed behaviour. The stock tests run the same scenarios against the pinned
upstream release and show that the same assertions fail there, so none of them can pass vacuously.
A fork build that lacks a patch a test needs fails that test, naming the patch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from race import checks, clients, envs, process, scenarios
from race.checks import NOT_INITIALIZED
from race.clients import Deadline, Flow
from race.process import Server
from race.scenarios import Result, Scenario

pytestmark = pytest.mark.slow

SESSIONS = 24
IMPATIENT_TIMEOUT = 0.5
MAX_PENDING = 32  # the fork's default bound
FLOOD = MAX_PENDING + 8
MB = 1024 * 1024

HOLDING = ("pending_settings", "patch 0002 (hold requests that arrive before initialize)")


def require(server: Server, feature: tuple[str, str]) -> None:
    key, patch = feature
    if not server.debug(collect=False)["features"][key]:
        pytest.fail(f"this build of the fork lacks {patch}")


@pytest.fixture(scope="module")
def stock_server() -> Iterator[Server]:
    with process.running(envs.stock_env()) as server:
        yield server


@pytest.fixture(scope="module")
def fork_server() -> Iterator[Server]:
    """The fork with its defaults: requests held up to 5 s, at most 32 per session."""
    with process.running(envs.fork_env()) as server:
        yield server


@pytest.fixture(scope="module")
def impatient_fork_server(fork_server: Server) -> Iterator[Server]:
    """The fork holding requests for only half a second, set as users would: through the environment."""
    require(fork_server, HOLDING)
    environ = {"FASTMCP_PENDING_REQUEST_TIMEOUT": str(IMPATIENT_TIMEOUT)}
    with process.running(envs.fork_env(), environ=environ) as server:
        assert server.debug(collect=False)["settings"]["pending_request_timeout"] == IMPATIENT_TIMEOUT
        yield server


def run(server: Server, name: str, flow: Flow, style: str = "pool", sessions: int = SESSIONS) -> Result:
    return scenarios.run(server.url, Scenario(name, flow, style, sessions), seconds=60.0)


FORK_SERVES = [
    pytest.param("compliant", clients.compliant, None, id="compliant"),
    pytest.param("pipelined", clients.pipelined, HOLDING, id="pipelined"),
    pytest.param("tools/call first", clients.tools_call_first, HOLDING, id="tools-call-first"),
]


@pytest.mark.parametrize("style", ["fresh", "pool"])
@pytest.mark.parametrize(("name", "flow", "needs"), FORK_SERVES)
def test_fork_answers_every_request_of_clients_that_initialize(
    fork_server: Server, name: str, flow: Flow, needs: tuple[str, str] | None, style: str
) -> None:
    if needs:
        require(fork_server, needs)
    result = run(fork_server, name, flow, style)
    checks.assert_no_rejections(result)
    assert len(result.latencies()) == SESSIONS


@pytest.mark.parametrize(
    "flow", [clients.never_initializing, clients.initialized_only], ids=["never-initializing", "initialized-only"]
)
def test_fork_answers_requests_of_clients_that_never_initialize_with_not_initialized_after_the_timeout(
    impatient_fork_server: Server, flow: Flow
) -> None:
    result = run(impatient_fork_server, flow.__name__, flow, sessions=8)
    checks.assert_all_rejected(result, NOT_INITIALIZED, "timeout")
    assert min(result.latencies()) >= IMPATIENT_TIMEOUT


def test_fork_answers_requests_beyond_the_bound_with_too_many_pending(fork_server: Server) -> None:
    require(fork_server, HOLDING)
    # The default 5 s: none of the held requests times out while the rest of the flood arrives.
    result = run(fork_server, "flood", clients.flood(FLOOD, then_initialize=False), sessions=1)
    assert result.failures() == {f"{NOT_INITIALIZED} timeout": MAX_PENDING, f"{NOT_INITIALIZED} too_many_pending": 8}


def test_fork_serves_the_held_requests_of_a_flood_once_initialized(fork_server: Server) -> None:
    require(fork_server, HOLDING)
    result = run(fork_server, "flood then initialize", clients.flood(FLOOD, then_initialize=True), sessions=1)
    assert result.failures() == {f"{NOT_INITIALIZED} too_many_pending": 8}
    assert sum(o.ok for o in result.outcomes) == MAX_PENDING + 1  # the held calls and initialize


def handshake_free_traffic(server: Server) -> set[str]:
    """Run every kind of client once over a pool; return the trace ids of those that never initialize."""
    for name, flow in [("pipelined", clients.pipelined), ("tools/call first", clients.tools_call_first)]:
        run(server, name, flow)
    never = [
        run(server, "never initializing", clients.never_initializing, sessions=4),
        run(server, "initialized only", clients.initialized_only, sessions=4),
        run(server, "flood", clients.flood(FLOOD, then_initialize=False), sessions=1),
    ]
    return {trace for result in never for trace in result.trace_ids()}


def test_fork_runs_no_tool_for_a_session_before_initialize(impatient_fork_server: Server) -> None:
    forbidden = handshake_free_traffic(impatient_fork_server)
    checks.assert_no_execution_without_handshake(impatient_fork_server.executions(), forbidden)


def wait_until_held(server: Server, count: int, figures: dict[str, Any]) -> Callable[[], Awaitable[None]]:
    """Wait until the server holds `count` requests; keep its figures of that moment."""

    async def held() -> None:
        deadline = Deadline(10.0)
        async with httpx.AsyncClient(timeout=5.0) as http:
            while True:
                figures.update((await http.get(f"{server.url}/debug")).json())
                if figures["held"] >= count:
                    return
                assert not deadline.passed, f"the server never held {count} requests"
                await asyncio.sleep(0.05)  # polling the server, bounded by the deadline

    return held


def figures_while_open(server: Server, figures: dict[str, Any]) -> Callable[[], Awaitable[None]]:
    async def look() -> None:
        async with httpx.AsyncClient(timeout=5.0) as http:
            figures.update((await http.get(f"{server.url}/debug", params={"gc": "1"})).json())

    return look


def test_fork_keeps_no_answered_premature_request_of_an_open_session(impatient_fork_server: Server) -> None:
    figures: dict[str, Any] = {}
    flood = clients.flood(
        FLOOD, then_initialize=False, before_leaving=figures_while_open(impatient_fork_server, figures)
    )
    run(impatient_fork_server, "flood", flood, sessions=1)
    assert figures["sessions"] >= 1
    checks.assert_nothing_kept(figures)


def test_fork_frees_held_requests_when_their_session_closes(fork_server: Server) -> None:
    require(fork_server, HOLDING)
    run(fork_server, "warm-up", clients.compliant, sessions=4)
    baseline = fork_server.wait_until_idle()
    peak_growth = 0
    for _ in range(3):
        holding: dict[str, Any] = {}
        leave = clients.flood_and_leave(MAX_PENDING, wait_until_held(fork_server, MAX_PENDING, holding), 512 * 1024)
        result = run(fork_server, "flood and leave", leave, sessions=1)
        assert result.failures() == {"left": MAX_PENDING}
        peak_growth = max(peak_growth, holding["rss"] - baseline["rss"])
        after = fork_server.wait_until_idle()
        assert (after["sessions"], after["held"], after["in_flight"]) == (0, 0, 0)
        assert after["tasks"] == baseline["tasks"]
    # A leak would keep 16 MB a flood, 48 MB after three; the allocator need not return all it freed,
    # so allow what one flood took at its peak.
    assert after["rss"] - baseline["rss"] < max(peak_growth, 16 * MB), f"{after['rss'] / MB:.0f} MB after"


# The same assertions on stock mcp, which must fail them.


def test_stock_rejects_pipelined_clients_on_a_shared_pool(stock_server: Server) -> None:
    for _ in range(10):  # a failure comes in the first batch or two; the bound keeps the test finite
        result = run(stock_server, "pipelined", clients.pipelined)
        if result.failures():
            break
    with pytest.raises(AssertionError, match="-32602"):
        checks.assert_no_rejections(result)


@pytest.mark.parametrize("style", ["fresh", "pool"])
def test_stock_rejects_every_tools_call_sent_before_initialize(stock_server: Server, style: str) -> None:
    result = run(stock_server, "tools/call first", clients.tools_call_first, style, sessions=8)
    with pytest.raises(AssertionError):
        checks.assert_no_rejections(result)
    checks.assert_all_rejected(result, -32602)


def test_stock_answers_clients_that_never_initialize_with_invalid_params(stock_server: Server) -> None:
    result = run(stock_server, "never initializing", clients.never_initializing, sessions=4)
    with pytest.raises(AssertionError, match="-32602"):
        checks.assert_all_rejected(result, NOT_INITIALIZED, "timeout")
    flood = run(stock_server, "flood", clients.flood(FLOOD, then_initialize=False), sessions=1)
    assert flood.failures() == {"-32602": FLOOD}


def test_stock_keeps_every_rejected_request_of_an_open_session(stock_server: Server) -> None:
    figures: dict[str, Any] = {}
    flood = clients.flood(FLOOD, then_initialize=False, before_leaving=figures_while_open(stock_server, figures))
    run(stock_server, "flood", flood, sessions=1)
    with pytest.raises(AssertionError, match=f"'in_flight': {FLOOD}"):
        checks.assert_nothing_kept(figures)


def test_stock_runs_tools_for_a_client_that_skips_initialize(stock_server: Server) -> None:
    forbidden = handshake_free_traffic(stock_server)
    with pytest.raises(AssertionError, match="before initialize"):
        checks.assert_no_execution_without_handshake(stock_server.executions(), forbidden)
