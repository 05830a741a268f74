"""MCP clients over SSE written with raw httpx, so they behave the same against stock and the fork.

A `Connection` opens GET /sse, reads the `endpoint` event, POSTs JSON-RPC messages there and
matches the answers arriving on the event stream to the requests by id. The flows at the bottom
are the client kinds the harness runs; each returns one `Outcome` per request it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

INITIALIZE_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "race-harness", "version": "1"},
}
# The flows call these two; the flood sends a bulky comment so held requests weigh something.
CALL_TOOL = ("get_customer", {"customer_id": "c-1001", "include_history": False})
FLOOD_TOOL = ("comment_ticket", {"ticket_id": "t-2002", "mentions": ["ops@example.com"]})


class Deadline:
    """The moment the whole run must end; every wait in the harness is bounded by it."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self, cap: float = float("inf")) -> float:
        return max(0.0, min(cap, self.at - time.monotonic()))

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at


@dataclass(frozen=True)
class Outcome:
    """What became of one request: `result` is "ok", "error" (a JSON-RPC error), "no answer" or "http NNN"."""

    method: str
    result: str
    code: int | None = None
    reason: str | None = None
    latency: float | None = None
    trace_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.result == "ok"


@dataclass
class Clients:
    """The HTTP clients of a run: one for the event streams, one for all POSTs (fresh or pooled)."""

    streams: httpx.AsyncClient
    posts: httpx.AsyncClient


@contextlib.asynccontextmanager
async def http_clients(style: str) -> AsyncIterator[Clients]:
    """`fresh`: every POST opens its own TCP connection; `pool`: all POSTs share keep-alive connections."""
    if style not in ("fresh", "pool"):
        raise ValueError(f"unknown connection style {style!r}")
    keepalive = 0 if style == "fresh" else 20
    posts = httpx.AsyncClient(
        timeout=10.0, limits=httpx.Limits(max_connections=100, max_keepalive_connections=keepalive)
    )
    streams = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None), limits=httpx.Limits(max_connections=None))
    async with streams, posts:
        yield Clients(streams, posts)


class Connection:
    """One SSE session with the server."""

    def __init__(self, base_url: str, clients: Clients, deadline: Deadline, answer_timeout: float) -> None:
        self.base_url = base_url
        self.clients = clients
        self.deadline = deadline
        self.answer_timeout = answer_timeout
        self.endpoint: str | None = None
        self._ids = itertools.count(1)
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._stack = contextlib.AsyncExitStack()
        self._reader: asyncio.Task[None] | None = None
        # Sent on every POST and on the GET that `reopen` sends; a flow may set them (a reconnecting
        # client names its protocol version).
        self.headers: dict[str, str] = {}

    async def __aenter__(self) -> Connection:
        await self._stack.__aenter__()
        response = await self._stack.enter_async_context(
            self.clients.streams.stream("GET", urljoin(self.base_url, "/sse"), headers=self.headers)
        )
        response.raise_for_status()
        endpoint_known = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(response, endpoint_known))
        try:
            await asyncio.wait_for(asyncio.shield(endpoint_known), self.deadline.remaining(self.answer_timeout))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._reader
        await self._stack.aclose()

    async def reopen(self) -> None:
        """End the event stream and open a new one, as an EventSource reconnects: a new session."""
        await self.__aexit__(None, None, None)
        self._stack = contextlib.AsyncExitStack()
        await self.__aenter__()

    async def _read(self, response: httpx.Response, endpoint_known: asyncio.Future[None]) -> None:
        event, data = "message", []
        async for line in response.aiter_lines():
            if line:
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    event = value
                elif field == "data":
                    data.append(value)
                continue
            if event == "endpoint" and not endpoint_known.done():
                self.endpoint = urljoin(self.base_url, "\n".join(data))
                endpoint_known.set_result(None)
            elif event == "message" and data:
                self._dispatch(json.loads("\n".join(data)))
            event, data = "message", []
        # The server ended the stream: nothing still awaited will come.
        ended = ConnectionError("the server closed the event stream")
        for future in [endpoint_known, *self._answers.values()]:
            if not future.done():
                future.set_exception(ended)

    def _dispatch(self, message: dict[str, Any]) -> None:
        future = self._answers.get(message.get("id"))  # type: ignore[arg-type]
        if future is not None and not future.done() and ("result" in message or "error" in message):
            future.set_result(message)

    async def post(self, message: dict[str, Any]) -> int:
        assert self.endpoint is not None
        response = await self.clients.posts.post(
            self.endpoint, json=message, headers=self.headers, timeout=self.deadline.remaining(10.0)
        )
        return response.status_code

    async def notify(self, method: str) -> None:
        await self.post({"jsonrpc": "2.0", "method": method})

    async def send(self, method: str, params: dict[str, Any], trace_id: str | None = None) -> Pending:
        """POST a request; the returned `Pending` waits for its answer."""
        request_id = next(self._ids)
        answer = self._answers[request_id] = asyncio.get_running_loop().create_future()
        pending = Pending(self, request_id, method, trace_id, answer, time.monotonic())
        try:
            pending.status = await self.post({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        except httpx.HTTPError:
            pending.status = None
        return pending

    def forget(self, request_id: int) -> None:
        self._answers.pop(request_id, None)

    async def request(self, method: str, params: dict[str, Any], trace_id: str | None = None) -> Outcome:
        return await (await self.send(method, params, trace_id)).outcome()

    async def initialize(self) -> Outcome:
        return await self.request("initialize", INITIALIZE_PARAMS)

    async def send_tool_call(
        self, trace_id: str, tool: tuple[str, dict[str, Any]] = CALL_TOOL, **extra: Any
    ) -> Pending:
        name, arguments = tool
        return await self.send(
            "tools/call", {"name": name, "arguments": {**arguments, **extra, "trace_id": trace_id}}, trace_id
        )

    async def call_tool(self, trace_id: str) -> Outcome:
        return await (await self.send_tool_call(trace_id)).outcome()


@dataclass
class Pending:
    """A request that was POSTed; `status` is the POST's HTTP status (None: the POST itself failed)."""

    conn: Connection
    request_id: int
    method: str
    trace_id: str | None
    answer: asyncio.Future[dict[str, Any]]
    started: float
    status: int | None = None

    async def outcome(self) -> Outcome:
        try:
            if self.status != 202:
                return Outcome(
                    self.method, f"http {self.status}" if self.status else "no answer", trace_id=self.trace_id
                )
            timeout = self.conn.deadline.remaining(self.conn.answer_timeout)
            try:
                message = await asyncio.wait_for(self.answer, timeout)
            except (TimeoutError, asyncio.TimeoutError, ConnectionError):
                return Outcome(self.method, "no answer", trace_id=self.trace_id)
        finally:
            self.conn.forget(self.request_id)
        latency = time.monotonic() - self.started
        if "error" in message:
            error = message["error"]
            data = error.get("data")
            reason = data.get("reason") if isinstance(data, dict) else None
            return Outcome(self.method, "error", error.get("code"), reason, latency, self.trace_id)
        return Outcome(self.method, "ok", latency=latency, trace_id=self.trace_id)


# The client kinds. Each takes an open connection and a trace prefix unique to the session.
Flow = Callable[[Connection, str], Awaitable[list[Outcome]]]


async def compliant(conn: Connection, trace: str) -> list[Outcome]:
    """initialize, wait for its answer, initialized, then tools/list and tools/call."""
    init = await conn.initialize()
    if not init.ok:
        return [init]
    await conn.notify("notifications/initialized")
    return [init, await conn.request("tools/list", {}), await conn.call_tool(f"{trace}-1")]


async def pipelined(conn: Connection, trace: str) -> list[Outcome]:
    """initialize, initialized, tools/list and tools/call POSTed at once, without waiting for answers.

    Tasks start in creation order, so initialize's POST leaves first, as a pipelining client's does.
    """
    init = asyncio.create_task(conn.initialize())
    initialized = asyncio.create_task(conn.notify("notifications/initialized"))
    listing = asyncio.create_task(conn.request("tools/list", {}))
    call = asyncio.create_task(conn.call_tool(f"{trace}-1"))
    outcomes = await asyncio.gather(init, listing, call)
    await initialized
    return list(outcomes)


async def tools_call_first(conn: Connection, trace: str) -> list[Outcome]:
    """tools/call POSTed (and accepted) before initialize, then the handshake."""
    call = await conn.send_tool_call(f"{trace}-1")
    init = await conn.initialize()
    if init.ok:
        await conn.notify("notifications/initialized")
    return [await call.outcome(), init]


async def never_initializing(conn: Connection, trace: str) -> list[Outcome]:
    """tools/call only: no handshake at all."""
    return [await conn.call_tool(f"{trace}-1")]


async def reconnecting(conn: Connection, trace: str) -> list[Outcome]:
    """A client whose event stream reconnects after its handshake (the TypeScript SDK's
    SSEClientTransport after a server restart or a dropped connection): the GET that reopens it and
    the tools/call it then POSTs on the new session carry `MCP-Protocol-Version` set to the version
    it negotiated, and it sends no initialize."""
    conn.headers["mcp-protocol-version"] = INITIALIZE_PARAMS["protocolVersion"]
    await conn.reopen()
    return [await conn.call_tool(f"{trace}-1")]


async def initialized_only(conn: Connection, trace: str) -> list[Outcome]:
    """notifications/initialized without initialize, then tools/call: the handshake skipped."""
    await conn.notify("notifications/initialized")
    return [await conn.call_tool(f"{trace}-1")]


def flood(
    count: int,
    then_initialize: bool,
    payload_bytes: int = 16 * 1024,
    before_leaving: Callable[[], Awaitable[None]] | None = None,
) -> Flow:
    """`count` tool calls POSTed at once before any handshake; once all are accepted, initialize (or not).

    `before_leaving` runs once every request is answered, while the session is still open.
    """

    async def flow(conn: Connection, trace: str) -> list[Outcome]:
        body = "x" * payload_bytes
        sends = [conn.send_tool_call(f"{trace}-{i}", FLOOD_TOOL, body=body) for i in range(count)]
        calls = await asyncio.gather(*sends)
        handshake: list[Outcome] = []
        if then_initialize:
            handshake.append(await conn.initialize())
            if handshake[0].ok:
                await conn.notify("notifications/initialized")
        outcomes = [*await asyncio.gather(*(call.outcome() for call in calls)), *handshake]
        if before_leaving is not None:
            await before_leaving()
        return outcomes

    flow.__name__ = f"flood{count}{'_then_initialize' if then_initialize else ''}"
    return flow


def flood_and_leave(count: int, before_leaving: Callable[[], Awaitable[None]], payload_bytes: int = 256 * 1024) -> Flow:
    """`count` tool calls POSTed before any handshake; after `before_leaving`, the client disconnects."""

    async def flow(conn: Connection, trace: str) -> list[Outcome]:
        body = "x" * payload_bytes
        calls = await asyncio.gather(
            *(conn.send_tool_call(f"{trace}-{i}", FLOOD_TOOL, body=body) for i in range(count))
        )
        await before_leaving()
        return [
            Outcome(c.method, "left" if c.status == 202 else f"http {c.status}", trace_id=c.trace_id) for c in calls
        ]

    flow.__name__ = f"flood{count}_and_leave"
    return flow
