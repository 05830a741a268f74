"""Build hook: materialize src/ from the pinned upstream sdist plus the series (pq/hook.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(next(p for p in Path(__file__).resolve().parents if (p / "pq").is_dir())))
from pq.hook import MaterializeHook  # noqa: E402, F401
