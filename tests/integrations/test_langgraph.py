"""LangGraph / LangChain agents through `shipyard.integrations.langgraph`, run for real (langgraph,
langchain-openai) against the mock LLM server over loopback, through the real runtime, eval runner,
CLI and server: the `langgraph` starter template, and a user's own graph with its two lines."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from framework_helpers import (
    Expected,
    Project,
    assert_priced,
    assert_replays_offline,
    assert_served_with_history,
    assert_smoke_suite_and_gate_pass,
    assert_wrong_expectations_fail,
    concurrent_lookups_and_refunds,
    drop_modules,
    forget,
    run_suites,
    scripted_project,
    serve,
    span_names,
    tool_calls,
)
from langgraph_helpers import user_project
from typer.testing import CliRunner

from shipyard.cli import app as cli
from shipyard.errors import ShipyardError
from shipyard.evals import ReplayCache, load_suite
from shipyard.integrations import PROXY_BASE_URL
from shipyard.observe import configure_logging
from shipyard.runtime import Runtime
from shipyard.store import InteractionRecord

TEMPLATE = "langgraph"  # the starter template of the `template` fixture (conftest.py)


@pytest.fixture
def user(tmp_path: Path) -> Iterator[Project]:
    """A user's own LangGraph project with the two-line integration."""
    root = tmp_path / "travel"
    root.mkdir()
    project = user_project(root)
    yield project
    forget(project)


def under(rec: InteractionRecord) -> list[tuple[str, str]]:
    """(span, its parent) for every span but the root, by name."""
    names = {s.span_id: s.name for s in rec.spans}
    return sorted((s.name, names[s.parent_id]) for s in rec.spans if s.parent_id in names)


def assert_traced(rec: InteractionRecord, tools: Expected, model_calls: int) -> None:
    """Completed, with these tool calls (name, arguments, status) and this many priced model calls;
    every span in the interaction's own trace: LangGraph's node runs as `node {name}` spans under
    `invoke_agent` (a subgraph's under its node), each model and tool call under its node's span."""
    assert rec.status == "completed", rec.error
    assert tool_calls(rec) == tools
    assert_priced(rec, model_calls)
    by_id = {s.span_id: s for s in rec.spans}
    [root] = [s for s in rec.spans if s.name.startswith("invoke_agent ")]
    for s in rec.spans:
        if s.name.startswith(("chat ", "execute_tool ")):
            assert by_id[s.parent_id].name.startswith("node "), s.name
        elif s is not root:
            assert s.name.startswith("node ") and (
                s.parent_id == root.span_id or by_id[s.parent_id].name.startswith("node ")
            )


# the starter template ----------------------------------------------------------------------------
async def test_the_template_runs_with_model_and_tool_spans_tokens_and_cost(template: Project) -> None:
    rt = Runtime(template.cfg)
    rec = await rt.invoke("support", "Where is my order 10001?")
    assert_traced(rec, [("lookup_order", {"order_id": "10001"}, "success")], model_calls=2)
    assert rec.output == "Order 10001 is shipped."
    assert span_names(rec) == [
        "chat mock",
        "chat mock",
        "execute_tool lookup_order",
        "invoke_agent support",
        "node model",
        "node model",
        "node tools",
    ]
    assert json.loads(rec.tool_calls[0].result) == {
        "order_id": "10001",
        "status": "shipped",
        "carrier": "UPS",
        "refundable": False,
    }
    # the graph's model really went to the mock, with the bundle's system prompt and the tools
    first = template.requests[0]
    assert (
        first["messages"][0]["role"] == "system"
        and "support agent of Acme" in first["messages"][0]["content"]
    )
    assert sorted(t["function"]["name"] for t in first["tools"]) == ["issue_refund", "lookup_order"]
    rec = await rt.invoke("support", "Please refund order 10002, it arrived broken.")
    assert_traced(
        rec,
        [
            ("lookup_order", {"order_id": "10002"}, "success"),
            ("issue_refund", {"order_id": "10002", "reason": "customer request"}, "success"),
        ],
        model_calls=3,
    )
    await rt.aclose()


def test_the_template_passes_its_smoke_suite_and_its_gate(
    template: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(template.root)
    configure_logging(stream=io.StringIO())  # not the stdout of the first CliRunner, closed after it
    result = CliRunner().invoke(cli, ["run", "support", "Where is my order 10001?"])
    assert result.exit_code == 0, result.output
    assert "Order 10001 is shipped." in result.output
    assert '+-- [Tool Call] lookup_order(order_id="10001")' in result.output
    assert "Model: mock, Tokens: " in result.output and "Cost: $0.0001" in result.output
    assert_smoke_suite_and_gate_pass()


async def test_trajectory_and_must_not_call_fail_when_the_agent_does_otherwise(template: Project) -> None:
    await assert_wrong_expectations_fail(template)


async def test_served_over_chat_completions_after_its_warm_up(template: Project) -> None:
    with serve(template.cfg) as served:
        # the warm-up ran before the server accepted its first connection
        assert '"event":"agent_warmed_up"' in served.logs.getvalue()
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as h:
            # ready; an order question; earlier turns (ctx.history) reach the graph as messages
            await assert_served_with_history(h, template)


async def test_a_recorded_eval_replays_offline_with_the_model_server_stopped(template: Project) -> None:
    await assert_replays_offline(template, cases=4)


async def test_concurrent_interactions_each_get_their_own_spans_and_tool_calls(template: Project) -> None:
    rt = Runtime(template.cfg)
    for rec, order, expected in await concurrent_lookups_and_refunds(rt):
        assert_traced(rec, expected, model_calls=len(expected) + 1)
        assert order in rec.output
    await rt.aclose()


# a user's own project ------------------------------------------------------------------------------
@pytest.mark.parametrize("agent", ["travel", "travel-sync"])
async def test_a_users_own_graph_with_its_two_lines(user: Project, agent: str) -> None:
    rt = Runtime(user.cfg)
    # two models (a sync triage node in a worker thread, a create_react_agent subgraph) and its ToolNode
    rec = await rt.invoke(agent, "What's the weather in Paris?")
    assert_traced(rec, [("get_weather", {"city": "Paris"}, "success")], model_calls=3)
    assert rec.output == "Weather: Paris: 18 C, light rain"
    assert rec.tool_calls[0].result == "Paris: 18 C, light rain"
    assert under(rec) == [  # the subgraph's nodes under the node that runs it
        ("chat mock", "node agent"),
        ("chat mock", "node agent"),
        ("chat mock", "node triage"),
        ("execute_tool get_weather", "node tools"),
        ("node agent", "node travel"),
        ("node agent", "node travel"),
        ("node tools", "node travel"),
        ("node travel", f"invoke_agent {agent}"),
        ("node triage", f"invoke_agent {agent}"),
    ]
    # a tool that raises, turned into an error message by the user's ToolNode(handle_tool_errors=True)
    rec = await rt.invoke(agent, "What's the weather in Atlantis?")
    assert_traced(rec, [("get_weather", {"city": "Atlantis"}, "error")], model_calls=3)
    assert rec.output == "Sorry, no weather for that place."
    assert "no weather station in Atlantis" in (rec.tool_calls[0].error or "")
    # the other branch: one model call, no tool
    rec = await rt.invoke(agent, "Tell me a joke")
    assert_traced(rec, [], model_calls=1)
    assert rec.output == "I only help with travel."
    assert user.agents.RUNS == ["Paris", "Atlantis"]
    await rt.aclose()


async def test_a_users_graph_replays_offline_tool_errors_included(user: Project, tmp_path: Path) -> None:
    suite_file = tmp_path / "travel.yaml"
    suite_file.write_text(
        "name: travel\ncases:\n"
        "  - {id: paris, input: weather in Paris?, expected: 18 C, trajectory: {calls: [{name: get_weather}]}}\n"
        "  - {id: atlantis, input: weather in Atlantis?, expected: Sorry, trajectory: {calls: [{name: get_weather}]}}\n"
        "  - {id: joke, input: a joke please, expected: only help with travel, trajectory: {calls: []}}\n"
    )
    suite = load_suite(suite_file)
    for agent in ("travel", "travel-sync"):
        live = await run_suites(user.cfg, agent, [suite], "record")
        assert live.counts() == {"PASS": 3, "FAIL": 0, "ERROR": 0}, [r.error for r in live.results]
    runs = list(user.agents.RUNS)
    user.mock.stop()
    for agent in ("travel", "travel-sync"):
        replayed = await run_suites(user.cfg, agent, [suite], "replay")
        assert replayed.counts() == {"PASS": 3, "FAIL": 0, "ERROR": 0}, [r.error for r in replayed.results]
        atlantis = next(r for r in replayed.results if r.case_id == "atlantis")
        assert (
            atlantis.tool_calls[0]["status"] == "error"
            and atlantis.output == "Sorry, no weather for that place."
        )
    assert list(user.agents.RUNS) == runs  # no tool ran again


async def test_concurrent_sync_graph_runs_keep_their_own_calls(user: Project) -> None:
    rt = Runtime(user.cfg)
    cities = ["Paris", "Oslo", "Lima", "Cairo", "Quito", "Hanoi"]
    records = await asyncio.gather(
        *(rt.invoke("travel-sync" if i % 2 else "travel", f"weather in {c}?") for i, c in enumerate(cities))
    )
    for rec, city in zip(records, cities, strict=True):
        assert_traced(rec, [("get_weather", {"city": city}, "success")], model_calls=3)
        assert rec.output == f"Weather: {city}: 18 C, light rain"
    assert sorted(user.agents.RUNS) == sorted(cities)
    await rt.aclose()


async def test_a_model_or_tool_that_bypasses_shipyard_is_refused_before_it_runs(user: Project) -> None:
    rt = Runtime(user.cfg)
    rec = await rt.invoke("plain-model", "hello")
    assert rec.status == "failed"
    assert rec.error is not None and "NotThroughShipyard: the graph called ChatOpenAI('gpt-4o')" in rec.error
    assert "chat_model(...)" in rec.error
    assert user.requests == []  # it never reached the model
    rec = await rt.invoke("tool-by-hand", "hello")
    assert rec.status == "failed"
    assert rec.error is not None and "ran the tool 'get_weather' outside a ToolNode" in rec.error
    assert user.agents.RUNS == []  # refused before it ran
    await rt.aclose()


async def test_an_interrupt_escalates_and_the_next_message_resumes(user: Project) -> None:
    rt = Runtime(user.cfg)
    rec = await rt.invoke("approvals", "Lisbon, 3 nights", session_id="trip-1")
    assert rec.status == "escalated" and rec.output == "Approve this trip? Lisbon, 3 nights"
    other = await rt.invoke("approvals", "Rome, 2 nights", session_id="trip-2")
    assert other.status == "escalated" and other.output == "Approve this trip? Rome, 2 nights"
    rec = await rt.invoke("approvals", "yes", session_id="trip-1")
    assert rec.status == "completed" and rec.output == "Trip booked."
    rec = await rt.invoke("approvals", "no", session_id="trip-2")
    assert rec.status == "completed" and rec.output == "Trip cancelled."
    await rt.aclose()


def chat_model(*args: Any, **kwargs: Any) -> Any:
    """`shipyard.integrations.langgraph.chat_model`, imported by the tests that use it (LangChain and
    LangGraph load in seconds), not by every pytest worker collecting this file."""
    from shipyard.integrations.langgraph import chat_model as made

    return made(*args, **kwargs)


# what chat_model promises ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_key": "sk-real"}, "chat_model() sets 'api_key' itself"),
        ({"base_url": "https://api.openai.com/v1"}, "chat_model() sets 'base_url' itself"),
        ({"http_async_client": httpx.AsyncClient()}, "chat_model() sets 'http_async_client' itself"),
        ({"max_retries": 2}, "chat_model(max_retries=...): Shipyard retries and fails over itself"),
        ({"use_responses_api": True}, "Shipyard's model proxy speaks the chat-completions API"),
    ],
)
def test_chat_model_refuses_the_settings_it_owns(kwargs: dict, message: str) -> None:
    with pytest.raises(ShipyardError, match=message.replace("(", r"\(").replace(")", r"\)")):
        chat_model("gpt-4o", **kwargs)


def test_chat_model_takes_the_chatopenai_settings_it_does_not_own() -> None:
    model = chat_model(
        "gpt-4o",
        temperature=0,
        max_tokens=50,
        timeout=30,
        max_retries=0,
        use_responses_api=False,
        metadata={"team": "support"},
    )
    assert (model.model_name, model.temperature, model.max_tokens, model.max_retries) == ("gpt-4o", 0, 50, 0)
    assert model.openai_api_base == PROXY_BASE_URL and model.use_responses_api is False
    assert model.metadata is not None
    assert (model.metadata["team"], model.metadata["shipyard_model_proxy"]) == ("support", True)


async def test_outside_an_interaction_chat_model_calls_nothing(template: Project) -> None:
    import openai  # here, not at the top: not every pytest worker collecting this file needs it

    with pytest.raises(openai.BadRequestError, match="outside a Shipyard interaction"):
        await chat_model().ainvoke("hello")
    assert template.requests == []


# LangSmith -----------------------------------------------------------------------------------------
class _Collector(BaseHTTPRequestHandler):
    """A stand-in LangSmith endpoint on loopback: answers everything, keeps each request path."""

    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.seen.append(f"{self.command} {self.path}")
        body = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


LANGSMITH_AGENTS = """\
from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph

from shipyard.integrations.langgraph import langgraph_agent


def reply(state: MessagesState) -> dict:
    return {"messages": [AIMessage("ok")]}


b = StateGraph(MessagesState)
b.add_node("reply", reply)
b.add_edge(START, "reply")
graph = b.compile()
quiet = langgraph_agent("quiet", graph)
traced = langgraph_agent("traced", graph, langsmith=True)
"""


async def test_langsmith_sends_nothing_unless_the_agent_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.tracers.langchain import wait_for_all_tracers
    from langsmith import utils as ls_utils

    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    _Collector.seen = []
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-test")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", f"http://127.0.0.1:{collector.server_address[1]}")
    ls_utils.get_env_var.cache_clear()
    cfg, module = scripted_project(tmp_path, LANGSMITH_AGENTS, ["quiet", "traced"], "lsagents")
    rt = Runtime(cfg)
    try:
        rec = await rt.invoke("quiet", "hi")
        assert rec.status == "completed" and rec.output == "ok"
        await asyncio.to_thread(wait_for_all_tracers)
        assert _Collector.seen == []
        # the same graph with langsmith=True does send (so the check above can see a send)
        rec = await rt.invoke("traced", "hi")
        assert rec.status == "completed" and rec.output == "ok"
        await asyncio.to_thread(wait_for_all_tracers)
        assert any(s.startswith("POST /runs") for s in _Collector.seen), _Collector.seen
    finally:
        await rt.aclose()
        collector.shutdown()
        monkeypatch.undo()
        ls_utils.get_env_var.cache_clear()
        drop_modules(tmp_path, module)


# what a ToolNode can answer besides text ---------------------------------------------------------
RICH_TOOLS = """\
from typing import Annotated

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command

from shipyard.integrations.langgraph import langgraph_agent

RUNS = []


@tool
def pick(city: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command:
    \"\"\"Pick a city (updates the graph's state).\"\"\"
    RUNS.append("pick")
    return Command(update={"picked": city, "messages": [ToolMessage(f"picked {city}", tool_call_id=tool_call_id)]})


@tool(response_format="content_and_artifact")
def fetch(city: str) -> tuple[str, dict]:
    \"\"\"Fetch a city's facts (text for the model, an artifact for the graph).\"\"\"
    RUNS.append("fetch")
    return f"facts about {city}", {"population": 2_100_000}


class State(MessagesState):
    picked: str


def plan(state: State) -> dict:
    calls = [
        {"name": "pick", "args": {"city": "Paris"}, "id": "call_1"},
        {"name": "fetch", "args": {"city": "Paris"}, "id": "call_2"},
    ]
    return {"messages": [AIMessage("", tool_calls=calls)]}


def answer(state: State) -> dict:
    fetched = next(m for m in state["messages"] if getattr(m, "name", None) == "fetch")
    return {"messages": [AIMessage(f"{state['picked']}: {fetched.content}, {fetched.artifact}")]}


b = StateGraph(State)
b.add_node("plan", plan)
b.add_node("tools", ToolNode([pick, fetch]))
b.add_node("answer", answer)
b.add_edge(START, "plan")
b.add_edge("plan", "tools")
b.add_edge("tools", "answer")
rich = langgraph_agent("rich", b.compile())
"""


async def test_a_tool_answering_a_command_or_an_artifact_replays_the_same(tmp_path: Path) -> None:
    cfg, module = scripted_project(tmp_path, RICH_TOOLS, ["rich"], "richtools")
    rt = Runtime(cfg)
    path = tmp_path / "replay.jsonl"
    try:
        recording = ReplayCache(path, "record")
        live = await rt.invoke("rich", "go", interceptor=recording.scope("case/t0"))
        recording.close()
        assert live.status == "completed", live.error
        assert live.output == "Paris: facts about Paris, {'population': 2100000}"
        assert [(t.name, t.status) for t in live.tool_calls] == [("pick", "success"), ("fetch", "success")]
        runs = list(sys.modules[module].RUNS)
        replaying = ReplayCache(path, "replay")
        replayed = await rt.invoke("rich", "go", interceptor=replaying.scope("case/t0"))
        assert replayed.status == "completed", replayed.error
        assert replayed.output == live.output and replayed.metadata["replayed"] is True
        assert sys.modules[module].RUNS == runs == ["pick", "fetch"]  # no tool ran again
    finally:
        await rt.aclose()
        drop_modules(tmp_path, module)
