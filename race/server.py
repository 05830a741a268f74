"""The race server: 380 FastMCP tools over SSE or Streamable HTTP on 127.0.0.1, plus /debug routes for the harness.

Run by path with a server venv's python (stock mcp or the fork); it imports only mcp, its
dependencies and the sibling toolbox.py, never the `race` package:

    python race/server.py --ready-file PATH [--port N] [--pending-request-timeout S] [--max-pending-requests N]
        [--no-resume-sessions] [--transport sse|http|http-stateless]

It serves SSE at /sse by default, or Streamable HTTP at /mcp (`http`: with sessions, FastMCP's
default; `http-stateless`: FastMCP's `stateless_http=True`). It binds a free port (or --port), writes
it to the ready file, and serves until SIGTERM. GET /debug reports memory, live sessions and requests
in flight; GET /debug/executions lists every tool run with whether its session had received
`initialize`.
"""

from __future__ import annotations

import importlib.metadata
import sys
import weakref
from argparse import Namespace
from pathlib import Path
from typing import Any

import mcp.types
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.server import Settings
from mcp.server.session import ServerSession

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402
import toolbox  # noqa: E402
from serving import add_debug_routes, pending_settings, record  # noqa: E402

SESSIONS: weakref.WeakSet[ServerSession] = weakref.WeakSet()
# Settings of the hold-and-serve patch; stock 1.30.0 has none of them.
PENDING_SETTINGS = ("pending_request_timeout", "max_pending_requests")


def track_sessions() -> None:
    """Keep a weak reference to every session, for /debug."""
    original_init = ServerSession.__init__

    def init(self: ServerSession, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        SESSIONS.add(self)

    ServerSession.__init__ = init  # type: ignore[method-assign]


def held_requests(session: ServerSession) -> int:
    """Requests a session holds until initialize (0 on stock, which holds none)."""
    held = getattr(session, "_pending_requests", None)
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
        "pending_settings": all(name in Settings.model_fields for name in PENDING_SETTINGS),
        "resumes_sessions": "sse_resume_sessions" in Settings.model_fields,
    }


def build_server(args: Namespace) -> FastMCP:
    settings = pending_settings(args, PENDING_SETTINGS, lambda name: name in Settings.model_fields, features)
    if not args.resume_sessions:
        if not features()["resumes_sessions"]:
            raise SystemExit(f"--no-resume-sessions given, but this mcp ({features()['mcp_version']}) never resumes")
        settings["sse_resume_sessions"] = False
    stateless = args.transport == "http-stateless"
    server = FastMCP("race", host="127.0.0.1", log_level="WARNING", stateless_http=stateless, **settings)
    toolbox.add_tools(server, record)

    add_debug_routes(server, session_figures, features, settings=PENDING_SETTINGS)
    return server


def app(args: Namespace) -> Any:
    server = build_server(args)
    return server.sse_app() if args.transport == "sse" else server.streamable_http_app()


def main() -> None:
    serving.main(__doc__, track_sessions, app, pending=True, transports=True)


if __name__ == "__main__":
    main()
