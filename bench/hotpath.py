"""The server's hot path alone: initialized tools/call requests through mcp's own session code, in one process.

Run by path with a server venv's python (stock mcp or the fork, 1.x or 2.x); it imports only mcp, anyio
and the standard library, never the `bench` package:

    python bench/hotpath.py [--calls N] [--warm-up N] [--batches N] [--lockstep | --count-calls]

A low-level `Server` with one tool is run over in-memory streams (`Server.run`: on 1.x it builds a
`ServerSession`, on 2.x the `ServerRunner` behind the JSON-RPC dispatcher), the driver sends
`initialize`, `notifications/initialized`, a warm-up and then `--calls` `tools/call` requests, one at a
time, and prints one JSON line: the CPU time (`time.process_time`) of each of `--batches` batches of the
measured calls, their median per call, and the wall time. No sockets, no HTTP, no client library: what
is left is the session's work per request, where the fork's patches live. Every message is built
before the clock starts, so the driver adds little.

`--lockstep` runs one batch per line read from stdin and prints its CPU time at once, so that the
benchmark can run stock's and the fork's batches in turn, each pair a fraction of a second apart:
whatever else the machine does then weighs on both alike.

`--count-calls` counts instead of timing: the Python function calls one request makes, by function, which
no other process on the machine can disturb. Stock's and the fork's counts side by side show exactly
what the fork adds to the hot path.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import importlib.metadata
import json
import pstats
import re
import statistics
import sys
import time
from typing import Any

import anyio

from mcp.server.lowlevel import Server
from mcp.shared.message import SessionMessage

VERSION = importlib.metadata.version("mcp")
V2 = int(VERSION.split(".")[0]) >= 2
PROTOCOL_VERSION = "2025-06-18"
TOOL = "echo"
ANSWER_SECONDS = 10.0  # one answer never takes this long; a hang fails the run instead of stalling it

# The wire types moved to their own distribution in 2.x.
if V2:
    import mcp_types as types
else:
    from mcp import types

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


def build_server() -> Any:
    """A low-level server with one tool that echoes its argument: as little server work as a call can have."""
    tool = types.Tool(name=TOOL, description="Echo the text.", inputSchema=SCHEMA)
    if V2:

        async def list_tools(ctx: Any, params: Any) -> Any:
            return types.ListToolsResult(tools=[tool])

        async def call_tool(ctx: Any, params: Any) -> Any:
            return types.CallToolResult(content=[types.TextContent(type="text", text=params.arguments["text"])])

        return Server("hotpath", on_list_tools=list_tools, on_call_tool=call_tool)

    server = Server("hotpath")

    @server.list_tools()
    async def list_tools() -> list[Any]:
        return [tool]

    # jsonschema's validate() checks the schema itself on every call (about 0.7 ms here, the same on stock and
    # fork); it would drown the session's share, which is what this measures.
    @server.call_tool(validate_input=False)
    async def call_tool(name: str, arguments: dict[str, Any]) -> list[Any]:
        return [types.TextContent(type="text", text=arguments["text"])]

    return server


def message(payload: dict[str, Any]) -> Any:
    """A client message as the transports hand it to the server (1.x wraps the union in a root model)."""
    if V2:
        model = types.JSONRPCRequest if "id" in payload else types.JSONRPCNotification
        return SessionMessage(model.model_validate(payload))
    return SessionMessage(types.JSONRPCMessage.model_validate(payload))


def request(request_id: int, method: str, params: dict[str, Any]) -> Any:
    return message({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})


def answered(reply: Any, request_id: int) -> None:
    """Fail the run unless `reply` is the result of request `request_id`: a figure from errors means nothing."""
    root = reply.message if V2 else reply.message.root
    result = getattr(root, "result", None)
    if getattr(root, "id", None) != request_id or result is None or result.get("isError"):
        raise SystemExit(f"request {request_id} was not served: {root!r}")


async def drive(calls: int, warm_up: int, batches: int, lockstep: bool = False) -> dict[str, Any]:
    """Serve `calls` tools/call after `warm_up`, timed in `batches`; with `lockstep`, each batch waits for a
    line on stdin (none, at its end, stops early) and its CPU time goes to stdout at once."""
    server = build_server()
    to_server, server_reads = anyio.create_memory_object_stream[Any](16)
    server_writes, from_server = anyio.create_memory_object_stream[Any](16)
    initialize = request(
        0,
        "initialize",
        {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "hotpath", "version": "1"}},
    )
    initialized = message({"jsonrpc": "2.0", "method": "notifications/initialized"})
    per_batch = max(1, calls // batches)
    total = warm_up + per_batch * batches
    batch_cpu: list[float] = []
    requests = [
        request(i, "tools/call", {"name": TOOL, "arguments": {"text": f"call {i}"}}) for i in range(1, total + 1)
    ]

    async def call(index: int) -> None:
        await to_server.send(requests[index])
        with anyio.fail_after(ANSWER_SECONDS):
            answered(await from_server.receive(), index + 1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(server.run, server_reads, server_writes, server.create_initialization_options())
        await to_server.send(initialize)
        with anyio.fail_after(ANSWER_SECONDS):
            await from_server.receive()
        await to_server.send(initialized)
        for index in range(warm_up):
            await call(index)
        wall = time.perf_counter()
        for batch in range(batches):
            # Blocking is fine here: the server has nothing to do until the next request.
            if lockstep and not sys.stdin.readline().strip():
                break
            cpu = time.process_time()
            for index in range(warm_up + batch * per_batch, warm_up + (batch + 1) * per_batch):
                await call(index)
            batch_cpu.append(time.process_time() - cpu)
            if lockstep:
                print(json.dumps({"cpu_seconds": batch_cpu[-1], "calls": per_batch}), flush=True)
        wall = time.perf_counter() - wall
        tg.cancel_scope.cancel()
    return {
        "mcp_version": VERSION,
        "calls": per_batch * len(batch_cpu),
        "cpu_seconds": sum(batch_cpu),
        # Another process that takes the core for a moment slows one batch: the median over batches shrugs
        # that off where the total would not.
        "median_batch_cpu_per_call": statistics.median(batch_cpu) / per_batch,
        "batch_cpu_seconds": batch_cpu,
        "wall_seconds": wall,
    }


def function_name(key: tuple[str, int, str]) -> str:
    """A profiler entry's name, the same in stock and fork: the file below site-packages (or the standard
    library) and the function, without the line (a patch moves lines) or a built-in's address."""
    path, _, name = key
    path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", path)
    return f"{path}:{re.sub(r' at 0x[0-9a-f]+', '', name)}"


def calls_per_request(calls: int, warm_up: int) -> dict[str, float]:
    """Python function calls per initialized tools/call, by function: a count, so no noise at all.

    Two profiled runs of different length, the longer one's counts minus the shorter one's, so that
    start-up and the handshake cancel out; an unprofiled run first, so that no first-use work is counted.
    """
    anyio.run(drive, warm_up, 0, 1)
    counts = []
    for measured in (calls, 2 * calls):
        profile = cProfile.Profile()
        profile.enable()
        anyio.run(drive, measured, warm_up, 1)
        profile.disable()
        found: dict[str, int] = collections.Counter()
        for key, (_, count, *_) in pstats.Stats(profile).stats.items():
            found[function_name(key)] += count
        counts.append(found)
    shorter, longer = counts
    per_request = {name: (longer[name] - shorter.get(name, 0)) / calls for name in longer}
    return {name: round(count, 2) for name, count in sorted(per_request.items()) if round(count, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000, help="measured tools/call requests")
    parser.add_argument("--warm-up", type=int, default=500, help="tools/call requests before the clock starts")
    parser.add_argument("--batches", type=int, default=10, help="the measured calls are timed in this many batches")
    parser.add_argument(
        "--lockstep", action="store_true", help="run a batch per line on stdin, print each batch's CPU time"
    )
    parser.add_argument(
        "--count-calls", action="store_true", help="print the function calls per request instead of the time"
    )
    args = parser.parse_args()
    if args.count_calls:
        print(json.dumps({"mcp_version": VERSION, "calls_per_request": calls_per_request(args.calls, args.warm_up)}))
    else:
        print(json.dumps(anyio.run(drive, args.calls, args.warm_up, args.batches, args.lockstep)))


if __name__ == "__main__":
    sys.exit(main())
