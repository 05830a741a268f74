"""Property tests: a server session of the fork driven by arbitrary interleavings of initialize,
notifications/initialized, requests, cancellations, pings, the passing of time and close, its
messages marked as SSE marks them (they may be reordered) or not, as every other transport.

Each example is checked against a small model of the holding rules:
- only requests marked `may_be_reordered` are held; unmarked ones before initialize are answered
  NOT_INITIALIZED at once;
- only answering `initialize` initializes the session: a `notifications/initialized` that arrives
  before it changes nothing (the session stays uninitialized and keeps holding);
- no request other than ping reaches the app before the session has answered `initialize`, and
  every one that does sees the client's initialize params;
- requests reach the app in arrival order, held ones before anything sent after initialize;
- every request with an id gets exactly the answer the model predicts, and exactly one, unless it
  was cancelled while held or was still held when the session closed (then it gets none);
- after close nothing is held, nothing is in flight and nothing was logged as an error.

The session is synchronized after every step with a ping (string ids, not part of the checks), so
each step is fully processed before the next one is sent. Time passes only on a trio MockClock,
which makes timeouts deterministic; on asyncio the timeout is too long to fire.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from mcp import types
from mcp.server.models import InitializationOptions
from mcp.server.session import InitializationState, ServerSession
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp.shared.session import RequestResponder
from race.process import HOLD_PATCH

# The hold patch must be in the installed fork: without it this module fails to collect, loudly.
assert "held_request_timeout" in inspect.signature(ServerMessageMetadata).parameters, (
    f"this build of the fork lacks {HOLD_PATCH}"
)

INIT_OPTIONS = InitializationOptions(
    server_name="test", server_version="0.1.0", capabilities=types.ServerCapabilities()
)
INITIALIZE_PARAMS = types.InitializeRequestParams(
    protocolVersion=types.LATEST_PROTOCOL_VERSION,
    capabilities=types.ClientCapabilities(),
    clientInfo=types.Implementation(name="client", version="0.1.0"),
).model_dump(by_alias=True, mode="json", exclude_none=True)

# Bounded so that both tests together take a few seconds: each example runs one short session.
# No example database: nothing is written beside the tests, and every run explores afresh.
EXAMPLES = settings(max_examples=150, deadline=timedelta(seconds=2), database=None)
# Real seconds on asyncio; on the mock clock virtual ones, added to the time the example waits.
STALL_LIMIT = 10

Action = tuple[str, int]
# The answer's message where the advice is not to send initialize (patch 0003).
NOT_INITIALIZED_MESSAGES = {
    "too_many_pending": "Session not initialized: too many requests are already waiting for initialize",
    "initialize_failed": "Session not initialized: initialize failed",
}


def request(
    request_id: int | str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    reordered: bool = True,
    timeout: float,
    max_held: int,
) -> SessionMessage:
    """A request as the SSE transport hands it over: marked possibly reordered, with its hold settings."""
    metadata = ServerMessageMetadata(
        may_be_reordered=reordered, held_request_timeout=timeout, max_held_requests=max_held
    )
    return SessionMessage(
        types.JSONRPCMessage(types.JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params)),
        metadata=metadata,
    )


def notification(method: str, params: dict[str, Any] | None = None) -> SessionMessage:
    return SessionMessage(types.JSONRPCMessage(types.JSONRPCNotification(jsonrpc="2.0", method=method, params=params)))


def outcome(answer: types.JSONRPCResponse | types.JSONRPCError) -> str:
    if isinstance(answer, types.JSONRPCResponse):
        return "result"
    if answer.error.code == types.NOT_INITIALIZED:
        assert answer.error.data is not None
        reason = answer.error.data["reason"]
        assert answer.error.message == NOT_INITIALIZED_MESSAGES.get(
            reason, "Session not initialized: send initialize first"
        )
        return f"not_initialized:{reason}"
    if answer.error.code == types.INVALID_PARAMS:
        return "invalid_params"
    return f"error:{answer.error.code}"


@dataclass
class Model:
    """What the session should do, step by step."""

    timeout: float
    max_held: int
    reordered: bool = True
    now: float = 0
    initialized: bool = False
    held: list[tuple[int, float]] = field(default_factory=list[tuple[int, float]])
    dispatched: list[int] = field(default_factory=list[int])
    answers: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    def request(self, request_id: int) -> None:
        if self.initialized:
            self.dispatch(request_id)
        elif not self.reordered or self.timeout == 0 or self.max_held == 0:
            self.answers[request_id].append("not_initialized:not_initialized")
        elif len(self.held) >= self.max_held:
            self.answers[request_id].append("not_initialized:too_many_pending")
        else:
            self.held.append((request_id, self.now))

    def dispatch(self, request_id: int) -> None:
        # The app answers everything it is given at once.
        self.dispatched.append(request_id)
        self.answers[request_id].append("result")

    def initialize(self, request_id: int) -> None:
        self.answers[request_id].append("result")
        self.initialized = True
        held, self.held = self.held, []
        for held_id, _ in held:
            self.dispatch(held_id)

    def bad_initialize(self, request_id: int) -> None:
        self.answers[request_id].append("invalid_params")
        held, self.held = self.held, []
        for held_id, _ in held:
            self.answers[held_id].append("not_initialized:initialize_failed")

    def initialized_notification(self) -> None:
        # Only answering initialize initializes the session and releases what it holds. Before it the
        # notification is ignored; after it the session is initialized already.
        pass

    def cancel(self, request_id: int) -> None:
        self.held = [(held_id, arrival) for held_id, arrival in self.held if held_id != request_id]

    def wait(self, seconds: float) -> None:
        # Waits are whole seconds and timeouts are not, so no deadline falls on the end of a wait.
        self.now += seconds
        still_held: list[tuple[int, float]] = []
        for request_id, arrival in self.held:
            if arrival + self.timeout < self.now:
                self.answers[request_id].append("not_initialized:timeout")
            else:
                still_held.append((request_id, arrival))
        self.held = still_held


@contextmanager
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.ERROR)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)


class Scenario:
    """One session under test, the client's ends of its streams, an app that answers everything, and the model."""

    def __init__(self, timeout: float, max_held: int, reordered: bool) -> None:
        self.model = Model(timeout=timeout, max_held=max_held, reordered=reordered)
        self.answers: dict[int, list[str]] = defaultdict(list)
        self.dispatched: list[int] = []
        self.synced: dict[str, anyio.Event] = {}
        self.sent_requests: list[int] = []
        self.last_id = 0
        self.to_server, server_read = anyio.create_memory_object_stream[SessionMessage | Exception]()
        server_write, self.from_server = anyio.create_memory_object_stream[SessionMessage](math.inf)
        self.session = ServerSession(server_read, server_write, INIT_OPTIONS)

    def request(
        self, request_id: int | str, method: str, params: dict[str, Any] | None = None, reordered: bool = True
    ) -> SessionMessage:
        return request(
            request_id, method, params, reordered=reordered, timeout=self.model.timeout, max_held=self.model.max_held
        )

    async def collect_answers(self) -> None:
        async with self.from_server:
            async for message in self.from_server:
                answer = message.message.root
                assert isinstance(answer, types.JSONRPCResponse | types.JSONRPCError)
                if isinstance(answer.id, str):
                    self.synced[answer.id].set()
                else:
                    self.answers[answer.id].append(outcome(answer))

    async def app(self) -> None:
        async for message in self.session.incoming_messages:
            if isinstance(message, RequestResponder):
                if not isinstance(message.request_id, str):
                    self.dispatched.append(message.request_id)
                    if not isinstance(message.request.root, types.PingRequest):
                        assert self.session._initialization_state == InitializationState.Initialized
                        assert self.session.client_params is not None
                with message:
                    await message.respond(types.ServerResult(types.EmptyResult()))

    def new_id(self) -> int:
        self.last_id += 1
        return self.last_id

    async def step(self, kind: str, argument: int) -> None:
        """Send one action to the session and tell the model; the session may not have processed it yet."""
        match kind:
            case "request":
                request_id = self.new_id()
                self.sent_requests.append(request_id)
                await self.to_server.send(self.request(request_id, "tools/list", reordered=self.model.reordered))
                self.model.request(request_id)
            case "ping":
                request_id = self.new_id()
                await self.to_server.send(self.request(request_id, "ping"))
                self.model.dispatch(request_id)
            case "initialize":
                request_id = self.new_id()
                await self.to_server.send(self.request(request_id, "initialize", INITIALIZE_PARAMS))
                self.model.initialize(request_id)
            case "bad_initialize":
                request_id = self.new_id()
                await self.to_server.send(self.request(request_id, "initialize"))
                self.model.bad_initialize(request_id)
            case "initialized":
                await self.to_server.send(notification("notifications/initialized"))
                self.model.initialized_notification()
            case "cancel":
                target = self.sent_requests[argument % len(self.sent_requests)] if self.sent_requests else 10_000
                await self.to_server.send(notification("notifications/cancelled", {"requestId": target}))
                self.model.cancel(target)
            case _:
                assert kind == "wait"
                await anyio.sleep(argument)
                self.model.wait(argument)

    async def sync(self) -> None:
        """Wait until the session has processed everything sent so far, and compare it with the model."""
        sync_id = f"sync-{len(self.synced)}"
        self.synced[sync_id] = anyio.Event()
        await self.to_server.send(self.request(sync_id, "ping"))
        await self.synced[sync_id].wait()
        assert (self.session._initialization_state == InitializationState.Initialized) == self.model.initialized
        assert [r.request_id for r in self.session._held_requests] == [i for i, _ in self.model.held]


async def run_scenario(actions: list[Action], timeout: float, max_held: int, final: str, reordered: bool) -> None:
    scenario = Scenario(timeout, max_held, reordered)
    session = scenario.session
    waited = sum(argument for kind, argument in actions if kind == "wait")
    with errors_logged() as errors, anyio.fail_after(waited + STALL_LIMIT):
        async with anyio.create_task_group() as outer:
            outer.start_soon(scenario.collect_answers)
            async with scenario.to_server, session, anyio.create_task_group() as app_tg:
                app_tg.start_soon(scenario.app)
                for kind, argument in actions:
                    await scenario.step(kind, argument)
                    await scenario.sync()

                if final == "disconnect":
                    await scenario.to_server.aclose()
                else:
                    app_tg.cancel_scope.cancel()

        # Closed: nothing held, nothing in flight, no task left (the task groups have exited).
        assert session._held_requests == {}
        assert session._in_flight == {}

    assert scenario.dispatched == scenario.model.dispatched
    assert dict(scenario.answers) == dict(scenario.model.answers)
    assert all(len(outcomes) == 1 for outcomes in scenario.answers.values())
    assert errors == []


STEPS = ["request", "request", "request", "ping", "initialize", "bad_initialize", "initialized", "initialized"]
untimed_actions = st.lists(
    st.one_of(
        st.sampled_from(STEPS).map(lambda kind: (kind, 0)),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
    ),
    max_size=25,
)
timed_actions = st.lists(
    st.one_of(
        st.sampled_from(STEPS).map(lambda kind: (kind, 0)),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("wait"), st.integers(1, 3)),
    ),
    max_size=25,
)


@EXAMPLES
@given(
    actions=untimed_actions,
    timeout=st.sampled_from([0, 1000.0, 1000.0, 1000.0]),
    max_held=st.sampled_from([0, 1, 2, 3, 32, 32, 32]),
    final=st.sampled_from(["close", "disconnect"]),
    reordered=st.sampled_from([True, True, True, False]),
    backend=st.sampled_from(["asyncio", "trio"]),
)
def test_interleavings_without_timeouts(
    *, actions: list[Action], timeout: float, max_held: int, final: str, reordered: bool, backend: str
) -> None:
    anyio.run(run_scenario, actions, timeout, max_held, final, reordered, backend=backend)


@EXAMPLES
@given(
    actions=timed_actions,
    timeout=st.sampled_from([0, 0.5, 1.5, 2.5, 2.5]),
    max_held=st.sampled_from([0, 1, 2, 3, 32, 32, 32]),
    final=st.sampled_from(["close", "disconnect"]),
    reordered=st.sampled_from([True, True, True, False]),
)
def test_interleavings_with_timeouts_on_a_mock_clock(
    actions: list[Action], timeout: float, max_held: int, final: str, reordered: bool
) -> None:
    # trio.run itself: anyio.run does not pass a clock on to trio.
    trio.run(run_scenario, actions, timeout, max_held, final, reordered, clock=MockClock(autojump_threshold=0))
