"""fastmcp's own test suites on stock mcp and on the fork, in the same run: `scripts/fastmcp-suites`.

For each release: its sdist (which ships its tests, uv.lock and CI workflows) is downloaded and
unpacked into the cache, never into the repository. Its lock is exported without mcp, and
race/envs.py builds two venvs from it: stock mcp (or the fork) first, then every other package at
the version the lock pins. The suite runs in each as fastmcp's CI runs its unit step (the marker
selection and per-test timeout of its workflow, checked against the sdist), with at most 2 workers,
bounded by an overall time and by a stall time (no test finishing). The two runs are compared by
test node id; a test that fails on the fork only is run once more alone, on the fork and if it
fails again on stock, to tell a flake from a regression.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pq import upstream
from race import envs

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
PLUGIN = "initfix_outcomes"  # plugin/initfix_outcomes.py
BAD = ("failed", "hung")
# What fastmcp's CI deselects in its unit step (the rest run in other jobs: integration tests need
# secrets and the network, client_process and subprocess_heavy run serially, conformance needs Node).
MARKERS_V2 = "not integration and not client_process"
MARKERS_V3 = "not integration and not client_process and not conformance"
MARKERS_V4 = "not integration and not client_process and not subprocess_heavy and not conformance"
ACTION = ".github/actions/run-pytest/action.yml"


@dataclass(frozen=True)
class Release:
    version: str
    sha256: str  # of its sdist
    line: str  # the fork's line it requires
    markers: str  # its CI's unit selection
    workflow: str  # the file of its sdist that says so

    @property
    def bases(self) -> tuple[str, str]:
        """envs.fastmcp_base's names of stock and of the fork beneath it."""
        return ("stock", "fork") if self.line == "v1.x" else ("stock-v2", "fork-v2")


RELEASES = [
    Release(
        "2.14.7",
        "0d2e83b9d1c5fe0af32036979de3bb99a38f05dc1476d60f1b3259168e139cd0",
        "v1.x",
        MARKERS_V2,
        ".github/workflows/run-tests.yml",
    ),
    Release("3.2.4", "083ecb75b44a4169e7fc0f632f94b781bdb0ff877c6b35b9877cbb566fd4d4d1", "v1.x", MARKERS_V3, ACTION),
    Release("3.4.11", "36273b04eff98021da4601d4f86c64dfa10e61119e9ddd17ad80650465c65355", "v1.x", MARKERS_V3, ACTION),
    Release("4.1.7", "af7426a77689627b282fa1dc876dc65a200c2e81636e7dd81ad761640ce8070c", "v2.x", MARKERS_V4, ACTION),
    Release("4.2.3", "0c9d1739d59e89506489bea589dec6193d204ab86e9739333d6bb46c13476477", "v2.x", MARKERS_V4, ACTION),
]
# Locked pins the package index does not serve (checked with pip), and what is installed instead,
# on stock and fork alike; the report lists them. certifi's release was replaced by a .post1;
# pydocket 0.29.1, for fastmcp's task tests, is not there, 0.27.2 is the newest that is.
SUBSTITUTES = {
    "3.4.11": {"certifi==2026.10.19": "certifi==2026.10.19.post1"},
    "4.1.7": {"certifi==2026.10.19": "certifi==2026.10.19.post1"},
    "4.2.3": {"certifi==2026.10.19": "certifi==2026.10.19.post1", "pydocket==0.29.1": "pydocket==0.27.2"},
}
PER_TEST_TIMEOUT = 5  # seconds, as fastmcp's CI passes --timeout
RERUN_TIMEOUT = 60  # seconds for one test run alone, interpreter start included


def work_dir() -> Path:
    return upstream.cache_dir() / "fastmcp-suites"


# This invocation's outcomes and logs: two runs of the command at once must not share files.
RUN_ID = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def runs_dir() -> Path:
    return work_dir() / "runs" / RUN_ID


def source_tree(release: Release) -> Path:
    """The release's unpacked sdist in the cache, its CI's selection checked."""
    tree = work_dir() / f"fastmcp-{release.version}"
    if not tree.exists():
        tree.parent.mkdir(parents=True, exist_ok=True)
        upstream.unpack(upstream.download("fastmcp", release.version, release.sha256), tree)
    workflow = (tree / release.workflow).read_text(encoding="utf-8")
    if f'"{release.markers}"' not in workflow:
        raise SystemExit(f"fastmcp {release.version}: {release.workflow} no longer selects -m {release.markers!r}")
    return tree


def locked_requirements(release: Release, tree: Path) -> Path:
    """The lock's default environment (the dev group, as `uv sync --locked`), less mcp and mcp-types;
    fastmcp's own projects as editable folders, by absolute path."""
    from uv import find_uv_bin

    command = [find_uv_bin(), "export", "--frozen", "--no-hashes", "--no-header", "--no-annotate"]
    command += ["--no-emit-package", "mcp", "--no-emit-package", "mcp-types"]
    exported = subprocess.run(command, cwd=tree, check=True, capture_output=True, text=True).stdout
    substitutes = SUBSTITUTES.get(release.version, {})
    lines = [
        f"-e {(tree / line.removeprefix('-e ')).resolve()}" if line.startswith("-e .") else line
        for line in exported.splitlines()
    ]
    missing = sorted(set(substitutes) - {line.split(" ;")[0] for line in lines})
    if missing:
        raise SystemExit(f"fastmcp {release.version}: its lock no longer pins {', '.join(missing)}; update SUBSTITUTES")
    lines = [substitutes.get(line.split(" ;")[0], line) for line in lines]
    path = work_dir() / f"requirements-{release.version}.txt"
    partial = path.with_name(f"{path.name}.{os.getpid()}")  # another run may be reading it
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


@dataclass
class Outcome:
    status: str  # passed, failed, skipped, hung (started, never finished), not run
    message: str = ""


def read_outcomes(path: Path) -> dict[str, Outcome]:
    """What the plugin recorded, one outcome per node id."""
    collected: set[str] = set()
    started: set[str] = set()
    phases: dict[str, list[dict[str, str]]] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # the last line of a killed run
            continue
        if record["event"] == "collected":
            collected.update(record["ids"])
        elif record["event"] == "start":
            started.add(record["id"])
        else:
            phases.setdefault(record["id"], []).append(record)
    result = {}
    for nodeid in sorted(collected | started | set(phases)):
        reports = phases.get(nodeid, [])
        # pytest-retry (fastmcp's flaky marks) logs each attempt but the last as "retried".
        failed = [r for r in reports if r["outcome"] == "failed"]
        ended = any(r["when"] in ("teardown", "collect") for r in reports)
        if nodeid in started and not ended:
            result[nodeid] = Outcome("hung", failed[0].get("message", "") if failed else "")
        elif failed:
            result[nodeid] = Outcome("failed", failed[0].get("message", ""))
        elif any(r["outcome"] == "skipped" for r in reports):
            result[nodeid] = Outcome("skipped")
        elif reports:
            result[nodeid] = Outcome("passed")
        else:
            result[nodeid] = Outcome("not run")
    return result


@dataclass
class Run:
    """One run of a suite in one venv."""

    mcp: str
    outcomes: dict[str, Outcome]
    seconds: float
    ended: str  # "exit N", or why it was stopped
    log: str

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes.values())


def pytest_command(env: envs.Env, release: Release, args: list[str]) -> list[str]:
    return [
        str(env.python),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        PLUGIN,
        "--inline-snapshot=disable",
        f"--timeout={PER_TEST_TIMEOUT}",
        "-m",
        release.markers,
        "-q",
        "-o",
        "console_output_style=classic",
        *args,
    ]


def run_pytest(command: list[str], tree: Path, name: str, limit: float, stall: float) -> tuple[Path, float, str, Path]:
    """Run `command` (a venv's python first) in `tree`, stopped after `limit` seconds, or after
    `stall` seconds in which no test reported anything. Its process group is ended by its id;
    nothing else is touched.

    As under `uv run`, the venv is active: its bin/ comes first on PATH, so the suite's tests that
    start `python` or `fastmcp` as a subprocess get the venv's.
    """
    runs = runs_dir()
    runs.mkdir(parents=True, exist_ok=True)
    outcomes, log = runs / f"{name}.jsonl", runs / f"{name}.log"
    outcomes.unlink(missing_ok=True)
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment |= {"PYTHONPATH": str(PLUGIN_DIR), "INITFIX_OUTCOMES": str(outcomes), "PY_COLORS": "0"}
    bin_dir = Path(command[0]).parent
    environment |= {"VIRTUAL_ENV": str(bin_dir.parent), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            command, cwd=tree, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            ended = _watch(process, outcomes, started, limit, stall)
        finally:  # also when this command is interrupted: its own session does not get the signal
            _end_group(process)
    return outcomes, time.monotonic() - started, ended, log


def _watch(process: subprocess.Popen[bytes], outcomes: Path, started: float, limit: float, stall: float) -> str:
    last_size, last_change = -1, started
    while process.poll() is None:
        time.sleep(1)
        now = time.monotonic()
        size = outcomes.stat().st_size if outcomes.exists() else 0
        if size != last_size:
            last_size, last_change = size, now
        if now - started > limit:
            return f"stopped after the overall limit of {limit:.0f} s"
        # Collection (minutes for fastmcp 3.4.11 on a busy machine) writes nothing until it is done,
        # so the stall bound starts with the first record; until then only the overall limit applies.
        if last_size > 0 and now - last_change > stall:
            return f"stopped: no test reported for {stall:.0f} s"
    return f"exit {process.returncode}"


def _end_group(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_suite(env: envs.Env, release: Release, tree: Path, name: str, options: argparse.Namespace) -> Run:
    xdist = ["--numprocesses", str(options.workers), "--dist", "worksteal"] if options.workers > 1 else []
    select = ["-k", options.k] if options.k else []
    command = pytest_command(env, release, [*xdist, *select, "tests"])
    outcomes, seconds, ended, log = run_pytest(command, tree, name, options.limit, options.stall)
    run = Run(envs.installed(env, "mcp")[0], read_outcomes(outcomes), seconds, ended, str(log))
    # A run stopped by a hang, or aborted when xdist lost a worker, leaves tests it never reached:
    # run those once more, so that one crash does not hide the rest of the suite.
    left = [nodeid for nodeid, outcome in run.outcomes.items() if outcome.status == "not run"]
    if left and seconds < options.limit:
        command = pytest_command(env, release, [*xdist, *left])
        outcomes, more, ended, _ = run_pytest(command, tree, f"{name}-rest", options.limit - seconds, options.stall)
        rest = read_outcomes(outcomes)
        run.outcomes.update({nodeid: rest[nodeid] for nodeid in left if nodeid in rest})
        run.seconds += more
        run.ended += f"; the {len(left)} tests it did not reach run again: {ended}"
    return run


def run_alone(env: envs.Env, release: Release, tree: Path, nodeid: str, name: str) -> str:
    outcomes, _, _, _ = run_pytest(pytest_command(env, release, [nodeid]), tree, name, RERUN_TIMEOUT, RERUN_TIMEOUT)
    return read_outcomes(outcomes).get(nodeid, Outcome("not run")).status


@dataclass
class Difference:
    nodeid: str
    stock: str
    fork: str
    message: str  # the fork's failure, or stock's for a fixed test
    verdict: str = ""  # for a new failure: what running it alone showed
    flake: bool = False


@dataclass
class Report:
    version: str
    line: str
    markers: str
    workers: int
    stock: dict[str, object] = field(default_factory=dict)
    fork: dict[str, object] = field(default_factory=dict)
    new: list[Difference] = field(default_factory=list)
    fixed: list[Difference] = field(default_factory=list)
    unchanged: list[Difference] = field(default_factory=list)
    only_stock: int = 0  # ids run on one side only (e.g. behind a hang)
    only_fork: int = 0
    substituted: list[str] = field(default_factory=list)  # locked pins the index does not serve
    error: str = ""  # why the release could not be run at all

    @property
    def regressions(self) -> int:
        return sum(not d.flake for d in self.new)


STATUSES = ("passed", "failed", "hung", "skipped", "not run")


def summary(run: Run) -> dict[str, object]:
    return {"mcp": run.mcp, **{s: run.count(s) for s in STATUSES}, "seconds": round(run.seconds), "ended": run.ended}


def compare(release: Release, stock: Run, fork: Run, workers: int) -> Report:
    report = Report(release.version, release.line, release.markers, workers, summary(stock), summary(fork))
    ran = ("passed", "failed", "hung", "skipped")
    # A side that ran no test (stopped while collecting, or pytest could not start) proves nothing,
    # and "0 new failures" would read as a pass.
    empty = [
        f"{name} ran no test ({run.ended})"
        for name, run in (("stock", stock), ("fork", fork))
        if not any(map(run.count, ran))
    ]
    if empty:
        report.error = "; ".join(empty)
        return report
    for nodeid in sorted(stock.outcomes.keys() | fork.outcomes.keys()):
        s = stock.outcomes.get(nodeid, Outcome("not run"))
        f = fork.outcomes.get(nodeid, Outcome("not run"))
        if s.status not in ran or f.status not in ran:
            report.only_stock += s.status in ran
            report.only_fork += f.status in ran
        elif f.status in BAD and s.status not in BAD:
            report.new.append(Difference(nodeid, s.status, f.status, f.message))
        elif s.status in BAD and f.status not in BAD:
            report.fixed.append(Difference(nodeid, s.status, f.status, s.message))
        elif s.status in BAD:
            report.unchanged.append(Difference(nodeid, s.status, f.status, f.message))
    return report


def classify(report: Report, release: Release, tree: Path, pair: tuple[envs.Env, envs.Env], most: int) -> None:
    """Run each new failure alone: on the fork, and if it fails again there, on stock."""
    stock_env, fork_env = pair
    for number, difference in enumerate(report.new):
        if number >= most:
            difference.verdict = f"not rerun (more than {most} new failures)"
            continue
        tag = f"{release.version}-rerun-{number}"
        fork_alone = run_alone(fork_env, release, tree, difference.nodeid, f"{tag}-fork")
        if fork_alone == "passed":
            difference.verdict, difference.flake = "flake: passed when rerun alone on the fork", True
            continue
        stock_alone = run_alone(stock_env, release, tree, difference.nodeid, f"{tag}-stock")
        if stock_alone in BAD:
            difference.verdict = f"flake: {stock_alone} on stock too when rerun alone (fork alone: {fork_alone})"
            difference.flake = True
        else:
            difference.verdict = f"real: {fork_alone} alone on the fork, {stock_alone} alone on stock"


def suite(release: Release, options: argparse.Namespace) -> Report:
    tree = source_tree(release)
    requirements = locked_requirements(release, tree)
    stock_env, fork_env = (envs.fastmcp_suite_env(release.version, on, requirements) for on in release.bases)
    runs = {}
    for side, env in (("stock", stock_env), ("fork", fork_env)):
        print(f"fastmcp {release.version}: running its unit suite on {side} ...", file=sys.stderr, flush=True)
        runs[side] = run_suite(env, release, tree, f"{release.version}-{side}", options)
        print(f"  {_counts(summary(runs[side]))}", file=sys.stderr, flush=True)
    report = compare(release, runs["stock"], runs["fork"], options.workers)
    report.substituted = [f"{locked} -> {used}" for locked, used in SUBSTITUTES.get(release.version, {}).items()]
    classify(report, release, tree, (stock_env, fork_env), options.reruns)
    return report


def suite_or_error(release: Release, options: argparse.Namespace) -> Report:
    """One release's report; a release whose environments cannot be built is reported as such, and
    the others still run."""
    try:
        return suite(release, options)
    except subprocess.CalledProcessError as error:
        failed = Report(release.version, release.line, release.markers, options.workers)
        failed.error = f"{' '.join(map(str, error.cmd))} exited {error.returncode}"
        print(f"fastmcp {release.version}: {failed.error}", file=sys.stderr, flush=True)
        return failed


def _counts(side: dict[str, object]) -> str:
    counts = ", ".join(f"{side[s]} {s}" for s in STATUSES if side[s])
    return f"mcp {side['mcp']}: {counts}; {_minutes(side['seconds'])} ({side['ended']})"


def _minutes(seconds: object) -> str:
    return f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"  # type: ignore[call-overload]


def _short(side: dict[str, object]) -> str:
    return f"{side['passed']} / {side['failed']} / {side['hung']}"


def render(reports: list[Report]) -> str:
    out = []
    for r in reports:
        out.append(f"fastmcp {r.version} on the fork's {r.line} line: -m {r.markers!r}, {r.workers} workers")
        if r.error:
            out += [f"  could not run: {r.error}", ""]
            continue
        if r.substituted:
            out.append(f"  not on the index, on both sides instead: {', '.join(r.substituted)}")
        out.append(f"  {'':6}{'mcp':>20}" + "".join(f"{s:>9}" for s in STATUSES) + f"{'wall':>9}  end")
        for name, side in (("stock", r.stock), ("fork", r.fork)):
            cells = "".join(f"{side[s]:>9}" for s in STATUSES)
            out.append(f"  {name:6}{side['mcp']:>20}{cells}{_minutes(side['seconds']):>9}  {side['ended']}")
        flakes = len(r.new) - r.regressions
        out.append(
            f"  new failures on the fork: {len(r.new)} ({r.regressions} real, {flakes} flakes); "
            f"fixed by the fork: {len(r.fixed)}; unchanged failures: {len(r.unchanged)}"
        )
        if r.only_stock or r.only_fork:
            out.append(f"  run on one side only: {r.only_stock} on stock, {r.only_fork} on the fork")
        for kind, differences in (("new", r.new), ("fixed", r.fixed), ("unchanged", r.unchanged)):
            for d in differences:
                detail = d.verdict if kind == "new" else f"stock {d.stock}, fork {d.fork}"
                out.append(
                    f"  {kind:9} {d.nodeid}\n            {detail}" + (f"\n            {d.message}" if d.message else "")
                )
        out.append("")
    out += ["| fastmcp | line | stock | fork | new (real) | fixed | unchanged | wall stock / fork |", "|---" * 8 + "|"]
    for r in reports:
        if r.error:
            out.append(f"| {r.version} | {r.line} | could not run | | | | | |")
            continue
        walls = f"{_minutes(r.stock['seconds'])} / {_minutes(r.fork['seconds'])}"
        cells = [r.version, r.line, _short(r.stock), _short(r.fork), f"{len(r.new)} ({r.regressions})"]
        out.append("| " + " | ".join([*cells, str(len(r.fixed)), str(len(r.unchanged)), walls]) + " |")
    out.append("(stock, fork: passed / failed / hung)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fastmcp-suites", description=__doc__.split("\n\n")[0])
    versions = [r.version for r in RELEASES]
    parser.add_argument("--version", action="append", choices=versions, help="a release to run (default: all)")
    parser.add_argument("--json", action="store_true", help="print every figure and difference as JSON")
    parser.add_argument("--workers", type=int, default=2, choices=[1, 2], help="pytest-xdist workers (default 2)")
    parser.add_argument("--limit", type=float, default=1800, help="seconds one suite run may take (default 1800)")
    parser.add_argument("--stall", type=float, default=60, help="seconds with no test reported (default 60)")
    parser.add_argument("--reruns", type=int, default=40, help="most new failures rerun alone per release")
    parser.add_argument("-k", help="only the tests this pytest -k expression selects (for a quick check)")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that run_pytest ends its suite
    chosen = [r for r in RELEASES if r.version in (options.version or versions)]
    reports = [suite_or_error(release, options) for release in chosen]
    figures = json.dumps([asdict(r) for r in reports], indent=2)
    runs_dir().mkdir(parents=True, exist_ok=True)
    (runs_dir() / "report.json").write_text(figures + "\n", encoding="utf-8")
    print(figures if options.json else render(reports))
    return 1 if any(r.regressions or r.error for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
