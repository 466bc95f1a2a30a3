"""The demo project's refund policy: configured in its shipyard.yaml as a `tool_policy` output
guardrail, so every runtime made from the project (server, evals, `shipyard run`, the demo) blocks a
refund made without a confirmed eligibility check; nothing is inserted by demo code."""

from __future__ import annotations

from pathlib import Path

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.guardrails import ToolPolicy
from shipyard.observe import semconv as sc
from shipyard.runtime import Runtime


async def test_refund_policy_blocks_unchecked_refunds_only(tmp_path: Path) -> None:
    rt = Runtime(load_config(copy_project(tmp_path) / "shipyard.yaml"))
    assert rt.pipeline.names == ["assign_version", "start_trace", "run_agent", "output_guardrails", "record"]
    [policy] = rt.guardrails("support").output
    assert isinstance(policy, ToolPolicy) and policy.name == "refund_policy"

    checked = await rt.invoke("support", "Please refund order 10002, it arrived broken", version="1.0.0")
    assert checked.status == "completed" and not checked.guardrails
    assert [t.name for t in checked.tool_calls][-1] == "process_refund"
    assert not any(s.name.startswith("apply_guardrail") for s in checked.spans)  # it only looked

    unchecked = await rt.invoke("support", "Refund order 10003 please", version="1.1.0")
    assert unchecked.status == "blocked"
    [verdict] = unchecked.guardrails
    assert (
        verdict["name"] == "refund_policy" and verdict["verdict"] == "block" and "10003" in verdict["reason"]
    )
    assert verdict["stage"] == "output" and verdict["kind"] == "tool_policy"
    assert "colleague" in unchecked.output
    assert [t.name for t in unchecked.tool_calls][-1] == "process_refund"  # what the agent did is kept
    [span] = [s for s in unchecked.spans if s.name == "apply_guardrail refund_policy"]
    assert (
        span.attributes[sc.GUARDRAIL_VERDICT] == "block"
        and span.attributes[sc.OPERATION] == "apply_guardrail"
    )

    refused = await rt.invoke("support", "Refund order 10003 please", version="1.0.0")
    assert refused.status == "completed" and not refused.guardrails
    await rt.aclose()
