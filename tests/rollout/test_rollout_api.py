"""The admin API on a real server on loopback: roles, refusals with the field, 409 on a lost race,
the preview header, and simulated traffic through the server reaching the canary."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from rollout_helpers import gate_run

from shipyard.cli._traffic import drive
from shipyard.server import create_key
from shipyard.store import Store


def test_rollout_api_with_roles(server: tuple[str, Any], store: Store, ids: dict[str, str]) -> None:
    url, state = server
    admin = create_key(store, "admin", "ops")["key"]
    reader = create_key(store, "read", "viewer")["key"]
    invoker = create_key(store, "invoke", "app")["key"]
    state.keys.refresh()
    a = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=60)
    r = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {reader}"}, timeout=60)
    i = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {invoker}"}, timeout=60)

    resp = r.post("/admin/rollouts/support/canary", json={"version": "1.2"})
    assert resp.status_code == 403
    resp = a.post("/admin/rollouts/nobody/canary", json={"version": "1.2"})
    assert resp.status_code == 404 and resp.json()["error"]["param"] == "agent"
    resp = a.post("/admin/rollouts/support/canary", json={"version": "1.2", "steps": [5, 101]})
    assert resp.status_code == 422 and resp.json()["error"]["param"] == "steps[1]"
    resp = a.post("/admin/rollouts/support/canary", json={"version": "7.7"})
    assert resp.status_code == 404 and "no version '7.7'" in resp.json()["error"]["message"]
    resp = a.post("/admin/rollouts/support/deploy", json={"version": "1.2"})
    assert resp.status_code == 422 and resp.json()["error"]["type"] == "gate_failed"
    assert "shipyard gate production --agent support --version 1.2.0" in resp.json()["error"]["message"]
    resp = a.post("/admin/rollouts/support/canary", json={"version": "1.2"})  # no gate run yet
    assert resp.status_code == 422 and resp.json()["error"]["type"] == "gate_failed"
    assert "so it cannot take canary traffic" in resp.json()["error"]["message"]
    assert "shipyard gate production --agent support --version 1.2.0" in resp.json()["error"]["message"]

    gate_run(store, ids["1.2"], "PASS")
    resp = a.post(
        "/admin/rollouts/support/canary", json={"version": "1.2", "steps": [50, 100], "by": "alice"}
    )
    assert resp.status_code == 200, resp.text
    dep = resp.json()["deployment"]
    assert (dep["state"], dep["weight"], dep["candidate_version"]) == ("running", 50, ids["1.2"])
    resp = a.post("/admin/rollouts/support/canary", json={"version": "1.1"})
    assert resp.status_code == 422 and "one candidate at a time" in resp.json()["error"]["message"]
    listing = r.get("/admin/rollouts").json()["deployments"]
    assert [d["agent"] for d in listing] == ["support"]
    actor = r.get("/admin/rollouts/support").json()["decisions"][0]["actor"]
    assert actor == f"alice (key {admin[:12]})"  # who the body says, and the key that said it

    # the server refreshes its assigner on a change it made: traffic reaches the candidate as canary
    seen: set[tuple[str, str]] = set()
    for n in range(40):
        out = i.post(
            "/v1/agents/support/invoke", json={"input": "Where is my order 10001?", "session_id": f"s{n}"}
        )
        assert out.status_code == 200
        seen.add((out.json()["version"], out.json()["session_id"]))
    assert {v for v, _ in seen} == {ids["1.0"], ids["1.2"]}
    # previews: only an admin may force a version with the header
    resp = i.post("/v1/agents/support/invoke", json={"input": "hi"}, headers={"X-Shipyard-Version": "1.1"})
    assert resp.status_code == 403
    resp = a.post("/v1/agents/support/invoke", json={"input": "hi"}, headers={"X-Shipyard-Version": "1.1"})
    assert resp.status_code == 200 and resp.json()["version"] == ids["1.1"]

    resp = a.post("/admin/rollouts/support/pause", json={"reason": "look"})
    assert resp.status_code == 200 and resp.json()["deployment"]["state"] == "paused"
    resp = a.post("/admin/rollouts/support/pause")
    assert (
        resp.status_code == 422 and "only a running canary can be paused" in resp.json()["error"]["message"]
    )
    resp = a.post("/admin/rollouts/support/tick")
    assert resp.status_code == 200 and resp.json()["decision"] is None
    resp = a.post("/admin/rollouts/support/abort")
    assert resp.json()["deployment"]["state"] == "aborted"
    resp = a.post("/admin/rollouts/support/deploy", json={"version": "1.2"})
    assert resp.status_code == 200 and resp.json()["deployment"]["stable_version"] == ids["1.2"]


def test_conflict_is_409(server: tuple[str, Any], store: Store, ids: dict[str, str]) -> None:
    url, _ = server
    gate_run(store, ids["1.2"], "PASS")
    c = httpx.Client(base_url=url, timeout=60)  # no keys: auth is off on loopback
    assert c.post("/admin/rollouts/support/canary", json={"version": "1.2"}).status_code == 200
    # another admin's change lands between this request's read and its write
    original = store.save_deployment

    def racing(
        agent: str, values: dict[str, Any], *, expected_revision: int | None, decision: Any = None
    ) -> Any:
        store.save_deployment = original  # type: ignore[method-assign]
        original(
            agent, {"state": "paused"}, expected_revision=expected_revision, decision={"action": "pause"}
        )
        return original(agent, values, expected_revision=expected_revision, decision=decision)

    store.save_deployment = racing  # type: ignore[method-assign]
    resp = c.post("/admin/rollouts/support/abort")
    assert resp.status_code == 409
    assert "changed since you read it: now canary paused" in resp.json()["error"]["message"]


def test_simulate_drives_the_server(server: tuple[str, Any]) -> None:
    url, _ = server
    ticks: list[str] = []
    tally = asyncio.run(
        drive(
            url,
            "support",
            rps=40,
            duration_s=1.5,
            users=20,
            feedback_rate=0.5,
            seed=1,
            on_tick=lambda t: ticks.append(t.line()),
        )
    )
    assert tally.ok >= 20 and tally.errors == 0 and tally.feedback > 0
    assert len(tally.statuses) >= 2 and ticks
    with pytest.raises(Exception, match="only sends traffic to a server on this machine"):
        asyncio.run(drive("http://example.com", "support", rps=1, duration_s=1))


def test_a_replica_without_the_deployed_version_answers_503_rather_than_an_ungated_one(
    server: tuple[str, Any], store: Store, ids: dict[str, str]
) -> None:
    from shipyard.server._rollout_api import rollouts

    url, state = server
    store.save_deployment("support", {"stable_version": "support@9.9.9+deadbee"}, expected_revision=None)
    assigner = rollouts(state).assigner
    assigner.refresh()
    c = httpx.Client(base_url=url, timeout=60)
    resp = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?"})
    assert resp.status_code == 503, resp.text
    assert "cannot run support@9.9.9+deadbee" in resp.json()["error"]["message"]
    assert "has not passed its production gate" in resp.json()["error"]["message"]
    gate_run(store, ids["1.0"], "PASS")
    assigner.refresh()
    resp = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?"})
    assert resp.status_code == 200 and resp.json()["version"] == ids["1.0"]
