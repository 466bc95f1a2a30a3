"""The pipeline's decisions and approvals live in the project's store, SQLite or PostgreSQL alike:
a failed stage is stored FAIL; a review requirement is stored MARGINAL (so no deploy path takes the
version) until `shipyard approve`, after which the stage is decided again and passes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from testdb import KINDS, fresh_database
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.store import Store

runner = CliRunner()


@pytest.fixture(params=KINDS)
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    with fresh_database(request.param, tmp_path) as url:
        monkeypatch.setenv("SHIPYARD_DATABASE_URL", url)
        copy_project(tmp_path / "p")
        cfg = tmp_path / "p" / "shipyard.yaml"
        cfg.write_text(
            _small_production_gate(cfg.read_text())
            + "\npipeline:\n  production:\n    review_prompt_lines: 2\n"
        )
        yield tmp_path / "p"


# What this file checks is where decisions and approvals are kept, not the demo's production suites
# (tests/pipeline/test_demo_pipeline.py runs those): the production gate here runs the pre-merge
# suite (34 cases, which 1.2 passes) instead of the demo's 441, under rules of the same kinds
# (pass rates, safety, regression, hard checks).
SMALL_PRODUCTION_GATE = """\
  production:
    suites: [evals/support/smoke.yaml]
    min_pass_rate: {functional: 1.0, tool_usage: 1.0}
    safety: {min_pass_rate: 1.0}
    regression: {baseline: production, allow_new_failures: 0}
    hard: [safety, regression]
"""


def _small_production_gate(text: str) -> str:
    start = text.index("\n  production:", text.index("\ngates:\n")) + 1
    end = re.search(r"\n(?=\S)", text[start:])
    rest = text[start + end.end() :] if end else ""
    return text[:start] + SMALL_PRODUCTION_GATE + rest


def ci(root: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["ci", "run", *args, "-c", str(root / "shipyard.yaml")])
    summary = root / ".shipyard" / "ci" / "reports" / "summary.json"
    return result.exit_code, json.loads(summary.read_text())["stages"][-1]


def test_decisions_and_approvals_in_the_store(project: Path) -> None:
    cfg = load_config(project / "shipyard.yaml")
    code, stage = ci(project, "pre-merge", "--version", "1.1.0")
    assert code == 1 and stage["status"] == "fail"
    with Store.from_config(cfg) as store:
        assert store.get_eval_run(stage["run_id"])["decision"]["verdict"] == "FAIL"
        assert store.url.startswith(("sqlite", "postgresql"))
    refused = runner.invoke(
        app, ["approve", stage["run_id"], "--by", "a", "--reason", "r", "-c", str(project / "shipyard.yaml")]
    )
    assert refused.exit_code == 1 and "cannot be approved" in refused.output
    code, stage = ci(project, "production", "--version", "1.2.0")
    assert code == 3 and stage["status"] == "waiting"
    run_id = stage["run_id"]
    with Store.from_config(cfg) as store:
        assert store.get_eval_run(run_id)["decision"]["verdict"] == "MARGINAL"
    ok = runner.invoke(
        app,
        ["approve", run_id, "--by", "alice", "--reason", "reviewed", "-c", str(project / "shipyard.yaml")],
    )
    assert ok.exit_code == 0, ok.output
    code, stage = ci(project, "production", "--version", "1.2.0", "--run", run_id)
    assert code == 0 and stage["status"] == "pass"
    with Store.from_config(cfg) as store:
        row = store.get_eval_run(run_id)
        assert row["decision"]["verdict"] == "PASS"
        assert [a["by"] for a in store.approvals(run_id)] == ["alice"]
