"""Real SDK clients over SSE against the fork's 380-tool server: the Python SDK as released before the
fork's pin and as the fork, and the TypeScript SDK from the npm registry.

Each client runs as its users run it, in its own process (tests/clients/): connect, initialize,
list every tool, call one, report as JSON. With patch 0004 the server's endpoint event carries
`init_required=true`; the clients must POST to that URI and notice nothing. A fork build without
that patch fails the tests that need it.

Needs `node` (18 or later) and `npm` on PATH, and the npm registry, for the TypeScript client; the
SDK is installed once into the mcp-initfix cache (~/.cache/mcp-initfix/node, or $MCP_INITFIX_CACHE).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from race import clients, envs, process
from race.npm import typescript_client
from race.process import HINT_PATCH, Server
from race.testing import announced_endpoint

pytestmark = pytest.mark.slow

CLIENTS = Path(__file__).resolve().parent / "clients"
# The last release before the fork's pin, so the client knows nothing of the fork's changes.
STOCK_PYTHON_CLIENT = "mcp==1.27.0"
TOOL_COUNT = 380
TOOL, ARGUMENTS = clients.CALL_TOOL
CLIENT_SECONDS = 120


@pytest.fixture(scope="module")
def fork_server() -> Iterator[Server]:
    with process.running(envs.fork_env()) as server:
        yield server


def require_hint(server: Server) -> str:
    endpoint = announced_endpoint(server)
    if "init_required=" not in endpoint:
        pytest.fail(f"this build of the fork lacks {HINT_PATCH}")
    return endpoint


def python_client(env: envs.Env) -> list[str]:
    return [str(env.python), str(CLIENTS / "sdk_client.py")]


CLIENT_COMMANDS = {
    "python-mcp-1.27.0": lambda: python_client(envs.client_env(STOCK_PYTHON_CLIENT)),
    "python-fork": lambda: python_client(envs.fork_env()),
    "typescript-sdk": typescript_client,
}


@pytest.fixture(scope="module")
def reports(fork_server: Server) -> dict[str, dict[str, Any]]:
    """Each client's report of one session with the fork's server, run once for the module."""
    found: dict[str, dict[str, Any]] = {}
    for name, command in CLIENT_COMMANDS.items():
        done = subprocess.run(
            [*command(), f"{fork_server.url}/sse", TOOL, json.dumps(ARGUMENTS)],
            capture_output=True,
            text=True,
            timeout=CLIENT_SECONDS,
        )
        assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
        found[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("client", list(CLIENT_COMMANDS))
def test_client_initializes_lists_every_tool_and_calls_one(reports: dict[str, dict[str, Any]], client: str) -> None:
    report = reports[client]
    assert report["server"] == "race"
    assert (report["tools"], report["distinct_tools"]) == (TOOL_COUNT, TOOL_COUNT)
    assert report["call_is_error"] is False
    assert report["call_result"] == {"status": "ok", "tool": TOOL}


def test_python_clients_are_the_releases_under_test(reports: dict[str, dict[str, Any]]) -> None:
    assert f"mcp=={reports['python-mcp-1.27.0']['version']}" == STOCK_PYTHON_CLIENT
    assert reports["python-fork"]["version"] == envs.installed(envs.fork_env(), "mcp")[0]


@pytest.mark.parametrize("client", list(CLIENT_COMMANDS))
def test_client_posts_to_the_endpoint_with_the_init_required_hint_unchanged(
    fork_server: Server, reports: dict[str, dict[str, Any]], client: str
) -> None:
    endpoint = require_hint(fork_server)
    assert endpoint.endswith("&init_required=true"), endpoint
    posted_to = reports[client]["posted_to"]
    assert len(posted_to) == 1
    assert posted_to[0].endswith("&init_required=true"), posted_to


def test_fork_client_reports_the_servers_init_required_hint(
    fork_server: Server, reports: dict[str, dict[str, Any]]
) -> None:
    require_hint(fork_server)
    assert reports["python-fork"]["hint"] == [True]


def test_released_python_client_knows_nothing_of_the_hint(reports: dict[str, dict[str, Any]]) -> None:
    assert reports["python-mcp-1.27.0"]["hint"] == "not supported"
