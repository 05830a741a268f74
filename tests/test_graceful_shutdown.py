"""What a real server's streams carry when it is sent SIGTERM with a call in flight (patch 0008), stock and
fork side by side.

The race servers of both lines and fastmcp (3.4.11 on v1.x, 4.2.3 on v2.x), under uvicorn with 15 s to
shut down and the sse-starlette a fresh install resolves, serve the tool `slow` (2 s). A raw client (httpx)
initializes, calls `slow`, and the server is sent SIGTERM as soon as the call is on its way: over SSE once
the POST is accepted, over Streamable HTTP once the call's response stream has opened. What each stream
carries until it ends:

- fork: the SSE session stream sends a `retry` field (0-500 ms) and then the call's answer, and ends; over
  Streamable HTTP the call's stream carries its answer, and the standalone GET stream a `retry` field;
- stock: every stream ends with no answer and no `retry`, half a second after SIGTERM (sse-starlette's watcher).

The `retry` and the answer are what tell the stock and fork apart, not timings. A build of the fork without
patch 0008 fails on the /debug feature check.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from race import envs, process
from race.envs import Env
from race.process import HANDOFF_PATCH, Server
from race.testing import require
from tests.test_fastmcp import V1, V2
from tests.test_reconnect import FASTMCP_SERVER_SCRIPT

pytestmark = pytest.mark.slow

SHUTDOWN_OPTIONS = ("--slow-tool", "--graceful-shutdown-timeout", "15")
STREAM_SECONDS = 12.0  # from SIGTERM to the end of every stream: the 2 s call and sse-starlette's 0.5 s watcher
RETRY_MS_MAX = 500
PROTOCOL_VERSION = "2025-06-18"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
CALL_ID = 1
SLOW_CALL = {"jsonrpc": "2.0", "id": CALL_ID, "method": "tools/call", "params": {"name": "slow", "arguments": {}}}


@dataclass(frozen=True)
class Target:
    id: str
    side: str
    env: Callable[[], Env]
    script: Path


TARGETS = [
    Target("v1.x-stock", "stock", envs.stock_env, process.SERVER_SCRIPT),
    Target("v1.x-fork", "fork", envs.fork_env, process.SERVER_SCRIPT),
    Target("v2.x-stock", "stock", envs.stock_v2_env, process.SERVER_V2_SCRIPT),
    Target("v2.x-fork", "fork", envs.fork_v2_env, process.SERVER_V2_SCRIPT),
    *(
        Target(
            f"fastmcp-{version}-{side}",
            side,
            lambda version=version, on=on: envs.fastmcp_env(version, on),
            FASTMCP_SERVER_SCRIPT,
        )
        for version, line in (("3.4.11", V1), ("4.2.3", V2))
        for side, on in (("stock", line.stock), ("fork", line.fork))
    ),
]


@dataclass
class Stream:
    """What one stream carried after SIGTERM, in order, until it ended."""

    events: list[ServerSentEvent] = field(default_factory=list)

    async def read(self, events: AsyncIterator[ServerSentEvent]) -> None:
        try:
            async for event in events:
                self.events.append(event)
        except httpx.RemoteProtocolError:
            self.events.append(ServerSentEvent(event="cut"))  # the connection ended mid-stream

    def retries(self) -> list[int]:
        return [event.retry for event in self.events if event.retry is not None]

    def answers(self) -> list[dict[str, Any]]:
        messages = [json.loads(event.data) for event in self.events if event.event == "message" and event.data]
        return [message for message in messages if message.get("id") == CALL_ID]


def terminate(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)


async def over_sse(server: Server) -> dict[str, Stream]:
    session = Stream()
    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
        async with aconnect_sse(http, "GET", "/sse") as source:
            events = source.aiter_sse()
            endpoint = (await anext(events)).data
            assert (await http.post(endpoint, json=INITIALIZE)).status_code == 202
            assert json.loads((await anext(events)).data)["id"] == 0
            assert (await http.post(endpoint, json=INITIALIZED)).status_code == 202
            assert (await http.post(endpoint, json=SLOW_CALL)).status_code == 202
            terminate(server)
            with anyio.fail_after(STREAM_SECONDS):
                await session.read(events)
    return {"session": session}


async def over_streamable_http(server: Server) -> dict[str, Stream]:
    call, listening = Stream(), Stream()
    headers = {"accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
        initialized = await http.post("/mcp", json=INITIALIZE, headers=headers)
        headers |= {"mcp-session-id": initialized.headers["mcp-session-id"], "mcp-protocol-version": PROTOCOL_VERSION}
        assert (await http.post("/mcp", json=INITIALIZED, headers=headers)).status_code == 202
        async with (
            aconnect_sse(http, "GET", "/mcp", headers=headers) as get_stream,
            aconnect_sse(http, "POST", "/mcp", json=SLOW_CALL, headers=headers) as call_stream,
        ):
            assert (get_stream.response.status_code, call_stream.response.status_code) == (200, 200)
            terminate(server)
            with anyio.fail_after(STREAM_SECONDS):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(listening.read, get_stream.aiter_sse())
                    tg.start_soon(call.read, call_stream.aiter_sse())
    return {"call": call, "GET": listening}


@pytest.mark.parametrize("transport", ["sse", "http"])
@pytest.mark.parametrize("target", TARGETS, ids=[target.id for target in TARGETS])
def test_streams_at_sigterm(target: Target, transport: str) -> None:
    options = (*SHUTDOWN_OPTIONS, *(("--transport", "http") if transport == "http" else ()))
    with process.running(target.env(), *options, script=target.script) as server:
        if target.side == "fork":
            require(server, ("hands_off_at_shutdown", HANDOFF_PATCH))
        streams = anyio.run(over_sse if transport == "sse" else over_streamable_http, server)
        server.process.wait(STREAM_SECONDS)
    carried = {
        name: [(event.event, event.data[:100], event.retry) for event in stream.events]
        for name, stream in streams.items()
    }
    answered = streams["session" if transport == "sse" else "call"].answers()
    retries = streams["session" if transport == "sse" else "GET"].retries()
    if target.side == "fork":
        assert len(answered) == 1 and "result" in answered[0], carried
        assert len(retries) == 1 and 0 <= retries[0] <= RETRY_MS_MAX, carried
    else:
        assert (answered, retries) == ([], []), carried
