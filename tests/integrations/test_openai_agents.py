"""The OpenAI Agents SDK under Shipyard, run for real against the mock LLM server over loopback:
the `openai-agents` starter template and a user's own project, through the runtime, the eval
runner, the CLI and the served app."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from framework_helpers import (
    Project,
    assert_priced,
    assert_smoke_suite_and_gate_pass,
    forget,
    paths,
    run_suites,
    serve,
    tool_calls,
)
from openai_agents_helpers import user_project
from typer.testing import CliRunner

from shipyard.cli import app as cli
from shipyard.errors import ShipyardError
from shipyard.evals import EvalRunner, load_suite
from shipyard.observe import configure_logging
from shipyard.runtime import Runtime

TEMPLATE = "openai-agents"  # the starter template of the `template` fixture (conftest.py)
DESK = "invoke_agent support > agent Support"
LOOKUP = [  # the spans of an order lookup, as paths(); `chat {the template's model id}`, not its key
    "invoke_agent support",
    DESK,
    f"{DESK} > turn 1",
    f"{DESK} > turn 1 > chat gpt-4o-mini",
    f"{DESK} > turn 1 > execute_tool lookup_order",
    f"{DESK} > turn 2",
    f"{DESK} > turn 2 > chat gpt-4o-mini",
]


@pytest.fixture
def user(tmp_path: Path) -> Iterator[Project]:
    project = user_project(tmp_path)
    yield project
    forget(project)


# the template ---------------------------------------------------------------------------------------
async def test_the_template_records_model_and_tool_calls_inside_the_sdk_agents_spans(
    template: Project,
) -> None:
    rt = Runtime(template.cfg)
    try:
        rec = await rt.invoke("support", "Where is order 10001?")
        assert rec.status == "completed", rec.error
        assert rec.output == "Order 10001 is shipped (UPS)."
        assert tool_calls(rec) == [("lookup_order", {"order_id": "10001"}, "success")]
        assert_priced(rec, 2)
        assert paths(rec) == LOOKUP
        # the system prompt is the version's prompt bundle, rendered
        assert template.requests[0]["messages"][0]["content"].startswith("You are Acme's support agent.")

        # a handoff: the tool of the agent handed off to is a Shipyard tool call too
        rec = await rt.invoke("support", "Please refund order 10002")
        assert rec.status == "completed", rec.error
        assert rec.output == "Done. Refunded $18.00 on order 10002."
        assert tool_calls(rec) == [("refund_order", {"order_id": "10002"}, "success")]
        assert rec.metadata["openai_agents"] == {
            "last_agent": "Refunds",
            "handoffs": [["Support", "Refunds"]],
        }
        assert_priced(rec, 3)
        assert f"{DESK} > turn 1 > handoff Support -> Refunds" in paths(rec)
        assert "invoke_agent support > agent Refunds > turn 2 > execute_tool refund_order" in paths(rec)

        # a refund over the limit waits for a person: escalated, and the refund did not run
        rec = await rt.invoke("support", "Please refund order 10003")
        assert rec.status == "escalated", rec.error
        assert rec.tool_calls == []
        [pending] = rec.metadata["pending_approvals"]
        assert pending["tool"] == "refund_order" and json.loads(pending["arguments"]) == {"order_id": "10003"}
        assert "A person must approve" in rec.output
    finally:
        await rt.aclose()


WRONG_SUITE = """\
name: wrong
cases:
  - id: forbids-the-tool-it-calls          # the vacuous pass of the issue: lookup_order IS called
    input: "Where is order 10001?"
    assert: [{type: must_not_call, value: lookup_order}]
  - id: forbids-a-tool-of-the-agent-handed-off-to
    input: "Please refund order 10002"
    assert: [{type: must_not_call, value: refund_order}]
  - id: wrong-tool
    input: "Where is order 10001?"
    trajectory: {mode: exact, calls: [{name: refund_order}]}
  - id: wrong-arguments
    input: "Where is order 10001?"
    trajectory: {mode: exact, calls: [{name: lookup_order, args: {order_id: "10002"}}]}
  - id: no-tool-expected
    input: "Where is order 10001?"
    trajectory: {calls: []}
"""


async def test_the_template_suite_passes_and_wrong_expectations_fail(template: Project) -> None:
    smoke = load_suite(template.root / "evals" / "support" / "smoke.yaml")
    (template.root / "wrong.yaml").write_text(WRONG_SUITE)
    wrong = load_suite(template.root / "wrong.yaml")
    rt = Runtime(template.cfg)
    try:
        result = await EvalRunner(rt, template.cfg).run("support", [smoke], progress=False)
        assert result.counts() == {"PASS": 4, "FAIL": 0, "ERROR": 0}, [
            (r.case_id, r.reasons) for r in result.results
        ]
        result = await EvalRunner(rt, template.cfg).run("support", [wrong], progress=False)
    finally:
        await rt.aclose()
    reasons = {r.case_id: (r.outcome, r.reasons) for r in result.results}
    assert reasons["forbids-the-tool-it-calls"] == ("FAIL", ["must_not_call: called lookup_order"])
    assert reasons["forbids-a-tool-of-the-agent-handed-off-to"] == (
        "FAIL",
        ["must_not_call: called refund_order"],
    )
    for case in ("wrong-tool", "wrong-arguments", "no-tool-expected"):
        outcome, why = reasons[case]
        assert outcome == "FAIL" and len(why) == 1 and why[0].startswith("trajectory:"), (case, why)


def test_the_template_passes_its_smoke_suite_and_its_gates(
    template: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(template.root)
    configure_logging(stream=io.StringIO())  # not the stdout of the first CliRunner, closed after it
    assert_smoke_suite_and_gate_pass()


def test_the_template_replays_offline_with_the_model_server_stopped(template: Project) -> None:
    config = str(template.root / "shipyard.yaml")
    suite = str(template.root / "evals" / "support" / "smoke.yaml")

    def eval_run(mode: str, report: Path) -> dict[str, Any]:
        args = ["eval", "run", "-c", config, "--agent", "support", "--suite", suite, mode]
        result = CliRunner().invoke(cli, [*args, "--report", f"json:{report}"])
        assert result.exit_code == 0, result.output
        return json.loads(report.read_text())

    live = eval_run("--record", template.root / "live.json")
    asked = len(template.requests)
    template.mock.stop()  # offline from here on
    replayed = eval_run("--replay", template.root / "replayed.json")

    def outcomes(report: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
        return {r["case_id"]: (r["outcome"], r["output"], r["status"]) for r in report["results"]}

    assert outcomes(replayed) == outcomes(live)
    assert {o for o, _, _ in outcomes(live).values()} == {"PASS"} and len(outcomes(live)) == 4
    assert all(r["replayed"] for r in replayed["results"]) and asked > 0


# a user's own project ---------------------------------------------------------------------------------
async def test_a_users_own_sdk_agents_with_the_two_line_integration(user: Project) -> None:
    rt = Runtime(user.cfg)
    try:
        rec = await rt.invoke("weather", "weather in Paris")
        assert rec.status == "completed", rec.error
        assert rec.output == "It is sunny and 21 C in Paris."
        assert tool_calls(rec) == [("get_weather", {"city": "Paris"}, "success")]
        assert_priced(rec, 2)
        weather = "invoke_agent weather > agent Weather"
        assert f"{weather} > turn 1 > execute_tool get_weather" in paths(rec)
        # the agent names gpt-4.1: the version's configured model answered, with the agent's settings
        assert [(r["model"], r["temperature"]) for r in user.requests] == [("mock", 0.2)] * 2

        # a tool that raises: recorded as an error; the SDK shows the model its error message
        rec = await rt.invoke("weather", "weather in Atlantis")
        assert rec.status == "completed" and rec.output == "Sorry, I could not get the weather."
        [failed] = rec.tool_calls
        assert (failed.name, failed.status, failed.error) == (
            "get_weather",
            "error",
            "LookupError: no weather station in Atlantis",
        )
        tool_span = next(s for s in rec.spans if s.name == "execute_tool get_weather")
        assert tool_span.status == "error"

        # an agent used as a tool: the tool call, and the nested agent's own model call and spans
        rec = await rt.invoke("weather", "weather in Paris in french")
        assert rec.output == "In French: Il fait sunny."
        assert tool_calls(rec) == [
            ("get_weather", {"city": "Paris"}, "success"),
            ("translate", {"input": "sunny"}, "success"),
        ]
        assert_priced(rec, 4)
        assert f"{weather} > turn 2 > agent Translator > turn 1 > chat mock" in paths(rec)

        # a sync agent on Runner.run_sync (its own event loop in a worker thread)
        rec = await rt.invoke("weather_sync", "weather in Rome")
        assert rec.status == "completed" and rec.output == "It is sunny and 21 C in Rome.", rec.error
        assert tool_calls(rec) == [("get_weather", {"city": "Rome"}, "success")]
        assert_priced(rec, 2)
        assert "invoke_agent weather_sync > agent Weather > turn 1 > execute_tool get_weather" in paths(rec)

        # shipyard_agent with a run context built from the interaction
        rec = await rt.invoke("profile", "who am i?", user_id="ada")
        assert rec.output == "You are ada." and tool_calls(rec) == [("whoami", {}, "success")]

        # shipyard_agent: earlier turns (tool calls and results too) reach the model before the input
        before = len(user.requests)
        history = [
            {"role": "user", "content": "weather in Oslo"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "grey"}'},
            {"role": "assistant", "content": "It is grey in Oslo."},
        ]
        rec = await rt.invoke("profile", "thanks!", history=history)
        assert rec.status == "completed", rec.error
        sent = user.requests[before]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
        assert sent[2]["tool_calls"][0]["function"] == {
            "name": "get_weather",
            "arguments": '{"city": "Oslo"}',
        }
        assert (sent[3]["tool_call_id"], sent[3]["content"]) == ("call_1", '{"sky": "grey"}')
        assert sent[-1]["content"] == "thanks!"
    finally:
        await rt.aclose()


async def test_a_users_project_replays_offline_without_running_its_tools(
    user: Project, tmp_path: Path
) -> None:
    (tmp_path / "suite.yaml").write_text(
        "name: weather\ncases:\n"
        "  - {id: paris, input: weather in Paris, expected: sunny, trajectory: {calls: [get_weather]}}\n"
        "  - {id: atlantis, input: weather in Atlantis, expected: could not}\n"
        "  - {id: french, input: weather in Paris in french, expected: Il fait,"
        " trajectory: {calls: [get_weather, translate]}}\n"
    )
    suite = load_suite(tmp_path / "suite.yaml")
    replays = tmp_path / "replays"
    live = await run_suites(user.cfg, "weather", [suite], "record", replay_dir=replays)
    assert live.counts()["PASS"] == 3, [(r.case_id, r.reasons) for r in live.results]
    ran = list(user.agents.STATIONS)
    assert sorted(ran) == ["Atlantis", "Paris", "Paris"]
    user.mock.stop()  # offline from here on

    replayed = await run_suites(user.cfg, "weather", [suite], "replay", replay_dir=replays)
    assert replayed.counts()["PASS"] == 3, [(r.case_id, r.reasons, r.error) for r in replayed.results]
    assert ran == user.agents.STATIONS  # no tool ran again
    by_case = {r.case_id: r for r in replayed.results}
    assert all(r.replayed for r in replayed.results)
    assert by_case["atlantis"].tool_calls[0]["status"] == "error"  # the recorded failure, replayed
    assert {r.case_id: r.output for r in replayed.results} == {r.case_id: r.output for r in live.results}


async def test_a_model_failure_fails_the_interaction_after_shipyards_retries_only(tmp_path: Path) -> None:
    project = user_project(tmp_path, error_rate=1.0)
    rt = Runtime(project.cfg)
    try:
        rec = await rt.invoke("weather", "weather in Paris")
    finally:
        await rt.aclose()
        forget(project)
    assert rec.status == "failed"
    assert rec.metadata["error_kind"].startswith("llm_") and "model call failed" in (rec.error or "")
    # max_retries: 1 in shipyard.yaml: two attempts, and neither the SDK nor its OpenAI client retried
    assert project.mock.app is not None and project.mock.app.requests == 2
    [call] = rec.llm_calls
    assert (call.status, call.attempts) == ("error", 2)
    assert rec.tool_calls == []


# served ----------------------------------------------------------------------------------------------
def test_the_template_is_served_over_chat_completions_after_its_warm_up(template: Project) -> None:
    with serve(template.cfg) as served, httpx.Client(base_url=served.url, timeout=60) as h:
        assert '"event":"agent_warmed_up"' in served.logs.getvalue()  # before the server accepted anyone
        assert template.requests == []  # the warm-up called no model
        ready = h.get("/readyz")
        assert ready.status_code == 200 and ready.json()["agents"] == {"support": "ok"}

        r = h.post(
            "/v1/chat/completions",
            json={
                "model": "support",
                "messages": [
                    {"role": "user", "content": "hello"},
                    {"role": "assistant", "content": "Hello! I can look up an order or refund it."},
                    {"role": "user", "content": "Where is order 10001?"},
                ],
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["choices"][0]["message"]["content"] == "Order 10001 is shipped (UPS)."
        assert body["shipyard"]["status"] == "completed" and body["usage"]["prompt_tokens"] > 0
        sent = template.requests[0]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]  # the history came along

        found = h.get(f"/admin/interactions/{body['shipyard']['interaction_id']}").json()["interaction"]
        assert [(t["name"], t["arguments"]) for t in found["tool_calls"]] == [
            ("lookup_order", {"order_id": "10001"})
        ]
        assert found["cost_usd"] > 0
        assert {s["name"] for s in found["spans"]} >= {"agent Support", "turn 1", "execute_tool lookup_order"}

        r = h.post(
            "/v1/chat/completions",
            json={"model": "support", "messages": [{"role": "user", "content": "Please refund order 10003"}]},
        )
        assert r.status_code == 200 and r.json()["shipyard"]["status"] == "escalated"


# several at once ---------------------------------------------------------------------------------------
async def test_concurrent_interactions_each_get_their_own_spans_and_tool_calls(template: Project) -> None:
    rt = Runtime(template.cfg)
    orders = [f"{20000 + i}" for i in range(8)]
    try:
        lookups = [rt.invoke("support", f"Where is order {o}?") for o in orders]
        refunds = [rt.invoke("support", "Please refund order 10002") for _ in range(4)]
        records = await asyncio.gather(*lookups, *refunds)
    finally:
        await rt.aclose()
    for rec, order in zip(records, orders, strict=False):
        assert rec.status == "completed", rec.error
        assert rec.output == f"There is no order {order}."
        assert tool_calls(rec) == [("lookup_order", {"order_id": order}, "success")]
        assert_priced(rec, 2)
        assert paths(rec) == LOOKUP
    for rec in records[len(orders) :]:
        assert tool_calls(rec) == [("refund_order", {"order_id": "10002"}, "success")]
        assert_priced(rec, 3)
        assert "invoke_agent support > agent Refunds > turn 2 > execute_tool refund_order" in paths(rec)
    assert len({rec.trace_id for rec in records}) == len(records)


# the SDK's own tracing ----------------------------------------------------------------------------------
def recorder() -> Any:
    """A processor that stands in for the SDK's default one (which exports to OpenAI) and keeps the
    names of the traces and the types of the spans it is given. (The SDK is imported by the tests
    that use it, not by every pytest worker collecting this file.)"""
    from agents.tracing import TracingProcessor

    class Recorder(TracingProcessor):
        def __init__(self) -> None:
            self.traces: list[str] = []
            self.spans: list[str] = []

        def on_trace_start(self, trace: Any) -> None:
            self.traces.append(trace.name)

        def on_trace_end(self, trace: Any) -> None:
            pass

        def on_span_start(self, span: Any) -> None:
            self.spans.append(span.span_data.type)

        def on_span_end(self, span: Any) -> None:
            pass

        def shutdown(self) -> None:
            pass

        def force_flush(self) -> None:
            pass

    return Recorder()


async def test_sdk_traces_from_interactions_go_to_shipyard_only(template: Project) -> None:
    from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner
    from agents.tracing import set_trace_processors
    from openai import AsyncOpenAI

    recorded = recorder()
    set_trace_processors([recorded])
    try:
        rt = Runtime(template.cfg)
        assert await rt.warm_up("support") == {}
        rec = await rt.invoke("support", "Where is order 10001?")
        await rt.aclose()
        assert rec.status == "completed" and "agent Support" in {s.name for s in rec.spans}
        assert recorded.traces == [] and recorded.spans == []  # neither the warm-up's nor the run's

        # outside any interaction the SDK is left alone: its trace reaches its processors, and the
        # (observed) tool just runs, recorded nowhere
        plain = Agent(name="Plain", instructions="Answer.", tools=[template.agents.lookup_order])
        client = AsyncOpenAI(base_url=template.mock.url, api_key="unused", max_retries=0)
        model = OpenAIChatCompletionsModel("mock", openai_client=client)
        result = await Runner.run(plain, "Where is order 10001?", run_config=RunConfig(model=model))
        assert result.final_output == "Order 10001 is shipped (UPS)."
        assert recorded.traces == ["Agent workflow"] and "function" in recorded.spans
    finally:
        set_trace_processors([])


def test_outside_an_interaction_shipyard_says_so() -> None:
    from agents import Agent

    from shipyard.integrations import openai_agents

    with pytest.raises(ShipyardError, match="run_config\\(\\) was called outside a Shipyard interaction"):
        openai_agents.run_config()
    with pytest.raises(ShipyardError, match="asked for Shipyard's system prompt outside"):
        openai_agents.system_prompt(None, Agent(name="Support"))  # type: ignore[arg-type]
