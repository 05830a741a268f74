"""The race server for mcp 2.x: race/server.py's 380 tools on MCPServer (FastMCP's name since 2.0).

Run by path with a v2.x server venv's python (stock mcp 2.3.0 or the fork's v2.x line); it imports
only mcp, its dependencies and the sibling toolbox.py and serving.py, never the `race` package:

    python race/server_v2.py --ready-file PATH [--port N] [--held-request-timeout S] [--max-held-requests N]
        [--no-resume-sessions] [--transport sse|http|http-stateless] [--session-idle-timeout S]
        [--root-path PREFIX] [--graceful-shutdown-timeout S] [--slow-tool]

It serves SSE at /sse by default, or Streamable HTTP at /mcp (`http`: with sessions, `http-stateless`:
`streamable_http_app(stateless_http=True)`).

The hold settings and --no-resume-sessions are settings of the fork's SSE transport (stock has none),
given to the transport `MCPServer.sse_app()` builds; --no-resume-sessions also turns off the fork's
Streamable HTTP session manager's `resume_sessions` where the installed mcp has it (patch 0006).
The routes are race/server.py's: GET /debug, GET /debug/executions and GET /health. In 2.x a connection is served
by a `ServerRunner` (the per-request `ServerSession` lives only as long as its request), so the
runners are what /debug counts.
"""

from __future__ import annotations

import importlib.metadata
import sys
import weakref
from argparse import Namespace
from pathlib import Path
from typing import Any

import mcp.server.mcpserver.server
import mcp_types
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import ServerRunner

from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import DEFAULT_SESSION_IDLE_TIMEOUT, StreamableHTTPSessionManager

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402
import toolbox  # noqa: E402
from serving import add_debug_routes, configure_sse_transport, record, transport_features  # noqa: E402

# By id: a runner is a dataclass, compared by value and so unhashable.
RUNNERS: weakref.WeakValueDictionary[int, ServerRunner[Any]] = weakref.WeakValueDictionary()
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
        **transport_features(SseServerTransport),
        "resumes_http_sessions": serving.resumes_http_sessions(StreamableHTTPSessionManager),
    }


def add_tools(server: MCPServer, slow: bool = False) -> int:
    """toolbox's tools, with MCPServer's Context (with `slow`, its slow tool too)."""
    tools = toolbox.define_tools(record, V2_CONTEXT, slow=slow)
    for tool in tools:
        server.add_tool(tool)
    return len(tools)


def build_server(args: Namespace) -> MCPServer:
    settings = serving.transport_settings(args, SseServerTransport, importlib.metadata.version("mcp"))
    configure_sse_transport(mcp.server.mcpserver.server, settings)
    server = MCPServer("race", log_level="WARNING")
    add_tools(server, slow=args.slow_tool)

    add_debug_routes(server, session_figures, features, settings=settings)
    return server


def app(args: Namespace) -> Any:
    server = build_server(args)
    if args.transport == "sse":
        return server.sse_app()
    idle = DEFAULT_SESSION_IDLE_TIMEOUT if args.session_idle_timeout is None else args.session_idle_timeout
    http_app = server.streamable_http_app(stateless_http=args.transport == "http-stateless", session_idle_timeout=idle)
    serving.configure_session_manager(server.session_manager, args)
    return http_app


def main() -> None:
    serving.main(__doc__, track_sessions, app, pending=True, transports=True)


if __name__ == "__main__":
    main()
