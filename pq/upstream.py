"""The pinned upstream release: which one, where a verified copy comes from, how it is unpacked."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: hatchling brings tomli into every build environment.
    import tomli as tomllib  # type: ignore[no-redef]

PIN_FILE = "upstream.toml"
# A local sdist, or a folder of them, to use instead of downloading: the offline path.
SDIST_ENV = "MCP_INITFIX_SDIST"
CACHE_ENV = "MCP_INITFIX_CACHE"


class PinError(Exception):
    """The pin file is missing or malformed, or the sdist does not match it."""


@dataclass(frozen=True)
class MachineFailure:
    test: str
    when: str
    reason: str


@dataclass(frozen=True)
class Pin:
    distribution: str
    version: str
    sdist: str
    sha256: str
    sync_args: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    machine_failures: tuple[MachineFailure, ...] = field(default=())

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


def load_pin(line_dir: Path) -> Pin:
    path = line_dir / PIN_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PinError(f"{path}: no pin file") from None
    except tomllib.TOMLDecodeError as e:
        raise PinError(f"{path}: {e}") from None
    missing = [key for key in ("distribution", "version", "sdist", "sha256") if not data.get(key)]
    if missing:
        raise PinError(f"{path}: missing {', '.join(missing)}")
    suite = data.get("suite", {})
    return Pin(
        distribution=data["distribution"],
        version=data["version"],
        sdist=data["sdist"],
        sha256=data["sha256"].lower(),
        sync_args=tuple(suite.get("sync", ())),
        pytest_args=tuple(suite.get("pytest", ())),
        env=tuple(suite.get("env", {}).items()),
        machine_failures=tuple(MachineFailure(**entry) for entry in suite.get("machine-failures", ())),
    )


def set_toml_strings(path: Path, **values: str) -> None:
    """Rewrite the first `key = "..."` line of each key, keeping the file's comments and the rest."""
    text = path.read_text(encoding="utf-8")
    for key, value in values.items():
        text = re.sub(rf'^{key} = ".*"$', f'{key} = "{value}"', text, count=1, flags=re.MULTILINE)
    path.write_text(text, encoding="utf-8")


def write_pin(line_dir: Path, version: str, sdist: str, sha256: str) -> None:
    """Point the pin at another release."""
    set_toml_strings(line_dir / PIN_FILE, version=version, sdist=sdist, sha256=sha256)


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "mcp-initfix"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, sha256: str) -> Path:
    actual = sha256_of(path)
    if actual != sha256:
        raise PinError(f"{path.name}: sha256 is {actual}, but the pin says {sha256}; refusing to use it")
    return path


def fetch(pin: Pin) -> Path:
    """A verified local copy of the pinned sdist, downloaded with pip into the cache when needed."""
    local = Path(os.environ.get(SDIST_ENV, ""))
    if local.is_file():
        return verify(local, pin.sha256)
    return verify(download(pin.distribution, pin.version, pin.sha256), pin.sha256)


def sdist_name(distribution: str, version: str) -> str:
    # Sdist file names use the normalized project name (PEP 625): mcp-types -> mcp_types.
    return f"{re.sub(r'[-_.]+', '_', distribution).lower()}-{version}.tar.gz"


def download(distribution: str, version: str, sha256: str | None = None) -> Path:
    """The release's sdist in the cache, downloaded once. With `sha256`, a download that does
    not match is refused before it reaches the cache: the cache holds a verified sdist or nothing."""
    name = sdist_name(distribution, version)
    local = Path(os.environ.get(SDIST_ENV, "")) / name
    if local.is_file():
        return local
    cached = cache_dir() / "sdists" / name
    if cached.exists():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Download next to the cache so that the final rename is atomic.
    with tempfile.TemporaryDirectory(dir=cached.parent) as tmp:
        _pip_download(f"{distribution}=={version}", distribution, Path(tmp))
        downloaded = Path(tmp) / cached.name
        if not downloaded.exists():
            raise PinError(f"pip did not produce {cached.name} for {distribution}=={version}")
        if sha256:
            verify(downloaded, sha256)
        os.replace(downloaded, cached)
    return cached


def _pip_download(requirement: str, distribution: str, dest: Path) -> None:
    # pip, not a URL: it already knows the user's index configuration. Only the pinned
    # distribution must come as an sdist; its build tools may come as wheels.
    env = dict(os.environ)
    # Someone installing with uv may have configured only uv's index.
    uv_index = env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL")
    if uv_index and "PIP_INDEX_URL" not in env:
        env["PIP_INDEX_URL"] = uv_index
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--no-binary", distribution, "--dest", str(dest), requirement]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise PinError(
            f"pip could not download {requirement} (set {SDIST_ENV} to a local copy to work offline):\n" + result.stderr
        )


def unpack(sdist: Path, dest: Path) -> None:
    """Extract the sdist's single top-level folder as `dest`."""
    with tarfile.open(sdist) as archive:
        members = archive.getmembers()
        top = {member.name.split("/", 1)[0] for member in members}
        if len(top) != 1:
            raise PinError(f"{sdist}: expected one top-level folder, found {sorted(top)}")
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(tmp, filter="data")
            else:  # pragma: no cover - Python without PEP 706
                archive.extractall(tmp)  # noqa: S202 - the archive's hash was verified
            os.replace(Path(tmp) / top.pop(), dest)


def read_member(sdist: Path, name: str) -> str:
    """One file of the sdist, by its path below the top-level folder."""
    with tarfile.open(sdist) as archive:
        top = archive.getmembers()[0].name.split("/", 1)[0]
        member = archive.extractfile(f"{top}/{name}")
        if member is None:
            raise PinError(f"{sdist}: {name} is not a file")
        return member.read().decode("utf-8")
