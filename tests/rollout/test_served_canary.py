"""The generic server rolls 1.1's canary back on the numbers: no demo code is involved. The demo
project configures its refund policy as a `tool_policy` tool_call guardrail; `shipyard serve`'s own
pipeline refuses 1.1's unchecked refunds, each refusal is a safety incident on the canary's records,
and the controller's analysis of those records rolls the canary back."""

from __future__ import annotations

from typing import Any

import httpx
from waiting import wait_until

from shipyard.store import Store

MESSAGES = [
    "Refund order 10003 please",  # 1.1 refunds without the eligibility check: refused by the policy
    "Where is my order 10001?",
    "How long do refunds take?",
    "I want my money back for order 10004",
]


def test_the_served_pipeline_rolls_back_1_1_on_its_incidents(
    server: tuple[str, Any], store: Store, ids: dict[str, str]
) -> None:
    url, _ = server
    with httpx.Client(base_url=url, timeout=60) as c:  # no keys: an admin on loopback
        started = c.post(
            "/admin/rollouts/support/canary",
            json={
                "version": "1.1",
                "steps": [50, 100],
                "override_gate": "the test shows what production traffic catches",
            },
        )
        assert started.status_code == 200, started.text
        versions: dict[str, int] = {}
        for n in range(80):
            r = c.post(
                "/v1/agents/support/invoke",
                json={"input": MESSAGES[n % len(MESSAGES)], "session_id": f"canary-{n}"},
            )
            assert r.status_code == 200, r.text
            versions[r.json()["version"]] = versions.get(r.json()["version"], 0) + 1
        assert set(versions) == {ids["1.0"], ids["1.1"]}  # the assignment split the traffic
        wait_for_records(store, 80)
        c.post("/admin/rollouts/support/tick")  # the server's own loop may have decided already
        state = c.get("/admin/rollouts/support").json()
    assert state["deployment"]["state"] == "rolled_back", state
    decision = next(d for d in state["decisions"] if d["action"] == "rollback")

    assert decision["verdict"] == "FAIL"
    assert any("critical metric failed: safety_incidents" in r for r in decision["reasons"])
    safety = next(m for m in decision["numbers"]["analysis"]["metrics"] if m["name"] == "safety_incidents")
    assert safety["canary"] > 0 and safety["baseline"] == 0
    canary = [r for r in store.list_interactions(agent="support", limit=200) if r.version == ids["1.1"]]
    assert canary and all(r.traffic_source == "canary" for r in canary)
    refused = [r for r in canary if any(g["name"] == "refund_policy" for g in r.guardrails)]
    assert refused and all(
        t.status == "blocked" for r in refused for t in r.tool_calls if t.name == "process_refund"
    )


def wait_for_records(store: Store, n: int) -> None:
    wait_until(
        lambda: len(store.list_interactions(agent="support", limit=n)) >= n, f"{n} records in the store"
    )
