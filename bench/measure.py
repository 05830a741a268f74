"""The measurements, each against a running race server (race/process.py), with the harness's raw clients.

Every loop is bounded by a count and every wait by a deadline; a request that fails raises, so a
figure is never computed from failed requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
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
    servers: dict[str, tuple[str, int]], sessions: int, round_seconds: float, rounds: int
) -> Throughput:
    """`servers` maps a side to its url and process id. Rounds alternate between the servers in ABBA
    order, so a drift of the machine hits both alike."""
    result = Throughput({side: [] for side in servers}, {side: [] for side in servers})
    deadline = Deadline(120.0 + 2 * len(servers) * (rounds + 1) * round_seconds)
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
        for index in range(rounds):
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
    """A compliant client: initialize, wait for its answer, initialized, tools/call."""
    started = time.perf_counter()
    await initialized(conn)
    require_ok(await conn.call_tool(trace), "first call")
    return time.perf_counter() - started


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


async def memory_cycle(url: str, sessions: int, per_session: int, payload_bytes: int) -> MemoryCycle:
    """Open `sessions` sessions, POST `per_session` tool calls in each before initialize, then initialize.

    Steps: `before` (no session of the cycle open), `opened` (sessions open, nothing sent), `holding`
    (every call accepted and held, or on stock answered and kept), `released` (every session initialized
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
            # A few POSTs at a time, so that none waits long for a pooled connection on a busy machine.
            posting = asyncio.Semaphore(POSTS_AT_ONCE)

            async def send(conn: Connection, trace: str) -> Pending:
                async with posting:
                    return await conn.send_tool_call(trace, clients.FLOOD_TOOL, body=body)

            sends = [send(conn, f"memory-{i}-{j}") for i, conn in enumerate(connections) for j in range(per_session)]
            pending = await asyncio.gather(*sends)
            if any(p.status != 202 for p in pending):
                raise BenchError("a premature tools/call was not accepted")
            await wait_for(debug, url, lambda f: f["held"] + f["in_flight"] >= cycle.requests, 60.0)
            cycle.steps["holding"] = await figures(debug, url)
            await asyncio.gather(*(initialized(c) for c in connections))
            outcomes = await asyncio.gather(*(p.outcome() for p in pending))
            cycle.steps["released"] = await figures(debug, url)
            cycle.steps["released"]["answered ok"] = sum(o.ok for o in outcomes)
        # Closed sessions leave the server's weak set only once collected.
        await wait_for(debug, url, lambda f: f["sessions"] == 0, 30.0, collect=True)
        cycle.steps["closed"] = await figures(debug, url)
    return cycle
