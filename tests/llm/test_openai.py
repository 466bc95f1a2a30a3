"""OpenAIChatClient over real loopback HTTP: parsing, retries, backoff, Retry-After, timeouts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest
from llm_helpers import ScriptServer, Step, ok_body

from shipyard.llm import LLMError, OpenAIChatClient, parse_retry_after

USER = [{"role": "user", "content": "hi"}]


def client(url: str, **kw: object) -> tuple[OpenAIChatClient, list[float]]:
    """A client with fast backoff whose retry waits are recorded (and really slept)."""
    opts: dict[str, object] = {
        "max_retries": 3,
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.01,
        "breaker": None,
        "seed": 7,
    }
    opts.update(kw)
    c = OpenAIChatClient(url, "gpt-test", name="primary", **opts)  # type: ignore[arg-type]
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)
        await asyncio.sleep(s)

    c._sleep = sleep
    return c, waits


async def test_parses_text_tool_calls_usage_and_sends_auth(script_server: ScriptServer) -> None:
    tool_calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"order_id": "10001"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "broken", "arguments": '{"order_id": '}},
    ]
    script_server.script(
        Step(body=ok_body(None, message={"tool_calls": tool_calls}, finish_reason="tool_calls"))
    )
    c, _ = client(script_server.url, api_key="sk-123", headers={"X-Team": "support"})
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    resp = await c.chat(USER, tools=tools, temperature=0.2, max_tokens=50)
    await c.aclose()

    assert resp.text is None
    assert resp.finish_reason == "tool_calls"
    assert [(t.id, t.name, t.arguments) for t in resp.tool_calls] == [
        ("call_a", "lookup", {"order_id": "10001"}),
        ("call_b", "broken", {"__invalid_json__": '{"order_id": '}),
    ]
    assert resp.tool_calls[1].raw_arguments == '{"order_id": '
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.cached_input_tokens) == (11, 3, 4)
    assert (
        resp.model == "primary"
        and resp.response_model == "gpt-test-2024"
        and resp.response_id == "chatcmpl-1"
    )
    assert [(a.outcome, a.status_code) for a in resp.attempts] == [("ok", 200)]
    assert resp.attempts[0].end_ns >= resp.attempts[0].start_ns

    sent = script_server.requests[0]
    assert sent["headers"]["Authorization"] == "Bearer sk-123"
    assert sent["headers"]["X-Team"] == "support"
    assert sent["json"] == {
        "model": "gpt-test",
        "messages": USER,
        "tools": tools,
        "temperature": 0.2,
        "max_tokens": 50,
    }


async def test_retries_429_honouring_retry_after(script_server: ScriptServer) -> None:
    limited = Step(429, orjson.dumps({"error": {"message": "slow down"}}), {"Retry-After": "0.03"})
    script_server.script(limited, Step())
    c, waits = client(script_server.url, backoff_max_s=5.0)
    resp = await c.chat(USER)
    await c.aclose()
    assert resp.text == "hello"
    assert [(a.outcome, a.status_code) for a in resp.attempts] == [("http_429", 429), ("ok", 200)]
    assert "slow down" in (resp.attempts[0].error or "")
    assert waits == [0.03]


async def test_retry_after_is_waited_in_full_not_cut_to_backoff_max(script_server: ScriptServer) -> None:
    """Issue 8: a Retry-After of 20 s was cut to backoff_max_s (8 s); its own cap is retry_after_max_s."""
    limited = Step(429, b"{}", {"Retry-After": "0.05"})
    unavailable = Step(503, b"{}", {"Retry-After": "0.04"})
    script_server.script(limited, unavailable, Step())
    c, waits = client(script_server.url, backoff_max_s=0.01, retry_after_max_s=1.0)
    resp = await c.chat(USER)
    await c.aclose()
    assert [a.outcome for a in resp.attempts] == ["http_429", "http_5xx", "ok"]
    assert waits == [0.05, 0.04] and [a.wait_s for a in resp.attempts] == [0.05, 0.04, None]


async def test_retry_after_longer_than_its_cap_ends_the_try_at_once(script_server: ScriptServer) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    script_server.script(Step(429, b"{}", {"Retry-After": later}), Step())
    c, waits = client(script_server.url, retry_after_max_s=20)
    with pytest.raises(LLMError) as info:
        await c.chat(USER)
    await c.aclose()
    e = info.value
    assert e.kind == "rate_limited" and "retry_after_max_s" in str(e)
    assert [(a.outcome, a.gave_up) for a in e.attempts] == [("http_429", "retry_after_too_long")]
    assert waits == [] and len(script_server.requests) == 1


async def test_rate_limits_have_their_own_retry_allowance(script_server: ScriptServer) -> None:
    limited, err = Step(429, b"{}"), Step(500, b"{}")
    script_server.script(limited, err, limited, err, limited, err, Step())
    c, waits = client(script_server.url, max_retries=3, max_rate_limit_retries=3)
    resp = await c.chat(USER)  # six retries: three of each kind, each within its own allowance
    await c.aclose()
    assert [a.outcome for a in resp.attempts] == ["http_429", "http_5xx"] * 3 + ["ok"]
    assert len(waits) == 6


async def test_rate_limit_allowance_runs_out(script_server: ScriptServer) -> None:
    script_server.script(Step(429, b'{"error": {"message": "slow down"}}'))
    c, waits = client(script_server.url, max_retries=5, max_rate_limit_retries=2)
    with pytest.raises(LLMError) as info:
        await c.chat(USER)
    await c.aclose()
    e = info.value
    assert e.kind == "rate_limited" and "slow down" in str(e)
    assert [a.outcome for a in e.attempts] == ["http_429"] * 3
    assert e.attempts[-1].gave_up == "rate_limit_retries_exhausted" and len(waits) == 2


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


async def test_retries_500_then_succeeds(script_server: ScriptServer) -> None:
    err = Step(500, orjson.dumps({"error": {"message": "boom", "type": "server_error"}}))
    script_server.script(err, err, Step())
    c, waits = client(script_server.url)
    resp = await c.chat(USER)
    await c.aclose()
    assert [a.outcome for a in resp.attempts] == ["http_5xx", "http_5xx", "ok"]
    assert len(script_server.requests) == 3
    # full jitter: each wait is in [0, min(max, base * 2**n)]
    assert len(waits) == 2 and all(0 <= w <= min(0.01, 0.001 * 2**n) for n, w in enumerate(waits))


async def test_gives_up_after_max_retries(script_server: ScriptServer) -> None:
    script_server.script(Step(503, b"upstream down"))
    c, waits = client(script_server.url, max_retries=2)
    with pytest.raises(LLMError) as info:
        await c.chat(USER)
    await c.aclose()
    e = info.value
    assert e.kind == "unavailable"
    assert [a.status_code for a in e.attempts] == [503, 503, 503]
    assert "upstream down" in str(e) and "3 attempt" in str(e)
    assert len(waits) == 2


async def test_retries_connection_refused(refused_url: str) -> None:
    c, _ = client(refused_url, max_retries=2)
    with pytest.raises(LLMError) as info:
        await c.chat(USER)
    await c.aclose()
    assert info.value.kind == "unavailable"
    assert [a.outcome for a in info.value.attempts] == ["connect_error"] * 3


async def test_retries_timeout(script_server: ScriptServer) -> None:
    script_server.script(Step(hang_s=600.0), Step())
    # the answered attempt must fit in the same per-attempt timeout: generous, for a busy machine
    c, _ = client(script_server.url, timeout_s=5.0)
    resp = await c.chat(USER)
    await c.aclose()
    assert [a.outcome for a in resp.attempts] == ["timeout", "ok"]
    assert resp.attempts[0].status_code is None


async def test_timeout_every_time_is_a_timeout_error(script_server: ScriptServer) -> None:
    script_server.script(Step(hang_s=5.0))
    c, _ = client(script_server.url, timeout_s=0.1, max_retries=1)
    with pytest.raises(LLMError) as info:
        await c.chat(USER)
    await c.aclose()
    assert info.value.kind == "timeout"
    assert len(info.value.attempts) == 2


async def test_400_is_not_retried(script_server: ScriptServer) -> None:
    body = orjson.dumps(
        {"error": {"message": "messages[0].role is invalid", "type": "invalid_request_error"}}
    )
    script_server.script(Step(400, body), Step())
    c, waits = client(script_server.url)
    with pytest.raises(LLMError) as info:
        await c.chat(USER)
    await c.aclose()
    assert info.value.kind == "error"
    assert "messages[0].role is invalid" in str(info.value)
    assert [(a.outcome, a.status_code) for a in info.value.attempts] == [("http_4xx", 400)]
    assert len(script_server.requests) == 1 and waits == []


async def test_unreadable_response_is_bad_response(script_server: ScriptServer) -> None:
    script_server.script(Step(200, b'{"choices": []}'))
    c, _ = client(script_server.url)
    with pytest.raises(LLMError) as info:
        await c.chat(USER)
    await c.aclose()
    assert info.value.kind == "bad_response"
    assert [a.outcome for a in info.value.attempts] == ["bad_response"]


async def test_one_pool_per_event_loop(script_server: ScriptServer) -> None:
    """The same client works from other event loops too (each loop gets its own pool)."""
    c, _ = client(script_server.url)

    async def once() -> str | None:
        try:
            return (await c.chat(USER)).text
        finally:
            await c.aclose()  # closes this loop's pool only

    # each asyncio.run is a new event loop, in a worker thread
    texts = [await asyncio.to_thread(asyncio.run, once()) for _ in range(2)]
    texts.append(await once())
    assert texts == ["hello"] * 3
    assert len(c._sessions) == 0


async def test_headers_are_set_once_and_cookies_neither_kept_nor_sent(script_server: ScriptServer) -> None:
    script_server.script(Step(headers={"Set-Cookie": "__cf_bm=abc; Path=/"}), Step())
    by_name = script_server.url.replace("127.0.0.1", "localhost")  # a jar keeps no cookie of an IP
    c, _ = client(by_name, api_key="sk-1")
    mine, _ = client(script_server.url, headers={"User-Agent": "my-app/2"})
    for _ in range(2):
        assert (await c.chat(USER)).text == "hello"
    assert (await mine.chat(USER)).text == "hello"
    await c.aclose()
    await mine.aclose()

    first, second, third = (r["headers"] for r in script_server.requests)
    for sent in (first, second):
        assert sent["Content-Type"] == "application/json" and sent["Accept"] == "application/json"
        assert sent["User-Agent"] == "shipyard" and sent["Authorization"] == "Bearer sk-1"
        assert "Accept-Encoding" in sent  # aiohttp's own, kept: compressed answers are read
    assert "Cookie" not in second  # the CDN's cookie from the first answer is not sent back
    assert third["User-Agent"] == "my-app/2" and "Authorization" not in third
