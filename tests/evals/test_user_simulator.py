"""`scenario` cases (ADK's `conversation_scenario`) end to end: ADK's own scenario eval set
(tests/conformance/data/adk/conversation_scenario, vendored) and Shipyard scenario suites, run by the
runner against the order desk on the project's mock LLM server over real HTTP, which also plays the
simulated user (scripted rules). Without `evals.user_simulator` the case is SKIPPED with the reason;
with it, the simulator plays the user from the starting prompt until the stop signal or max_turns."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from order_shop import RULES, shop_project
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.config import ShipyardConfig, load_config
from shipyard.errors import ConfigError
from shipyard.evals import EvalRunner, decide_gate, load_suite, summarize_run
from shipyard.evals._reports import render_junit
from shipyard.evals._simulator import render_prompt, transcript
from shipyard.llm import MockLLMServer
from shipyard.runtime import Runtime
from shipyard.store import InteractionRecord

ADK_SCENARIO = Path(__file__).parents[1] / "conformance" / "data" / "adk" / "conversation_scenario"

SIMULATED_USER = [  # the mock server plays the simulated user too: ADK's prompt starts with this
    {"name": "sim-silent", "when": {"user": "(?s)Simulated User.*SILENT"}, "reply": ""},
    {"name": "sim-loop", "when": {"user": "(?s)Simulated User.*LOOP"}, "reply": "hello again"},
    {
        "name": "sim-done",
        "when": {"user": "(?s)Simulated User.*Order 42 is shipped"},
        "reply": "Thanks! </FINISHED>",
    },
    {"name": "sim-ask", "when": {"user": "Simulated User"}, "reply": "where is order 42?"},
]

SCENARIOS = """\
name: simulated
cases:
  - id: order
    scenario: {starting_prompt: "Hello", conversation_plan: "Find out where order 42 is."}
    expected: "shipped"
  - id: loop
    scenario: {starting_prompt: "Hello", conversation_plan: "LOOP forever", max_turns: 3}
    expected: "Hello"
  - id: loop-default
    scenario: {starting_prompt: "Hello", conversation_plan: "LOOP with the project's limit"}
    expected: "Hello"
  - id: silent
    scenario: {starting_prompt: "Hello", conversation_plan: "SILENT"}
    expected: "anything"
  - id: plain
    input: "where is order 7?"
    expected: "shipped"
"""


def _rules() -> dict[str, Any]:
    rules = yaml.safe_load(RULES)
    rules["rules"] = SIMULATED_USER + rules["rules"]
    return rules


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    s = MockLLMServer(_rules())
    with s:
        yield s


@pytest.fixture
def project(tmp_path: Path, server: MockLLMServer) -> Iterator[Callable[..., ShipyardConfig]]:
    """The order desk on the mock server; `make(simulator=...)` writes shipyard.yaml and loads it."""
    url = server.url
    with shop_project(tmp_path, "simshop") as module:

        def make(simulator: str = "") -> ShipyardConfig:
            (tmp_path / "shipyard.yaml").write_text(
                textwrap.dedent(f"""\
                models:
                  mock: {{provider: openai, base_url: '{url}', max_retries: 0, prices: {{input: 1.0, output: 2.0}}}}
                  user: {{provider: openai, base_url: '{url}', max_retries: 0, prices: {{input: 0.5, output: 0.5}}}}
                agents:
                  shop: {{entry: '{module}:shop', model: {{name: mock}}}}
                gates:
                  pre-merge: {{suites: [adk/conversation_scenario.test.json]}}
                """)
                + simulator
            )
            return load_config(tmp_path / "shipyard.yaml")

        yield make


def _adk_suite(tmp_path: Path) -> Path:
    shutil.copytree(ADK_SCENARIO, tmp_path / "adk")
    return tmp_path / "adk" / "conversation_scenario.test.json"


async def _run(cfg: ShipyardConfig, suite: Path, **kw: Any) -> tuple[Any, list[InteractionRecord]]:
    rt = Runtime(cfg)
    seen: list[InteractionRecord] = []
    rt.sinks.append(seen.append)
    try:
        result = await EvalRunner(rt, cfg, concurrency=2, **kw).run(
            "shop", [load_suite(suite)], progress=False
        )
    finally:
        await rt.aclose()
    return result, seen


async def test_adk_scenario_without_a_simulator_is_skipped_with_the_reason_and_fails_the_gate(
    project: Callable[..., ShipyardConfig], tmp_path: Path, server: MockLLMServer
) -> None:
    cfg = project()
    result, seen = await _run(cfg, _adk_suite(tmp_path))
    (only,) = result.results
    assert only.case_id == "CS-1" and only.outcome == "SKIPPED"
    assert result.counts() == {"PASS": 0, "FAIL": 0, "ERROR": 0, "SKIPPED": 1}
    assert "needs a user simulator" in (only.error or "") and "evals.user_simulator" in (only.error or "")
    assert seen == [] and server.app is not None and not server.app.recent  # nothing ran, nothing called
    summary = summarize_run(result)
    o = summary.overall
    assert (o.cases, o.passed, o.failed, o.errors, o.skipped, o.pass_rate) == (1, 0, 0, 0, 1, 0.0)
    assert summary.complete and summary.failing_cases() == [] and len(summary.skipped_cases()) == 1
    assert summary.skipped_cases()[0].reasons[0].startswith("skipped: a scenario case needs a user simulator")
    decision = decide_gate(summary, cfg.gates.stage("pre-merge"))
    assert decision.verdict == "FAIL"
    completeness = decision.checks[0]
    assert completeness.name == "completeness" and not completeness.passed
    assert "1 case(s) were SKIPPED and did not run" in completeness.detail
    assert "test/CS-1: skipped: a scenario case needs a user simulator" in completeness.detail
    root = ET.fromstring(render_junit(summary, decision))
    case = root.find(".//testcase[@name='CS-1']")
    assert case is not None
    skipped = case.find("skipped")
    assert skipped is not None and "needs a user simulator" in skipped.get("message", "")
    assert case.find("failure") is None and case.find("error") is None
    assert root.get("skipped") == "1"


async def test_adk_scenario_is_played_by_the_configured_simulator(
    project: Callable[..., ShipyardConfig], tmp_path: Path, server: MockLLMServer
) -> None:
    """ADK's scenario ("Hello", "Ask the agent to do something"): the simulator asks for order 42
    after the greeting and stops once it is answered. ADK's only criterion there, hallucinations_v1,
    is not one Shipyard scores: the played conversation is ERROR naming it, never a pass."""
    cfg = project("evals:\n  user_simulator: {model: user, max_turns: 6}\n")
    result, seen = await _run(cfg, _adk_suite(tmp_path))
    (only,) = result.results
    assert only.outcome == "ERROR" and "hallucinations_v1" in " ".join(only.reasons)
    turns = sorted(seen, key=lambda r: r.metadata["eval_turn"])
    assert [r.input for r in turns] == ["Hello", "where is order 42?"]
    assert [r.output for r in turns] == ["Hello! Ask me about an order.", "Order 42 is shipped."]
    assert only.tool_calls == [
        {"name": "lookup", "arguments": {"order_id": "42"}, "status": "success", "turn": 1}
    ]
    assert server.app is not None
    prompts = [
        b["messages"][0]["content"]
        for b in server.app.recent
        if len(b["messages"]) == 1 and "Simulated User" in str(b["messages"][0]["content"])
    ]
    history = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hello! Ask me about an order."},
    ]
    assert prompts[0] == render_prompt("Ask the agent to do something", transcript(history, "shop"))
    assert prompts[0].endswith("user: Hello\n\nshop: Hello! Ask me about an order.")
    assert len(prompts) == 2  # one call per further user turn; the second said </finished>
    assert only.judge_cost_usd > 0 and only.judge_input_tokens > 0  # the simulator's calls, not the agent's


async def test_scenario_suite_stop_signal_turn_limit_and_a_silent_simulator(
    project: Callable[..., ShipyardConfig], tmp_path: Path, server: MockLLMServer
) -> None:
    cfg = project("evals:\n  user_simulator: {model: user, max_turns: 5}\n")
    (tmp_path / "simulated.yaml").write_text(SCENARIOS)
    result, seen = await _run(cfg, tmp_path / "simulated.yaml")
    by_id = {r.case_id: r for r in result.results}
    assert {k: r.outcome for k, r in by_id.items()} == {
        "order": "PASS",
        "loop": "PASS",
        "loop-default": "PASS",
        "silent": "ERROR",
        "plain": "PASS",
    }
    turns = {
        cid: sorted(r.metadata["eval_turn"] for r in seen if r.metadata["eval_case"] == cid) for cid in by_id
    }
    assert turns["order"] == [0, 1]  # the stop signal (any case) ended it
    assert turns["loop"] == [0, 1, 2]  # the case's max_turns (3, the starting prompt included)
    assert turns["loop-default"] == [0, 1, 2, 3, 4]  # evals.user_simulator.max_turns (5)
    assert turns["silent"] == [0]
    assert by_id["loop"].output == "Hello! Ask me about an order."
    assert by_id["silent"].error == "user simulator, after turn 1: its model 'user' returned an empty message"
    assert by_id["plain"].judge_cost_usd == 0  # a plain case never calls the simulator


async def test_simulated_turns_are_recorded_and_replayed(
    project: Callable[..., ShipyardConfig], tmp_path: Path
) -> None:
    cfg = project("evals:\n  user_simulator: {model: user, max_turns: 5}\n")
    (tmp_path / "simulated.yaml").write_text(SCENARIOS)
    recorded, _ = await _run(cfg, tmp_path / "simulated.yaml", mode="record")
    replayed, seen = await _run(cfg, tmp_path / "simulated.yaml", mode="replay")
    assert [(r.case_id, r.outcome, r.output) for r in replayed.results] == [
        (r.case_id, r.outcome, r.output) for r in recorded.results
    ]
    assert all(r.replayed for r in replayed.results if r.case_id != "silent")
    assert sorted(r.metadata["eval_turn"] for r in seen if r.metadata["eval_case"] == "order") == [0, 1]


def test_user_simulator_model_must_be_a_configured_model(
    project: Callable[..., ShipyardConfig],
) -> None:
    with pytest.raises(ConfigError) as err:
        project("evals:\n  user_simulator: {model: gemini-2.5-flash}\n")
    assert "evals.user_simulator uses model 'gemini-2.5-flash', not defined under models" in str(err.value)
    with pytest.raises(ConfigError) as err:
        project("evals:\n  user_simulator: {model: user, turns: 3}\n")
    assert "turns" in str(err.value)


def test_cli_eval_run_exits_0_on_skipped_cases_and_the_gate_fails_them(
    project: Callable[..., ShipyardConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project()
    _adk_suite(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    cli = CliRunner()
    args = ["eval", "run", "--agent", "shop", "--suite", "adk/conversation_scenario.test.json"]
    result = cli.invoke(app, [*args, "--report", "json:out/run.json", "--report", "html:out/run.html"])
    assert result.exit_code == 0, result.output  # SKIPPED is not a failure of `eval run`, as in pytest
    assert "1 case(s) SKIPPED, not run and not counted as passed" in result.output
    assert "Skipped cases (1)" in result.output and "needs a user simulator" in result.output
    doc = json.loads((tmp_path / "out/run.json").read_text())
    assert doc["summary"]["overall"]["skipped"] == 1 and doc["summary"]["overall"]["passed"] == 0
    assert (
        doc["results"][0]["outcome"] == "SKIPPED" and "needs a user simulator" in doc["results"][0]["error"]
    )
    html = (tmp_path / "out/run.html").read_text()
    assert "Skipped cases (1)" in html and "needs a user simulator" in html
    gate = cli.invoke(app, ["gate", "pre-merge", "--agent", "shop", "--report", "junit:out/gate.xml"])
    assert gate.exit_code == 1, gate.output
    assert re.search(r"completeness.*were SKIPPED and did not run", gate.output.replace("\n", " "))
    root = ET.parse(tmp_path / "out/gate.xml").getroot()
    assert root.get("skipped") == "1" and root.find(".//testcase[@name='CS-1']/skipped") is not None
