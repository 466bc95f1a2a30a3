"""The demo project's refund policy: configured in its shipyard.yaml as a `tool_policy` tool_call
guardrail, so every runtime made from the project (server, evals, `shipyard run`, the demo) refuses a
refund made without a confirmed eligibility check before it runs; `shipyard.demo` has no policy code."""

from __future__ import annotations

import ast
from pathlib import Path

from shipyard.config import load_config
from shipyard.demo import STORE, copy_project
from shipyard.flags import FlagAdmin
from shipyard.guardrails import ToolPolicy
from shipyard.observe import semconv as sc
from shipyard.runtime import Runtime

REFUND = "Please refund order 10002, it arrived broken"


async def test_refund_policy_refuses_unchecked_refunds_before_they_run(tmp_path: Path) -> None:
    STORE.reset()
    rt = Runtime(load_config(copy_project(tmp_path) / "shipyard.yaml"))
    assert "run_agent" in rt.pipeline.names  # tool checks run inside ctx.tools, not as a step
    policy, kill_switch = rt.guardrails("support").tool_call
    assert isinstance(policy, ToolPolicy) and policy.name == "refund_policy"
    assert isinstance(kill_switch, ToolPolicy) and kill_switch.name == "refund_kill_switch"

    checked = await rt.invoke("support", "Please refund order 10002, it arrived broken", version="1.0.0")
    assert checked.status == "completed" and not checked.guardrails
    assert [(t.name, t.status) for t in checked.tool_calls][-1] == ("process_refund", "success")
    [allowed] = [s for s in checked.spans if s.name == "apply_guardrail refund_policy"]  # only the refund
    refund_span = next(s for s in checked.spans if s.name == "execute_tool process_refund")
    assert allowed.attributes[sc.GUARDRAIL_VERDICT] == "allow" and allowed.parent_id == refund_span.span_id

    unchecked = await rt.invoke("support", "Refund order 10003 please", version="1.1.0", session_id="u")
    assert unchecked.status == "completed" and "can't issue that refund" in unchecked.output
    assert STORE.refunds("u") == []  # the refund never ran
    refused = unchecked.tool_calls[-1]
    assert refused.name == "process_refund" and refused.status == "blocked" and refused.result is None
    [verdict] = unchecked.guardrails
    assert (
        verdict["name"] == "refund_policy" and verdict["verdict"] == "block" and "10003" in verdict["reason"]
    )
    assert verdict["stage"] == "tool_call" and verdict["kind"] == "tool_policy"
    [span] = [s for s in unchecked.spans if s.name == "apply_guardrail refund_policy"]
    assert (
        span.attributes[sc.GUARDRAIL_VERDICT] == "block"
        and span.attributes[sc.SHIPYARD_OPERATION] == "apply_guardrail"
    )

    refused_by_agent = await rt.invoke("support", "Refund order 10003 please", version="1.0.0")
    assert refused_by_agent.status == "completed" and not refused_by_agent.guardrails
    await rt.aclose()


async def test_the_refunds_kill_switch_stops_card_refunds_while_its_flag_is_off(tmp_path: Path) -> None:
    """The flag `refunds` (flags.json, a killSwitch on process_refund) and the `refund_kill_switch`
    policy: off, by hand or by the kill switch, an eligible refund is refused before it runs."""
    STORE.reset()
    root = copy_project(tmp_path)
    rt = Runtime(load_config(root / "shipyard.yaml"))  # reads the project's flag file
    assert rt.flags is not None
    FlagAdmin(root / "flags.json", store=rt.flags).disable("refunds")  # `shipyard flags disable refunds`
    stopped = await rt.invoke("support", REFUND, version="1.0.0", session_id="k")
    assert STORE.refunds("k") == []  # the refund never ran
    refused = stopped.tool_calls[-1]
    assert (refused.name, refused.status) == ("process_refund", "blocked")
    [verdict] = stopped.guardrails
    assert verdict["name"] == "refund_kill_switch" and "flag 'refunds' is on" in verdict["reason"]
    await rt.aclose()
    # a runtime made afterwards (an eval run, `shipyard run`) reads the flag as the file has it now
    later = Runtime(load_config(root / "shipyard.yaml"))
    again = await later.invoke("support", REFUND, version="1.0.0", session_id="k2")
    assert again.tool_calls[-1].status == "blocked" and STORE.refunds("k2") == []
    FlagAdmin(root / "flags.json", store=later.flags).enable("refunds")
    allowed = await later.invoke("support", REFUND, version="1.0.0", session_id="k3")
    assert allowed.tool_calls[-1].status == "success" and STORE.refunds("k3")
    await later.aclose()


def test_the_demo_package_keeps_no_policy_code() -> None:
    """No guardrail kind, policy or pipeline step lives in shipyard.demo: the policy is configuration."""
    import shipyard.demo

    root = Path(shipyard.demo.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module is not None
        } | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not any(m.startswith(("shipyard.guardrails", "shipyard.runtime")) for m in imported), path
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not names & {"guardrail_kind", "extend_pipeline", "ToolPolicy"}, path
