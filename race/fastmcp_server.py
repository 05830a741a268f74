"""The race server's 380 tools on the standalone `fastmcp` package (2.x to 4.x), with the same /debug routes.

Run by path with the python of a venv holding fastmcp on top of stock mcp or of the fork (fastmcp 2.x
and 3.x on mcp 1.x, fastmcp 4.x on mcp 2.x):

    python race/fastmcp_server.py --ready-file PATH [--transport sse|http|http-stateless] [--session-idle-timeout S]
        [--port N] [--root-path PREFIX] [--graceful-shutdown-timeout S] [--slow-tool]

It serves SSE at /sse by default, or Streamable HTTP at /mcp (`http`: with sessions, as fastmcp's
`http_app()` does by default; `http-stateless`: `stateless_http=True`). --session-idle-timeout is
`http_app(session_idle_timeout=...)`, which fastmcp has since 4.x (2.x and 3.x build the session
manager with mcp's default of 30 minutes and offer no setting: the script exits if it is given there).

It is written as a fastmcp user writes a server, with nothing that knows of the fork: whatever the
fork changes reaches it through the `mcp` package fastmcp is built on. The tool recorder and the
memory figures are race/serving.py's; session tracking is race/server.py's on mcp 1.x and
race/server_v2.py's on mcp 2.x, all imported from beside this file.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import sys
from pathlib import Path
from typing import Any

from fastmcp import FastMCP

import mcp.types
from mcp.server.sse import SseServerTransport

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402
import toolbox  # noqa: E402
from serving import add_debug_routes, record  # noqa: E402

# The session tracking of the race server for the installed mcp (2.x has no mcp.server.fastmcp).
if int(importlib.metadata.version("mcp").split(".")[0]) >= 2:
    import server_v2 as race_server  # noqa: E402
else:
    import server as race_server  # noqa: E402

# The toolbox writes its tools for mcp's bundled FastMCP; fastmcp injects its own Context type.
FASTMCP_CONTEXT = "from fastmcp import Context"


def features() -> dict[str, Any]:
    """What the installed mcp offers (fastmcp has no settings for the fork's patches: they are the SSE
    transport's, whose defaults fastmcp's SSE app gets)."""
    patches = serving.transport_features(SseServerTransport)
    return {
        "mcp_version": importlib.metadata.version("mcp"),
        "fastmcp_version": importlib.metadata.version("fastmcp"),
        "not_initialized_code": getattr(mcp.types, "NOT_INITIALIZED", None),
        "holds_premature_requests": patches["hold_settings"],
        "endpoint_hint": patches["endpoint_hint"],
        "hands_off_at_shutdown": patches["hands_off_at_shutdown"],
    }


def add_tools(server: FastMCP, slow: bool = False) -> int:
    """toolbox's tools, with fastmcp's Context, each registered with the `tool` decorator (with `slow`, the
    slow tool too)."""
    tools = toolbox.define_tools(record, FASTMCP_CONTEXT, slow=slow)
    for tool in tools:
        server.tool(tool)
    return len(tools)


def build_server(offers: dict[str, Any], slow: bool = False) -> FastMCP:
    server = FastMCP("race-fastmcp")
    add_tools(server, slow)

    add_debug_routes(server, race_server.session_figures, lambda: offers)
    return server


def app(args: Any, offers: dict[str, Any]) -> Any:
    server = build_server(offers, args.slow_tool)
    if args.transport == "sse":
        return server.http_app(transport="sse")
    options: dict[str, Any] = {}
    if args.session_idle_timeout is not None:
        if "session_idle_timeout" not in inspect.signature(server.http_app).parameters:
            raise SystemExit(
                f"--session-idle-timeout given, but fastmcp {offers['fastmcp_version']} has no such setting"
            )
        options["session_idle_timeout"] = args.session_idle_timeout
    return server.http_app(transport="http", stateless_http=args.transport == "http-stateless", **options)


def main() -> None:
    offers = features()
    serving.main(__doc__, race_server.track_sessions, lambda args: app(args, offers), pending=False, transports=True)


if __name__ == "__main__":
    main()
