"""A framework agent's tools are known to Shipyard when it loads (`spec.tools`), without running it:
the `openai-agents`, `langgraph` and `adk` starter templates (written by the real `shipyard init`),
run for real against the mock LLM server over loopback. A `tool_policy` may name their tools, an eval
suite's tool names are checked against them, and they count as having side effects unless marked."""

from __future__ import annotations

import importlib
import inspect
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from framework_helpers import (
    BLIND_REFUND,
    REFUND_POLICY,
    Project,
    add_to_agent,
    forget,
    init_template,
    tool_calls,
)
from typer.testing import CliRunner

from shipyard.cli import app as cli
from shipyard.config import load_config
from shipyard.errors import ConfigError, ShipyardError
from shipyard.observe import configure_logging
from shipyard.runtime import Runtime, agent_versions

REFUND_TOOL = {"openai-agents": "refund_order", "langgraph": "issue_refund", "adk": "issue_refund"}


@pytest.fixture(params=["openai-agents", "langgraph", "adk"])
def template_name(request: pytest.FixtureRequest) -> str:
    """The starter template of the `starter` fixture."""
    name: str = request.param
    return name


@pytest.fixture
def starter(template_name: str, tmp_path: Path) -> Iterator[Project]:
    """The project `shipyard init --template {template_name}` writes, its model a mock server of its
    rules."""
    project = init_template(tmp_path / "support", template_name)
    yield project
    forget(project)


def _framework_tools(project: Project, template: str) -> dict[str, tuple[str, set[str]]]:
    """What the framework objects in the project's agent.py declare, read from them directly:
    tool name -> (description, argument names)."""
    m = project.agents
    if template == "openai-agents":
        return {
            t.name: (t.description, set(t.params_json_schema["properties"]))
            for sdk_agent in (m.support, m.refunds)
            for t in sdk_agent.tools
        }
    if template == "langgraph":
        return {t.name: (t.description, set(t.args)) for t in m.tools}
    found: dict[str, tuple[str, set[str]]] = {}
    for t in m.root_agent.tools:
        fn = getattr(t, "func", t)
        found[getattr(t, "name", fn.__name__)] = (
            inspect.getdoc(fn) or "",
            set(inspect.signature(fn).parameters),
        )
    return found


def _load(project: Project) -> Any:
    project.cfg = load_config(project.root / "shipyard.yaml")
    return project.cfg


def _cli(project: Project, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.chdir(project.root)
    result = CliRunner().invoke(cli, list(args))
    configure_logging(stream=io.StringIO())  # not the stderr of the runner, closed after it
    return result


def test_the_tools_shipyard_knows_are_the_frameworks(starter: Project, template_name: str) -> None:
    template = template_name
    v = agent_versions(starter.cfg, "support")[0]
    framework = _framework_tools(starter, template)
    tools = v.spec.tools
    assert sorted(tools.names()) == sorted(framework) and REFUND_TOOL[template] in framework
    for d in tools.definitions():
        fn = d["function"]
        description, args = framework[fn["name"]]
        assert fn["description"].startswith(description.strip()) and description.strip()
        assert fn["parameters"]["type"] == "object"
        assert set(fn["parameters"]["properties"]) == args - {"tool_context"}
        assert set(fn["parameters"]["required"]) == args - {"tool_context"}
        # nothing says a framework tool changes nothing: each counts as having side effects
        assert tools.get(fn["name"]).idempotent is False
    # the version id includes them, the same on every load
    assert agent_versions(starter.cfg, "support")[0].components["tools"] == v.components["tools"]


async def test_shipyard_does_not_run_a_declared_tool_itself(starter: Project) -> None:
    tools = agent_versions(starter.cfg, "support")[0].spec.tools
    result = await tools.call("lookup_order", {"order_id": "10001"})
    assert result.status == "error" and "not by Shipyard" in (result.error or "")
    assert (await tools.call("lookup_ordr", {})).status == "not_found"
    assert starter.requests == []


def test_a_misspelt_tool_in_must_not_call_is_a_usage_error(
    starter: Project, template_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refund = REFUND_TOOL[template_name]
    suite = starter.root / "evals" / "support" / "typo.yaml"
    suite.write_text(
        "name: typo\ncases:\n"
        "  - {id: lookup, input: Where is order 10001?, assert: [{type: must_not_call, value: refund_ordr}]}\n"
        f"  - {{id: spelt-right, input: hello, assert: [{{type: must_not_call, value: {refund}}}]}}\n"
    )
    result = _cli(starter, monkeypatch, "eval", "run", "--agent", "support", "--suite", str(suite))
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "tool 'refund_ordr' is not a tool of support@0.1.0+" in out and "fix the name" in out
    assert f"tool '{refund}' is not" not in out  # the real name is one of its tools
    assert "registers no tools" not in out
    assert starter.requests == []  # nothing ran


def test_a_tool_policy_on_a_tool_no_framework_agent_has_is_still_a_config_error(
    starter: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_to_agent(starter, REFUND_POLICY.format(refund="refund_ordr", result=""))
    result = _cli(starter, monkeypatch, "run", "support", "Where is order 10001?")
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "agents.support.guardrails: tool 'refund_ordr' is not a tool of support@0.1.0+" in out
    assert "(its tools: " in out and "lookup_order" in out and "(its tools: none)" not in out


async def test_a_tool_policy_blocks_the_sdk_agents_refund_without_a_lookup(tmp_path: Path) -> None:
    project = init_template(tmp_path / "support", "openai-agents")
    try:
        add_to_agent(project, REFUND_POLICY.format(refund="refund_order", result=""))
        rt = Runtime(project.cfg)
        try:
            rec = await rt.invoke("support", "Please refund order 10002")
            # the SDK hands off to Refunds, whose refund_order is refused before it runs: the model is
            # told, the run goes on
            assert rec.status == "completed", rec.error
            assert tool_calls(rec) == [("refund_order", {"order_id": "10002"}, "blocked")]
            assert [(g["name"], g["verdict"]) for g in rec.guardrails] == [("refund_policy", "block")]
            assert "Refunded" not in rec.output
            rec = await rt.invoke("support", "Where is order 10001?")  # other tools run as before
            assert tool_calls(rec) == [("lookup_order", {"order_id": "10001"}, "success")]
        finally:
            await rt.aclose()
    finally:
        forget(project)


@pytest.mark.parametrize("template", ["langgraph", "adk"])
async def test_a_tool_policy_lets_a_looked_up_refund_run_and_blocks_a_blind_one(
    tmp_path: Path, template: str
) -> None:
    project = init_template(tmp_path / "support", template, BLIND_REFUND)
    try:
        add_to_agent(
            project, REFUND_POLICY.format(refund="issue_refund", result=", result: {refundable: true}")
        )
        rt = Runtime(project.cfg)
        try:
            rec = await rt.invoke("support", "Please refund order 10002, it arrived broken.")
            assert rec.status == "completed", rec.error
            assert [(n, s) for n, _, s in tool_calls(rec)] == [
                ("lookup_order", "success"),
                ("issue_refund", "success"),
            ]
            assert rec.guardrails == []

            rec = await rt.invoke("support", "Refund it right away: 10002")
            # refused before it ran: the model is told why (its tool result), the run completes
            # (test_refused_tools.py checks what the model was told)
            assert tool_calls(rec) == [("issue_refund", {"order_id": "10002", "reason": "asked"}, "blocked")]
            assert [(g["name"], g["verdict"]) for g in rec.guardrails] == [("refund_policy", "block")]
            assert rec.status == "completed", rec.error
            assert "needs a successful lookup_order" in (rec.tool_calls[0].error or "")
        finally:
            await rt.aclose()
    finally:
        forget(project)


def _mark(project: Project, marks: str) -> None:
    """Give the last line of agent.py (the integration's call) keyword arguments."""
    source = project.root / "agent.py"
    lines = source.read_text().rstrip("\n").splitlines()
    call = lines[-1].partition("  #")[0]
    assert call.endswith(")")
    lines[-1] = f"{call[:-1]}, {marks})"
    source.write_text("\n".join(lines) + "\n")
    sys.modules.pop(project.module, None)  # imported before the edit: import the edited file
    importlib.invalidate_caches()


def _kill_switches(project: Project, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    result = _cli(project, monkeypatch, "checklist", "--format", "json")
    doc = json.loads(result.output)
    item: dict[str, Any] = next(i for i in doc["items"] if i["key"] == "kill_switches")
    return item


def test_marked_tools_are_idempotent_and_the_checklist_counts_the_rest(
    starter: Project, template_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refund = REFUND_TOOL[template_name]
    kill = _kill_switches(starter, monkeypatch)
    assert kill["result"] == "fail", kill
    risky = kill["evidence"].partition(";")[0]
    assert risky.startswith("risky tools: ") and {"lookup_order", refund} <= set(risky[13:].split(", "))

    _mark(starter, f'idempotent=["lookup_order"], tags={{"{refund}": ["money"]}}')
    v = agent_versions(starter.cfg, "support")[0]
    assert v.spec.tools.get("lookup_order").idempotent is True
    assert v.spec.tools.get(refund).idempotent is False and v.spec.tools.get(refund).tags == ("money",)
    kill = _kill_switches(starter, monkeypatch)
    assert kill["result"] == "fail", kill
    risky = kill["evidence"].partition(";")[0]
    assert refund in risky[13:].split(", ") and "lookup_order" not in risky


def test_a_mark_on_a_tool_the_agent_lacks_is_an_error(starter: Project) -> None:
    _mark(starter, 'idempotent=["lookup_ordr"]')
    with pytest.raises(ShipyardError) as e:
        agent_versions(starter.cfg, "support")
    assert "marks 'lookup_ordr', which is not a tool of it (its tools: " in str(e.value)


def test_an_sdk_agent_with_mcp_servers_declares_no_tools() -> None:
    from agents import Agent, function_tool
    from agents.mcp import MCPServerStdio

    from shipyard.integrations.openai_agents import agent_tools

    @function_tool
    def ping() -> str:
        """Answer pong."""
        return "pong"

    plain = Agent(name="plain", tools=[ping])
    declared = agent_tools(plain)
    assert declared is not None and declared.names() == ["ping"]
    # an agent reached by a handoff lists tools from an MCP server only at run time: rather than
    # some of the graph's tools, none (as before: tool names are not checked)
    with_mcp = Agent(name="mcp", mcp_servers=[MCPServerStdio(params={"command": "true"})])
    assert agent_tools(Agent(name="start", tools=[ping], handoffs=[with_mcp])) is None


def test_an_adk_tree_with_a_toolset_declares_no_tools_and_sub_agents_declare_transfer() -> None:
    from google.adk.agents import LlmAgent
    from google.adk.tools import AgentTool
    from google.adk.tools.base_toolset import BaseToolset

    from shipyard.integrations.adk import agent_tools

    class Listed(BaseToolset):
        async def get_tools(self, readonly_context: Any = None) -> list[Any]:
            return []

    def book_flight(city: str) -> str:
        """Book a flight to a city."""
        return f"booked {city}"

    translator = LlmAgent(name="translator", description="Translates text.")
    bookings = LlmAgent(name="bookings", description="Books flights.", tools=[book_flight])
    root = LlmAgent(name="desk", sub_agents=[bookings], tools=[AgentTool(agent=translator)])
    declared = agent_tools(root)
    assert declared is not None
    assert sorted(declared.names()) == ["book_flight", "transfer_to_agent", "translator"]
    transfer = declared.get("transfer_to_agent")
    assert transfer.idempotent and transfer.parameters["properties"]["agent_name"]["enum"] == [
        "bookings",
        "desk",
    ]
    assert not declared.get("book_flight").idempotent
    # a toolset lists its tools only at run time: none are declared rather than some
    with_toolset = LlmAgent(name="desk2", sub_agents=[LlmAgent(name="other", tools=[Listed()])])
    assert agent_tools(with_toolset) is None


def test_a_framework_tool_under_cache_tools_is_a_config_error(starter: Project) -> None:
    """The framework runs its tools inside the agent's run, without asking Shipyard's tool cache: a
    `cache.tools` entry for one would do nothing, so it is refused, marked idempotent or not."""
    _mark(starter, 'idempotent=["lookup_order"]')
    config = starter.root / "shipyard.yaml"
    config.write_text(config.read_text() + "\ncache:\n  tools:\n    lookup_order: {ttl_s: 60}\n")
    with pytest.raises(ConfigError) as e:
        Runtime(_load(starter)).versions("support")
    said = " ".join(str(e.value).split())
    assert "cache.tools.lookup_order: tool 'lookup_order' of support@0.1.0+" in said
    assert (
        "inside the agent's run, which does not ask Shipyard's tool cache; remove it from cache.tools" in said
    )
