"""The hatchling build hook of every distribution of the fork (see hatch_build.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

from pq import checkout
from pq.queue import Line


def find_patches(project: Path) -> Path:
    """patches/ of the repository, or of the fork's sdist, that holds this project."""
    for folder in (project, *project.parents):
        if (folder / "patches").is_dir():
            return folder / "patches"
    raise FileNotFoundError(f"no patches/ folder at or above {project}")


class MaterializeHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        project = Path(self.root)
        config = checkout.Distribution.from_pyproject(self.metadata.config)
        line = Line(find_patches(project) / config.line)
        # Building from the fork's sdist, the stamp is current and nothing is fetched.
        checkout.ensure(project, line, config.packages)
