"""The race server: 380 FastMCP tools over SSE or Streamable HTTP on 127.0.0.1, plus /debug routes for the harness.

Run by path with a server venv's python (stock mcp or the fork); it imports only mcp, its
dependencies and the sibling toolbox.py, never the `race` package:

    python race/server.py --ready-file PATH [--port N] [--held-request-timeout S] [--max-held-requests N]
        [--no-resume-sessions] [--transport sse|http|http-stateless] [--session-idle-timeout S]
        [--root-path PREFIX] [--graceful-shutdown-timeout S] [--slow-tool]

It serves SSE at /sse by default, or Streamable HTTP at /mcp (`http`: with sessions, FastMCP's
default; `http-stateless`: FastMCP's `stateless_http=True`). It binds a free port (or --port), writes
it to the ready file, and serves until SIGTERM. GET /debug reports memory, live sessions and requests
in flight; GET /debug/executions lists every tool run with whether its session had received
`initialize`. The hold and resume flags are settings of the fork's SSE transport (stock has none);
--no-resume-sessions also turns off the fork's Streamable HTTP session manager's `resume_sessions`
where the installed mcp has it (patch 0006). Over Streamable HTTP the session manager's INFO lines
go to stderr. --root-path, --graceful-shutdown-timeout and --slow-tool are race/serving.py's, for the
servers behind a balancer (tests/test_rolling_deploy.py, `bench/run --only rolling`); GET /health answers 200.
"""

from __future__ import annotations

import importlib.metadata
import sys
import weakref
from argparse import Namespace
from pathlib import Path
from typing import Any

import mcp.server.fastmcp.server
import mcp.types
from mcp.server.fastmcp import FastMCP
from mcp.server.session import ServerSession
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import DEFAULT_SESSION_IDLE_TIMEOUT, StreamableHTTPSessionManager

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402
import toolbox  # noqa: E402
from serving import add_debug_routes, configure_sse_transport, record, transport_features  # noqa: E402

SESSIONS: weakref.WeakSet[ServerSession] = weakref.WeakSet()


def track_sessions() -> None:
    """Keep a weak reference to every session, for /debug."""
    original_init = ServerSession.__init__

    def init(self: ServerSession, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        SESSIONS.add(self)

    ServerSession.__init__ = init  # type: ignore[method-assign]


def held_requests(session: ServerSession) -> int:
    """Requests a session holds until initialize (0 on stock, which holds none)."""
    held = getattr(session, "_held_requests", None)
    return len(held) if held is not None else 0


def session_figures() -> dict[str, int]:
    """Live sessions, and the requests they have in flight and hold, for /debug."""
    sessions = list(SESSIONS)
    return {
        "sessions": len(sessions),
        "in_flight": sum(len(s._in_flight) for s in sessions),  # pyright: ignore[reportPrivateUsage]
        "held": sum(held_requests(s) for s in sessions),
    }


def features() -> dict[str, Any]:
    return {
        "mcp_version": importlib.metadata.version("mcp"),
        "not_initialized_code": getattr(mcp.types, "NOT_INITIALIZED", None),
        **transport_features(SseServerTransport),
        "resumes_http_sessions": serving.resumes_http_sessions(StreamableHTTPSessionManager),
    }


def build_server(args: Namespace) -> FastMCP:
    settings = serving.transport_settings(args, SseServerTransport, importlib.metadata.version("mcp"))
    configure_sse_transport(mcp.server.fastmcp.server, settings)
    stateless = args.transport == "http-stateless"
    idle = DEFAULT_SESSION_IDLE_TIMEOUT if args.session_idle_timeout is None else args.session_idle_timeout
    server = FastMCP("race", host="127.0.0.1", log_level="WARNING", stateless_http=stateless, session_idle_timeout=idle)
    toolbox.add_tools(server, record, slow=args.slow_tool)

    add_debug_routes(server, session_figures, features, settings=settings)
    return server


def app(args: Namespace) -> Any:
    server = build_server(args)
    if args.transport == "sse":
        return server.sse_app()
    http_app = server.streamable_http_app()
    serving.configure_session_manager(server.session_manager, args)
    return http_app


def main() -> None:
    serving.main(__doc__, track_sessions, app, pending=True, transports=True)


if __name__ == "__main__":
    main()
