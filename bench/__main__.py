"""Run the benchmark and print its figures: `bench/run [--json]` (see bench/__init__.py)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import measure, proxy, rolling, stats
from bench.stats import Estimate
from race import envs, process
from race.envs import Env
from race.process import HOLD_PATCH

KIB = 1024
MIB = 1024 * 1024
THROUGHPUT_GOAL = 0.98
# At a 20 ms round trip a waiting client spends two round trips before its first result, a pipelining one
# one: a little over half, for the servers' own work.
FIRST_CALL_GOAL = 0.55
FIRST_CALL_GOAL_ROUND_TRIP_MS = 20.0
HOT_PATH_GOAL = 0.99
HOT_PATH_GOAL_PRECISION = 0.01
PRECISION = 0.02  # the steady state's interval must be within +-2 %, or the run says the machine was too noisy
PARTS = ("steady", "first", "memory", "hotpath", "flood", "rolling")
# What runs unless --only says otherwise: the rolling deploy takes about 20 minutes on its own.
DEFAULT_PARTS = ("steady", "first", "memory", "hotpath", "flood")
# The parts measured on each line's pair of race servers; the rolling deploy starts its own servers.
LINE_PARTS = DEFAULT_PARTS
# Long enough that no held request times out while a cycle's requests arrive.
PATIENT_SECONDS = "60"


@dataclass(frozen=True)
class Line:
    """One upstream line of the fork: its two server venvs and the race server script."""

    name: str
    stock: Callable[[], Env]
    fork: Callable[[], Env]
    script: Path

    def patient(self, side: str) -> list[str]:
        """The server options that make the fork's hold patient for the memory cycle; stock has no such
        setting (its server script exits when given one)."""
        return ["--held-request-timeout", PATIENT_SECONDS] if side == "fork" else []


LINES = {
    "v1.x": Line("v1.x", envs.stock_env, envs.fork_env, process.SERVER_SCRIPT),
    "v2.x": Line("v2.x", envs.stock_v2_env, envs.fork_v2_env, process.SERVER_V2_SCRIPT),
}


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def steady_estimates(rates: measure.Throughput) -> tuple[Estimate, Estimate | None]:
    """fork/stock calls per second, and calls per server CPU second, each the median of the rounds' ratios.

    Each round's two servers ran back to back, so their ratio sees the same machine; the median of those
    ratios shrugs off rounds that another process slowed down.
    """
    wall = stats.median_ratio(list(zip(rates.rounds["fork"], rates.rounds["stock"], strict=True)))
    cpu_pairs = [
        (stock, fork)
        for stock, fork in zip(rates.cpu_per_call["stock"], rates.cpu_per_call["fork"], strict=True)
        if stock is not None and fork is not None
    ]
    return wall, stats.median_ratio(cpu_pairs) if cpu_pairs else None


def precise(rates: measure.Throughput) -> bool:
    wall, cpu = steady_estimates(rates)
    return wall.half_width <= PRECISION and (cpu is None or cpu.half_width <= PRECISION)


def measure_steady(args: argparse.Namespace, servers: dict[str, tuple[str, int]]) -> dict[str, Any]:
    rates = asyncio.run(
        measure.throughput(
            servers, args.sessions, args.round_seconds, args.rounds, most_rounds=args.most_rounds, settled=precise
        )
    )
    wall, cpu = steady_estimates(rates)
    known = {side: [c for c in rates.cpu_per_call[side] if c is not None] for side in servers}
    return {
        "sessions": args.sessions,
        "round_seconds": args.round_seconds,
        "rounds": rates.rounds,
        "median": {side: rates.median(side) for side in servers},
        "ratio": wall,
        "cpu_per_call_seconds": {side: statistics.median(v) if v else None for side, v in known.items()},
        # Calls a CPU second serves, fork over stock: what the throughput ratio is on a machine with nothing
        # else to run, and far steadier than it on a shared one.
        "cpu_ratio": cpu,
        "precise": precise(rates),
    }


def turns(times: dict[str, list[float]], numerator: str, denominator: str) -> list[tuple[float, float]]:
    """The two kinds' times turn by turn: the kinds took turns, so a turn saw one state of the machine."""
    return list(zip(times[numerator], times[denominator], strict=True))


def measure_first_calls(args: argparse.Namespace, urls: dict[str, str], holding: bool) -> dict[str, Any]:
    """The first result after the endpoint event, and the call after a reconnect, through the latency proxy."""
    rows = []
    reconnect: dict[str, Any] | None = None
    for round_trip_ms in args.round_trips:
        one_way = round_trip_ms / 2000
        with proxy.link(urls["stock"], one_way) as stock_url, proxy.link(urls["fork"], one_way) as fork_url:
            kinds: dict[str, tuple[str, measure.FirstCall]] = {
                "stock, waiting": (stock_url, measure.waiting_first_call),
                "fork, waiting": (fork_url, measure.waiting_first_call),
            }
            if holding:
                kinds["fork, pipelining"] = (fork_url, measure.pipelined_first_call)
            times = asyncio.run(measure.first_calls(kinds, args.samples, args.first_call_seconds))
            rows.append(
                {
                    "round_trip_ms": round_trip_ms,
                    "samples": min(len(values) for values in times.values()),
                    "median_seconds": {name: statistics.median(values) for name, values in times.items()},
                    "ratio": stats.ratio_of_medians(turns(times, "fork, pipelining", "stock, waiting"))
                    if holding
                    else None,
                    "waiting_ratio": stats.ratio_of_medians(turns(times, "fork, waiting", "stock, waiting")),
                    "times": times,
                }
            )
            if round_trip_ms == args.reconnect_round_trip:
                found = asyncio.run(
                    measure.reconnects(
                        {"stock": stock_url, "fork": fork_url}, args.reconnect_samples, args.reconnect_seconds
                    )
                )
                reconnect = {
                    "round_trip_ms": round_trip_ms,
                    **{
                        side: {
                            "samples": len(calls),
                            "median_seconds": statistics.median(c.seconds for c in calls),
                            "answers": dict(collections.Counter(c.answer for c in calls)),
                        }
                        for side, calls in found.items()
                    },
                }
    return {"rows": rows, "reconnect": reconnect}


def measure_servers(args: argparse.Namespace, line: Line) -> dict[str, Any]:
    """Steady state and first calls, both servers up side by side with default settings."""
    found: dict[str, Any] = {}
    with (
        process.running(line.stock(), script=line.script) as stock,
        process.running(line.fork(), script=line.script) as fork,
    ):
        found["features"] = {"stock": stock.debug()["features"], "fork": fork.debug()["features"]}
        if "steady" in args.only:
            servers = {"stock": (stock.url, stock.process.pid), "fork": (fork.url, fork.process.pid)}
            progress(f"{line.name}: steady state")
            found["steady"] = measure_steady(args, servers)
        if "first" in args.only:
            progress(f"{line.name}: first calls through the latency proxy")
            holding = found["features"]["fork"]["hold_settings"]
            found["first_call"] = measure_first_calls(args, {"stock": stock.url, "fork": fork.url}, holding)
    return found


def measure_memory(args: argparse.Namespace, line: Line, holding: bool) -> dict[str, Any]:
    """A warm-up cycle, the measured one and the same again, on a fresh server of each side (the fork's if it holds).

    The repeat shows whether what a cycle leaves behind is kept by the allocator for reuse (the next
    cycle fits in it) or leaked (it adds up).
    """
    found: dict[str, Any] = {"fork": None, "per_request_ratio": None, "after_release_ratio": None}
    sides = [("stock", line.stock())] + ([("fork", line.fork())] if holding else [])
    for side, env in sides:
        with process.running(env, *line.patient(side), script=line.script) as server:
            asyncio.run(measure.memory_cycle(server.url, 2, args.per_session, args.payload))
            cycle = asyncio.run(measure.memory_cycle(server.url, args.memory_sessions, args.per_session, args.payload))
            repeat = asyncio.run(measure.memory_cycle(server.url, args.memory_sessions, args.per_session, args.payload))
        found[side] = {
            "sessions": args.memory_sessions,
            "requests": cycle.requests,
            "payload_bytes": cycle.payload_bytes,
            "per_request_bytes": cycle.growth("holding", "opened") / cycle.requests,
            "after_release_bytes": cycle.growth("released", "opened"),
            "kept_after_release": cycle.steps["released"]["held"] + cycle.steps["released"]["in_flight"],
            "answered_ok": cycle.steps["released"]["answered ok"],
            "after_close_bytes": cycle.growth("closed", "before"),
            "repeat_growth_bytes": repeat.steps["closed"]["rss"] - cycle.steps["closed"]["rss"],
            "steps": cycle.steps,
            "repeat_steps": repeat.steps,
        }
    if holding:
        stock, fork = found["stock"], found["fork"]
        found["per_request_ratio"] = ratio(fork["per_request_bytes"], stock["per_request_bytes"])
        found["after_release_ratio"] = ratio(fork["after_release_bytes"], stock["after_release_bytes"])
    return found


def measure_flood(args: argparse.Namespace, line: Line) -> dict[str, Any]:
    """The same flood of large premature requests on a fresh server of each side (the fork patient, so
    nothing it holds times out during the flood): each one's peak memory, and the fork's over stock's."""
    found: dict[str, Any] = {}
    for side, env in (("stock", line.stock()), ("fork", line.fork())):
        with process.running(env, *line.patient(side), script=line.script) as server:
            result = asyncio.run(
                measure.flood(
                    server.url, server.process.pid, args.flood_sessions, args.flood_per_session, args.flood_payload
                )
            )
        found[side] = {
            "sessions": args.flood_sessions,
            "requests": result.requests,
            "payload_bytes": result.payload_bytes,
            "peak_growth_bytes": result.peak_growth_bytes,
            "refused": result.refused,
            "held": result.held,
        }
    found["peak_ratio"] = ratio(found["fork"]["peak_growth_bytes"], found["stock"]["peak_growth_bytes"])
    return found


def measure_hot_path(args: argparse.Namespace, line: Line) -> dict[str, Any]:
    pythons = {"stock": line.stock().python, "fork": line.fork().python}

    def ratio(rounds: list[list[tuple[float, float]]]) -> Estimate:
        # Requests per CPU second, fork over stock: stock's CPU per call over the fork's, batch by batch.
        return stats.nested_median_ratio(rounds)

    rounds = measure.hot_path(
        pythons,
        args.hot_path_calls,
        args.hot_path_batches,
        args.hot_path_rounds,
        most_rounds=args.hot_path_most_rounds,
        # Narrow enough to tell 0.99 from 1.
        settled=lambda found: ratio(found).half_width <= HOT_PATH_GOAL_PRECISION,
    )
    estimate = ratio(rounds)
    counts = measure.calls_per_request(pythons, 2000)
    names = sorted(set(counts["stock"]) | set(counts["fork"]))
    added = {name: counts["fork"].get(name, 0) - counts["stock"].get(name, 0) for name in names}
    return {
        "calls": args.hot_path_calls,
        "batches": args.hot_path_batches,
        "rounds": len(rounds),
        "cpu_per_call_seconds": {
            side: statistics.median(turn[index] for found in rounds for turn in found)
            for index, side in enumerate(pythons)
        },
        "turns": rounds,
        "ratio": estimate,
        "precise": estimate.half_width <= HOT_PATH_GOAL_PRECISION,
        "function_calls_per_request": {side: sum(found.values()) for side, found in counts.items()},
        # What the fork calls more (or less) often per request, by function: exact, whatever the load.
        "fork_adds": {name: round(more, 2) for name, more in added.items() if abs(more) >= 0.01},
    }


def progress(what: str) -> None:
    print(f"bench: {what} ({time.monotonic() - STARTED:.0f} s so far)", file=sys.stderr, flush=True)


STARTED = time.monotonic()


# The report.


def show(estimate: Estimate | None, goal: float | None = None, at_least: bool = True) -> str:
    if estimate is None:
        return "n/a"
    text = estimate.show()
    return f"{text}   goal {stats.verdict(estimate, goal, at_least)}" if goal is not None else text


def steady_lines(rate: dict[str, Any]) -> list[str]:
    rounds = len(rate["rounds"]["stock"])
    lines = [
        f"steady state over loopback, tools/call on {rate['sessions']} initialized sessions "
        f"({rounds} rounds of {rate['round_seconds']:g} s per server, in ABBA order)",
        f"  stock {rate['median']['stock']:.0f}/s, fork {rate['median']['fork']:.0f}/s",
        f"  fork/stock {show(rate['ratio'], THROUGHPUT_GOAL)}",
    ]
    cpu = rate["cpu_per_call_seconds"]
    if rate["cpu_ratio"] is None:
        lines.append("  server CPU per call: n/a (no /proc here)")
    else:
        lines += [
            f"  server CPU per call: stock {cpu['stock'] * 1000:.2f} ms, fork {cpu['fork'] * 1000:.2f} ms",
            f"  calls per server CPU second fork/stock {show(rate['cpu_ratio'], THROUGHPUT_GOAL)}",
        ]
    lines.append(
        f"  intervals within +-{PRECISION:.0%}"
        if rate["precise"]
        else f"  the machine was too noisy: an interval is wider than +-{PRECISION:.0%} after {rounds} rounds"
    )
    return lines


def first_call_lines(first: dict[str, Any]) -> list[str]:
    rows = first["rows"]
    lines = [
        "first tools/call result after the endpoint event, through the latency proxy "
        f"(median of {min(r['samples'] for r in rows)} or more fresh sessions per kind and round trip)",
        "  a waiting client sends initialized and tools/call once initialize is answered; a pipelining one "
        "sends all three at once",
        f"  {'round trip':>10}  {'stock waiting':>13}  {'fork waiting':>12}  {'fork pipelining':>15}  "
        "pipelining fork / waiting stock   waiting fork / waiting stock",
    ]
    for row in rows:
        ms = {name: value * 1000 for name, value in row["median_seconds"].items()}
        goal = FIRST_CALL_GOAL if row["round_trip_ms"] == FIRST_CALL_GOAL_ROUND_TRIP_MS else None
        pipelining = f"{ms['fork, pipelining']:.1f} ms" if "fork, pipelining" in ms else "n/a"
        lines.append(
            f"  {row['round_trip_ms']:>7g} ms  {ms['stock, waiting']:>10.1f} ms  {ms['fork, waiting']:>9.1f} ms  "
            f"{pipelining:>15}  {show(row['ratio']):<31}   {show(row['waiting_ratio'])}"
        )
        if goal is not None:
            lines.append(
                f"  {'':>10}  at {row['round_trip_ms']:g} ms, pipelining fork / waiting stock goal "
                f"{stats.verdict(row['ratio'], goal, at_least=False)}"
            )
    reconnect = first["reconnect"]
    if reconnect is not None:
        lines += [
            "",
            f"the call after an SSE reconnect, {reconnect['round_trip_ms']:g} ms round trip: a new event stream, "
            "then tools/call with MCP-Protocol-Version and no initialize",
        ]
        for side in ("stock", "fork"):
            found = reconnect[side]
            answers = ", ".join(f"{answer} x {count}" for answer, count in found["answers"].items())
            lines.append(f"  {side}: {answers}; answered after {found['median_seconds'] * 1000:.1f} ms (median)")
    return lines


def hot_path_lines(hot: dict[str, Any]) -> list[str]:
    cpu, calls = hot["cpu_per_call_seconds"], hot["function_calls_per_request"]
    return [
        f"hot path in one process: {hot['calls']} initialized tools/call through Server.run over in-memory "
        f"streams; {hot['rounds']} pairs of runs, stock's and the fork's {hot['batches']} batches taking turns",
        f"  CPU per request: stock {cpu['stock'] * 1e6:.1f} us, fork {cpu['fork'] * 1e6:.1f} us",
        f"  requests per CPU second fork/stock {show(hot['ratio'], HOT_PATH_GOAL)}",
        f"  interval within +-{HOT_PATH_GOAL_PRECISION:.0%}"
        if hot["precise"]
        else f"  the machine was too noisy: the interval is wider than +-{HOT_PATH_GOAL_PRECISION:.0%} "
        f"after {hot['rounds']} pairs of runs",
        f"  Python function calls per request (counted, no noise): stock {calls['stock']:.1f}, "
        f"fork {calls['fork']:.1f}; the fork's differences:",
        *(f"    {more:+.2f} {name}" for name, more in hot["fork_adds"].items()),
    ]


def memory_lines(memory: dict[str, Any]) -> list[str]:
    stock, fork = memory["stock"], memory["fork"]
    lines = [
        f"requests before initialize: {stock['requests']} tools/call ({stock['payload_bytes']} B argument each) "
        f"in {stock['sessions']} sessions, then initialize; resident memory after the server's gc.collect() "
        "(one cycle: no interval)",
        f"  stock, per request while the session waits: {stock['per_request_bytes'] / KIB:.1f} KiB "
        f"(answered -32602 at once)",
        f"  stock, after initialize (sessions open): {stock['after_release_bytes'] / MIB:.1f} MiB, "
        f"{stock['kept_after_release']} requests kept",
        f"  stock, after the sessions closed: {stock['after_close_bytes'] / MIB:.1f} MiB over before they opened; "
        f"{stock['repeat_growth_bytes'] / MIB:+.1f} MiB after the same cycle again",
    ]
    if fork is None:
        return [*lines, f"  fork: n/a (this build of the fork lacks {HOLD_PATCH})"]
    return [
        *lines,
        f"  fork, per request while held: {fork['per_request_bytes'] / KIB:.1f} KiB "
        f"({memory['per_request_ratio']:.2f} of stock's)",
        f"  fork, after initialize served them (sessions open): {fork['after_release_bytes'] / MIB:.1f} MiB, "
        f"{fork['kept_after_release']} requests kept, {fork['answered_ok']} served",
        f"  fork, after the sessions closed: {fork['after_close_bytes'] / MIB:.1f} MiB over before they opened; "
        f"{fork['repeat_growth_bytes'] / MIB:+.1f} MiB after the same cycle again",
        "  (the allocator need not return to the system what it freed)",
    ]


def flood_lines(flood: dict[str, Any]) -> list[str]:
    stock, fork = flood["stock"], flood["fork"]
    posted = stock["requests"] * stock["payload_bytes"] / MIB

    def refused(side: dict[str, Any]) -> str:
        return ", ".join(f"{count} {reason}" for reason, count in sorted(side["refused"].items())) or "none"

    return [
        f"flood: {stock['requests']} tools/call ({stock['payload_bytes'] // KIB} KiB argument each, {posted:.0f} MiB "
        f"in all) before initialize in {stock['sessions']} sessions that never initialize; the server's peak "
        "resident memory (VmHWM) over its resident memory before the flood (one run: no interval)",
        f"  stock: +{stock['peak_growth_bytes'] / MIB:.1f} MiB; answered at once: {refused(stock)}",
        f"  fork:  +{fork['peak_growth_bytes'] / MIB:.1f} MiB ({flood['peak_ratio']:.2f} of stock's); held "
        f"{fork['held']}, answered at once: {refused(fork)}",
    ]


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['cores']} cores, {figures['seconds']:.0f} s; load average (1 min) at start "
        f"{figures['load'][0]:.1f}, at end {figures['load'][1]:.1f}",
        "a ratio is printed as value [95 % interval], bootstrapped over the rounds or sessions; a goal is met "
        "or missed only when the whole interval lies on one side of it",
    ]
    for name, found in figures["lines"].items():
        features = found["features"]
        lines += [
            "",
            f"== {name}: stock mcp {features['stock']['mcp_version']} vs fork {features['fork']['mcp_version']}, "
            "the race server (380 tools) over SSE on 127.0.0.1 ==",
        ]
        for part, describe in (
            ("steady", steady_lines),
            ("first_call", first_call_lines),
            ("hot_path", hot_path_lines),
            ("memory", memory_lines),
            ("flood", flood_lines),
        ):
            if part in found:
                lines += ["", *describe(found[part])]
    if "rolling" in figures:
        lines += ["", "== rolling deploy, both lines ==", "", *rolling.report_lines(figures["rolling"])]
    return "\n".join(lines)


def numbers(text: str, kind: type = float) -> list[Any]:
    return [kind(item) for item in text.split(",") if item]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=lambda t: t.split(","), default=list(LINES), help="v1.x,v2.x (default both)")
    parser.add_argument(
        "--only",
        type=lambda t: t.split(","),
        default=list(DEFAULT_PARTS),
        help=f"of {','.join(PARTS)} (default: all but rolling)",
    )
    parser.add_argument("--sessions", type=int, default=8, help="initialized sessions for the steady state")
    parser.add_argument("--round-seconds", type=float, default=2.0, help="length of a steady-state round")
    parser.add_argument("--rounds", type=int, default=10, help="steady-state rounds per server, at least")
    parser.add_argument(
        "--most-rounds",
        type=int,
        default=30,
        help=f"steady-state rounds, at most, until within +-{PRECISION * 100:g} %%",
    )
    parser.add_argument(
        "--round-trips", type=numbers, default=[0.0, 20.0, 50.0], help="the proxy's round trips in ms (0,20,50)"
    )
    parser.add_argument("--samples", type=int, default=40, help="fresh sessions per first-call kind, at most")
    parser.add_argument("--first-call-seconds", type=float, default=40.0, help="time for them, per round trip")
    parser.add_argument("--reconnect-round-trip", type=float, default=20.0, help="round trip of the reconnect row")
    parser.add_argument("--reconnect-samples", type=int, default=5, help="reconnected sessions per server, at most")
    parser.add_argument("--reconnect-seconds", type=float, default=15.0, help="time for them")
    parser.add_argument("--hot-path-calls", type=int, default=10_000, help="tools/call per hot-path run")
    parser.add_argument("--hot-path-batches", type=int, default=50, help="hot-path batches per run, taking turns")
    parser.add_argument("--hot-path-rounds", type=int, default=6, help="hot-path runs per side, at least")
    parser.add_argument(
        "--hot-path-most-rounds",
        type=int,
        default=10,
        help=f"hot-path runs per side, at most, until within +-{HOT_PATH_GOAL_PRECISION * 100:g} %%",
    )
    parser.add_argument("--memory-sessions", type=int, default=16, help="sessions of the memory cycle")
    parser.add_argument("--per-session", type=int, default=32, help="requests before initialize per session")
    parser.add_argument("--payload", type=int, default=1024, help="bytes of each such request's argument")
    parser.add_argument("--flood-sessions", type=int, default=64, help="sessions of the flood")
    parser.add_argument("--flood-per-session", type=int, default=32, help="requests before initialize per session")
    parser.add_argument("--flood-payload", type=int, default=128 * KIB, help="bytes of each flood request's argument")
    parser.add_argument("--clients", type=int, default=32, help="rolling deploy: TypeScript SDK clients per run")
    parser.add_argument("--duration", type=float, default=40.0, help="rolling deploy: seconds of calls per run")
    parser.add_argument(
        "--graceful-shutdown-timeout",
        type=float,
        default=rolling.GRACEFUL_SHUTDOWN_SECONDS,
        help="rolling deploy: the replicas' uvicorn wait for open connections after SIGTERM, in seconds",
    )
    parser.add_argument("--json", action="store_true", help="print every figure as JSON instead of the table")
    args = parser.parse_args(argv)
    unknown = set(args.lines) - set(LINES) or set(args.only) - set(PARTS)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    load = os.getloadavg()[0]
    figures: dict[str, Any] = {"cores": os.cpu_count(), "lines": {}}
    for name in args.lines if set(args.only) & set(LINE_PARTS) else []:
        line = LINES[name]
        found = figures["lines"][name] = measure_servers(args, line)
        if "hotpath" in args.only:
            progress(f"{name}: hot path")
            found["hot_path"] = measure_hot_path(args, line)
        if "memory" in args.only:
            progress(f"{name}: memory")
            found["memory"] = measure_memory(args, line, holding=found["features"]["fork"]["hold_settings"])
        if "flood" in args.only:
            progress(f"{name}: flood")
            found["flood"] = measure_flood(args, line)
    if "rolling" in args.only:
        figures["rolling"] = rolling.measure(
            [target for target in rolling.TARGETS if target.line in args.lines],
            list(rolling.TRANSPORTS),
            clients=args.clients,
            duration=args.duration,
            graceful_seconds=args.graceful_shutdown_timeout,
            progress=progress,
        )
    figures["seconds"] = time.monotonic() - STARTED
    figures["load"] = [load, os.getloadavg()[0]]
    print(json.dumps(figures, indent=2, default=Estimate.as_dict) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
