"""Model-client events (retries, give-ups, fallbacks, breaker changes) as Prometheus metrics: a real
client against the mock server over HTTP, its events fed to `Metrics` through the llm listener."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from observe_helpers import samples

from shipyard.llm import (
    CircuitBreaker,
    FallbackClient,
    MockLLMServer,
    OpenAIChatClient,
    ScriptedModel,
    add_listener,
    parse_rules,
)
from shipyard.observe import Metrics

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def outage() -> Iterator[MockLLMServer]:
    server = MockLLMServer({"default": "fine"}, error_rate=1.0)
    server.start()
    yield server
    server.stop()


async def test_llm_events_become_counters_and_a_breaker_gauge(outage: MockLLMServer) -> None:
    m = Metrics()
    remove = add_listener(m.observe_llm_event)
    breaker = CircuitBreaker(min_calls=2, cooldown_s=60, endpoint="e", model="primary")
    primary = OpenAIChatClient(
        outage.url, "mock", name="primary", max_retries=1, backoff_base_s=0, breaker=breaker
    )
    chain = FallbackClient([primary, ScriptedModel(parse_rules({"default": "b"}), name="backup")])
    try:
        assert (await chain.chat(USER)).text == "b"  # 500, retry, 500: gives up, the circuit opens
        assert (await chain.chat(USER)).text == "b"  # refused by the open circuit
    finally:
        remove()
    await chain.chat(USER)  # not counted: the listener is gone
    await chain.aclose()

    endpoint = primary.endpoint
    got = samples(m)
    at = (("endpoint", endpoint), ("model", "primary"))
    assert got[("shipyard_llm_retries_total", (*at, ("outcome", "http_5xx")))] == 1
    assert got[("shipyard_llm_gave_up_total", (*at, ("reason", "retries_exhausted")))] == 1
    assert got[("shipyard_llm_gave_up_total", (*at, ("reason", "circuit_open")))] == 1
    fallbacks = (
        "shipyard_llm_fallbacks_total",
        (("fallback", "backup"), ("model", "primary"), ("reason", "unavailable")),
    )
    assert got[fallbacks] == 2  # the third call came after the listener was removed
    opened = (("endpoint", "e"), ("from_state", "closed"), ("model", "primary"), ("to_state", "open"))
    assert got[("shipyard_llm_breaker_transitions_total", opened)] == 1
    assert got[("shipyard_llm_breaker_state", (("endpoint", "e"), ("model", "primary")))] == 2.0


def test_breaker_gauge_follows_each_change() -> None:
    m = Metrics()
    remove = add_listener(m.observe_llm_event)
    now = [0.0]
    b = CircuitBreaker(
        min_calls=1, cooldown_s=10, half_open_probes=1, endpoint="e", model="x", clock=lambda: now[0]
    )
    key = ("shipyard_llm_breaker_state", (("endpoint", "e"), ("model", "x")))
    try:
        b.record_failure()
        assert samples(m)[key] == 2.0
        now[0] = 10.0
        assert b.allow()
        assert samples(m)[key] == 1.0
        b.record_success()
        assert samples(m)[key] == 0.0
    finally:
        remove()
