"""What the framework integration tests share (OpenAI Agents SDK, LangGraph, Google ADK, the model
proxy): a project on disk whose model is a mock LLM server on loopback, the project's app served on
uvicorn, eval runs, the checks every framework's interactions must pass, and the runs the `adk` and
`langgraph` starter templates (one support desk: `lookup_order`, `issue_refund`) both go through."""

from __future__ import annotations

import asyncio
import io
import itertools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner
from waiting import wait_until

from shipyard.cli import app as cli
from shipyard.config import ShipyardConfig, load_config
from shipyard.evals import EvalRunner, EvalRunResult, Suite, load_suite
from shipyard.llm import MockLLMServer
from shipyard.observe import configure_logging
from shipyard.runtime import Runtime
from shipyard.server import ServerState, create_app, uvicorn_config
from shipyard.store import InteractionRecord

TEMPLATE_URL = "http://127.0.0.1:8100/v1"
"""Where a starter template's model points (`shipyard mock-llm`'s default port)."""

_counter = itertools.count()


# projects -----------------------------------------------------------------------------------------
@dataclass
class Project:
    """A project folder, its config, the mock LLM server its model points at, its agent module.

    Args:
        root: the project folder.
        cfg: its loaded shipyard.yaml.
        mock: the mock LLM server its model `mock` points at (started).
        module: the name its agent module is imported under.
        also: the names of its other modules (forgotten with it).
    """

    root: Path
    cfg: ShipyardConfig
    mock: MockLLMServer
    module: str
    also: tuple[str, ...] = ()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """What the mock server was asked, oldest first."""
        assert self.mock.app is not None
        return list(self.mock.app.recent)

    @property
    def agents(self) -> Any:
        """The project's imported agent module."""
        return sys.modules[self.module]


def module_name(prefix: str) -> str:
    """A module name no other test uses (`prefix` and a number): each test imports its own agents."""
    return f"{prefix}{next(_counter)}"


def init_template(root: Path, template: str, rules: str = "") -> Project:
    """`shipyard init --template {template}` into `root` through the real CLI, its model pointed at a
    mock LLM server started on the template's own rules file (`rules`: YAML rule items put before
    the template's own, so they answer first)."""
    result = CliRunner().invoke(cli, ["init", str(root), "--template", template])
    configure_logging(stream=io.StringIO())  # the CLI logged to the runner's stderr, closed now
    assert result.exit_code == 0, result.output
    assert "shipyard mock-llm --rules rules/support.yaml &" in result.output  # NEXT.txt
    path = root / "rules" / "support.yaml"
    if rules:
        path.write_text(path.read_text().replace("rules:\n", "rules:\n" + rules, 1))
    mock = MockLLMServer(path)
    url = mock.start()
    config = root / "shipyard.yaml"
    text = config.read_text()
    assert f"    base_url: {TEMPLATE_URL}\n" in text
    config.write_text(text.replace(TEMPLATE_URL, url + MOCK_TIMEOUTS, 1))
    return Project(root, load_config(config), mock, "agent")


REFUND_POLICY = """\
    guardrails:
      tool_call:
        - kind: tool_policy
          name: refund_policy
          tools: [{refund}]
          requires: {{tool: lookup_order, same_arguments: [order_id]{result}}}
"""
"""A starter's refund tool (`refund`) runs only after a lookup_order of the same order (`result`:
more of the requirement, e.g. `, result: {refundable: true}`); see `add_to_agent`."""

BLIND_REFUND = """\
  - name: refund-without-lookup
    when: {user: '(?i)right away\\D*(?P<id>\\d{5})', fresh: true}
    tool_calls: [{name: issue_refund, arguments: {order_id: "{id}", reason: "asked"}}]
"""
"""A mock-model rule for `init_template`: refund the order without looking it up when told "right
away" (the langgraph and adk starters' own rules look it up first)."""


def add_to_agent(project: Project, text: str) -> None:
    """Insert YAML lines under `agents.support` of the project's shipyard.yaml, and load it again."""
    config = project.root / "shipyard.yaml"
    lines = config.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("    model: {name: mock}")) + 1
    config.write_text("".join([*lines[:at], text, *lines[at:]]))
    project.cfg = load_config(config)


MOCK_TIMEOUTS = "\n    timeout_s: 60\n    connect_timeout_s: 60"
"""The template model's attempt timeouts in the tests (YAML lines after its base_url): as long as the
agent's own (60 s). The mock server runs in the test's process, and an attempt's clock runs while the
event loop runs the other interactions' framework code (16 LangGraph interactions at once blocked it for
up to 1 s on an idle 2-core machine, 8 s while the graph was first loaded): on a loaded CI machine that
can outlast the default 5 s connect timeout: the attempt times out and is retried, and its attempt
spans fail the span checks (seen once in CI). An answer is never a timeout here."""


def write_config(
    root: Path,
    mock_url: str,
    entries: dict[str, str],
    model: str = "max_retries: 1, backoff_base_s: 0.001",
) -> ShipyardConfig:
    """Write and load `root`/shipyard.yaml: one model `mock` at `mock_url` priced 1.0 / 2.0 per
    million tokens (`model`: its other settings, as YAML flow mapping items) and one agent per item
    of `entries` (agent name: `module:attribute`) on it, with a 60 s timeout."""
    agents = "".join(
        f"  {name}: {{entry: '{entry}', model: {{name: mock}}, timeout_s: 60}}\n"
        for name, entry in entries.items()
    )
    (root / "shipyard.yaml").write_text(
        f"models:\n  mock: {{base_url: {mock_url}, {model}, prices: {{input: 1.0, output: 2.0}}}}\n"
        f"agents:\n{agents}"
    )
    return load_config(root / "shipyard.yaml")


def scripted_project(root: Path, source: str, agents: list[str], prefix: str) -> tuple[ShipyardConfig, str]:
    """A project of one agent module (`source`, imported under a name of its own starting with
    `prefix`) on the offline scripted model; `agents` are the module's attributes that are agents,
    each configured under its own name. Returns the config and the module's name."""
    module = module_name(prefix)
    (root / f"{module}.py").write_text(source)
    (root / "rules.yaml").write_text('default: "hi"\n')
    (root / "shipyard.yaml").write_text(
        "models:\n  scripted: {provider: scripted, rules: rules.yaml}\nagents:\n"
        + "".join(f"  {name}: {{entry: '{module}:{name}', model: {{name: scripted}}}}\n" for name in agents)
    )
    return load_config(root / "shipyard.yaml"), module


def drop_modules(root: Path, *modules: str) -> None:
    """Forget a test's agent modules and take its folder off the import path (another test imports
    its own)."""
    for name in modules:
        sys.modules.pop(name, None)
    if str(root) in sys.path:
        sys.path.remove(str(root))


def forget(project: Project) -> None:
    """Stop the project's mock server and forget its modules."""
    project.mock.stop()
    drop_modules(project.root, project.module, *project.also)


# served ---------------------------------------------------------------------------------------------
@dataclass
class Served:
    """The served app: its base URL, its server state and what it logged."""

    url: str
    state: ServerState
    logs: io.StringIO


@contextmanager
def serve(cfg: ShipyardConfig) -> Iterator[Served]:
    """The project's app (`shipyard serve`'s, with its uvicorn settings) on uvicorn in a thread, on a
    free loopback port; enters once it accepts connections (the app warms its agents up before)."""
    logs = io.StringIO()
    app = create_app(cfg, log_stream=logs)
    server = uvicorn.Server(uvicorn_config(app, cfg.server, host="127.0.0.1", port=0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), "the server to start")
        assert server.started, "the server did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Served(f"http://127.0.0.1:{port}", app.state.shipyard, logs)
    finally:
        server.should_exit = True
        thread.join(30)


async def chat(h: httpx.AsyncClient, model: str, *turns: str) -> httpx.Response:
    """POST /v1/chat/completions to `model` with `turns` as the conversation: user, assistant, user,
    ... (the last one the user's); the answer must be 200."""
    messages = [{"role": "assistant" if i % 2 else "user", "content": text} for i, text in enumerate(turns)]
    r = await h.post("/v1/chat/completions", json={"model": model, "messages": messages})
    assert r.status_code == 200, r.text
    return r


# runs and checks ------------------------------------------------------------------------------------
async def run_suites(
    cfg: ShipyardConfig, agent: str, suites: list[Suite], mode: str = "live", **options: Any
) -> EvalRunResult:
    """An eval run of `agent` over `suites` (`mode`: live, record or replay) on a runtime of its own;
    `options` go to the EvalRunner (e.g. replay_dir)."""
    rt = Runtime(cfg)
    try:
        runner = EvalRunner(rt, cfg, mode=mode, **options)  # type: ignore[arg-type]
        return await runner.run(agent, suites, progress=False)
    finally:
        await rt.aclose()


def tool_calls(rec: InteractionRecord) -> list[tuple[str, dict[str, Any], str]]:
    """The record's tool calls as (name, arguments, status)."""
    return [(t.name, t.arguments, t.status) for t in rec.tool_calls]


def assert_priced(rec: InteractionRecord, model_calls: int) -> None:
    """This many model calls, each with tokens and a cost adding up to the record's and each a `chat`
    span with tokens and cost; every span in the interaction's own trace."""
    assert len(rec.llm_calls) == model_calls
    assert all(c.input_tokens > 0 and c.output_tokens > 0 and c.cost_usd > 0 for c in rec.llm_calls)
    assert rec.input_tokens == sum(c.input_tokens for c in rec.llm_calls) and rec.output_tokens > 0
    assert rec.cost_usd == pytest.approx(sum(c.cost_usd for c in rec.llm_calls))
    chats = [s.attributes for s in rec.spans if s.name.startswith("chat ")]
    assert len(chats) == model_calls
    assert all(
        a["gen_ai.usage.input_tokens"] > 0
        and a["gen_ai.usage.output_tokens"] > 0
        and a["shipyard.cost_usd"] > 0
        for a in chats
    )
    assert {s.trace_id for s in rec.spans} == {rec.trace_id}


def paths(rec: InteractionRecord) -> list[str]:
    """Each span of the record as the path of names from its root, e.g.
    `invoke_agent support > agent Support > turn 1 > chat mock`, sorted."""
    by_id = {s.span_id: s for s in rec.spans}

    def path(span: Any) -> str:
        parent = by_id.get(span.parent_id or "")
        return span.name if parent is None else f"{path(parent)} > {span.name}"

    return sorted(path(s) for s in rec.spans)


def span_names(rec: InteractionRecord) -> list[str]:
    """The names of the record's spans, sorted."""
    return sorted(s.name for s in rec.spans)


# the support-desk templates (`adk`, `langgraph`) -------------------------------------------------
def assert_smoke_suite_and_gate_pass() -> None:
    """In the template's folder (the current directory): its smoke suite passes through `shipyard
    eval run`, and `shipyard gate pre-merge` and `shipyard gate production` pass (the first release:
    its regression check is skipped, and said to be)."""
    result = CliRunner().invoke(
        cli, ["eval", "run", "--agent", "support", "--suite", "evals/support/smoke.yaml"]
    )
    assert result.exit_code == 0, result.output
    assert "│ all " in result.output and "100.0%" in result.output
    result = CliRunner().invoke(cli, ["gate", "pre-merge", "--agent", "support"])
    assert result.exit_code == 0, result.output
    assert "Decision: PASS" in result.output
    result = CliRunner().invoke(cli, ["gate", "production", "--agent", "support"])
    configure_logging(stream=io.StringIO())  # not the stderr of the last CliRunner, closed after it
    assert result.exit_code == 0, result.output
    assert "checks passed, 1 skipped (regression: no baseline yet" in " ".join(result.output.split())


SHOULD_FAIL = """\
name: should-fail
cases:
  - id: must-not-call-a-tool-it-calls
    input: Where is my order 10001?
    assert: [{type: must_not_call, value: lookup_order}]
  - id: must-not-refund-but-it-refunds
    input: Please refund order 10002, it arrived broken.
    assert: [{type: must_not_call, value: [issue_refund]}]
  - id: wrong-trajectory
    input: Where is my order 10001?
    trajectory: {mode: exact, calls: [{name: lookup_order}, {name: issue_refund}]}
  - id: wrong-arguments
    input: Where is my order 10001?
    trajectory: {mode: exact, calls: [{name: lookup_order, args: {order_id: "10002"}}]}
  - id: forbidden-in-trajectory
    input: Please refund order 10002, it arrived broken.
    trajectory: {mode: in_order, calls: [{name: lookup_order}], forbidden: [issue_refund]}
  - id: passes
    input: Where is my order 10001?
    assert: [{type: must_not_call, value: issue_refund}]
    trajectory: {mode: exact, calls: [{name: lookup_order, args: {order_id: "10001"}}]}
"""


async def assert_wrong_expectations_fail(
    project: Project, more: str = "", called: dict[str, str] | None = None
) -> None:
    """SHOULD_FAIL's cases (and `more` cases, YAML list items) against the template's support agent:
    every case but `passes` fails, each for its reason. `called`: the `must_not_call` reason of each
    of the `more` cases (case id: reason)."""
    suite_file = project.root / "evals" / "support" / "should_fail.yaml"
    suite_file.write_text(SHOULD_FAIL + more)
    result = await run_suites(project.cfg, "support", [load_suite(suite_file)])
    outcomes = {r.case_id: r for r in result.results}
    called = {
        "must-not-call-a-tool-it-calls": "called lookup_order",
        "must-not-refund-but-it-refunds": "called issue_refund",
        **(called or {}),
    }
    failing = [*called, "wrong-trajectory", "wrong-arguments", "forbidden-in-trajectory"]
    assert {k: r.outcome for k, r in outcomes.items()} == {**dict.fromkeys(failing, "FAIL"), "passes": "PASS"}

    def reason(case: str, scorer: str) -> str:
        return next(s.reason for s in outcomes[case].scores if s.scorer == scorer)

    assert {case: reason(case, "must_not_call") for case in called} == called
    assert "expected ['lookup_order', 'issue_refund'], got ['lookup_order']" in reason(
        "wrong-trajectory", "trajectory"
    )
    assert "called forbidden tool 'issue_refund'" in reason("forbidden-in-trajectory", "trajectory")


ASKED = "Where is my order 10001?"
ANSWERED = "Order 10001 is shipped."


async def assert_served_with_history(h: httpx.AsyncClient, project: Project) -> dict[str, Any]:
    """The served template: ready; its support agent answers an order question over chat completions
    (a lookup_order tool call, two priced model calls, found by its interaction id); and earlier
    turns of a conversation reach the model before the new one. Returns what
    /admin/interactions/{id} said of the order question."""
    ready = await h.get("/readyz")
    assert ready.status_code == 200 and ready.json()["agents"]["support"] == "ok"
    r = await chat(h, "support", ASKED)
    assert r.json()["choices"][0]["message"]["content"] == ANSWERED
    assert r.json()["usage"]["prompt_tokens"] > 0
    found: dict[str, Any] = (await h.get(f"/admin/interactions/{r.headers['x-interaction-id']}")).json()
    rec = found["interaction"]
    assert "[Tool Call] lookup_order" in "\n".join(found["tree"])
    assert [(t["name"], t["arguments"]) for t in rec["tool_calls"]] == [
        ("lookup_order", {"order_id": "10001"})
    ]
    assert len(rec["llm_calls"]) == 2 and rec["cost_usd"] > 0
    r = await chat(h, "support", ASKED, ANSWERED, "hello")
    assert r.json()["choices"][0]["message"]["content"].startswith("Hello!")
    hello = next(req for req in reversed(project.requests) if req["messages"][-1]["content"] == "hello")
    assert [(m["role"], m["content"]) for m in hello["messages"][1:]] == [
        ("user", ASKED),
        ("assistant", ANSWERED),
        ("user", "hello"),
    ]
    return found


async def assert_replays_offline(project: Project, cases: int) -> None:
    """The template's smoke suite (`cases` cases) recorded live, then replayed with the model server
    stopped: every case passes again with the same outputs and tool calls; and run live again, it
    fails (the replay did not quietly reach a model)."""
    suite = load_suite(project.root / "evals" / "support" / "smoke.yaml")
    live = await run_suites(project.cfg, "support", [suite], "record")
    assert live.counts() == {"PASS": cases, "FAIL": 0, "ERROR": 0}, [r.error for r in live.results]
    asked = len(project.requests)
    project.mock.stop()  # offline from here on
    replayed = await run_suites(project.cfg, "support", [suite], "replay")
    assert replayed.counts() == {"PASS": cases, "FAIL": 0, "ERROR": 0}, [r.error for r in replayed.results]
    assert all(r.replayed for r in replayed.results)
    by_case = {r.case_id: r for r in live.results}
    for r in replayed.results:
        assert r.output == by_case[r.case_id].output  # a hand-off's ticket too: its tool did not run
        assert r.tool_calls == by_case[r.case_id].tool_calls
    again = await run_suites(project.cfg, "support", [suite])
    assert again.counts()["ERROR"] == cases and len(project.requests) == asked


Expected = list[tuple[str, dict[str, Any], str]]


async def concurrent_lookups_and_refunds(rt: Runtime) -> list[tuple[InteractionRecord, str, Expected]]:
    """16 interactions of the support agent at once, order questions and refund requests mixed (only
    order 10002 is refundable): each record, its order and the tool calls (name, arguments, status)
    it must have made. Every interaction has a trace of its own."""
    orders = ["10001", "10002", "10003", "10009"] * 4
    questions = [
        f"Refund order {o} please" if i % 2 else f"Where is order {o}?" for i, o in enumerate(orders)
    ]
    records = await asyncio.gather(*(rt.invoke("support", q) for q in questions))
    assert len({rec.trace_id for rec in records}) == len(records)
    runs = []
    for i, (rec, order) in enumerate(zip(records, orders, strict=True)):
        expected: Expected = [("lookup_order", {"order_id": order}, "success")]
        if i % 2 == 1 and order == "10002":
            expected.append(("issue_refund", {"order_id": order, "reason": "customer request"}, "success"))
        runs.append((rec, order, expected))
    return runs
