"""What every race server script shares, whichever mcp (1.x or 2.x) or fastmcp it runs on.

Imported by path from beside the scripts (race/server.py, race/server_v2.py, race/fastmcp_server.py),
so it needs only the standard library, starlette and uvicorn: the record of tool runs the tools write,
the process's memory, the /debug routes, the command line and serving an ASGI app on a free port of
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse

EXECUTIONS: list[dict[str, Any]] = []
MAX_EXECUTIONS = 100_000


async def record(ctx: Any, tool: str, trace_id: str | None) -> dict[str, str]:
    """What every tool does: note that it ran, and whether its session had received `initialize`."""
    if len(EXECUTIONS) < MAX_EXECUTIONS:
        # mcp 1.x and 2.x alike: the session knows the client's initialize params once it was answered.
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


# uvicorn's bound on the wait for open connections after SIGTERM; what the harness used before it was a setting.
GRACEFUL_SHUTDOWN_SECONDS = 1.0


def serve(
    app: Any,
    ready_file: Path,
    port: int = 0,
    root_path: str = "",
    graceful_shutdown_seconds: float = GRACEFUL_SHUTDOWN_SECONDS,
) -> None:
    """Serve `app` on `port` of 127.0.0.1 (0: a free one) until SIGTERM; write the port to `ready_file` once it
    listens.

    `root_path` is uvicorn's: the prefix a balancer strips before it forwards a request, which the app sees as
    the ASGI `root_path` (mcp's SSE transport puts it in front of the message endpoint it announces). After
    SIGTERM uvicorn waits at most `graceful_shutdown_seconds` for open connections to end."""
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets that say they are TCP,
    # and with it on every response on a keep-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # Also what lets a restarted server bind the port again while its predecessor's connections linger.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        root_path=root_path,
        # uvicorn types it as int, and compares and waits with it as a number of seconds.
        timeout_graceful_shutdown=graceful_shutdown_seconds,  # pyright: ignore[reportArgumentType]
    )
    server = uvicorn.Server(config)
    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets)
        # Written only once uvicorn accepts connections; the rename makes it appear whole.
        partial = ready_file.with_suffix(".partial")
        partial.write_text(str(sock.getsockname()[1]))
        partial.rename(ready_file)

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])


def add_debug_routes(
    server: Any,
    session_figures: Callable[[], dict[str, int]],
    features: Callable[[], dict[str, Any]],
    settings: dict[str, Any] | None = None,
) -> None:
    """GET /debug (memory, live sessions, requests in flight and held, tasks, tool runs, what the installed
    mcp offers and, given them, the SSE transport's `settings`), GET /debug/executions (every tool run) and
    GET /health (a balancer's health check: 200 while the server serves) on `server`, a FastMCP or MCPServer:
    both have `custom_route`."""

    @server.custom_route("/health", methods=["GET"])
    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    @server.custom_route("/debug", methods=["GET"])
    async def debug(request: Request) -> JSONResponse:
        if request.query_params.get("gc"):
            gc.collect()
        figures = {
            "rss": resident_bytes(),
            **session_figures(),
            "tasks": len(asyncio.all_tasks()),
            "executions": len(EXECUTIONS),
            "features": features(),
        }
        if settings is not None:
            figures["settings"] = settings
        return JSONResponse(figures)

    @server.custom_route("/debug/executions", methods=["GET"])
    async def executions(request: Request) -> JSONResponse:
        return JSONResponse(EXECUTIONS)


# The fork's SSE transport settings the command line can set; stock mcp has none of them.
HOLD_SETTINGS = ("held_request_timeout", "max_held_requests")


def transport_features(transport: type) -> dict[str, bool]:
    """Which of the fork's patches this mcp's SSE transport has, read from its settings: the hold
    (0003), the endpoint hint (0004), resumption (0005) and the handoff at shutdown (0008). Stock has none
    of them."""
    parameters = inspect.signature(transport).parameters
    return {
        "hold_settings": all(name in parameters for name in HOLD_SETTINGS),
        "endpoint_hint": "init_required" in parameters,
        "resumes_sessions": "resume_sessions" in parameters,
        "hands_off_at_shutdown": "shutdown_grace_period" in parameters,
    }


def transport_settings(args: argparse.Namespace, transport: type, mcp_version: str) -> dict[str, Any]:
    """The SSE transport's keyword arguments given on the command line (--held-request-timeout,
    --max-held-requests, --no-resume-sessions); exits if one is given that this mcp's transport has not."""
    settings: dict[str, Any] = {name: getattr(args, name) for name in HOLD_SETTINGS if getattr(args, name) is not None}
    if not args.resume_sessions:
        settings["resume_sessions"] = False
    for name in settings:
        if name not in inspect.signature(transport).parameters:
            raise SystemExit(f"{name} given, but this mcp ({mcp_version}) has no such setting")
    return settings


def configure_sse_transport(module: Any, settings: dict[str, Any]) -> None:
    """Give the `SseServerTransport` that `module` (FastMCP's or MCPServer's) builds in its `sse_app()`
    these settings. They live on the transport, and neither framework passes any: a server that needs
    them builds its app from the transport, as the upstream tests in the series do. The harness keeps
    the framework's own app (and its /debug routes) and hands it a transport that has them instead."""
    if not settings:
        return
    base: Any = module.SseServerTransport

    class ConfiguredTransport(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, **settings})

    module.SseServerTransport = ConfiguredTransport


def resumes_http_sessions(manager: type) -> bool:
    """Whether this mcp's Streamable HTTP session manager re-creates sessions it does not know (patch 0006);
    stock's answers 404."""
    return "resume_sessions" in inspect.signature(manager).parameters


def configure_session_manager(manager: Any, args: argparse.Namespace) -> None:
    """--no-resume-sessions for Streamable HTTP: `resume_sessions = False` on the session manager, where this
    mcp's manager has the setting (a build without patch 0006 answers 404 anyway; /debug's features say which)."""
    if not args.resume_sessions and resumes_http_sessions(type(manager)):
        manager.resume_sessions = False


# mcp's Streamable HTTP session manager logs each session's start, resumption and idle timeout at INFO.
SESSION_MANAGER_LOGGER = "mcp.server.streamable_http_manager"


def log_session_manager() -> None:
    """Write the session manager's INFO lines to stderr, one plain line each, whatever logging the framework
    sets up (mcp's FastMCP logs through rich, which wraps lines): a test waits for "Session <id> idle timeout"."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger(SESSION_MANAGER_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


# What a server script can serve with --transport: SSE, or Streamable HTTP with or without sessions.
TRANSPORTS = ("sse", "http", "http-stateless")


def arguments(doc: str, *, pending: bool = False, transports: bool = False) -> argparse.Namespace:
    """The command line of a server script: --ready-file, --port, --root-path, --graceful-shutdown-timeout and
    --slow-tool; with `pending`, the SSE transport's hold settings and --no-resume-sessions; with `transports`,
    --transport (one of TRANSPORTS, default sse) and --session-idle-timeout."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--ready-file", type=Path, required=True, help="gets the port once the server listens")
    parser.add_argument("--port", type=int, default=0, help="listen on this port of 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--root-path",
        default="",
        metavar="PREFIX",
        help="uvicorn's root_path: the prefix a balancer strips, e.g. /a (SSE: the endpoint event is /a/messages/...)",
    )
    parser.add_argument(
        "--graceful-shutdown-timeout",
        type=float,
        default=GRACEFUL_SHUTDOWN_SECONDS,
        metavar="SECONDS",
        help=f"after SIGTERM, wait at most this long for open connections (default {GRACEFUL_SHUTDOWN_SECONDS:g})",
    )
    parser.add_argument(
        "--slow-tool",
        action="store_true",
        help="also serve the tool `slow`, which answers after its `seconds` argument (default 2)",
    )
    if pending:
        parser.add_argument("--held-request-timeout", type=float)
        parser.add_argument("--max-held-requests", type=int)
        parser.add_argument(
            "--no-resume-sessions",
            dest="resume_sessions",
            action="store_false",
            help="refuse a reconnected client's requests NOT_INITIALIZED session_lost instead of resuming its session"
            " (SSE), answer 404 for a session the server does not know (Streamable HTTP)",
        )
    if transports:
        parser.add_argument("--transport", choices=TRANSPORTS, default="sse")
        parser.add_argument(
            "--session-idle-timeout",
            type=float,
            metavar="SECONDS",
            help="Streamable HTTP: end a session after this long with no request in flight (default: mcp's 30 min)",
        )
    return parser.parse_args()


def main(
    doc: str,
    track_sessions: Callable[[], None],
    app: Callable[[argparse.Namespace], Any],
    *,
    pending: bool,
    transports: bool = False,
) -> None:
    """A server script's main: read its command line (see `arguments`), start tracking sessions for /debug
    (and, over Streamable HTTP, logging the session manager's INFO lines), and serve the ASGI app `app(args)`
    builds until SIGTERM."""
    args = arguments(doc, pending=pending, transports=transports)
    track_sessions()
    if transports and args.transport != "sse":
        log_session_manager()
    serve(app(args), args.ready_file, args.port, args.root_path, args.graceful_shutdown_timeout)
