"""Prometheus cost counters: the ledger's figures with bounded labels (agent, version, model,
traffic source, feature; never user or session)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_cost_cli import _record

from shipyard.observe import Metrics
from shipyard.observe._metrics import MAX_FEATURE_LABELS


def _samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_cost_tokens_and_savings_by_model_source_and_feature() -> None:
    m = Metrics()
    m.observe_interaction(_record("alice", "s1", 0.30, features=["refunds", "new_refund_flow"]))
    m.observe_interaction(_record("bob", "s2", 0.05, saved=0.40, model="large"))
    evals = _record("carol", "s3", 0.10)
    evals.traffic_source = "eval"
    m.observe_interaction(evals)
    s = _samples(m)
    cost = {dict(k[1])["model"] + "/" + dict(k[1])["feature"] + "/" + dict(k[1])["traffic_source"]: v
            for k, v in s.items() if k[0] == "shipyard_cost_usd_total"}  # fmt: skip
    assert cost == {
        "small/new_refund_flow,refunds/production": 0.30,
        "large//production": 0.05,
        "small//eval": 0.10,  # money spent on evals is spent too: counted, with its source
    }
    tokens = {dict(k[1])["type"]: v for k, v in s.items()
              if k[0] == "shipyard_tokens_total" and dict(k[1])["model"] == "large"}  # fmt: skip
    assert tokens == {
        "input": 1000,
        "cached_input": 400,
        "cache_write_input": 0,
        "output": 100,
        "reasoning": 0,
    }
    saved = {dict(k[1])["reason"]: v for k, v in s.items() if k[0] == "shipyard_saved_usd_total"}
    assert saved == {"cache": 0.40}
    labels = {name for k in s for name, _ in k[1] if k[0].startswith(("shipyard_cost", "shipyard_tokens"))}
    assert labels == {"agent", "version", "model", "traffic_source", "feature", "type"}


def test_feature_label_values_are_bounded() -> None:
    m = Metrics()
    for i in range(MAX_FEATURE_LABELS + 5):
        m.observe_interaction(_record("u", "s", 0.01, features=[f"f{i}"]))
    s = _samples(m)
    features = {dict(k[1])["feature"] for k in s if k[0] == "shipyard_cost_usd_total"}
    assert len(features) == MAX_FEATURE_LABELS + 1 and "(other)" in features
    total = sum(v for k, v in s.items() if k[0] == "shipyard_cost_usd_total")
    assert total == pytest.approx(0.01 * (MAX_FEATURE_LABELS + 5))
