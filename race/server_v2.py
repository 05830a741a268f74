"""The race server for mcp 2.x: race/server.py's 380 tools on MCPServer (FastMCP's name since 2.0).

Run by path with a v2.x server venv's python (stock mcp 2.3.0 or the fork's v2.x line); it imports
only mcp, its dependencies and the sibling toolbox.py and serving.py, never the `race` package:

    python race/server_v2.py --ready-file PATH [--port N] [--pending-request-timeout S] [--max-pending-requests N]
        [--no-resume-sessions] [--transport sse|http|http-stateless]

It serves SSE at /sse by default, or Streamable HTTP at /mcp (`http`: with sessions, `http-stateless`:
`streamable_http_app(stateless_http=True)`).

mcp 2.x reads no settings from the environment, so the hold settings are flags here and go to
`MCPServer`'s properties of the same names, and --no-resume-sessions to `sse_app(resume_sessions=False)`.
The routes are race/server.py's: GET /debug and GET /debug/executions. In 2.x a connection is served
by a `ServerRunner` (the per-request `ServerSession` lives only as long as its request), so the
runners are what /debug counts.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import sys
import weakref
from argparse import Namespace
from pathlib import Path
from typing import Any

import mcp_types
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import ServerRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402
import toolbox  # noqa: E402
from serving import add_debug_routes, pending_settings, record  # noqa: E402

# By id: a runner is a dataclass, compared by value and so unhashable.
RUNNERS: weakref.WeakValueDictionary[int, ServerRunner[Any]] = weakref.WeakValueDictionary()
# MCPServer properties of the hold-and-serve patch; stock 2.3.0 has none of them.
PENDING_SETTINGS = ("pending_request_timeout", "max_pending_requests")
# The toolbox writes its tools for 1.x's bundled FastMCP; 2.x has the same Context under the new name.
V2_CONTEXT = "from mcp.server.mcpserver import Context"


def track_sessions() -> None:
    """Keep a weak reference to every connection's runner, for /debug."""
    original_init = ServerRunner.__init__

    def init(self: ServerRunner[Any], *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        RUNNERS[id(self)] = self

    ServerRunner.__init__ = init  # type: ignore[method-assign]


def session_figures() -> dict[str, int]:
    """Live connections, and the requests they have in flight and hold (0 on stock, which holds none)."""
    runners = list(RUNNERS.values())
    return {
        "sessions": len(runners),
        # The connection's outbound channel is its JSON-RPC dispatcher, which tracks the requests it serves.
        "in_flight": sum(len(getattr(r.connection.outbound, "_in_flight", ())) for r in runners),
        "held": sum(len(getattr(r, "_held", ())) for r in runners),
    }


def features() -> dict[str, Any]:
    return {
        "mcp_version": importlib.metadata.version("mcp"),
        "mcp_types_version": importlib.metadata.version("mcp-types"),
        "not_initialized_code": getattr(mcp_types, "NOT_INITIALIZED", None),
        "pending_settings": all(isinstance(getattr(MCPServer, name, None), property) for name in PENDING_SETTINGS),
        "endpoint_hint": "init_required_hint" in inspect.signature(MCPServer.sse_app).parameters,
        "resumes_sessions": "resume_sessions" in inspect.signature(MCPServer.sse_app).parameters,
    }


def add_tools(server: MCPServer) -> int:
    """toolbox's tools, with MCPServer's Context."""
    tools = toolbox.define_tools(record, V2_CONTEXT)
    for tool in tools:
        server.add_tool(tool)
    return len(tools)


def build_server(args: Namespace) -> MCPServer:
    settings = pending_settings(args, PENDING_SETTINGS, lambda name: features()["pending_settings"], features)
    server = MCPServer("race", log_level="WARNING")
    for name, value in settings.items():  # properties of MCPServer, not constructor arguments
        setattr(server, name, value)
    add_tools(server)

    add_debug_routes(server, session_figures, features, settings=PENDING_SETTINGS)
    return server


def sse_settings(args: Namespace) -> dict[str, Any]:
    """`MCPServer.sse_app`'s keyword arguments from the command line: resume_sessions=False for
    --no-resume-sessions (exits on an mcp without the setting)."""
    if args.resume_sessions:
        return {}
    if not features()["resumes_sessions"]:
        raise SystemExit(f"--no-resume-sessions given, but this mcp ({features()['mcp_version']}) never resumes")
    return {"resume_sessions": False}


def app(args: Namespace) -> Any:
    server = build_server(args)
    if args.transport == "sse":
        return server.sse_app(**sse_settings(args))
    return server.streamable_http_app(stateless_http=args.transport == "http-stateless")


def main() -> None:
    serving.main(__doc__, track_sessions, app, pending=True, transports=True)


if __name__ == "__main__":
    main()
