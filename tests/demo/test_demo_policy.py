"""The demo's refund policy check: refunds without a confirmed eligibility check are blocked."""

from __future__ import annotations

from pathlib import Path

from shipyard.config import load_config
from shipyard.demo import copy_project, install_refund_policy
from shipyard.runtime import Runtime


async def test_refund_policy_blocks_unchecked_refunds_only(tmp_path: Path) -> None:
    rt = Runtime(load_config(copy_project(tmp_path) / "shipyard.yaml"))
    install_refund_policy(rt)
    install_refund_policy(rt)  # once only
    assert rt.pipeline.names.count("refund_policy") == 1
    checked = await rt.invoke("support", "Please refund order 10002, it arrived broken", version="1.0.0")
    assert checked.status == "completed" and not checked.guardrails
    assert [t.name for t in checked.tool_calls][-1] == "process_refund"

    unchecked = await rt.invoke("support", "Refund order 10003 please", version="1.1.0")
    assert unchecked.status == "blocked"
    [verdict] = unchecked.guardrails
    assert (
        verdict["name"] == "refund_policy" and verdict["verdict"] == "block" and "10003" in verdict["reason"]
    )
    assert "colleague" in unchecked.output

    refused = await rt.invoke("support", "Refund order 10003 please", version="1.0.0")
    assert refused.status == "completed" and not refused.guardrails
    await rt.aclose()
