"""Real clients that probe `server/discover` before `initialize`, against both lines, stock and fork.

- mcp 2.3.0's `Client` (tests/clients/client_v2.py) in its default `mode="auto"`, which probes
  `server/discover` first and falls back to `initialize`, and in `mode="legacy"`, over SSE and over
  Streamable HTTP with and without sessions;
- mcp-remote from npm, the stdio bridge desktop clients use to reach a remote server, over SSE with
  `--protocol auto` (one `server/discover` on the first handshake) and `--protocol legacy` (its
  default), driven by mcp 1.27.0's stdio client (tests/clients/stdio_client.py) as a desktop client.

Each runs against the 380-tool server of each line (v1.x: race/server.py on stock mcp 1.30.0 and on
the fork; v2.x: race/server_v2.py on stock mcp 2.3.0 and on the fork), lists every tool and calls
one. The fork's servers hold requests sent before `initialize` for 60 s instead of 5, so a held
request blows the client's own 30 s deadline. A probe is not held that way: both clients give up
on it after 10 s and fall back to `initialize`, so a hold would only make connecting slow. What the
probe got is therefore part of each client's report (client_v2.py notes it; mcp-remote writes it to its
`--debug` log), and the tests assert that no probe timed out and that each client ends in the same era
(the same protocol version, settled by the same request) on stock and on the fork. The connect
times of both are printed side by side (run with `-s`), never asserted.

Needs `node` (18 or later) and `npm` on PATH, and the npm registry on first use; mcp-remote is
installed once into the mcp-initfix cache, as tests/test_real_clients.py installs the TypeScript SDK.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from race import clients, envs, process
from race.npm import npm_package
from race.process import Server

pytestmark = pytest.mark.slow

CLIENTS = Path(__file__).resolve().parent / "clients"
V2_CLIENT = "mcp==2.3.0"
DESKTOP_CLIENT = "mcp==1.27.0"  # drives mcp-remote over stdio, as a desktop client does
MCP_REMOTE_VERSION = "0.15.1"
TOOL, ARGUMENTS = clients.CALL_TOOL
TOOL_COUNT = 380
# The clients' own deadline is 30 s; this only bounds a client that hangs despite it.
CLIENT_SECONDS = 90
FORK_HOLD_SECONDS = 60.0
PATHS = {"sse": "/sse", "http": "/mcp", "http-stateless": "/mcp"}


@dataclass(frozen=True)
class Line:
    stock: Callable[[], envs.Env]
    fork: Callable[[], envs.Env]
    script: Path


LINES = {
    "v1.x": Line(envs.stock_env, envs.fork_env, process.SERVER_SCRIPT),
    "v2.x": Line(envs.stock_v2_env, envs.fork_v2_env, process.SERVER_V2_SCRIPT),
}
SIDES = ("stock", "fork")
REPORTS: list[dict[str, Any]] = []


class Servers:
    """The stock and fork servers of one line and transport, kept while consecutive tests need them."""

    def __init__(self) -> None:
        self.key: tuple[str, str] | None = None
        self.running: dict[str, Server] = {}
        self.stack = contextlib.ExitStack()

    def pair(self, line: str, transport: str) -> dict[str, Server]:
        if self.key != (line, transport):
            self.close()
            self.key = (line, transport)
            for side in SIDES:
                self.running[side] = self._start(line, side, transport)
        return self.running

    def _start(self, line: str, side: str, transport: str) -> Server:
        spec = LINES[line]
        options = ["--transport", transport]
        if side == "fork":
            options += ["--held-request-timeout", str(FORK_HOLD_SECONDS)]
        env = spec.stock() if side == "stock" else spec.fork()
        server = self.stack.enter_context(process.running(env, *options, script=spec.script))
        if side == "fork":
            settings = server.debug(collect=False)["settings"]
            assert settings["held_request_timeout"] == FORK_HOLD_SECONDS, settings
        return server

    def close(self) -> None:
        self.stack.close()
        self.running, self.key = {}, None


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    kept = Servers()
    try:
        yield kept
    finally:
        kept.close()
        print_table()


def run_client(command: list[str], environ: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """A client's JSON report (its last line of output) and its stderr."""
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CLIENT_SECONDS, env={**os.environ, **(environ or {})}
    )
    assert done.returncode == 0, f"{command[1]} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def assert_listed_and_called(report: dict[str, Any]) -> None:
    assert report["server"] == "race"
    assert (report["tools"], report["distinct_tools"]) == (TOOL_COUNT, TOOL_COUNT)
    assert report["call_is_error"] is False
    assert report["call_result"] == {"status": "ok", "tool": TOOL}


def remember(client: str, line: str, transport: str, mode: str, found: dict[str, dict[str, Any]]) -> None:
    REPORTS.append({"client": client, "line": line, "transport": transport, "mode": mode, **found})
    print(f"\n{client} {mode} over {transport}, {line}:")
    for side in SIDES:
        report = found[side]
        print(
            f"  {side:5} connect {report['connect_seconds']:6.3f} s  era {report['era']}"
            f"  settled by {report['settled_by']}  probe {report['probe']}"
        )


def print_table() -> None:
    if not REPORTS:
        return
    print("\n\n| client | mode | transport | line | stock: connect s | fork: connect s | era | settled by | probe |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in REPORTS:
        stock, fork = row["stock"], row["fork"]
        probe = stock["probe"] if stock["probe"] == fork["probe"] else f"stock: {stock['probe']}; fork: {fork['probe']}"
        print(
            f"| {row['client']} | {row['mode']} | {row['transport']} | {row['line']} | {stock['connect_seconds']:.2f}"
            f" | {fork['connect_seconds']:.2f} | {stock['era']} | {stock['settled_by']} | {probe} |"
        )


def assert_same_era_and_no_probe_timed_out(found: dict[str, dict[str, Any]]) -> None:
    for side in SIDES:
        assert "timed out" not in found[side]["probe"].lower(), f"{side}: the probe was not answered: {found}"
    era = {side: (found[side]["era"], found[side]["settled_by"]) for side in SIDES}
    assert era["stock"] == era["fork"], f"the client ended in another era on the fork: {found}"


# mcp 2.3.0's Client: each line, transport and mode, mode varying fastest so a pair of servers serves both.
CLIENT_V2_CASES = [(line, transport, mode) for line in LINES for transport in PATHS for mode in ("auto", "legacy")]


def client_v2_report(server: Server, transport: str, mode: str) -> dict[str, Any]:
    python = envs.client_env(V2_CLIENT).python
    wire = "sse" if transport == "sse" else "http"
    command = [str(python), str(CLIENTS / "client_v2.py"), server.url + PATHS[transport], wire, mode, TOOL]
    report, _ = run_client([*command, json.dumps(ARGUMENTS)])
    probes = report["probes"]
    report["probe"] = "; ".join(probes) if probes else "none"
    report["era"] = report["protocol_version"]
    return report


@pytest.mark.parametrize(("line", "transport", "mode"), CLIENT_V2_CASES)
def test_mcp_2_3_client_connects_lists_and_calls_as_on_stock(
    servers: Servers, line: str, transport: str, mode: str
) -> None:
    found = {side: client_v2_report(server, transport, mode) for side, server in servers.pair(line, transport).items()}
    remember(f"mcp {V2_CLIENT.split('==')[1]} Client", line, transport, mode, found)
    for side in SIDES:
        assert_listed_and_called(found[side])
        assert found[side]["client"] == f"mcp {V2_CLIENT.split('==')[1]} Client"
        if mode == "legacy":
            assert found[side]["probe"] == "none"
            assert found[side]["settled_by"] == "initialize"
    assert_same_era_and_no_probe_timed_out(found)


def mcp_remote() -> list[str]:
    """The command that runs the mcp-remote bridge, installed from npm into the mcp-initfix cache."""
    node = shutil.which("node")
    assert node, "mcp-remote needs node and npm on PATH"
    package = npm_package("mcp-remote", MCP_REMOTE_VERSION) / "node_modules" / "mcp-remote"
    manifest = json.loads((package / "package.json").read_text(encoding="utf-8"))
    assert manifest["version"] == MCP_REMOTE_VERSION
    return [node, str(package / manifest["bin"]["mcp-remote"])]


# What mcp-remote 0.15.1 writes to its debug log (--debug) once its `server/discover` probe has settled the era.
MODERN = re.compile(r"Remote server speaks MCP (\S+);")
LEGACY = re.compile(r"Treating the remote server as legacy (\{.*\})$", re.MULTILINE)


def mcp_remote_report(server: Server, mode: str) -> dict[str, Any]:
    python = envs.client_env(DESKTOP_CLIENT).python
    bridge = [*mcp_remote(), server.url + "/sse", "--transport", "sse-only", "--protocol", mode, "--debug"]
    with tempfile.TemporaryDirectory(prefix="mcp-remote-") as config:
        # Its token store and debug log go to a scratch folder, not ~/.mcp-auth.
        command = [str(python), str(CLIENTS / "stdio_client.py"), json.dumps(bridge), TOOL, json.dumps(ARGUMENTS)]
        report, _ = run_client(command, {"MCP_REMOTE_CONFIG_DIR": config})
        debug_log = "".join(path.read_text(encoding="utf-8") for path in sorted(Path(config).rglob("*_debug.log")))
    assert debug_log, "mcp-remote wrote no debug log"
    modern, legacy = MODERN.findall(debug_log), [json.loads(found)["reason"] for found in LEGACY.findall(debug_log)]
    if mode == "legacy":
        assert not modern and not legacy, debug_log[-4000:]
        report["probe"], report["settled_by"], report["era"] = "none", "initialize", report["protocol_version"]
    else:
        assert len(modern) + len(legacy) == 1, f"no single era verdict from mcp-remote:\n{debug_log[-4000:]}"
        if modern:
            report["probe"], report["settled_by"], report["era"] = "result", "server/discover", modern[0]
        else:
            report["probe"], report["settled_by"], report["era"] = legacy[0], "initialize", report["protocol_version"]
    return report


@pytest.mark.parametrize(("line", "mode"), [(line, mode) for line in LINES for mode in ("auto", "legacy")])
def test_mcp_remote_bridges_a_desktop_client_as_on_stock(servers: Servers, line: str, mode: str) -> None:
    found = {side: mcp_remote_report(server, mode) for side, server in servers.pair(line, "sse").items()}
    remember(f"mcp-remote {MCP_REMOTE_VERSION}", line, "sse", mode, found)
    for side in SIDES:
        assert_listed_and_called(found[side])
    assert_same_era_and_no_probe_timed_out(found)
