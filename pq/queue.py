"""A patch series kept as commits on a pristine upstream tree.

The tree is a scratch git repository: the unpacked upstream sdist is one commit tagged `base`,
and every patch of the series is one commit on top, applied with `git am`. Exporting is
`git format-patch` with fixed options, so an untouched patch regenerates byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pq import upstream

SERIES_FILE = "series"
BASE_TAG = "base"
_FIXED_DATE = "2000-01-01T00:00:00+0000"

# Every git call runs with the same identity and dates and without anybody's personal or
# system configuration, so commit hashes and exported patches do not depend on the machine.
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "mcp-initfix",
    "GIT_AUTHOR_EMAIL": "mcp-initfix@users.noreply.github.com",
    "GIT_AUTHOR_DATE": _FIXED_DATE,
    "GIT_COMMITTER_NAME": "mcp-initfix",
    "GIT_COMMITTER_EMAIL": "mcp-initfix@users.noreply.github.com",
    "GIT_COMMITTER_DATE": _FIXED_DATE,
    "LC_ALL": "C",
    "TZ": "UTC",
}

FORMAT_PATCH = [
    "-c",
    "core.abbrev=12",
    "format-patch",
    "--no-signature",
    "--zero-commit",
    "--no-numbered",
    "--no-color",
    "--no-ext-diff",
    "--diff-algorithm=myers",
    "--no-relative",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--stat=72",
    # Three lines of context, as the diff format needs and no more of upstream's code.
    "--unified=3",
]


class SeriesError(Exception):
    """The series cannot be applied or does not agree with its files."""


def git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV, **(env or {})},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SeriesError(f"git {' '.join(args)} failed in {cwd}:\n{result.stdout}{result.stderr}")
    return result.stdout


@dataclass(frozen=True)
class Line:
    """One upstream line: a folder with the pin, the series file and the patch files."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def pin(self) -> upstream.Pin:
        return upstream.load_pin(self.path)

    def series(self) -> list[str]:
        """Patch file names in order; `#` starts a comment, blank lines are ignored."""
        try:
            text = (self.path / SERIES_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SeriesError(f"{self.path / SERIES_FILE}: no series file") from None
        names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        return [name for name in names if name]

    def patches(self, upto: int | None = None) -> list[Path]:
        return [self.path / name for name in self.series()[:upto]]

    def fingerprint(self, upto: int | None = None) -> str:
        """Names the tree that `build_tree` makes: the pinned sdist plus these patch bytes."""
        digest = hashlib.sha256(self.pin.sha256.encode())
        for patch in self.patches(upto):
            digest.update(patch.name.encode() + b"\0" + patch.read_bytes() + b"\0")
        return digest.hexdigest()[:16]


def build_tree(
    line: Line, dest: Path, upto: int | None = None, three_way: bool = False, sdist: Path | None = None
) -> Path:
    """Unpack the pinned release (or `sdist`) into `dest` as commit `base` and `git am` the series.

    Without `three_way` a patch must apply exactly as written (no fuzz); `three_way` is for
    workspaces, where a developer resolves conflicts by hand.
    """
    if dest.exists():
        raise SeriesError(f"{dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    upstream.unpack(sdist or upstream.fetch(line.pin), dest)
    git("init", "--quiet", "--initial-branch=patched", cwd=dest)
    commit_release(dest, sdist.name if sdist else line.pin.sdist)
    for patch in line.patches(upto):
        apply_patch(dest, patch, three_way=three_way)
    return dest


def commit_release(tree: Path, name: str) -> None:
    """Commit the working tree as the pristine release and tag it `base`."""
    # --force: the sdist may ship files its own .gitignore names; base must be the sdist exactly.
    git("add", "--all", "--force", cwd=tree)
    git("commit", "--quiet", "--no-verify", "-m", f"Upstream release {name}", cwd=tree)
    git("tag", "--force", BASE_TAG, cwd=tree)


class RebaseStopped(SeriesError):
    """git stopped on a conflict; the workspace waits for the developer."""


def rebase(line: Line, version: str, workspace: Path) -> list[str]:
    """Move the series onto another upstream release, in `workspace`; update the pin.

    The workspace holds both releases, so `git rebase` merges with full three-way context, and
    a patch that upstream has already merged becomes empty and drops out. Returns the subjects
    of the dropped patches. On a conflict, raises RebaseStopped with the workspace mid-rebase.
    """
    old = line.pin
    new_sdist = upstream.download(old.distribution, version)
    build_tree(line, workspace, three_way=True)
    before = subjects(workspace)
    git("tag", "previous-base", BASE_TAG, cwd=workspace)
    git("checkout", "--quiet", "--orphan", "upstream", cwd=workspace)
    git("rm", "-r", "--quiet", "--force", ".", cwd=workspace)
    with tempfile.TemporaryDirectory() as tmp:
        upstream.unpack(new_sdist, Path(tmp) / "release")
        for path in (Path(tmp) / "release").iterdir():
            os.replace(path, workspace / path.name)
    commit_release(workspace, new_sdist.name)
    git("checkout", "--quiet", "patched", cwd=workspace)
    upstream.write_pin(line.path, version, new_sdist.name, upstream.sha256_of(new_sdist))
    try:
        git("rebase", "--quiet", "--empty=drop", "--onto", BASE_TAG, "previous-base", "patched", cwd=workspace)
    except SeriesError as e:
        raise RebaseStopped(
            f"{e}\nResolve it in {workspace} with git (edit, `git add`, `git rebase --continue`), "
            f"then run `bin/pq export {line.name}`."
        ) from None
    after = subjects(workspace)
    export(line, workspace)
    return [subject for subject in before if subject not in after]


def subjects(tree: Path) -> list[str]:
    return git("log", "--reverse", "--format=%s", f"{BASE_TAG}..HEAD", cwd=tree).splitlines()


def apply_patch(tree: Path, patch: Path, three_way: bool = False) -> None:
    if not patch.exists():
        raise SeriesError(f"{patch}: listed in the series but missing")
    args = ["am", "--quiet", "--keep-cr", "--whitespace=nowarn"] + (["--3way"] if three_way else [])
    try:
        # The committer date stays fixed; the author and author date come from the patch.
        git(*args, str(patch), cwd=tree)
    except SeriesError as e:
        if not three_way:
            subprocess.run(["git", "am", "--abort"], cwd=tree, env={**os.environ, **GIT_ENV}, capture_output=True)
        raise SeriesError(f"{patch.name} does not apply:\n{e}") from None


def cached_tree(line: Line, upto: int | None = None) -> Path:
    """A tree for this exact pin and patch content, built once and then reused from the cache."""
    tree = upstream.cache_dir() / "trees" / f"{line.name}-{line.fingerprint(upto)}"
    if (tree / ".git").exists():
        return tree
    tree.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tree.parent) as tmp:
        built = build_tree(line, Path(tmp) / "tree", upto)
        try:
            os.replace(built, tree)
        except OSError:  # another process won the race with an identical tree
            pass
    return tree


def export(line: Line, workspace: Path) -> list[str]:
    """Rewrite the line's patch files and series from the workspace's commits after `base`.

    A regenerated patch that differs from the committed one only in its `index` lines keeps
    the committed bytes, so editing one patch does not churn the ones after it. Returns the
    names of the files written or removed.
    """
    regenerated = format_patches(workspace)
    old_names = set(line.series())
    changed: list[str] = []
    for name, text in regenerated.items():
        target = line.path / name
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old is not None and without_index_lines(old) == without_index_lines(text):
            continue
        target.write_text(text, encoding="utf-8", newline="\n")
        changed.append(name)
    for name in sorted(old_names - set(regenerated)):
        (line.path / name).unlink(missing_ok=True)
        changed.append(name)
    series = _series_text(line, list(regenerated))
    if (line.path / SERIES_FILE).read_text(encoding="utf-8") != series:
        (line.path / SERIES_FILE).write_text(series, encoding="utf-8", newline="\n")
        changed.append(SERIES_FILE)
    return changed


def format_patches(workspace: Path) -> dict[str, str]:
    """The workspace's commits after `base` as {file name: patch text}, in order."""
    with tempfile.TemporaryDirectory() as tmp:
        git(*FORMAT_PATCH, "--output-directory", tmp, f"{BASE_TAG}..HEAD", cwd=workspace)
        files = sorted(Path(tmp).iterdir())
        return {path.name: path.read_text(encoding="utf-8") for path in files}


def without_index_lines(patch: str) -> list[str]:
    return [line for line in patch.splitlines() if not line.startswith("index ")]


def _series_text(line: Line, names: list[str]) -> str:
    """The series file with its leading comment kept and the names replaced."""
    path = line.path / SERIES_FILE
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    header = []
    for text in existing:
        if not text.startswith("#"):
            break
        header.append(text)
    return "\n".join([*header, *names]) + "\n"


@dataclass(frozen=True)
class PatchInfo:
    subject: str
    body: str
    files: list[str]


_SUBJECT = re.compile(r"^Subject: (?:\[PATCH[^\]]*\] )?(.*(?:\n [^\n]*)*)", re.MULTILINE)


def read_patch(patch: Path) -> PatchInfo:
    text = patch.read_text(encoding="utf-8")
    header, _, rest = text.partition("\n\n")
    match = _SUBJECT.search(header)
    subject = " ".join(match.group(1).split()) if match else ""
    body, _, diff = rest.partition("\n---\n")
    files = re.findall(r"^diff --git a/(\S+) b/", diff, re.MULTILINE)
    return PatchInfo(subject=subject, body=body.strip(), files=files)
