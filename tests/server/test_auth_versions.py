"""Choosing a version is an admin capability, whether by the body field `version` or the
`X-Shipyard-Version` header; everyone else gets what the deployment serves, and no rollout gives
non-admin traffic to a version whose production gate failed."""

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


def test_no_rollout_gives_traffic_to_a_gate_failed_version(served: Served) -> None:
    store = served.state.store
    ids = {v.label: v.id for v in served.state.rt.versions("support")}
    run = store.create_eval_run("support", ids["1.1.0"], ["evals/support/broad.yaml"], stage="production")
    store.finish_eval_run(run, "finished", {"counts": {}}, {"verdict": "FAIL", "reasons": ["safety: 0.9"]})
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
        # a version not gated yet may be canaried: its canary analysis judges it
        assert c.post("/admin/rollouts/support/canary", json={"version": "1.2"}).status_code == 200
