"""A real Python SDK client over SSE: initialize, list every tool, call one, print what happened as JSON.

Run by path with the python of a venv holding some release of `mcp` (or the fork):

    python tests/clients/sdk_client.py URL TOOL ARGUMENTS_JSON

It uses only the SDK's public client API (sse_client + ClientSession), so it runs on every release
tests/test_real_clients.py tries. Where sse_client takes `on_init_required` (the fork's patch
0004) it also reports the hint the server sent.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import json
import sys
from typing import Any

import httpx

from mcp import ClientSession, types
from mcp.client.sse import sse_client

SECONDS = 60.0


async def session_report(url: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    posted_to: list[str] = []
    hints: list[bool | None] = []

    async def remember_post(request: httpx.Request) -> None:
        if request.method == "POST":
            posted_to.append(str(request.url))

    def http_client(
        headers: dict[str, str] | None = None, timeout: httpx.Timeout | None = None, auth: httpx.Auth | None = None
    ) -> httpx.AsyncClient:
        # What the SDK's default factory makes, plus a hook that notes where each message is POSTed.
        return httpx.AsyncClient(
            headers=headers,
            timeout=timeout or httpx.Timeout(30.0),
            auth=auth,
            follow_redirects=True,
            event_hooks={"request": [remember_post]},
        )

    options: dict[str, Any] = {"httpx_client_factory": http_client}
    hint_supported = "on_init_required" in inspect.signature(sse_client).parameters
    if hint_supported:
        options["on_init_required"] = hints.append

    async with sse_client(url, **options) as (read, write), ClientSession(read, write) as session:
        initialized = await session.initialize()
        names: list[str] = []
        listing = await session.list_tools()
        names += [t.name for t in listing.tools]
        while listing.nextCursor is not None:
            listing = await session.list_tools(params=types.PaginatedRequestParams(cursor=listing.nextCursor))
            names += [t.name for t in listing.tools]
        called = await session.call_tool(tool, arguments)

    return {
        "sdk": "python",
        "version": importlib.metadata.version("mcp"),
        "server": initialized.serverInfo.name,
        "protocol_version": initialized.protocolVersion,
        "tools": len(names),
        "distinct_tools": len(set(names)),
        "call_is_error": called.isError,
        "call_result": called.structuredContent,
        "posted_to": sorted(set(posted_to)),
        "hint": hints if hint_supported else "not supported",
    }


def main() -> int:
    url, tool, arguments = sys.argv[1:4]
    report = asyncio.run(asyncio.wait_for(session_report(url, tool, json.loads(arguments)), SECONDS))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
