"""The dashboard's JSON and pages on the real app (uvicorn on loopback), over records in a real SQLite
store: history written to the store before the server's KPI window began, and one fresh interaction
that is both in the window and in the store (it must be counted once)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server_helpers import Served

from shipyard.observe import semconv as sc
from shipyard.server._dashboard import PANELS as DASHBOARD_PANELS
from shipyard.server._dashboard import DashboardPanel, change, default_bucket, register_panel, waterfall
from shipyard.store import InteractionRecord, LLMCallRecord, SpanRecord, ToolCallRecord, new_id

V1 = "support@1.0.0+aaaaaaa"
V2 = "support@1.1.0+bbbbbbb"
MIN = 60.0
API = "/admin/api/dashboard"


def rec(
    at: float,
    version: str,
    session: str,
    status: str = "completed",
    latency_s: float = 1.0,
    cost: float = 0.01,
    source: str = "production",
    **extra: Any,
) -> InteractionRecord:
    return InteractionRecord(
        id=new_id(),
        trace_id=new_id(),
        session_id=session,
        user_id=None,
        agent="support",
        version=version,
        traffic_source=source,
        input=f"question from {session}",
        output="answer",
        status=status,
        latency_ms=latency_s * 1000,
        cost_usd=cost,
        created_at=at,
        **extra,
    )


def traced(at: float) -> InteractionRecord:
    """An interaction with a real span tree: agent → LLM call → tool call, 900 ms in all."""
    r = rec(at, V1, "s-traced", latency_s=0.9, input_tokens=800, output_tokens=120)
    r.tool_calls = [ToolCallRecord("lookup_order", {"order_id": "12345"}, "success", 340.0)]
    r.llm_calls = [LLMCallRecord("scripted-small", "scripted", 150.0, 800, 120, 0, 0.003)]
    t0 = int(at * 1e9)
    ms = 1_000_000
    root, chat, tool = new_id()[:16], new_id()[:16], new_id()[:16]
    r.spans = [
        SpanRecord(
            r.trace_id,
            tool,
            root,
            "execute_tool lookup_order",
            "internal",
            t0 + 200 * ms,
            t0 + 540 * ms,
            attributes={
                sc.OPERATION: sc.OP_TOOL,
                sc.TOOL_NAME: "lookup_order",
                sc.TOOL_STATUS: "success",
                sc.TOOL_ARGUMENTS: '{"order_id": "12345"}',
            },
        ),
        SpanRecord(
            r.trace_id,
            root,
            None,
            "invoke_agent support",
            "internal",
            t0,
            t0 + 900 * ms,
            attributes={sc.OPERATION: sc.OP_AGENT, sc.AGENT_NAME: "support"},
        ),
        SpanRecord(
            r.trace_id,
            chat,
            root,
            "chat scripted-small",
            "client",
            t0 + 10 * ms,
            t0 + 160 * ms,
            attributes={
                sc.OPERATION: sc.OP_CHAT,
                sc.REQUEST_MODEL: "scripted-small",
                sc.INPUT_TOKENS: 800,
                sc.OUTPUT_TOKENS: 120,
                sc.COST_USD: 0.003,
            },
        ),
    ]
    return r


class Seeded:
    def __init__(self, served: Served) -> None:
        self.served = served
        now = time.time()
        self.now = now
        history = [
            # the current 15 minutes (before the server started, so read from the store)
            rec(now - 2 * MIN, V1, "s1", latency_s=1.0),
            rec(now - 4 * MIN, V1, "s1", latency_s=2.0),
            rec(now - 6 * MIN, V1, "s2", "escalated", latency_s=3.0),
            rec(now - 8 * MIN, V1, "s3", latency_s=4.0),
            rec(now - 3 * MIN, V2, "s4", latency_s=0.5, cost=0.02),
            rec(now - 5 * MIN, V2, "s5", "failed", latency_s=6.0, cost=0.0, error="model timed out"),
            rec(now - 7 * MIN, V2, "s7", "blocked", latency_s=0.2, cost=0.0),
            rec(now - 9 * MIN, V2, "s-eval", "failed", latency_s=9.0, source="eval"),  # never a KPI
            # the previous 15 minutes
            rec(now - 20 * MIN, V1, "p1", latency_s=1.0),
            rec(now - 25 * MIN, V1, "p2", latency_s=1.0),
            # the last 24 hours, and the 24 hours before
            rec(now - 20 * 3600, V1, "old1", "failed", error="tool crashed"),
            rec(now - 30 * 3600, V1, "old2", "blocked"),
        ]
        for r in history:
            r.created_at = min(r.created_at, served.state.started_at - 1)
        self.traced = traced(now - 40 * MIN)  # outside both 15-minute windows
        store = served.state.store
        store.write_interactions([*history, self.traced])
        store.write_spans(self.traced.spans)
        # a fresh interaction: in the KPI window (memory) and in the store, like the journal does it
        self.fresh = rec(time.time(), V1, "s6", latency_s=1.0)
        served.state.window.add(self.fresh)
        store.write_interactions([self.fresh])
        self.history = history

    def get(self, path: str, **params: Any) -> Any:
        with self.served.client() as c:
            r = c.get(API + path, params=params)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def seeded(served: Served) -> Seeded:
    return Seeded(served)


def by_key(overview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["key"]: c for c in overview["cards"]}


def test_overview_kpis_and_changes_against_the_previous_window(seeded: Seeded) -> None:
    o = seeded.get("/overview", window="15m")
    cur = o["current"]
    # 7 production interactions from the store + 1 from memory; the eval one is left out
    assert cur["interactions"] == 8 and cur["sessions"] == 7
    assert cur["completion_rate"] == pytest.approx(5 / 8)
    assert cur["escalation_rate"] == pytest.approx(1 / 8)
    assert cur["avg_latency_s"] == pytest.approx(17.7 / 8)
    assert cur["p95_latency_s"] == pytest.approx(6.0)
    assert cur["cost_per_session"] == pytest.approx(0.07 / 7)
    assert o["previous"]["interactions"] == 2 and o["previous"]["completion_rate"] == 1.0

    cards = by_key(o)
    assert [c["key"] for c in o["cards"]] == [
        "sessions",
        "completion_rate",
        "avg_latency_s",
        "p95_latency_s",
        "cost_per_session",
        "escalation_rate",
        "safety_incidents",
        "errors",
    ]
    assert cards["sessions"]["value"] == 7 and cards["sessions"]["previous"] == 2
    # more sessions is neither good nor bad
    assert cards["sessions"]["direction"] == "up" and cards["sessions"]["good"] is None
    assert cards["completion_rate"]["delta"] == pytest.approx(-0.375)
    assert cards["completion_rate"]["direction"] == "down" and cards["completion_rate"]["good"] is False
    assert cards["p95_latency_s"]["delta"] == pytest.approx(5.0) and cards["p95_latency_s"]["good"] is False
    assert cards["p95_latency_s"]["ratio"] == pytest.approx(5.0)
    assert cards["escalation_rate"]["direction"] == "up" and cards["escalation_rate"]["good"] is False
    assert cards["cost_per_session"]["direction"] == "flat" and cards["cost_per_session"]["good"] is None
    # the last 24 hours against the 24 before
    assert cards["safety_incidents"]["value"] == 1 and cards["safety_incidents"]["previous"] == 1
    assert cards["safety_incidents"]["direction"] == "flat"
    assert cards["errors"]["value"] == 2 and cards["errors"]["previous"] == 0
    assert cards["errors"]["good"] is False
    assert o["last_24h"] == {"safety_incidents": 1, "errors": 2, "interactions": 12}
    assert o["source"] == "store+memory"


def test_status_banner_follows_the_alert_states(seeded: Seeded) -> None:
    state = seeded.served.state
    state.alerts.evaluate()
    o = seeded.get("/overview")
    assert o["status"] == "HEALTHY"
    assert {a["name"] for a in o["alerts"]} >= {"task_completion", "safety_incidents"}

    def blocked(n: int) -> dict[str, Any]:
        """`n` more blocked interactions in the window, then the overview after an evaluation."""
        for _ in range(n):
            state.window.add(rec(time.time(), V2, "s8", "blocked"))
        state.alerts.evaluate()
        return seeded.get("/overview")

    def safety(o: dict[str, Any]) -> tuple[str, float]:
        [rule] = [a for a in o["alerts"] if a["name"] == "safety_incidents"]
        return rule["state"], rule["value"]

    # one blocked interaction is counted by the safety rule but is no reason to wake anyone
    o = blocked(1)
    assert o["status"] == "HEALTHY" and safety(o) == ("ok", 1)
    # a burst is: more than 3 in 15 minutes warns, more than 10 alerts
    o = blocked(3)
    assert o["status"] == "DEGRADED" and safety(o) == ("warn", 4)
    o = blocked(7)
    assert o["status"] == "DOWN" and safety(o) == ("alert", 11)


def test_improvements_are_good_changes() -> None:
    assert change(0.95, 0.9, "higher")["good"] is True
    assert change(1.2, 2.4, "lower") == {
        "value": 1.2,
        "previous": 2.4,
        "delta": pytest.approx(-1.2),
        "ratio": pytest.approx(-0.5),
        "direction": "down",
        "good": True,
    }
    assert change(3.0, None, "lower")["direction"] == "none"
    assert change(0.0, 0.0, "lower")["ratio"] is None


def test_per_version_rows(seeded: Seeded) -> None:
    rows = {r["version"]: r for r in seeded.get("/versions", window="15m")["versions"]}
    assert set(rows) == {V1, V2}
    v1, v2 = rows[V1], rows[V2]
    assert v1["current"]["interactions"] == 5 and v1["previous"]["interactions"] == 2
    assert v1["current"]["completion_rate"] == pytest.approx(4 / 5)
    assert v1["changes"]["completion_rate"]["good"] is False
    assert v1["changes"]["interactions"]["direction"] == "up"
    assert v2["current"]["interactions"] == 3 and v2["current"]["safety_incidents"] == 1
    assert v2["current"]["errors"] == 1
    assert v2["previous"]["interactions"] == 0 and v2["changes"]["completion_rate"]["direction"] == "none"
    # over 24 hours the old failure counts for version 1
    day = {r["version"]: r for r in seeded.get("/versions", window="24h")["versions"]}
    assert day[V1]["current"]["errors"] == 1 and day[V1]["current"]["interactions"] == 9


def test_timeseries_buckets(seeded: Seeded) -> None:
    ts = seeded.get("/timeseries", window="15m", bucket="1m")
    assert ts["bucket_s"] == 60
    points = ts["points"]
    assert 15 <= len(points) <= 17
    assert all(b["t"] % 60 == 0 and b["end"] - b["t"] == 60 for b in points)
    assert sum(p["interactions"] for p in points) == 8
    assert points[-1]["partial"] and not points[0]["partial"]
    failed = [p for p in points if p["errors"]]
    assert len(failed) == 1 and failed[0]["p95_latency_s"] == pytest.approx(6.0)
    assert sum(p["cost_usd"] for p in points) == pytest.approx(0.07)
    default = seeded.get("/timeseries", window="1h")
    assert default["bucket_s"] == 60 and default_bucket(86400) == 1800


def test_traces_list_and_filters(seeded: Seeded) -> None:
    every = seeded.get("/traces", limit=100)["traces"]
    assert len(every) == len(seeded.history) + 2
    assert [t["created_at"] for t in every] == sorted((t["created_at"] for t in every), reverse=True)
    assert every[0]["interaction_id"] == seeded.fresh.id
    failed = seeded.get("/traces", status="failed")["traces"]
    assert sorted(t["session_id"] for t in failed) == ["old1", "s-eval", "s5"]
    assert [t["session_id"] for t in seeded.get("/traces", traffic_source="eval")["traces"]] == ["s-eval"]
    assert len(seeded.get("/traces", session_id="s1")["traces"]) == 2
    assert {t["status"] for t in seeded.get("/traces", version=V2)["traces"]} == {
        "completed",
        "failed",
        "blocked",
    }
    assert seeded.get("/traces", agent="billing")["traces"] == []
    assert len(seeded.get("/traces", window="1h")["traces"]) == 12  # not the two old ones
    two = seeded.get("/traces", limit=2)["traces"]
    older = seeded.get("/traces", limit=2, before=two[-1]["created_at"])["traces"]
    assert len(two) == 2 and older[0]["created_at"] < two[-1]["created_at"]
    row = next(t for t in every if t["trace_id"] == seeded.traced.trace_id)
    assert row["tool_calls"] == 1 and row["llm_calls"] == 1 and row["input"] == "question from s-traced"


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/traces", {"status": "done"}, "status"),
        ("/traces", {"traffic_source": "web"}, "traffic_source"),
        ("/traces", {"limit": "0"}, "limit"),
        ("/traces", {"before": "yesterday"}, "before"),
        ("/overview", {"window": "soon"}, "window"),
        ("/overview", {"window": "2d"}, "window"),
        ("/timeseries", {"window": "24h", "bucket": "1s"}, "bucket"),
    ],
)
def test_bad_query_parameters_are_named(
    served: Served, path: str, params: dict[str, str], param: str
) -> None:
    with served.client() as c:
        r = c.get(API + path, params=params)
    assert r.status_code == 422
    assert r.json()["error"]["param"] == param and param in r.json()["error"]["message"]


def test_trace_detail_waterfall(seeded: Seeded) -> None:
    d = seeded.get(f"/traces/{seeded.traced.trace_id}")
    assert d["trace"]["interaction_id"] == seeded.traced.id and d["duration_ms"] == pytest.approx(900)
    names = [(s["depth"], s["name"]) for s in d["spans"]]
    assert names == [
        (0, "invoke_agent support"),
        (1, "chat scripted-small"),
        (1, "execute_tool lookup_order"),
    ]
    agent, chat, tool = d["spans"]
    assert agent["offset_ms"] == 0 and agent["duration_ms"] == pytest.approx(900)
    assert chat["offset_ms"] == pytest.approx(10) and chat["duration_ms"] == pytest.approx(150)
    assert chat["model"] == "scripted-small" and chat["input_tokens"] == 800 and chat["output_tokens"] == 120
    assert chat["cost_usd"] == pytest.approx(0.003)
    assert tool["tool"] == "lookup_order" and tool["tool_status"] == "success"
    assert tool["offset_ms"] == pytest.approx(200)
    assert d["trace"]["input"] == "question from s-traced" and d["output"] == "answer"
    assert d["tool_calls"][0]["arguments"] == {"order_id": "12345"}
    assert d["tree"][1].startswith("+-- [LLM Call 1]")
    # the interaction id works too
    assert seeded.get(f"/traces/{seeded.traced.id}")["trace"]["trace_id"] == seeded.traced.trace_id


def test_trace_feedback_and_a_trace_without_spans(seeded: Seeded) -> None:
    store = seeded.served.state.store
    store.record_feedback(seeded.traced.id, thumbs=-1, comment="wrong order")
    d = seeded.get(f"/traces/{seeded.traced.trace_id}")
    assert d["feedback"]["thumbs"] == -1 and d["feedback"]["comment"] == "wrong order"
    assert seeded.get("/traces", session_id="s-traced")["traces"][0]["thumbs"] == -1
    plain = seeded.get(f"/traces/{seeded.history[0].trace_id}")
    assert plain["spans"] == [] and plain["duration_ms"] == pytest.approx(1000)


def test_unknown_trace_is_404(served: Served) -> None:
    with served.client() as c:
        r = c.get(f"{API}/traces/0123456789abcdef")
    assert r.status_code == 404
    assert r.json()["error"]["param"] == "trace_id" and "0123456789abcdef" in r.json()["error"]["message"]


def test_orphan_spans_become_roots() -> None:
    t = traced(time.time())
    t.spans = [s for s in t.spans if s.parent_id is not None]  # the agent span was lost
    rows, total = waterfall(t.spans)
    assert [r["depth"] for r in rows] == [0, 0] and rows[0]["offset_ms"] == 0 and total == pytest.approx(530)


def test_the_pages_are_self_contained(served: Served) -> None:
    with served.client() as c:
        page = c.get("/dashboard")
        trace = c.get("/dashboard/traces/abc<script>")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'<script nonce="{nonce.group(1)}">' in page.text
    assert "connect-src 'self'" in csp and "default-src 'none'" in csp
    # nothing is loaded from elsewhere: no src/href to another host
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
    assert '"page": "overview"' in page.text
    # the trace id is data, never markup
    assert trace.status_code == 200 and "abc<script>" not in trace.text and "abc\\u003cscript>" in trace.text


@pytest.fixture
def panels() -> Iterator[list[DashboardPanel]]:
    saved = list(DASHBOARD_PANELS)
    yield DASHBOARD_PANELS
    DASHBOARD_PANELS[:] = saved


async def _rollout_rows(state: Any) -> dict[str, Any]:
    return {"columns": ["agent", "stable", "candidate"], "rows": [["support", V1, V2]], "note": "canary 10%"}


def _broken(state: Any) -> dict[str, Any]:
    raise RuntimeError("no rollout store")


def test_extra_panels_are_served_with_the_overview(served: Served, panels: list[DashboardPanel]) -> None:
    built_in = [p.name for p in panels]  # the server registers its own (the rollout panels)
    register_panel(DashboardPanel("extra", "Extra", _rollout_rows))
    register_panel(DashboardPanel("broken", "Broken", _broken))
    register_panel(DashboardPanel("extra", "Extra", _rollout_rows))  # same name: replaced where it stands
    with served.client() as c:
        got = c.get(f"{API}/overview").json()["panels"]
    assert [p["name"] for p in got] == [*built_in, "extra", "broken"]
    extra, broken = got[-2], got[-1]
    assert extra["rows"] == [["support", V1, V2]] and extra["note"] == "canary 10%"
    assert broken["rows"] == [] and "RuntimeError: no rollout store" in broken["note"]


def test_read_role_needed_when_keys_exist(served: Served) -> None:
    from shipyard.server import create_key

    invoker = create_key(served.state.store, "invoke")["key"]
    reader = create_key(served.state.store, "read")["key"]
    served.state.keys.refresh()
    paths = ["/overview", "/timeseries", "/versions", "/traces", "/traces/nope"]
    with httpx.Client(base_url=served.url, timeout=60) as anon:
        for path in paths:
            r = anon.get(API + path)
            assert r.status_code == 401 and r.json()["error"]["param"] == "authorization", path
        assert anon.get("/dashboard").status_code == 200  # the page holds no data; it asks for a key
    with served.client(invoker) as c:
        assert c.get(f"{API}/overview").status_code == 403
    with served.client(reader) as c:
        assert c.get(f"{API}/overview").status_code == 200
        assert c.get(f"{API}/traces/nope").status_code == 404
