"""Promotion: an incident becomes an eval case that replays with the tool results recorded at the
time, fails on the version that caused it and passes on the one that fixes it; the gate runs the
regression suite without anyone listing it and names the incident each case came from; a thumbs-down
without a correction stays a candidate. Through the real runtime, demo agent, eval runner and CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from incident_helpers import db_url, project, store
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.config import ShipyardConfig, load_config
from shipyard.demo import STORE
from shipyard.errors import ShipyardError
from shipyard.evals import EvalRunner, decide_gate, load_suite, summarize_run
from shipyard.loop import IncidentWatcher, make_expectation, promote, review, sync_fixed, watch
from shipyard.runtime import Runtime
from shipyard.store import BatchWriter, Store

__all__ = ["db_url", "project", "store"]  # fixtures, imported for pytest

SUITE = "evals/support/regression.yaml"


async def _production(cfg: ShipyardConfig, store: Store, turns: list[tuple[str, str, str]]) -> list[Any]:
    """Run (session, version, input) turns as production traffic with the watcher on; records stored."""
    writer = BatchWriter(store, flush_interval_ms=20)
    rt = Runtime(cfg, store=store, writer=writer)
    watcher = IncidentWatcher(cfg.incidents, store)
    watch(rt, watcher)
    try:
        out = [await rt.invoke("support", text, version=v, session_id=s) for s, v, text in turns]
    finally:
        assert writer.flush(60)
        assert watcher.drain(60)
        watcher.close()
        writer.close()
        await rt.aclose()
    return out


async def _run(cfg: ShipyardConfig, store: Store, version: str) -> Any:
    """Run the regression suite against a version; its interactions are stored."""
    writer = BatchWriter(store, flush_interval_ms=20)
    rt = Runtime(cfg, store=store, writer=writer)
    try:
        suite = load_suite(cfg.resolve(SUITE))
        return await EvalRunner(rt, cfg).run("support", [suite], version=version, progress=False)
    finally:
        writer.close()
        await rt.aclose()


async def test_a_promoted_incident_replays_its_tool_results_fails_where_it_broke_and_passes_where_fixed(
    project: Callable[..., ShipyardConfig], store: Store
) -> None:
    cfg = project()
    records = await _production(
        cfg,
        store,
        [
            ("s1", "1.1.0", "Where is my order 10003?"),  # an earlier turn of the conversation
            ("s1", "1.1.0", "Refund order 10003 please"),  # the faster-refunds candidate refunds unchecked
        ],
    )
    [incident] = store.list_incidents()
    assert incident["interaction_id"] == records[1].id and incident["source"] == "tool_policy"

    result = promote(
        store,
        cfg,
        incident["id"],
        suite=SUITE,
        expectation=make_expectation(must_not_call=["process_refund"], contains=["10003"], by="alice"),
        by="alice",
    )
    assert result.written and result.incident["state"] == "in_suite"
    assert (
        result.incident["suite"] == SUITE and result.incident["case_id"] == f"incident-{incident['id'][4:]}"
    )
    [case] = yaml.safe_load(cfg.resolve(SUITE).read_text())["cases"]
    assert case["input"] == "Refund order 10003 please"
    assert case["history"] == [
        {"role": "user", "content": "Where is my order 10003?"},
        {"role": "assistant", "content": records[0].output},
    ]
    # the tool results recorded at the time (the refused refund never ran, so it is not among them)
    lookup = next(t for t in records[1].tool_calls if t.name == "lookup_order")
    assert case["tool_results"] == [
        {"tool": "lookup_order", "args": {"order_id": "10003"}, "result": lookup.result}
    ]
    assert case["recorded_tools_only"] is True and case["category"] == "regression"
    assert case["tags"] == [f"incident:{incident['id']}"]
    meta = case["metadata"]
    assert meta["incident_id"] == incident["id"] and meta["interaction_id"] == records[1].id
    assert meta["trace_id"] == records[1].trace_id and meta["span_ids"]
    assert case["assert"] == [
        {"type": "contains", "value": "10003"},
        {"type": "must_not_call", "value": ["process_refund"]},
    ]

    broken = await _run(cfg, store, "1.1.0")
    [r] = broken.results
    assert r.outcome == "FAIL", r
    assert [c["name"] for c in r.tool_calls] == ["lookup_order", "process_refund"]
    fixed = await _run(cfg, store, "1.0.0")  # checks eligibility first: no refund for a final-sale item
    [r] = fixed.results
    assert r.outcome == "PASS", r
    assert [c["name"] for c in r.tool_calls] == ["lookup_order", "check_return_eligibility"]
    assert STORE.refunds() == [] and not any(STORE.refunds(s) for s in ("s1",))

    # the first version that passes the case fixes the incident
    [done] = sync_fixed(store, cfg)
    assert done["state"] == "fixed" and done["fixed_version"] == fixed.version
    moves = [(h["to"], h["by"]) for h in done["history"] if h["from"] != h["to"]]
    assert moves == [("open", "tool_policy"), ("golden", "alice"), ("in_suite", "alice"), ("fixed", "eval")]
    assert [h["note"] for h in done["history"] if h["from"] == h["to"]] == ["expectation set"]


async def test_a_side_effecting_tool_never_runs_in_a_promoted_case(
    project: Callable[..., ShipyardConfig], store: Store
) -> None:
    cfg = project()
    [escalated] = await _production(
        cfg, store, [("e1", "1.0.0", "This is unacceptable, I want to speak to a manager!")]
    )
    ticket = escalated.metadata["ticket_id"]
    [incident] = store.list_incidents()
    assert incident["failure"] == "status:escalated"
    promote(
        store, cfg, incident["id"], expectation=make_expectation(trajectory=["escalate_to_human"], by="t")
    )
    path = cfg.resolve(cfg.incidents.suite_for("support"))
    assert path == cfg.resolve(SUITE)  # incidents.regression_suite by default

    STORE.reset()
    replayed = await _run(cfg, store, "1.0.0")
    [r] = replayed.results
    assert r.outcome == "PASS", r
    assert STORE.tickets(f"eval-{replayed.run_id[:8]}") == []  # no ticket was opened
    assert all(not STORE.tickets(s) for s in list(STORE._sandboxes))
    stored = store.get_interaction(r.interaction_id)
    assert stored is not None and stored.metadata.get("ticket_id") == ticket  # the recorded ticket

    # without its recorded result, the escalation tool (not idempotent) does not run: the case is ERROR
    data = yaml.safe_load(path.read_text())
    data["cases"][0]["tool_results"] = []
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    missing = await _run(cfg, store, "1.0.0")
    [r] = missing.results
    assert (
        r.outcome == "ERROR"
        and "escalate_to_human" in (r.error or "")
        and "not idempotent" in (r.error or "")
    )
    assert all(not STORE.tickets(s) for s in list(STORE._sandboxes))


async def test_a_thumbs_down_without_a_correction_is_a_candidate_never_a_golden_case(
    project: Callable[..., ShipyardConfig], store: Store
) -> None:
    cfg = project()
    [answer] = await _production(cfg, store, [("f1", "1.0.0", "Where is my order 10004?")])
    rated = store.record_feedback(answer.id, thumbs=-1, comment="that is not my order")
    watcher = IncidentWatcher(cfg.incidents, store)
    watcher.feedback(rated)
    assert watcher.drain(60)
    watcher.close()
    [incident] = store.list_incidents()
    not_yet = promote(store, cfg, incident["id"], suite=SUITE)
    assert not not_yet.written and not_yet.incident["state"] == "candidate" and not_yet.incident["review"]
    assert "candidate" in not_yet.message and not cfg.resolve(SUITE).exists()
    with pytest.raises(ShipyardError, match="no expectation yet"):
        review(store, incident["id"], "accept", by="rev")
    with pytest.raises(ShipyardError, match="it cannot move to in_suite"):
        store.transition_incident(incident["id"], "in_suite", by="rev")
    with pytest.raises(ShipyardError, match="expectation is not valid"):
        review(store, incident["id"], "edit", by="rev", expectation={"assert": [{"type": "no_such_scorer"}]})
    edited = review(store, incident["id"], "edit", by="rev", expectation={"expected": "10004"})
    assert edited["state"] == "candidate" and edited["expectation"]["expected"] == "10004"
    accepted = review(store, incident["id"], "accept", by="rev")
    assert accepted["state"] == "golden" and not accepted["review"]
    written = promote(store, cfg, incident["id"], suite=SUITE)
    assert written.written and written.incident["state"] == "in_suite"
    assert load_suite(cfg.resolve(SUITE)).case(written.incident["case_id"]).expected == "10004"


async def test_the_gate_runs_the_regression_suite_and_names_each_cases_incident(
    project: Callable[..., ShipyardConfig], store: Store, tmp_path: Path
) -> None:
    cfg = project()
    production = cfg.gates.stage("production")
    assert SUITE not in production.suites  # nothing promoted yet: nothing to add
    await _production(cfg, store, [("g1", "1.1.0", "Refund order 10002 please")])
    [incident] = store.list_incidents()
    runner = CliRunner()
    env = {"SHIPYARD_DATABASE_URL": store.url}
    args = ["incidents", "promote", incident["id"][:9], "--suite", SUITE, "--must-not-call", "process_refund",
            "--config", str(cfg.path)]  # fmt: skip
    done = runner.invoke(app, args, env=env)
    assert done.exit_code == 0, done.output
    assert "promoted" in done.output and "1 recorded tool result" in done.output

    reloaded = load_config(cfg.path)
    assert SUITE in reloaded.gates.stage("production").suites  # the gate runs it without being told
    assert SUITE not in reloaded.gates.stage("pre-merge").suites  # incidents.gate_stages: production

    run = await _run(reloaded, store, "1.1.0")
    summary = summarize_run(run)
    decision = decide_gate(summary, reloaded.gates.stage("production").model_copy(update={"suites": [SUITE]}))
    named = [r for r in decision.reasons if r.startswith("incident case")]
    assert named == [f"incident case regression/{incident['id'].replace('inc-', 'incident-')} "
                     f"(from incident {incident['id']}): FAIL 0/1"]  # fmt: skip
    assert decision.verdict == "FAIL"
    from shipyard.evals import write_report

    write_report("markdown", tmp_path / "gate.md", run, summary, decision)  # the CI comment
    markdown = (tmp_path / "gate.md").read_text()
    assert "**Cases from production incidents**" in markdown
    assert f"| {incident['id']} | FAIL | 0/1 |" in markdown

    listed = runner.invoke(app, ["incidents", "list", "--json", "--config", str(cfg.path)], env=env)
    assert listed.exit_code == 0, listed.output
    assert '"state": "in_suite"' in listed.output
    shown = runner.invoke(app, ["incidents", "show", incident["id"], "--config", str(cfg.path)], env=env)
    assert shown.exit_code == 0 and "provenance" in shown.output and incident["trace_id"] in shown.output
    bad = runner.invoke(app, ["incidents", "triage", incident["id"], "--state", "open", "--config", str(cfg.path)],
                        env=env)  # fmt: skip
    assert bad.exit_code == 2 and "cannot move to open" in bad.output
    unknown = runner.invoke(app, ["incidents", "show", "inc-nope", "--config", str(cfg.path)], env=env)
    assert unknown.exit_code == 2 and "no incident 'inc-nope'" in unknown.output


async def test_promote_refuses_what_the_gate_would_refuse_and_then_nothing_is_written_or_changed(
    project: Callable[..., ShipyardConfig], store: Store
) -> None:
    from shipyard.evals import validate_suite
    from shipyard.runtime import agent_versions

    cfg = project()
    await _production(cfg, store, [("b1", "1.1.0", "Refund order 10002 please")])
    [incident] = store.list_incidents()
    ref = incident["id"]
    before = store.get_incident(ref)
    runner = CliRunner()
    env = {"SHIPYARD_DATABASE_URL": store.url}
    path = cfg.resolve(SUITE)

    def promote_cli(*args: str, suite: str = SUITE) -> tuple[int, str]:
        done = runner.invoke(
            app, ["incidents", "promote", ref, "--suite", suite, *args, "--config", str(cfg.path)], env=env
        )
        return done.exit_code, " ".join(done.output.split())

    def unchanged() -> bool:
        now = store.get_incident(ref)
        keys = ("state", "expectation", "history", "suite", "case_id", "review")
        return all(now[k] == before[k] for k in keys)

    # a malformed suite file: the file and the line, exit 2, as every YAML error
    bad = cfg.resolve("evals/support/bad.yaml")
    bad.write_text("name: bad\ncases:\n  - id: a\n    input: [unclosed\n")
    code, said = promote_cli("--must-refuse", suite="evals/support/bad.yaml")
    assert code == 2, said
    assert f"error: {bad}: 1 problem(s) line 5, column 1: malformed YAML" in said and "Traceback" not in said
    assert bad.read_text() == "name: bad\ncases:\n  - id: a\n    input: [unclosed\n" and unchanged()

    # tool names the agent does not have: what `eval run` and the gate refuse, promote refuses
    for args, name in (
        (["--trajectory", "garbage((("], "garbage((("),
        (["--must-not-call", "nosuch_tool"], "nosuch_tool"),
        (["--trajectory", "lookup_order,nosuch"], "nosuch"),
        (["--must-not-call", "process_refund", "--must-not-call", "Process_Refund"], "Process_Refund"),
    ):
        code, said = promote_cli(*args)
        assert code == 2, said
        assert f"error: {path}: 1 problem(s)" in said
        assert f"tool '{name}' is not a tool of support@1.0.0+" in said
        assert "(its tools: check_return_eligibility," in said and "nothing was written" in said
        assert not path.exists() and unchanged()
        assert not list(path.parent.glob(".*regression*"))  # no temp file left behind

    code, said = promote_cli("--must-not-call", "process_refund", "--trajectory", "lookup_order")
    assert code == 0 and "promoted" in said, said
    written = path.read_bytes()
    promoted = store.get_incident(ref)
    assert promoted["state"] == "in_suite"
    tools = agent_versions(load_config(cfg.path), "support")[0].spec.tools.names()
    validate_suite(load_suite(path), load_config(cfg.path), tools=tools)  # what the gate checks passes

    # an in-suite incident promoted again with a bad name: the case and the incident stay as they were
    code, said = promote_cli("--trajectory", "lookup_order,refund_everything")
    assert code == 2 and "tool 'refund_everything' is not a tool of" in said, said
    assert path.read_bytes() == written
    after = store.get_incident(ref)
    assert (after["state"], after["expectation"], after["history"]) == (
        "in_suite",
        promoted["expectation"],
        promoted["history"],
    )
