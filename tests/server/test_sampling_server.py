"""Trace sampling on the server: ordinary traces may drop their spans; negative feedback brings them back."""

from __future__ import annotations

import time
from collections.abc import Callable

from server_helpers import Served


def wait_for_trace(c: object, trace_id: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        r = c.get(f"/admin/traces/{trace_id}")  # type: ignore[attr-defined]
        if r.status_code == 200:
            return r.json()
        assert time.monotonic() < deadline, r.text
        time.sleep(0.05)


def test_sampled_out_trace_is_recalled_by_negative_feedback(serve_project: Callable[..., Served]) -> None:
    served = serve_project(lambda text: text + "\nserver: {trace_sample_rate: 0.0}\n")
    with served.client() as c:
        a = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?"}).json()
        b = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10004?"}).json()
        assert wait_for_trace(c, a["trace_id"])["spans"] == []  # not sampled: the record, no spans
        assert wait_for_trace(c, b["trace_id"])["spans"] == []
        # metrics count every interaction, before sampling
        assert 'shipyard_interactions_total{agent="support",status="completed"' in c.get("/metrics").text

        assert (
            c.post("/v1/feedback", json={"interaction_id": a["interaction_id"], "thumbs": -1}).status_code
            == 200
        )
        assert (
            c.post("/v1/feedback", json={"interaction_id": b["interaction_id"], "thumbs": 1}).status_code
            == 200
        )
        recalled = wait_for_trace(c, a["trace_id"])
        assert {s["name"] for s in recalled["spans"]} >= {"invoke_agent support", "execute_tool lookup_order"}
        assert any("[Tool Call] lookup_order" in line for line in recalled["tree"])
        assert wait_for_trace(c, b["trace_id"])["spans"] == []  # positive feedback: stays sampled out
