"""What the repository may hold: what we wrote, never upstream's code or a registry's address."""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from pathlib import Path

from pq import upstream
from pq.cli import all_lines

ROOT = Path(__file__).resolve().parent.parent


def tracked_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in names.split("\0") if name and (ROOT / name).is_file()]


def test_nothing_under_src_is_tracked() -> None:
    assert [path for path in tracked_files() if path.relative_to(ROOT).parts[0] == "src"] == []


def test_no_tracked_file_is_a_copy_of_an_upstream_file() -> None:
    upstream_digests: dict[str, str] = {}
    for line in all_lines():
        with tarfile.open(upstream.fetch(line.pin)) as archive:
            for member in archive.getmembers():
                extracted = archive.extractfile(member)
                data = extracted.read() if extracted else b""
                if len(data.strip().splitlines()) >= 3:  # an empty __init__.py is nobody's work
                    upstream_digests[hashlib.sha256(data).hexdigest()] = f"{line.pin.sdist}:{member.name}"
    copies = {
        str(path.relative_to(ROOT)): upstream_digests[digest]
        for path in tracked_files()
        if (digest := hashlib.sha256(path.read_bytes()).hexdigest()) in upstream_digests
    }
    assert copies == {}


def test_no_package_registry_host_is_named() -> None:
    # Spelled in pieces so that this file does not name them either.
    hosts = ["pypi" + ".org", "python" + "hosted.org", "registry." + "npmjs", "npmjs" + ".com", "npmjs" + ".org"]
    found = [
        f"{path.relative_to(ROOT)}: {host}"
        for path in tracked_files()
        for host in hosts
        if host in path.read_bytes().decode("utf-8", "replace").lower()
    ]
    assert found == []
