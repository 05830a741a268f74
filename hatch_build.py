"""Build hook: materialize src/ from the pinned upstream sdist plus the series before building."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class MaterializeHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        sys.path.insert(0, str(root))
        try:
            from pq import checkout
            from pq.queue import Line
        finally:
            sys.path.remove(str(root))
        line = Line(root / "patches" / self.metadata.config["tool"]["mcp-initfix"]["line"])
        # From an sdist of the fork the stamp is current and nothing is fetched.
        checkout.ensure(root, line)
