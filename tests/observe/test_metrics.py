"""Prometheus metrics: names, labels, GenAI metrics, and eval / shadow traffic kept out of KPIs."""

from __future__ import annotations

from observe_helpers import make_record, samples

from shipyard.observe import Metrics


def test_kpi_metrics_by_agent_and_version() -> None:
    m = Metrics()
    m.observe_interaction(make_record(latency_ms=1200, cost=0.05))
    m.observe_interaction(make_record(status="escalated", tools=("success", "error")))
    m.observe_interaction(make_record(status="blocked", tools=()))
    m.observe_interaction(make_record(guardrails=[{"name": "pii", "verdict": "block"}]))
    s = samples(m)
    av = (("agent", "support"), ("version", "support@1.0.0+abc"))
    assert s[("shipyard_interactions_total", tuple(sorted((*av, ("status", "completed")))))] == 2
    assert s[("shipyard_escalations_total", av)] == 1
    assert s[("shipyard_safety_incidents_total", av)] == 2
    assert s[("shipyard_tool_errors_total", tuple(sorted((*av, ("tool", "lookup_order")))))] == 1
    assert s[("shipyard_interaction_duration_seconds_count", av)] == 4
    assert s[("shipyard_interaction_duration_seconds_bucket", tuple(sorted((*av, ("le", "1.0")))))] == 3
    cost = {k: v for k, v in s.items() if k[0] == "shipyard_cost_usd_total"}
    assert {dict(k[1])["agent"] for k in cost} == {"support"} and sum(cost.values()) > 0.05
    token = {k: v for k, v in s.items() if k[0] == "gen_ai_client_token_usage_count"}
    assert {dict(k[1])["gen_ai_token_type"] for k in token} == {"input", "output"}
    assert any(k[0] == "gen_ai_client_operation_duration_seconds_sum" for k in s)


def test_eval_and_shadow_traffic_never_reach_the_kpis() -> None:
    m = Metrics()
    m.observe_interaction(make_record(source="eval"))
    m.observe_interaction(make_record(source="shadow", status="failed"))
    m.observe_interaction(make_record(source="canary"))
    s = samples(m)
    interactions = sum(v for k, v in s.items() if k[0] == "shipyard_interactions_total")
    assert interactions == 1  # only the canary
    offline = {
        dict(k[1])["traffic_source"]: v for k, v in s.items() if k[0] == "shipyard_offline_interactions_total"
    }
    assert offline == {"eval": 1, "shadow": 1}


def test_feedback_and_separate_registries() -> None:
    a, b = Metrics(), Metrics()
    r = make_record()
    a.observe_feedback(r, thumbs=1, score=4.5)
    a.observe_feedback(r, thumbs=-1)
    s = samples(a)
    assert (
        s[("shipyard_feedback_total", (("agent", "support"), ("thumbs", "up"), ("version", r.version)))] == 1
    )
    assert s[("shipyard_feedback_score_sum", (("agent", "support"), ("version", r.version)))] == 4.5
    assert not any(k[0] == "shipyard_feedback_total" for k in samples(b))
