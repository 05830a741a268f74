"""Run the benchmark and print its figures: `bench/run [--json]` (see bench/__init__.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

from bench import measure
from race import envs, process

KIB = 1024
MIB = 1024 * 1024
THROUGHPUT_GOAL = 0.98
FIRST_CALL_GOAL = 0.8
# Long enough that no held request times out while a cycle's requests arrive.
PATIENT = {"FASTMCP_PENDING_REQUEST_TIMEOUT": "60"}


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def median_known(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def measure_speed(args: argparse.Namespace) -> dict[str, Any]:
    """Throughput and first call, both servers up side by side with default settings."""
    stock_env, fork_env = envs.stock_env(), envs.fork_env()
    with process.running(stock_env) as stock, process.running(fork_env) as fork:
        features = {"stock": stock.debug()["features"], "fork": fork.debug()["features"]}
        servers = {"stock": (stock.url, stock.process.pid), "fork": (fork.url, fork.process.pid)}
        rates = asyncio.run(measure.throughput(servers, args.sessions, args.round_seconds, args.rounds))
        kinds: dict[str, tuple[str, measure.FirstCall]] = {
            "stock, waiting": (stock.url, measure.waiting_first_call),
            "fork, waiting": (fork.url, measure.waiting_first_call),
        }
        holding = features["fork"]["pending_settings"]
        if holding:
            kinds["fork, pipelined"] = (fork.url, measure.pipelined_first_call)
        times = asyncio.run(measure.first_calls(kinds, args.samples, args.first_call_seconds))
    throughput = {side: rates.median(side) for side in servers}
    cpu = {side: median_known(rates.cpu_per_call[side]) for side in servers}
    first = {name: statistics.median(values) for name, values in times.items()}
    return {
        "features": features,
        "throughput": {
            "sessions": args.sessions,
            "round_seconds": args.round_seconds,
            "rounds": rates.rounds,
            "median": throughput,
            # Each round's two servers ran back to back, so their ratio sees the same machine; the median
            # of those ratios shrugs off rounds that another process slowed down.
            "ratio": statistics.median(
                ratio(f, s) for f, s in zip(rates.rounds["fork"], rates.rounds["stock"], strict=True)
            ),
            "ratio_of_medians": ratio(throughput["fork"], throughput["stock"]),
            "cpu_per_call_seconds": cpu,
            # Calls a CPU second serves, fork over stock: what the throughput ratio is on a machine with
            # nothing else to run, and far steadier than it on a shared one.
            "cpu_ratio": ratio(cpu["stock"], cpu["fork"]) if cpu["stock"] and cpu["fork"] else None,
        },
        "first_call": {
            "samples": min(len(values) for values in times.values()),
            "median_seconds": first,
            "ratio": ratio(first["fork, pipelined"], first["stock, waiting"]) if holding else None,
            "waiting_ratio": ratio(first["fork, waiting"], first["stock, waiting"]),
        },
    }


def measure_memory(args: argparse.Namespace, holding: bool) -> dict[str, Any]:
    """A warm-up cycle, the measured one and the same again, on a fresh server of each side (the fork's if it holds).

    The repeat shows whether what a cycle leaves behind is kept by the allocator for reuse (the next
    cycle fits in it) or leaked (it adds up).
    """
    found: dict[str, Any] = {"fork": None, "per_request_ratio": None, "after_release_ratio": None}
    sides = [("stock", envs.stock_env())] + ([("fork", envs.fork_env())] if holding else [])
    for side, env in sides:
        with process.running(env, environ=PATIENT) as server:
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


def cpu_line(rate: dict[str, Any]) -> str:
    cpu = rate["cpu_per_call_seconds"]
    if rate["cpu_ratio"] is None:
        return "  server CPU per call: n/a (no /proc here)"
    return (
        f"  server CPU per call: stock {cpu['stock'] * 1000:.2f} ms, fork {cpu['fork'] * 1000:.2f} ms; "
        f"calls per CPU second fork/stock {rate['cpu_ratio']:.3f}   "
        f"goal {verdict(rate['cpu_ratio'], THROUGHPUT_GOAL, at_least=True)}"
    )


def verdict(value: float | None, goal: float, at_least: bool) -> str:
    if value is None:
        return "n/a"
    met = value >= goal if at_least else value <= goal
    return f"{'>=' if at_least else '<='} {goal:.2f}: {'met' if met else 'MISSED'}"


def report(figures: dict[str, Any]) -> str:
    speed, memory = figures["speed"], figures["memory"]
    features = speed["features"]
    rate, first = speed["throughput"], speed["first_call"]
    ms = {name: value * 1000 for name, value in first["median_seconds"].items()}
    lines = [
        f"stock mcp {features['stock']['mcp_version']} vs fork {features['fork']['mcp_version']}: the race server "
        f"(380 tools) over SSE on 127.0.0.1, {os.cpu_count()} cores, {figures['seconds']:.0f} s",
        f"load average (1 min) at start {figures['load'][0]:.1f}, at end {figures['load'][1]:.1f}: "
        "the figures mean something on a quiet machine only",
        "",
        f"steady state, tools/call on {rate['sessions']} initialized sessions "
        f"(median of {len(rate['rounds']['stock'])} rounds of {rate['round_seconds']:g} s each)",
        f"  stock {rate['median']['stock']:.0f}/s, fork {rate['median']['fork']:.0f}/s",
        f"  fork/stock {rate['ratio']:.3f} (median of the rounds' ratios; "
        f"ratio of the medians {rate['ratio_of_medians']:.3f})   "
        f"goal {verdict(rate['ratio'], THROUGHPUT_GOAL, at_least=True)}",
        f"  rounds: stock {', '.join(f'{r:.0f}' for r in rate['rounds']['stock'])}; "
        f"fork {', '.join(f'{r:.0f}' for r in rate['rounds']['fork'])}",
        cpu_line(rate),
        "",
        f"first tools/call result after the endpoint event (median of {first['samples']} fresh sessions each)",
        f"  stock, client waiting for each answer: {ms['stock, waiting']:.2f} ms",
        f"  fork, client waiting for each answer:  {ms['fork, waiting']:.2f} ms "
        f"({first['waiting_ratio']:.2f} of stock)",
    ]
    if first["ratio"] is None:
        lines.append("  fork, pipelining client: n/a (this build of the fork lacks patch 0002)")
    else:
        lines += [
            f"  fork, pipelining client:               {ms['fork, pipelined']:.2f} ms",
            f"  fork pipelined / stock waiting {first['ratio']:.3f}   "
            f"goal {verdict(first['ratio'], FIRST_CALL_GOAL, at_least=False)}",
        ]
    stock, fork = memory["stock"], memory["fork"]
    lines += [
        "",
        f"requests before initialize: {stock['requests']} tools/call ({stock['payload_bytes']} B argument each) "
        f"in {stock['sessions']} sessions, then initialize; resident memory after the server's gc.collect()",
        f"  stock, per request while the session waits: {stock['per_request_bytes'] / KIB:.1f} KiB "
        f"(answered -32602 at once, and kept)",
        f"  stock, after initialize (sessions open): {stock['after_release_bytes'] / MIB:.1f} MiB, "
        f"{stock['kept_after_release']} requests kept",
        f"  stock, after the sessions closed: {stock['after_close_bytes'] / MIB:.1f} MiB over before they opened; "
        f"{stock['repeat_growth_bytes'] / MIB:+.1f} MiB after the same cycle again",
    ]
    if fork is None:
        lines.append("  fork: n/a (this build of the fork lacks patch 0002)")
    else:
        lines += [
            f"  fork, per request while held: {fork['per_request_bytes'] / KIB:.1f} KiB "
            f"({memory['per_request_ratio']:.2f} of stock's)",
            f"  fork, after initialize served them (sessions open): {fork['after_release_bytes'] / MIB:.1f} MiB, "
            f"{fork['kept_after_release']} requests kept, {fork['answered_ok']} served",
            f"  fork, after the sessions closed: {fork['after_close_bytes'] / MIB:.1f} MiB over before they opened; "
            f"{fork['repeat_growth_bytes'] / MIB:+.1f} MiB after the same cycle again",
            "  (the allocator need not return to the system what it freed)",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8, help="initialized sessions for the throughput")
    parser.add_argument("--round-seconds", type=float, default=2.0, help="length of a throughput round")
    parser.add_argument("--rounds", type=int, default=10, help="throughput rounds per server")
    parser.add_argument("--samples", type=int, default=60, help="fresh sessions per first-call kind, at most")
    parser.add_argument("--first-call-seconds", type=float, default=45.0, help="time for the first-call samples")
    parser.add_argument("--memory-sessions", type=int, default=16, help="sessions of the memory cycle")
    parser.add_argument("--per-session", type=int, default=32, help="requests before initialize per session")
    parser.add_argument("--payload", type=int, default=1024, help="bytes of each such request's argument")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON instead of the table")
    args = parser.parse_args(argv)
    started, load = time.monotonic(), os.getloadavg()[0]
    print("bench: throughput and first call, stock and fork side by side", file=sys.stderr, flush=True)
    speed = measure_speed(args)
    print(f"bench: memory ({time.monotonic() - started:.0f} s so far)", file=sys.stderr, flush=True)
    figures: dict[str, Any] = {
        "speed": speed,
        "memory": measure_memory(args, holding=speed["features"]["fork"]["pending_settings"]),
    }
    figures["seconds"] = time.monotonic() - started
    figures["load"] = [load, os.getloadavg()[0]]
    print(json.dumps(figures, indent=2) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
