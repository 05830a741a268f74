"""Real clients across a reconnect over SSE (issue 12, patch 0005): the call after the reconnect.

A client initializes and calls a tool; then the test breaks its stream in one of two ways:

- restart: the server is stopped and started again on the same port (a deploy, a crash);
- drop: a loopback TCP proxy between them (race/proxy.py) resets every open connection while the server
  stays up (a proxy's idle timeout, a network blip).

The client's EventSource reconnects by itself and gets a new `endpoint` event, for a new session that
never saw `initialize`; the test lets the client call the tool again once that has happened:

- the TypeScript SDK's `SSEClientTransport` (tests/clients/reconnect_client.mjs) sends no `initialize`
  again, only its `MCP-Protocol-Version` header. On the fork the call is served, on a session resumed
  without `initialize`; on stock it is refused `-32602`. Both lines, the race servers and fastmcp (2.x and
  3.x on v1.x, 4.x on v2.x). With resumption off (the race servers' --no-resume-sessions; fastmcp has no such
  setting) it is refused NOT_INITIALIZED reason `session_lost`, and not after a hold: those servers hold
  for 60 s, so a held call would end at the client's own 30 s deadline instead.
- mcp-remote, driven over stdio by the Python SDK's client (tests/clients/reconnect_stdio_client.py),
  initializes again after its stream reconnects; it must still work on the fork.

Needs `node` (18 or later) and `npm` on PATH, and the npm registry on first use (the TypeScript SDK as
tests/test_real_clients.py installs it, and mcp-remote, into the mcp-initfix cache).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from race import clients, envs, process
from race.checks import NOT_INITIALIZED
from race.envs import Env
from race.npm import TYPESCRIPT_SDK_VERSION, typescript_client
from race.process import RESUME_PATCH
from race.proxy import proxying
from race.testing import Episodes, print_summary, selected_cases
from tests.test_more_clients import DESKTOP_CLIENT, mcp_remote

pytestmark = pytest.mark.slow

CLIENTS = Path(__file__).resolve().parent / "clients"
FASTMCP_SERVER_SCRIPT = process.SERVER_SCRIPT.with_name("fastmcp_server.py")
TOOL, ARGUMENTS = clients.CALL_TOOL
# What mcp-remote logs to stderr once its EventSource has a stream again.
MCP_REMOTE_RECONNECTED = "Remote SSE stream reconnected"
MCP_REMOTE_REINITIALIZED = "Re-established session"  # once it has initialized the new session
INVALID_PARAMS = -32602
# A hold this long would outlast the clients' 30 s deadline for a call.
LONG_HOLD = ("--held-request-timeout", "60")
READY_SECONDS = 60.0  # a client's first line: connected, initialized, called once
REPORT_SECONDS = 75.0  # its last: reconnected (under 30 s) and called again (under 30 s)
EVENTS = ("restart", "drop")
# Episodes at a time: most of one is waiting (a server's start, the EventSource's 3 s before it reconnects).
PARALLEL = 2


@dataclass(frozen=True)
class Target:
    """A server one event happens to."""

    id: str
    line: str
    server: str
    side: str  # stock, fork or "fork, resumption off"
    env: Callable[[], Env]
    script: Path
    options: tuple[str, ...] = ()


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
            ("--no-resume-sessions", *LONG_HOLD),
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
            ("--no-resume-sessions", *LONG_HOLD),
        ),
        *(
            Target(
                f"fastmcp-{version}-{side}",
                line,
                f"fastmcp {version}",
                side,
                lambda version=version, on=on: envs.fastmcp_env(version, on),
                FASTMCP_SERVER_SCRIPT,
            )
            for version, line, sides in [
                ("2.14.7", "v1.x", {"stock": "stock", "fork": "fork"}),
                ("3.4.11", "v1.x", {"stock": "stock", "fork": "fork"}),
                ("4.2.3", "v2.x", {"stock": "stock-v2", "fork": "fork-v2"}),
            ]
            for side, on in sides.items()
        ),
    ]
}
MCP_REMOTE_TARGETS = ["v1.x-stock", "v1.x-fork", "v2.x-stock", "v2.x-fork"]


@functools.cache
def typescript_command() -> list[str]:
    """tests/clients/reconnect_client.mjs beside the SDK; copied there once, before any episode runs it."""
    return typescript_client("reconnect_client.mjs")


@functools.cache
def mcp_remote_command() -> list[str]:
    """The mcp-remote bridge, resolved once, before any episode runs it."""
    return mcp_remote()


class ClientRun:
    """One client process: it prints a ready line, waits for a line on stdin, then prints its report."""

    def __init__(self, name: str, command: list[str], workdir: Path, environ: dict[str, str]) -> None:
        self.name = name
        self.stderr_path = workdir / f"{name}.stderr"
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env={**os.environ, **environ},
            )
        self._buffer = b""

    def line(self, seconds: float) -> dict[str, Any]:
        """The client's next line of JSON on stdout, within `seconds`."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + seconds
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
            chunk = os.read(self.process.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                why = "ended" if ready else f"wrote no line within {seconds} s"
                raise AssertionError(f"{self.name} {why}; its stderr:\n{self.stderr()[-4000:]}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def signal(self) -> None:
        """Tell the client that its connection is broken now."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(b"broken\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise AssertionError(
                f"{self.name} ended before the reconnect; its stderr:\n{self.stderr()[-4000:]}"
            ) from None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        process.stop(self.process)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):  # what was left unread or unsent no longer matters
                    pipe.close()


# A client's command for an SSE URL and a scratch folder, and what it adds to the environment.
ClientCommand = Callable[[str, Path], tuple[list[str], dict[str, str]]]


def typescript(url: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
    arguments = {**ARGUMENTS, "trace_id": "typescript"}
    return [*typescript_command(), url, TOOL, json.dumps(arguments)], {}


def bridged(url: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
    bridge = [*mcp_remote_command(), url, "--transport", "sse-only"]
    python = envs.client_env(DESKTOP_CLIENT).python
    arguments = {**ARGUMENTS, "trace_id": "mcp-remote"}
    log = workdir / "mcp-remote.log"
    command = [str(python), str(CLIENTS / "reconnect_stdio_client.py"), json.dumps(bridge), TOOL]
    # Its token store goes to a scratch folder, not ~/.mcp-auth.
    config = workdir / "mcp-remote-config"
    config.mkdir()
    return [*command, json.dumps(arguments), str(log), MCP_REMOTE_RECONNECTED], {"MCP_REMOTE_CONFIG_DIR": str(config)}


CLIENT_COMMANDS: dict[str, ClientCommand] = {"typescript": typescript, "mcp-remote": bridged}


def clients_of(target: Target) -> list[str]:
    return ["typescript", "mcp-remote"] if target.id in MCP_REMOTE_TARGETS else ["typescript"]


@dataclass
class Episode:
    """What each client reported across one event, and the tool runs of the server that served the call
    after it (after a restart, the new server: it saw only that call)."""

    reports: dict[str, dict[str, Any]]
    executions: list[dict[str, Any]]


def run_episode(target: Target, event: str) -> Episode:
    """Start the target, connect its clients (through a proxy for `drop`), break their streams, and collect
    their reports; the clients run side by side, each on its own session."""
    env = target.env()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="reconnect-")))
        server = stack.enter_context(process.running(env, *target.options, script=target.script))
        port = int(server.url.rsplit(":", 1)[1])
        url = server.url
        if event == "drop":
            proxy = stack.enter_context(proxying(port))
            url = f"http://127.0.0.1:{proxy.port}"
        # Every command first (they may build a venv or install from npm), then the clients, close together.
        commands = {name: CLIENT_COMMANDS[name](f"{url}/sse", workdir) for name in clients_of(target)}
        runs = []
        for name, (command, environ) in commands.items():
            run = ClientRun(name, command, workdir, environ)
            stack.callback(run.stop)
            runs.append(run)
        ready = {run.name: run.line(READY_SECONDS) for run in runs}
        for name, line in ready.items():
            assert line["first"]["ok"], f"{name}'s first call failed: {line}"
        if event == "drop":
            assert proxy.drop() >= len(runs), "the proxy dropped fewer connections than there are clients"
        else:
            server.stop()
            server = stack.enter_context(process.running(env, *target.options, script=target.script, port=port))
        for run in runs:
            run.signal()
        reports = {run.name: run.line(REPORT_SECONDS) for run in runs}
        executions = server.executions()
    return Episode(reports, executions)


def rows(found: Episodes[Episode]) -> list[str]:
    """A row per client for the summary."""
    rows = []
    for (target_id, event), episode in found.found.items():
        if isinstance(episode, BaseException):
            continue
        target = TARGETS[target_id]
        for client, report in episode.reports.items():
            second = report["second"]
            outcome = "ok" if second["ok"] else f"{second.get('code')} {second.get('reason') or ''}".strip()
            rows.append(
                f"| {client} | {event} | {target.server} | {target.line} | {target.side} | {outcome} "
                f"| {second['ms']:.0f} ms | reconnect {report['reconnect_ms']:.0f} ms |"
            )
    return rows


@pytest.fixture(scope="module")
def episodes(request: pytest.FixtureRequest) -> Iterator[Episodes[Episode]]:
    """The episodes the selected tests need, each run once for the module, PARALLEL at a time."""
    keys = selected_cases(request, "event")
    if keys:
        # What the episodes share is made first, one at a time: venvs, npm installs, the client script's copy.
        for target_id in dict.fromkeys(target_id for target_id, _ in keys):
            TARGETS[target_id].env()
        typescript_command()
        if any(target_id in MCP_REMOTE_TARGETS for target_id, _ in keys):
            mcp_remote_command()
            envs.client_env(DESKTOP_CLIENT)
    found = Episodes(keys, lambda target_id, event: run_episode(TARGETS[target_id], event), PARALLEL)
    yield found
    if lines := rows(found):
        header = "| client | event | server | line | side | outcome | latency | |"
        print_summary(request, "the call after the reconnect:", [header, *lines])


def cases(*target_ids: str) -> list[Any]:
    return [
        pytest.param(TARGETS[target_id], event, id=f"{target_id}-{event}")
        for target_id in target_ids
        for event in EVENTS
    ]


def new_endpoint(report: dict[str, Any]) -> str:
    """The endpoint of the reconnected stream, where the TypeScript client POSTed its second call (with no
    initialize: the SDK sends none); it names a new session."""
    first, *later = report["endpoints"]
    assert later and later[-1] != first, report["endpoints"]
    return later[-1]


def runs_of(episode: Episode, client: str) -> list[dict[str, Any]]:
    return [e for e in episode.executions if e["trace_id"] == client]


FASTMCP_VERSIONS = ("2.14.7", "3.4.11", "4.2.3")
FORKS = ["v1.x-fork", "v2.x-fork", *(f"fastmcp-{version}-fork" for version in FASTMCP_VERSIONS)]
STOCKS = ["v1.x-stock", "v2.x-stock", *(f"fastmcp-{version}-stock" for version in FASTMCP_VERSIONS)]
NO_RESUME = ["v1.x-fork-no-resume", "v2.x-fork-no-resume"]


@pytest.mark.parametrize(("target", "event"), cases(*FORKS))
def test_typescript_client_calls_again_after_a_reconnect_on_the_fork(
    episodes: Episodes[Episode], target: Target, event: str
) -> None:
    episode = episodes.get(target.id, event)
    report = episode.reports["typescript"]
    assert report["second"]["ok"] is True, f"{RESUME_PATCH}: {report}"
    assert report["second"]["result"] == {"status": "ok", "tool": TOOL}
    # The hint of decision 4: a stream reopened with the header gets a session that needs no initialize.
    assert new_endpoint(report).endswith("&init_required=false"), report["endpoints"]
    # Served on a session that never received initialize (a restarted server saw only this call).
    runs = runs_of(episode, "typescript")
    assert [run["handshake"] for run in runs] == ([True, False] if event == "drop" else [False]), runs


@pytest.mark.parametrize(("target", "event"), cases(*STOCKS))
def test_typescript_client_is_refused_after_a_reconnect_on_stock(
    episodes: Episodes[Episode], target: Target, event: str
) -> None:
    report = episodes.get(target.id, event).reports["typescript"]
    new_endpoint(report)
    assert report["second"]["ok"] is False
    assert report["second"]["code"] == INVALID_PARAMS, report["second"]


@pytest.mark.parametrize(("target", "event"), cases(*NO_RESUME))
def test_typescript_client_is_told_its_session_is_lost_with_resumption_off(
    episodes: Episodes[Episode], target: Target, event: str
) -> None:
    episode = episodes.get(target.id, event)
    report = episode.reports["typescript"]
    assert new_endpoint(report).endswith("&init_required=true"), report["endpoints"]
    second = report["second"]
    # At once: a 60 s hold would have ended at the client's 30 s deadline, -32001 "Request timed out".
    assert (second["ok"], second["code"], second["reason"]) == (False, NOT_INITIALIZED, "session_lost"), second
    # Nothing ran for it: the only run is the first call's, on the server that is gone after a restart.
    assert len(runs_of(episode, "typescript")) == (1 if event == "drop" else 0)


@pytest.mark.parametrize(("target", "event"), cases("v1.x-fork", "v2.x-fork"))
def test_mcp_remote_calls_again_after_a_reconnect_on_the_fork(
    episodes: Episodes[Episode], target: Target, event: str
) -> None:
    episode = episodes.get(target.id, event)
    report = episode.reports["mcp-remote"]
    assert report["second"]["ok"] is True, report
    assert report["second"]["result"] == {"status": "ok", "tool": TOOL}
    # It initialized the new session itself, which the fork answers as on any session (decision 4).
    assert_reinitialized(episode)


@pytest.mark.parametrize(("target", "event"), cases("v1.x-stock", "v2.x-stock"))
def test_mcp_remote_initializes_again_after_a_reconnect_so_stock_serves_it_too(
    episodes: Episodes[Episode], target: Target, event: str
) -> None:
    episode = episodes.get(target.id, event)
    report = episode.reports["mcp-remote"]
    assert report["second"]["ok"] is True, report
    assert_reinitialized(episode)


def assert_reinitialized(episode: Episode) -> None:
    """mcp-remote sent initialize again after its stream came back, and its call ran after that."""
    bridge_log = episode.reports["mcp-remote"]["bridge_log_after_reconnect"]
    assert any(MCP_REMOTE_REINITIALIZED in line for line in bridge_log), bridge_log
    assert runs_of(episode, "mcp-remote")[-1]["handshake"] is True, episode.executions


def test_the_typescript_sdk_is_the_release_under_test() -> None:
    package = Path(typescript_command()[1]).parent / "node_modules" / "@modelcontextprotocol"
    manifest = json.loads((package / "sdk" / "package.json").read_text(encoding="utf-8"))
    assert manifest["version"] == TYPESCRIPT_SDK_VERSION
