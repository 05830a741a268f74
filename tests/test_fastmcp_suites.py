"""scripts/fastmcp-suites' own parts, on small suites written here: the plugin records every test's
fate (a hang included), two runs compare by node id, and the releases agree with the workflow.

The command itself runs fastmcp's suites for many minutes, so only the GitHub workflow runs it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from ecosystem import fastmcp_suites as suites
from ecosystem.fastmcp_suites import Outcome, Run
from pq import upstream

ROOT = Path(__file__).resolve().parent.parent

SUITE = """
import time
import pytest

def test_passes():
    pass

def test_fails():
    assert 1 == 2, "one is not two"

@pytest.mark.skip(reason="not here")
def test_skipped():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("no fixture")

def test_setup_fails(broken):
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n == 1
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(upstream.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path


def run(tree: Path, name: str, stall: float = 60) -> tuple[dict[str, Outcome], str]:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", suites.PLUGIN, "-q", "."]
    outcomes, _, ended, _ = suites.run_pytest(command, tree, name, limit=60, stall=stall)
    return suites.read_outcomes(outcomes), ended


def test_the_plugin_records_each_test_by_node_id(cache: Path) -> None:
    (cache / "test_small.py").write_text(SUITE)
    outcomes, ended = run(cache, "small")
    assert ended == "exit 1"
    assert {nodeid: o.status for nodeid, o in outcomes.items()} == {
        "test_small.py::test_passes": "passed",
        "test_small.py::test_fails": "failed",
        "test_small.py::test_skipped": "skipped",
        "test_small.py::test_setup_fails": "failed",
        "test_small.py::test_param[1]": "passed",
        "test_small.py::test_param[2]": "failed",
    }
    assert "one is not two" in outcomes["test_small.py::test_fails"].message
    assert "no fixture" in outcomes["test_small.py::test_setup_fails"].message


def test_a_run_in_which_no_test_reports_is_stopped_and_its_test_reported_as_hung(cache: Path) -> None:
    (cache / "test_hang.py").write_text(
        "import time\n\ndef test_first():\n    pass\n\ndef test_hangs():\n    time.sleep(600)\n\n"
        "def test_after():\n    pass\n"
    )
    outcomes, ended = run(cache, "hang", stall=2)
    assert ended == "stopped: no test reported for 2 s"
    assert {nodeid: o.status for nodeid, o in outcomes.items()} == {
        "test_hang.py::test_first": "passed",
        "test_hang.py::test_hangs": "hung",
        "test_hang.py::test_after": "not run",
    }


def test_a_collection_error_is_a_failure_of_its_module(cache: Path) -> None:
    (cache / "test_broken.py").write_text("import no_such_module_here\n")
    outcomes, _ = run(cache, "broken")
    assert outcomes["test_broken.py"].status == "failed"
    assert "no_such_module_here" in outcomes["test_broken.py"].message


def test_a_test_that_passes_when_its_own_marks_retry_it_passed(tmp_path: Path) -> None:
    records = [{"event": "start", "id": "t"}]
    records += [
        {"event": "report", "id": "t", "when": w, "outcome": o} for w, o in [("setup", "passed"), ("call", "retried")]
    ]
    records += [{"event": "report", "id": "t", "when": w, "outcome": "passed"} for w in ("call", "teardown")]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert suites.read_outcomes(tmp_path / "t.jsonl")["t"].status == "passed"


def side(**statuses: str) -> Run:
    return Run("1.30.0", {nodeid: Outcome(status) for nodeid, status in statuses.items()}, 1.0, "exit 0", "")


def test_runs_compare_by_node_id_into_new_fixed_and_unchanged_failures() -> None:
    stock = side(a="passed", b="failed", c="failed", d="passed", e="skipped", f="passed", g="not run")
    fork = side(a="failed", b="passed", c="hung", d="passed", e="failed", g="passed")
    report = suites.compare(suites.RELEASES[1], stock, fork, workers=2)
    assert [d.nodeid for d in report.new] == ["a", "e"]
    assert [d.nodeid for d in report.fixed] == ["b"]
    assert [(d.nodeid, d.fork) for d in report.unchanged] == [("c", "hung")]
    assert (report.only_stock, report.only_fork) == (1, 1)  # f ran on stock only, g on the fork only
    assert report.stock["failed"] == 2 and report.fork["hung"] == 1


def test_only_new_failures_not_shown_to_be_flakes_count_as_regressions() -> None:
    report = suites.compare(suites.RELEASES[1], side(a="passed", b="passed"), side(a="failed", b="failed"), 2)
    report.new[0].flake = True
    assert report.regressions == 1
    assert "| 3.2.4 | v1.x | 2 / 0 / 0 | 0 / 2 / 0 | 2 (1) | 0 | 0 |" in suites.render([report])


def test_the_github_workflow_runs_every_release() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job = workflow["jobs"]["fastmcp-suites"]
    assert job["strategy"]["matrix"]["fastmcp"] == [release.version for release in suites.RELEASES]
    assert "scripts/fastmcp-suites --version ${{ matrix.fastmcp }}" in [step.get("run") for step in job["steps"]]


def test_a_release_that_could_not_run_is_reported_and_fails_the_command() -> None:
    failed = suites.Report("4.2.3", "v2.x", suites.MARKERS_V4, 2, error="pip install exited 1")
    rendered = suites.render([failed])
    assert "could not run: pip install exited 1" in rendered
    assert "| 4.2.3 | v2.x | could not run |" in rendered


def test_a_side_that_ran_no_test_fails_the_command_instead_of_showing_no_new_failure() -> None:
    nothing = Run("1.30.0", {}, 61.0, "stopped: no test reported for 60 s", "")
    report = suites.compare(suites.RELEASES[3], side(a="passed"), nothing, workers=2)
    assert report.error == "fork ran no test (stopped: no test reported for 60 s)"
    assert "| 4.1.7 | v2.x | could not run |" in suites.render([report])
    report = suites.compare(suites.RELEASES[3], side(a="not run"), side(a="passed"), workers=2)
    assert report.error.startswith("stock ran no test")


def test_every_substitute_names_a_release_the_command_runs() -> None:
    assert set(suites.SUBSTITUTES) <= {release.version for release in suites.RELEASES}
