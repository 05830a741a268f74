"""Stock mcp and the fork side by side under racing SSE clients: `scripts/demo [--sessions N] [--line v2.x]`.

Builds (or reuses) both server environments, starts the 380-tool server in each, drives both with
the same clients and prints one table. Runs in a few minutes on two cores. `--line v2.x` compares
stock mcp 2.3.0 with the fork's v2.x line (race/server_v2.py) instead of the v1.x pair.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from race import clients, envs, process, report, restart, shutdown
from race.clients import Deadline
from race.report import Side
from race.scenarios import Result, Scenario, run_async

SAMPLE_PERIOD = 0.2


def demo_scenarios(sessions: int, concurrency: int) -> list[Scenario]:
    few = max(2, sessions // 100)
    return [
        Scenario("compliant", clients.compliant, "fresh", sessions, concurrency),
        Scenario("compliant", clients.compliant, "pool", sessions, concurrency),
        Scenario("pipelined", clients.pipelined, "fresh", sessions, concurrency),
        Scenario("pipelined", clients.pipelined, "pool", sessions, concurrency),
        Scenario("tools/call first", clients.tools_call_first, "fresh", sessions // 4, concurrency),
        Scenario("tools/call first", clients.tools_call_first, "pool", sessions // 4, concurrency),
        Scenario("never initializing", clients.never_initializing, "pool", few * 4, concurrency, handshake_free=True),
        Scenario("initialized, never initialize", clients.initialized_only, "pool", few * 4, concurrency, True),
        # It did its handshake on the session it lost; it sends the version it negotiated instead.
        Scenario("reconnecting client", clients.reconnecting, "pool", few * 4, concurrency),
        # Floods one at a time: each is already 100 concurrent POSTs.
        Scenario("flood of 100, then initialize", clients.flood(100, then_initialize=True), "pool", few, 1),
        Scenario("flood of 100, never initialize", clients.flood(100, False), "pool", few, 1, True),
    ]


class Progress:
    """One line on stderr, rewritten in place on a terminal, once per scenario otherwise."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()

    def start(self, side: str, scenario: Scenario) -> None:
        self.side, self.scenario, self.done, self.started = side, scenario, 0, time.monotonic()
        if self.live:
            self.show()

    def advance(self, sessions: int) -> None:
        self.done += sessions
        if self.live or self.done == self.scenario.sessions:
            self.show()

    def show(self) -> None:
        elapsed = time.monotonic() - self.started
        text = f"[{self.side}] {self.scenario.label}: {self.done}/{self.scenario.sessions} sessions, {elapsed:.0f} s"
        print(f"\r\033[K{text}" if self.live else text, end="" if self.live else "\n", file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.live:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


async def measured(url: str, scenario: Scenario, progress: Progress, seconds: float) -> tuple[Result, dict[str, int]]:
    """Run a scenario while sampling the server's memory and held requests."""
    peaks = {"rss": 0, "held": 0, "in_flight": 0}

    async def sample() -> None:
        async with httpx.AsyncClient(timeout=10.0) as http:
            while True:
                figures = (await http.get(f"{url}/debug")).json()
                peaks.update({key: max(value, figures[key]) for key, value in peaks.items()})
                await asyncio.sleep(SAMPLE_PERIOD)  # a sampling period, not a synchronization

    sampler = asyncio.create_task(sample())
    try:
        result = await run_async(url, scenario, Deadline(seconds), progress=progress.advance)
    finally:
        sampler.cancel()
    return result, peaks


def run_side(
    env: envs.Env, scenarios: list[Scenario], progress: Progress, seconds: float, script: Path = process.SERVER_SCRIPT
) -> Side:
    with process.running(env, script=script) as server:
        start = server.debug()
        side = Side(env.name, start["features"]["mcp_version"], start=start)
        for scenario in scenarios:
            progress.start(env.name, scenario)
            result, peaks = asyncio.run(measured(server.url, scenario, progress, seconds))
            side.results.append(result)
            side.peaks.append(peaks)
        side.end = server.wait_until_idle()
        side.end.update(count_runs_without_initialize(server.executions(), side.results))
    return side


def count_runs_without_initialize(executions: list[dict[str, Any]], results: list[Result]) -> dict[str, int]:
    """Tool runs in sessions that had not received initialize, told apart by who asked: a client that
    never did a handshake (`never_initialized`: must be 0); a reconnecting client, which did it on the
    session it lost and had its new session resumed (`resumed`); or a client whose `initialize` was
    still to come (`before_initialize`: stock runs them once a notification that overtook
    `initialize` opened the session)."""
    forbidden = {t for r in results if r.scenario.handshake_free for t in r.trace_ids()}
    reconnecting = {t for r in results if r.scenario.flow is clients.reconnecting for t in r.trace_ids()}
    unshaken = [e["trace_id"] for e in executions if not e["handshake"] and e["trace_id"] not in forbidden]
    return {
        "never_initialized": sum(1 for e in executions if e["trace_id"] in forbidden),
        "resumed": sum(1 for trace_id in unshaken if trace_id in reconnecting),
        "before_initialize": sum(1 for trace_id in unshaken if trace_id not in reconnecting),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200, help="sessions per compliant/pipelined scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="sessions open at a time")
    parser.add_argument("--scenario-seconds", type=float, default=120.0, help="deadline of each scenario")
    parser.add_argument("--line", choices=["v1.x", "v2.x"], default="v1.x", help="which line of the fork to compare")
    args = parser.parse_args(argv)
    scenarios = demo_scenarios(args.sessions, args.concurrency)
    progress = Progress()
    started = time.monotonic()
    if args.line == "v1.x":
        pair, script = (envs.stock_env(), envs.fork_env()), process.SERVER_SCRIPT
    else:
        pair, script = (envs.stock_v2_env(), envs.fork_v2_env()), process.SERVER_V2_SCRIPT
    sides = [run_side(env, scenarios, progress, args.scenario_seconds, script) for env in pair]
    progress.clear()
    print(report.table(sides))
    # Its own server per side: this row restarts it.
    outcomes = [restart.across_restart(env, script) for env in pair]
    print("\na client across a restart, Streamable HTTP (it keeps its session ID, as the TypeScript SDK's does)")
    print(report.row("  the call before the restart", [o[0] for o in outcomes]))
    for index in range(restart.CALLS_AFTER):
        print(report.row(f"  call {index + 1} after it", [o[1 + index] for o in outcomes]))
    # One server per side and transport; SIGTERM ends it.
    carried = {(env.name, t): shutdown.at_sigterm(env, t, script)[0] for env in pair for t in ("sse", "http")}
    print("\na 2 s call in flight when the server is sent SIGTERM (what each stream carried until it ended)")
    for transport, stream, label in (
        ("sse", "session", "  SSE, the session's stream"),
        ("http", "call", "  Streamable HTTP, the call's stream"),
        ("http", "GET", "  Streamable HTTP, the GET stream"),
    ):
        summaries = [carried[env.name, transport][stream].summary(stream != "GET") for env in pair]
        print(report.row(label, summaries))
    print(f"\n{time.monotonic() - started:.0f} s; servers on 127.0.0.1, 380 tools, tools/list about 500 kB.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
