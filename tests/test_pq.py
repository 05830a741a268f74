"""The patch-queue tool on a tiny upstream sdist made by the test: offline, a few seconds."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pq import checkout, checks, gates, queue, upstream
from pq.queue import Line, SeriesError

UPSTREAM_FILES = {
    "PKG-INFO": "Name: mcp\nVersion: 1.0.0\nRequires-Python: >=3.10\nRequires-Dist: anyio>=4.5\n",
    "LICENSE": "upstream's license\n",
    ".gitignore": "ignored.txt\n",
    "ignored.txt": "shipped in the sdist although upstream's .gitignore names it\n",
    "src/mcp/__init__.py": "",
    "src/mcp/session.py": "def greet():\n    return 'hello'\n\n\ndef part():\n    return 1\n",
    "tests/test_session.py": "from mcp.session import greet\n\n\ndef test_greet():\n    assert greet()\n",
}


def make_sdist(directory: Path, files: dict[str, str] = UPSTREAM_FILES, name: str = "mcp-1.0.0") -> Path:
    sdist = directory / f"{name}.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return sdist


@pytest.fixture
def sdist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    made = make_sdist(tmp_path)
    monkeypatch.setenv(upstream.SDIST_ENV, str(made))
    monkeypatch.setenv(upstream.CACHE_ENV, str(tmp_path / "cache"))
    return made


@pytest.fixture
def line(tmp_path: Path, sdist: Path) -> Line:
    path = tmp_path / "patches" / "v1.x"
    path.mkdir(parents=True)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    (path / "upstream.toml").write_text(
        f'distribution = "mcp"\nversion = "1.0.0"\nsdist = "{sdist.name}"\nsha256 = "{digest}"\n'
    )
    (path / "series").write_text("# test series\n")
    return Line(path)


def git(tree: Path, *args: str) -> str:
    return queue.git(*args, cwd=tree)


def commit_change(tree: Path, path: str, old: str, new: str, message: str) -> None:
    target = tree / path
    target.write_text(target.read_text().replace(old, new))
    git(tree, "commit", "--quiet", "--all", "-m", message)


def make_two_patches(line: Line, tmp_path: Path) -> Path:
    workspace = queue.build_tree(line, tmp_path / "workspace", three_way=True)
    (workspace / "tests" / "test_session.py").write_text(UPSTREAM_FILES["tests/test_session.py"] + "# greet\n")
    commit_change(workspace, "src/mcp/session.py", "'hello'", "'hi'", "Greet briefly\n\nShorter is friendlier.")
    commit_change(workspace, "src/mcp/session.py", "return 1", "return 2", "Count twice\n\nThe part is two.")
    (workspace / "tests" / "test_part.py").write_text("def test_part():\n    pass\n")
    git(workspace, "add", "tests/test_part.py")
    git(workspace, "commit", "--quiet", "--amend", "--no-edit")
    assert queue.export(line, workspace) == ["0001-Greet-briefly.patch", "0002-Count-twice.patch", "series"]
    return workspace


def test_build_tree_is_the_sdist_exactly_as_commit_base(line: Line, tmp_path: Path) -> None:
    tree = queue.build_tree(line, tmp_path / "tree")
    assert sorted(git(tree, "ls-files").split()) == sorted(UPSTREAM_FILES)
    assert git(tree, "rev-parse", "HEAD") == git(tree, "rev-parse", "base")


def test_materialize_places_the_patched_package_in_src(line: Line, tmp_path: Path) -> None:
    make_two_patches(line, tmp_path)
    root = tmp_path / "checkout"
    root.mkdir()
    checkout.materialize(root, line, ("src/mcp",))
    assert "'hi'" in (root / "src" / "mcp" / "session.py").read_text()
    assert "return 2" in (root / "src" / "mcp" / "session.py").read_text()
    assert (root / "src" / "LICENSE.upstream").read_text() == UPSTREAM_FILES["LICENSE"]
    assert checkout.is_current(root, line, ("src/mcp",))

    (line.path / "series").write_text("0001-Greet-briefly.patch\n")
    assert not checkout.is_current(root, line, ("src/mcp",))
    checkout.ensure(root, line, ("src/mcp",))
    assert "return 1" in (root / "src" / "mcp" / "session.py").read_text()


def test_export_of_an_untouched_workspace_changes_no_byte(line: Line, tmp_path: Path) -> None:
    make_two_patches(line, tmp_path)
    before = {path.name: path.read_bytes() for path in line.path.iterdir()}
    again = queue.build_tree(line, tmp_path / "again", three_way=True)
    assert queue.export(line, again) == []
    assert {path.name: path.read_bytes() for path in line.path.iterdir()} == before
    assert checks.check_line(line) == []


def test_editing_one_patch_leaves_the_next_patch_file_alone(line: Line, tmp_path: Path) -> None:
    make_two_patches(line, tmp_path)
    second = (line.path / "0002-Count-twice.patch").read_bytes()
    workspace = queue.build_tree(line, tmp_path / "edit", three_way=True)
    # Edit the first patch as a developer would: a fixup commit squashed into it.
    commit_change(workspace, "src/mcp/session.py", "'hi'", "'hey'", "fixup! Greet briefly")
    env = {"GIT_SEQUENCE_EDITOR": "true"}
    queue.git("rebase", "--quiet", "--interactive", "--autosquash", "base", cwd=workspace, env=env)

    assert queue.export(line, workspace) == ["0001-Greet-briefly.patch"]
    assert (line.path / "0002-Count-twice.patch").read_bytes() == second
    assert "'hey'" in (line.path / "0001-Greet-briefly.patch").read_text()
    assert checks.check_line(line) == []


def test_check_reports_a_listed_patch_that_is_missing(line: Line, tmp_path: Path) -> None:
    make_two_patches(line, tmp_path)
    (line.path / "0002-Count-twice.patch").unlink()
    assert checks.check_line(line) == ["v1.x/series: 0002-Count-twice.patch is listed but the file is missing"]


def test_check_reports_a_patch_the_series_does_not_list(line: Line, tmp_path: Path) -> None:
    make_two_patches(line, tmp_path)
    (line.path / "series").write_text("0001-Greet-briefly.patch\n")
    assert checks.check_line(line) == ["v1.x/0002-Count-twice.patch: not listed in the series"]


def test_check_reports_a_patch_listed_twice(line: Line, tmp_path: Path) -> None:
    make_two_patches(line, tmp_path)
    (line.path / "series").write_text("0001-Greet-briefly.patch\n0001-Greet-briefly.patch\n0002-Count-twice.patch\n")
    assert checks.check_line(line) == ["v1.x/series: 0001-Greet-briefly.patch is listed twice"]


def test_check_reports_a_patch_that_does_not_apply(line: Line, tmp_path: Path) -> None:
    make_two_patches(line, tmp_path)
    first = line.path / "0001-Greet-briefly.patch"
    first.write_text(first.read_text().replace("-    return 'hello'", "-    return 'howdy'"))
    [problem] = checks.check_line(line)
    assert problem.startswith("v1.x: 0001-Greet-briefly.patch does not apply")


def test_check_reports_a_message_without_body_and_src_without_tests(line: Line, tmp_path: Path) -> None:
    workspace = queue.build_tree(line, tmp_path / "workspace", three_way=True)
    commit_change(workspace, "src/mcp/session.py", "'hello'", "'hi'", "Greet briefly\n\nRefs: #1")
    queue.export(line, workspace)
    assert checks.check_line(line) == [
        "v1.x/0001-Greet-briefly.patch: the commit message has no body saying why",
        "v1.x/0001-Greet-briefly.patch: changes src/ but no test under tests/",
    ]


def test_check_reports_a_patch_file_not_in_exported_form(line: Line, tmp_path: Path) -> None:
    make_two_patches(line, tmp_path)
    first = line.path / "0001-Greet-briefly.patch"
    first.write_text(first.read_text().replace("Shorter is friendlier.", "Shorter is friendlier.\n"))
    assert checks.check_line(line) == [
        "v1.x/0001-Greet-briefly.patch: not in exported form; run `pq workspace` then `pq export`"
    ]


def test_a_sdist_with_the_wrong_hash_is_refused_and_nothing_is_left(line: Line, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tampered = make_sdist(elsewhere, {**UPSTREAM_FILES, "src/mcp/__init__.py": "import os\n"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(upstream.SDIST_ENV, str(tampered))
        with pytest.raises(upstream.PinError, match="sha256 is .* but the pin says"):
            queue.build_tree(line, tmp_path / "tree")
    assert not (tmp_path / "tree").exists()


def test_a_download_with_the_wrong_hash_never_reaches_the_cache(
    line: Line, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(upstream.SDIST_ENV)

    def fake_download(requirement: str, distribution: str, dest: Path) -> None:
        make_sdist(dest, {**UPSTREAM_FILES, "src/mcp/__init__.py": "import os\n"})

    monkeypatch.setattr(upstream, "_pip_download", fake_download)
    with pytest.raises(upstream.PinError, match="refusing to use it"):
        upstream.fetch(line.pin)
    assert list((tmp_path / "cache" / "sdists").iterdir()) == []


def test_a_good_download_is_cached_and_reused(line: Line, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = Path(str(upstream.fetch(line.pin)))
    monkeypatch.delenv(upstream.SDIST_ENV)
    calls: list[str] = []

    def fake_download(requirement: str, distribution: str, dest: Path) -> None:
        calls.append(requirement)
        (dest / good.name).write_bytes(good.read_bytes())

    monkeypatch.setattr(upstream, "_pip_download", fake_download)
    first = upstream.fetch(line.pin)
    assert upstream.fetch(line.pin) == first
    assert calls == ["mcp==1.0.0"]


def test_series_comments_and_blank_lines_are_ignored(line: Line) -> None:
    (line.path / "series").write_text("# heading\n\n0001-a.patch  # the first\n")
    assert line.series() == ["0001-a.patch"]


def test_a_broken_pin_is_a_clear_error(line: Line) -> None:
    (line.path / "upstream.toml").write_text('distribution = "mcp"\n')
    with pytest.raises(upstream.PinError, match="missing version, sdist, sha256"):
        line.pin  # noqa: B018


def pyproject(version: str, requires_python: str, *dependencies: str, **tool: str) -> dict[str, Any]:
    project = {"name": "mcp", "version": version, "requires-python": requires_python, "dependencies": dependencies}
    return {"project": project, "tool": {"mcp-initfix": {"line": "v1.x", "packages": ["src/mcp"], **tool}}}


def test_metadata_check_wants_upstreams_requirements(line: Line) -> None:
    assert checks.check_metadata(line, pyproject("1.0.0+initfix.1", ">=3.10", "anyio>=4.5")) == []
    assert checks.check_metadata(line, pyproject("1.0.0", ">=3.9", "anyio>=4.4")) == [
        "mcp 1.0.0: the version should be 1.0.0+<label>.<n> for v1.x",
        "mcp 1.0.0: upstream requires 'anyio>=4.5', the fork does not",
        "mcp 1.0.0: the fork requires 'anyio>=4.4', upstream does not",
        "mcp 1.0.0: requires-python should be '>=3.10', as upstream's",
    ]


def test_metadata_check_can_read_a_sub_project_of_the_sdist(line: Line, tmp_path: Path) -> None:
    sub_project = '[project]\nname = "mcp-types"\nrequires-python = ">=3.10"\ndependencies = ["pydantic>=2"]\n'
    sdist = make_sdist(tmp_path, {**UPSTREAM_FILES, "src/mcp-types/pyproject.toml": sub_project})
    (line.path / "upstream.toml").write_text(
        (line.path / "upstream.toml").read_text().replace(line.pin.sha256, upstream.sha256_of(sdist))
    )
    ours = pyproject(
        "1.0.0+initfix.1", ">=3.10", "pydantic>=2", **{"upstream-metadata": "src/mcp-types/pyproject.toml"}
    )
    assert checks.check_metadata(line, ours) == []


def test_the_cli_reports_problems_with_exit_status_one(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bin/pq", "workspace", "no-such-line"], cwd=Path(__file__).parent.parent, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "no line 'no-such-line'" in result.stderr


def test_a_missing_series_file_is_a_series_error(tmp_path: Path) -> None:
    with pytest.raises(SeriesError, match="no series file"):
        Line(tmp_path).series()


def release(sdist: Path, monkeypatch: pytest.MonkeyPatch, version: str, changes: dict[str, str]) -> None:
    """Offer another release of the test's upstream beside the first, in an offline folder."""
    files = {**UPSTREAM_FILES, **changes, "PKG-INFO": UPSTREAM_FILES["PKG-INFO"].replace("1.0.0", version)}
    make_sdist(sdist.parent, files, name=f"mcp-{version}")
    monkeypatch.setenv(upstream.SDIST_ENV, str(sdist.parent))


def test_rebase_onto_a_release_that_merged_a_patch_drops_it(
    line: Line, sdist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_two_patches(line, tmp_path)
    release(
        sdist,
        monkeypatch,
        "1.1.0",
        {
            "src/mcp/session.py": "'''Now with a docstring.'''\n\n\n"
            + UPSTREAM_FILES["src/mcp/session.py"].replace("'hello'", "'hi'"),
            "tests/test_session.py": UPSTREAM_FILES["tests/test_session.py"] + "# greet\n",
        },
    )
    assert queue.rebase(line, "1.1.0", tmp_path / "rebased") == ["Greet briefly"]

    assert line.series() == ["0001-Count-twice.patch"]
    assert (line.pin.version, line.pin.sdist) == ("1.1.0", "mcp-1.1.0.tar.gz")
    assert checks.check_line(line) == []


def test_rebase_stops_on_a_conflict_with_the_workspace_waiting(
    line: Line, sdist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_two_patches(line, tmp_path)
    release(sdist, monkeypatch, "1.1.0", {"src/mcp/session.py": UPSTREAM_FILES["src/mcp/session.py"].replace("1", "3")})
    with pytest.raises(queue.RebaseStopped, match="git rebase --continue"):
        queue.rebase(line, "1.1.0", tmp_path / "rebased")
    assert (tmp_path / "rebased" / ".git" / "rebase-merge").exists()


def test_machine_failures_apply_only_while_their_condition_holds(line: Line, monkeypatch: pytest.MonkeyPatch) -> None:
    (line.path / "upstream.toml").write_text(
        (line.path / "upstream.toml").read_text()
        + '[suite]\nsync = ["--all-extras"]\n'
        + '[[suite.machine-failures]]\ntest = "tests/test_a.py::test_chmod"\nwhen = "root"\nreason = "root reads all"\n'
    )
    pin = line.pin
    assert pin.sync_args == ("--all-extras",)
    monkeypatch.setattr(gates.os, "geteuid", lambda: 0)
    assert [failure.test for failure in gates.applicable_failures(pin)] == ["tests/test_a.py::test_chmod"]
    monkeypatch.setattr(gates.os, "geteuid", lambda: 1000)
    assert gates.applicable_failures(pin) == []


def test_metadata_check_accepts_an_exact_pin_on_a_sibling_the_fork_builds(line: Line) -> None:
    pins_types = {**UPSTREAM_FILES, "PKG-INFO": UPSTREAM_FILES["PKG-INFO"] + "Requires-Dist: mcp-types==1.0.0\n"}
    sdist = make_sdist(line.path.parent, pins_types)
    (line.path / "upstream.toml").write_text(
        (line.path / "upstream.toml").read_text().replace(line.pin.sha256, upstream.sha256_of(sdist))
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(upstream.SDIST_ENV, str(sdist))
        ours = pyproject("1.0.0+initfix.1", ">=3.10", "anyio>=4.5", "mcp-types==1.0.0+initfix.1")
        assert checks.check_metadata(line, ours, {"mcp-types": "1.0.0+initfix.1"}) == []
        assert checks.check_metadata(line, ours, {}) == [
            "mcp 1.0.0+initfix.1: upstream requires 'mcp-types==1.0.0', the fork does not",
            "mcp 1.0.0+initfix.1: the fork requires 'mcp-types==1.0.0+initfix.1', upstream does not",
        ]


def test_files_short_of_coverage_are_read_from_coverage_json(tmp_path: Path) -> None:
    fake_uv = tmp_path / "uv.py"
    report = {
        "files": {
            "src/mcp/a.py": {"missing_lines": [], "missing_branches": []},
            "tests/test_b.py": {"missing_lines": [7], "missing_branches": []},
            "tests/test_c.py": {"missing_lines": [], "missing_branches": [[3, 5]]},
        }
    }
    # Stands in for `uv run ... coverage json -o PATH`: writes the report to the path after -o.
    fake_uv.write_text(f"import sys\nopen(sys.argv[sys.argv.index('-o') + 1], 'w').write({json.dumps(report)!r})\n")
    lost = gates._files_short_of_coverage(tmp_path, dict(os.environ), [sys.executable, str(fake_uv)])
    assert lost == ["tests/test_b.py", "tests/test_c.py"]
    assert not (tmp_path / ".pq-coverage.json").exists()


def test_a_failed_gate_keeps_its_last_lines_for_the_summary(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys\nfor n in range(40): print(n)\nsys.exit(1)"]
    failure = gates._run(tmp_path, dict(os.environ), "pytest", command, check=False)
    assert failure is not None
    assert failure.gate == "pytest"
    assert failure.last_lines == [str(n) for n in range(40 - gates.FAILURE_LINES, 40)]
    assert str(failure).splitlines()[:2] == ["pytest failed; its last lines:", f"    {40 - gates.FAILURE_LINES}"]
    assert gates._run(tmp_path, dict(os.environ), "ok", [sys.executable, "-c", "pass"], check=False) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreapers are a Linux feature")
def test_reaper_adopts_orphans_and_exits_with_the_commands_code(tmp_path: Path) -> None:
    command = tmp_path / "orphan.py"
    command.write_text(
        "import os, subprocess, sys\n"
        "# sh starts a sleeper and exits without waiting for it: the sleeper is an orphan.\n"
        "script = 'sleep 60 >/dev/null 2>&1 & echo $!'\n"
        "sleeper = int(subprocess.run(['sh', '-c', script], capture_output=True, text=True).stdout)\n"
        "with open(f'/proc/{sleeper}/status') as status:\n"
        "    parent = next(int(line.split()[1]) for line in status if line.startswith('PPid:'))\n"
        "os.kill(sleeper, 9)\n"
        "print('adopted by the reaper' if parent == os.getppid() else f'adopted by {parent}')\n"
        "sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, str(gates.REAPER), sys.executable, str(command)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (3, "adopted by the reaper\n")


# Stands in for uv in run_gates: logs each call, passes every gate but the first coverage
# report, and has `coverage json` name FAKE_LOST_FILE as the one file short of coverage.
FAKE_UV = """\
import json, os, sys
from pathlib import Path
log = Path(os.environ["FAKE_UV_LOG"])
calls = json.loads(log.read_text()) if log.exists() else []
args = sys.argv[1:]
calls.append(args)
log.write_text(json.dumps(calls))
if args[-2:] == ["coverage", "report"] and [call[-2:] for call in calls].count(["coverage", "report"]) == 1:
    print("TOTAL   99.99%")
    sys.exit(1)
if "json" in args:
    lost = {"missing_lines": [3], "missing_branches": []}
    Path(args[args.index("-o") + 1]).write_text(json.dumps({"files": {os.environ["FAKE_LOST_FILE"]: lost}}))
"""


@pytest.mark.parametrize(
    ("lost_file", "reruns"),
    [pytest.param("tests/test_b.py", 1, id="test-file-rerun"), pytest.param("src/mcp/a.py", 0, id="src-never")],
)
def test_coverage_lost_only_in_test_files_reruns_those_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lost_file: str, reruns: int
) -> None:
    fake_uv = tmp_path / "uv.py"
    fake_uv.write_text(FAKE_UV)
    log = tmp_path / "calls.json"
    monkeypatch.setattr(gates, "uv_command", lambda: [sys.executable, str(fake_uv)])
    monkeypatch.setenv("FAKE_UV_LOG", str(log))
    monkeypatch.setenv("FAKE_LOST_FILE", lost_file)
    pin = upstream.Pin("mcp", "1.0.0", "mcp-1.0.0.tar.gz", "0" * 64, pytest_args=("-x",))

    failures = gates.run_gates(tmp_path, pin)

    calls = json.loads(log.read_text())
    pytest_runs = [call[3:] for call in calls if call[3:6] == ["coverage", "run", "-m"]]
    first_run = ["coverage", "run", "-m", "pytest", "-x"]
    assert pytest_runs == [first_run, *[[*first_run, lost_file]] * reruns]
    if reruns:
        assert ["run", "--frozen", "--no-sync", "coverage", "combine", "--append"] in calls
        assert failures == []
    else:
        assert [(failure.gate, failure.last_lines) for failure in failures] == [("coverage report", ["TOTAL   99.99%"])]
