"""The npm packages the harness runs, installed once into the mcp-initfix cache, and the command that runs one
of tests/clients/*.mjs beside the TypeScript SDK.

Standard library and pq only: the tests and the benchmark (`bench/run --only rolling`) share it. Needs `node`
and `npm` on PATH, and the npm registry on first use.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pq import upstream

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "tests" / "clients"
NPM_SECONDS = 300
# The release of @modelcontextprotocol/sdk every TypeScript client here runs.
TYPESCRIPT_SDK_VERSION = "1.32.2"


def npm_package(name: str, version: str) -> Path:
    """The folder whose node_modules holds the npm package `name@version`, installed once into the
    mcp-initfix cache (~/.cache/mcp-initfix/node/, or $MCP_INITFIX_CACHE/node/). Needs `npm` on PATH."""
    npm = shutil.which("npm")
    assert npm, f"{name} needs node and npm on PATH"
    home = upstream.cache_dir() / "node" / f"{name.rsplit('/', 1)[-1]}-{version}"
    if not (home / "node_modules" / name / "package.json").exists():
        # Installed beside the final folder and renamed into place, so a failed install is never reused.
        partial = home.with_name(home.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        install = [npm, "install", "--prefix", str(partial), "--save-exact", "--no-audit", "--no-fund"]
        subprocess.run([*install, "--loglevel=error", f"{name}@{version}"], check=True, timeout=NPM_SECONDS)
        shutil.rmtree(home, ignore_errors=True)
        partial.rename(home)
    return home


def typescript_client(script: str = "sdk_client.mjs") -> list[str]:
    """The command that runs tests/clients/`script` beside an installed @modelcontextprotocol/sdk."""
    node = shutil.which("node")
    assert node, "the TypeScript client needs node and npm on PATH"
    home = npm_package("@modelcontextprotocol/sdk", TYPESCRIPT_SDK_VERSION)
    # Run from beside node_modules: ES modules resolve packages from the script's own folder.
    shutil.copyfile(CLIENTS / script, home / script)
    return [node, str(home / script)]
