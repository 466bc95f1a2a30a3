"""Closed sets are StrEnums: they compare with and serialize as their strings, are stored as plain
strings (SQLite and PostgreSQL), and come back from the store as the enum, so what crosses a package
boundary is typed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text
from testdb import KINDS, fresh_database

from shipyard.agents import AgentResult
from shipyard.evals import GATE_RULES, GateDecision, GateVerdict, Outcome, repeat_from_row
from shipyard.rollout import RolloutController
from shipyard.rollout._deployment import RolloutAction, RolloutState, Strategy
from shipyard.store import EvalRunStatus, Store
from shipyard.types import InteractionStatus, TrafficSource


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with fresh_database(request.param, tmp_path) as url:
        s = Store(url)
        yield s
        s.close()


def test_enum_members_are_their_strings() -> None:
    assert InteractionStatus.BLOCKED == "blocked" and f"{TrafficSource.CANARY}" == "canary"
    assert json.dumps([Outcome.PASS, GateVerdict.MARGINAL]) == '["PASS", "MARGINAL"]'
    assert orjson.loads(orjson.dumps({"s": RolloutState.ROLLED_BACK})) == {"s": "rolled_back"}
    assert GateVerdict("MARGINAL").exit_code == 3 and GateVerdict.FAIL.exit_code == 1


def test_agent_result_status_becomes_the_enum_and_a_bad_one_is_refused() -> None:
    assert AgentResult(output="x", status="escalated").status is InteractionStatus.ESCALATED
    with pytest.raises(ValueError, match="must be one of completed, escalated, failed, got 'blocked'"):
        AgentResult(output="x", status="blocked")  # type: ignore[arg-type]  # the pipeline's, not an agent's


def _gate(store: Store, version: str) -> str:
    """A PASS of `version`'s production gate, decided under the current gate rules (as
    `rollout_helpers.gate_run` stores it; an older `rules` cannot be deployed)."""
    run = store.create_eval_run("support", version, ["broad.yaml"], stage="production")
    decided = {"verdict": GateVerdict.PASS, "reasons": [], "rules": GATE_RULES}
    store.finish_eval_run(run, EvalRunStatus.FINISHED, {"counts": {}}, decided)
    return run


def test_rollout_states_actions_and_verdicts_are_stored_as_strings_and_read_back_as_enums(
    store: Store,
) -> None:
    ctl = RolloutController(store, lambda agent, ref: ref or "support@1.0")
    run = _gate(store, "support@1.0")
    _gate(store, "support@1.1")
    ctl.deploy("support", "support@1.0", actor="alice")
    ctl.start_canary("support", "support@1.1", steps="10,100", actor="alice")
    dep = ctl.abort("support", actor="alice")
    assert dep.state is RolloutState.ABORTED and dep.strategy is Strategy.CANARY
    again = ctl.get("support")
    assert again.state is RolloutState.ABORTED and again.strategy is Strategy.CANARY and not again.active

    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT strategy, state FROM deployments")).one() == ("canary", "aborted")
        actions = conn.execute(text("SELECT action FROM rollout_decisions ORDER BY id")).scalars().all()
        status = conn.execute(text("SELECT status FROM eval_runs WHERE id = :id"), {"id": run}).scalar_one()
    assert actions == ["deploy", "start", "abort"] and status == "finished"

    stored = store.get_eval_run(run)
    assert stored is not None
    decision = GateDecision.from_dict(stored["decision"])
    assert decision.verdict is GateVerdict.PASS and decision.exit_code == 0 and decision.rules == GATE_RULES
    newest = store.rollout_decisions("support")[0]  # newest first
    assert RolloutAction(newest["action"]) is RolloutAction.ABORT


def test_a_stored_eval_result_reads_back_with_its_outcome(store: Store) -> None:
    run = store.create_eval_run("support", "support@1.0", ["smoke.yaml"])
    row = {"case_id": "c1", "category": "functional", "repeat": 0, "outcome": Outcome.FAIL, "suite": "smoke"}
    store.write_eval_results(run, [row])
    [back] = store.eval_results(run)
    result = repeat_from_row(back)
    assert result.outcome is Outcome.FAIL and back["outcome"] == "FAIL"
