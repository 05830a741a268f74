"""A Python client across a Streamable HTTP server restart: call a tool, wait for the test, call twice more.

Run by path with the python of a venv holding mcp (either line, stock or the fork), and fastmcp for `fastmcp`:

    python tests/clients/restart_python_client.py mcp|fastmcp URL TOOL ARGUMENTS_JSON

1. connect (initialize) and call TOOL; print {"ready": true, "first": {...}} on a line of its own;
2. wait for a line on stdin: the test has restarted the server on the same port;
3. call TOOL twice more and print {"calls": [...]}.

`mcp` is mcp's own client as its users run it: `ClientSession` over `streamable_http_client` on 1.x, `Client` in
legacy mode (it sends `initialize`) on 2.x. `fastmcp` is fastmcp's `Client`, which uses mcp's transport. Each call
reports ok, its time and, when it failed, the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

SECONDS = 90.0  # the whole run
CALL_SECONDS = 20.0

Call = Callable[[], Awaitable[Any]]


@contextlib.asynccontextmanager
async def mcp_client(url: str, tool: str, arguments: dict[str, Any]) -> AsyncIterator[Call]:
    if importlib.metadata.version("mcp").startswith("1."):
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as session:
            await session.initialize()
            yield lambda: session.call_tool(tool, arguments)
    else:
        from mcp import Client

        async with Client(url, mode="legacy") as client:
            yield lambda: client.call_tool(tool, arguments)


@contextlib.asynccontextmanager
async def fastmcp_client(url: str, tool: str, arguments: dict[str, Any]) -> AsyncIterator[Call]:
    from fastmcp import Client

    async with Client(url) as client:
        yield lambda: client.call_tool(tool, arguments)


async def outcome(call: Call) -> dict[str, Any]:
    started = time.monotonic()
    try:
        result = await asyncio.wait_for(call(), CALL_SECONDS)
    except Exception as error:  # what the caller sees is the point
        return {"ok": False, "ms": (time.monotonic() - started) * 1000, "error": f"{type(error).__name__}: {error}"}
    is_error = bool(getattr(result, "isError", None) or getattr(result, "is_error", None))
    return {"ok": not is_error, "ms": (time.monotonic() - started) * 1000}


async def run(kind: str, url: str, tool: str, arguments: dict[str, Any]) -> None:
    client = mcp_client if kind == "mcp" else fastmcp_client
    async with client(url, tool, arguments) as call:
        print(json.dumps({"ready": True, "first": await outcome(call)}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        calls = [await outcome(call), await outcome(call)]
        print(json.dumps({"calls": calls, "mcp_version": importlib.metadata.version("mcp")}), flush=True)


def main() -> int:
    kind, url, tool, arguments = sys.argv[1:5]
    asyncio.run(asyncio.wait_for(run(kind, url, tool, json.loads(arguments)), SECONDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
