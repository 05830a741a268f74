"""fastmcp's servers keep working on the fork over every transport they serve: SSE and Streamable HTTP,
with sessions and without.

For each fastmcp release its users run (2.x and 3.x on the fork's v1.x line, 4.x on v2.x), the 380-tool
server (race/fastmcp_server.py) is served over each transport from two venvs, stock mcp and the fork,
and fastmcp's own client lists the tools and calls one. fastmcp subclasses mcp's low-level `Server`
and overrides `run` with upstream's parameters, so a fork that passes `run` anything new crashes
every Streamable HTTP session here (the client then sees no answer) while stock serves it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from race import clients, envs, process
from race.serving import TRANSPORTS
from tests.test_fastmcp import FASTMCP_VERSIONS

pytestmark = pytest.mark.slow

SERVER_SCRIPT = Path(process.__file__).resolve().parent / "fastmcp_server.py"
CLIENT_SCRIPT = Path(__file__).resolve().parent / "clients" / "fastmcp_client.py"
TOOL, ARGUMENTS = clients.CALL_TOOL
TOOL_COUNT = 380
CLIENT_SECONDS = 120
# Each fastmcp release the drop-in covers, on the bases it runs on: stock mcp and the fork of its line.
BASES = {version: (line.stock, line.fork) for version, line in FASTMCP_VERSIONS.items()}
PATHS = {"sse": "/sse", "http": "/mcp", "http-stateless": "/mcp"}


def served(version: str, on: str, transport: str) -> dict[str, Any]:
    """Run the server over `transport` in fastmcp `version` on base `on`, and fastmcp's client against it."""
    env = envs.fastmcp_env(version, on)
    with process.running(env, "--transport", transport, script=SERVER_SCRIPT) as server:
        command = [str(env.python), str(CLIENT_SCRIPT), server.url + PATHS[transport], TOOL, json.dumps(ARGUMENTS)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=CLIENT_SECONDS)
        assert done.returncode == 0, f"{env.name} over {transport}: the client failed\n{done.stderr[-3000:]}"
        # What mcp logs when a session's `run` raises (stock logs other tracebacks when a client leaves).
        assert "crashed" not in server.log(), f"{env.name} over {transport}: a session crashed\n{server.log()[-3000:]}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("version", "on"), [(v, on) for v, bases in BASES.items() for on in bases])
def test_fastmcp_client_lists_the_tools_and_calls_one(version: str, on: str, transport: str) -> None:
    report = served(version, on, transport)
    assert report["fastmcp_version"] == version
    assert ("+initfix." in report["mcp_version"]) == on.startswith("fork")
    assert report["tools"] == TOOL_COUNT
    assert report["call_is_error"] is False
    assert [json.loads(text) for text in report["call_text"]] == [{"status": "ok", "tool": TOOL}]
