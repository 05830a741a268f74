"""The race server's 380 tools on the standalone `fastmcp` package (2.x or 3.x) over SSE, with the same /debug routes.

Run by path with the python of a venv holding fastmcp on top of stock mcp or of the fork:

    python race/fastmcp_server.py --ready-file PATH

It is written as a fastmcp user writes a server, with nothing that knows of the fork: whatever the
fork changes reaches it through the `mcp` package fastmcp is built on. Session tracking, the tool
recorder and the memory figures are race/server.py's, imported from beside this file.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import inspect
import socket
import sys
import types
from pathlib import Path
from typing import Any

import uvicorn
from fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse

import mcp.types
from mcp.server.session import ServerSession
from mcp.server.sse import SseServerTransport

sys.path.insert(0, str(Path(__file__).resolve().parent))
import server as race_server  # noqa: E402
import toolbox  # noqa: E402

# The toolbox writes its tools for mcp's bundled FastMCP; fastmcp injects its own Context type.
BUNDLED_CONTEXT = "from mcp.server.fastmcp import Context"
FASTMCP_CONTEXT = "from fastmcp import Context"


def features() -> dict[str, Any]:
    """What the installed mcp offers (fastmcp has no settings for the fork's patches).

    Read before race/server.py's session tracking wraps ServerSession.__init__ and hides its parameters.
    """
    return {
        "mcp_version": importlib.metadata.version("mcp"),
        "fastmcp_version": importlib.metadata.version("fastmcp"),
        "not_initialized_code": getattr(mcp.types, "NOT_INITIALIZED", None),
        "holds_premature_requests": "pending_request_timeout" in inspect.signature(ServerSession).parameters,
        "endpoint_hint": "init_required_hint" in inspect.signature(SseServerTransport).parameters,
    }


def add_tools(server: FastMCP) -> int:
    """toolbox's tools, with fastmcp's Context, each registered with the `tool` decorator."""
    source, names = toolbox.generate()
    if source.count(BUNDLED_CONTEXT) != 1:
        raise SystemExit(f"toolbox no longer imports its Context as {BUNDLED_CONTEXT!r}")
    module = types.ModuleType("race_tools")
    module.record = race_server.record  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    # dont_inherit: this file's `from __future__ import annotations` would turn the tools' annotations into
    # strings, which fastmcp resolves in its own namespace rather than the tools' module.
    code = compile(source.replace(BUNDLED_CONTEXT, FASTMCP_CONTEXT), "<race tools>", "exec", dont_inherit=True)
    exec(code, module.__dict__)
    for name in names:
        server.tool(getattr(module, name))
    return len(names)


def build_server(offers: dict[str, Any]) -> FastMCP:
    server = FastMCP("race-fastmcp")
    add_tools(server)

    @server.custom_route("/debug", methods=["GET"])
    async def debug(request: Request) -> JSONResponse:
        if request.query_params.get("gc"):
            gc.collect()
        sessions = list(race_server.SESSIONS)
        return JSONResponse(
            {
                "rss": race_server.resident_bytes(),
                "sessions": len(sessions),
                "in_flight": sum(len(s._in_flight) for s in sessions),  # pyright: ignore[reportPrivateUsage]
                "held": sum(race_server.held_requests(s) for s in sessions),
                "tasks": len(asyncio.all_tasks()),
                "executions": len(race_server.EXECUTIONS),
                "features": offers,
            }
        )

    @server.custom_route("/debug/executions", methods=["GET"])
    async def executions(request: Request) -> JSONResponse:
        return JSONResponse(race_server.EXECUTIONS)

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready-file", type=Path, required=True, help="gets the port once the server listens")
    args = parser.parse_args()
    offers = features()
    race_server.track_sessions()
    app = build_server(offers).http_app(transport="sse")
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off only on sockets that say they are
    # TCP, as uvicorn's own do. Without it every response on a keep-alive connection waits ~40 ms for an ACK.
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
