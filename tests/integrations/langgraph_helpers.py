"""The project of the LangGraph integration tests: a user's own project written the way a LangGraph
user would (a triage node and a `create_react_agent` subgraph, two chat models, a sync node, a tool
that fails, a human-approval interrupt), wired to Shipyard with its two lines, against the mock LLM
server over loopback. The starter template and what the framework tests share:
framework_helpers.py."""

from __future__ import annotations

from pathlib import Path

from framework_helpers import Project, module_name, write_config

from shipyard.llm import MockLLMServer

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


def user_project(root: Path) -> Project:
    """A user's LangGraph project (USER_AGENT, in a module of its own name, and BYPASS_AGENT beside
    it) and its shipyard.yaml, its model a mock server of USER_RULES."""
    module = module_name("travelgraph")
    (root / "rules.yaml").write_text(USER_RULES)
    mock = MockLLMServer(root / "rules.yaml")
    url = mock.start()
    (root / f"{module}.py").write_text(USER_AGENT)
    (root / f"{module}_bypass.py").write_text(BYPASS_AGENT.format(user=module, url=url))
    entries = {
        "travel": f"{module}:travel",
        "travel-sync": f"{module}:travel_sync",
        "approvals": f"{module}:approvals",
        "plain-model": f"{module}_bypass:plain_model",
        "tool-by-hand": f"{module}_bypass:tool_by_hand",
    }
    cfg = write_config(root, url, entries, model="provider: openai, model: mock, max_retries: 0")
    return Project(root, cfg, mock, module, also=(f"{module}_bypass",))
