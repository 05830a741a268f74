"""The race server's 380 tools on the standalone `fastmcp` package (2.x to 4.x) over SSE, with the same /debug routes.

Run by path with the python of a venv holding fastmcp on top of stock mcp or of the fork (fastmcp 2.x
and 3.x on mcp 1.x, fastmcp 4.x on mcp 2.x):

    python race/fastmcp_server.py --ready-file PATH

It is written as a fastmcp user writes a server, with nothing that knows of the fork: whatever the
fork changes reaches it through the `mcp` package fastmcp is built on. The tool recorder and the
memory figures are race/serving.py's; session tracking is race/server.py's on mcp 1.x and
race/server_v2.py's on mcp 2.x, all imported from beside this file.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import inspect
import sys
import types
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse

import mcp.types
from mcp.server.lowlevel import Server
from mcp.server.session import ServerSession
from mcp.server.sse import SseServerTransport

sys.path.insert(0, str(Path(__file__).resolve().parent))
import toolbox  # noqa: E402
from serving import EXECUTIONS, record, resident_bytes, serve  # noqa: E402

# The session tracking of the race server for the installed mcp (2.x has no mcp.server.fastmcp).
if int(importlib.metadata.version("mcp").split(".")[0]) >= 2:
    import server_v2 as race_server  # noqa: E402
else:
    import server as race_server  # noqa: E402

# The toolbox writes its tools for mcp's bundled FastMCP; fastmcp injects its own Context type.
BUNDLED_CONTEXT = "from mcp.server.fastmcp import Context"
FASTMCP_CONTEXT = "from fastmcp import Context"


def features() -> dict[str, Any]:
    """What the installed mcp offers (fastmcp has no settings for the fork's patches).

    Read before race/server.py's session tracking wraps ServerSession.__init__ and hides its parameters.
    The hold settings are the session's on mcp 1.x and the low-level server's on 2.x.
    """
    holders = (ServerSession, Server)
    return {
        "mcp_version": importlib.metadata.version("mcp"),
        "fastmcp_version": importlib.metadata.version("fastmcp"),
        "not_initialized_code": getattr(mcp.types, "NOT_INITIALIZED", None),
        "holds_premature_requests": any("pending_request_timeout" in inspect.signature(h).parameters for h in holders),
        "endpoint_hint": "init_required_hint" in inspect.signature(SseServerTransport).parameters,
    }


def add_tools(server: FastMCP) -> int:
    """toolbox's tools, with fastmcp's Context, each registered with the `tool` decorator."""
    source, names = toolbox.generate()
    if source.count(BUNDLED_CONTEXT) != 1:
        raise SystemExit(f"toolbox no longer imports its Context as {BUNDLED_CONTEXT!r}")
    module = types.ModuleType("race_tools")
    module.record = record  # type: ignore[attr-defined]
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
        return JSONResponse(
            {
                "rss": resident_bytes(),
                **race_server.session_figures(),
                "tasks": len(asyncio.all_tasks()),
                "executions": len(EXECUTIONS),
                "features": offers,
            }
        )

    @server.custom_route("/debug/executions", methods=["GET"])
    async def executions(request: Request) -> JSONResponse:
        return JSONResponse(EXECUTIONS)

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready-file", type=Path, required=True, help="gets the port once the server listens")
    args = parser.parse_args()
    offers = features()
    race_server.track_sessions()
    serve(build_server(offers).http_app(transport="sse"), args.ready_file)


if __name__ == "__main__":
    main()
