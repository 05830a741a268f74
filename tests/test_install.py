"""Installing the fork as users do: a git dependency, with pip or uv, in a fresh venv."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pq import queue, upstream

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a git URL resolves to: the committed state, not this working tree."""
    dest = tmp_path_factory.mktemp("clone") / "mcp-initfix"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    return dest


def build_line(clone: Path, subdirectory: str = "") -> queue.Line:
    pyproject = upstream.tomllib.loads((clone / subdirectory / "pyproject.toml").read_text())
    return queue.Line(clone / "patches" / pyproject["tool"]["mcp-initfix"]["line"])


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def installed_package(python: Path, package: str = "mcp") -> Path:
    code = f"import {package}, os; print(os.path.dirname({package}.__file__))"
    return Path(run(str(python), "-c", code).strip())


def assert_same_files(installed: Path, expected: Path) -> None:
    def files(top: Path) -> set[str]:
        return {str(p.relative_to(top)) for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

    assert files(installed) == files(expected)
    match, mismatch, errors = filecmp.cmpfiles(expected, installed, sorted(files(expected)), shallow=False)
    assert (mismatch, errors) == ([], [])


# What a user of each line writes: v1.x is the repository's root project; v2.x is two
# distributions, the fork's mcp and the mcp-types it pins exactly, from the same commit.
LINES = {
    "v1.x": {"": "mcp"},
    "v2.x": {"lines/v2.x": "mcp", "lines/v2.x-types": "mcp_types"},
}


@pytest.mark.parametrize("line", LINES)
def test_pip_installs_upstream_plus_the_series_from_git_urls(clone: Path, tmp_path: Path, line: str) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    python = venv / "bin" / "python"
    # pip older than 23.3 rejects git+file:/// URLs (no host); git+https ones never hit that.
    run(str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    requirements = []
    for subdirectory in LINES[line]:
        project = upstream.tomllib.loads((clone / subdirectory / "pyproject.toml").read_text())["project"]
        fragment = f"#subdirectory={subdirectory}" if subdirectory else ""
        requirements.append(f"{project['name']} @ git+file://{clone}{fragment}")
    # An empty cache: the build itself must fetch and verify the pinned sdist with pip.
    run(
        str(python), "-m", "pip", "install", "--quiet", *requirements, env={upstream.CACHE_ENV: str(tmp_path / "cache")}
    )

    for subdirectory, package in LINES[line].items():
        pyproject = upstream.tomllib.loads((clone / subdirectory / "pyproject.toml").read_text())
        [folder] = [p for p in pyproject["tool"]["mcp-initfix"]["packages"] if p.endswith(package)]
        assert_same_files(
            installed_package(python, package), queue.cached_tree(build_line(clone, subdirectory)) / folder
        )
        name, version = pyproject["project"]["name"], pyproject["project"]["version"]
        assert run(str(python), "-c", f"import importlib.metadata as m; print(m.version('{name}'))").strip() == version
    run(str(python), "-c", "from mcp.types import NOT_INITIALIZED; from mcp.client.sse import sse_client")


def test_uv_installs_the_same_files_from_a_git_url(clone: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    uv = [sys.executable, "-m", "uv"]
    run(*uv, "venv", "--quiet", "--python", sys.executable, str(venv))
    run(*uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), f"mcp @ git+file://{clone}")
    expected = queue.cached_tree(build_line(clone)) / "src" / "mcp"
    assert_same_files(installed_package(venv / "bin" / "python"), expected)


def test_an_editable_install_serves_the_materialized_src(clone: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    python = venv / "bin" / "python"
    run(str(python), "-m", "pip", "install", "--quiet", "--editable", str(clone))
    assert installed_package(python) == clone / "src" / "mcp"
    assert_same_files(clone / "src" / "mcp", queue.cached_tree(build_line(clone)) / "src" / "mcp")
    assert run("git", "-C", str(clone), "status", "--porcelain") == ""  # src/ stays ignored
