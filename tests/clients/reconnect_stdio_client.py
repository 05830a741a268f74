"""A desktop client driving a stdio bridge (mcp-remote) to an SSE server across a reconnect, as JSON.

Run by path with the python of a venv holding a release of `mcp`:

    python tests/clients/reconnect_stdio_client.py COMMAND_JSON TOOL ARGUMENTS_JSON BRIDGE_LOG MARKER

COMMAND_JSON is the bridge's command line as a JSON list; its stderr goes to the file BRIDGE_LOG.

1. start the bridge, initialize through it and call TOOL; print {"ready": true, ...} on a line of its own;
2. wait for a line on stdin: the test has restarted the server on the same port or dropped the connection;
3. wait until BRIDGE_LOG has a line containing MARKER (mcp-remote: "Remote SSE stream reconnected"), the
   bridge's own word that its stream is back: a desktop user's next call comes after that, not during
   the seconds the bridge is reconnecting;
4. call TOOL again and print the report, with the bridge's log lines from after the reconnect.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import McpError

SECONDS = 90.0  # the whole run
CALL_SECONDS = 30.0
SIGNAL_SECONDS = 60.0  # from the ready line to the test's line on stdin
RECONNECT_SECONDS = 30.0  # from that line to the bridge's word that its stream is back
POLL_SECONDS = 0.05  # the bridge's log is a file: polled, until the deadline


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = await session.call_tool(tool, arguments, read_timeout_seconds=timedelta(seconds=CALL_SECONDS))
    except McpError as error:
        data = error.error.data if isinstance(error.error.data, dict) else {}
        return {
            "ok": False,
            "ms": (time.perf_counter() - started) * 1000,
            "code": error.error.code,
            "message": error.error.message,
            "reason": data.get("reason"),
        }
    return {"ok": not result.isError, "ms": (time.perf_counter() - started) * 1000, "result": result.structuredContent}


async def wait_for_marker(log: Path, marker: str) -> int:
    """The length of `log` just after the first line that contains `marker`."""
    deadline = time.monotonic() + RECONNECT_SECONDS
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        at = text.find(marker)
        if at >= 0 and "\n" in text[at:]:
            return at + text[at:].index("\n") + 1
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"the bridge logged no {marker!r} within {RECONNECT_SECONDS} s")


async def report(command: list[str], tool: str, arguments: dict[str, Any], log: Path, marker: str) -> dict[str, Any]:
    # The bridge gets this process's environment (the test points its config folder at a scratch one).
    bridge = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    with log.open("w", encoding="utf-8") as errlog:
        async with stdio_client(bridge, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            first = await call(session, tool, arguments)
            print(json.dumps({"ready": True, "first": first}), flush=True)
            await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), SIGNAL_SECONDS)
            signalled = time.perf_counter()
            after = await wait_for_marker(log, marker)
            reconnect_ms = (time.perf_counter() - signalled) * 1000
            second = await call(session, tool, arguments)
    bridge_log = log.read_text(encoding="utf-8", errors="replace")
    return {
        "first": first,
        "second": second,
        "reconnect_ms": reconnect_ms,
        "bridge_log_after_reconnect": bridge_log[after:].splitlines(),
    }


def main() -> None:
    command, tool, arguments, log, marker = sys.argv[1:]
    found = asyncio.run(
        asyncio.wait_for(report(json.loads(command), tool, json.loads(arguments), Path(log), marker), SECONDS)
    )
    print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
