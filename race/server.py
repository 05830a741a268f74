"""The race server: 380 FastMCP tools over SSE on 127.0.0.1, plus a /debug route for the harness.

Run by path with a server venv's python (stock mcp or the fork); it imports only mcp, its
dependencies and the sibling toolbox.py, never the `race` package:

    python race/server.py --ready-file PATH [--pending-request-timeout S] [--max-pending-requests N]

It binds a free port, writes it to the ready file, and serves until SIGTERM. GET /debug reports
memory, live sessions and requests in flight; GET /debug/executions lists every tool run with
whether its session had received `initialize`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import sys
import weakref
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

import mcp.types
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.server import Settings
from mcp.server.session import ServerSession

sys.path.insert(0, str(Path(__file__).resolve().parent))
import toolbox  # noqa: E402
from serving import EXECUTIONS, record, resident_bytes, serve  # noqa: E402

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
    }


def build_server(args: argparse.Namespace) -> FastMCP:
    settings: dict[str, Any] = {}
    for name in PENDING_SETTINGS:
        value = getattr(args, name)
        if value is not None:
            if name not in Settings.model_fields:
                raise SystemExit(f"{name} given, but this mcp ({features()['mcp_version']}) has no such setting")
            settings[name] = value
    server = FastMCP("race", host="127.0.0.1", log_level="WARNING", **settings)
    toolbox.add_tools(server, record)

    @server.custom_route("/debug", methods=["GET"])
    async def debug(request: Request) -> JSONResponse:
        if request.query_params.get("gc"):
            gc.collect()
        return JSONResponse(
            {
                "rss": resident_bytes(),
                **session_figures(),
                "tasks": len(asyncio.all_tasks()),
                "executions": len(EXECUTIONS),
                "features": features(),
                "settings": {name: getattr(server.settings, name, None) for name in PENDING_SETTINGS},
            }
        )

    @server.custom_route("/debug/executions", methods=["GET"])
    async def executions(request: Request) -> JSONResponse:
        return JSONResponse(EXECUTIONS)

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready-file", type=Path, required=True, help="gets the port once the server listens")
    parser.add_argument("--pending-request-timeout", type=float)
    parser.add_argument("--max-pending-requests", type=int)
    args = parser.parse_args()
    track_sessions()
    serve(build_server(args).sse_app(), args.ready_file)


if __name__ == "__main__":
    main()
