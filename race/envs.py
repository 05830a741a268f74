"""The two server environments, as venvs under the git-ignored .venv-race/: stock mcp and the fork.

Standard library and pq only, so it runs on a fresh machine before anything is installed:
`python3 -m race.envs` builds (or reuses) both and prints their interpreters.

Beside them, the venvs of the other proofs (docs/proof.md): the same pair for the v2.x line
(`stock-v2`, `fork-v2`), fastmcp on top of stock or of the fork, and released clients.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pq.checkout import Distribution
from pq.upstream import load_pin, tomllib

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venv-race"
KEY_FILE = ".race-key"
FORK_VENV_ENV = "RACE_FORK_VENV"
# What a build of the fork reads; a change to any of them means a different fork.
FORK_INPUTS = ["pyproject.toml", "hatch_build.py", "pq", "patches"]
FORK_V2_VENV_ENV = "RACE_FORK_V2_VENV"
# The v2.x line: two distributions (the fork's mcp and the mcp-types it pins exactly), each a folder
# of lines/ whose src/ the build generates, so only the files beside src/ are inputs.
V2_LINE = ROOT / "patches" / "v2.x"
V2_PROJECTS = {"mcp": "lines/v2.x", "mcp-types": "lines/v2.x-types"}
V2_PROJECT_FILES = ["pyproject.toml", "hatch_build.py", "README.md"]
FORK_V2_INPUTS = [*(f"{d}/{f}" for d in V2_PROJECTS.values() for f in V2_PROJECT_FILES), "pq", "patches/v2.x"]


@dataclass(frozen=True)
class Env:
    name: str
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def build_line() -> Path:
    """patches/<line> of the line the root pyproject.toml builds."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return ROOT / "patches" / Distribution.from_pyproject(pyproject).line


def stock_requirement(line: Path | None = None) -> str:
    """The upstream release a line of the fork is built from, e.g. mcp==1.30.0 (default: the root project's line)."""
    return load_pin(line or build_line()).requirement


def fork_fingerprint(inputs: list[str] = FORK_INPUTS) -> str:
    digest = hashlib.sha256()
    for name in inputs:
        top = ROOT / name
        files = (
            sorted(p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if top.is_dir() else [top]
        )
        for path in files:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@contextmanager
def _locked() -> Iterator[None]:
    """One builder at a time (parallel test workers, a demo beside the tests)."""
    VENVS.mkdir(exist_ok=True)
    with (VENVS / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure(name: str, requirements: list[str], key: str) -> Env:
    """The venv `name` with `requirements` installed, rebuilt only when `key` changed."""
    return ensure_layered(name, [requirements], key)


def stock_env() -> Env:
    requirement = stock_requirement()
    return ensure("stock", [requirement], requirement)


def fork_env() -> Env:
    """The checkout itself, built as `pip install <repo>` builds it for users.

    RACE_FORK_VENV=<venv> uses that venv instead, e.g. one with a patch under development.
    """
    if os.environ.get(FORK_VENV_ENV):
        return Env("fork", Path(os.environ[FORK_VENV_ENV]).resolve())
    return ensure("fork", [str(ROOT)], f"fork {fork_fingerprint()}")


def stock_v2_env() -> Env:
    """Stock mcp of the v2.x line from the index; it pulls the stock mcp-types it pins."""
    requirement = stock_requirement(V2_LINE)
    return ensure("stock-v2", [requirement], requirement)


def fork_v2_env() -> Env:
    """The checkout's v2.x line, both distributions in one pip install as users install them.

    RACE_FORK_V2_VENV=<venv> uses that venv instead.
    """
    if os.environ.get(FORK_V2_VENV_ENV):
        return Env("fork-v2", Path(os.environ[FORK_V2_VENV_ENV]).resolve())
    return ensure("fork-v2", *v2_checkout())


def v2_checkout() -> tuple[list[str], str]:
    """The folders of the checkout's v2.x distributions, and a key that changes when their build does."""
    return [str(ROOT / folder) for folder in V2_PROJECTS.values()], f"fork-v2 {fork_fingerprint(FORK_V2_INPUTS)}"


def ensure_layered(name: str, layers: list[list[str]], key: str) -> Env:
    """The venv `name` with one pip install per layer, each on top of what the earlier ones installed;
    rebuilt only when `key` changed."""
    env = Env(name, VENVS / name)
    # The venv is made from the base interpreter, also when this runs inside another venv.
    base_python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    key = f"{key} python {sys.version.split()[0]} {base_python}\n"
    stamp = env.path / KEY_FILE
    with _locked():
        if stamp.exists() and stamp.read_text(encoding="utf-8") == key and env.python.exists():
            return env
        shutil.rmtree(env.path, ignore_errors=True)
        venv.create(env.path, with_pip=True)
        pip = [str(env.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        for requirements in layers:
            print(f"race: building the {name} environment: pip install {' '.join(requirements)}", flush=True)
            subprocess.run([*pip, *requirements], check=True)
        stamp.write_text(key, encoding="utf-8")
    return env


def installed(env: Env, distribution: str) -> tuple[str, str | None, str]:
    """The version of `distribution` in `env`, the local folder it was installed from (None: an index)
    and a digest of its installed files."""
    script = (
        "import importlib.metadata as m, json, sys\n"
        "d = m.distribution(sys.argv[1])\n"
        "url = json.loads(d.read_text('direct_url.json') or '{}').get('url', '')\n"
        "print(d.version); print(url.removeprefix('file://') if url.startswith('file://') else '')\n"
        "print(d.read_text('RECORD') or '', end='')\n"
    )
    output = subprocess.run(
        [str(env.python), "-c", script, distribution], check=True, capture_output=True, text=True
    ).stdout
    version, source, record = output.split("\n", 2)
    return version, source or None, hashlib.sha256(record.encode()).hexdigest()[:16]


def fork_source() -> tuple[str, str]:
    """What pip installs as the fork beneath other packages, and a key that changes when it does.

    The checkout; with RACE_FORK_VENV, the folder that venv's mcp was installed from.
    """
    if not os.environ.get(FORK_VENV_ENV):
        return str(ROOT), f"fork {fork_fingerprint()}"
    env = fork_env()
    version, source, digest = installed(env, "mcp")
    if source is None:
        raise SystemExit(f"{FORK_VENV_ENV}: mcp {version} in {env.path} was not installed from a local folder")
    return source, f"fork {source} {digest}"


def fork_v2_sources() -> tuple[list[str], str]:
    """Like `fork_source`, for the v2.x line: the folders of its two distributions, and a key.

    The checkout's; with RACE_FORK_V2_VENV, the folders that venv's mcp and mcp-types came from.
    """
    if not os.environ.get(FORK_V2_VENV_ENV):
        return v2_checkout()
    env = fork_v2_env()
    sources, digests = [], []
    for distribution in V2_PROJECTS:
        version, source, digest = installed(env, distribution)
        if source is None:
            raise SystemExit(f"{FORK_V2_VENV_ENV}: {distribution} {version} in {env.path} not installed from a folder")
        sources.append(source)
        digests.append(digest)
    return sources, f"fork-v2 {' '.join(sources)} {' '.join(digests)}"


def fastmcp_base(on: str) -> tuple[list[str], str]:
    """What fastmcp goes on top of, as pip arguments, and a key that changes when it does.

    `on` names the base: "stock" or "fork" (v1.x, for fastmcp 2.x and 3.x), "stock-v2" or "fork-v2"
    (v2.x, for fastmcp 4.x).
    """
    if on == "stock":
        return [stock_requirement()], stock_requirement()
    if on == "fork":
        source, key = fork_source()
        return [source], key
    if on == "stock-v2":
        requirement = stock_requirement(V2_LINE)
        return [requirement], requirement
    if on == "fork-v2":
        return fork_v2_sources()
    raise ValueError(f"fastmcp goes on stock, fork, stock-v2 or fork-v2, not {on!r}")


def fastmcp_env(version: str, on: str) -> Env:
    """The standalone `fastmcp==version` installed on top of stock mcp or of the fork (`on`: see
    `fastmcp_base`).

    Two pip installs, as a user adds fastmcp to an environment that already pins mcp: fastmcp
    requires mcp>=1.24,<2 (4.x: mcp>=2.3,<3), which the fork's local version satisfies, so pip must
    keep it.
    """
    base, key = fastmcp_base(on)
    requirement = f"fastmcp=={version}"
    return ensure_layered(f"fastmcp-{version}-{on}", [base, [requirement]], f"{key} + {requirement}")


def fastmcp_suite_env(version: str, on: str, requirements: Path) -> Env:
    """fastmcp's own development environment for its test suite, on top of stock mcp or of the fork.

    `requirements` is the release's uv.lock exported without mcp (and mcp-types), its own projects
    as editable folders: installed with --no-deps, so every package is at the version the lock pins
    and the base's mcp stays as it is.
    """
    base, key = fastmcp_base(on)
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    layers = [base, ["--no-deps", "-r", str(requirements)]]
    return ensure_layered(f"fastmcp-suite-{version}-{on}", layers, f"{key} + fastmcp {version} lock {digest}")


def client_env(requirement: str) -> Env:
    """A venv with one released client, e.g. `mcp==1.27.0`."""
    return ensure(f"client-{requirement.replace('==', '-')}", [requirement], requirement)


def main() -> int:
    for env in (stock_env(), fork_env()):
        version = subprocess.run(
            [str(env.python), "-c", "import importlib.metadata as m; print(m.version('mcp'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"{env.name}: {env.python} (mcp {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
