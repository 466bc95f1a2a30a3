"""Pre-merge in a git repository: the change decides which evals run, and the base branch's results
come from the base commit itself (its own code and prompts, in a separate process), cached by commit."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.demo import copy_project, project_dir
from shipyard.pipeline import detect_changes

runner = CliRunner()
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    root = tmp_path / "repo"
    project = root / "agents"  # the project in a folder of the repository
    copy_project(project)
    (root / ".gitignore").write_text(".shipyard/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "change")
    return root


def ci(project: Path, *args: str) -> tuple[int, str, dict]:
    out = project / "reports"
    result = runner.invoke(
        app, ["ci", "run", "pre-merge", *args, "-c", str(project / "shipyard.yaml"), "--out", str(out)]
    )
    return result.exit_code, result.output, json.loads((out / "summary.json").read_text())


def test_a_docs_only_change_runs_no_evals(repo: Path) -> None:
    project = repo / "agents"
    (project / "README.md").write_text("# notes\n")
    changes = detect_changes(project, "main")
    assert changes.files == ["README.md"] and changes.project_prefix == "agents"
    code, output, summary = ci(project, "--base", "main")
    assert code == 0, output
    stage = summary["stages"][0]
    assert stage["run_id"] is None
    assert any("touch no agent file" in n for n in stage["notes"])


def test_a_prompt_change_is_compared_with_the_base_commit(repo: Path) -> None:
    project = repo / "agents"
    bundle = project / "prompts" / "support" / "v1.0"
    for name in ("system_prompt.txt", "safety_rules.txt", "tool_descriptions.yaml"):
        shutil.copyfile(project_dir() / "prompts" / "support" / "v1.1" / name, bundle / name)
    git(repo, "commit", "-q", "-am", "faster refunds")
    code, output, summary = ci(project, "--base", "main")
    assert code == 1, output
    stage = summary["stages"][0]
    base_commit = git(repo, "rev-parse", "main")
    assert stage["baseline"].startswith(f"main @ {base_commit[:10]}") and not stage["baseline_cached"]
    regression = next(c for c in stage["checks"] if c["name"] == "regression")
    assert not regression["passed"] and "smoke/refund-final-sale" in regression["detail"]
    assert any("every suite: the change touches prompts/support/v1.0/" in n for n in stage["notes"])
    # the base commit's results are cached by commit: the next run does not evaluate the base again
    code, output, again = ci(project, "--base", "main")
    assert code == 1 and again["stages"][0]["baseline_cached"]
    assert list(
        (project / ".shipyard" / "ci" / "baselines" / "support").glob(f"{base_commit[:20]}-pre-merge-*.json")
    )


def test_a_suite_only_change_runs_only_that_suite(repo: Path) -> None:
    project = repo / "agents"
    smoke = project / "evals" / "support" / "smoke.yaml"
    smoke.write_text(smoke.read_text() + "\n")
    code, output, summary = ci(project, "--base", "main")
    assert code == 0, output
    assert any(
        "only the changed suite(s): evals/support/smoke.yaml" in n for n in summary["stages"][0]["notes"]
    )
