"""The balancers of the deployment recipe (docs/deploy.md), started from its files in deploy/ as they are.

haproxy runs deploy/haproxy.cfg, which reads every address from the environment; its runtime API (a Unix
socket in a scratch folder) drains a replica, enables it again and says which replicas are up. nginx reads no
environment: deploy/nginx.conf is rendered first, each ${MCP_...} name replaced as `envsubst` does when given
the list of names, and included from a main file that puts nginx's own files in the scratch folder.

Both run from the distribution's packages (scripts/bootstrap installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from race import process

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
HAPROXY_CONFIG = DEPLOY / "haproxy.cfg"
NGINX_CONFIG = DEPLOY / "nginx.conf"
# The replicas the recipe is written for; each is reached at MCP_REPLICA_<NAME> and serves under /<name>.
REPLICAS = ("a", "b")
# The recipe's backends that balance over every replica, where a drain applies.
BALANCED_BACKENDS = ("sse", "streamable_http")
START_SECONDS = 15.0
# What haproxy's `show stat` says of a server that takes new requests.
UP = "UP"


def program(name: str) -> str:
    """The path of haproxy or nginx: on PATH, or in /usr/sbin (not on a user's PATH on Debian)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(
            f"{name} not found: scripts/bootstrap installs it (apt-get install {name}); "
            "the deployment recipe's test and the rolling benchmark run it"
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts connections on `port` of 127.0.0.1."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def environment(listen: int, replicas: dict[str, int]) -> dict[str, str]:
    """The recipe's variables: MCP_LISTEN, and MCP_REPLICA_<NAME> for each replica's port, all on 127.0.0.1."""
    found = {"MCP_LISTEN": f"127.0.0.1:{listen}"}
    for name, port in replicas.items():
        found[f"MCP_REPLICA_{name.upper()}"] = f"127.0.0.1:{port}"
    return found


class Haproxy:
    """haproxy with deploy/haproxy.cfg in front of `replicas` (name: port on 127.0.0.1), until `stop`."""

    def __init__(self, workdir: Path, replicas: dict[str, int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.socket_path = workdir / "haproxy.sock"
        self.log_path = workdir / "haproxy.log"
        variables = {**environment(self.port, replicas), "MCP_HAPROXY_SOCKET": str(self.socket_path)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [program("haproxy"), "-db", "-f", str(HAPROXY_CONFIG)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **variables},
            )
        deadline = time.monotonic() + START_SECONDS
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"haproxy did not start; its log:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            self.command("show info")
        except OSError:
            return False
        return True

    def command(self, line: str) -> str:
        """One command of haproxy's runtime API, and its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10.0)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def states(self) -> dict[tuple[str, str], str]:
        """The status of every server, by (backend, server): UP, DOWN, DRAIN, MAINT, ...; UP 1/2 while rising."""
        header, *rows = self.command("show stat").strip().splitlines()
        names = header.removeprefix("# ").split(",")
        found = {}
        for row in rows:
            fields = dict(zip(names, row.split(","), strict=False))
            if fields["svname"] not in ("FRONTEND", "BACKEND"):
                found[(fields["pxname"], fields["svname"])] = fields["status"]
        return found

    def replica_states(self, name: str) -> dict[str, str]:
        """The status of replica `name` in each backend that has it."""
        return {backend: status for (backend, server), status in self.states().items() if server == name}

    def drain(self, name: str) -> None:
        """No new stream and no new request of the balanced backends goes to replica `name`; what it serves
        goes on, and its own prefix still reaches it."""
        for backend in BALANCED_BACKENDS:
            self._set(f"set server {backend}/{name} state drain")

    def enable(self, name: str) -> None:
        """Undo `drain`: the balanced backends send to replica `name` again once its checks pass."""
        for backend in BALANCED_BACKENDS:
            self._set(f"set server {backend}/{name} state ready")

    def _set(self, line: str) -> None:
        answer = self.command(line).strip()
        if answer:  # haproxy answers nothing when a command succeeds
            raise RuntimeError(f"haproxy: {line!r}: {answer}")

    def wait_until_up(self, names: tuple[str, ...] = REPLICAS, seconds: float = 30.0) -> None:
        """Return once every backend takes new requests to each of `names`; fail after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            states = {name: self.replica_states(name) for name in names}
            if all(status == UP for found in states.values() for status in found.values()):
                return
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"replicas not up in haproxy within {seconds} s: {states}\n{self.log()[-2000:]}")
            time.sleep(0.1)  # polling haproxy's runtime API, bounded by the deadline

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        process.stop(self.process)


# A name the recipe's nginx file reads from the environment, as envsubst sees one.
NGINX_VARIABLE = re.compile(r"\$\{(MCP_[A-Z0-9_]+)\}")


def render_nginx(variables: dict[str, str], text: str | None = None) -> str:
    """deploy/nginx.conf (or `text`) with each ${MCP_...} replaced by its value, as
    `envsubst '${MCP_LISTEN} ${MCP_REPLICA_A} ...'` does; nginx's own $variables stay. Fails on a name without a
    value, where envsubst would write an empty string."""
    source = NGINX_CONFIG.read_text(encoding="utf-8") if text is None else text
    missing = sorted(set(NGINX_VARIABLE.findall(source)) - set(variables))
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")
    return NGINX_VARIABLE.sub(lambda match: variables[match.group(1)], source)


def nginx_main(workdir: Path, included: Path) -> str:
    """A main nginx.conf that keeps nginx's own files in `workdir` and includes `included` in its http block, as
    a distribution's /etc/nginx/nginx.conf includes conf.d/*.conf."""
    return f"""daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{}}
http {{
    access_log off;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {included};
}}
"""


class Nginx:
    """nginx with deploy/nginx.conf, rendered for `replicas` (name: port on 127.0.0.1), until `stop`."""

    def __init__(self, workdir: Path, replicas: dict[str, int], *, start: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        included = workdir / "mcp.conf"
        included.write_text(render_nginx(environment(self.port, replicas)), encoding="utf-8")
        self.config = workdir / "nginx.conf"
        self.config.write_text(nginx_main(workdir, included), encoding="utf-8")
        self.log_path = workdir / "nginx.log"
        self.process: subprocess.Popen[bytes] | None = None
        if start:
            self._start()

    def _command(self, *options: str) -> list[str]:
        # -e: the log of nginx's start, before it reads error_log from the file.
        return [
            program("nginx"),
            "-p",
            str(self.workdir),
            "-e",
            str(self.workdir / "error.log"),
            "-c",
            str(self.config),
            *options,
        ]

    def check(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t`: the rendered files are valid, and nginx says so on stderr."""
        return subprocess.run(self._command("-t"), capture_output=True, text=True, timeout=30)

    def _start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_SECONDS
        while not listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start; its log:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def log(self) -> str:
        error_log = self.workdir / "error.log"
        return self.log_path.read_text(errors="replace") + (
            error_log.read_text(errors="replace") if error_log.exists() else ""
        )

    def stop(self) -> None:
        if self.process is not None:
            process.stop(self.process)
