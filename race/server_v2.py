"""The race server for mcp 2.x: race/server.py's 380 tools on MCPServer (FastMCP's name since 2.0) over SSE.

Run by path with a v2.x server venv's python (stock mcp 2.3.0 or the fork's v2.x line); it imports
only mcp, its dependencies and the sibling toolbox.py and serving.py, never the `race` package:

    python race/server_v2.py --ready-file PATH [--pending-request-timeout S] [--max-pending-requests N]

mcp 2.x reads no settings from the environment, so the hold settings are flags here and go to
`MCPServer(...)` as keyword arguments. The routes are race/server.py's: GET /debug and
GET /debug/executions. In 2.x a connection is served by a `ServerRunner` (the per-request
`ServerSession` lives only as long as its request), so the runners are what /debug counts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import inspect
import sys
import types
import weakref
from pathlib import Path
from typing import Any

import mcp_types
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import ServerRunner
from starlette.requests import Request
from starlette.responses import JSONResponse

sys.path.insert(0, str(Path(__file__).resolve().parent))
import toolbox  # noqa: E402
from serving import EXECUTIONS, record, resident_bytes, serve  # noqa: E402

# By id: a runner is a dataclass, compared by value and so unhashable.
RUNNERS: weakref.WeakValueDictionary[int, ServerRunner[Any]] = weakref.WeakValueDictionary()
# Keyword arguments of the hold-and-serve patch; stock 2.3.0 has none of them.
PENDING_SETTINGS = ("pending_request_timeout", "max_pending_requests")
# The toolbox writes its tools for 1.x's bundled FastMCP; 2.x has the same Context under the new name.
V1_CONTEXT = "from mcp.server.fastmcp import Context"
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
        "pending_settings": all(name in inspect.signature(MCPServer).parameters for name in PENDING_SETTINGS),
        "endpoint_hint": "init_required_hint" in inspect.signature(MCPServer.sse_app).parameters,
    }


def add_tools(server: MCPServer) -> int:
    """toolbox's tools, with MCPServer's Context."""
    source, names = toolbox.generate()
    if source.count(V1_CONTEXT) != 1:
        raise SystemExit(f"toolbox no longer imports its Context as {V1_CONTEXT!r}")
    module = types.ModuleType("race_tools")
    module.record = record  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    # dont_inherit: this file's `from __future__ import annotations` would make the tools' annotations strings.
    exec(compile(source.replace(V1_CONTEXT, V2_CONTEXT), "<race tools>", "exec", dont_inherit=True), module.__dict__)
    for name in names:
        server.add_tool(getattr(module, name))
    return len(names)


def build_server(args: argparse.Namespace) -> MCPServer:
    settings: dict[str, Any] = {}
    for name in PENDING_SETTINGS:
        value = getattr(args, name)
        if value is not None:
            if not features()["pending_settings"]:
                raise SystemExit(f"{name} given, but this mcp ({features()['mcp_version']}) has no such setting")
            settings[name] = value
    server = MCPServer("race", log_level="WARNING", **settings)
    add_tools(server)

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
