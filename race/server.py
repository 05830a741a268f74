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
import os
import socket
import sys
import time
import weakref
from pathlib import Path
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse

import mcp.types
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.server import Settings
from mcp.server.session import ServerSession

sys.path.insert(0, str(Path(__file__).resolve().parent))
import toolbox  # noqa: E402

EXECUTIONS: list[dict[str, Any]] = []
MAX_EXECUTIONS = 100_000
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


async def record(ctx: Any, tool: str, trace_id: str | None) -> dict[str, str]:
    if len(EXECUTIONS) < MAX_EXECUTIONS:
        handshake = ctx.session.client_params is not None
        EXECUTIONS.append({"tool": tool, "trace_id": trace_id, "handshake": handshake, "at": time.time()})
    return {"status": "ok", "tool": tool}


def resident_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:  # not Linux: the peak instead of the current size
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return pages * os.sysconf("SC_PAGE_SIZE")


def held_requests(session: ServerSession) -> int:
    """Requests a session holds until initialize (0 on stock, which holds none)."""
    held = getattr(session, "_pending_requests", None)
    return len(held) if held is not None else 0


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
        sessions = list(SESSIONS)
        return JSONResponse(
            {
                "rss": resident_bytes(),
                "sessions": len(sessions),
                "in_flight": sum(len(s._in_flight) for s in sessions),  # pyright: ignore[reportPrivateUsage]
                "held": sum(held_requests(s) for s in sessions),
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
    app = build_server(args).sse_app()
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets that say they are TCP,
    # and with it on every response on a keep-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets)
        # Written only once uvicorn accepts connections; the rename makes it appear whole.
        partial = args.ready_file.with_suffix(".partial")
        partial.write_text(str(sock.getsockname()[1]))
        partial.rename(args.ready_file)

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
