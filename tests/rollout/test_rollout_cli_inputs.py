"""`shipyard rollout ...` and `shipyard experiment ...` with what a new user types: every recorded
decision prints (any verdict, reasons and names with brackets), an agent the project does not have is
refused by every command that takes one, and `override-gate` says what the override changes now."""

from __future__ import annotations

import pytest
from rollout_helpers import Sy, gate_run
from typer.testing import CliRunner

from shipyard.rollout import A_BETTER, B_BETTER, NO_DIFFERENCE, RolloutAction
from shipyard.store import Store

runner = CliRunner()


def test_status_after_a_gate_override_prints_the_decision(sy: Sy, ids: dict[str, str]) -> None:
    code, out = sy("rollout", "override-gate", "support", "1.1.0", "--reason", "hotfix [/] for [bold]#42")
    assert code == 0, out
    assert "production gate overridden by" in out and "hotfix [/] for [bold]#42" in out
    for _ in range(2):  # it stays readable: the decision stays in the log
        code, out = sy("rollout", "status", "support")
        assert code == 0, out
        assert "gate_override OVERRIDE" in out and "hotfix [/] for [bold]#42" in out
        assert f"{ids['1.1']} may take production traffic without a deployment" in out


def test_status_after_an_experiment_stopped_prints_its_verdict(
    sy: Sy, store: Store, ids: dict[str, str]
) -> None:
    gate_run(store, ids["1.0"], "PASS")
    gate_run(store, ids["1.2"], "PASS")
    code, out = sy("experiment", "start", "support", "--a", "1.0", "--b", "1.2", "--by", "[red]eve")
    assert code == 0, out
    code, out = sy("experiment", "stop", "support", "--by", "[red]eve")
    assert code == 0 and "stopped; verdict: not enough data" in out
    code, out = sy("rollout", "status", "support")
    assert code == 0, out
    assert "abort not enough data by [red]eve" in out and "start by [red]eve" in out


VERDICTS = [
    None,
    "PASS",
    "FAIL",
    "MARGINAL",
    "SRM",
    "GATE",
    "INSUFFICIENT_DATA",
    "OVERRIDE",
    A_BETTER,
    B_BETTER,
    NO_DIFFERENCE,
    "not enough data",
    "[/]",
    "[bold]odd",
]


@pytest.mark.parametrize("action", list(RolloutAction))
def test_every_decision_kind_prints(sy: Sy, store: Store, ids: dict[str, str], action: RolloutAction) -> None:
    for verdict in VERDICTS:
        store.add_rollout_decision(
            "support",
            {
                "action": str(action),
                "verdict": verdict,
                "candidate": ids["1.2"],
                "reasons": [f"because [{verdict}] said so [/]"],
                "actor": "[dim]bob[/]",
                "numbers": {"analysis": {"score": 12.0, "metrics": [
                    {"name": "[x]", "classification": str(verdict), "baseline": 0.5, "canary": 0.4,
                     "effect": -0.1, "ci": [-0.2, 0.0], "p_value": 0.04},
                ]}},
            },
        )  # fmt: skip
    code, out = sy("rollout", "status", "support", "--last", str(len(VERDICTS)))
    assert code == 0, out
    for verdict in VERDICTS:
        shown = f"{action} {verdict} score 12" if verdict else f"{action} score 12"
        assert shown in out
        assert f"because [{verdict}] said so [/]" in out
    assert out.count("by [dim]bob[/]") == len(VERDICTS)
    assert "[x]" in out and "[-0.2, 0]" in out  # the newest decision's analysis table


UNKNOWN_AGENT_COMMANDS = [
    ("deploy", "nosuch", "1.0"),
    ("rollout", "override-gate", "nosuch", "--reason", "x"),
    ("rollout", "canary", "nosuch", "1.0"),
    ("rollout", "blue-green", "nosuch", "1.0"),
    ("rollout", "switch", "nosuch"),
    ("rollout", "status", "nosuch"),
    ("rollout", "status", "nosuch", "--json"),
    ("rollout", "promote", "nosuch"),
    ("rollout", "pause", "nosuch"),
    ("rollout", "resume", "nosuch"),
    ("rollout", "abort", "nosuch"),
    ("rollout", "rollback", "nosuch"),
    ("rollout", "tick", "nosuch"),
    ("experiment", "start", "nosuch", "--a", "1.0", "--b", "1.2"),
    ("experiment", "status", "nosuch"),
    ("experiment", "report", "nosuch"),
    ("experiment", "stop", "nosuch"),
]


@pytest.mark.parametrize("args", UNKNOWN_AGENT_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_an_unknown_agent_is_refused(sy: Sy, store: Store, args: tuple[str, ...]) -> None:
    code, out = sy(*args)
    assert code == 2, out
    assert "no agent named 'nosuch'" in out and "(agents: support)" in out and "check the spelling" in out
    assert "has no rollout" not in out and "start one" not in out
    assert store.get_deployment("nosuch") is None and store.rollout_decisions("nosuch") == []


def test_an_agent_gone_from_the_config_keeps_its_history_readable(sy: Sy, store: Store) -> None:
    store.add_rollout_decision("retired", {"action": "deploy", "verdict": "PASS", "reasons": ["old"]})
    code, out = sy("rollout", "status", "retired")
    assert code == 0 and "retired: stable" in out and "deploy PASS" in out
    code, out = sy("rollout", "pause", "retired")  # acting on it is refused
    assert code == 2 and "no agent named 'retired'" in out


def test_override_gate_says_what_it_changes(sy: Sy, store: Store, ids: dict[str, str]) -> None:
    # no deployment, the current configured version: it serves now
    code, out = sy("rollout", "override-gate", "support", "--reason", "x")
    assert code == 0 and f"{ids['1.0']} may now take production traffic" in out
    # no deployment, another version: only once it is the current one
    code, out = sy("rollout", "override-gate", "support", "1.1.0", "--reason", "x")
    assert code == 0 and f"once it is 'support''s current configured version (now {ids['1.0']})" in out
    # a deployment chooses the versions: the override does not put it in front of users
    gate_run(store, ids["1.2"], "PASS")
    code, out = sy("deploy", "support", "1.2")
    assert code == 0, out
    code, out = sy("rollout", "override-gate", "support", "1.1.0", "--reason", "y")
    assert code == 0, out
    assert f"{ids['1.1']} takes no production traffic while the deployment of 'support'" in out
    assert f"chooses the versions served ({ids['1.2']})" in out
    assert "may take production traffic without a deployment" not in out
    # the deployed version itself, once a newer gate run refused it
    gate_run(store, ids["1.2"], "FAIL")
    code, out = sy("rollout", "override-gate", "support", "1.2", "--reason", "z")
    assert code == 0, out
    assert f"{ids['1.2']} takes production traffic as the deployment of 'support' chooses" in out
    # a passing gate needs no override (unchanged)
    gate_run(store, ids["1.0"], "PASS")
    code, out = sy("rollout", "override-gate", "support", "1.0", "--reason", "x")
    assert code == 2 and "there is nothing to override" in out
