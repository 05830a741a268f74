"""A link with latency on loopback: a TCP proxy on 127.0.0.1 that delays every chunk in each direction.

netem is not available everywhere and needs root; a userspace proxy is enough to show what a round
trip costs a client. Standard library only, run by path in its own process, so that its timers do not
wait for the benchmark's client or a server:

    python bench/proxy.py --target PORT --delay SECONDS --ready-file PATH [--seconds S]

Each chunk read from one side is written to the other `--delay` seconds after it arrived, in order,
so a client that sends three requests at once pays the delay once, as on a real link. A connection's
first chunk from the client waits one round trip more: a real link spends it on the TCP handshake,
which here completes at once on loopback. The proxy listens and connects on 127.0.0.1 only, takes at
most MAX_CONNECTIONS connections, and ends by itself after `--seconds`.

`link()` runs one in front of a server for the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
CHUNK_BYTES = 64 * 1024
# A connection's chunks in one direction; the benchmark's longest stream sends a few thousand.
MAX_CHUNKS = 1_000_000
# Chunks read but not yet due, per direction: reading waits once this many are queued (at most 64 MiB).
QUEUED_CHUNKS = 1024
MAX_CONNECTIONS = 100_000
STARTUP_SECONDS = 30.0


def no_delay(writer: asyncio.StreamWriter) -> None:
    """Send each chunk as soon as it is due: Nagle's algorithm would hold small ones for an ACK."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, first_extra: float) -> None:
    """Copy `reader` to `writer`, each chunk `delay` seconds after it arrived (the first `first_extra` more)."""
    loop = asyncio.get_running_loop()
    due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUED_CHUNKS)

    async def deliver() -> None:
        for _ in range(MAX_CHUNKS + 1):
            at, data = await due.get()
            if not data:
                break
            await asyncio.sleep(max(0.0, at - loop.time()))
            writer.write(data)
            await writer.drain()
        # The sender closed its side: pass the end on, as late as its last chunk.
        if writer.can_write_eof():
            writer.write_eof()

    delivering = asyncio.create_task(deliver())
    try:
        for index in range(MAX_CHUNKS):
            data = await reader.read(CHUNK_BYTES)
            await due.put((loop.time() + delay + (first_extra if index == 0 else 0.0), data))
            if not data:
                break
        else:
            await due.put((loop.time() + delay, b""))
        await delivering
    finally:
        delivering.cancel()


async def serve(target: int, delay: float, ready_file: Path, seconds: float) -> None:
    connections = 0
    # The event loop keeps only weak references to tasks: a connection whose sockets both wait (reading
    # paused, nothing to write) would otherwise be collected mid-flight.
    alive: set[asyncio.Task[object]] = set()

    async def accept(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections > MAX_CONNECTIONS:
            client_writer.close()
            return
        server_reader, server_writer = await asyncio.open_connection(HOST, target)
        for writer in (client_writer, server_writer):
            no_delay(writer)
        directions = [
            asyncio.create_task(carry(client_reader, server_writer, delay, first_extra=2 * delay)),
            asyncio.create_task(carry(server_reader, client_writer, delay, first_extra=0.0)),
        ]
        mine = {*directions, asyncio.current_task()}
        alive.update(task for task in mine if task is not None)
        try:
            await asyncio.gather(*directions)
        except (ConnectionError, OSError):
            pass  # one side went away: the other is dropped below, as a broken link would drop it
        finally:
            for task in directions:
                task.cancel()
            for writer in (client_writer, server_writer):
                writer.close()
            alive.difference_update(mine)

    server = await asyncio.start_server(accept, HOST, 0)
    async with server:
        partial = ready_file.with_suffix(".partial")
        partial.write_text(str(server.sockets[0].getsockname()[1]))
        partial.rename(ready_file)  # appears whole
        await asyncio.sleep(seconds)  # the proxy's whole life: it ends by itself even if nobody stops it


@contextlib.contextmanager
def link(url: str, one_way: float, seconds: float = 3600.0) -> Iterator[str]:
    """The URL of a proxy in front of the server at `url` (http://127.0.0.1:PORT) adding `one_way` seconds
    each way, for at most `seconds`."""
    port = int(url.rsplit(":", 1)[1])
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        ready = Path(tmp) / "port"
        command = [sys.executable, __file__, "--target", str(port), "--delay", str(one_way)]
        command += ["--ready-file", str(ready), "--seconds", str(seconds)]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not ready.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the latency proxy did not start (exit status {process.poll()})")
                time.sleep(0.05)  # waiting for the proxy's port, bounded by the deadline
            yield f"http://{HOST}:{int(ready.read_text())}"
        finally:
            from race.process import stop  # here, so that the proxy itself needs only the standard library

            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=int, required=True, help="the port on 127.0.0.1 to forward to")
    parser.add_argument("--delay", type=float, default=0.010, help="one-way delay in seconds (default 10 ms)")
    parser.add_argument("--ready-file", type=Path, required=True, help="gets the proxy's port once it listens")
    parser.add_argument("--seconds", type=float, default=3600.0, help="the proxy's lifetime")
    args = parser.parse_args()
    if not args.delay >= 0:
        raise SystemExit("--delay must be a non-negative number of seconds")
    asyncio.run(serve(args.target, args.delay, args.ready_file, args.seconds))


if __name__ == "__main__":
    main()
