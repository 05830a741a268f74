"""The official MCP conformance suite, as upstream's CI runs it, on stock and on the fork of each line.

Stock is the pinned release; the fork is the release plus the line's whole series. Every scenario
that passes on stock must pass on the fork, and a scenario that fails on stock must fail no further
check on the fork. Expected failures are printed with their reasons on every run: upstream's
expected-failures files, and anything that fails on stock here for a reason of this machine.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pq import queue
from tests import conformance_support as conformance
from tests.conformance_support import LegResult

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

Results = dict[str, LegResult]


def regressions(stock: Results, fork: Results) -> list[str]:
    found = []
    for leg, stock_leg in stock.items():
        for scenario, stock_failing in sorted(stock_leg.scenarios.items()):
            if scenario not in fork[leg].scenarios:
                found.append(f"{leg} {scenario}: did not run on the fork")
            elif worse := sorted(fork[leg].scenarios[scenario] - stock_failing):
                found.append(f"{leg} {scenario}: fails {', '.join(worse)} on the fork, not on stock")
    return found


def summary(tree: str, results: Results) -> list[str]:
    lines = []
    for leg, result in results.items():
        failing = {s: f for s, f in result.scenarios.items() if f}
        known = [s for s, f in failing.items() if conformance.expected(s, f, result.reasons)]
        counts = f"{len(result.scenarios) - len(failing)} passed, {len(failing) - len(known)} failed"
        rescued = f", {len(result.rescued)} passed alone after failing in the suite" if result.rescued else ""
        lines.append(f"  {tree:5} {leg:17} {result.seconds:4.0f}s  {counts}, {len(known)} expected failures{rescued}")
    return lines


def expected_failures(stock: Results) -> list[str]:
    """Upstream's entries, and what fails on stock here that upstream's CI does not expect."""
    lines = []
    for leg, result in stock.items():
        by_reason: dict[str, list[str]] = {}
        for entry, reason in result.reasons.items():
            by_reason.setdefault(reason, []).append(entry)
        lines += [f"  {leg}: {', '.join(entries)}\n    because {reason}" for reason, entries in by_reason.items()]
        for scenario, failing in sorted(result.scenarios.items()):
            if failing and not conformance.expected(scenario, failing, result.reasons):
                lines.append(
                    f"  {leg} {scenario}: fails on stock on this machine (checks {', '.join(sorted(failing))}),"
                    " where upstream's CI expects it to pass"
                )
        lines += [
            f"  {leg} {s}: failed in the suite, passed alone (contention on this machine)" for s in result.rescued
        ]
    return lines


@pytest.mark.parametrize("line_name", ["v1.x", "v2.x"])
def test_fork_passes_every_conformance_check_that_stock_passes(
    line_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = queue.Line(ROOT / "patches" / line_name)
    started = time.monotonic()
    stock = conformance.run_tree(line, 0, tmp_path / "stock")
    patches = len(line.series())
    # An empty series (or one not landed yet) makes the fork the very same tree as stock.
    fork = conformance.run_tree(line, None, tmp_path / "fork") if patches else stock

    rescued_on_fork = [(leg, s) for leg, result in fork.items() for s in result.rescued] if patches else []
    report = [
        f"conformance {line_name}: {conformance.HARNESS[line_name]} on node {conformance.NODE[1]}, "
        f"stock {line.pin.version} and the fork ({patches} patches), {time.monotonic() - started:.0f}s",
        *summary("stock", stock),
        *(summary("fork", fork) if patches else ["  fork  = stock: the series is empty"]),
        "expected failures:",
        *(expected_failures(stock) or ["  none"]),
        *[f"  {leg} {s}: on the fork, failed in the suite, passed alone" for leg, s in rescued_on_fork],
    ]
    with capsys.disabled():
        print("\n" + "\n".join(report), flush=True)

    assert all(result.scenarios for result in stock.values()), "a leg ran no scenario on stock"
    assert regressions(stock, fork) == []
