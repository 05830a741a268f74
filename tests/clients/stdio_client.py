"""A desktop-style stdio client: start a local MCP server command, initialize, list every tool, call one,
print what happened as JSON.

Run by path with the python of a venv holding some release of `mcp` 1.x:

    python tests/clients/stdio_client.py COMMAND_JSON TOOL ARGUMENTS_JSON

COMMAND_JSON is the command line as a JSON list, e.g. mcp-remote bridging to a remote server: the
way desktop clients that speak only stdio reach one. `connect_seconds` runs from starting the
command to the answer of `initialize`, which for a bridge includes its own connection to the remote
server. The command's stderr passes through to this script's.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import sys
import time
from typing import Any

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

# The client's own deadline for the whole session: a server that held a request for longer fails the run.
SECONDS = 30.0
MAX_PAGES = 100


async def report(command: list[str], tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    server = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    started = time.monotonic()
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        initialized = await session.initialize()
        connected = time.monotonic() - started
        names: list[str] = []
        listing = await session.list_tools()
        names += [t.name for t in listing.tools]
        for _ in range(MAX_PAGES):
            if listing.nextCursor is None:
                break
            listing = await session.list_tools(params=types.PaginatedRequestParams(cursor=listing.nextCursor))
            names += [t.name for t in listing.tools]
        called = await session.call_tool(tool, arguments)
    return {
        "client": f"mcp {importlib.metadata.version('mcp')} stdio",
        "connect_seconds": round(connected, 3),
        "protocol_version": initialized.protocolVersion,
        "server": initialized.serverInfo.name,
        "tools": len(names),
        "distinct_tools": len(set(names)),
        "call_is_error": called.isError,
        "call_result": called.structuredContent,
    }


def main() -> int:
    command, tool, arguments = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    print(json.dumps(asyncio.run(asyncio.wait_for(report(command, tool, arguments), SECONDS))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
