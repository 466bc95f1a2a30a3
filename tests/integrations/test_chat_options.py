"""Request options (`ChatOptions`) through every client: the scripted model honours what it can,
the HTTP client sends them, a fallback chain forwards them, and record/replay keys include them."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from proxy_project import RULES, ProxyProject

from shipyard.evals import ReplayCache
from shipyard.llm import (
    ChatResponse,
    FallbackClient,
    LLMError,
    MockLLMServer,
    OpenAIChatClient,
    ScriptedModel,
    parse_rules,
)
from shipyard.tools import ToolResult

USER = [{"role": "user", "content": "where is order 12345?"}]
TWO_CALLS = {
    "default": "Hello there. How can I help?",
    "rules": [
        {
            "when": {"user": "both"},
            "tool_calls": [{"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}],
        }
    ],
}


async def test_the_scripted_model_honours_tool_choice_parallel_calls_and_stop() -> None:
    m = ScriptedModel(parse_rules(RULES))
    assert [c.name for c in (await m.chat(USER)).tool_calls] == ["lookup_order"]
    none = await m.chat(USER, tool_choice="none")
    assert (
        none.tool_calls == [] and none.text == "I can only look up orders." and none.finish_reason == "stop"
    )
    forced = await m.chat(
        [{"role": "user", "content": "hi"}], tool_choice={"type": "function", "function": {"name": "x"}}
    )
    assert [(c.name, c.arguments) for c in forced.tool_calls] == [("x", {})]
    required = await m.chat(USER, tool_choice="required")
    assert [c.name for c in required.tool_calls] == ["lookup_order"]
    auto = await m.chat(USER, tool_choice="auto", seed=3, temperature=0.0, response_format={"type": "text"})
    assert [c.name for c in auto.tool_calls] == ["lookup_order"]
    two = ScriptedModel(parse_rules(TWO_CALLS))
    both = [{"role": "user", "content": "both"}]
    assert [c.name for c in (await two.chat(both)).tool_calls] == ["a", "b"]
    assert [c.name for c in (await two.chat(both, parallel_tool_calls=False)).tool_calls] == ["a"]
    stopped = await two.chat([{"role": "user", "content": "x"}], stop=["?", "."])
    assert stopped.text == "Hello there" and stopped.finish_reason == "stop"
    with pytest.raises(LLMError, match="tool_choice must be"):
        await m.chat(USER, tool_choice="sometimes")


def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


async def test_a_fallback_chain_forwards_the_options() -> None:
    server = MockLLMServer(RULES)
    url = server.start()
    dead = OpenAIChatClient(refused_url(), "dead", max_retries=0, breaker=None)
    chain = FallbackClient([dead, OpenAIChatClient(url, "mock", breaker=None)])
    try:
        resp = await chain.chat(USER, seed=11, stop="x", tool_choice="none", top_p=0.5)
    finally:
        await chain.aclose()
        server.stop()
    assert [a.outcome for a in resp.attempts] == ["connect_error", "ok"]
    assert resp.model == "mock" and resp.tool_calls == []  # tool_choice "none" reached the scripted model
    assert server.app is not None
    [sent] = server.app.recent
    assert (sent["seed"], sent["stop"], sent["tool_choice"], sent["top_p"]) == (11, "x", "none", 0.5)


async def test_the_mock_records_what_the_client_sent() -> None:
    server = MockLLMServer(RULES)
    url = server.start()
    client = OpenAIChatClient(url, "mock", breaker=None)
    try:
        await client.chat(USER, seed=11, stop=["x"], max_tokens=None, parallel_tool_calls=False)
    finally:
        await client.aclose()
        server.stop()
    assert server.app is not None
    [sent] = server.app.recent
    assert sent["seed"] == 11 and sent["stop"] == ["x"] and sent["parallel_tool_calls"] is False
    assert "max_tokens" not in sent and "temperature" not in sent  # None is "not set"


class Capture:
    """A CallInterceptor that keeps each model request it sees and lets the call through."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def llm_call(
        self, request: dict[str, Any], call: Callable[[], Awaitable[ChatResponse]]
    ) -> tuple[ChatResponse, bool]:
        self.requests.append(request)
        return await call(), False

    async def tool_call(
        self, name: str, arguments: dict[str, Any], call: Callable[[], Awaitable[ToolResult]]
    ) -> tuple[ToolResult, bool]:
        return await call(), False


async def test_replay_keys_include_options_and_keep_their_old_form_without(
    make_project: Callable[..., ProxyProject], tmp_path: Path
) -> None:
    p = make_project()
    capture = Capture()
    await p.rt.invoke("proxied", "hello", interceptor=capture)
    # no option set: the request has the keys recordings made before options existed have
    assert set(capture.requests[0]) == {"messages", "tools", "temperature", "max_tokens"}
    await p.rt.invoke("proxied", "hello", interceptor=capture, metadata={"options": {"seed": 1}})
    assert capture.requests[1]["seed"] == 1

    path = tmp_path / "rec.jsonl"
    cache = ReplayCache(path, "record")
    await p.rt.invoke("proxied", "hello", interceptor=cache.scope("c"), metadata={"options": {"seed": 1}})
    cache.close()
    same = await p.rt.invoke(
        "proxied",
        "hello",
        interceptor=ReplayCache(path, "replay").scope("c"),
        metadata={"options": {"seed": 1}},
    )
    assert same.metadata.get("replayed") is True and same.status == "completed"
    other = await p.rt.invoke(
        "proxied",
        "hello",
        interceptor=ReplayCache(path, "replay").scope("c"),
        metadata={"options": {"seed": 2}},
    )
    assert other.output.startswith("500 InternalServerError") and "replay" in other.output
