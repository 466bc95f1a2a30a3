"""The dashboard shows rollouts: each deployment and the latest decisions with their numbers."""

from __future__ import annotations

from collections.abc import Callable

from server_helpers import Served


def test_dashboard_panels_show_the_canary_and_its_decisions(serve_project: Callable[..., Served]) -> None:
    served = serve_project()
    store = served.state.store
    version = next(v.id for v in served.state.rt.versions("support") if v.label == "1.2.0")
    run = store.create_eval_run("support", version, ["evals/support/broad.yaml"], stage="production")
    store.finish_eval_run(run, "finished", {"counts": {}}, {"verdict": "PASS", "reasons": [], "rules": 2})
    with served.client() as c:
        started = c.post("/admin/rollouts/support/canary", json={"version": "1.2.0", "steps": [10, 50, 100]})
        assert started.status_code == 200, started.text
        c.post("/admin/rollouts/support/tick")  # too little data yet: a hold, recorded with its numbers
        overview = c.get("/admin/api/dashboard/overview", params={"window": "15m"}).json()
    panels = {p["name"]: p for p in overview["panels"]}
    deployments = panels["rollouts"]
    row = dict(zip(deployments["columns"], deployments["rows"][0], strict=True))
    assert row["agent"] == "support" and row["strategy"] == "canary" and row["state"] == "running"
    assert row["candidate"].startswith("1.2.0+") and row["candidate weight"] == "10%"
    assert row["gate"] == f"passed (run {run[:8]})"  # the production gate run that let it take traffic
    decisions = panels["rollout-decisions"]
    actions = [dict(zip(decisions["columns"], r, strict=True))["action"] for r in decisions["rows"]]
    assert actions[-1] == "start" and "hold" in actions
