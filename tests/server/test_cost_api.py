"""The cost ledger over HTTP: `/admin/cost/report` (JSON and CSV, errors naming the parameter) and
the dashboard's cost panel data, with live traffic through the gateway reaching the ledger."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta

from server_helpers import Served

from shipyard.store import InteractionRecord, LLMCallRecord, new_id


def cost_record(user: str, cost: float, *, days_ago: int = 0, features: list[str] | None = None,
                saved: float = 0.0) -> InteractionRecord:  # fmt: skip
    """An interaction of the demo's agent with one priced model call, `days_ago` UTC days back."""
    ledger: dict[str, object] = {}
    if features:
        ledger["features"] = features
    if saved:
        ledger["savings"] = {"cache": saved}
    at = time.time() - days_ago * 86400
    return InteractionRecord(
        id=new_id(), trace_id=new_id(), session_id=f"s-{user}", user_id=user, agent="support",
        version="support@1.0.0+abc", traffic_source="production", input="q", output="a",
        status="completed", latency_ms=5.0, input_tokens=1000, output_tokens=100, cached_input_tokens=200,
        cost_usd=cost, metadata={"ledger": ledger} if ledger else {}, created_at=at,
        llm_calls=[LLMCallRecord("small", "scripted", 5.0, 1000, 100, 200, cost, tier="small")],
    )  # fmt: skip


def _wait_for_ledger(served: Served, interaction_id: str) -> None:
    """Until the journal has moved the interaction into the store (an event, not a timing)."""
    deadline = time.monotonic() + 120
    while not served.state.store.ledger_entries(interaction_id):
        assert time.monotonic() < deadline, "the interaction never reached the ledger"
        time.sleep(0.05)


def test_report_json_csv_and_live_traffic(served: Served) -> None:
    served.state.store.write_interactions(
        [cost_record("alice", 0.30, features=["refunds"]), cost_record("bob", 0.05, saved=0.2)]
    )
    with served.client() as c:
        live = c.post(
            "/v1/agents/support/invoke", json={"input": "Where is my order 10001?", "user_id": "carol"}
        )
        assert live.status_code == 200, live.text
        _wait_for_ledger(served, live.json()["interaction_id"])

        r = c.get("/admin/cost/report", params={"by": "user", "since": "24h"})
        assert r.status_code == 200, r.text
        doc = r.json()
        users = {row["key"]: row for row in doc["rows"]}
        assert set(users) == {"alice", "bob", "carol"}
        assert users["alice"]["spent_usd"] == 0.30 and users["bob"]["savings"] == {"cache": 0.2}
        assert users["carol"]["spent_usd"] > 0 and users["carol"]["calls"] >= 1  # priced by the runtime
        assert doc["total"]["spent_usd"] == sum(row["spent_usd"] for row in doc["rows"])

        r = c.get("/admin/cost/report", params={"by": "feature", "format": "csv", "top": "1"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["feature"] for row in rows] == ["refunds", "total"]

        for params, param in (
            ({"by": "colour"}, "by"),
            ({"since": "last tuesday"}, "since"),
            ({"top": "0"}, "top"),
            ({"format": "xml"}, "format"),
            ({"user": "a\x00b"}, "user"),
        ):
            bad = c.get("/admin/cost/report", params=params)
            assert bad.status_code == 422, (params, bad.text)
            assert bad.json()["error"]["param"] == param


def test_dashboard_cost_panel_data_by_day(served: Served) -> None:
    served.state.store.write_interactions(
        [
            cost_record("alice", 0.30, features=["refunds"]),
            cost_record("alice", 0.10, days_ago=2),
            cost_record("bob", 0.05, saved=0.2, days_ago=1),
            cost_record("old", 5.0, days_ago=30),
        ]
    )
    with served.client() as c:
        r = c.get("/admin/api/dashboard/cost", params={"days": "7", "top": "5"})
    assert r.status_code == 200, r.text
    panel = r.json()
    today = datetime.now(UTC).date()
    assert [d["day"] for d in panel["days"]] == [
        (today - timedelta(days=6 - i)).isoformat() for i in range(7)
    ]
    spent = {d["day"]: d["spent_usd"] for d in panel["days"] if d["spent_usd"]}
    assert spent == {
        today.isoformat(): 0.30,
        (today - timedelta(days=1)).isoformat(): 0.05,
        (today - timedelta(days=2)).isoformat(): 0.10,
    }
    assert [u["key"] for u in panel["top_users"]] == ["alice", "bob"]  # "old" is outside the 7 days
    assert [f["key"] for f in panel["top_features"]] == ["refunds"]
    assert panel["total"]["saved_usd"] == 0.2


def test_cost_by_api_key_and_the_read_role(served: Served) -> None:
    from shipyard.server import create_key

    gateway = create_key(served.state.store, "invoke")
    reader = create_key(served.state.store, "read")
    served.state.keys.refresh()
    with served.client(gateway["key"]) as c:
        live = c.post(
            "/v1/agents/support/invoke", json={"input": "Where is my order 10001?", "user_id": "dana"}
        )
        assert live.status_code == 200, live.text
        assert c.get("/admin/cost/report").status_code == 403  # an invoke key cannot read the ledger
    _wait_for_ledger(served, live.json()["interaction_id"])
    with served.client() as anonymous:
        assert anonymous.get("/admin/cost/report").status_code == 401
    with served.client(reader["key"]) as c:
        rows = c.get("/admin/cost/report", params={"by": "api_key"}).json()["rows"]
    assert [(r["key"], r["interactions"]) for r in rows] == [(gateway["prefix"], 1)]
