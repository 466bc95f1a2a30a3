"""The packaged demo project: it copies, validates, and its pieces fit together."""

from __future__ import annotations

import inspect
import json
import shutil
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


def test_shipyard_demo_command_runs_the_packaged_project(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shipyard.cli import app

    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "demo") >= EXPECTED
    out = " ".join(result.output.split())
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
    project = tmp_path / "demo"
    again = CliRunner().invoke(app, ["checklist", "--format", "json", "-c", str(project / "shipyard.yaml")])
    assert again.exit_code == 0, again.output
    items = {i["key"]: i for i in json.loads(again.stdout)["items"]}
    assert all(i["result"] == "pass" for i in items.values() if i["required"]), items
    # the rollout phase rolled 1.1 back (what the checklist's item found, whichever rollback it shows last:
    # on a machine loaded enough that 1.2's canary latency held it, the server may roll 1.2 back later)
    from shipyard.store import Store

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
