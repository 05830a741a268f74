"""The demo's side-by-side table: one column per server, a block of rows per scenario."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from race.scenarios import Result, percentile

LABEL_WIDTH = 44
COLUMN_WIDTH = 34
MB = 1024 * 1024


@dataclass
class Side:
    """What one server (stock or fork) did in the demo."""

    name: str
    version: str
    results: list[Result] = field(default_factory=list)
    peaks: list[dict[str, int]] = field(default_factory=list)  # per result: highest rss, held, in_flight
    start: dict[str, Any] = field(default_factory=dict)  # /debug before the first scenario
    end: dict[str, Any] = field(default_factory=dict)  # /debug once every session closed


def row(label: str, cells: Sequence[str]) -> str:
    return f"{label:<{LABEL_WIDTH}}" + "".join(f"{cell:<{COLUMN_WIDTH}}" for cell in cells).rstrip()


def milliseconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def failed_sessions(result: Result) -> str:
    total = len(result.sessions)
    share = 100 * result.failed_sessions / total if total else 0.0
    return f"{result.failed_sessions}/{total} ({share:.1f} %)"


def failures(result: Result) -> list[str]:
    counts = result.failures()
    return [f"{count} x {label}" for label, count in counts.most_common()] or ["none"]


def latency(result: Result) -> str:
    values = result.latencies()
    return f"{milliseconds(percentile(values, 0.5))} / {milliseconds(percentile(values, 0.95))} ms"


def table(sides: Sequence[Side]) -> str:
    lines = [row("", [f"{side.name} (mcp {side.version})" for side in sides]), ""]
    for index, first in enumerate(sides[0].results):
        scenario = first.scenario
        results = [side.results[index] for side in sides]
        lines.append(f"{scenario.label}: {scenario.sessions} sessions, {scenario.concurrency} at a time")
        lines.append(row("  sessions with a failed request", [failed_sessions(r) for r in results]))
        columns = [failures(r) for r in results]
        for line in range(max(len(c) for c in columns)):
            label = "  failed requests by code and reason" if line == 0 else ""
            lines.append(row(label, [c[line] if line < len(c) else "" for c in columns]))
        lines.append(row("  tools/call latency p50 / p95", [latency(r) for r in results]))
        peaks = [side.peaks[index] for side in sides]
        cells = [f"{p['rss'] / MB:.0f} MB / {p['held']} / {p['in_flight']}" for p in peaks]
        lines.append(row("  server peak RSS / held / in flight", cells))
        lines.append("")
    lines.append("server memory")
    lines.append(
        row("  RSS at start / at end (MB)", [f"{s.start['rss'] / MB:.0f} / {s.end['rss'] / MB:.0f}" for s in sides])
    )
    lines.append(
        row("  open sessions / held requests at end", [f"{s.end['sessions']} / {s.end['held']}" for s in sides])
    )
    lines.append("tools run on a session that had not received initialize")
    for key, label in (
        ("never_initialized", "  for clients that never initialize"),
        ("resumed", "  in resumed sessions (handshake earlier)"),
        ("before_initialize", "  before the initialize still to come"),
    ):
        lines.append(row(label, [str(s.end.get(key, "?")) for s in sides]))
    return "\n".join(lines)
