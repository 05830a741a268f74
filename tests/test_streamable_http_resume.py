"""Streamable HTTP sessions the server no longer knows (patch 0006): the TypeScript client's calls after.

A real TypeScript SDK client (tests/clients/streamable_http_resume_client.mjs, `StreamableHTTPClientTransport`)
initializes and calls a tool; then the server loses its session in one of two ways:

- restart: the server is stopped and started again on the same port (a deploy, a crash);
- reap: the server runs with a 2 s session idle timeout, and the test waits for its session manager's log
  line "Session <id> idle timeout". The client runs without its GET stream here (--no-get-stream), because an
  open stream holds a session open: a session is reaped once its client's stream is gone.

The client then calls the tool twice with the session ID it has; the SDK never initializes again after a 404.
After a restart, on the fork both calls are served, on a session re-created under the same ID that never saw
`initialize`; on stock both are answered 404 "Session not found", as every later call would be; with resumption
off (the race servers' --no-resume-sessions: `resume_sessions=False` on the session manager) 404 as on stock.
After the idle reap both are answered 404 on the fork too: the idle timeout ends the session, as
`session_idle_timeout` documents and fastmcp 4.x's own suite pins, and the manager remembers the ID as ended.
Targets: the race servers of both lines (mcp's FastMCP and MCPServer, stock and fork) and fastmcp (2.x and 3.x on v1.x,
4.x on v2.x). fastmcp 2.x and 3.x run only `restart`: their `http_app()` builds the session manager with
mcp's 30-minute idle timeout and has no setting for it (4.x has `session_idle_timeout`).

Beside them, raw requests with httpx (no SDK) for unknown session IDs, stock and fork side by side on the race
servers of both lines: what is resumed (a supported MCP-Protocol-Version on a POST, a notification or a GET)
and what stays 404 as on stock (no header, an unsupported version, a malformed ID, an ID ended by DELETE).

Needs `node` (18 or later) and `npm` on PATH, and the npm registry on first use (the TypeScript SDK as
tests/test_real_clients.py installs it, into the mcp-initfix cache).
"""

from __future__ import annotations

import contextlib
import functools
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from race import clients, envs, process
from race.envs import Env
from race.npm import typescript_client
from race.process import RESUME_HTTP_PATCH, Server
from race.testing import Episodes, print_summary, selected_cases
from tests.test_fastmcp import FASTMCP_VERSIONS, V2
from tests.test_reconnect import FASTMCP_SERVER_SCRIPT, ClientRun

pytestmark = pytest.mark.slow

TOOL, ARGUMENTS = clients.CALL_TOOL
HTTP = ("--transport", "http")
IDLE_SECONDS = 2.0  # the reap episode's session idle timeout: well above the client's gaps between requests
READY_SECONDS = 60.0  # the client's first line: connected, initialized, called once
REAP_SECONDS = 15.0  # from that line to the server's "idle timeout" line
REPORT_SECONDS = 40.0  # its last: two calls of at most 15 s each
EVENTS = ("restart", "reap")
# Episodes at a time: most of one is waiting (a server's start, a session's idle timeout).
PARALLEL = 2
NOT_FOUND = 404


@dataclass(frozen=True)
class Target:
    """A server whose session is lost."""

    id: str
    line: str
    server: str
    side: str  # stock, fork or "fork, resumption off"
    env: Callable[[], Env]
    script: Path
    options: tuple[str, ...] = ()
    events: tuple[str, ...] = EVENTS


TARGETS = {
    target.id: target
    for target in [
        Target("v1.x-stock", "v1.x", "race", "stock", envs.stock_env, process.SERVER_SCRIPT),
        Target("v1.x-fork", "v1.x", "race", "fork", envs.fork_env, process.SERVER_SCRIPT),
        Target(
            "v1.x-fork-no-resume",
            "v1.x",
            "race",
            "fork, resumption off",
            envs.fork_env,
            process.SERVER_SCRIPT,
            ("--no-resume-sessions",),
        ),
        Target("v2.x-stock", "v2.x", "race", "stock", envs.stock_v2_env, process.SERVER_V2_SCRIPT),
        Target("v2.x-fork", "v2.x", "race", "fork", envs.fork_v2_env, process.SERVER_V2_SCRIPT),
        Target(
            "v2.x-fork-no-resume",
            "v2.x",
            "race",
            "fork, resumption off",
            envs.fork_v2_env,
            process.SERVER_V2_SCRIPT,
            ("--no-resume-sessions",),
        ),
        *(
            Target(
                f"fastmcp-{version}-{side}",
                "v2.x" if line is V2 else "v1.x",
                f"fastmcp {version}",
                side,
                lambda version=version, on=on: envs.fastmcp_env(version, on),
                FASTMCP_SERVER_SCRIPT,
                # Only fastmcp 4.x can set the idle timeout (see the docstring).
                events=EVENTS if line is V2 else ("restart",),
            )
            for version, line in FASTMCP_VERSIONS.items()
            for side, on in (("stock", line.stock), ("fork", line.fork))
        ),
    ]
}


@functools.cache
def typescript_command() -> list[str]:
    """tests/clients/streamable_http_resume_client.mjs beside the SDK; copied once, before any episode runs it."""
    return typescript_client("streamable_http_resume_client.mjs")


@dataclass
class Episode:
    """The client's report across one event, the tool runs and the /debug features of the server that served
    the calls after it (after a restart, the new server: it saw only those calls), and how long it took."""

    report: dict[str, Any]
    executions: list[dict[str, Any]]
    features: dict[str, Any]
    seconds: float


def wait_for_log_line(server: Server, text: str, seconds: float) -> None:
    """Return once `text` is in the server's log; fail after `seconds` or if the server ends."""
    deadline = time.monotonic() + seconds
    while text not in server.log():
        if time.monotonic() >= deadline or server.process.poll() is not None:
            raise AssertionError(f"no {text!r} in the server's log within {seconds} s:\n{server.log()[-3000:]}")
        time.sleep(0.05)


def run_episode(target: Target, event: str) -> Episode:
    """Start the target over Streamable HTTP, connect the client, lose its session, and collect its report."""
    started = time.monotonic()
    env = target.env()
    options = (*HTTP, *target.options)
    if event == "reap":
        options = (*options, "--session-idle-timeout", str(IDLE_SECONDS))
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="resume-")))
        server = stack.enter_context(process.running(env, *options, script=target.script))
        command = [*typescript_command(), f"{server.url}/mcp", TOOL, json.dumps({**ARGUMENTS, "trace_id": "ts"})]
        if event == "reap":
            command.append("--no-get-stream")
        run = ClientRun("typescript", command, workdir, {})
        stack.callback(run.stop)
        ready = run.line(READY_SECONDS)
        assert ready["first"]["ok"], f"the first call failed: {ready}"
        if event == "restart":
            port = int(server.url.rsplit(":", 1)[1])
            server.stop()
            server = stack.enter_context(process.running(env, *options, script=target.script, port=port))
        else:
            wait_for_log_line(server, f"Session {ready['session_id']} idle timeout", REAP_SECONDS)
        run.signal()
        report = run.line(REPORT_SECONDS)
        features = server.debug(collect=False)["features"]
        return Episode(report, server.executions(), features, time.monotonic() - started)


def rows(found: Episodes[Episode]) -> list[str]:
    """A row each for the summary."""
    rows = []
    for (target_id, event), episode in found.found.items():
        target = TARGETS[target_id]
        if isinstance(episode, BaseException):
            rows.append(f"| {event} | {target.server} | {target.line} | {target.side} | failed: {episode!r:.60} |")
            continue
        report = episode.report
        outcomes = " | ".join(f"{'ok' if call['ok'] else call['code']} {call['ms']:.0f} ms" for call in report["calls"])
        same = "same" if report["session_after"] == report["session_before"] else "new"
        rows.append(
            f"| {event} | {target.server} | {target.line} | {target.side} | {outcomes} | {same} "
            f"| {episode.seconds:.1f} s |"
        )
    return rows


@pytest.fixture(scope="module")
def episodes(request: pytest.FixtureRequest) -> Iterator[Episodes[Episode]]:
    """The episodes the selected tests need, each run once for the module, PARALLEL at a time."""
    keys = selected_cases(request, "event")
    if keys:
        # What the episodes share is made first, one at a time: venvs, the npm install, the client script's copy.
        for target_id in dict.fromkeys(target_id for target_id, _ in keys):
            TARGETS[target_id].env()
        typescript_command()
    found = Episodes(keys, lambda target_id, event: run_episode(TARGETS[target_id], event), PARALLEL)
    yield found
    header = "| event | server | line | side | call 1 | call 2 | session id | episode |\n|" + " --- |" * 8
    print_summary(request, "the two calls after the session was lost:", [header, *rows(found)])


def cases(*target_ids: str, events: tuple[str, ...] = EVENTS) -> list[Any]:
    return [
        pytest.param(TARGETS[target_id], event, id=f"{target_id}-{event}")
        for target_id in target_ids
        for event in TARGETS[target_id].events
        if event in events
    ]


def runs_after(episode: Episode, event: str) -> list[dict[str, Any]]:
    """The tool runs of the calls after the event: a restarted server saw nothing else; a server that reaped
    the session also ran the first call."""
    runs = [e for e in episode.executions if e["trace_id"] == "ts"]
    return runs if event == "restart" else runs[1:]


FASTMCP_IDS = [target_id for target_id in TARGETS if target_id.startswith("fastmcp-")]
FORKS = ["v1.x-fork", "v2.x-fork", *(target_id for target_id in FASTMCP_IDS if target_id.endswith("-fork"))]
STOCKS = ["v1.x-stock", "v2.x-stock", *(target_id for target_id in FASTMCP_IDS if target_id.endswith("-stock"))]
NO_RESUME = ["v1.x-fork-no-resume", "v2.x-fork-no-resume"]


@pytest.mark.parametrize(("target", "event"), cases(*FORKS, events=("restart",)))
def test_typescript_client_calls_again_on_the_same_session_on_the_fork(
    episodes: Episodes[Episode], target: Target, event: str
) -> None:
    episode = episodes.get(target.id, event)
    report = episode.report
    for call in report["calls"]:
        assert call["ok"] is True, f"{RESUME_HTTP_PATCH}: {report}"
        assert call["result"] == {"status": "ok", "tool": TOOL}
    assert report["session_after"] == report["session_before"], report
    # Both served on a session re-created under that ID, which never received initialize.
    assert [run["handshake"] for run in runs_after(episode, event)] == [False, False], episode.executions


@pytest.mark.parametrize(("target", "event"), [*cases(*STOCKS), *cases(*FORKS, events=("reap",))])
def test_typescript_client_is_answered_404_on_stock_and_after_an_idle_reap(
    episodes: Episodes[Episode], target: Target, event: str
) -> None:
    """Stock after either event; the fork after the idle timeout, which ends the session as
    `session_idle_timeout` documents (and fastmcp 4.x's own tests pin), so it is not re-created."""
    episode = episodes.get(target.id, event)
    report = episode.report
    for call in report["calls"]:
        assert (call["ok"], call["code"]) == (False, NOT_FOUND), report
        assert "Session not found" in call["message"], call
    # The client keeps its session ID and never initializes again: every later call would be refused too.
    assert report["session_after"] == report["session_before"], report
    assert runs_after(episode, event) == []


@pytest.mark.parametrize(("target", "event"), cases(*NO_RESUME, events=("restart",)))
def test_typescript_client_is_answered_404_with_resumption_off(
    episodes: Episodes[Episode], target: Target, event: str
) -> None:
    episode = episodes.get(target.id, event)
    # Else --no-resume-sessions had nothing to turn off, and this would pass as on stock.
    assert episode.features["resumes_http_sessions"], f"this build of the fork lacks {RESUME_HTTP_PATCH}"
    report = episode.report
    for call in report["calls"]:
        assert (call["ok"], call["code"]) == (False, NOT_FOUND), report
    assert runs_after(episode, event) == []


# Raw requests for unknown session IDs, with httpx.

VERSION = clients.INITIALIZE_PARAMS["protocolVersion"]  # a version both lines support
UNSUPPORTED_VERSION = "1999-01-01"
ACCEPT = "application/json, text/event-stream"
SIDES = {
    ("v1.x", "stock"): (envs.stock_env, process.SERVER_SCRIPT),
    ("v1.x", "fork"): (envs.fork_env, process.SERVER_SCRIPT),
    ("v2.x", "stock"): (envs.stock_v2_env, process.SERVER_V2_SCRIPT),
    ("v2.x", "fork"): (envs.fork_v2_env, process.SERVER_V2_SCRIPT),
}


class Raw:
    """Requests to one server's /mcp, each naming a session ID and, unless None, an MCP-Protocol-Version."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http = http
        self.url = url

    def headers(self, session_id: str | None, version: str | None = VERSION) -> dict[str, str]:
        headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
        if session_id is not None:
            headers["Mcp-Session-Id"] = session_id
        if version is not None:
            headers["MCP-Protocol-Version"] = version
        return headers

    def call(self, session_id: str, version: str | None = VERSION) -> str:
        """A tools/call: its status, and for a 200 whether the tool's result came back."""
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": TOOL, "arguments": ARGUMENTS}}
        response = self.http.post(self.url, json=body, headers=self.headers(session_id, version))
        if response.status_code != 200:
            return str(response.status_code)
        answer = last_message(response)
        return "200 ok" if "result" in answer else f"200 error {answer['error']['code']}"

    def initialized(self, session_id: str) -> str:
        body = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        return str(self.http.post(self.url, json=body, headers=self.headers(session_id)).status_code)

    def get(self, session_id: str) -> str:
        """The GET that opens a session's stream: its status, and the stream's media type if it opened."""
        headers = {**self.headers(session_id), "Accept": "text/event-stream"}
        with self.http.stream("GET", self.url, headers=headers) as response:
            if response.status_code != 200:
                return str(response.status_code)
            return f"200 {response.headers['content-type'].split(';')[0]}"

    def delete(self, session_id: str) -> str:
        return str(self.http.delete(self.url, headers=self.headers(session_id)).status_code)

    def initialize(self) -> str:
        """A whole handshake; the new session's ID."""
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": clients.INITIALIZE_PARAMS}
        response = self.http.post(self.url, json=body, headers=self.headers(None, None))
        assert response.status_code == 200, response.text
        session_id = response.headers["mcp-session-id"]
        assert self.initialized(session_id) == "202"
        return session_id


def last_message(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a JSON response, or the last one of an SSE response."""
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line.removeprefix("data:") for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])
    return response.json()


def new_id() -> str:
    return uuid.uuid4().hex


def delete_live_then_call(raw: Raw) -> str:
    session_id = raw.initialize()
    return f"{raw.delete(session_id)} then {raw.call(session_id)}"


def delete_unknown_then_call(raw: Raw) -> str:
    session_id = new_id()
    return f"{raw.delete(session_id)} then {raw.call(session_id)}"


def initialized_then_call(raw: Raw) -> str:
    session_id = new_id()
    return f"{raw.initialized(session_id)} then {raw.call(session_id)}"


# Each case: what it does, and what stock and the fork answer (None: whatever stock answers).
RAW_CASES: dict[str, tuple[Callable[[Raw], str], str, str | None]] = {
    "tools/call with the header": (lambda raw: raw.call(new_id()), "404", "200 ok"),
    "notifications/initialized first, then tools/call": (initialized_then_call, "404 then 404", "202 then 200 ok"),
    "GET with the header": (lambda raw: raw.get(new_id()), "404", "200 text/event-stream"),
    "tools/call, no header": (lambda raw: raw.call(new_id(), None), "404", "404"),
    f"tools/call, version {UNSUPPORTED_VERSION}": (lambda raw: raw.call(new_id(), UNSUPPORTED_VERSION), "404", None),
    "tools/call, an ID with a space": (lambda raw: raw.call(f"{new_id()} x"), "404", "404"),
    "tools/call, an ID of 129 characters": (lambda raw: raw.call("a" * 129), "404", "404"),
    "DELETE of an unknown ID, then tools/call": (delete_unknown_then_call, "404 then 404", "404 then 404"),
    "DELETE of a live session, then tools/call": (delete_live_then_call, "200 then 404", "200 then 404"),
}
# v2.x's manager sends a version it has no handshake for to its 2026-07-28 path, which answers it itself.
STOCK_DIFFERS = {(f"tools/call, version {UNSUPPORTED_VERSION}", "v2.x")}


@pytest.fixture(scope="module")
def raw_outcomes(request: pytest.FixtureRequest) -> Iterator[dict[tuple[str, str], dict[str, str]]]:
    """Every raw case on one server per line and side, keyed by (line, side)."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for (line, side), (env, script) in SIDES.items():
        with process.running(env(), *HTTP, script=script) as server, httpx.Client(timeout=10.0) as http:
            raw = Raw(http, f"{server.url}/mcp")
            found[(line, side)] = {case: run(raw) for case, (run, _, _) in RAW_CASES.items()}
    yield found
    columns = [f"{line} {side}" for line, side in SIDES]
    lines = [f"| case | {' | '.join(columns)} |", f"| --- |{' --- |' * len(columns)}"]
    for case in RAW_CASES:
        lines.append(f"| {case} | {' | '.join(found[key][case] for key in SIDES)} |")
    print_summary(request, "raw requests for an unknown session ID:", lines)


@pytest.mark.parametrize("line", ["v1.x", "v2.x"])
@pytest.mark.parametrize("case", list(RAW_CASES))
def test_raw_request_for_an_unknown_session(
    raw_outcomes: dict[tuple[str, str], dict[str, str]], case: str, line: str
) -> None:
    _, stock, fork = RAW_CASES[case]
    stock_got, fork_got = raw_outcomes[(line, "stock")][case], raw_outcomes[(line, "fork")][case]
    if (case, line) not in STOCK_DIFFERS:
        assert stock_got == stock
    assert fork_got == (stock_got if fork is None else fork), f"{RESUME_HTTP_PATCH}: stock {stock_got}"
