"""Choosing a version is an admin capability, whether by the body field `version` or the
`X-Shipyard-Version` header; everyone else gets what the deployment serves, and no rollout gives
non-admin traffic to a version that has not passed its production gate, unless an admin overrides
the gate with a reason, which is recorded."""

from __future__ import annotations

from typing import Any

import pytest
from server_helpers import Served

from shipyard.server import create_key

REFUND = "Refund order 10003 please"  # final sale: 1.0 refuses it, the gate-failed 1.1 refunds it


@pytest.mark.parametrize(
    ("path", "body", "headers", "param"),
    [
        ("/v1/agents/support/invoke", {"input": REFUND, "version": "1.1.0"}, {}, "version"),
        ("/v1/agents/support/invoke", {"input": REFUND}, {"X-Shipyard-Version": "1.1"}, "X-Shipyard-Version"),
        (
            "/v1/chat/completions",
            {"model": "support", "messages": [{"role": "user", "content": REFUND}], "version": "1.1"},
            {},
            "version",
        ),
        (
            "/v1/chat/completions",
            {"model": "support", "messages": [{"role": "user", "content": REFUND}]},
            {"X-Shipyard-Version": "1.1.0"},
            "X-Shipyard-Version",
        ),
    ],
)
def test_only_an_admin_chooses_the_version(
    served: Served, path: str, body: dict[str, Any], headers: dict[str, str], param: str
) -> None:
    admin = create_key(served.state.store, "admin")["key"]
    invoker = create_key(served.state.store, "invoke")["key"]
    served.state.keys.refresh()
    with served.client(invoker) as c:
        refused = c.post(path, json=body, headers=headers)
        assert refused.status_code == 403, refused.text
        err = refused.json()["error"]
        assert err["param"] == param and err["type"] == "permission_error" and "admin" in err["message"]
        plain = c.post(path, json={k: v for k, v in body.items() if k != "version"})
        assert plain.status_code == 200  # without the choice: the version the deployment serves
        assert "1.0.0" in plain.text and "1.1.0" not in plain.text
    with served.client(admin) as c:
        chosen = c.post(path, json=body, headers=headers)
        assert chosen.status_code == 200, chosen.text
        assert "support@1.1.0+" in chosen.text  # an admin may preview any version
    assert served.state.kpis(3600).interactions == 2  # the refused request ran nothing


def test_open_mode_caller_is_an_admin_and_a_mismatch_is_named(served: Served) -> None:
    with served.client() as c:  # loopback, no key ever made: the caller counts as an admin
        r = c.post("/v1/agents/support/invoke", json={"input": "hi", "version": "1.1"})
        assert r.status_code == 200 and r.json()["version"].startswith("support@1.1.0+")
        r = c.post(
            "/v1/agents/support/invoke",
            json={"input": "hi", "version": "1.1"},
            headers={"X-Shipyard-Version": "1.2"},
        )
        assert r.status_code == 422 and r.json()["error"]["param"] == "version"


def _gate_run(served: Served, label: str, verdict: str) -> str:
    """Store a finished production gate run of the version labelled `label`."""
    store = served.state.store
    version = next(v.id for v in served.state.rt.versions("support") if v.label == label)
    run = store.create_eval_run("support", version, ["evals/support/broad.yaml"], stage="production")
    store.finish_eval_run(
        run, "finished", {"counts": {}}, {"verdict": verdict, "reasons": ["safety: 0.9"], "rules": 2}
    )
    return run


def test_no_rollout_gives_traffic_to_a_gate_failed_version(served: Served) -> None:
    run = _gate_run(served, "1.1.0", "FAIL")
    _gate_run(served, "1.0.0", "PASS")
    with served.client() as c:
        for path, body in (
            ("/admin/rollouts/support/canary", {"version": "1.1"}),
            ("/admin/experiments/support", {"a": "1.0", "b": "1.1"}),
            ("/admin/experiments/support", {"a": "1.1", "b": "1.2"}),
            ("/admin/rollouts/support/deploy", {"version": "1.1"}),
        ):
            r = c.post(path, json=body)
            assert r.status_code == 422 and r.json()["error"]["type"] == "gate_failed", (path, r.text)
            assert run in r.json()["error"]["message"]
        assert c.get("/admin/rollouts/support").json()["deployment"]["candidate_version"] is None
        # nor to a version not gated yet: the refusal names the command that gates it
        for path, body in (
            ("/admin/rollouts/support/canary", {"version": "1.2"}),
            ("/admin/rollouts/support/blue-green", {"version": "1.2"}),
            ("/admin/experiments/support", {"a": "1.0", "b": "1.2"}),  # 1.0 passed, 1.2 not yet
        ):
            r = c.post(path, json=body)
            assert r.status_code == 422 and r.json()["error"]["type"] == "gate_failed", (path, r.text)
            assert "shipyard gate production --agent support --version 1.2.0" in r.json()["error"]["message"]
        _gate_run(served, "1.2.0", "PASS")
        assert c.post("/admin/rollouts/support/canary", json={"version": "1.2"}).status_code == 200


def test_an_admin_overrides_the_gate_with_a_reason_and_it_is_recorded(served: Served) -> None:
    run = _gate_run(served, "1.1.0", "FAIL")
    admin = create_key(served.state.store, "admin")["key"]
    served.state.keys.refresh()
    with served.client(admin) as c:
        for reason in ("", "   ", 7):  # an override says why
            r = c.post("/admin/rollouts/support/canary", json={"version": "1.1", "override_gate": reason})
            assert r.status_code == 422 and r.json()["error"]["param"] == "override_gate", r.text
        r = c.post(
            "/admin/rollouts/support/canary",
            json={"version": "1.1", "override_gate": "reproduce incident 42 on 5% of traffic", "by": "alice"},
        )
        assert r.status_code == 200, r.text
        dep = r.json()["deployment"]
        assert dep["state"] == "running" and dep["candidate_version"].startswith("support@1.1.0+")
        override = dep["config"]["gate"]["override"]
        assert override["by"] == f"alice (key {admin[:12]})"
        assert override["reason"] == "reproduce incident 42 on 5% of traffic"
        [said] = override["refused"].values()
        assert run in said and "FAIL" in said
        assert r.json()["gate_override"] == override  # the API says it beside the deployment
        start = r.json()["decisions"][0]
        assert start["action"] == "start" and start["actor"] == f"alice (key {admin[:12]})"
        assert start["reasons"][0] == (
            f"production gate overridden by alice (key {admin[:12]}): reproduce incident 42 on 5% of traffic"
        )
        assert start["numbers"]["gate"]["override"]["reason"] == "reproduce incident 42 on 5% of traffic"
        # the dashboard's rollout panel shows it beside the deployment
        panels = {p["name"]: p for p in c.get("/admin/api/dashboard/overview").json()["panels"]}
        row = dict(zip(panels["rollouts"]["columns"], panels["rollouts"]["rows"][0], strict=True))
        assert (
            row["gate"] == f"OVERRIDDEN by alice (key {admin[:12]}): reproduce incident 42 on 5% of traffic"
        )
        # an override never makes it stable: promotion needs the gate, as deploy does
        r = c.post("/admin/rollouts/support/promote", json={"reason": "looks fine"})
        assert r.status_code == 422 and r.json()["error"]["type"] == "gate_failed"
        assert run in r.json()["error"]["message"]
