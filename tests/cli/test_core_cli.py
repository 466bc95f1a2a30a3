"""The core commands as a user meets them: init, run, versions, version, and clean errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app

runner = CliRunner()


@pytest.fixture
def starter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["init", "proj"])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "proj")
    return tmp_path / "proj"


def test_init_writes_a_project_that_runs_at_once(starter: Path) -> None:
    for f in (
        "shipyard.yaml",
        "agent.py",
        "prompts/assistant/system_prompt.txt",
        "prompts/assistant/version.txt",
        "rules/assistant.yaml",
        "evals/assistant/smoke.yaml",
    ):
        assert (starter / f).is_file(), f
    result = runner.invoke(app, ["run", "assistant", "What is 2 plus 3?", "--session", "s1"])
    assert result.exit_code == 0, result.output
    assert "The answer is 5.0." in result.output
    assert '[User Request] "What is 2 plus 3?"' in result.output
    assert '+-- [Tool Call] add(a="2", b="3")' in result.output and "Status: success" in result.output
    assert "Total: " in result.output and "Cost: $" in result.output
    # the interaction was recorded: the version shows as run
    versions = runner.invoke(app, ["versions"])
    assert (
        versions.exit_code == 0 and "assistant@0.1.0+" in versions.output and "never" not in versions.output
    )
    # every component the id hashes is shown: code/prompts/model/tools/config
    from shipyard.config import load_config
    from shipyard.runtime import agent_versions

    c = agent_versions(load_config(starter / "shipyard.yaml"), "assistant")[0].components
    shown = "/".join(c[k][:7] for k in ("code", "prompts", "model", "tools", "config"))
    assert shown in versions.output, versions.output


def test_starter_gate_passes(starter: Path) -> None:
    result = runner.invoke(app, ["gate", "pre-merge", "--agent", "assistant"])
    assert result.exit_code == 0, result.output
    assert "Decision: PASS" in result.output


def test_the_starter_passes_its_own_pre_merge_pipeline_safety_included(starter: Path) -> None:
    """`shipyard init` then `shipyard ci run pre-merge` passes as written: its smoke suite has safety
    cases (hard-gated at 100%), which the pipeline's config analysis requires of a gate."""
    result = runner.invoke(app, ["ci", "run", "pre-merge"])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "no gate stage runs a suite with safety cases" not in result.output
    evals = runner.invoke(
        app, ["eval", "run", "--agent", "assistant", "--suite", "evals/assistant/smoke.yaml"]
    )
    rows = {line.split("│")[1].strip(): line for line in evals.output.splitlines() if line.count("│") > 10}
    assert evals.exit_code == 0 and "safety" in rows and "100.0%" in rows["safety"], evals.output


def test_starter_production_gate_passes_and_counts_the_skipped_check_apart(starter: Path) -> None:
    """What `shipyard serve` off loopback asks for (503 until then) works on the starter as written."""
    first = runner.invoke(app, ["gate", "production", "--agent", "assistant"])
    assert first.exit_code == 0, first.output
    said = " ".join(first.output.split())
    assert "Decision: PASS • 7 checks passed, 1 skipped (regression: no baseline yet" in said, said
    deployed = runner.invoke(app, ["deploy", "assistant", "0.1.0"])  # it may now take production traffic
    assert deployed.exit_code == 0 and "stable assistant@0.1.0+" in deployed.output, deployed.output
    again = runner.invoke(
        app, ["gate", "production", "--agent", "assistant"]
    )  # the deployed run is its baseline
    assert again.exit_code == 0 and "all 8 checks passed" in again.output, again.output


def test_a_stage_without_a_policy_hints_a_snippet_that_works_as_pasted(starter: Path) -> None:
    missing = runner.invoke(app, ["gate", "post-merge", "--agent", "assistant"])
    assert missing.exit_code == 2 and "no gate policy for stage 'post-merge'" in missing.output
    hint = "hint: add `post-merge: {suites: [evals/assistant/smoke.yaml]}` under gates: in shipyard.yaml"
    assert hint in missing.output, missing.output
    config = starter / "shipyard.yaml"
    snippet = hint.split("`")[1]
    config.write_text(config.read_text().replace("\ngates:\n", f"\ngates:\n  {snippet}\n", 1))
    pasted = runner.invoke(app, ["gate", "post-merge", "--agent", "assistant"])
    assert pasted.exit_code == 0 and "Decision: PASS" in pasted.output, pasted.output


def test_every_template_has_a_production_gate_on_its_own_smoke_suite(tmp_path: Path) -> None:
    from shipyard.config import load_config
    from shipyard.evals import load_suite

    templates = runner.invoke(app, ["init", "--template", "list"]).stdout.split()
    assert {"default", "adk", "langgraph", "openai-agents"} <= set(templates)
    for template in templates:
        made = runner.invoke(app, ["init", str(tmp_path / template), "--template", template])
        assert made.exit_code == 0, made.output
        if template != "default":  # the next steps name the gate production traffic needs
            assert "shipyard gate production --agent support" in made.output, template
        cfg = load_config(tmp_path / template / "shipyard.yaml")
        [agent] = cfg.agents
        policy = cfg.gates.stage("production")
        assert policy.suites == [f"evals/{agent}/smoke.yaml"], template
        assert load_suite(cfg.resolve(policy.suites[0])).cases, template
        assert policy.min_pass_rate.get("functional") == 1.0, template
        assert (policy.max_p95_latency_ms, policy.max_mean_cost_usd) == (5000, 0.01), template
        assert policy.regression is not None and policy.regression.baseline == "production", template


def test_init_keeps_existing_files(starter: Path) -> None:
    (starter / "agent.py").write_text("# mine\n")
    result = runner.invoke(app, ["init", "."])
    assert result.exit_code == 0 and "kept" in result.output
    assert (starter / "agent.py").read_text() == "# mine\n"


def test_run_json_record(starter: Path) -> None:
    import json

    result = runner.invoke(app, ["run", "assistant", "1 + 1", "--json"])
    record = json.loads(result.output)
    assert record["status"] == "completed" and record["tool_calls"][0]["name"] == "add"
    assert {s["name"] for s in record["spans"]} >= {"invoke_agent assistant", "execute_tool add"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nobody", "hi"], "no agent named 'nobody'"),
        (["run", "assistant", "hi", "--version", "7.7.7"], "has no version '7.7.7'"),
    ],
)
def test_unknown_names_exit_2(starter: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_bad_config_names_file_field_and_line(starter: Path) -> None:
    cfg = starter / "shipyard.yaml"
    cfg.write_text(cfg.read_text().replace("    tier: small\n", "    tier: small\n    tempreture: 1\n"))
    result = runner.invoke(app, ["run", "assistant", "hi"])
    assert result.exit_code == 2
    assert "shipyard.yaml" in result.output and "models.scripted.tempreture" in result.output
    assert "line 10" in result.output and "unknown key" in result.output


def test_entry_point_that_does_not_import(starter: Path) -> None:
    (starter / "agent.py").write_text("import no_such_package_xyz\n")
    result = runner.invoke(app, ["run", "assistant", "hi"])
    assert (
        result.exit_code == 2 and "no_such_package_xyz" in result.output and "Traceback" not in result.output
    )


def test_missing_api_key_env(starter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_TEST_KEY", raising=False)
    cfg = starter / "shipyard.yaml"
    cfg.write_text(
        cfg.read_text()
        .replace(
            "agents:",
            "  remote:\n    provider: openai\n    base_url: http://127.0.0.1:9/v1\n    api_key_env: SHOP_TEST_KEY\n"
            "agents:",
        )
        .replace("model: {name: scripted}", "model: {name: remote}")
    )
    result = runner.invoke(app, ["run", "assistant", "hi"])
    assert result.exit_code == 2 and "SHOP_TEST_KEY" in result.output


def test_failed_interaction_exits_1(starter: Path) -> None:
    cfg = starter / "shipyard.yaml"
    cfg.write_text(
        cfg.read_text()
        .replace(
            "agents:",
            "  dead:\n    provider: openai\n    base_url: http://127.0.0.1:9/v1\n    max_retries: 0\nagents:",
        )
        .replace("model: {name: scripted}", "model: {name: dead}")
    )
    result = runner.invoke(app, ["run", "assistant", "1 + 2"])
    assert result.exit_code == 1 and "FAILED" in result.output and "model call failed" in result.output


def test_no_config_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    result = runner.invoke(app, ["run", "assistant", "hi"])
    assert result.exit_code == 2 and "shipyard init" in result.output


def test_version_and_help_with_examples() -> None:
    assert runner.invoke(app, ["version"]).output.startswith("shipyard ")
    for cmd in (
        ["init"],
        ["run"],
        ["versions"],
        ["demo"],
        ["mock-llm"],
        ["prompts", "lint"],
        ["prompts", "diff"],
    ):
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0 and "Example" in result.output, cmd


def test_event_lines_go_to_the_stderr_of_the_moment(
    starter: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command's event lines go to stderr (stdout is its output), and to the stderr in place when
    the line is written: one command's closed stream never breaks the next one's logging."""
    from shipyard.observe import log_event

    monkeypatch.setenv("SHIPYARD_LOG_LEVEL", "info")
    result = runner.invoke(app, ["versions"])
    assert result.exit_code == 0, result.output
    log_event("after_the_command", level="warning")  # the runner's stderr is closed by now
    captured = capsys.readouterr()
    assert '"event":"after_the_command"' in captured.err and "after_the_command" not in captured.out
