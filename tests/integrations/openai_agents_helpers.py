"""The project of the OpenAI Agents SDK integration tests: a user's own project written the way an
SDK user would (a `Runner.run` of their own with `run_config()`, a sync agent on `Runner.run_sync`, a
tool that fails, an agent used as a tool, a model named `gpt-4.1` with its own settings, a run
context), against the mock LLM server over loopback. The starter template and what the framework
tests share: framework_helpers.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework_helpers import Project, module_name, write_config

from shipyard.llm import MockLLMServer

# A user's own project: plain SDK code, plus `run_config()` in each Runner call and one
# `shipyard_agent(...)` line.
USER_AGENTS = '''\
import json

from agents import Agent, ModelSettings, RunConfig, RunContextWrapper, Runner, function_tool

from shipyard import AgentContext, agent
from shipyard.integrations.openai_agents import run_config, shipyard_agent

STATIONS = []  # every real run of get_weather


@function_tool
async def get_weather(city: str) -> str:
    """The weather in a city right now."""
    STATIONS.append(city)
    if city == "Atlantis":
        raise LookupError(f"no weather station in {city}")
    return json.dumps({"city": city, "sky": "sunny", "celsius": 21})


translator = Agent(name="Translator", instructions="You translate into French.")

weather_agent = Agent(
    name="Weather",
    instructions="You report the weather.",
    model="gpt-4.1",
    model_settings=ModelSettings(temperature=0.2),
    tools=[
        get_weather,
        translator.as_tool(tool_name="translate", tool_description="Translate text into French."),
    ],
)


@agent("weather")
async def weather(user_input: str, ctx: AgentContext) -> str:
    result = await Runner.run(weather_agent, user_input, run_config=run_config(RunConfig(workflow_name="weather")))
    return result.final_output


@agent("weather_sync")
def weather_sync(user_input: str, ctx: AgentContext) -> str:
    return Runner.run_sync(weather_agent, user_input, run_config=run_config()).final_output


@function_tool
def whoami(wrapper: RunContextWrapper[dict]) -> str:
    """Who is asking."""
    return wrapper.context["user"]


profile = shipyard_agent(
    "profile",
    Agent(name="Profile", instructions="You say who the user is.", tools=[whoami]),
    context=lambda ctx: {"user": ctx.user_id or "anonymous"},
)
'''

USER_RULES = r"""
default: "I only know the weather."
rules:
  - name: translator
    when: {system: '(?i)translate'}
    reply: "Il fait {user}."
  - name: weather-failed
    when: {last_tool: get_weather, tool_result: 'error occurred'}
    reply: "Sorry, I could not get the weather."
  - name: translate-it
    when: {last_tool: get_weather, user: '(?i)french'}
    tool_calls: [{name: translate, arguments: {input: "{result[sky]}"}}]
  - name: weather
    when: {last_tool: get_weather}
    reply: "It is {result[sky]} and {result[celsius]} C in {result[city]}."
  - name: translated
    when: {last_tool: translate}
    reply: "In French: {result}"
  - name: ask-weather
    when: {user: '(?i)weather in (?P<city>\w+)', fresh: true}
    tool_calls: [{name: get_weather, arguments: {city: "{city}"}}]
  - name: whoami-answer
    when: {last_tool: whoami}
    reply: "You are {result}."
  - name: whoami
    when: {user: '(?i)who am i', fresh: true}
    tool_calls: [{name: whoami, arguments: {}}]
"""


def user_project(root: Path, **mock_options: Any) -> Project:
    """The user's own project, under a module name of its own (`mock_options` go to the mock
    server: faults)."""
    module = module_name("weatheragents")
    (root / f"{module}.py").write_text(USER_AGENTS)
    (root / "rules.yaml").write_text(USER_RULES)
    mock = MockLLMServer(root / "rules.yaml", **mock_options)
    cfg = write_config(
        root, mock.start(), {name: f"{module}:{name}" for name in ("weather", "weather_sync", "profile")}
    )
    return Project(root, cfg, mock, module)
