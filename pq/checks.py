"""What `pq check` verifies about a line: everything a reviewer would otherwise check by hand."""

from __future__ import annotations

import email.parser
import re
import tempfile
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from pq import queue, upstream
from pq.queue import Line, SeriesError

_TRAILER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*: \S")


def check_line(line: Line) -> list[str]:
    """Problems with the line, each a sentence naming the file; empty when all is well."""
    problems = _check_files(line)
    if problems:  # applying a series with missing or unlisted files would only add noise
        return problems
    for patch in line.patches():
        problems += _check_message(patch)
    problems += _check_applies_and_exports(line)
    return problems


def _check_files(line: Line) -> list[str]:
    problems: list[str] = []
    try:
        line.pin  # noqa: B018 - loading validates it
        names = line.series()
    except (upstream.PinError, SeriesError) as e:
        return [str(e)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(f"{line.name}/series: {name} is listed twice")
        seen.add(name)
        if not (line.path / name).is_file():
            problems.append(f"{line.name}/series: {name} is listed but the file is missing")
    for path in sorted(line.path.glob("*.patch")):
        if path.name not in seen:
            problems.append(f"{line.name}/{path.name}: not listed in the series")
    return problems


def _check_message(patch: Path) -> list[str]:
    info = queue.read_patch(patch)
    where = f"{patch.parent.name}/{patch.name}"
    problems: list[str] = []
    if not info.subject:
        problems.append(f"{where}: no subject")
    prose = [text for text in info.body.splitlines() if text.strip() and not _TRAILER.match(text)]
    if not prose:
        problems.append(f"{where}: the commit message has no body saying why")
    touches_src = any(name.startswith("src/") for name in info.files)
    touches_tests = any(name.startswith("tests/") for name in info.files)
    if touches_src and not touches_tests:
        problems.append(f"{where}: changes src/ but no test under tests/")
    return problems


def _check_applies_and_exports(line: Line) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            tree = queue.build_tree(line, Path(tmp) / "tree")
        except (SeriesError, upstream.PinError) as e:
            return [f"{line.name}: {e}"]
        regenerated = queue.format_patches(tree)
    problems: list[str] = []
    if list(regenerated) != line.series():
        problems.append(f"{line.name}/series: export would name the patches {list(regenerated)}; run `pq export`")
        return problems
    for name, text in regenerated.items():
        committed = (line.path / name).read_text(encoding="utf-8")
        if queue.without_index_lines(committed) != queue.without_index_lines(text):
            problems.append(f"{line.name}/{name}: not in exported form; run `pq workspace` then `pq export`")
    return problems


def check_metadata(line: Line, pyproject: dict[str, Any], siblings: dict[str, str] | None = None) -> list[str]:
    """A distribution of the fork must declare what upstream's does, at the pinned version.

    Upstream's side is read from the sdist: its PKG-INFO, or for a distribution built from a
    sub-project (mcp-types in the 2.x sdist) that project's pyproject.toml, named by
    `[tool.mcp-initfix] upstream-metadata`. Where upstream pins another of its distributions
    exactly and the fork builds that one too (`siblings`: name -> version), the fork pins its own.
    """
    pin = line.pin
    project = pyproject["project"]
    source = pyproject["tool"]["mcp-initfix"].get("upstream-metadata", "PKG-INFO")
    problems: list[str] = []
    where = f"{project['name']} {project.get('version')}"
    version = Version(str(project.get("version", "0")))
    if version.public != pin.version or not version.local:
        problems.append(f"{where}: the version should be {pin.version}+<label>.<n> for {line.name}")

    text = upstream.read_member(upstream.fetch(pin), source)
    if source.endswith(".toml"):
        theirs_project = upstream.tomllib.loads(text)["project"]
        theirs, their_python = _requirements(theirs_project), theirs_project.get("requires-python")
    else:
        metadata = email.parser.Parser().parsestr(text)
        theirs = {str(Requirement(text)) for text in metadata.get_all("Requires-Dist") or []}
        their_python = metadata["Requires-Python"]
    ours = {_as_upstream(text, siblings or {}) for text in _requirements(project)}
    for missing in sorted(theirs - ours):
        problems.append(f"{where}: upstream requires {missing!r}, the fork does not")
    for extra in sorted(ours - theirs):
        problems.append(f"{where}: the fork requires {extra!r}, upstream does not")
    if their_python != project.get("requires-python"):
        problems.append(f"{where}: requires-python should be {their_python!r}, as upstream's")
    return problems


def _as_upstream(text: str, siblings: dict[str, str]) -> str:
    """`mcp-types==2.3.0+initfix.1` reads as upstream's `mcp-types==2.3.0` when the fork builds it."""
    requirement = Requirement(text)
    pinned = f"=={siblings.get(requirement.name)}"
    if requirement.name in siblings and str(requirement.specifier) == pinned:
        requirement.specifier = SpecifierSet(f"=={Version(siblings[requirement.name]).public}")
    return str(requirement)


def _requirements(project: dict[str, Any]) -> set[str]:
    """A [project] table's requirements as core metadata spells them, extras folded into markers."""
    requirements = {str(Requirement(text)) for text in project.get("dependencies", [])}
    for extra, texts in dict(project.get("optional-dependencies", {})).items():
        for text in texts:
            requirement = Requirement(text)
            marker = f"{requirement.marker} and " if requirement.marker else ""
            requirement.marker = None
            requirements.add(str(Requirement(f"{requirement}; {marker}extra == '{extra}'")))
    return requirements
