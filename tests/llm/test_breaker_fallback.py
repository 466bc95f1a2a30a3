"""Circuit breaker states, the breaker in front of a real endpoint, and falling back to the next model."""

from __future__ import annotations

import orjson
import pytest
from llm_helpers import ScriptServer, Step

from shipyard.llm import (
    CircuitBreaker,
    FallbackClient,
    LLMError,
    OpenAIChatClient,
    ScriptedModel,
    breaker_for,
    parse_rules,
)

USER = [{"role": "user", "content": "hi"}]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_n_failures_and_recovers_through_one_probe() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open" and not b.allow()

    clock.now += 10
    assert b.state == "half_open"
    assert b.allow()  # the probe
    assert not b.allow()  # only one probe at a time
    b.record_failure()  # the probe failed: open again, for another cooldown
    assert b.state == "open" and not b.allow()

    clock.now += 10
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow() and b.allow()
    assert b.consecutive_failures == 0


def test_a_success_resets_the_count() -> None:
    b = CircuitBreaker(failure_threshold=2, cooldown_s=1, clock=Clock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state == "closed"


def test_a_lost_probe_is_replaced_after_a_cooldown() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, cooldown_s=5, clock=clock)
    b.record_failure()
    clock.now += 5
    assert b.allow() and not b.allow()
    clock.now += 5
    assert b.allow()


def test_shared_per_base_url() -> None:
    a = OpenAIChatClient("http://127.0.0.1:9/v1/", "m1")
    b = OpenAIChatClient("http://127.0.0.1:9/v1", "m2")
    c = OpenAIChatClient("http://127.0.0.1:10/v1", "m1")
    assert a.breaker is b.breaker is breaker_for("http://127.0.0.1:9/v1")
    assert a.breaker is not c.breaker
    assert OpenAIChatClient("http://127.0.0.1:9/v1", "m3", breaker=None).breaker is None


async def test_open_circuit_fails_fast_then_probe_closes_it(script_server: ScriptServer) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=30, clock=clock)
    c = OpenAIChatClient(script_server.url, "m", max_retries=5, backoff_base_s=0, breaker=breaker)
    script_server.script(Step(500, b"{}"))
    with pytest.raises(LLMError) as info:
        await c.chat(USER)
    # two failures open the circuit; the third try is refused without calling the endpoint
    assert [a.outcome for a in info.value.attempts] == ["http_5xx", "http_5xx", "circuit_open"]
    assert info.value.kind == "unavailable" and "circuit open" in str(info.value)
    assert len(script_server.requests) == 2

    with pytest.raises(LLMError) as info:
        await c.chat(USER)
    assert [a.outcome for a in info.value.attempts] == ["circuit_open"]
    assert len(script_server.requests) == 2

    clock.now += 30
    script_server.script(Step())
    resp = await c.chat(USER)  # the probe
    assert resp.text == "hello" and breaker.state == "closed"
    await c.aclose()


def scripted(name: str, reply: str) -> ScriptedModel:
    return ScriptedModel(parse_rules({"default": reply}), name=name)


async def test_falls_back_after_retries_with_all_attempts(script_server: ScriptServer) -> None:
    script_server.script(Step(503, orjson.dumps({"error": {"message": "overloaded"}})))
    primary = OpenAIChatClient(script_server.url, "big", max_retries=1, backoff_base_s=0, breaker=None)
    chain = FallbackClient([primary, scripted("backup", "from backup")])
    resp = await chain.chat(USER)
    assert resp.text == "from backup" and resp.model == "backup"
    assert [(a.model, a.outcome) for a in resp.attempts] == [
        ("big", "http_5xx"),
        ("big", "http_5xx"),
        ("backup", "ok"),
    ]
    await chain.aclose()


async def test_no_fallback_when_the_primary_answers(script_server: ScriptServer) -> None:
    primary = OpenAIChatClient(script_server.url, "big", breaker=None)
    chain = FallbackClient([primary, scripted("backup", "from backup")])
    resp = await chain.chat(USER)
    assert resp.text == "hello" and [a.model for a in resp.attempts] == ["big"]
    assert chain.name == "big"
    await chain.aclose()


async def test_open_circuit_hands_over_to_the_fallback(refused_url: str) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=60)
    primary = OpenAIChatClient(refused_url, "big", max_retries=0, breaker=breaker)
    chain = FallbackClient([primary, scripted("backup", "b")])
    first = await chain.chat(USER)
    second = await chain.chat(USER)
    assert [a.outcome for a in first.attempts] == ["connect_error", "ok"]
    assert [a.outcome for a in second.attempts] == ["circuit_open", "ok"]
    await chain.aclose()


async def test_every_model_failing_raises_with_every_attempt(
    refused_url: str, script_server: ScriptServer
) -> None:
    script_server.script(Step(400, orjson.dumps({"error": {"message": "bad tools"}})))
    a = OpenAIChatClient(refused_url, "a", max_retries=1, backoff_base_s=0, breaker=None)
    b = OpenAIChatClient(script_server.url, "b", breaker=None)
    with pytest.raises(LLMError) as info:
        await FallbackClient([a, b]).chat(USER)
    e = info.value
    assert [(x.model, x.outcome) for x in e.attempts] == [
        ("a", "connect_error"),
        ("a", "connect_error"),
        ("b", "http_4xx"),
    ]
    assert "a:" in str(e) and "bad tools" in str(e) and e.kind == "error"
    await a.aclose()
    await b.aclose()
