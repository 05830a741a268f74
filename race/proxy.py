"""A loopback TCP proxy that can drop every connection through it at once, as a network blip or a proxy's
idle timeout does, while the server behind it stays up.

    with proxying(server_port) as proxy:
        ...  # clients connect to 127.0.0.1:proxy.port
        proxy.drop()  # every open connection is reset, on both sides

It listens on a free port of 127.0.0.1, forwards bytes both ways to 127.0.0.1:`target_port`, runs its
event loop in a thread of the caller's process, and is bounded: at most `max_connections` open at
once (more are closed on arrival), and it stops by itself `lifetime` seconds after it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

HOST = "127.0.0.1"
CHUNK = 64 * 1024
MAX_CONNECTIONS = 64
LIFETIME = 300.0
START_SECONDS = 10.0


class Proxy:
    def __init__(self, target_port: int, max_connections: int = MAX_CONNECTIONS, lifetime: float = LIFETIME) -> None:
        self.target_port = target_port
        self.max_connections = max_connections
        self.lifetime = lifetime
        self.port = 0
        self.accepted = 0
        self.dropped = 0
        # Each open connection as its two writers: the client's side and the server's.
        self._open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._listening = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=f"proxy-{target_port}", daemon=True)

    def start(self) -> Proxy:
        self._thread.start()
        if not self._listening.wait(START_SECONDS) or not self.port:
            raise RuntimeError("the proxy did not start listening")
        return self

    def drop(self) -> int:
        """Reset every open connection, on both sides; the number dropped."""
        return asyncio.run_coroutine_threadsafe(self._drop(), self._loop).result(START_SECONDS)

    def open_connections(self) -> int:
        return len(self._open)

    def close(self) -> None:
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_SECONDS)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._listening.set()  # never leave start() waiting on a proxy that failed
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._listening.set()
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.lifetime)
        finally:
            server.close()
            await self._drop()
            if self._handlers:  # each ends once its connection is reset
                await asyncio.wait(self._handlers, timeout=START_SECONDS)
            await server.wait_closed()

    async def _drop(self) -> int:
        pairs = list(self._open)
        for pair in pairs:
            for writer in pair:
                _reset(writer)
        self._open.difference_update(pairs)
        self.dropped += len(pairs)
        return len(pairs)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)
        if len(self._open) >= self.max_connections:
            client_writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:  # the server is down: the client sees its connection reset, as without the proxy
            client_writer.transport.abort()
            return
        pair = (client_writer, server_writer)
        self._open.add(pair)
        try:
            # Either direction ending ends the connection: HTTP clients and servers do not half-close.
            pumps = [
                asyncio.ensure_future(_pump(client_reader, server_writer)),
                asyncio.ensure_future(_pump(server_reader, client_writer)),
            ]
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pending:
                pump.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            self._open.discard(pair)
            for writer in pair:
                writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close `writer`'s connection with a TCP reset (linger 0), not a FIN: what a peer sees of a dropped
    connection."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy `reader` to `writer` until either side closes or is reset."""
    with contextlib.suppress(OSError):
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()


@contextlib.contextmanager
def proxying(target_port: int, max_connections: int = MAX_CONNECTIONS, lifetime: float = LIFETIME) -> Iterator[Proxy]:
    """A started Proxy to 127.0.0.1:`target_port`, closed (every connection with it) on exit."""
    proxy = Proxy(target_port, max_connections, lifetime).start()
    try:
        yield proxy
    finally:
        proxy.close()
