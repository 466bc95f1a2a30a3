"""What `shipyard run` and `shipyard eval run` export over OTLP/HTTP, received by a real local
OTLP endpoint (protobuf decoded with opentelemetry-proto) and checked against the OpenTelemetry
semantic-conventions registry (GenAI, feature flags, server, HTTP, error; data/otel/SOURCE.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from _otel import (
    DOWN_MODEL,
    GOOD_MODEL,
    REGISTRY_DIR,
    Event,
    Exercise,
    Receiver,
    Registry,
    Span,
    check_flag_event,
    check_span,
    check_wire,
    exercise,
    findings,
    write_project,
)
from order_shop import RULES

from shipyard.llm import MockLLMServer

SHIPYARD = [str(Path(sys.executable).parent / "shipyard")]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Exercise]:
    """Both projects (content capture off and on), each run in its own processes against a flaky
    endpoint (40% HTTP 500: retries) and one that is down, exporting to a receiver of its own."""
    rules = yaml.safe_load(RULES)
    out = {}
    servers = (MockLLMServer(rules, error_rate=0.4, seed=3), MockLLMServer(rules, error_rate=1.0, seed=1))
    with (
        servers[0] as good,
        servers[1] as down,
    ):
        for capture in (False, True):
            folder = tmp_path_factory.mktemp(f"capture{int(capture)}")
            with Receiver().running() as receiver:
                project = write_project(folder, good, down, content_capture=capture)
                out[capture] = exercise(project, receiver, SHIPYARD, servers=servers)
    return out


@pytest.mark.parametrize("capture", [False, True], ids=["capture off", "capture on"])
def test_every_exported_span_follows_the_conventions(
    exported: dict[bool, Exercise], registry: Registry, capture: bool
) -> None:
    ex = exported[capture]
    assert ex.exit_codes == [0, 0, 1]  # the endpoint that is down fails its interaction
    f = findings(registry, ex, content_capture=capture)
    assert f.spans >= 15 and not f.problems, "\n".join(f.problems)


def test_the_cases_that_matter_were_exported(exported: dict[bool, Exercise]) -> None:
    """Each process flushed its exporter (else nothing arrives), and the material covers retries, a
    failed call, failed and successful flag evaluations, a guardrail check and eval traffic."""
    spans = exported[False].spans
    attempts = [s for s in spans if "shipyard.attempt" in s.attributes]
    assert attempts and all("gen_ai.operation.name" not in s.attributes for s in attempts)
    assert any(s.attributes.get("http.request.resend_count") for s in attempts)
    [failed] = [s for s in spans if s.name == f"chat {DOWN_MODEL}"]
    assert failed.error and failed.attributes["gen_ai.provider.name"] == "openai"
    assert failed.attributes["gen_ai.request.model"] == DOWN_MODEL and failed.attributes["server.port"] > 0
    assert failed.attributes["shipyard.model.key"] == "down"
    ok = [s for s in spans if s.name == f"chat {GOOD_MODEL}"]
    assert ok and all(s.attributes.get("gen_ai.response.id") for s in ok)
    # the model id is the one on the wire (the mock server echoes it back as the response's model);
    # the config key stays beside it under Shipyard's own name
    assert exported[False].sent_models == {GOOD_MODEL}
    assert all(s.attributes["gen_ai.response.model"] == GOOD_MODEL for s in ok)
    assert all(s.attributes["shipyard.model.key"] == "flaky" for s in ok)
    agents = [s for s in spans if s.name == "invoke_agent shop"]
    assert agents and all(s.attributes["gen_ai.request.model"] == GOOD_MODEL for s in agents)
    events = [e for s in spans for e in s.events if e.name == "feature_flag.evaluation"]
    assert {e.attributes.get("error.type") for e in events} == {None, "flag_not_found"}
    guardrails = [s for s in spans if s.name.startswith("apply_guardrail ")]
    assert guardrails and all("gen_ai.operation.name" not in s.attributes for s in guardrails)
    assert any(s.attributes.get("shipyard.traffic_source") == "eval" for s in spans)  # eval run flushed


def test_content_only_with_content_capture(exported: dict[bool, Exercise]) -> None:
    """Tool arguments and messages (opt-in content) are exported with content capture on only, and
    the messages follow the conventions' own JSON schemas."""
    import json

    import jsonschema

    def spans(capture: bool, name: str) -> list[Span]:
        return [s for s in exported[capture].spans if s.name == name]

    content = ("gen_ai.tool.call.arguments", "gen_ai.input.messages", "gen_ai.output.messages")
    off = spans(False, "execute_tool lookup") + spans(False, f"chat {GOOD_MODEL}")
    assert off and not any(k in s.attributes for s in off for k in content)
    tools = spans(True, "execute_tool lookup")
    assert tools and all(s.attributes["gen_ai.tool.call.arguments"] == '{"order_id":"12345"}' for s in tools)
    schemas = REGISTRY_DIR / "gen-ai"
    inputs = json.loads((schemas / "gen-ai-input-messages.json").read_text())
    outputs = json.loads((schemas / "gen-ai-output-messages.json").read_text())
    chats = spans(True, f"chat {GOOD_MODEL}")
    assert chats
    for s in chats:
        sent = json.loads(s.attributes["gen_ai.input.messages"])
        jsonschema.validate(sent, inputs)
        jsonschema.validate(json.loads(s.attributes["gen_ai.output.messages"]), outputs)
        assert sent[0] == {
            "role": "user",
            "parts": [{"type": "text", "content": sent[0]["parts"][0]["content"]}],
        }
    # the turn after a tool call sends the call and its result back
    parts = [p for s in chats for m in json.loads(s.attributes["gen_ai.input.messages"]) for p in m["parts"]]
    assert {"tool_call", "tool_call_response"} <= {p["type"] for p in parts}


def test_the_checks_catch_what_the_conventions_forbid(registry: Registry) -> None:
    """The checks are the registry's, and they fail: names it does not have or deprecated, operation
    names outside its list, a port inside server.address, a missing required attribute, opt-in
    content without capture, a flag event without its key."""
    bad = Span(
        "t",
        "s",
        None,
        "chat m",
        3,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "gen_ai.system": "openai",
            "server.address": "127.0.0.1:8100",
            "gen_ai.input.messages": "[]",
            "made.up": 1,
        },
        [],
        False,
    )
    problems = "\n".join(check_span(registry, bad, content_capture=False))
    for expected in (
        "gen_ai.system is deprecated",
        "made.up is not in the registry",
        "required gen_ai.provider.name is missing",
        "server.port is required when server.address is set",
        "carries a port",
        "opt-in gen_ai.input.messages is set with content capture off",
    ):
        assert expected in problems, problems
    guardrail = Span(
        "t", "g", None, "apply_guardrail x", 1, {"gen_ai.operation.name": "apply_guardrail"}, [], False
    )
    assert "is not one of the registry's" in "\n".join(check_span(registry, guardrail, content_capture=False))
    # a model call that reports the config key instead of the model id the provider was sent
    keyed = Span(
        "t",
        "k",
        None,
        "chat flaky",
        3,
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "flaky"},
        [],
        False,
    )
    assert "is not a model id sent on the wire" in "\n".join(check_wire(keyed, {GOOD_MODEL}))
    sent = Span(
        "t",
        "k",
        None,
        f"chat {GOOD_MODEL}",
        3,
        {**keyed.attributes, "gen_ai.request.model": GOOD_MODEL},
        [],
        False,
    )
    assert check_wire(sent, {GOOD_MODEL}) == []
    event = Event("feature_flag.evaluation", {"feature_flag.result.reason": "static"})
    flag_problems = "\n".join(check_flag_event(registry, guardrail, event))
    assert (
        "required feature_flag.key is missing" in flag_problems
        and "neither a variant nor a value" in flag_problems
    )
