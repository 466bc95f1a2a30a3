"""Projects of the Google ADK integration tests: the `adk` starter template, and a user's own project
written the way an ADK user would (a root LlmAgent on `LiteLlm("openai/gpt-4.1")` with its own
endpoint, a sub-agent on an Anthropic LiteLLM model reached by agent transfer, an `AgentTool` on a
Gemini model name, a tool that raises, a guard callback of the user's, their own Runner), wired to
Shipyard with its one line, against the mock LLM server over loopback."""

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
from shipyard.observe import configure_logging
from shipyard.server import create_app, uvicorn_config
from shipyard.store import InteractionRecord

_counter = itertools.count()
TEMPLATE_URL = "http://127.0.0.1:8100/v1"

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


@dataclass
class Project:
    """A project folder, its config, the mock LLM server its model points at, its agent module."""

    root: Path
    cfg: ShipyardConfig
    mock: MockLLMServer
    module: str

    @property
    def requests(self) -> list[dict[str, Any]]:
        """What the mock server was asked, oldest first."""
        assert self.mock.app is not None
        return list(self.mock.app.recent)

    @property
    def agents(self) -> Any:
        """The project's imported agent module."""
        return sys.modules[self.module]


def init_template(root: Path) -> Project:
    """`shipyard init --template adk` into `root` through the real CLI, its model pointed at a mock
    LLM server started on the template's own rules file."""
    result = CliRunner().invoke(cli, ["init", str(root), "--template", "adk"])
    configure_logging(stream=io.StringIO())  # the CLI logged to the runner's stderr, closed now
    assert result.exit_code == 0, result.output
    assert "shipyard mock-llm --rules rules/support.yaml &" in result.output  # NEXT.txt
    mock = MockLLMServer(root / "rules" / "support.yaml")
    url = mock.start()
    config = root / "shipyard.yaml"
    text = config.read_text()
    assert TEMPLATE_URL in text
    config.write_text(text.replace(TEMPLATE_URL, url))
    return Project(root, load_config(config), mock, "agent")


def user_project(root: Path, own_url: str, **mock: Any) -> Project:
    """The user's own project under a module name of its own; its root model's own endpoint is
    `own_url` (used outside Shipyard only); Shipyard's model is a mock server of USER_RULES
    (`mock`: its options, e.g. error_rate)."""
    module = f"concierge{next(_counter)}"
    (root / f"{module}.py").write_text(USER_AGENT.format(own_url=own_url))
    (root / "rules.yaml").write_text(USER_RULES)
    server = MockLLMServer(root / "rules.yaml", **mock)
    url = server.start()
    (root / "shipyard.yaml").write_text(
        textwrap.dedent(f"""\
        models:
          mock:
            base_url: {url}
            max_retries: 1
            backoff_base_s: 0.001
            prices: {{input: 1.0, output: 2.0}}
        agents:
          concierge: {{entry: '{module}:concierge', model: {{name: mock}}, timeout_s: 60}}
          strict: {{entry: '{module}:strict', model: {{name: mock}}, timeout_s: 60}}
        """)
    )
    return Project(root, load_config(root / "shipyard.yaml"), server, module)


def forget(project: Project) -> None:
    """Stop the mock and forget the project's module (another test imports its own)."""
    project.mock.stop()
    sys.modules.pop(project.module, None)
    if str(project.root) in sys.path:
        sys.path.remove(str(project.root))


def paths(record: InteractionRecord) -> list[str]:
    """Each span of the record as the path of names from its root, e.g.
    `invoke_agent support > invoke_workflow support > invoke_agent support > ...`, sorted."""
    by_id = {s.span_id: s for s in record.spans}

    def path(span: Any) -> str:
        parent = by_id.get(span.parent_id or "")
        return span.name if parent is None else f"{path(parent)} > {span.name}"

    return sorted(path(s) for s in record.spans)


@dataclass
class Served:
    url: str
    logs: io.StringIO


@contextmanager
def serve(cfg: ShipyardConfig) -> Iterator[Served]:
    """The real app on uvicorn in a thread, on a free loopback port; returns once it accepts
    connections (the app warms its agents up before that)."""
    logs = io.StringIO()
    app = create_app(cfg, log_stream=logs)
    server = uvicorn.Server(uvicorn_config(app, cfg.server, host="127.0.0.1", port=0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "the server to start")
    assert server.started, "the server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", logs)
    finally:
        server.should_exit = True
        thread.join(30)
