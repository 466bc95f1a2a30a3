"""Projects of the LangGraph integration tests: the `langgraph` starter template, and a user's own
project written the way a LangGraph user would (a triage node and a `create_react_agent` subgraph,
two chat models, a sync node, a tool that fails, a human-approval interrupt), each wired to Shipyard
with its two lines, against the mock LLM server over loopback."""

from __future__ import annotations

import io
import itertools
import socket
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from typer.testing import CliRunner
from waiting import wait_until

from shipyard.cli import app as cli
from shipyard.config import ShipyardConfig, load_config
from shipyard.server import create_app, uvicorn_config

_counter = itertools.count()

USER_RULES = """\
default: "I can only help with travel."
rules:
  - name: triage-travel
    when: {system: '(?i)triage', user: '(?i)weather|flight|trip'}
    reply: travel
  - name: triage-other
    when: {system: '(?i)triage'}
    reply: other
  - name: weather-failed
    when: {last_tool: get_weather, tool_result: '^Error'}
    reply: "Sorry, no weather for that place."
  - name: weather
    when: {last_tool: get_weather}
    reply: "Weather: {result}"
  - name: ask-weather
    when: {user: '(?i)weather in (?P<city>\\w+)', fresh: true}
    tool_calls: [{name: get_weather, arguments: {city: "{city}"}}]
"""

# A user's own project: plain LangGraph, plus `chat_model` for each model and `langgraph_agent`.
USER_AGENT = '''\
from langchain_core.messages import AIMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, create_react_agent
from langgraph.types import interrupt

from shipyard.integrations.langgraph import chat_model, langgraph_agent

RUNS = []   # every real run of a tool


@tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    RUNS.append(city)
    if city.lower() == "atlantis":
        raise LookupError(f"no weather station in {city}")
    return f"{city}: 18 C, light rain"


class State(MessagesState):
    route: str


triage_model = chat_model("gpt-4o-mini")
travel_agent = create_react_agent(
    chat_model("gpt-4o", temperature=0),
    ToolNode([get_weather], handle_tool_errors=True),
    prompt="You are a travel assistant.",
)


def triage(state: State) -> dict:   # a sync node: LangGraph runs it in a worker thread
    verdict = triage_model.invoke([SystemMessage("Triage: answer travel or other."), state["messages"][-1]])
    return {"route": verdict.text.strip()}


def decline(state: State) -> dict:
    return {"messages": [AIMessage("I only help with travel.")]}


builder = StateGraph(State)
builder.add_node("triage", triage)
builder.add_node("travel", travel_agent)
builder.add_node("decline", decline)
builder.add_edge(START, "triage")
builder.add_conditional_edges("triage", lambda s: s["route"], {"travel": "travel", "other": "decline"})
graph = builder.compile()

travel = langgraph_agent("travel", graph)
travel_sync = langgraph_agent("travel-sync", graph, sync=True)


def approve(state: MessagesState) -> dict:   # LangGraph's human in the loop
    answer = interrupt(f"Approve this trip? {state['messages'][-1].text}")
    return {"messages": [AIMessage(f"Trip {'booked' if answer == 'yes' else 'cancelled'}.")]}


approvals_builder = StateGraph(MessagesState)
approvals_builder.add_node("approve", approve)
approvals_builder.add_edge(START, "approve")
approvals = langgraph_agent("approvals", approvals_builder.compile(checkpointer=InMemorySaver()))
'''

# What a user might write by mistake: a model and a tool that would bypass Shipyard.
BYPASS_AGENT = """\
from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph

from shipyard.integrations.langgraph import langgraph_agent
from {user} import get_weather

plain = ChatOpenAI(model="gpt-4o", base_url="{url}", api_key="unused", max_retries=0)


async def ask(state: MessagesState) -> dict:
    return {{"messages": [await plain.ainvoke(state["messages"])]}}


async def by_hand(state: MessagesState) -> dict:
    return {{"messages": [AIMessage(await get_weather.ainvoke({{"city": "Paris"}}))]}}


def one_node(fn):
    b = StateGraph(MessagesState)
    b.add_node("only", fn)
    b.add_edge(START, "only")
    return b.compile()


plain_model = langgraph_agent("plain-model", one_node(ask))
tool_by_hand = langgraph_agent("tool-by-hand", one_node(by_hand))
"""


def init_template(folder: Path) -> None:
    """`shipyard init --template langgraph` into `folder`, through the real CLI."""
    result = CliRunner().invoke(cli, ["init", str(folder), "--template", "langgraph"])
    assert result.exit_code == 0, result.output
    assert "shipyard mock-llm --rules rules/support.yaml &" in result.output  # NEXT.txt


def point_at_mock(folder: Path, mock_url: str) -> ShipyardConfig:
    """The template's config with its model at the test's mock server instead of port 8100."""
    path = folder / "shipyard.yaml"
    text = path.read_text()
    assert "base_url: http://127.0.0.1:8100/v1" in text
    path.write_text(text.replace("http://127.0.0.1:8100/v1", mock_url))
    return load_config(path)


@dataclass
class UserProject:
    cfg: ShipyardConfig
    module: str

    @property
    def runs(self) -> list[str]:
        """The real runs of the project's tool."""
        return sys.modules[self.module].RUNS  # type: ignore[no-any-return]


def write_user_project(folder: Path, mock_url: str) -> UserProject:
    """A user's LangGraph project (USER_AGENT, in a module of its own name) and its shipyard.yaml,
    its model at `mock_url` (a mock server of USER_RULES)."""
    module = f"travelgraph{next(_counter)}"
    (folder / f"{module}.py").write_text(USER_AGENT)
    (folder / f"{module}_bypass.py").write_text(BYPASS_AGENT.format(user=module, url=mock_url))
    agents = {
        "travel": f"{module}:travel",
        "travel-sync": f"{module}:travel_sync",
        "approvals": f"{module}:approvals",
        "plain-model": f"{module}_bypass:plain_model",
        "tool-by-hand": f"{module}_bypass:tool_by_hand",
    }
    (folder / "shipyard.yaml").write_text(
        textwrap.dedent(f"""\
        models:
          mock:
            provider: openai
            model: mock
            base_url: {mock_url}
            max_retries: 0
            prices: {{input: 1.0, output: 2.0}}
        agents:
        """)
        + "".join(
            f"  {name}: {{entry: '{entry}', model: {{name: mock}}}}\n" for name, entry in agents.items()
        )
    )
    return UserProject(load_config(folder / "shipyard.yaml"), module)


@dataclass
class Served:
    url: str
    logs: io.StringIO


@contextmanager
def serve(cfg: ShipyardConfig) -> Iterator[Served]:
    """The project's app (`shipyard serve`'s) on uvicorn in a thread, on a free loopback port."""
    logs = io.StringIO()
    app = create_app(cfg, log_stream=logs)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, cfg.server, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), "the server to start")
        assert server.started, "the server did not start"
        yield Served(f"http://127.0.0.1:{port}", logs)
    finally:
        server.should_exit = True
        thread.join(30)


def forget(*modules: str) -> None:
    """Drop a test's agent modules, so the next test imports its own."""
    for name in modules:
        sys.modules.pop(name, None)


def span_names(rec: Any) -> list[str]:
    return sorted(s.name for s in rec.spans)
