"""`shipyard checklist`: the starter project fails with a one-line fix per item; the demo project sets
its alert and trace targets and a kill switch on refunds, and its phases add a rehearsed rollback and a
CI workflow (tests/demo/test_demo_project.py shows it passing after `shipyard demo`). Budgets pass when
the project sets some, and otherwise warn (never fail) with the YAML to add. Every `shipyard ...`
command line an item prints parses with the real CLI."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.demo import copy_project

runner = CliRunner()
PLACEHOLDERS = {"<candidate>": "0.2.0", "<stable>": "0.1.0"}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIPYARD_DATABASE_URL", "SHIPYARD_CONFIG", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def checklist(config: Path) -> tuple[int, dict]:
    result = runner.invoke(app, ["checklist", "--format", "json", "-c", str(config)])
    return result.exit_code, json.loads(result.stdout)


def test_the_starter_fails_with_clear_fixes(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "p")]).exit_code == 0
    code, doc = checklist(tmp_path / "p" / "shipyard.yaml")
    assert code == 1 and doc["ready"] is False
    items = {i["key"]: i for i in doc["items"]}
    assert set(items) == {
        "eval_suites", "safety_gate", "latency_cost_gates", "pipeline_stages", "budgets", "alerts", "tracing",
        "pii_redaction", "kill_switches", "rollback_rehearsed", "prompts_versioned", "ci_workflow", "guardrails",
    }  # fmt: skip
    for key in ("alerts", "tracing", "pii_redaction", "rollback_rehearsed", "ci_workflow", "guardrails"):
        assert items[key]["result"] == "fail", key
        assert items[key]["fix"] and items[key]["evidence"], key
        assert "\n" not in items[key]["fix"], key  # one line
    # its smoke suite has functional, tool_usage and safety cases, and both gates run it
    assert items["eval_suites"]["result"] == "pass", items["eval_suites"]
    assert items["ci_workflow"]["fix"] == "`shipyard ci init --github` (or `shipyard ci init --gitlab`)"
    assert items["prompts_versioned"]["result"] == "pass"
    # the starter's production gate runs its smoke suite with latency and cost thresholds...
    assert items["latency_cost_gates"]["result"] == "pass"
    assert items["latency_cost_gates"]["evidence"] == "gates.production: p95 <= 5000 ms, mean cost <= $0.01"
    # ...whose safety cases must all pass
    assert items["safety_gate"]["result"] == "pass", items["safety_gate"]
    budgets = items["budgets"]
    assert budgets["result"] == "warning" and not budgets["required"]
    assert budgets["evidence"].startswith("no budgets: what a session, user or day may spend has no cap")
    assert "`budgets: {limits: [{name: user-daily, scope: user, window: day, usd: 1.00}]}`" in budgets["fix"]
    rollback = items["rollback_rehearsed"]["fix"]  # nothing deployed yet: the stable version comes first
    assert rollback.startswith(
        "rehearse it: `shipyard gate production --agent assistant --version <stable>`, "
    )
    assert rollback.endswith(", then `shipyard rollout rollback assistant`")
    assert (
        "`shipyard rollout canary assistant <candidate>`" in rollback
        and "--version <candidate>`, `" in rollback
    )
    markdown = runner.invoke(
        app, ["checklist", "--format", "markdown", "-c", str(tmp_path / "p" / "shipyard.yaml")]
    )
    assert (
        markdown.exit_code == 1
        and "**NOT READY**" in markdown.stdout
        and "| ❌ | Tracing exporter configured |" in markdown.stdout
    )


def test_the_demo_project_sets_what_a_launch_needs_but_what_its_phases_do(tmp_path: Path) -> None:
    """Before `shipyard demo` runs its phases, the packaged project fails only the two items those
    phases provide: a rehearsed rollback (the rollout phase) and a CI workflow (`ci init`). Its alert and
    trace targets (files under .shipyard/) and the kill switch on process_refund are configuration.
    tests/demo/test_demo_project.py runs the demo and its checklist passing."""
    copy_project(tmp_path)
    cfg = tmp_path / "shipyard.yaml"
    code, doc = checklist(cfg)
    assert code == 1
    items = {i["key"]: i for i in doc["items"]}
    assert {k for k, i in items.items() if i["result"] == "fail"} == {"rollback_rehearsed", "ci_workflow"}
    assert "appended to .shipyard/alerts.jsonl" in items["alerts"]["evidence"]
    assert "OTLP JSON lines to .shipyard/traces.jsonl" in items["tracing"]["evidence"]
    kill = items["kill_switches"]["evidence"]
    assert "guarded by a kill switch: issue_store_credit, process_refund" in kill
    for key in ("rollback_rehearsed", "ci_workflow"):
        fix = items[key]["fix"]
        assert fix and "\n" not in fix, key  # one line
    # the kill switch is a real one: with its flag gone, process_refund is unguarded again
    flags = json.loads((tmp_path / "flags.json").read_text())
    del flags["flags"]["refunds"]
    (tmp_path / "flags.json").write_text(json.dumps(flags))
    _, doc = checklist(cfg)
    kill_item = next(i for i in doc["items"] if i["key"] == "kill_switches")
    assert kill_item["result"] == "fail" and "process_refund" in kill_item["fix"]


# budgets ------------------------------------------------------------------------------------------


def starter(tmp_path: Path, template: str = "default") -> Path:
    result = runner.invoke(app, ["init", str(tmp_path / template), "--template", template])
    assert result.exit_code == 0, result.output
    return tmp_path / template / "shipyard.yaml"


def budgets_item(config: Path) -> dict[str, Any]:
    _, doc = checklist(config)
    return next(i for i in doc["items"] if i["key"] == "budgets")


def test_budgets_pass_when_the_project_sets_them_and_warn_with_the_yaml_when_not(tmp_path: Path) -> None:
    import yaml

    config = starter(tmp_path)
    base = config.read_text()
    unset = budgets_item(config)
    assert unset["result"] == "warning" and not unset["required"]
    # the fix's snippet, pasted as it is, is budgets the checklist then sees
    [snippet] = re.findall(r"`(budgets: [^`]*)`", unset["fix"])
    config.write_text(base + "\n" + yaml.safe_dump(yaml.safe_load(snippet)))
    pasted = budgets_item(config)
    assert pasted["result"] == "pass", pasted
    assert (
        pasted["evidence"]
        == "1 budget(s) count assistant's calls: user-daily (user per day: $1); counters in memory"
    )

    config.write_text(
        base + "budgets:\n  limits:\n    - {name: s-cap, scope: session, window: session, tokens: 5000}\n"
        "    - {name: other-daily, scope: user, window: day, usd: 2, agent: other}\n"
    )
    mixed = budgets_item(config)  # a limit of another agent does not count this one's calls
    assert (
        mixed["result"] == "pass"
        and "1 budget(s) count assistant's calls: s-cap (session per session: 5000 tokens)"
        in mixed["evidence"]
    )

    config.write_text(
        base
        + "budgets:\n  limits:\n    - {name: other-daily, scope: user, window: day, usd: 2, agent: other}\n"
    )
    others = budgets_item(config)
    assert others["result"] == "warning"
    assert (
        others["evidence"]
        == "budgets are on but none counts assistant's calls (limits of other agents: other-daily)"
    )

    config.write_text(base + "budgets:\n  enabled: false\n  limits:\n    - {name: u, scope: user, usd: 1}\n")
    off = budgets_item(config)
    assert (
        off["result"] == "warning"
        and off["evidence"] == "budgets.enabled: false turns off 1 limit(s) in shipyard.yaml"
    )

    # on with no limits in the file: the budgets set through the admin API (kept in the store) count
    config.write_text(base + "budgets:\n  enabled: true\n")
    assert budgets_item(config)["result"] == "warning"
    from shipyard.config import load_config
    from shipyard.store import Store

    with Store.from_config(load_config(config)) as store:
        store.put_admin_budget("ops-daily", {"scope": "global", "window": "day", "usd": 50}, by="ops")
    admin = budgets_item(config)
    assert admin["result"] == "pass" and "ops-daily (set through the admin API)" in admin["evidence"]


# every command line the checklist prints ----------------------------------------------------------


def suggested_commands(text: str) -> list[list[str]]:
    """The `shipyard ...` command lines in an item's text (each in backticks), as argument lists with
    their <placeholders> filled; a `shipyard` command outside backticks is an error of the text."""
    outside = re.sub(r"`[^`]*`", "", text)
    assert not re.search(r"\bshipyard [a-z-]", outside), f"a command line not in backticks: {text!r}"
    found = []
    for line in re.findall(r"`(shipyard [^`]*)`", text):
        words = shlex.split(line)[1:]
        found.append([PLACEHOLDERS.get(w, w) for w in words])
    return found


def parse_with_the_cli(words: list[str]) -> None:
    """Parse a command line as `shipyard` would, down to its command's arguments and options (a missing
    or extra argument, or an unknown option, raises the CLI's usage error), running nothing."""
    if words[0] == "gate" and words[1] not in ("check", "approve"):
        words = ["gate", "check", *words[1:]]  # `shipyard gate STAGE` is short for `gate check STAGE`
    cmd: Any = typer.main.get_command(app)
    name, rest, parent = "shipyard", list(words), None
    while isinstance(cmd, TyperGroup):
        ctx = cmd.make_context(name, [], parent=parent, resilient_parsing=True)
        sub = cmd.get_command(ctx, rest[0])
        assert sub is not None, f"no command {rest[0]!r} under {ctx.command_path}: {words}"
        cmd, name, rest, parent = sub, rest[0], rest[1:], ctx
    cmd.make_context(name, rest, parent=parent)


def test_the_parse_catches_what_the_old_rollback_fix_got_wrong() -> None:
    parse_with_the_cli(["rollout", "canary", "support", "0.2.0"])
    for wrong in (["rollout", "canary", "support", "--version", "0.2.0"], ["rollout", "canary", "support"],
                  ["ci", "init", "--gitlab", "extra"], ["eval", "importt", "x"]):  # fmt: skip
        with pytest.raises(Exception) as err:
            parse_with_the_cli(wrong)
        assert "Traceback" not in str(err.value) and str(err.value), wrong


def test_every_command_the_checklist_prints_parses_with_the_real_cli(tmp_path: Path) -> None:
    texts: list[str] = []

    def collect(config: Path) -> dict[str, dict[str, Any]]:
        _, doc = checklist(config)
        texts.extend(t for i in doc["items"] for t in (i["evidence"], i["fix"]))
        return {i["key"]: i for i in doc["items"]}

    collect(starter(tmp_path))  # the framework templates differ only in the agent's name here
    # a category without cases: the fix names the importers
    lacking = starter(tmp_path / "lacking")
    smoke = lacking.parent / "evals" / "assistant" / "smoke.yaml"
    smoke.write_text(smoke.read_text().replace("    category: tool_usage\n", ""))
    assert collect(lacking)["eval_suites"]["result"] == "fail"
    copy_project(tmp_path / "demo")
    collect(tmp_path / "demo" / "shipyard.yaml")
    # with a stable version deployed, the rehearsal starts at the candidate's gate
    config = starter(tmp_path / "deployed")
    for args in (["gate", "production", "--agent", "assistant"], ["deploy", "assistant", "0.1.0"]):
        result = runner.invoke(app, [*args, "-c", str(config)])
        assert result.exit_code == 0, result.output
    fix = collect(config)["rollback_rehearsed"]["fix"]
    assert fix.startswith("rehearse it: `shipyard gate production --agent assistant --version <candidate>`")
    assert "deploy" not in fix

    commands = [c for t in texts for c in suggested_commands(t)]
    heads = {" ".join(c[:2]) for c in commands}
    assert {"rollout canary", "rollout rollback", "deploy assistant", "ci init", "eval import",
            "gate production", "ci run"} <= heads, heads  # fmt: skip
    for words in commands:
        parse_with_the_cli(words)
        shown = runner.invoke(app, [*words, "--help"])
        assert shown.exit_code == 0, (words, shown.output)
