"""A rolling deploy behind the recipe's haproxy (deploy/haproxy.cfg, docs/deploy.md): what real clients lose.

Two replicas of one server (the race server of a line, or fastmcp's, on stock mcp or the fork) run behind
haproxy, each under its own prefix (uvicorn's root_path /a and /b). Real TypeScript SDK clients
(tests/clients/rolling_client.mjs) connect through it over SSE or Streamable HTTP and call a tool every 250 ms;
some call the 2 s tool `slow` instead, so that calls are in flight when a replica is told to stop. Then each
replica in turn is restarted as the recipe says: drained in haproxy, sent SIGTERM, started again on its port,
enabled, and waited for until haproxy's checks have it up.

`bench/run --only rolling` runs every target on both transports with a fixed schedule; tests/test_rolling_deploy.py
uses the same pieces (Deployment, Clients, summarize) with few clients and waits on events instead.
"""

from __future__ import annotations

import contextlib
import json
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from race import clients, envs, npm, process
from race.balancer import REPLICAS, Haproxy
from race.envs import Env

FASTMCP_SERVER_SCRIPT = process.SERVER_SCRIPT.with_name("fastmcp_server.py")
# One fastmcp release per line: the latest of each.
FASTMCP_RELEASES = {"v1.x": ("3.4.11", "stock", "fork"), "v2.x": ("4.2.3", "stock-v2", "fork-v2")}
TRANSPORTS = {"sse": "/sse", "http": "/mcp"}
CLIENT_SCRIPT = "rolling_client.mjs"
SLOW_TOOL = "slow"  # race/toolbox.py's, served with --slow-tool
TOOL, ARGUMENTS = clients.CALL_TOOL

# What the clients do: a call every INTERVAL_MS; a call unanswered after CALL_TIMEOUT_MS (the slow tool's
# SLOW_SECONDS more) has timed out. Every SLOW_EVERY-th client calls the slow tool.
INTERVAL_MS = 250
CALL_TIMEOUT_MS = 5000
SLOW_SECONDS = 2.0
SLOW_EVERY = 4
# uvicorn's bound on its wait for open connections after SIGTERM, room for a graceful handoff to drain in.
GRACEFUL_SHUTDOWN_SECONDS = 15.0
# A client is stuck when every call it started in the last STUCK_SECONDS before the end failed (or, if it
# started none there, its last call did; or it never connected).
STUCK_SECONDS = 3.0
# A restart affects the clients with a call served by the restarted replica this long before its SIGTERM.
AFFECTED_SECONDS = 2.0
# The goals: 0 stuck, 0 timed out, at most this many failed calls per client per restart, and a first good
# call within this long of each SIGTERM.
FAILED_PER_RESTART_GOAL = 1
FIRST_GOOD_CALL_GOAL_SECONDS = 0.5
UP_SECONDS = 60.0  # from a replica's new start to haproxy's checks having it up
CLIENT_START_SECONDS = 60.0  # from the clients' start to their "ready" line


@dataclass(frozen=True)
class Target:
    """A server of one line and side, run as the replicas."""

    line: str
    server: str
    side: str
    env: Callable[[], Env]
    script: Path

    @property
    def id(self) -> str:
        return f"{self.line}-{self.server.replace(' ', '-')}-{self.side}"


def fastmcp_targets(line: str) -> list[Target]:
    version, stock, fork = FASTMCP_RELEASES[line]
    return [
        Target(
            line,
            f"fastmcp {version}",
            side,
            lambda version=version, on=on: envs.fastmcp_env(version, on),
            FASTMCP_SERVER_SCRIPT,
        )
        for side, on in (("stock", stock), ("fork", fork))
    ]


TARGETS = [
    Target("v1.x", "race", "stock", envs.stock_env, process.SERVER_SCRIPT),
    Target("v1.x", "race", "fork", envs.fork_env, process.SERVER_SCRIPT),
    *fastmcp_targets("v1.x"),
    Target("v2.x", "race", "stock", envs.stock_v2_env, process.SERVER_V2_SCRIPT),
    Target("v2.x", "race", "fork", envs.fork_v2_env, process.SERVER_V2_SCRIPT),
    *fastmcp_targets("v2.x"),
]


def now_ms() -> float:
    """The clients' clock: milliseconds since the epoch."""
    return time.time() * 1000


class Replica:
    """One replica: the target's server script with root_path /<name>, started again on the same port."""

    def __init__(self, name: str, target: Target, env: Env, options: list[str], workdir: Path) -> None:
        self.name = name
        self.target = target
        # Resolved once: a restart runs what the replica ran before, even if the checkout changed since.
        self.env = env
        self.options = [*options, "--root-path", f"/{name}"]
        self.workdir = workdir
        self.port = 0
        self.starts = 0
        self.server: process.Server | None = None

    def start(self) -> None:
        """Start the server (on its port once it has one) and return once it listens."""
        self.starts += 1
        folder = self.workdir / f"{self.name}-{self.starts}"
        folder.mkdir()
        options = [*self.options, *(["--port", str(self.port)] if self.port else [])]
        self.server = process.Server(self.env, folder, options, {}, self.target.script)
        self.port = int(self.server.url.rsplit(":", 1)[1])

    def terminate(self) -> float:
        """Send SIGTERM; the moment it was sent (epoch ms)."""
        assert self.server is not None
        sent = now_ms()
        self.server.process.send_signal(signal.SIGTERM)
        return sent

    def wait(self, seconds: float) -> None:
        """Wait for the server to end, at most `seconds`, then kill it."""
        assert self.server is not None
        try:
            self.server.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.server.process.kill()
            self.server.process.wait(10)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@dataclass(frozen=True)
class Restart:
    """One replica's restart, in epoch ms: SIGTERM sent, process ended, up again in haproxy."""

    replica: str
    sigterm: float
    exited: float
    up: float


class Deployment:
    """The replicas behind haproxy; `restart` does one step of a rolling deploy."""

    def __init__(self, replicas: dict[str, Replica], haproxy: Haproxy, graceful_seconds: float) -> None:
        self.replicas = replicas
        self.haproxy = haproxy
        self.graceful_seconds = graceful_seconds

    def url(self, transport: str) -> str:
        return f"{self.haproxy.url}{TRANSPORTS[transport]}"

    def restart(self, name: str) -> Restart:
        """Drain the replica, SIGTERM it, start it again once it ended, enable it and wait until it is up."""
        replica = self.replicas[name]
        self.haproxy.drain(name)
        sigterm = replica.terminate()
        # uvicorn's own bound, and some time to stop after it.
        replica.wait(self.graceful_seconds + 10)
        exited = now_ms()
        replica.start()
        self.haproxy.enable(name)
        self.haproxy.wait_until_up((name,), UP_SECONDS)
        return Restart(name, sigterm, exited, now_ms())


@contextlib.contextmanager
def deployment(
    target: Target,
    env: Env,
    transport: str,
    workdir: Path,
    graceful_seconds: float = GRACEFUL_SHUTDOWN_SECONDS,
) -> Iterator[Deployment]:
    """The target's two replicas, run from `env` (the target's, resolved once by the caller: a venv is rebuilt
    when the checkout changes, which must not happen under a running replica), serving `transport` with the
    slow tool, behind haproxy, all up."""
    options = ["--transport", transport, "--slow-tool", "--graceful-shutdown-timeout", str(graceful_seconds)]
    replicas = {name: Replica(name, target, env, options, workdir) for name in REPLICAS}
    haproxy = None
    try:
        with ThreadPoolExecutor(len(replicas)) as pool:
            for started in [pool.submit(replica.start) for replica in replicas.values()]:
                started.result()
        haproxy = Haproxy(workdir, {name: replica.port for name, replica in replicas.items()})
        haproxy.wait_until_up(tuple(replicas), UP_SECONDS)
        yield Deployment(replicas, haproxy, graceful_seconds)
    finally:
        for replica in replicas.values():
            replica.stop()
        if haproxy is not None:
            haproxy.stop()


@dataclass(frozen=True)
class Load:
    """What the clients do (tests/clients/rolling_client.mjs's configuration)."""

    transport: str
    clients: int
    interval_ms: int = INTERVAL_MS
    call_timeout_ms: int = CALL_TIMEOUT_MS
    slow_every: int = SLOW_EVERY
    slow_seconds: float = SLOW_SECONDS

    def config(self, url: str, max_seconds: float) -> dict[str, Any]:
        return {
            "url": url,
            "transport": self.transport,
            "clients": self.clients,
            "interval_ms": self.interval_ms,
            "call_timeout_ms": self.call_timeout_ms,
            "tool": TOOL,
            "arguments": ARGUMENTS,
            "slow_every": self.slow_every,
            "slow_seconds": self.slow_seconds,
            "max_seconds": max_seconds,
        }


class Clients:
    """The client process: its JSON lines as they come, a wait for a condition on them, and its stop."""

    def __init__(self, load: Load, url: str, workdir: Path, max_seconds: float) -> None:
        self.load = load
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self.stderr_path = workdir / "clients.stderr"
        command = [*npm.typescript_client(CLIENT_SCRIPT), json.dumps(load.config(url, max_seconds))]
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stopped: float | None = None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.events.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[dict[str, Any]]], bool], seconds: float) -> bool:
        """Whether `condition` of the events so far held within `seconds` (False also once the process ended)."""
        deadline = time.monotonic() + seconds
        with self._changed:
            while not condition(self.events):
                left = deadline - time.monotonic()
                if left <= 0 or (not self._reader.is_alive() and self.process.poll() is not None):
                    return condition(self.events)
                self._changed.wait(left)
            return True

    def ready(self) -> dict[str, Any]:
        if not self.wait_for(lambda events: any(e["event"] == "ready" for e in events), CLIENT_START_SECONDS):
            raise RuntimeError(f"the clients did not connect within {CLIENT_START_SECONDS} s:\n{self.stderr()[-3000:]}")
        return next(e for e in self.events if e["event"] == "ready")

    def stop(self) -> float:
        """Tell the clients to stop calling and wait for their last calls to end; when they were told (epoch ms)."""
        assert self.process.stdin is not None
        self.stopped = now_ms()
        self.process.stdin.write(b"stop\n")
        self.process.stdin.flush()
        # A call in flight ends at its timeout at the latest.
        seconds = (self.load.call_timeout_ms / 1000) + self.load.slow_seconds + 10
        if not self.wait_for(lambda events: any(e["event"] == "done" for e in events), seconds):
            raise RuntimeError(f"the clients did not stop within {seconds} s:\n{self.stderr()[-3000:]}")
        return self.stopped

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        process.stop(self.process)
        self._reader.join(10)  # it reads to the end of the output first
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


@dataclass
class Run:
    """What one rolling deploy recorded: the clients' lines, the restarts and when the clients were stopped."""

    target: Target
    load: Load
    events: list[dict[str, Any]]
    restarts: list[Restart]
    started: float
    stopped: float
    figures: dict[str, Any] = field(default_factory=dict)


def calls_by_client(events: list[dict[str, Any]], clients: int) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {index: [] for index in range(clients)}
    for event in events:
        if event["event"] == "call":
            found[event["client"]].append(event)
    for calls in found.values():
        calls.sort(key=lambda call: call["start"])
    return found


def is_stuck(calls: list[dict[str, Any]], connected: bool, stopped: float, seconds: float = STUCK_SECONDS) -> bool:
    """Whether a client is stuck at the end: never connected, or every call it started in the last `seconds`
    before `stopped` failed (if it started none there, its last call did)."""
    if not connected or not calls:
        return True
    recent = [call for call in calls if call["start"] >= stopped - seconds * 1000] or calls[-1:]
    return all(call["outcome"] != "ok" for call in recent)


def longest_failed_run(calls: list[dict[str, Any]]) -> int:
    longest = current = 0
    for call in calls:
        current = 0 if call["outcome"] == "ok" else current + 1
        longest = max(longest, current)
    return longest


def recovery(calls: list[dict[str, Any]], sigterm: float, end: float) -> float | None:
    """Seconds from `sigterm` to the end of a client's first good call after its outage: the first good call
    after its first failed one, among the calls it started from `sigterm` to `end` (if none failed, its first
    good call there); None if there is none."""
    after = [call for call in calls if sigterm <= call["start"] < end]
    failed = next((i for i, call in enumerate(after) if call["outcome"] != "ok"), None)
    good = [call for call in after[failed or 0 :] if call["outcome"] == "ok"]
    return (good[0]["end"] - sigterm) / 1000 if good else None


def summarize(
    events: list[dict[str, Any]],
    restarts: list[Restart],
    started: float,
    stopped: float,
    *,
    clients: int,
    stuck_seconds: float = STUCK_SECONDS,
) -> dict[str, Any]:
    """The figures of one rolling deploy, from the clients' lines, the restarts, the clients' ready line
    (`started`) and their stop (times in epoch ms in, seconds out)."""
    connected = {e["client"]: e["ok"] for e in events if e["event"] == "connected"}
    by_client = calls_by_client(events, clients)
    every_call = [call for calls in by_client.values() for call in calls]
    outcomes = Counter(call["outcome"] for call in every_call)
    stuck = sorted(
        i for i, calls in by_client.items() if is_stuck(calls, connected.get(i, False), stopped, stuck_seconds)
    )
    runs = [longest_failed_run(calls) for calls in by_client.values()]
    # Failed calls per client between one SIGTERM and the next (or the end).
    bounds = [r.sigterm for r in restarts] + [stopped]
    per_restart = [
        sum(1 for call in calls if start <= call["start"] < end and call["outcome"] != "ok")
        for calls in by_client.values()
        for start, end in zip(bounds, bounds[1:], strict=False)
    ]
    first_good: list[float] = []
    never = 0
    in_flight: Counter[str] = Counter()
    for restart, end in zip(restarts, bounds[1:], strict=True):
        for calls in by_client.values():
            if calls and calls[0]["slow"]:
                # Its calls in flight at the SIGTERM on the replica that got it: how they ended.
                for call in calls:
                    if call["replica"] == restart.replica and call["start"] < restart.sigterm < call["end"]:
                        in_flight[call["outcome"]] += 1
                continue
            before = restart.sigterm - AFFECTED_SECONDS * 1000
            if any(c["replica"] == restart.replica and before <= c["start"] < restart.sigterm for c in calls):
                recovered = recovery(calls, restart.sigterm, end)
                if recovered is None:
                    never += 1
                else:
                    first_good.append(recovered)
    return {
        "clients": clients,
        "connected": sum(1 for ok in connected.values() if ok),
        "calls": {"ok": outcomes["ok"], "failed": outcomes["failed"], "timeout": outcomes["timeout"]},
        "stuck": len(stuck),
        "stuck_clients": stuck,
        "failed_in_a_row": {"median": statistics.median(runs) if runs else 0, "worst": max(runs, default=0)},
        "most_failed_per_restart": max(per_restart, default=0),
        "first_good_call_seconds": {
            "affected": len(first_good) + never,
            "median": statistics.median(first_good) if first_good else None,
            "worst": max(first_good) if first_good else None,
            "never": never,
        },
        "slow_in_flight": {"ok": in_flight["ok"], "failed": in_flight["failed"], "timeout": in_flight["timeout"]},
        "restarts": [
            {
                "replica": r.replica,
                "sigterm_seconds": (r.sigterm - started) / 1000,
                "down_seconds": (r.exited - r.sigterm) / 1000,
                "back_up_seconds": (r.up - r.sigterm) / 1000,
            }
            for r in restarts
        ],
    }


def goals(figures: dict[str, Any]) -> dict[str, bool]:
    """Each goal, met or not."""
    first = figures["first_good_call_seconds"]
    return {
        "0 stuck": figures["stuck"] == 0,
        "0 timed out": figures["calls"]["timeout"] == 0,
        f"<= {FAILED_PER_RESTART_GOAL} failed per client per restart": figures["most_failed_per_restart"]
        <= FAILED_PER_RESTART_GOAL,
        f"first good call <= {FIRST_GOOD_CALL_GOAL_SECONDS:g} s": first["never"] == 0
        and (first["worst"] is None or first["worst"] <= FIRST_GOOD_CALL_GOAL_SECONDS),
    }


def run_scheduled(
    target: Target,
    env: Env,
    load: Load,
    *,
    duration: float,
    graceful_seconds: float = GRACEFUL_SHUTDOWN_SECONDS,
    stuck_seconds: float = STUCK_SECONDS,
) -> Run:
    """One rolling deploy on a fixed schedule: replica a restarted at 20 % of `duration`, b at 50 % (or once a
    is up, if later), the clients stopped at `duration` (seconds from their ready line)."""
    with (
        tempfile.TemporaryDirectory(prefix="rolling-") as tmp,
        deployment(target, env, load.transport, Path(tmp), graceful_seconds) as deployed,
    ):
        max_seconds = CLIENT_START_SECONDS + duration + 2 * (graceful_seconds + UP_SECONDS) + 60
        runner = Clients(load, deployed.url(load.transport), Path(tmp), max_seconds)
        try:
            started = runner.ready()["at"]
            restarts = []
            for name, at in zip(REPLICAS, (0.2, 0.5), strict=True):
                wait_until(started + at * duration * 1000)
                restarts.append(deployed.restart(name))
            wait_until(started + duration * 1000)
            stopped = runner.stop()
        finally:
            runner.close()
        run = Run(target, load, list(runner.events), restarts, started, stopped)
    run.figures = summarize(
        run.events, run.restarts, run.started, run.stopped, clients=load.clients, stuck_seconds=stuck_seconds
    )
    return run


def wait_until(epoch_ms: float) -> None:
    """Sleep until the schedule's moment `epoch_ms` (at once if it passed)."""
    time.sleep(max(0.0, (epoch_ms - now_ms()) / 1000))


def measure(
    targets: list[Target],
    transports: list[str],
    *,
    clients: int,
    duration: float,
    graceful_seconds: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Every target on every transport, one run after the other."""
    # The venvs first, one at a time, so no run waits for a build (and none is rebuilt under a replica).
    built = {target.id: target.env() for target in targets}
    npm.typescript_client(CLIENT_SCRIPT)
    runs = []
    for target in targets:
        for transport in transports:
            progress(f"rolling deploy: {target.line} {target.server} {target.side} over {transport}")
            load = Load(transport, clients)
            run = run_scheduled(target, built[target.id], load, duration=duration, graceful_seconds=graceful_seconds)
            runs.append(
                {
                    "line": target.line,
                    "server": target.server,
                    "side": target.side,
                    "transport": transport,
                    **run.figures,
                    "goals": goals(run.figures),
                }
            )
    return {
        "clients": clients,
        "duration_seconds": duration,
        "interval_ms": INTERVAL_MS,
        "call_timeout_ms": CALL_TIMEOUT_MS,
        "slow_every": SLOW_EVERY,
        "slow_seconds": SLOW_SECONDS,
        "graceful_shutdown_seconds": graceful_seconds,
        "stuck_seconds": STUCK_SECONDS,
        "typescript_sdk": npm.TYPESCRIPT_SDK_VERSION,
        "runs": runs,
    }


def show_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def report_lines(rolling: dict[str, Any]) -> list[str]:
    """The table: one row per run, then each run's goals."""
    lines = [
        f"rolling deploy behind haproxy (deploy/haproxy.cfg), 2 replicas; {rolling['clients']} TypeScript SDK "
        f"{rolling['typescript_sdk']} clients each call a tool every {rolling['interval_ms']} ms (every "
        f"{rolling['slow_every']}th the {rolling['slow_seconds']:g} s tool `slow`) for "
        f"{rolling['duration_seconds']:g} s; "
        "replica a drained, SIGTERM, restarted at 20 %, b at 50 %; uvicorn's graceful shutdown "
        f"{rolling['graceful_shutdown_seconds']:g} s; a call times out after {rolling['call_timeout_ms'] / 1000:g} s "
        "(slow: 2 s more); stuck: every call of the last "
        f"{rolling['stuck_seconds']:g} s failed",
        f"goals: 0 stuck, 0 timed out, at most {FAILED_PER_RESTART_GOAL} failed call per client per restart, first "
        f"good call within {FIRST_GOOD_CALL_GOAL_SECONDS:g} s of SIGTERM (clients the restarted replica served)",
        "",
        "| line | server | side | transport | calls ok / failed / timed out | connected | stuck "
        "| failed in a row, median / worst | most failed per restart | first good call after SIGTERM, median / worst "
        "| slow calls across SIGTERM: answered / failed / timed out | goals missed |",
        "|" + " --- |" * 12,
    ]
    for run in rolling["runs"]:
        calls, first, slow = run["calls"], run["first_good_call_seconds"], run["slow_in_flight"]
        never = f" ({first['never']} never)" if first["never"] else ""
        missed = [goal for goal, met in run["goals"].items() if not met]
        lines.append(
            f"| {run['line']} | {run['server']} | {run['side']} | {run['transport']} "
            f"| {calls['ok']} / {calls['failed']} / {calls['timeout']} | {run['connected']} / {run['clients']} "
            f"| {run['stuck']} | {run['failed_in_a_row']['median']:g} / {run['failed_in_a_row']['worst']} "
            f"| {run['most_failed_per_restart']} "
            f"| {show_seconds(first['median'])} / {show_seconds(first['worst'])}{never} "
            f"| {slow['ok']} / {slow['failed']} / {slow['timeout']} | {', '.join(missed) or 'none'} |"
        )
    return lines
