"""A client across a server restart over Streamable HTTP, a row of the demo (patch 0006).

The client initializes, calls a tool, the server is stopped and started again on the same port, and the
client calls twice more with the session ID and `MCP-Protocol-Version` it had. That is what the TypeScript
SDK's `StreamableHTTPClientTransport` does: it never initializes again after a 404. Stock answers
404 `Session not found` forever; the fork re-creates the session under that ID.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from race import clients, envs, process

CALLS_AFTER = 2
ACCEPT = "application/json, text/event-stream"


def _answer(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer in a JSON or SSE response body."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[len("data:") :] for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])
    return response.json()


def _call(http: httpx.Client, url: str, headers: dict[str, str], request_id: int) -> str:
    """One tools/call: `ok`, or what the client got instead."""
    name, arguments = clients.CALL_TOOL
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    started = time.monotonic()
    response = http.post(url, json=body, headers=headers)
    ms = (time.monotonic() - started) * 1000
    if response.status_code != 200:
        return f"http {response.status_code} ({ms:.0f} ms)"
    answer = _answer(response)
    if "error" in answer:
        return f"{answer['error']['code']} ({ms:.0f} ms)"
    return f"ok ({ms:.0f} ms)"


def across_restart(env: envs.Env, script: Path = process.SERVER_SCRIPT) -> list[str]:
    """The outcome of the call before the restart and of each call after it."""
    with httpx.Client(timeout=30.0) as http:
        with process.running(env, "--transport", "http", script=script) as server:
            port = int(server.url.rsplit(":", 1)[1])
            url = f"{server.url}/mcp"
            headers = {"accept": ACCEPT}
            opened = http.post(
                url,
                json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": clients.INITIALIZE_PARAMS},
                headers=headers,
            )
            opened.raise_for_status()
            headers |= {
                "mcp-session-id": opened.headers["mcp-session-id"],
                "mcp-protocol-version": _answer(opened)["result"]["protocolVersion"],
            }
            http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
            outcomes = [_call(http, url, headers, 1)]
        with process.running(env, "--transport", "http", script=script, port=port):
            outcomes += [_call(http, url, headers, 2 + i) for i in range(CALLS_AFTER)]
    return outcomes
