"""The circuit breaker's rule (failure rate over a window, minimum calls, half-open probes) with an
injected clock, the breaker in front of real endpoints, and falling back to the next model.

These replace the tests of the old rule (open after N consecutive failed attempts, one probe), which
opened the circuit under ordinary fault rates and kept it open (issue 8)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest
from llm_helpers import ScriptServer, Step

from shipyard.llm import (
    CircuitBreaker,
    FallbackClient,
    LLMError,
    LLMEvent,
    MockLLMServer,
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


def breaker(clock: Clock, **kw: float) -> CircuitBreaker:
    opts: dict[str, float] = {
        "failure_rate": 0.5,
        "window_s": 10,
        "min_calls": 10,
        "cooldown_s": 30,
        "half_open_probes": 3,
    }
    opts.update(kw)
    return CircuitBreaker(clock=clock, endpoint="h:1", model="m", **opts)  # type: ignore[arg-type]


def record(b: CircuitBreaker, ok: int = 0, failed: int = 0) -> None:
    for _ in range(ok):
        assert b.allow()
        b.record_success()
    for _ in range(failed):
        assert b.allow()
        b.record_failure()


# the rule, with an injected clock ---------------------------------------------------------------
def test_needs_min_calls_before_it_can_open() -> None:
    b = breaker(Clock())
    record(b, failed=9)
    assert b.state == "closed" and b.window() == (9, 9)
    record(b, failed=1)  # the tenth attempt: 10 of 10 failed
    assert b.state == "open" and not b.allow()


def test_opens_on_the_failure_rate_not_on_a_run_of_failures() -> None:
    b = breaker(Clock(), min_calls=20)
    record(b, ok=30)
    record(b, failed=10)  # ten in a row, but 10 of 40 = 25%
    assert b.state == "closed" and b.window() == (40, 10)
    record(b, failed=19)  # 29 of 59 = 49%
    assert b.state == "closed"
    record(b, failed=1)  # 30 of 60 = 50%
    assert b.state == "open"


def test_the_window_forgets_old_attempts() -> None:
    clock = Clock()
    b = breaker(clock)
    record(b, failed=9)
    clock.now += 10.0  # a whole window later: the nine failures have left it
    record(b, failed=1)
    assert b.state == "closed" and b.window() == (1, 1)
    record(b, ok=8)
    clock.now += 5.0  # half a window: everything is still in it
    record(b, failed=1)
    assert b.window() == (10, 2) and b.state == "closed"


def test_half_open_lets_a_bounded_number_of_probes_through_then_closes() -> None:
    clock = Clock()
    b = breaker(clock)
    record(b, failed=10)
    clock.now += 29.9
    assert not b.allow() and b.state == "open"
    clock.now += 0.1
    assert [b.allow() for _ in range(5)] == [True, True, True, False, False]
    assert b.state == "half_open"
    b.record_success()
    b.record_success()
    assert b.state == "half_open" and not b.allow()
    b.record_success()  # every probe answered
    assert b.state == "closed" and b.window() == (0, 0) and b.allow()


def test_failed_probes_reopen_it_for_another_cooldown() -> None:
    clock = Clock()
    b = breaker(clock)
    record(b, failed=10)
    clock.now += 30
    assert b.allow() and b.allow() and b.allow()
    b.record_failure()  # 1 of 3 probes failed: below the 50% rate, keep probing
    assert b.state == "half_open"
    b.record_failure()  # 2 of 3: the rate is reached whatever the third says
    assert b.state == "open" and not b.allow()
    clock.now += 30
    assert b.allow() and b.state == "half_open"


def test_a_429_is_not_counted_and_frees_its_probe_slot() -> None:
    clock = Clock()
    b = breaker(clock, half_open_probes=1)
    for _ in range(50):
        assert b.allow()
        b.release()  # a 429
    assert b.state == "closed" and b.window() == (0, 0)
    record(b, failed=10)
    clock.now += 30
    assert b.allow() and not b.allow()
    b.release()  # the probe was rate limited: it proved nothing, another caller probes
    assert b.state == "half_open" and b.allow()
    b.record_success()
    assert b.state == "closed"


def test_lost_probes_are_replaced_after_a_cooldown() -> None:
    clock = Clock()
    b = breaker(clock, half_open_probes=2)
    record(b, failed=10)
    clock.now += 30
    assert b.allow() and b.allow() and not b.allow()  # both probes out, never reporting back
    clock.now += 29
    assert not b.allow()
    clock.now += 1
    assert b.allow() and b.allow() and not b.allow()


def test_settings_are_checked() -> None:
    for bad in (
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"window_s": 0},
        {"min_calls": 0},
        {"cooldown_s": 0},
        {"half_open_probes": 0},
    ):
        with pytest.raises(ValueError):
            breaker(Clock(), **bad)


def test_state_changes_are_reported(events: list[LLMEvent]) -> None:
    clock = Clock()
    b = breaker(clock, half_open_probes=1)
    record(b, failed=10)
    clock.now += 30
    assert b.allow()
    assert b.record_success() == ("half_open", "closed")
    assert [(e.kind, e.model, e.endpoint, e.reason, e.target) for e in events] == [
        ("breaker", "m", "h:1", "closed", "open"),
        ("breaker", "m", "h:1", "open", "half_open"),
        ("breaker", "m", "h:1", "half_open", "closed"),
    ]


def test_one_breaker_per_endpoint_and_model() -> None:
    a = OpenAIChatClient("http://127.0.0.1:9/v1/", "m1")
    b = OpenAIChatClient("http://127.0.0.1:9/v1", "m2")
    c = OpenAIChatClient("http://127.0.0.1:10/v1", "m1")
    assert a.breaker is breaker_for("http://127.0.0.1:9/v1", "m1")
    assert a.breaker is OpenAIChatClient("http://127.0.0.1:9/v1", "m1").breaker
    assert a.breaker is not b.breaker and a.breaker is not c.breaker
    assert a.breaker is not None and (a.breaker.endpoint, a.breaker.model) == ("127.0.0.1:9", "m1")
    assert OpenAIChatClient("http://127.0.0.1:9/v1", "m3", breaker=None).breaker is None


# in front of a real endpoint --------------------------------------------------------------------
RULES = {"default": "fine"}


@pytest.fixture
def mock() -> Iterator[MockLLMServer]:
    server = MockLLMServer(RULES, error_rate=1.0, seed=1)  # an outage: every call answers 500
    server.start()
    yield server
    server.stop()


async def test_an_outage_opens_the_breaker_and_half_open_probes_close_it(mock: MockLLMServer) -> None:
    assert mock.app is not None
    clock = Clock()
    b = CircuitBreaker(
        failure_rate=0.5, window_s=60, min_calls=6, cooldown_s=30, half_open_probes=2, clock=clock
    )
    c = OpenAIChatClient(mock.url, "m", max_retries=2, backoff_base_s=0, breaker=b)
    for _ in range(2):  # 3 attempts each, all 500
        with pytest.raises(LLMError) as info:
            await c.chat(USER)
        assert info.value.kind == "unavailable"
    assert b.state == "open" and mock.app.requests == 6
    assert info.value.attempts[-1].breaker == ("closed", "open")

    with pytest.raises(LLMError) as info:  # fails fast: nothing is sent
        await c.chat(USER)
    assert [(a.outcome, a.gave_up) for a in info.value.attempts] == [("circuit_open", "circuit_open")]
    assert mock.app.requests == 6

    mock.app.error_rate = 0.0  # the outage ends; the breaker does not know until it probes
    clock.now += 30
    results = await asyncio.gather(*(c.chat(USER) for _ in range(6)), return_exceptions=True)
    answered = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, LLMError)]
    assert len(answered) == 2 and mock.app.requests == 8  # exactly the two probes went out
    assert len(refused) == 4 and all(e.attempts[0].outcome == "circuit_open" for e in refused)
    assert b.state == "closed"
    assert [r.attempts[0].breaker for r in answered].count(("half_open", "closed")) == 1
    assert (await c.chat(USER)).text == "fine"
    await c.aclose()


async def test_rate_limits_never_open_the_breaker(mock: MockLLMServer) -> None:
    assert mock.app is not None
    mock.app.error_rate, mock.app.rate_limit_rate = 0.0, 1.0
    b = CircuitBreaker(failure_rate=0.1, window_s=60, min_calls=1, cooldown_s=30)
    c = OpenAIChatClient(
        mock.url, "m", max_rate_limit_retries=3, backoff_base_s=0, retry_after_max_s=5, breaker=b
    )
    c._sleep = lambda s: asyncio.sleep(0)  # the mock asks for 1 s; there is nothing to wait for here
    for _ in range(5):
        with pytest.raises(LLMError) as info:
            await c.chat(USER)
        e = info.value
        assert e.kind == "rate_limited" and len(e.attempts) == 4
        assert e.attempts[-1].gave_up == "rate_limit_retries_exhausted"
    assert b.state == "closed" and b.window() == (0, 0) and mock.app.requests == 20
    await c.aclose()


async def test_a_fallback_at_the_same_base_url_has_its_own_breaker(mock: MockLLMServer) -> None:
    """Issue 8: a fallback model on the same base URL shared the primary's breaker, so it failed too."""
    assert mock.app is not None
    opts = {"max_retries": 0, "backoff_base_s": 0.0}
    primary = OpenAIChatClient(mock.url, "big", **opts)  # type: ignore[arg-type]
    assert primary.breaker is not None
    primary.breaker.min_calls = 3
    for _ in range(3):
        with pytest.raises(LLMError):
            await primary.chat(USER)
    assert primary.breaker.state == "open"
    mock.app.error_rate = 0.0
    backup = OpenAIChatClient(mock.url, "small", **opts)  # type: ignore[arg-type]
    chain = FallbackClient([primary, backup])
    resp = await chain.chat(USER)
    assert [(a.model, a.outcome) for a in resp.attempts] == [("big", "circuit_open"), ("small", "ok")]
    await chain.aclose()


async def test_a_cancelled_probe_frees_its_slot(script_server: ScriptServer) -> None:
    clock = Clock()
    b = breaker(clock, half_open_probes=1)
    record(b, failed=10)
    clock.now += 30
    script_server.script(Step(hang_s=600.0))  # never answers while the test runs: it is cancelled
    c = OpenAIChatClient(script_server.url, "m", breaker=b)
    probe = asyncio.ensure_future(c.chat(USER))
    for _ in range(6000):  # wait (up to a minute) until the probe has reached the endpoint
        if script_server.requests:
            break
        await asyncio.sleep(0.01)
    assert b.state == "half_open" and not b.allow()
    probe.cancel()  # e.g. the agent's timeout: the probe proved nothing
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert b.allow()
    await c.aclose()


# falling back -----------------------------------------------------------------------------------
def scripted(name: str, reply: str) -> ScriptedModel:
    return ScriptedModel(parse_rules({"default": reply}), name=name)


async def test_falls_back_after_retries_with_all_attempts(
    script_server: ScriptServer, events: list[LLMEvent]
) -> None:
    script_server.script(Step(503, orjson.dumps({"error": {"message": "overloaded"}})))
    primary = OpenAIChatClient(script_server.url, "big", max_retries=1, backoff_base_s=0, breaker=None)
    chain = FallbackClient([primary, scripted("backup", "from backup")])
    resp = await chain.chat(USER)
    assert resp.text == "from backup" and resp.model == "backup"
    assert [(a.model, a.outcome, a.gave_up) for a in resp.attempts] == [
        ("big", "http_5xx", None),
        ("big", "http_5xx", "retries_exhausted"),
        ("backup", "ok", None),
    ]
    endpoint = primary.endpoint
    assert [(e.kind, e.model, e.endpoint, e.reason, e.target) for e in events] == [
        ("retry", "big", endpoint, "http_5xx", ""),
        ("give_up", "big", endpoint, "retries_exhausted", ""),
        ("fallback", "big", "", "unavailable", "backup"),
    ]
    await chain.aclose()


async def test_a_long_retry_after_hands_over_to_the_fallback_at_once(script_server: ScriptServer) -> None:
    script_server.script(Step(429, b"{}", {"Retry-After": "120"}))
    primary = OpenAIChatClient(script_server.url, "big", retry_after_max_s=20, breaker=None)
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    primary._sleep = sleep
    chain = FallbackClient([primary, scripted("backup", "b")])
    resp = await chain.chat(USER)
    assert [(a.model, a.outcome, a.gave_up) for a in resp.attempts] == [
        ("big", "http_429", "retry_after_too_long"),
        ("backup", "ok", None),
    ]
    assert waits == [] and len(script_server.requests) == 1
    await chain.aclose()


async def test_no_fallback_when_the_primary_answers(script_server: ScriptServer) -> None:
    primary = OpenAIChatClient(script_server.url, "big", breaker=None)
    chain = FallbackClient([primary, scripted("backup", "from backup")])
    resp = await chain.chat(USER)
    assert resp.text == "hello" and [a.model for a in resp.attempts] == ["big"]
    assert chain.name == "big"
    await chain.aclose()


async def test_open_circuit_hands_over_to_the_fallback(refused_url: str) -> None:
    b = CircuitBreaker(min_calls=1, cooldown_s=60)
    primary = OpenAIChatClient(refused_url, "big", max_retries=0, breaker=b)
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
