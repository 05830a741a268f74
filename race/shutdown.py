"""A call in flight when the server is sent SIGTERM (patch 0008): what each of its streams carries until it ends.

A raw client (httpx) initializes, calls the race servers' tool `slow` (2 s, `--slow-tool`), and the server is
sent SIGTERM as soon as the call is on its way: over SSE once its POST is accepted, over Streamable HTTP once
the call's response stream has opened. uvicorn gets 15 s to shut down. On the fork the SSE session stream
sends a `retry` field and then the answer; over Streamable HTTP the call's stream carries its answer and the
standalone GET stream a `retry` field. On stock every stream ends with neither, half a second after SIGTERM
(sse-starlette's watcher). Used by tests/test_graceful_shutdown.py and the demo's last rows.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from race import clients, envs, process
from race.process import Server

OPTIONS = ("--slow-tool", "--graceful-shutdown-timeout", "15")
STREAM_SECONDS = 12.0  # from SIGTERM to the end of every stream: the 2 s call and sse-starlette's 0.5 s watcher
PROTOCOL_VERSION = clients.INITIALIZE_PARAMS["protocolVersion"]
INITIALIZE = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": clients.INITIALIZE_PARAMS}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
CALL_ID = 1
SLOW_CALL = {"jsonrpc": "2.0", "id": CALL_ID, "method": "tools/call", "params": {"name": "slow", "arguments": {}}}


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

    def summary(self, carries_the_answer: bool = True) -> str:
        """`retry 261 ms, answered`, `no answer`, `ended, no retry`: what a reader of the demo needs."""
        parts = [f"retry {ms} ms" for ms in self.retries()]
        answers = self.answers()
        if carries_the_answer:
            parts.append("answered" if answers and "result" in answers[0] else "error" if answers else "no answer")
        return ", ".join(parts) or "ended, no retry"


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
            server.process.send_signal(signal.SIGTERM)
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
            server.process.send_signal(signal.SIGTERM)
            with anyio.fail_after(STREAM_SECONDS):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(listening.read, get_stream.aiter_sse())
                    tg.start_soon(call.read, call_stream.aiter_sse())
    return {"call": call, "GET": listening}


def at_sigterm(
    env: envs.Env, transport: str, script: Path = process.SERVER_SCRIPT
) -> tuple[dict[str, Stream], dict[str, Any]]:
    """Start a server, make the call, send SIGTERM: what its streams carried, and the server's /debug features."""
    options = (*OPTIONS, *(("--transport", "http") if transport == "http" else ()))
    with process.running(env, *options, script=script) as server:
        features = server.debug(collect=False)["features"]
        streams = anyio.run(over_sse if transport == "sse" else over_streamable_http, server)
        server.process.wait(STREAM_SECONDS)
    return streams, features
