"""Adapters: an HTTP agent against a real loopback server, and a chat model as the agent."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from shipyard.agents import (
    ADAPTERS,
    AgentContext,
    AgentResult,
    DefaultFlags,
    HttpAgent,
    adapter_spec,
    http_agent,
    openai_chat_agent,
)
from shipyard.config import AdapterConfig, load_config
from shipyard.errors import ConfigError, EntryPointError
from shipyard.llm import ScriptedModel, parse_rules
from shipyard.observe import semconv as sc
from shipyard.runtime import Runtime
from shipyard.tools import ToolRegistry

_modules = itertools.count()

seen: list[dict[str, Any]] = []


async def agent(request: Request) -> Response:
    body = await request.json()
    seen.append({"body": body, "auth": request.headers.get("authorization")})
    text = body.get("message", "")
    state = "handoff" if "human" in text else "ok"
    return JSONResponse(
        {
            "data": {"answer": f"echo: {text}", "steps": [{"tool": "lookup"}]},
            "state": state,
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
        }
    )


async def boom(request: Request) -> Response:
    return PlainTextResponse("internal kaboom", status_code=500)


async def text(request: Request) -> Response:
    return PlainTextResponse("<html>not json</html>", media_type="text/html")


async def nofield(request: Request) -> Response:
    return JSONResponse({"result": "x", "status": "ok"})


async def slow(request: Request) -> Response:
    await asyncio.sleep(2)
    return JSONResponse({"output": "late"})


ROUTES = [Route(f"/{fn.__name__}", fn, methods=["POST"]) for fn in (agent, boom, text, nofield, slow)]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A starlette app under uvicorn in a thread on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(Starlette(routes=ROUTES), lifespan="off", log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)
    sock.close()


def ctx(session: str = "s-1", **kw: Any) -> AgentContext:
    return AgentContext(
        llm=kw.pop("llm", None),
        tools=ToolRegistry(),  # type: ignore[arg-type]  # the adapters never call tools
        prompts=kw.pop("prompts", None),
        flags=DefaultFlags(),
        session_id=session,
        **kw,
    )


def cfg(url: str, **kw: Any) -> AdapterConfig:
    return AdapterConfig(kind="http", url=url, **kw)


async def test_http_agent_posts_input_and_reads_a_dotted_output(server: str) -> None:
    spec = http_agent(
        cfg(
            f"{server}/agent",
            input_field="message",
            session_field="conversation",
            output_field="data.answer",
            status_field="state",
        ),
        "remote",
    )
    assert spec.name == "remote" and spec.is_async
    result = await spec("where is my order?", ctx("s-42"))
    assert isinstance(result, AgentResult)
    assert (result.output, result.status) == ("echo: where is my order?", "completed")
    assert seen[-1]["body"] == {"message": "where is my order?", "conversation": "s-42"}
    assert result.metadata["http_status"] == 200 and result.metadata["latency_ms"] > 0
    assert result.metadata["usage"] == {"input_tokens": 12, "output_tokens": 5, "cached_input_tokens": 4}
    assert result.metadata["remote_status"] == "ok"
    escalated = await spec("I want a human", ctx())
    assert escalated.status == "escalated"


async def test_output_that_is_not_text_is_json_and_list_paths_work(server: str) -> None:
    spec = http_agent(cfg(f"{server}/agent", input_field="message", output_field="data.steps.0"), "r")
    assert (await spec("x", ctx())).output == '{"tool": "lookup"}'


async def test_http_500_is_a_failed_result(server: str) -> None:
    result = await http_agent(cfg(f"{server}/boom"), "remote")("hi", ctx())
    assert result.status == "failed" and result.metadata["error_kind"] == "http_error"
    assert "answered HTTP 500: internal kaboom" in result.output and f"{server}/boom" in result.output


async def test_missing_output_field_is_a_failed_result(server: str) -> None:
    result = await http_agent(cfg(f"{server}/nofield", output_field="data.answer"), "remote")("hi", ctx())
    assert result.status == "failed" and result.metadata["error_kind"] == "bad_response"
    assert "without the field 'data.answer' (it has: result, status)" in result.output


async def test_non_json_is_a_failed_result(server: str) -> None:
    result = await http_agent(cfg(f"{server}/text"), "remote")("hi", ctx())
    assert result.status == "failed" and "not JSON (text/html" in result.output


async def test_timeout_and_unreachable(server: str) -> None:
    result = await http_agent(cfg(f"{server}/slow", timeout_s=0.2), "remote")("hi", ctx())
    assert result.status == "failed" and result.metadata["error_kind"] == "timeout"
    assert "did not answer within 0.2s" in result.output
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    result = await http_agent(cfg(f"http://127.0.0.1:{port}/x"), "remote")("hi", ctx())
    assert result.status == "failed" and result.metadata["error_kind"] == "unavailable"
    assert "cannot be reached" in result.output


async def test_headers_take_secrets_from_the_environment(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = cfg(
        f"{server}/agent",
        input_field="message",
        output_field="data.answer",
        headers={"Authorization": "Bearer ${REMOTE_AGENT_TOKEN}"},
    )
    monkeypatch.delenv("REMOTE_AGENT_TOKEN", raising=False)
    result = await http_agent(c, "remote")("hi", ctx())
    assert result.status == "failed" and "REMOTE_AGENT_TOKEN, which is not set" in result.output
    monkeypatch.setenv("REMOTE_AGENT_TOKEN", "t0k")
    result = await http_agent(c, "remote")("hi", ctx())
    assert result.status == "completed" and seen[-1]["auth"] == "Bearer t0k"


async def test_one_pooled_client_per_loop(server: str) -> None:
    spec = http_agent(cfg(f"{server}/agent", input_field="message", output_field="data.answer"), "r")
    adapter = spec.fn
    assert isinstance(adapter, HttpAgent)
    results = await asyncio.gather(*(spec(f"q{i}", ctx()) for i in range(20)))
    assert [r.output for r in results] == [f"echo: q{i}" for i in range(20)]
    first = adapter.client()
    await spec("again", ctx())
    assert adapter.client() is first
    await adapter.aclose()
    assert first.is_closed


RULES = {
    "default": "no rule matched",
    "rules": [
        {"when": {"system": "Acme", "user": "refund"}, "reply": "Acme refunds take 5 days."},
        {"when": {"user": "refund"}, "reply": "no system prompt"},
    ],
}


async def test_openai_chat_agent_sends_system_history_and_user() -> None:
    model = ScriptedModel(parse_rules(RULES))
    spec = openai_chat_agent("chat")
    history = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    result = await spec(
        "how long does a refund take?",
        ctx(llm=model, history=history, system_prompt="You help Acme customers."),
    )
    assert (result.output, result.status) == ("Acme refunds take 5 days.", "completed")
    assert result.metadata["model"] == "scripted"
    bare = await spec("refund?", ctx(llm=model))
    assert bare.output == "no system prompt"


async def test_openai_chat_agent_with_empty_reply_fails() -> None:
    model = ScriptedModel(parse_rules({"default": ""}))
    result = await openai_chat_agent("chat")("hi", ctx(llm=model))
    assert result.status == "failed" and result.metadata["error_kind"] == "empty_response"


def test_adapter_spec_dispatches_by_kind() -> None:
    assert set(ADAPTERS) == {"http", "openai_chat"}
    assert isinstance(adapter_spec(cfg("http://127.0.0.1:1/x"), "a").fn, HttpAgent)
    chat = adapter_spec(AdapterConfig(kind="openai_chat"), "b")
    assert chat.name == "b" and chat.is_async and not isinstance(chat.fn, HttpAgent)


# through the runtime: usage priced, tools passed through ------------------------------------------
CHAT_AGENT = """\
from shipyard.agents import openai_chat_agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()


@tools.tool()
def lookup(order_id: str) -> dict:
    \"\"\"Find an order.\"\"\"
    return {"order_id": order_id, "status": "shipped"}


chat = openai_chat_agent("chat", tools=tools)
looping = openai_chat_agent("looping", tools=tools, max_rounds=3)
"""

CHAT_RULES = """\
default: "I can only look up orders."
rules:
  - name: loop
    when: {user: forever}
    tool_calls: [{name: lookup, arguments: {order_id: "1"}}]
  - name: answer
    when: {last_tool: lookup}
    reply: "Order {result[order_id]} is {result[status]}."
  - name: lookup
    when: {user: 'order (?P<id>\\d+)', fresh: true, tools_available: [lookup]}
    tool_calls: [{name: lookup, arguments: {order_id: "{id}"}}]
"""


def runtime_for(tmp_path: Path, agents: str) -> Runtime:
    module = f"chatagents{next(_modules)}"
    (tmp_path / f"{module}.py").write_text(CHAT_AGENT)
    (tmp_path / "rules.yaml").write_text(CHAT_RULES)
    (tmp_path / "shipyard.yaml").write_text(
        "models:\n  scripted:\n    provider: scripted\n    rules: rules.yaml\n"
        "    prices: {input: 1.0, cached_input: 0.5, output: 2.0}\n"
        "agents:\n" + agents.replace("MODULE", module)
    )
    return Runtime(load_config(tmp_path / "shipyard.yaml"))


async def test_http_agent_usage_is_priced_on_the_record_and_the_root_span(
    server: str, tmp_path: Path
) -> None:
    rt = runtime_for(
        tmp_path,
        "  remote:\n    model: {name: scripted}\n"
        f"    adapter: {{kind: http, url: '{server}/agent', input_field: message, output_field: data.answer}}\n",
    )
    rec = await rt.invoke("remote", "hi")
    assert rec.status == "completed" and rec.output == "echo: hi"
    assert (rec.input_tokens, rec.output_tokens, rec.cached_input_tokens) == (12, 5, 4)
    assert rec.cost_usd == pytest.approx(((12 - 4) * 1.0 + 4 * 0.5 + 5 * 2.0) / 1e6)
    [root] = [s for s in rec.spans if s.name == "invoke_agent remote"]
    assert root.attributes[sc.INPUT_TOKENS] == 12 and root.attributes[sc.OUTPUT_TOKENS] == 5
    assert root.attributes[sc.COST_USD] == pytest.approx(rec.cost_usd)


async def test_openai_chat_agent_runs_its_tools_until_the_model_answers(tmp_path: Path) -> None:
    rt = runtime_for(
        tmp_path,
        "  chat: {entry: 'MODULE:chat', model: {name: scripted}}\n"
        "  looping: {entry: 'MODULE:looping', model: {name: scripted}}\n",
    )
    rec = await rt.invoke("chat", "where is order 12345?")
    assert rec.status == "completed" and rec.output == "Order 12345 is shipped."
    assert [(t.name, t.arguments, t.status) for t in rec.tool_calls] == [
        ("lookup", {"order_id": "12345"}, "success")
    ]
    assert len(rec.llm_calls) == 2 and rec.metadata["rounds"] == 2
    assert rec.llm_calls[0].tool_calls == ["lookup"]
    # a model that never stops calling tools is stopped after max_rounds model calls
    rec = await rt.invoke("looping", "forever")
    assert rec.status == "failed" and rec.metadata["error_kind"] == "too_many_tool_rounds"
    assert len(rec.llm_calls) == 3 and len(rec.tool_calls) == 3
    assert "still calling tools after 3 model calls" in rec.output


def test_openai_chat_agent_needs_one_round() -> None:
    with pytest.raises(ValueError, match="max_rounds must be at least 1"):
        openai_chat_agent("x", max_rounds=0)


async def test_openai_chat_adapter_in_shipyard_yaml_runs_the_tools_it_names(tmp_path: Path) -> None:
    """`adapter: {kind: openai_chat, tools: module:registry}`: the model is the agent, with the
    project's tools passed through and run, and the tools are part of the version id."""
    rt = runtime_for(
        tmp_path,
        "  bot:\n    model: {name: scripted}\n    adapter: {kind: openai_chat, tools: 'MODULE:tools'}\n"
        "  plain:\n    model: {name: scripted}\n    adapter: {kind: openai_chat}\n",
    )
    rec = await rt.invoke("bot", "where is order 777?")
    assert rec.status == "completed" and rec.output == "Order 777 is shipped."
    assert [(t.name, t.arguments, t.status) for t in rec.tool_calls] == [
        ("lookup", {"order_id": "777"}, "success")
    ]
    plain = await rt.invoke("plain", "where is order 777?")  # no tools offered: the model cannot look
    assert plain.output == "I can only look up orders." and plain.tool_calls == []
    bot, other = rt.resolve_version("bot"), rt.resolve_version("plain")
    assert bot.components["tools"] != other.components["tools"]
    assert bot.components["code"] != other.components["code"]  # the tools' module is the bot's code


@pytest.mark.parametrize(
    ("adapter", "message"),
    [
        ("{kind: http, url: 'http://x/agent', tools: 'm:tools'}", "runs its tools itself"),
        ("{kind: openai_chat, url: 'http://x/agent'}", "takes no url"),
        ("{kind: openai_chat, tools: 'not a ref'}", "package.module:registry"),
    ],
)
def test_adapter_settings_that_would_do_nothing_are_config_errors(
    tmp_path: Path, adapter: str, message: str
) -> None:
    (tmp_path / "rules.yaml").write_text(CHAT_RULES)
    (tmp_path / "shipyard.yaml").write_text(
        "models:\n  scripted: {provider: scripted, rules: rules.yaml}\n"
        f"agents:\n  bot:\n    model: {{name: scripted}}\n    adapter: {adapter}\n"
    )
    with pytest.raises(ConfigError, match=message) as e:
        load_config(tmp_path / "shipyard.yaml")
    assert "line 6" in str(e.value)  # the adapter line


def test_openai_chat_tools_that_are_not_tools_are_named(tmp_path: Path) -> None:
    rt = runtime_for(
        tmp_path,
        "  bot:\n    model: {name: scripted}\n    adapter: {kind: openai_chat, tools: 'MODULE:chat'}\n",
    )
    with pytest.raises(EntryPointError, match="not a set of tools"):
        rt.resolve_version("bot")
    rt = runtime_for(
        tmp_path,
        "  bot:\n    model: {name: scripted}\n    adapter: {kind: openai_chat, tools: 'MODULE:nope'}\n",
    )
    with pytest.raises(EntryPointError, match="has no attribute 'nope'"):
        rt.resolve_version("bot")


def test_a_tools_module_that_cannot_be_imported_is_named_as_the_tools_setting(tmp_path: Path) -> None:
    rt = runtime_for(
        tmp_path,
        "  bot:\n    model: {name: scripted}\n    adapter: {kind: openai_chat, tools: 'nosuchtools:tools'}\n",
    )
    with pytest.raises(EntryPointError, match="no module named 'nosuchtools'") as e:
        rt.resolve_version("bot")
    assert e.value.hint is not None and e.value.hint.startswith("check the module name in `tools:`")
