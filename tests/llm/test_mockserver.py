"""The mock LLM server over real loopback HTTP: OpenAI shape, streaming, faults, the CLI command."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import ConfigError
from shipyard.llm import LLMError, MockLLMServer, OpenAIChatClient, count_tokens

RULES = """
prompt_cache: true
default: "I don't know."
rules:
  - name: lookup
    when: {user: 'order (?P<id>\\d{5})', fresh: true}
    tool_calls:
      - name: lookup_order
        arguments: {order_id: "{id}"}
  - name: status
    when: {last_tool: lookup_order}
    reply: "Order {result[order_id]} is {result[status]}."
"""
SYSTEM = {"role": "system", "content": "You are the support agent."}


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("mock") / "rules.yaml"
    p.write_text(RULES)
    return p


@pytest.fixture(scope="module")
def url(rules_file: Path) -> Iterator[str]:
    with MockLLMServer(rules_file) as u:
        yield u


async def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as s, s.post(url + "/chat/completions", json=body) as r:
        return r.status, dict(r.headers), await r.read()


async def test_client_against_mock_runs_a_tool_loop(url: str) -> None:
    c = OpenAIChatClient(url, "mock-small", breaker=None)
    msgs: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "where is order 10001"}]
    first = await c.chat(msgs)
    assert [(t.id, t.name, t.arguments) for t in first.tool_calls] == [
        ("call_1", "lookup_order", {"order_id": "10001"})
    ]
    assert first.finish_reason == "tool_calls" and first.response_model == "mock-small"
    msgs += [
        first.to_message(),
        {"role": "tool", "tool_call_id": "call_1", "content": '{"order_id": "10001", "status": "shipped"}'},
    ]
    second = await c.chat(msgs)
    assert second.text == "Order 10001 is shipped."
    # the server's model instance has seen this system prompt before: the prompt cache reports it
    assert second.usage.cached_input_tokens == count_tokens(SYSTEM["content"])
    await c.aclose()


async def test_response_shape(url: str) -> None:
    status, headers, raw = await post(url, {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert status == 200 and headers["Content-Type"] == "application/json"
    body = orjson.loads(raw)
    assert body["object"] == "chat.completion" and body["model"] == "m" and body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "I don't know."}
    u = body["usage"]
    assert u["prompt_tokens"] == 1 and u["completion_tokens"] == count_tokens("I don't know.")
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert u["prompt_tokens_details"] == {"cached_tokens": 0}


async def test_stream_sends_chunks_then_usage_then_done(url: str) -> None:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "order 12345 please"}]}
    events = await _sse(url, body)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    calls = [
        d["tool_calls"][0]
        for c in chunks
        if c["choices"]
        for d in [c["choices"][0]["delta"]]
        if "tool_calls" in d
    ]
    assert calls == [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": '{"order_id":"12345"}'},
        }
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0

    text_events = await _sse(url, {"stream": True, "messages": [{"role": "user", "content": "hello there"}]})
    text = "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in map(orjson.loads, text_events[:-1])
        if c["choices"]
    )
    assert text == "I don't know."


async def _sse(url: str, body: dict[str, Any]) -> list[str]:
    async with aiohttp.ClientSession() as s, s.post(url + "/chat/completions", json=body) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        raw = (await r.read()).decode()
    return [block[len("data: ") :] for block in raw.split("\n\n") if block]


async def test_models_health_and_bad_requests(url: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/models") as r:
            assert r.status == 200 and (await r.json())["data"][0]["id"] == "mock"
        async with s.get(url.removesuffix("/v1") + "/health") as r:
            assert r.status == 200 and await r.json() == {"status": "ok"}
        async with s.get(url + "/nope") as r:
            assert r.status == 404 and "no route" in (await r.json())["error"]["message"]
        async with s.post(url + "/chat/completions", data=b"{not json") as r:
            assert r.status == 400 and (await r.json())["error"]["type"] == "invalid_request_error"
    status, _, raw = await post(url, {"model": "m"})
    assert status == 400 and orjson.loads(raw)["error"]["param"] == "messages"
    status, _, raw = await post(url, {"messages": [{"content": "no role"}]})
    assert status == 400 and orjson.loads(raw)["error"]["param"] == "messages[0]"


async def test_injected_faults(rules_file: Path) -> None:
    with MockLLMServer(rules_file, error_rate=1.0) as u:
        status, _, raw = await post(u, {"messages": [{"role": "user", "content": "x"}]})
        assert status == 500 and orjson.loads(raw)["error"]["type"] == "server_error"
    with MockLLMServer(rules_file, rate_limit_rate=1.0, retry_after_s=2) as u:
        status, headers, raw = await post(u, {"messages": [{"role": "user", "content": "x"}]})
        assert status == 429 and headers["Retry-After"] == "2"
        assert orjson.loads(raw)["error"]["code"] == "rate_limit_exceeded"
        c = OpenAIChatClient(u, "m", max_rate_limit_retries=2, backoff_max_s=0.01, breaker=None)
        waits: list[float] = []

        async def sleep(s: float) -> None:  # record the waits the mock asks for, without waiting
            waits.append(s)

        c._sleep = sleep
        with pytest.raises(LLMError) as info:
            await c.chat([{"role": "user", "content": "x"}])
        await c.aclose()
        assert info.value.kind == "rate_limited" and len(info.value.attempts) == 3
        assert waits == [2.0, 2.0]  # Retry-After is honoured in full (not cut to backoff_max_s)


@pytest.mark.parametrize("in_child", [False, True])
async def test_capacity_limit_answers_429_beyond_it(rules_file: Path, in_child: bool) -> None:
    """`--max-concurrent`: a provider that answers so many requests at once and rate-limits the rest."""
    import asyncio

    server = MockLLMServer(rules_file, latency_ms=300, max_concurrent=2, retry_after_s=1, subprocess=in_child)
    with server as u:
        body = {"messages": [{"role": "user", "content": "x"}]}
        answers = await asyncio.gather(*(post(u, body) for _ in range(5)))
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [200, 200, 429, 429, 429]
        limited = next(a for a in answers if a[0] == 429)
        assert limited[1]["Retry-After"] == "1" and b"at most 2 requests at once" in limited[2]
        assert (await post(u, body))[0] == 200  # capacity again once they were answered
    if not in_child:
        assert server.app is not None and server.app.peak == 2 and server.app.throttled == 3


async def test_fault_dice_repeat_with_a_seed(rules_file: Path) -> None:
    async def statuses() -> list[int]:
        with MockLLMServer(rules_file, error_rate=0.3, rate_limit_rate=0.3, seed=42) as u:
            return [(await post(u, {"messages": [{"role": "user", "content": "x"}]}))[0] for _ in range(20)]

    first = await statuses()
    assert first == await statuses()
    assert {200, 429, 500} <= set(first)


async def test_subprocess_mode_with_inline_rules() -> None:
    rules = {"rules": [{"when": {"user": "(?P<n>\\d+)"}, "reply": "got {n}"}]}
    server = MockLLMServer(rules, subprocess=True)
    with server as u:
        assert server.process is not None and server.pid == server.process.pid
        status, _, raw = await post(u, {"messages": [{"role": "user", "content": "number 7"}]})
        assert status == 200 and orjson.loads(raw)["choices"][0]["message"]["content"] == "got 7"
    assert server.process.poll() is not None


def test_cli_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["mock-llm", "--help"])
    assert result.exit_code == 0 and "Example: shipyard mock-llm" in result.output


def test_cli_bad_rules_is_a_clean_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    when: {user: '('}\n    reply: y\n")
    result = CliRunner().invoke(app, ["mock-llm", "--rules", str(bad), "--port", "0"])
    assert result.exit_code == 2
    assert "rules.0.when.user (rule 'x'): not a valid regular expression" in result.output
    assert "Traceback" not in result.output


def test_cli_serves(rules_file: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from shipyard.cli import main; main()",
            "mock-llm",
            "--rules",
            str(rules_file),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    reply = b""
                    while chunk := c.recv(4096):
                        reply += chunk
                    break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("shipyard mock-llm did not start")
        assert reply.startswith(b"HTTP/1.1 200") and b'"id":"mock"' in reply
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0].decode()
    assert f"http://127.0.0.1:{port}/v1" in out


def test_bad_rules_fail_in_the_caller(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rulez: []\n")
    for sub in (False, True):
        with pytest.raises(ConfigError, match="rulez: unknown key"), MockLLMServer(bad, subprocess=sub):
            pass
