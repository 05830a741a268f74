"""fastmcp's own client: connect, list every tool, call one, print what happened as JSON.

Run by path with the python of a venv holding some release of fastmcp (on stock mcp or on the fork):

    python tests/clients/fastmcp_client.py URL TOOL ARGUMENTS_JSON

fastmcp picks the transport from the URL, as for its users: SSE for a URL ending in /sse,
Streamable HTTP otherwise. Only its public client API is used, so it runs on fastmcp 2.x to 4.x.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import sys
import time
from typing import Any

from fastmcp import Client

SECONDS = 60.0


async def report(url: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    async with Client(url) as client:
        connected = time.monotonic() - started
        tools = await client.list_tools()
        result = await client.call_tool(tool, arguments)
    return {
        "fastmcp_version": importlib.metadata.version("fastmcp"),
        "mcp_version": importlib.metadata.version("mcp"),
        "connect_seconds": round(connected, 3),
        "tools": len(tools),
        "call_is_error": result.is_error,
        "call_text": [getattr(block, "text", None) for block in result.content],
    }


def main() -> int:
    url, tool, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    print(json.dumps(asyncio.run(asyncio.wait_for(report(url, tool, arguments), SECONDS))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
