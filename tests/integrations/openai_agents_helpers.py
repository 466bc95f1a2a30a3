"""Projects of the OpenAI Agents SDK integration tests: the `openai-agents` starter template, and a
user's own project written the way an SDK user would (a `Runner.run` of their own with
`run_config()`, a sync agent on `Runner.run_sync`, a tool that fails, an agent used as a tool, a
model named `gpt-4.1` with its own settings, a run context), each against the mock LLM server over
loopback."""

from __future__ import annotations

import io
import itertools
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
from shipyard.llm import MockLLMServer
from shipyard.server import ServerState, create_app, uvicorn_config
from shipyard.store import InteractionRecord

_counter = itertools.count()

TEMPLATE_URL = "http://127.0.0.1:8100/v1"

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


@dataclass
class Project:
    """A project folder, its config, and the mock LLM server its model points at."""

    root: Path
    cfg: ShipyardConfig
    mock: MockLLMServer
    module: str

    @property
    def mock_requests(self) -> list[dict[str, Any]]:
        assert self.mock.app is not None
        return list(self.mock.app.recent)

    @property
    def agents(self) -> Any:
        """The project's imported agent module."""
        return sys.modules[self.module]


def init_template(root: Path) -> Project:
    """`shipyard init --template openai-agents` into `root`, its model pointed at a mock LLM server
    started on the template's own rules file."""
    result = CliRunner().invoke(cli, ["init", str(root), "--template", "openai-agents"])
    assert result.exit_code == 0, result.output
    mock = MockLLMServer(root / "rules" / "support.yaml")
    url = mock.start()
    config = root / "shipyard.yaml"
    text = config.read_text()
    assert TEMPLATE_URL in text
    config.write_text(text.replace(TEMPLATE_URL, url))
    return Project(root, load_config(config), mock, "agent")


def user_project(root: Path, **mock_options: Any) -> Project:
    """The user's own project, under a module name of its own (`mock_options` go to the mock
    server: faults)."""
    module = f"weatheragents{next(_counter)}"
    (root / f"{module}.py").write_text(USER_AGENTS)
    (root / "rules.yaml").write_text(USER_RULES)
    mock = MockLLMServer(root / "rules.yaml", **mock_options)
    url = mock.start()
    agents = "".join(
        f"  {name}: {{entry: '{module}:{name}', model: {{name: mock}}, timeout_s: 60}}\n"
        for name in ("weather", "weather_sync", "profile")
    )
    (root / "shipyard.yaml").write_text(
        textwrap.dedent(f"""\
        models:
          mock: {{base_url: {url}, max_retries: 1, backoff_base_s: 0.001, prices: {{input: 1.0, output: 2.0}}}}
        agents:
        """)
        + agents
    )
    return Project(root, load_config(root / "shipyard.yaml"), mock, module)


def forget(project: Project) -> None:
    """Stop the mock and forget the project's module (another test imports its own)."""
    project.mock.stop()
    sys.modules.pop(project.module, None)
    if str(project.root) in sys.path:
        sys.path.remove(str(project.root))


def paths(record: InteractionRecord) -> list[str]:
    """Each span of the record as the path of names from the root span, e.g.
    `invoke_agent support > agent Support > turn 1 > chat mock`, sorted."""
    by_id = {s.span_id: s for s in record.spans}

    def path(span: Any) -> str:
        parent = by_id.get(span.parent_id or "")
        return span.name if parent is None else f"{path(parent)} > {span.name}"

    return sorted(path(s) for s in record.spans)


@dataclass
class Served:
    url: str
    state: ServerState
    logs: io.StringIO


@contextmanager
def serve(cfg: ShipyardConfig) -> Iterator[Served]:
    """The real app on uvicorn in a thread, on a free loopback port; returns once it accepts
    connections (the app warms its agents up before that)."""
    logs = io.StringIO()
    app = create_app(cfg, log_stream=logs)
    config = uvicorn_config(app, cfg.server, host="127.0.0.1", port=0)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "the server to start")
    assert server.started, "the server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", app.state.shipyard, logs)
    finally:
        server.should_exit = True
        thread.join(30)
