"""What the end-to-end tests (tests/test_race.py, tests/test_fastmcp*.py, tests/test_real_clients.py) share:
running a scenario on a server, asking it for a patch the test needs, and watching its /debug figures
while a flow runs; and, for the modules whose cases are long episodes (tests/test_reconnect.py,
tests/test_streamable_http_resume.py, tests/test_rolling_deploy.py), running each episode once, a few at a
time, and printing their summary. Imports pytest, so only the tests import it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import httpx
import pytest

from race import checks, clients, scenarios
from race.clients import Connection, Deadline, Flow
from race.process import Server
from race.scenarios import Result, Scenario

SESSIONS = 24

EpisodeT = TypeVar("EpisodeT")


class Episodes(Generic[EpisodeT]):
    """Every case a module's selected tests need, run once for the module, `parallel` at a time (most of an
    episode is waiting); a test reads its own, and one whose episode raised raises that."""

    def __init__(self, keys: list[tuple[str, str]], run: Callable[[str, str], EpisodeT], parallel: int) -> None:
        self.found: dict[tuple[str, str], EpisodeT | BaseException] = {}
        with ThreadPoolExecutor(parallel) as pool:
            futures = {key: pool.submit(run, *key) for key in keys}
        for key, future in futures.items():
            self.found[key] = future.exception() or future.result()

    def get(self, target_id: str, case: str) -> EpisodeT:
        found = self.found[(target_id, case)]
        if isinstance(found, BaseException):
            raise found
        return found


def selected_cases(request: pytest.FixtureRequest, case: str) -> list[tuple[str, str]]:
    """The (target id, `case` parameter) of every selected test of the requesting module, in their order."""
    wanted: dict[tuple[str, str], None] = {}
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if getattr(item, "module", None) is request.module and "target" in params:
            wanted[(params["target"].id, params[case])] = None
    return list(wanted)


def print_summary(request: pytest.FixtureRequest, title: str, lines: list[str]) -> None:
    """Print a module's summary past pytest's capture, once its tests have run."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if lines and capture is not None:
        with capture.global_and_fixture_disabled():  # what capsys.disabled() does, for a module fixture
            print(f"\n\n{title}")
            print("\n".join(lines), flush=True)


def require(server: Server, feature: tuple[str, str]) -> None:
    """Fail the test, naming the patch, if the server's /debug features lack `feature` (key, patch)."""
    key, patch = feature
    if not server.debug(collect=False)["features"][key]:
        pytest.fail(f"this build of the fork lacks {patch}")


def run(server: Server, name: str, flow: Flow, style: str = "pool", sessions: int = SESSIONS) -> Result:
    return scenarios.run(server.url, Scenario(name, flow, style, sessions), seconds=60.0)


def announced_endpoint(server: Server) -> str:
    """The endpoint URI the server sends a new SSE session, as a raw client reads it."""

    async def endpoint() -> str | None:
        async with clients.http_clients("pool") as http, Connection(server.url, http, Deadline(15.0), 10.0) as conn:
            return conn.endpoint

    announced = asyncio.run(endpoint())
    assert announced is not None
    return announced


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
    """Keep the server's /debug figures (after a garbage collection) of the moment this is awaited."""

    async def look() -> None:
        async with httpx.AsyncClient(timeout=5.0) as http:
            figures.update((await http.get(f"{server.url}/debug", params={"gc": "1"})).json())

    return look


def assert_stock_rejects_every_tools_call_sent_before_initialize(server: Server, style: str) -> None:
    """Stock answers a tools/call sent before initialize with -32602, and so fails assert_no_rejections."""
    result = run(server, "tools/call first", clients.tools_call_first, style, sessions=8)
    with pytest.raises(AssertionError, match="-32602"):
        checks.assert_no_rejections(result)
    checks.assert_all_rejected(result, -32602)


def assert_stock_rejects_pipelined_clients_on_a_shared_pool(server: Server) -> None:
    """Stock rejects some pipelined client over a pool with -32602, and so fails assert_no_rejections."""
    for _ in range(10):  # a failure comes in the first batch or two; the bound keeps the test finite
        result = run(server, "pipelined", clients.pipelined, "pool")
        if result.failures():
            break
    with pytest.raises(AssertionError, match="-32602"):
        checks.assert_no_rejections(result)
