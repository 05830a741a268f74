"""The measurements, each against a running race server (race/process.py), with the harness's raw clients.

Every loop is bounded by a count and every wait by a deadline; a request that fails raises, so a
figure is never computed from failed requests.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from race import clients
from race.clients import Connection, Deadline, Outcome, Pending

ANSWER_TIMEOUT = 30.0
POSTS_AT_ONCE = 16


class BenchError(RuntimeError):
    """A request of the benchmark failed: the figures would mean nothing."""


def require_ok(outcome: Outcome, what: str) -> None:
    if not outcome.ok:
        raise BenchError(f"{what}: {outcome.method} got {outcome.result} {outcome.code or ''} {outcome.reason or ''}")


async def figures(http: httpx.AsyncClient, url: str, collect: bool = True) -> dict[str, Any]:
    """The server's /debug figures; `collect` runs its garbage collector first."""
    response = await http.get(f"{url}/debug", params={"gc": "1"} if collect else {})
    response.raise_for_status()
    return response.json()


async def initialized(conn: Connection) -> Connection:
    require_ok(await conn.initialize(), "initialize")
    await conn.notify("notifications/initialized")
    return conn


# Throughput: tools/call on initialized sessions.


@dataclass
class Throughput:
    """Per server, each round's calls per second and the server's CPU seconds per call (None: unknown)."""

    rounds: dict[str, list[float]] = field(default_factory=dict)
    cpu_per_call: dict[str, list[float | None]] = field(default_factory=dict)

    def median(self, side: str) -> float:
        return statistics.median(self.rounds[side])


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time a process has used so far (Linux; None elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The fields after the command name, which is in parentheses and may hold spaces: utime, stime are 14, 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def calls_per_second(
    sessions: list[Connection], seconds: float, tag: str, most: int = 100_000
) -> tuple[float, int]:
    """Every session sends tools/call one after another for `seconds` (at most `most` calls), all at once.

    Returns the rate and the number of calls.
    """
    stop = time.perf_counter() + seconds
    done = [0] * len(sessions)

    async def worker(index: int, conn: Connection) -> None:
        while time.perf_counter() < stop and done[index] < most:
            require_ok(await conn.call_tool(f"{tag}-{index}-{done[index]}"), "throughput")
            done[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i, conn) for i, conn in enumerate(sessions)))
    return sum(done) / (time.perf_counter() - started), sum(done)


async def throughput(
    servers: dict[str, tuple[str, int]],
    sessions: int,
    round_seconds: float,
    rounds: int,
    *,
    most_rounds: int | None = None,
    settled: Callable[[Throughput], bool] = lambda _: True,
) -> Throughput:
    """`servers` maps a side to its url and process id. Rounds alternate between the servers in ABBA
    order, so a drift of the machine hits both alike.

    After `rounds`, more rounds are taken two at a time (a whole ABBA) until `settled` says the figures
    are precise enough, at most `most_rounds` in all.
    """
    most_rounds = max(rounds, most_rounds or rounds)
    result = Throughput({side: [] for side in servers}, {side: [] for side in servers})
    deadline = Deadline(120.0 + 2 * len(servers) * (most_rounds + 1) * round_seconds)
    async with clients.http_clients("pool") as http, contextlib.AsyncExitStack() as stack:
        opened: dict[str, list[Connection]] = {}
        for side, (url, _) in servers.items():
            connections = [
                await stack.enter_async_context(Connection(url, http, deadline, ANSWER_TIMEOUT))
                for _ in range(sessions)
            ]
            opened[side] = list(await asyncio.gather(*(initialized(c) for c in connections)))
            await calls_per_second(opened[side], round_seconds, f"warm-{side}")
        sides = list(servers)
        for index in range(most_rounds):
            if index >= rounds and index % 2 == 0 and settled(result):
                break
            order = sides if index % 2 == 0 else sides[::-1]
            for side in order:
                pid = servers[side][1]
                cpu_before = cpu_seconds(pid)
                rate, calls = await calls_per_second(opened[side], round_seconds, f"round{index}-{side}")
                cpu_after = cpu_seconds(pid)
                result.rounds[side].append(rate)
                spent = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
                result.cpu_per_call[side].append(spent / calls if spent is not None and calls else None)
    return result


# First call: from the endpoint event to the first tools/call result.

FirstCall = Callable[[Connection, str], Awaitable[float]]


async def waiting_first_call(conn: Connection, trace: str) -> float:
    """A compliant client: initialize, wait for its answer, then initialized and tools/call.

    The notification has no answer to wait for, so both POSTs leave at once (the notification's first, as
    tasks start in creation order): two round trips, the fewest a client that waits for initialize spends.
    """
    started = time.perf_counter()
    require_ok(await conn.initialize(), "initialize")
    notified = asyncio.create_task(conn.notify("notifications/initialized"))
    call = asyncio.create_task(conn.call_tool(trace))
    outcome = await call
    elapsed = time.perf_counter() - started
    require_ok(outcome, "first call")
    await notified
    return elapsed


async def pipelined_first_call(conn: Connection, trace: str) -> float:
    """A pipelining client: initialize, initialized and tools/call POSTed at once."""
    started = time.perf_counter()
    init = asyncio.create_task(conn.initialize())
    notified = asyncio.create_task(conn.notify("notifications/initialized"))
    call = asyncio.create_task(conn.call_tool(trace))
    outcome = await call
    elapsed = time.perf_counter() - started
    require_ok(outcome, "first call")
    require_ok(await init, "initialize")
    await notified
    return elapsed


async def first_calls(kinds: dict[str, tuple[str, FirstCall]], samples: int, seconds: float) -> dict[str, list[float]]:
    """Up to `samples` fresh sessions of each kind (name: (server url, flow)), the kinds taking turns,
    for at most `seconds` (at least one turn after the warm-up)."""
    times: dict[str, list[float]] = {name: [] for name in kinds}
    deadline = Deadline(seconds + 60.0)
    budget = Deadline(seconds)
    async with clients.http_clients("pool") as http:
        for index in range(samples + 1):  # the first turn warms the servers and the connection pool
            if index > 1 and budget.passed:
                break
            for name, (url, flow) in kinds.items():
                async with Connection(url, http, deadline, ANSWER_TIMEOUT) as conn:
                    elapsed = await flow(conn, f"first-{name}-{index}")
                if index:
                    times[name].append(elapsed)
    return times


# Reconnect: a client whose event stream broke opens a new one and goes on where it was.

# What a client that negotiated this version sends with every POST and with the GET that reopens its
# event stream (the Streamable HTTP transport's header).
RECONNECT_HEADERS = {"MCP-Protocol-Version": clients.INITIALIZE_PARAMS["protocolVersion"]}


@dataclass(frozen=True)
class Reconnect:
    """One reconnected session's tools/call: how long from the endpoint event to its answer, and the answer."""

    seconds: float
    outcome: Outcome

    @property
    def answer(self) -> str:
        """ok, or the error code and reason, e.g. `-31000 timeout`."""
        if self.outcome.ok or self.outcome.result != "error":
            return self.outcome.result
        return f"{self.outcome.code} {self.outcome.reason}" if self.outcome.reason else str(self.outcome.code)


async def reconnects(urls: dict[str, str], samples: int, seconds: float) -> dict[str, list[Reconnect]]:
    """Up to `samples` reconnected sessions per server (name: url), taking turns, for at most `seconds`
    (at least one turn): a new event stream, then a tools/call, both with the MCP-Protocol-Version header,
    and no initialize, as a client that had initialized before its stream broke sends it.

    Today stock answers it -32602 and the fork holds it until the hold times out; a server that resumes
    sessions serves it.
    """
    found: dict[str, list[Reconnect]] = {name: [] for name in urls}
    deadline = Deadline(seconds + 2 * ANSWER_TIMEOUT)
    budget = Deadline(seconds)
    streams = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, read=None), limits=httpx.Limits(max_connections=None), headers=RECONNECT_HEADERS
    )
    posts = httpx.AsyncClient(timeout=10.0, headers=RECONNECT_HEADERS)
    async with streams, posts:
        for url in urls.values():
            # Opens the keep-alive connection the POSTs reuse, so that no sample pays for a TCP handshake.
            (await posts.get(f"{url}/debug")).raise_for_status()
        http = clients.Clients(streams, posts)
        for index in range(samples):
            if index and budget.passed:
                break
            for name, url in urls.items():
                async with Connection(url, http, deadline, ANSWER_TIMEOUT) as conn:
                    started = time.perf_counter()
                    outcome = await conn.call_tool(f"reconnect-{name}-{index}")
                    found[name].append(Reconnect(time.perf_counter() - started, outcome))
    return found


# The hot path alone: bench/hotpath.py in each server venv, stock and fork taking turns.

HOT_PATH_SCRIPT = Path(__file__).resolve().parent / "hotpath.py"
HOT_PATH_SECONDS = 60.0  # a child ends within seconds once told to stop; a hang must not stall the benchmark


def lockstep_round(pythons: dict[str, Path], calls: int, batches: int, warm_up: int) -> list[tuple[float, float]]:
    """One process per side (two sides) running bench/hotpath.py --lockstep, their batches taking turns in ABBA
    order; returns each turn's CPU seconds per call, in the order of `pythons`."""
    started = {
        side: subprocess.Popen(
            [str(python), str(HOT_PATH_SCRIPT), "--lockstep", "--calls", str(calls), "--batches", str(batches)]
            + ["--warm-up", str(warm_up)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for side, python in pythons.items()
    }
    sides = list(started)
    turns: list[tuple[float, float]] = []
    try:
        for index in range(batches):
            found = {}
            for side in sides if index % 2 == 0 else sides[::-1]:
                child = started[side]
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write("go\n")
                child.stdin.flush()
                # Bounded: the child fails within its answer timeout if the server hangs, and then this reads EOF.
                line = child.stdout.readline()
                if not line:
                    raise BenchError(
                        f"{side}: bench/hotpath.py --lockstep ended early:\n{child.communicate()[1][-3000:]}"
                    )
                batch = json.loads(line)
                found[side] = batch["cpu_seconds"] / batch["calls"]
            turns.append((found[sides[0]], found[sides[1]]))
    finally:
        for child in started.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.communicate("", timeout=HOT_PATH_SECONDS)  # an empty line: stop
            if child.poll() is None:
                child.kill()
                child.wait()
    return turns


def hot_path(
    pythons: dict[str, Path],
    calls: int,
    batches: int,
    rounds: int,
    *,
    most_rounds: int | None = None,
    settled: Callable[[list[list[tuple[float, float]]]], bool] = lambda _: True,
) -> list[list[tuple[float, float]]]:
    """Rounds of `lockstep_round` (a fresh pair of processes each, as a run's memory layout is its own):
    `rounds`, then more until `settled`, at most `most_rounds`."""
    found: list[list[tuple[float, float]]] = []
    for index in range(max(rounds, most_rounds or rounds)):
        if index >= rounds and settled(found):
            break
        found.append(lockstep_round(pythons, calls, batches, warm_up=500))
    return found


def calls_per_request(pythons: dict[str, Path], calls: int) -> dict[str, dict[str, float]]:
    """Each side's Python function calls per initialized tools/call, by function (bench/hotpath.py --count-calls)."""
    found = {}
    for side, python in pythons.items():
        command = [str(python), str(HOT_PATH_SCRIPT), "--count-calls", "--calls", str(calls)]
        ran = subprocess.run(command, capture_output=True, text=True, timeout=HOT_PATH_SECONDS)
        if ran.returncode:
            raise BenchError(f"{side}: bench/hotpath.py --count-calls failed:\n{ran.stderr[-3000:]}")
        found[side] = json.loads(ran.stdout.splitlines()[-1])["calls_per_request"]
    return found


# Memory: requests that arrive before initialize, held (fork) or answered and kept (stock).


@dataclass
class MemoryCycle:
    """/debug figures at each step of one cycle, and how many premature requests it sent."""

    requests: int
    payload_bytes: int
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    def growth(self, step: str, since: str) -> int:
        return self.steps[step]["rss"] - self.steps[since]["rss"]


async def wait_for(
    http: httpx.AsyncClient, url: str, ready: Callable[[dict[str, Any]], bool], seconds: float, collect: bool = False
) -> None:
    deadline = Deadline(seconds)
    while not ready(await figures(http, url, collect)):
        if deadline.passed:
            raise BenchError(f"the server at {url} did not reach the expected state within {seconds} s")
        await asyncio.sleep(0.05)  # polling the server, bounded by the deadline


async def post_premature_calls(connections: list[Connection], per_session: int, body: str, trace: str) -> list[Pending]:
    """POST `per_session` tool calls with `body` as their argument on each connection, before any
    initialize; every POST must be accepted."""
    # A few POSTs at a time, so that none waits long for a pooled connection on a busy machine.
    posting = asyncio.Semaphore(POSTS_AT_ONCE)

    async def send(conn: Connection, trace_id: str) -> Pending:
        async with posting:
            return await conn.send_tool_call(trace_id, clients.FLOOD_TOOL, body=body)

    pending = await asyncio.gather(
        *(send(conn, f"{trace}-{i}-{j}") for i, conn in enumerate(connections) for j in range(per_session))
    )
    if any(p.status != 202 for p in pending):
        raise BenchError("a premature tools/call was not accepted")
    return pending


async def memory_cycle(url: str, sessions: int, per_session: int, payload_bytes: int) -> MemoryCycle:
    """Open `sessions` sessions, POST `per_session` tool calls in each before initialize, then initialize.

    Steps: `before` (no session of the cycle open), `opened` (sessions open, nothing sent), `holding`
    (every call accepted and held, or on stock answered, and kept by stock 1.x), `released` (every session initialized
    and every call answered, sessions still open), `closed` (every session gone). Each after the
    server's garbage collection.
    """
    cycle = MemoryCycle(sessions * per_session, payload_bytes)
    body = "x" * payload_bytes
    deadline = Deadline(180.0)
    async with httpx.AsyncClient(timeout=10.0) as debug:
        cycle.steps["before"] = await figures(debug, url)
        async with clients.http_clients("pool") as http, contextlib.AsyncExitStack() as stack:
            connections = [
                await stack.enter_async_context(Connection(url, http, deadline, ANSWER_TIMEOUT))
                for _ in range(sessions)
            ]
            cycle.steps["opened"] = await figures(debug, url)
            pending = await post_premature_calls(connections, per_session, body, "memory")
            # Every request held (the fork; 2.x counts a held request in flight too), or kept (stock 1.x), or
            # answered (stock 2.x forgets what it rejected).
            await wait_for(
                debug,
                url,
                lambda f: max(f["held"], f["in_flight"]) >= cycle.requests or all(p.answer.done() for p in pending),
                60.0,
            )
            cycle.steps["holding"] = await figures(debug, url)
            await asyncio.gather(*(initialized(c) for c in connections))
            outcomes = await asyncio.gather(*(p.outcome() for p in pending))
            cycle.steps["released"] = await figures(debug, url)
            cycle.steps["released"]["answered ok"] = sum(o.ok for o in outcomes)
        # Closed sessions leave the server's weak set only once collected.
        await wait_for(debug, url, lambda f: f["sessions"] == 0, 30.0, collect=True)
        cycle.steps["closed"] = await figures(debug, url)
    return cycle


# Flood: many sessions that post large requests before initialize and never initialize.


def peak_and_resident_bytes(pid: int) -> tuple[int, int]:
    """The process's peak resident memory since it started (VmHWM) and its resident memory now (VmRSS)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024


@dataclass
class Flood:
    """What a flood of premature requests did to one server: its peak memory over what it held before."""

    requests: int
    payload_bytes: int
    peak_growth_bytes: int
    refused: dict[str, int]  # answers before any initialize, by reason (stock: its error code)
    held: int  # the server's count of held requests once every POST was accepted


async def flood(url: str, pid: int, sessions: int, per_session: int, payload_bytes: int) -> Flood:
    """Open `sessions` sessions, POST `per_session` tool calls with a `payload_bytes` argument in each,
    never initialize, and close them: the server's peak resident memory over its memory before the flood.

    On the fork each session holds at most 32 and the transport's budget bounds all of them together
    (1024 requests, 64 MiB of bodies); what does not fit is refused at once, as stock refuses all.
    """
    body = "x" * payload_bytes
    deadline = Deadline(180.0)
    async with httpx.AsyncClient(timeout=10.0) as debug:
        await figures(debug, url)  # collected, so the flood starts from a settled heap
        _, resident_before = peak_and_resident_bytes(pid)
        async with clients.http_clients("pool") as http, contextlib.AsyncExitStack() as stack:
            connections = [
                await stack.enter_async_context(Connection(url, http, deadline, ANSWER_TIMEOUT))
                for _ in range(sessions)
            ]
            pending = await post_premature_calls(connections, per_session, body, "flood")
            requests = len(pending)
            # Every request is held or answered; the answered ones were refused at once.
            await wait_for(debug, url, lambda f: f["held"] + sum(p.answer.done() for p in pending) >= requests, 60.0)
            held = (await figures(debug, url, collect=False))["held"]
            refused: collections.Counter[str] = collections.Counter()
            for answered in (p.answer.result() for p in pending if p.answer.done()):
                error = answered.get("error", {})
                data = error.get("data")
                refused[(data.get("reason") if isinstance(data, dict) else None) or str(error.get("code"))] += 1
        peak, _ = peak_and_resident_bytes(pid)  # VmHWM never falls: this is the peak of the whole flood
    return Flood(requests, payload_bytes, peak - resident_before, dict(refused), held)
