"""The patched package in this checkout's git-ignored `src/`, as every build of the fork needs it."""

from __future__ import annotations

import shutil
from pathlib import Path

from pq import queue
from pq.queue import Line

STAMP = ".materialized"


def src_dir(root: Path) -> Path:
    return root / "src"


def stamp_text(line: Line) -> str:
    return f"{line.name} {line.fingerprint()}\n"


def is_current(root: Path, line: Line) -> bool:
    stamp = src_dir(root) / STAMP
    return stamp.exists() and stamp.read_text(encoding="utf-8") == stamp_text(line)


def materialize(root: Path, line: Line) -> Path:
    """Replace `src/` with the line's packages, from a cached tree of upstream plus the series."""
    tree = queue.cached_tree(line)
    src = src_dir(root)
    # Write the new src/ beside the old one and swap, so an interrupted run leaves no half tree
    # that a stale stamp would vouch for.
    staging = root / "src.materializing"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for package in line.pin.packages:
        source = tree / package
        shutil.copytree(source, staging / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(tree / "LICENSE", staging / "LICENSE.upstream")
    (staging / STAMP).write_text(stamp_text(line), encoding="utf-8")
    shutil.rmtree(src, ignore_errors=True)
    staging.rename(src)
    return src


def ensure(root: Path, line: Line) -> Path:
    """`src/` for this line, materialized only when the series changed since last time."""
    if not is_current(root, line):
        materialize(root, line)
    return src_dir(root)
