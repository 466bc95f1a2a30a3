"""The dashboard shows rollouts: each deployment and the latest decisions with their numbers."""

from __future__ import annotations

from collections.abc import Callable

from server_helpers import Served


def test_dashboard_panels_show_the_canary_and_its_decisions(serve_project: Callable[..., Served]) -> None:
    served = serve_project()
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
    decisions = panels["rollout-decisions"]
    actions = [dict(zip(decisions["columns"], r, strict=True))["action"] for r in decisions["rows"]]
    assert actions[-1] == "start" and "hold" in actions
