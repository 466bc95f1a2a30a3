"""The project of the Google ADK integration tests: a user's own project written the way an ADK user
would (a root LlmAgent on `LiteLlm("openai/gpt-4.1")` with its own endpoint, a sub-agent on an
Anthropic LiteLLM model reached by agent transfer, an `AgentTool` on a Gemini model name, a tool that
raises, a guard callback of the user's, their own Runner), wired to Shipyard with its one line,
against the mock LLM server over loopback. The starter template and what the framework tests share:
framework_helpers.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework_helpers import Project, module_name, write_config

from shipyard.llm import MockLLMServer

USER_RULES = """\
default: "I can check the weather, translate, or book a flight."
rules:
  - name: weather-refused
    when: {last_tool: get_weather, tool_result: '"error"'}
    reply: "Sorry: {result[error]}"
  - name: weather
    when: {last_tool: get_weather}
    reply: "Weather in {result[city]}: {result[sky]}, {result[celsius]} C"
  - name: ask-weather
    when: {user: '(?i)weather in (?P<city>\\w+)', fresh: true}
    tool_calls: [{name: get_weather, arguments: {city: "{city}"}}]
  - name: translated
    when: {last_tool: translator}
    reply: "In French: {result[result]}"
  - name: translate-it
    when: {system: 'You translate into French'}
    reply: "Bonjour"
  - name: ask-translation
    when: {user: '(?i)translate (?P<text>.+)', fresh: true}
    tool_calls: [{name: translator, arguments: {request: "{text}"}}]
  - name: booked
    when: {last_tool: book_flight}
    reply: "Booked your flight to {result[booked]}."
  - name: book-it
    when: {system: 'You book flights', user: 'transfer_to_agent'}
    tool_calls: [{name: book_flight, arguments: {city: "Lisbon"}}]
  - name: to-bookings
    when: {user: '(?i)\\bbook\\b', fresh: true, tools_available: [transfer_to_agent]}
    tool_calls: [{name: transfer_to_agent, arguments: {agent_name: bookings}}]
"""

# A user's own project: plain ADK, plus one `adk_agent(...)` line.
USER_AGENT = '''\
from google.adk.agents import LlmAgent
from google.adk.models.lite_llm import LiteLlm
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.tools import AgentTool

from shipyard.integrations.adk import adk_agent

RUNS = []   # every real run of a tool


def get_weather(city: str) -> dict:
    """The current weather of a city."""
    RUNS.append(city)
    if city == "Atlantis":
        raise LookupError(f"no weather station in {{city}}")
    return {{"city": city, "sky": "sunny", "celsius": 21}}


def book_flight(city: str) -> dict:
    """Book a flight to a city."""
    RUNS.append(f"book {{city}}")
    return {{"booked": city}}


def no_weather_for_mordor(tool, args, tool_context):   # the user's own guard
    if tool.name == "get_weather" and args.get("city") == "Mordor":
        return {{"error": "one does not simply ask about Mordor"}}
    return None


translator = LlmAgent(name="translator", model="gemini-2.5-flash", instruction="You translate into French.")
bookings = LlmAgent(
    name="bookings",
    model=LiteLlm(model="anthropic/claude-sonnet-4-5", max_tokens=300),
    description="Books flights.",
    instruction="You book flights.",
    tools=[book_flight],
)
root_agent = LlmAgent(
    name="concierge",
    model=LiteLlm(model="openai/gpt-4.1", api_base="{own_url}", api_key="users-own-key"),
    instruction="You are a travel concierge.",
    tools=[get_weather, AgentTool(agent=translator)],
    sub_agents=[bookings],
    before_tool_callback=no_weather_for_mordor,
)
runner = Runner(app_name="concierge", agent=root_agent, session_service=InMemorySessionService())

concierge = adk_agent("concierge", runner)

# a model setting Shipyard's model proxy does not pass through: refused, never dropped
strict = adk_agent(
    "strict",
    LlmAgent(name="strict", model=LiteLlm(model="openai/gpt-4.1", logit_bias={{"1734": -100}}), instruction="Be strict."),
)
'''


def user_project(root: Path, own_url: str, **mock: Any) -> Project:
    """The user's own project under a module name of its own; its root model's own endpoint is
    `own_url` (used outside Shipyard only); Shipyard's model is a mock server of USER_RULES
    (`mock`: its options, e.g. error_rate)."""
    module = module_name("concierge")
    (root / f"{module}.py").write_text(USER_AGENT.format(own_url=own_url))
    (root / "rules.yaml").write_text(USER_RULES)
    server = MockLLMServer(root / "rules.yaml", **mock)
    cfg = write_config(
        root, server.start(), {"concierge": f"{module}:concierge", "strict": f"{module}:strict"}
    )
    return Project(root, cfg, server, module)
