"""What every race server script shares, whichever mcp (1.x or 2.x) or fastmcp it runs on.

Imported by path from beside the scripts (race/server.py, race/server_v2.py, race/fastmcp_server.py),
so it needs only the standard library and uvicorn: the record of tool runs the tools write, the
process's memory, and serving an ASGI app on a free port of 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import uvicorn

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


def serve(app: Any, ready_file: Path) -> None:
    """Serve `app` on a free port of 127.0.0.1 until SIGTERM; write the port to `ready_file` once it listens."""
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
        partial = ready_file.with_suffix(".partial")
        partial.write_text(str(sock.getsockname()[1]))
        partial.rename(ready_file)

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])
