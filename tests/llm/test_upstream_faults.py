"""Issue 8's target, through the runtime against the real mock server over HTTP: with 20% HTTP 500
and 20% HTTP 429 from the model, at most 5% of interactions fail without a fallback and none fail
with a healthy fallback model on another endpoint. Before, the breaker (open after 5 consecutive
failed attempts, 429s included, one breaker per base URL) opened under these faults and kept
reopening: 95.9% of interactions failed.

The fault dice are seeded and the interactions run one after another, so a run repeats; retry
waits are kept tiny (`retry_after_s`, backoff), and nothing here asserts on time. Expected failure
rate without fallback: each model call fails only after 4 faults or 6 rate limits before an answer
(about 0.4%), an interaction makes 2 calls: about 0.8%.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from order_shop import RULES, shop_project

from shipyard.config import ShipyardConfig, load_config
from shipyard.llm import LLMEvent, MockLLMServer
from shipyard.runtime import Runtime

INTERACTIONS = 400

# retry waits kept tiny so the test is quick; everything else (retry allowances, the breaker's
# failure rate, window, minimum calls, probes) is the shipped default
FAST = "backoff_base_s: 0.001, backoff_max_s: 0.004"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Callable[..., ShipyardConfig]]:
    """Write a project whose agent `shop` (tests/support/order_shop.py) makes two model calls per
    order question; returns a loader taking the `models:` section, the agent's `model:` and more."""
    with shop_project(tmp_path, "faultshop") as module:

        def make(models: str, model: str = "{name: primary}", extra: str = "") -> ShipyardConfig:
            text = f"models:\n{textwrap.indent(textwrap.dedent(models), '  ')}"
            text += (
                f"agents:\n  shop:\n    entry: {module}:shop\n    timeout_s: 60\n    model: {model}\n{extra}"
            )
            (tmp_path / "shipyard.yaml").write_text(text)
            return load_config(tmp_path / "shipyard.yaml")

        yield make


@pytest.fixture
def faulty() -> Iterator[MockLLMServer]:
    """The model endpoint: 20% HTTP 500, 20% HTTP 429 (Retry-After: 0.001), seeded dice."""
    server = MockLLMServer(
        yaml.safe_load(RULES), error_rate=0.2, rate_limit_rate=0.2, retry_after_s=0.001, seed=8
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def healthy() -> Iterator[MockLLMServer]:
    server = MockLLMServer(yaml.safe_load(RULES), model_name="backup")
    server.start()
    yield server
    server.stop()


async def run(cfg: ShipyardConfig, n: int = INTERACTIONS) -> Counter[str]:
    rt = Runtime(cfg)
    statuses: Counter[str] = Counter()
    try:
        for i in range(n):
            r = await rt.invoke("shop", f"where is order {10000 + i}")
            statuses[r.status] += 1
            if r.status == "completed":
                assert r.output == f"Order {10000 + i} is shipped."
    finally:
        await rt.aclose()
    return statuses


async def test_faulty_model_without_fallback_fails_at_most_5_percent(
    project: Callable[..., ShipyardConfig], faulty: MockLLMServer, events: list[LLMEvent]
) -> None:
    cfg = project(f"primary: {{base_url: '{faulty.url}', model: mock, {FAST}}}\n")
    statuses = await run(cfg)
    failed = INTERACTIONS - statuses["completed"]
    assert failed <= 0.05 * INTERACTIONS, f"{failed} of {INTERACTIONS} interactions failed: {statuses}"
    retries = Counter(e.reason for e in events if e.kind == "retry")
    assert retries["http_5xx"] > 0.1 * INTERACTIONS and retries["http_429"] > 0.1 * INTERACTIONS
    assert [e for e in events if e.kind == "breaker"] == []  # the faults were retried, never tripped it


async def test_faulty_model_with_a_fallback_on_another_endpoint_never_fails(
    project: Callable[..., ShipyardConfig],
    faulty: MockLLMServer,
    healthy: MockLLMServer,
    events: list[LLMEvent],
) -> None:
    cfg = project(
        f"primary: {{base_url: '{faulty.url}', model: mock, {FAST}}}\n"
        f"backup: {{base_url: '{healthy.url}', model: backup}}\n",
        model="{name: primary, fallbacks: [backup]}",
    )
    statuses = await run(cfg)
    assert statuses == {"completed": INTERACTIONS}
    gave_up = [e for e in events if e.kind == "give_up"]
    fallbacks = [e for e in events if e.kind == "fallback"]
    assert len(fallbacks) == len(gave_up)  # every call the primary gave up on, the backup answered
    assert all((e.model, e.target) == ("primary", "backup") for e in fallbacks)


async def test_retries_fallbacks_and_breaker_changes_are_events_on_the_chat_span(
    project: Callable[..., ShipyardConfig], faulty: MockLLMServer, healthy: MockLLMServer
) -> None:
    assert faulty.app is not None
    faulty.app.error_rate, faulty.app.rate_limit_rate = 1.0, 0.0  # an outage
    cfg = project(
        f"primary: {{base_url: '{faulty.url}', model: mock, max_retries: 1, {FAST},"
        " breaker: {min_calls: 2}}\n"
        f"backup: {{base_url: '{healthy.url}', model: backup}}\n",
        model="{name: primary, fallbacks: [backup]}",
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    rt = Runtime(cfg, tracer=provider.get_tracer("test"))
    r = await rt.invoke("shop", "where is order 12345")
    await rt.aclose()
    assert r.status == "completed" and r.output == "Order 12345 is shipped."

    # named after the provider's model id the chain's first request asks for (`mock`), not the key
    spans = exporter.get_finished_spans()
    first, second = [s for s in spans if s.name == "chat mock"]
    assert (first.attributes or {})["shipyard.model.key"] == "primary"
    assert (first.attributes or {})["gen_ai.response.model"] == "backup"  # the fallback answered
    # each request it sent is an HTTP `POST` child span, not a second GenAI operation
    attempts = [
        dict(s.attributes or {}) for s in spans if s.parent and s.parent.span_id == first.context.span_id
    ]
    assert [
        (
            a["http.request.method"],
            a["gen_ai.request.model"],
            a["shipyard.model.key"],
            a["shipyard.attempt.outcome"],
        )
        for a in attempts
    ] == [
        ("POST", "mock", "primary", "http_5xx"),
        ("POST", "mock", "primary", "http_5xx"),
        ("POST", "backup", "backup", "ok"),
    ]
    assert not any("gen_ai.operation.name" in a for a in attempts)
    assert [a.get("http.request.resend_count") for a in attempts[:2]] == [None, 1]
    seen = [(e.name, dict(e.attributes or {})) for e in first.events]
    assert [name for name, _ in seen] == [
        "shipyard.llm.retry",
        "shipyard.llm.breaker",
        "shipyard.llm.give_up",
        "shipyard.llm.fallback",
    ]
    retry, breaker, gave_up, fallback = (attrs for _, attrs in seen)
    assert retry["shipyard.attempt.outcome"] == "http_5xx" and retry["gen_ai.request.model"] == "mock"
    assert retry["shipyard.model.key"] == "primary"
    assert f"{retry['server.address']}:{retry['server.port']}" == faulty.url.split("/")[2]
    assert (breaker["shipyard.llm.breaker.from"], breaker["shipyard.llm.breaker.to"]) == ("closed", "open")
    assert gave_up["shipyard.llm.give_up.reason"] == "retries_exhausted"
    assert (fallback["shipyard.llm.fallback.from"], fallback["shipyard.llm.fallback.to"]) == (
        "primary",
        "backup",
    )
    # the second call finds the circuit open: nothing is sent, the backup answers at once
    assert [(e.name, (e.attributes or {}).get("shipyard.llm.give_up.reason")) for e in second.events] == [
        ("shipyard.llm.give_up", "circuit_open"),
        ("shipyard.llm.fallback", None),
    ]
    assert faulty.app.requests == 2
