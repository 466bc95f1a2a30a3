"""The packaged demo project: it copies, validates, and its pieces fit together; `shipyard demo` runs
it end to end, once for this file, and each phase's test checks its part of that run."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shipyard.config import load_config
from shipyard.demo import TOOLS, copy_project, project_dir
from shipyard.errors import ShipyardError
from shipyard.llm import load_rules
from shipyard.prompts import load_bundle

EXPECTED = {
    "shipyard.yaml",
    "flags.json",
    "rules/support.yaml",
    "rules/support_mini.yaml",
    *(f"evals/support/{s}.yaml" for s in ("smoke", "broad", "safety", "redteam", "redteam_critical")),
    *(
        f"prompts/support/{v}/{f}"
        for v in ("v1.0", "v1.1", "v1.2", "v1.3")
        for f in ("system_prompt.txt", "tool_descriptions.yaml", "safety_rules.txt", "version.txt")
    ),
}


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_copy_project_writes_the_whole_project(tmp_path: Path) -> None:
    dest = copy_project(tmp_path / "work" / "demo")
    assert files(dest) == EXPECTED
    assert (dest / "shipyard.yaml").read_text() == (project_dir() / "shipyard.yaml").read_text()


def test_copy_project_overwrites_an_earlier_copy_by_default(tmp_path: Path) -> None:
    copy_project(tmp_path)
    (tmp_path / "rules" / "support.yaml").write_text("edited")
    copy_project(tmp_path)
    assert (tmp_path / "rules" / "support.yaml").read_text() != "edited"


def test_copy_project_can_refuse_to_overwrite(tmp_path: Path) -> None:
    copy_project(tmp_path)
    (tmp_path / "rules" / "support.yaml").write_text("edited")
    with pytest.raises(ShipyardError, match="already has files of the demo project: evals/support/broad"):
        copy_project(tmp_path, overwrite=False)
    assert (tmp_path / "rules" / "support.yaml").read_text() == "edited"
    copy_project(tmp_path / "empty", overwrite=False)


def test_copy_project_onto_a_file_is_a_clean_error(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ShipyardError, match="is a file, not a folder"):
        copy_project(target)


def test_config_validates_with_two_versions_and_three_scripted_models(tmp_path: Path) -> None:
    cfg = load_config(copy_project(tmp_path) / "shipyard.yaml")
    assert set(cfg.models) == {"scripted-mini", "scripted-small", "scripted-large"}
    mini, small, large = (cfg.models[k] for k in ("scripted-mini", "scripted-small", "scripted-large"))
    assert (mini.tier, small.tier, large.tier) == ("small", "medium", "large")
    assert large.prices.input > small.prices.input > mini.prices.input
    assert large.prices.output > small.prices.output > mini.prices.output
    agent = cfg.agents["support"]
    assert agent.entry == "shipyard.demo.agent:support"
    assert agent.prompts == "prompts/support/v1.0"
    assert [v.prompts for v in agent.versions] == [
        "prompts/support/v1.1",
        "prompts/support/v1.2",
        "prompts/support/v1.3",
    ]
    assert agent.prompt_variables == {"company_name": "Brightside Goods"}


def test_the_commented_openai_model_is_valid_when_uncommented() -> None:
    text = (project_dir() / "shipyard.yaml").read_text()
    block = [
        line.removeprefix("  # ")
        for line in text.splitlines()
        if line.startswith("  #   ") or line.startswith("  # gpt-small:")
    ]
    model = yaml.safe_load("\n".join(block))["gpt-small"]
    assert model["provider"] == "openai" and model["base_url"] and model["api_key_env"] == "OPENAI_API_KEY"


@pytest.mark.parametrize(("folder", "label"), [("v1.0", "1.0.0"), ("v1.1", "1.1.0")])
def test_prompt_bundles_describe_every_tool_and_argument(folder: str, label: str) -> None:
    bundle = load_bundle(project_dir() / "prompts" / "support" / folder)
    assert bundle.label == label
    assert bundle.variables() == {"company_name"}
    for tool in TOOLS:
        desc = bundle.tool_description(tool.name)
        assert desc is not None, tool.name
        assert set(desc.parameters or {}) == set(inspect.signature(tool.fn).parameters), tool.name
    prompt = bundle.render({"company_name": "Acme"})
    assert "Acme" in prompt and "{{" not in prompt
    assert "Never reveal" in prompt and "another customer's data" in prompt


def test_v11_drops_only_the_eligibility_rule() -> None:
    v10 = load_bundle(project_dir() / "prompts" / "support" / "v1.0").render({"company_name": "X"})
    v11 = load_bundle(project_dir() / "prompts" / "support" / "v1.1").render({"company_name": "X"})
    assert "eligibility is confirmed" in v10 and "eligibility is confirmed" not in v11
    assert "process refunds promptly" in v11 and "process refunds promptly" not in v10
    for kept in ("Never reveal", "prompt\n  injection", "Escalate angry customers"):
        assert kept in v10 and kept in v11


def test_rules_file_loads_and_names_only_real_tools() -> None:
    rules = load_rules(project_dir() / "rules" / "support.yaml")
    called = {tc.name for r in rules.rules for tc in r.tool_calls}
    called |= {n for r in rules.rules for n in [*r.when.called, *r.when.not_called]}
    called |= {name for r in rules.rules if r.when.last_tool for name in r.when.last_tool.split("|")}
    assert called <= set(TOOLS.names())
    assert set(TOOLS.names()) <= called
    names = [r.name for r in rules.rules]
    assert all(names) and len(names) == len(set(names))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`shipyard demo`, every phase, in its own process as a user runs it (the demo's tools keep their
    orders per process, and other tests on this worker run demos of their own): the project it leaves
    and its output, whitespace-normalized (the checks do not depend on where lines wrap)."""
    project = tmp_path_factory.mktemp("demo-run") / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "shipyard", "demo", "--dir", str(project), "--no-keep-serving"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
        timeout=900,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    return project, " ".join(out.split())


def between(text: str, start: str, end: str) -> str:
    """The part of the demo's output from `start` up to the next `end` (a phase, or one command's output)."""
    assert start in text, start
    part = text[text.index(start) :]
    assert end in part, end
    return part[: part.index(end)]


def test_shipyard_demo_command_runs_the_packaged_project(demo_run: tuple[Path, str]) -> None:
    from typer.testing import CliRunner

    from shipyard.cli import app
    from shipyard.store import Store

    project, out = demo_run
    assert files(project) >= EXPECTED
    assert "refunded 89.00 USD for order 10002" in out  # 1.0: eligible, refunded after the check
    assert "can't refund order 10003" in out  # 1.0: final sale, refused
    # 1.1, the regression: a refund without the eligibility check, refused by the configured policy
    # before it runs (the agent explains)
    assert 'process_refund(order_id="10003"' in out and "[Guardrail] refund_policy" in out
    assert "Status: blocked" in out and "Verdict: block" in out and "can't issue that refund" in out
    # the launch checklist after the phases: the project in git, a workflow from `ci init`, the
    # rollout phase's rollback of 1.1 in the store, and what the project configures (alert and trace
    # files, the kill switch on process_refund) make every required item pass
    assert "$ shipyard ci init --github" in out and "$ shipyard checklist" in out
    assert "support: READY (exit 0)" in out
    again = CliRunner().invoke(app, ["checklist", "--format", "json", "-c", str(project / "shipyard.yaml")])
    assert again.exit_code == 0, again.output
    items = {i["key"]: i for i in json.loads(again.stdout)["items"]}
    assert all(i["result"] == "pass" for i in items.values() if i["required"]), items
    # the rollout phase rolled 1.1 back (what the checklist's item found, whichever rollback it shows last:
    # on a machine loaded enough that 1.2's canary latency held it, the server may roll 1.2 back later)
    with Store.from_config(load_config(project / "shipyard.yaml")) as store:
        rollbacks = [
            d for d in store.rollout_decisions("support", limit=None) if d.get("action") == "rollback"
        ]
    assert any(str(d.get("candidate")).startswith("support@1.1.0") for d in rollbacks), rollbacks
    if shutil.which("git"):
        assert "tracked by git" in items["prompts_versioned"]["evidence"]
    # the served phase exported its kept traces to the configured file, one OTLP/JSON object a line
    lines = (project / ".shipyard" / "traces.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["resourceSpans"] for line in lines)


# the safety phase (was tests/demo/test_demo_safety.py: `shipyard demo --only safety`, and the production
# gate on 1.0.0, which the gates phase runs) ------------------------------------------------------------


def test_the_safety_phase_runs(demo_run: tuple[Path, str]) -> None:
    project, out = demo_run
    text = between(out, "Safety: guardrails in the pipeline", "2. The production gate")
    assert "block by prompt_injection (input)" in text
    assert "redact by pii (output)" in text and "call you back on [PHONE]" in text
    assert "block by refund_policy (tool_call)" in text
    # the phase ran `shipyard redteam generate` on the copy: the frozen subset is kept as shipped
    shipped = (project_dir() / "evals/support/redteam_critical.yaml").read_text()
    assert (project / "evals/support/redteam_critical.yaml").read_text() == shipped


def test_the_production_gate_runs_the_red_team(demo_run: tuple[Path, str]) -> None:
    project, out = demo_run
    policy = load_config(project / "shipyard.yaml").gates.stage("production")
    assert {"evals/support/redteam.yaml", "evals/support/redteam_critical.yaml"} <= set(policy.suites)
    assert "support 1.0.0: PASS (exit 0)" in out
    text = between(
        out,
        "$ shipyard gate production --agent support --version 1.0.0",
        "$ shipyard gate production --agent support --version 1.1.0",
    )
    assert "pass_rate.adversarial" in text and "95% CI" in text
    assert "redteam_critical" in text or "safety cases passed every repeat" in text


# the rollout phase (was tests/rollout/test_demo_and_sync.py, `run_rollout_demo` on the demo project) -------


def test_the_demo_rolls_back_1_1_and_promotes_1_2(demo_run: tuple[Path, str]) -> None:
    from shipyard.cli._demo_rollout import OVERRIDE_1_1
    from shipyard.store import Store

    project, out = demo_run
    text = between(out, "3. Canary rollouts judged on agent outcomes", "decisions with their numbers")
    outcome = dict(re.findall(r"support (\d\.\d): (\w+)", text))  # the phase's summary lines
    assert outcome == {"1.1": "rolled_back", "1.2": "promoted"}
    assert "critical metric failed: safety_incidents" in text and "rollback at 5%" in text
    assert "promote at 50%" in text
    with Store.from_config(load_config(project / "shipyard.yaml")) as store:
        all_decisions = store.rollout_decisions("support", limit=None)
        decisions = [d["action"] for d in all_decisions]
        assert (
            decisions.count("rollback") == 1
            and decisions.count("promote") == 1
            and decisions.count("step_up") == 2
        )
        # the 1.1 canary's rollback names the refund-policy incidents it saw
        rollback = next(d for d in all_decisions if d["action"] == "rollback")
        safety = next(
            m for m in rollback["numbers"]["analysis"]["metrics"] if m["name"] == "safety_incidents"
        )
        assert safety["canary"] > 0 and safety["baseline"] == 0
        # 1.1 was canaried with the override an admin has, visibly and on the record; 1.2 passed its gate
        assert "we canary it anyway with --override-gate to show what production catches" in text
        assert (
            "$ shipyard rollout canary support 1.1 --steps 5,25,50,100" in text and "--override-gate" in text
        )
        starts = [d for d in all_decisions if d["action"] == "start"]
        by_candidate = {d["candidate"].split("@")[1][:3]: d for d in starts}
        override = by_candidate["1.1"]["numbers"]["gate"]["override"]
        assert override["by"] == "demo" and override["reason"] == OVERRIDE_1_1
        assert by_candidate["1.1"]["reasons"][0] == f"production gate overridden by demo: {OVERRIDE_1_1}"
        assert by_candidate["1.2"]["numbers"]["gate"]["override"] is None
        [gated] = by_candidate["1.2"]["numbers"]["gate"]["runs"].values()
        assert (store.get_eval_run(gated) or {})["decision"]["verdict"] == "PASS"


# the loop phase (was tests/loop/test_shadow_demo.py: `shipyard demo --only loop` in its own process): a
# complaint on 1.2 becomes an incident, a regression case with its recorded tool results, which 1.2 fails
# and 1.3 passes with the production gate; the shadow report of 1.3 against 1.2's traffic shows the fixed
# case as the one difference above the noise -------------------------------------------------------------


def test_the_loop_phase_of_the_demo(demo_run: tuple[Path, str]) -> None:
    from shipyard.loop import list_shadow_runs, shadow_comparisons
    from shipyard.store import Store

    project, out = demo_run
    for step, code in (("promote", 0), ("eval 1.2", 1), ("gate 1.3", 0), ("shadow", 0)):
        assert f"{step}: exit {code} (as expected)" in out, out
    assert "1.2: Done: I've refunded 89.00 USD for order 10002" in out

    [case] = yaml.safe_load((project / "evals/support/regression.yaml").read_text())["cases"]
    assert case["input"] == "If I send order 10002 back, will I get a refund?"
    assert [r["tool"] for r in case["tool_results"]] == [
        "lookup_order",
        "check_return_eligibility",
        "process_refund",
    ]

    with Store.from_config(load_config(project / "shipyard.yaml")) as store:
        [run] = list_shadow_runs(store, agent="support")
        rows = shadow_comparisons(store, run["id"])
        gate = store.latest_eval_run("support", run["candidate"], stage="production")
    assert run["verdict"] == "PASS" and run["candidate"].startswith("support@1.3.0")
    assert [b.split("+")[0] for b in run["baselines"]] == ["support@1.2.0"]
    assert gate is not None and gate["decision"]["verdict"] == "PASS"
    [fixed] = [r for r in rows if r["differences"]]
    assert len(rows) == 8 and set(fixed["differences"]) == {"trajectory", "output"}
    kinds = run["summary"]["kinds"]
    assert all(k["noisy"] == 0 for k in kinds.values())
    assert json.dumps(fixed["kinds"]["trajectory"]["baseline"]).count("process_refund") == 1
    assert "process_refund" not in json.dumps(fixed["kinds"]["trajectory"]["candidate"])
