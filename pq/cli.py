"""pq: the patch queue of mcp-initfix. One command per job; `pq --help` lists them."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from pq import checkout, checks, gates, queue, upstream
from pq.queue import Line, SeriesError

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "patches"
WORKSPACES = ROOT / "workspace"


def all_lines() -> list[Line]:
    return [Line(path) for path in sorted(PATCHES.iterdir()) if (path / upstream.PIN_FILE).exists()]


def get_line(name: str) -> Line:
    line = Line(PATCHES / name)
    if not (line.path / upstream.PIN_FILE).exists():
        known = ", ".join(line.name for line in all_lines())
        raise SystemExit(f"no line {name!r} under {PATCHES} (known: {known})")
    return line


def distributions() -> list[Path]:
    """Project folders of the fork's distributions: the root (v1.x `mcp`) and each of lines/*."""
    return [ROOT, *sorted(path.parent for path in (ROOT / "lines").glob("*/pyproject.toml"))]


def read_pyproject(project: Path) -> dict[str, Any]:
    return upstream.tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))


def _line_of(pyproject: dict[str, Any]) -> str:
    return checkout.Distribution.from_pyproject(pyproject).line


def cmd_fetch(args: argparse.Namespace) -> int:
    for line in _selected(args):
        print(upstream.fetch(line.pin))
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    for project in distributions():
        config = checkout.Distribution.from_pyproject(read_pyproject(project))
        line = get_line(config.line)
        state = "current" if checkout.is_current(project, line, config.packages) else "materialized"
        src = checkout.ensure(project, line, config.packages)
        patches = f"{line.pin.requirement} plus {len(line.series())} patches of {line.name}"
        print(f"{src.relative_to(ROOT)}: {patches} ({state})")
    return 0


def cmd_workspace(args: argparse.Namespace) -> int:
    line = get_line(args.line)
    dest = WORKSPACES / line.name
    if dest.exists():
        if not args.force:
            raise SystemExit(f"{dest} exists and may hold unexported work; export it, or pass --force to replace it")
        shutil.rmtree(dest)
    queue.build_tree(line, dest, three_way=True)
    print(f"{dest}: {line.pin.requirement} tagged '{queue.BASE_TAG}', one commit per patch on branch 'patched'.")
    print(f"Edit with git (rebase -i {queue.BASE_TAG}, commit --fixup), then: bin/pq export {line.name}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    line = get_line(args.line)
    workspace = WORKSPACES / line.name
    if not (workspace / ".git").exists():
        raise SystemExit(f"no workspace for {line.name}: run `bin/pq workspace {line.name}` first")
    changed = queue.export(line, workspace)
    print("\n".join(f"updated {line.name}/{name}" for name in changed) or "nothing changed")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    problems: list[str] = []
    for line in _selected(args):
        problems += checks.check_line(line)
    pyprojects = [read_pyproject(project) for project in distributions()]
    for pyproject in pyprojects:
        line_name = _line_of(pyproject)
        siblings = {  # the other distributions the fork builds from the same line
            other["project"]["name"]: other["project"]["version"]
            for other in pyprojects
            if _line_of(other) == line_name and other is not pyproject
        }
        problems += checks.check_metadata(get_line(line_name), pyproject, siblings)
    for problem in problems:
        print(f"problem: {problem}")
    print(f"check: {len(problems)} problems")
    return 1 if problems else 0


def cmd_test(args: argparse.Namespace) -> int:
    failed: dict[str, list[str]] = {}
    for line in _selected(args):
        count = len(line.series())
        prefixes = range(1, count + 1) if args.each and count else [count]
        for upto in prefixes:
            label = f"{line.name}: {line.pin.requirement} + {upto} of {count} patches"
            print(f"== {label}", flush=True)
            with tempfile.TemporaryDirectory(prefix="pq-test-") as tmp:
                try:
                    tree = queue.build_tree(line, Path(tmp) / "tree", upto)
                except SeriesError as e:
                    print(e)
                    failed[label] = [str(e)]
                    continue
                if failures := gates.run_gates(tree, line.pin):
                    failed[label] = [str(failure) for failure in failures]
    # Repeated at the end, where a log cut to its last lines still shows why.
    for label, reasons in failed.items():
        print(f"FAILED: {label}")
        for reason in reasons:
            print(textwrap.indent(reason, "  "))
    return 1 if failed else 0


def cmd_rebase(args: argparse.Namespace) -> int:
    line = get_line(args.line)
    workspace = WORKSPACES / line.name
    if workspace.exists():
        raise SystemExit(f"{workspace} exists and may hold unexported work; export it and remove it first")
    for project in distributions():
        if _line_of(read_pyproject(project)) == line.name:
            upstream.set_toml_strings(project / "pyproject.toml", version=f"{args.version}+initfix.1")
    dropped = queue.rebase(line, args.version, workspace)
    for subject in dropped:
        print(f"dropped, upstream has it: {subject}")
    print(f"{line.name} now applies onto {line.pin.requirement}; next: bin/pq check && bin/pq test --each {line.name}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Which releases the series applies to, and (with --suite) whose own suite then passes."""
    line = get_line(args.line)
    print(f"| {line.pin.distribution} | sdist sha256 | {line.name} series applies | upstream's gates |")
    print("| --- | --- | --- | --- |")
    names = line.series()
    for version in args.versions:
        sdist = upstream.download(line.pin.distribution, version)
        with tempfile.TemporaryDirectory(prefix="pq-report-") as tmp:
            try:
                tree = queue.build_tree(line, Path(tmp) / "tree", sdist=sdist)
                applies, gates_result = f"all {len(names)}", "not run"
            except SeriesError as e:
                stuck = next(name for name in names if str(e).startswith(name))
                applies = f"{names.index(stuck)} of {len(names)}: `{stuck}` does not apply"
                gates_result = "-"
            else:
                if args.suite:
                    gates_result = "FAIL" if gates.run_gates(tree, line.pin) else "pass"
        print(f"| {version} | `{upstream.sha256_of(sdist)[:16]}…` | {applies} | {gates_result} |", flush=True)
    return 0


def _selected(args: argparse.Namespace) -> list[Line]:
    return [get_line(name) for name in args.lines] if args.lines else all_lines()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pq", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler, help: str) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    for name, handler, help in [
        ("fetch", cmd_fetch, "download and verify the pinned upstream sdists; print their paths"),
        ("check", cmd_check, "check that the series, its files and pyproject.toml agree and apply cleanly"),
        ("test", cmd_test, "run upstream's own gates (ruff, pyright, suite with coverage) on the patched tree"),
    ]:
        sub = add(name, handler, help)
        sub.add_argument("lines", nargs="*", metavar="LINE", help="e.g. v1.x; default: every line")
        if name == "test":
            sub.add_argument("--each", action="store_true", help="test every prefix of the series, not just the whole")
    add("materialize", cmd_materialize, "bring src/ of each distribution of the fork up to date with its series")
    sub = add("workspace", cmd_workspace, "make workspace/LINE: base plus one commit per patch, to edit with git")
    sub.add_argument("line", metavar="LINE")
    sub.add_argument("--force", action="store_true", help="replace an existing workspace")
    sub = add("export", cmd_export, "rewrite the patch files and series from workspace/LINE")
    sub.add_argument("line", metavar="LINE")
    sub = add("rebase", cmd_rebase, "move LINE onto another upstream release: new pin, rebased workspace, export")
    sub.add_argument("line", metavar="LINE")
    sub.add_argument("version", metavar="VERSION")
    sub = add("report", cmd_report, "print which upstream releases the series applies to (and passes on)")
    sub.add_argument("line", metavar="LINE")
    sub.add_argument("versions", nargs="+", metavar="VERSION")
    sub.add_argument("--suite", action="store_true", help="also run upstream's gates on each patched release")

    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (SeriesError, upstream.PinError) as e:
        print(f"pq: {e}", file=sys.stderr)
        return 1
