"""Google ADK agents through `shipyard.integrations.adk`, run for real (google-adk, LiteLLM) against
the mock LLM server over loopback, through the real runtime, eval runner, CLI and server: the `adk`
starter template, and a user's own agent tree with its one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from adk_helpers import user_project
from framework_helpers import (
    ANSWERED,
    ASKED,
    Expected,
    Project,
    assert_priced,
    assert_replays_offline,
    assert_served_with_history,
    assert_smoke_suite_and_gate_pass,
    assert_wrong_expectations_fail,
    chat,
    concurrent_lookups_and_refunds,
    forget,
    paths,
    run_suites,
    serve,
    tool_calls,
)
from typer.testing import CliRunner

from shipyard.cli import app as cli
from shipyard.errors import ShipyardError
from shipyard.evals import load_suite
from shipyard.integrations._otel import collecting, framework_spans
from shipyard.llm import MockLLMServer
from shipyard.runtime import Runtime
from shipyard.store import InteractionRecord

TEMPLATE = "adk"  # the starter template of the `template` fixture (conftest.py)
SUPPORT = "invoke_agent support > invoke_workflow support > invoke_agent support"


@pytest.fixture
def own_endpoint() -> Iterator[MockLLMServer]:
    """The endpoint the user's root agent names for itself (used outside Shipyard only)."""
    server = MockLLMServer({"default": "Hello from your own endpoint."})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def user(tmp_path: Path, own_endpoint: MockLLMServer) -> Iterator[Project]:
    """A user's own ADK project with the one-line integration."""
    assert own_endpoint.url is not None
    project = user_project(tmp_path, own_endpoint.url)
    yield project
    forget(project)


def assert_traced(rec: InteractionRecord, tools: Expected, model_calls: int) -> None:
    """These tool calls (name, arguments, status), this many priced model calls with tokens on their
    `chat` spans, and every span in the interaction's own trace, under its one root."""
    assert tool_calls(rec) == tools
    assert_priced(rec, model_calls)
    roots = [s for s in rec.spans if s.parent_id is None]
    assert [r.name for r in roots] == [f"invoke_agent {rec.agent}"]
    ids = {s.span_id for s in rec.spans}
    assert all(s.parent_id in ids for s in rec.spans if s is not roots[0])  # no span lost its parent


# the starter template ----------------------------------------------------------------------------
async def test_the_template_runs_with_model_tool_and_adk_spans_tokens_and_cost(template: Project) -> None:
    rt = Runtime(template.cfg)
    # the file's first interaction in this process: ADK's and LiteLLM's lazy start-up (seconds, more on a
    # loaded machine) is the warm-up's, as `run` and `serve` do it, not in the interaction's 60 s budget
    assert await rt.warm_up("support") == {}
    rec = await rt.invoke("support", "Where is my order 10001?")
    assert rec.status == "completed", rec.error
    assert rec.output == "Order 10001 is shipped."
    assert_traced(rec, [("lookup_order", {"order_id": "10001"}, "success")], model_calls=2)
    assert rec.tool_calls[0].result == {
        "order_id": "10001",
        "status": "shipped",
        "carrier": "UPS",
        "refundable": False,
    }
    # ADK's own spans are under the interaction's root; Shipyard's model and tool spans under ADK's
    assert paths(rec) == [
        "invoke_agent support",
        "invoke_agent support > invoke_workflow support",
        SUPPORT,
        f"{SUPPORT} > execute_tool lookup_order",
        f"{SUPPORT} > execute_tool lookup_order > execute_tool lookup_order",
        *[f"{SUPPORT} > generate_content openai/gpt-4o-mini"] * 2,
        *[f"{SUPPORT} > generate_content openai/gpt-4o-mini > chat gpt-4o-mini"] * 2,  # the model id sent
    ]
    # the agent's model really went to the mock: the bundle's prompt, its tools, its temperature
    first = template.requests[0]
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][0]["content"].startswith("You are Acme's support agent.")
    assert sorted(t["function"]["name"] for t in first["tools"]) == [
        "handoff_to_human",
        "issue_refund",
        "lookup_order",
    ]
    assert first["temperature"] == 0
    # a refund: two tools, three model calls
    rec = await rt.invoke("support", "Please refund order 10002, it arrived broken.")
    assert rec.status == "completed" and rec.output == "Done: order 10002 is refunded."
    assert_traced(
        rec,
        [
            ("lookup_order", {"order_id": "10002"}, "success"),
            ("issue_refund", {"order_id": "10002", "reason": "customer request"}, "success"),
        ],
        model_calls=3,
    )
    # a hand-off to a person (a long-running tool waiting for its answer) is an escalation
    rec = await rt.invoke("support", "I want to talk to a person.")
    assert rec.status == "escalated", rec.error
    assert rec.output.startswith("A person from our team will answer you here (ticket T-")
    assert [t.name for t in rec.tool_calls] == ["handoff_to_human"]
    assert rec.metadata["adk_waiting_for"]
    assert collecting() == 0  # nothing is left collecting spans once interactions end
    await rt.aclose()


def test_the_template_passes_its_smoke_suite_and_its_gate(
    template: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(template.root)
    monkeypatch.setenv("SHIPYARD_LOG_LEVEL", "info")  # the CLI's event lines, on its stderr
    result = CliRunner().invoke(cli, ["run", "support", "Where is my order 10001?"])
    assert result.exit_code == 0, result.output
    assert '"event":"agent_warmed_up"' in result.stderr  # `run` warms up: no start-up in its latency
    assert "Order 10001 is shipped." in result.output
    assert "+-- [execute_tool lookup_order]" in result.output  # ADK's span, by its name
    assert '+-- [Tool Call] lookup_order(order_id="10001")' in result.output  # Shipyard's, inside it
    assert "Model: gpt-4o-mini, Tokens: " in result.output and "Cost: $0.0001" in result.output
    assert_smoke_suite_and_gate_pass()


HAND_OFF = """\
  - id: must-not-hand-off-but-it-does
    input: I want to talk to a person.
    assert: [{type: must_not_call, value: handoff_to_human}]
"""


async def test_trajectory_and_must_not_call_fail_when_the_agent_does_otherwise(template: Project) -> None:
    await assert_wrong_expectations_fail(
        template, HAND_OFF, {"must-not-hand-off-but-it-does": "called handoff_to_human"}
    )


async def test_served_over_chat_completions_after_its_warm_up(template: Project) -> None:
    from shipyard.integrations.adk import warm_up_seconds

    with serve(template.cfg) as served:
        # the warm-up ran before the server accepted its first connection
        assert '"event":"agent_warmed_up"' in served.logs.getvalue()
        assert "imports" in warm_up_seconds() and "openai/gpt-4o-mini" in warm_up_seconds()
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as h:
            # ready; an order question; earlier turns (ctx.history) are the ADK session's events,
            # sent to the model in order
            found = await assert_served_with_history(h, template)
            tree = "\n".join(found["tree"])
            assert (
                "[execute_tool lookup_order]" in tree and '[Tool Call] lookup_order(order_id="10001")' in tree
            )
            # a hand-off to a person is served as what it is
            r = await chat(h, "support", "I want to talk to a person.")
            assert r.json()["shipyard"]["status"] == "escalated"


async def test_earlier_turns_in_content_parts_reach_the_model(template: Project) -> None:
    """`ctx.history` as the Python API takes it: a turn's content may be OpenAI content parts."""
    rt = Runtime(template.cfg)
    parts = [{"type": "text", "text": "Where is my "}, {"type": "text", "text": "order 10001?"}]
    history = [{"role": "user", "content": parts}, {"role": "assistant", "content": ANSWERED}]
    rec = await rt.invoke("support", "hello", history=history)
    assert rec.status == "completed", rec.error
    assert [(m["role"], m["content"]) for m in template.requests[-1]["messages"][1:]] == [
        ("user", ASKED),
        ("assistant", ANSWERED),
        ("user", "hello"),
    ]
    await rt.aclose()


async def test_a_recorded_eval_replays_offline_with_the_model_server_stopped(template: Project) -> None:
    await assert_replays_offline(template, cases=5)


async def test_concurrent_interactions_each_get_their_own_spans_and_tool_calls(template: Project) -> None:
    rt = Runtime(template.cfg)
    for rec, order, expected in await concurrent_lookups_and_refunds(rt):
        assert rec.status == "completed", rec.error
        assert_traced(rec, expected, model_calls=len(expected) + 1)
        assert order in rec.output
        # ADK's spans of this interaction, and only them: one model step per model call, one tool span per tool
        names = [s.name for s in rec.spans]
        assert names.count("generate_content openai/gpt-4o-mini") == len(rec.llm_calls)
        assert sum(n.startswith("execute_tool ") for n in names) == 2 * len(expected)
        assert names.count("invoke_workflow support") == 1
    assert collecting() == 0
    await rt.aclose()


def in_a_fresh_process(project: Project, script: str, *args: str) -> tuple[dict[str, Any], str]:
    """Run `script` in a new Python process in the project's folder, its arguments the project's
    config file and `args`; it must succeed. Returns the JSON its last line printed, and its stderr."""
    out = subprocess.run(
        [sys.executable, "-c", script, str(project.root / "shipyard.yaml"), *args],
        capture_output=True,
        text=True,
        cwd=project.root,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_the_lazy_start_up_is_done_by_the_warm_up_not_the_first_interaction(template: Project) -> None:
    """In a fresh process: loading the agent does not import LiteLLM, the warm-up does, and the
    first interaction after it imports nothing more (no lazy start-up in its latency)."""
    script = textwrap.dedent("""\
        import asyncio, json, sys
        from shipyard.config import load_config
        from shipyard.runtime import Runtime

        async def main():
            rt = Runtime(load_config(sys.argv[1]))
            rt.versions("support")
            loaded = "litellm" in sys.modules
            failed = await rt.warm_up("support")
            warmed = "litellm" in sys.modules
            before = set(sys.modules)
            rec = await rt.invoke("support", "Please refund order 10002, it arrived broken.")
            print(json.dumps({"loaded": loaded, "failed": failed, "warmed": warmed, "status": rec.status,
                              "imported_after": sorted(set(sys.modules) - before)}))
            await rt.aclose()

        asyncio.run(main())
        """)
    found, _ = in_a_fresh_process(template, script)
    assert found == {
        "loaded": False,
        "failed": {},
        "warmed": True,
        "status": "completed",
        "imported_after": [],
    }


APP_PROVIDER = textwrap.dedent("""\
    import asyncio, json, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from shipyard.config import load_config
    from shipyard.runtime import Runtime

    exporter = InMemorySpanExporter()
    if sys.argv[2] == "sdk":  # the application's own OpenTelemetry set-up, made before Shipyard's
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    else:
        trace.set_tracer_provider(trace.NoOpTracerProvider())

    async def main():
        rt = Runtime(load_config(sys.argv[1]))
        # ADK's and LiteLLM's lazy start-up is the warm-up's, not in the interaction's 60 s budget
        assert await rt.warm_up("support") == {}
        exporter.clear()  # the warm-up's own run through the agent
        rec = await rt.invoke("support", "Where is my order 10001?")
        print(json.dumps({"status": rec.status, "error": rec.error, "tools": [t.name for t in rec.tool_calls],
                          "spans": sorted(s.name for s in rec.spans),
                          "exported": sorted(s.name for s in exporter.get_finished_spans())}))
        await rt.aclose()

    asyncio.run(main())
    """)


@pytest.mark.parametrize("provider", ["sdk", "other"])
def test_an_applications_own_tracer_provider(template: Project, provider: str) -> None:
    """With the application's SDK provider, ADK's spans go both to its exporter and on the record;
    with a provider Shipyard cannot add to, the interaction still runs, with Shipyard's spans."""
    found, stderr = in_a_fresh_process(template, APP_PROVIDER, provider)
    assert found["status"] == "completed" and found["tools"] == ["lookup_order"], found["error"]
    shipyards = ["chat gpt-4o-mini", "chat gpt-4o-mini", "execute_tool lookup_order", "invoke_agent support"]
    adks = [
        "execute_tool lookup_order",
        "generate_content openai/gpt-4o-mini",
        "generate_content openai/gpt-4o-mini",
        "invoke_agent support",
        "invoke_workflow support",
    ]
    if provider == "sdk":
        assert found["spans"] == sorted(shipyards + adks)
        assert found["exported"] == adks  # the application's exporter still gets ADK's spans
    else:
        assert found["spans"] == shipyards
        assert "not the OpenTelemetry SDK's" in stderr


# a user's own project ------------------------------------------------------------------------------
CONCIERGE = "invoke_agent concierge > invoke_workflow concierge > invoke_agent concierge"


async def test_a_users_own_agent_tree_with_its_one_line(user: Project) -> None:
    rt = Runtime(user.cfg)
    # a function tool of the root agent
    rec = await rt.invoke("concierge", "What's the weather in Paris?")
    assert rec.status == "completed" and rec.output == "Weather in Paris: sunny, 21 C"
    assert_traced(rec, [("get_weather", {"city": "Paris"}, "success")], model_calls=2)
    # an AgentTool whose agent names a Gemini model: answered by Shipyard's model too
    rec = await rt.invoke("concierge", "Please translate good morning")
    assert rec.status == "completed" and rec.output == "In French: Bonjour"
    assert_traced(rec, [("translator", {"request": "good morning"}, "success")], model_calls=3)
    assert rec.tool_calls[0].result == "Bonjour"
    assert (
        f"{CONCIERGE} > execute_tool translator > invoke_workflow translator > invoke_agent translator > generate_content gemini-2.5-flash > chat mock"
        in paths(rec)
    )
    # an agent transfer to a sub-agent on an Anthropic LiteLLM model, its max_tokens passed through
    rec = await rt.invoke("concierge", "Can you book me a flight?")
    assert rec.status == "completed" and rec.output == "Booked your flight to Lisbon."
    assert_traced(
        rec,
        [
            ("transfer_to_agent", {"agent_name": "bookings"}, "success"),
            ("book_flight", {"city": "Lisbon"}, "success"),
        ],
        model_calls=3,
    )
    assert rec.metadata["adk_agents"] == ["bookings"]
    assert (
        "invoke_agent concierge > invoke_workflow concierge > invoke_agent bookings > generate_content anthropic/claude-sonnet-4-5 > chat mock"
        in paths(rec)
    )
    assert user.requests[-1]["max_tokens"] == 300
    # the user's own guard answers instead of the tool: the tool did not run, so it is no tool call
    rec = await rt.invoke("concierge", "What's the weather in Mordor?")
    assert rec.status == "completed" and rec.output == "Sorry: one does not simply ask about Mordor"
    assert rec.tool_calls == []
    # a tool that raises fails the run (ADK re-raises it); the call is recorded with its error
    rec = await rt.invoke("concierge", "What's the weather in Atlantis?")
    assert rec.status == "failed" and rec.metadata["error_kind"] == "agent_error"
    assert rec.error == "LookupError: no weather station in Atlantis"
    assert [(t.name, t.status, t.error) for t in rec.tool_calls] == [
        ("get_weather", "error", "LookupError: no weather station in Atlantis")
    ]
    assert user.agents.RUNS == ["Paris", "book Lisbon", "Atlantis"]
    assert {r["model"] for r in user.requests} == {"mock"}  # the version's model answered every call
    await rt.aclose()


async def test_outside_shipyard_the_agent_calls_its_own_model(
    user: Project, own_endpoint: MockLLMServer
) -> None:
    from google.genai import types

    rt = Runtime(user.cfg)
    rt.versions("concierge")  # imports (and wires) the user's agent
    runner = user.agents.runner
    session = await runner.session_service.create_session(app_name="concierge", user_id="me")
    message = types.Content(role="user", parts=[types.Part(text="hi there")])
    texts = [
        p.text
        async for e in runner.run_async(user_id="me", session_id=session.id, new_message=message)
        for p in (e.content.parts if e.content else [])
        if p.text
    ]
    assert texts == ["Hello from your own endpoint."]
    assert own_endpoint.app is not None and [r["model"] for r in own_endpoint.app.recent] == ["gpt-4.1"]
    assert user.requests == []  # Shipyard's model was not asked
    await rt.aclose()


async def test_a_users_agent_replays_offline_and_its_tools_do_not_run_again(
    user: Project, tmp_path: Path
) -> None:
    suite_file = tmp_path / "concierge.yaml"
    suite_file.write_text(
        "name: concierge\ncases:\n"
        "  - {id: paris, input: weather in Paris?, expected: sunny, trajectory: {mode: exact, calls: [{name: get_weather}]}}\n"
        "  - {id: book, input: please book a flight, expected: Lisbon,\n"
        "     trajectory: {mode: exact, calls: [{name: transfer_to_agent}, {name: book_flight}]}}\n"
        "  - {id: french, input: translate hello, expected: Bonjour, trajectory: {calls: [{name: translator}]}}\n"
    )
    suite = load_suite(suite_file)
    live = await run_suites(user.cfg, "concierge", [suite], "record")
    assert live.counts() == {"PASS": 3, "FAIL": 0, "ERROR": 0}, [r.error for r in live.results]
    runs = list(user.agents.RUNS)
    user.mock.stop()
    replayed = await run_suites(user.cfg, "concierge", [suite], "replay")
    assert replayed.counts() == {"PASS": 3, "FAIL": 0, "ERROR": 0}, [r.error for r in replayed.results]
    assert list(user.agents.RUNS) == runs  # no tool of the user's ran again; the transfer still happened


async def test_a_model_failure_fails_the_interaction_as_a_model_failure(tmp_path: Path) -> None:
    project = user_project(tmp_path, "http://127.0.0.1:9/v1", error_rate=1.0)
    try:
        rt = Runtime(project.cfg)
        rec = await rt.invoke("concierge", "What's the weather in Paris?")
        assert rec.status == "failed"
        assert rec.metadata["error_kind"].startswith("llm_"), rec.metadata
        assert rec.error is not None and rec.error.startswith("model call failed:")
        assert rec.tool_calls == [] and project.agents.RUNS == []
        await rt.aclose()
    finally:
        forget(project)


async def test_a_model_setting_the_proxy_does_not_pass_is_refused_by_name(user: Project) -> None:
    rt = Runtime(user.cfg)
    rec = await rt.invoke("strict", "hello")
    assert rec.status == "failed"
    assert rec.error is not None and "does not pass 'logit_bias' through" in rec.error
    assert user.requests == []  # refused before any model was asked
    await rt.aclose()


def test_wrong_uses_are_messages(user: Project) -> None:
    from shipyard.integrations.adk import adk_agent

    with pytest.raises(ShipyardError, match="adk_agent\\(\\) takes an ADK agent, App or Runner, got str"):
        adk_agent("x", "root_agent")  # type: ignore[arg-type]
    with pytest.raises(ShipyardError, match="outside the agent call it is for"), framework_spans():
        pass


def test_how_a_run_ends_maps_to_the_result() -> None:
    """ADK's events of a run (real `Event`s) as the interaction's result."""
    from google.adk.events import Event, EventActions
    from google.genai import types

    from shipyard.integrations.adk import AdkRunError, _result

    def said(author: str, text: str, **more: Any) -> Event:
        return Event(
            author=author, content=types.Content(role="model", parts=[types.Part(text=text)]), **more
        )

    done = _result([said("support", "Hi."), said("support", "Order 1 is shipped.")], "support")
    assert (done.output, done.status) == ("Order 1 is shipped.", "completed")
    moved = _result([said("refunds", "Refunded.")], "support")
    assert moved.status == "completed" and moved.metadata["adk_agents"] == ["refunds"]
    # the root agent escalates: escalated; a sub-agent leaving a loop does not
    up = _result([said("support", "A person will call you.", actions=EventActions(escalate=True))], "support")
    assert up.status == "escalated"
    loop = _result(
        [said("checker", "done", actions=EventActions(escalate=True)), said("support", "ok")], "support"
    )
    assert loop.status == "completed"
    # a tool call waiting for its answer (a long-running tool): escalated
    waiting = _result([said("support", "Asked a person.", long_running_tool_ids={"call_7"})], "support")
    assert waiting.status == "escalated" and waiting.metadata["adk_waiting_for"] == ["call_7"]
    # an error response with no answer fails the run, saying why
    with pytest.raises(AdkRunError, match="ADK ended the run on MAX_TOKENS: Maximum tokens reached"):
        _result(
            [Event(author="support", error_code="MAX_TOKENS", error_message="Maximum tokens reached")],
            "support",
        )
