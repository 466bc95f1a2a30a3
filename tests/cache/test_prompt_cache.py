"""Provider prompt caches: a stable prefix (tools sorted by name), the providers' cache hints, and
the cached-read tokens a provider reports reaching usage, the record and the span."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import load_config
from shipyard.llm import MockLLMServer, OpenAIChatClient
from shipyard.observe import semconv as sc
from shipyard.runtime import Runtime


def tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": name, "parameters": {"type": "object"}},
    }


@pytest.fixture(scope="module")
def mock() -> Iterator[MockLLMServer]:
    server = MockLLMServer({"prompt_cache": True, "default": "ok"})
    server.start()
    yield server
    server.stop()


async def test_openai_hints_a_stable_prefix(mock: MockLLMServer) -> None:
    client = OpenAIChatClient(mock.url, "m", prompt_cache="openai", breaker=None)
    assert mock.app is not None
    system = {"role": "system", "content": "You help customers."}
    await client.chat([system, {"role": "user", "content": "a"}], tools=[tool("b_tool"), tool("a_tool")])
    first = mock.app.recent[-1]
    await client.chat([system, {"role": "user", "content": "b"}], tools=[tool("a_tool"), tool("b_tool")])
    second = mock.app.recent[-1]
    assert [t["function"]["name"] for t in first["tools"]] == ["a_tool", "b_tool"]
    assert first["prompt_cache_key"] == second["prompt_cache_key"]  # the same prefix, whatever the order
    other = {"role": "system", "content": "You help other customers."}
    await client.chat([other, {"role": "user", "content": "a"}])
    assert mock.app.recent[-1]["prompt_cache_key"] != first["prompt_cache_key"]
    await client.aclose()


async def test_anthropic_style_breakpoints(mock: MockLLMServer) -> None:
    client = OpenAIChatClient(mock.url, "m", prompt_cache="anthropic", breaker=None)
    assert mock.app is not None
    await client.chat(
        [{"role": "system", "content": "Rules."}, {"role": "user", "content": "hi"}],
        tools=[tool("z"), tool("y")],
    )
    sent = mock.app.recent[-1]
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}
    ]
    assert [t["function"]["name"] for t in sent["tools"]] == ["y", "z"]
    assert (
        sent["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        and "cache_control" not in sent["tools"][0]
    )
    assert "prompt_cache_key" not in sent
    await client.aclose()


async def test_no_hints_sends_the_request_as_it_is(mock: MockLLMServer) -> None:
    client = OpenAIChatClient(mock.url, "m", breaker=None)
    assert mock.app is not None
    await client.chat([{"role": "user", "content": "hi"}], tools=[tool("z"), tool("y")])
    sent = mock.app.recent[-1]
    assert "prompt_cache_key" not in sent and [t["function"]["name"] for t in sent["tools"]] == ["z", "y"]
    await client.aclose()


def test_the_setting_auto_hints_openai_only(tmp_path: Path) -> None:
    def style(model: str, cache: str = "") -> str:
        (tmp_path / "shipyard.yaml").write_text(f"models:\n  m:\n{model}{cache}")
        cfg = load_config(tmp_path / "shipyard.yaml")
        # imported here, not at collection: the module registers the built-in providers, which must
        # happen through the plugin loader (tests/plugins checks who registered them)
        from shipyard.llm._providers import prompt_cache_style

        return prompt_cache_style(cfg.models["m"].settings, cfg)

    assert style("    base_url: https://api.openai.com/v1\n") == "openai"
    assert style("    base_url: http://127.0.0.1:8100/v1\n") == "none"
    assert style("    base_url: http://gw.local/v1\n    prompt_cache: anthropic\n") == "anthropic"
    assert style("    base_url: https://api.openai.com/v1\n", "cache:\n  prompt_cache: false\n") == "none"


async def test_cached_tokens_reach_usage_the_record_and_the_span(desk: Any, mock: MockLLMServer) -> None:
    make, _ = desk
    cfg = make(extra="")
    text = (
        (cfg.root / "shipyard.yaml")
        .read_text()
        .replace("model: {name: scripted}", "model: {name: mocked}", 1)
        .replace(
            "models:\n",
            f"models:\n  mocked: {{provider: openai, base_url: '{mock.url}', prompt_cache: openai}}\n",
            1,
        )
    )
    (cfg.root / "shipyard.yaml").write_text(text)
    rt = Runtime(load_config(cfg.root / "shipyard.yaml"))
    await rt.invoke("desk", "hello")
    second = await rt.invoke("desk", "hello again")
    assert second.cached_input_tokens > 0 and second.llm_calls[0].cached_input_tokens > 0
    (chat,) = [s for s in second.spans if s.name.startswith("chat ")]
    assert chat.attributes[sc.CACHE_READ_TOKENS] == second.cached_input_tokens
    await rt.aclose()
