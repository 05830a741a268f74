"""CI runs what the README says, and the GitHub workflow runs the same commands."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def commands(script: str) -> list[str]:
    lines = (ROOT / script).read_text().splitlines()
    return [line for line in lines if line and not line.startswith(("#", "set ", "cd ", "exec "))]


def test_ci_runs_the_readme_test_command() -> None:
    readme_commands = re.findall(r"^(scripts/\w+)\s", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert readme_commands[:2] == ["scripts/demo", "scripts/test"]
    assert commands(".ci/run") == []  # it only execs:
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_the_github_workflow_runs_every_command_of_the_test_script() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    runs = "\n".join(steps)
    for command in commands("scripts/test"):
        # The workflow spreads `--each` over a matrix of lines, and passes no extra pytest arguments.
        expected = command.replace('"$@"', "").replace("bin/pq test --each", "bin/pq test --each ${{ matrix.line }}")
        assert expected.strip() in runs, command


def test_the_github_workflow_tests_every_line() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    lines = sorted(path.name for path in (ROOT / "patches").iterdir() if (path / "upstream.toml").exists())
    assert workflow["jobs"]["upstream-gates"]["strategy"]["matrix"]["line"] == lines


def test_the_release_job_builds_every_distribution() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["release"]["steps"]]
    projects = [".", *sorted(str(path.parent.relative_to(ROOT)) for path in ROOT.glob("lines/*/pyproject.toml"))]
    for project in projects:
        assert f"python -m build --outdir dist {project}" in runs, project
