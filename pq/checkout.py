"""The patched package in this checkout's git-ignored `src/`, as every build of the fork needs it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pq import queue
from pq.queue import Line

STAMP = ".materialized"


@dataclass(frozen=True)
class Distribution:
    """What a pyproject.toml of the fork builds: `[tool.mcp-initfix]`."""

    line: str
    # Folders of the patched tree that this distribution ships, each placed under src/.
    packages: tuple[str, ...]

    @classmethod
    def from_pyproject(cls, pyproject: dict[str, Any]) -> Distribution:
        config = pyproject["tool"]["mcp-initfix"]
        return cls(line=config["line"], packages=tuple(config["packages"]))


def src_dir(root: Path) -> Path:
    return root / "src"


def stamp_text(line: Line, packages: tuple[str, ...]) -> str:
    return f"{line.name} {line.fingerprint()} {' '.join(packages)}\n"


def is_current(root: Path, line: Line, packages: tuple[str, ...]) -> bool:
    stamp = src_dir(root) / STAMP
    return stamp.exists() and stamp.read_text(encoding="utf-8") == stamp_text(line, packages)


def materialize(root: Path, line: Line, packages: tuple[str, ...]) -> Path:
    """Replace `src/` with these packages of a cached tree of upstream plus the series."""
    tree = queue.cached_tree(line)
    src = src_dir(root)
    # Write the new src/ beside the old one and swap, so an interrupted run leaves no half tree
    # that a stale stamp would vouch for.
    staging = root / "src.materializing"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for package in packages:
        source = tree / package
        shutil.copytree(source, staging / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(tree / "LICENSE", staging / "LICENSE.upstream")
    (staging / STAMP).write_text(stamp_text(line, packages), encoding="utf-8")
    shutil.rmtree(src, ignore_errors=True)
    staging.rename(src)
    return src


def ensure(root: Path, line: Line, packages: tuple[str, ...]) -> Path:
    """`src/` for this line, materialized only when the series changed since last time."""
    if not is_current(root, line, packages):
        materialize(root, line, packages)
    return src_dir(root)
