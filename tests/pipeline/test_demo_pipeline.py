"""`shipyard ci run` on the demo project: 1.0 and 1.2 pass every stage, 1.1 fails at pre-merge (the
first stage that sees its regression) with per-category deltas in the PR comment; a second run of
the same version replays its model calls; a review requirement waits for `shipyard approve`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.store import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("demo")
    copy_project(root)
    mp = pytest.MonkeyPatch()
    mp.delenv("SHIPYARD_DATABASE_URL", raising=False)
    mp.delenv("SHIPYARD_CONFIG", raising=False)
    mp.setenv("COLUMNS", "200")
    yield root
    mp.undo()


def ci(root: Path, *args: str) -> tuple[int, str, dict]:
    out = root / "reports"
    result = runner.invoke(app, ["ci", "run", *args, "-c", str(root / "shipyard.yaml"), "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    return result.exit_code, result.output, summary


@pytest.fixture(scope="module")
def run_1_2(demo: Path) -> tuple[int, str, dict]:
    """`shipyard ci run --version 1.2.0`, every stage, once for the file: what it printed and its
    summary. test_1_2 checks the run; the approval test decides its stored production run again."""
    return ci(demo, "--version", "1.2.0")


def test_1_1_fails_at_pre_merge_with_per_category_deltas(demo: Path) -> None:
    code, output, summary = ci(demo, "--version", "1.1.0")
    assert code == 1, output
    assert [s["stage"] for s in summary["stages"]] == ["pre-merge"]  # stopped at the first failure
    stage = summary["stages"][0]
    assert stage["status"] == "fail" and stage["verdict"] == "FAIL"
    failed = {c["name"] for c in stage["checks"] if not c["passed"]}
    assert {"safety", "regression", "pass_rate.tool_usage"} <= failed
    assert stage["baseline"].startswith("support@1.0.0+")
    comment = (demo / "reports" / "comment.md").read_text()
    assert "<!-- shipyard-ci -->" in comment and "pre-merge: FAIL" in comment
    rows = {
        m.group(1): m.groups()
        for m in re.finditer(
            r"^\| (\w+) \| (\d+) \| ([\d.]+)% \| ([\d.]+)% \| ([+-][\d.]+) pts \| (\d+) \| (\d+) \|$",
            comment,
            re.M,
        )
    }
    assert rows["tool_usage"][2:] == ("15", "60.0", "100.0", "-40.0", "0", "6")[1:] or rows["tool_usage"][
        3:
    ] == ("100.0", "-40.0", "0", "6")
    assert rows["safety"][3:] == ("100.0", "-20.0", "0", "1")
    assert rows["functional"][4:] == ("+0.0", "0", "0")
    assert "regressed case(s)" in comment and "smoke/refund-final-sale" in comment
    junit = (demo / "reports" / "pre-merge.xml").read_text()
    assert 'name="gate pre-merge"' in junit and 'name="regression"' in junit and "<failure" in junit
    # the decision is stored on the run: a deploy path reads FAIL
    cfg = load_config(demo / "shipyard.yaml")
    with Store.from_config(cfg) as store:
        assert store.get_eval_run(stage["run_id"])["decision"]["verdict"] == "FAIL"


def test_1_2_passes_every_stage_through_a_staging_server(demo: Path, run_1_2: tuple[int, str, dict]) -> None:
    code, output, summary = run_1_2
    assert code == 0, output
    stages = {s["stage"]: s for s in summary["stages"]}
    assert list(stages) == ["pre-merge", "post-merge", "production"]
    assert all(s["status"] == "pass" for s in stages.values())
    post = stages["post-merge"]
    checks = {c["name"]: c for c in post["checks"]}
    assert checks["staging.healthz"]["passed"] and checks["staging.readyz"]["passed"]
    assert checks["staging.version"]["detail"].startswith("serves support@1.2.0+")
    assert post["benchmark"]["errors"] == 0 and post["benchmark"]["requests"] == 40
    # the staging server's records are kept: every eval case and benchmark request reached its store
    note = next(n for n in post["notes"] if "records are kept" in n)
    url = re.search(r"(sqlite:///\S+?\.db)", note).group(1)
    with Store(url, demo) as staging:
        rows = staging.list_interactions(None, None, None, None, None, None, None, 10_000)
    with Store.from_config(load_config(demo / "shipyard.yaml")) as store:
        results = store.eval_results(post["run_id"])
    assert results and {r["interaction_id"] for r in results} <= {r.id for r in rows}
    assert sum(1 for r in rows if r.session_id.startswith("ci-bench-")) == 40
    assert {r.version for r in rows} == {stages["pre-merge"]["version"]}
    prod = {c["name"]: c for c in stages["production"]["checks"]}
    assert prod["review.prompt_change"][
        "passed"
    ]  # 7 system-prompt lines vs 1.0: under the 20-line review bar
    assert prod["consistency.models"]["skipped"]


def test_1_0_passes_and_a_second_run_replays(demo: Path) -> None:
    code, output, _summary = ci(demo, "pre-merge", "--version", "1.0.0")
    assert code == 0, output
    code, output, again = ci(demo, "pre-merge", "--version", "1.0.0")
    assert code == 0, output
    assert any("replayed from the CI cache" in n for n in again["stages"][0]["notes"])
    # a stale recording (here: emptied) is not the candidate's fault: CI runs live and records again
    for recording in (demo / ".shipyard" / "ci" / "replay" / "support").rglob("*.jsonl"):
        recording.write_text("")
    code, output, stale = ci(demo, "pre-merge", "--version", "1.0.0")
    assert code == 0, output
    assert any("missed the CI replay cache" in n for n in stale["stages"][0]["notes"])
    code, output, prod = ci(demo, "production", "--version", "1.0.0")
    assert code == 0, output
    assert prod["stages"][0]["status"] == "pass"


def test_a_significant_prompt_change_waits_for_an_approval(
    demo: Path, run_1_2: tuple[int, str, dict]
) -> None:
    """1.2's production run (run_1_2, which passed under the demo's review bar) decided again with a
    2-line review bar: its 7 changed system-prompt lines now wait for a person's approval. (A fresh
    production run that waits is tests/pipeline/test_stores.py's, on SQLite and PostgreSQL.)"""
    cfg_file = demo / "shipyard.yaml"
    original = cfg_file.read_text()
    production = next(s for s in run_1_2[2]["stages"] if s["stage"] == "production")
    cfg_file.write_text(original + "\npipeline:\n  production:\n    review_prompt_lines: 2\n")
    try:
        code, output, summary = ci(demo, "production", "--version", "1.2.0", "--run", production["run_id"])
        assert code == 3, output
        stage = summary["stages"][0]
        assert stage["status"] == "waiting" and stage["verdict"] == "MARGINAL"
        review = next(c for c in stage["checks"] if c["name"] == "review.prompt_change")
        assert not review["passed"] and "system-prompt lines changed" in review["detail"]
        run_id = stage["run_id"]
        assert any(f"shipyard approve {run_id}" in n for n in stage["notes"])
        # a red-team sign-off is not the human review the prompt change needs
        signed = runner.invoke(
            app,
            [
                "approve",
                run_id,
                "--red-team",
                "--by",
                "mallory",
                "--reason",
                "probed it",
                "-c",
                str(cfg_file),
            ],
        )
        assert signed.exit_code == 0, signed.output
        code, output, still = ci(demo, "production", "--version", "1.2.0", "--run", run_id)
        assert code == 3 and still["stages"][0]["status"] == "waiting", output
        with Store.from_config(load_config(cfg_file)) as store:
            assert store.approvals(run_id)[0]["reason"] == "red-team sign-off: probed it"
        approved = runner.invoke(
            app,
            [
                "approve",
                run_id[:10],
                "--by",
                "alice",
                "--reason",
                "read the refund wording",
                "-c",
                str(cfg_file),
            ],
        )
        assert approved.exit_code == 0, approved.output
        code, output, again = ci(demo, "production", "--version", "1.2.0", "--run", run_id)
        assert code == 0, output
        check = next(c for c in again["stages"][0]["checks"] if c["name"] == "review.prompt_change")
        assert check["passed"] and "reviewed by alice" in check["detail"]
    finally:
        cfg_file.write_text(original)


def test_a_stage_without_a_gate_is_a_config_error(demo: Path, tmp_path: Path) -> None:
    root = tmp_path / "p"
    copy_project(root)
    text = (root / "shipyard.yaml").read_text()
    start = text.index("  post-merge:")
    end = text.index("  production:")
    (root / "shipyard.yaml").write_text(text[:start] + text[end:])
    result = runner.invoke(app, ["ci", "run", "-c", str(root / "shipyard.yaml")])
    assert result.exit_code == 2
    assert "gates.post-merge.suites" in result.output
