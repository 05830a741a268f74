"""mcp 2.x's `mcp.Client` as its users run it: connect, list every tool, call one, print what happened as JSON.

Run by path with the python of a venv holding mcp 2.x (stock or the fork):

    python tests/clients/client_v2.py URL sse|http auto|legacy TOOL ARGUMENTS_JSON

`http` hands `Client` the URL itself (Streamable HTTP); `sse` hands it `sse_client(URL)`. In `auto`
mode (the default of `Client`) it probes `server/discover` first and falls back to `initialize`
when the server does not answer it as a 2026-07-28 server; `legacy` sends `initialize` at once.
The report says how long connecting took, what became of the probe, which of the two settled the
era and the negotiated protocol version.

The probe has a timeout of its own (10 s in 2.3.0), after which `auto` falls back to `initialize`
without a word: a server that held the probe would only make connecting slow. So the probe's fate
is noted by wrapping `ClientSession.send_discover`, the one method `auto` probes with; everything
else is the public client API.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import sys
import time
from typing import Any

from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

# The client's own deadline for the whole session: a server that held a probe for longer fails the run.
SECONDS = 30.0
MAX_PAGES = 100
PROBES: list[str] = []


def note_probes() -> None:
    """Note each `server/discover` probe's fate in PROBES: "result", or "error <code>" (a timeout is an
    error too, REQUEST_TIMEOUT)."""
    send_discover = ClientSession.send_discover

    async def noted(self: ClientSession, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            raw = await send_discover(self, *args, **kwargs)
        except MCPError as error:
            PROBES.append(f"error {error.code}: {error.error.message}")
            raise
        PROBES.append("result")
        return raw

    ClientSession.send_discover = noted  # type: ignore[method-assign]


async def report(url: str, transport: str, mode: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    server: Any = sse_client(url) if transport == "sse" else url
    started = time.monotonic()
    async with Client(server, mode=mode) as client:
        connected = time.monotonic() - started
        names: list[str] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            names += [t.name for t in page.tools]
            cursor = page.next_cursor
            if cursor is None:
                break
        called = await client.call_tool(tool, arguments)
        session = client.session
        settled_by = "initialize" if session.initialize_result is not None else "server/discover"
        server_info = client.server_info
        protocol_version = client.protocol_version
    return {
        "client": f"mcp {importlib.metadata.version('mcp')} Client",
        "mode": mode,
        "transport": transport,
        "connect_seconds": round(connected, 3),
        "probes": PROBES,
        "settled_by": settled_by,
        "protocol_version": protocol_version,
        "server": server_info.name if server_info is not None else None,
        "tools": len(names),
        "distinct_tools": len(set(names)),
        "call_is_error": bool(called.is_error),
        "call_result": called.structured_content,
    }


def main() -> int:
    url, transport, mode, tool, arguments = sys.argv[1:6]
    note_probes()
    run = report(url, transport, mode, tool, json.loads(arguments))
    print(json.dumps(asyncio.run(asyncio.wait_for(run, SECONDS))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
