"""Start race/server.py in a server venv (on a free port or a given one), find its port, read its /debug route,
stop it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from race.envs import Env

SERVER_SCRIPT = Path(__file__).resolve().parent / "server.py"
SERVER_V2_SCRIPT = SERVER_SCRIPT.with_name("server_v2.py")  # the same server for mcp 2.x
STARTUP_SECONDS = 90.0

# The patches a server's /debug features stand for, as a test or the benchmark names one the build
# lacks: the one place to change when the series is renumbered.
HOLD_PATCH = "patch 0003 (hold requests that arrive before initialize)"
HINT_PATCH = "patch 0004 (init_required in the SSE endpoint event)"
RESUME_PATCH = "patch 0005 (resume the SSE session of a client that reconnects)"
RESUME_HTTP_PATCH = "patch 0006 (resume unknown Streamable HTTP sessions)"
HANDOFF_PATCH = "patch 0008 (streams hand their clients off at shutdown)"


class Server:
    def __init__(
        self, env: Env, workdir: Path, options: list[str], environ: dict[str, str], script: Path = SERVER_SCRIPT
    ) -> None:
        self.env = env
        self.log_path = workdir / "server.log"
        ready_file = workdir / "port"
        command = [str(env.python), str(script), "--ready-file", str(ready_file), *options]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **environ},
            )
        self.url = f"http://127.0.0.1:{self._wait_for_port(ready_file)}"

    def _wait_for_port(self, ready_file: Path) -> int:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if ready_file.exists():
                return int(ready_file.read_text())
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.env.name} server did not start; its log:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def debug(self, collect: bool = True) -> dict[str, Any]:
        """Memory and session figures; `collect` runs the garbage collector first (exact, but slower)."""
        response = httpx.get(f"{self.url}/debug", params={"gc": "1"} if collect else {}, timeout=10.0)
        response.raise_for_status()
        return response.json()

    def executions(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/debug/executions", timeout=10.0)
        response.raise_for_status()
        return response.json()

    def wait_until_idle(self, seconds: float = 15.0) -> dict[str, Any]:
        """The debug figures once no session is left open (or the last ones seen at the deadline)."""
        deadline = time.monotonic() + seconds
        while True:
            figures = self.debug()
            if figures["sessions"] == 0 or time.monotonic() >= deadline:
                return figures
            time.sleep(0.2)

    def stop(self) -> None:
        stop(self.process)


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM `process` if it still runs, and SIGKILL it if it has not ended 10 s later."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def running(
    env: Env,
    *options: str,
    environ: dict[str, str] | None = None,
    script: Path = SERVER_SCRIPT,
    port: int | None = None,
) -> Iterator[Server]:
    """A server on a free port of 127.0.0.1 with `options` (see race/server.py --help) and extra `environ`.

    `script` runs another server script that takes --ready-file, e.g. race/fastmcp_server.py. `port`
    listens on that port instead, e.g. to start a server again where a stopped one listened.
    """
    if port is not None:
        options = ("--port", str(port), *options)
    with tempfile.TemporaryDirectory(prefix=f"race-{env.name}-") as tmp:
        server = Server(env, Path(tmp), list(options), environ or {}, script)
        try:
            yield server
        finally:
            server.stop()
