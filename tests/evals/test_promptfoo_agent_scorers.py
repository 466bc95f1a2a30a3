"""promptfoo's checks on more than the reply's text, with Shipyard's parts: the trace of a real eval
run (finish reason, spans, steps, tool calls through the runner), `webhook` against a local HTTP
server, `ruby` with and without an interpreter, `is-html` / `is-refusal` edge cases, Python
transforms, and the CSV columns that change the prompt. promptfoo's own verdicts on the same
material: tests/conformance."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from debian import debian_program
from test_runner import project  # noqa: F401  (the order-desk project fixture)

from shipyard.config import ShipyardConfig
from shipyard.evals import Assertion, Case, EvalRunner, ScoreInput, build_scorer, load_suite
from shipyard.evals._scorers_promptfoo_agent import NO_RUBY, html_problem, is_refusal_text, span_pattern
from shipyard.runtime import Runtime
from shipyard.store import SpanRecord


def run(assertion: dict[str, Any], output: str, **extra: Any) -> Any:
    case = Case(id="c", input="x", metadata={"vars": {"input": "x", "city": "Oslo"}, "prompt": "x"})
    scorer = build_scorer(Assertion.model_validate(assertion))
    return asyncio.run(scorer(ScoreInput(case=case, output=output, **extra)))


async def test_trace_checks_on_a_real_eval_run(
    project: Callable[..., ShipyardConfig],  # noqa: F811
    tmp_path: Path,
) -> None:
    (tmp_path / "promptfooconfig.yaml").write_text(
        "prompts: ['{{question}}']\n"
        "tests:\n"
        "  - vars: {question: 'where is order 42?'}\n"
        "    assert:\n"
        "      - {type: finish-reason, value: stop}\n"
        "      - {type: not-finish-reason, value: length}\n"
        "      - {type: tool-call-f1, value: [lookup]}\n"
        "      - {type: trace-span-count, value: {pattern: 'execute_tool *', min: 1, max: 1}}\n"
        "      - {type: trace-span-count, value: {pattern: 'chat *', min: 5}}\n"
        "      - {type: trace-error-spans, value: 0}\n"
        "      - {type: trace-span-duration, value: {max: 60000, percentile: 95}}\n"
        "      - {type: 'trajectory:step-count', value: {type: tool, min: 1, max: 1}}\n"
        "      - {type: 'trajectory:step-count', value: {pattern: 'look*', max: 0}}\n"
        "      - {type: 'trajectory:tool-used', value: lookup}\n"
        "      - {type: 'trajectory:tool-sequence', value: {mode: exact, steps: [lookup]}}\n"
        "      - {type: 'trajectory:tool-args-match', value: {name: lookup, args: {order_id: '42'}}}\n"
        "      - {type: 'not-trajectory:tool-args-match', value: {name: lookup, args: {order_id: 42}}}\n"
    )
    cfg = project()
    rt = Runtime(cfg)
    result = await EvalRunner(rt, cfg).run(
        "shop", [load_suite(tmp_path / "promptfooconfig.yaml")], progress=False
    )
    await rt.aclose()
    [res] = result.results
    verdicts = [(s.scorer, s.passed) for s in res.scores]
    assert verdicts == [
        ("finish_reason", True),
        ("finish_reason", True),
        ("tool_call_f1", True),
        ("trace_span_count", True),
        ("trace_span_count", False),  # an order lookup is two model calls, not five
        ("trace_error_spans", True),
        ("trace_span_duration", True),
        ("trajectory_step_count", True),
        ("trajectory_step_count", False),  # the lookup step matches `look*`
        ("trajectory_tool_used", True),
        ("trajectory_tool_sequence", True),
        # content capture is off: the span has no arguments, the recorded tool call has them
        ("trajectory_tool_args_match", True),
        ("trajectory_tool_args_match", True),  # "42" is not 42
    ], [s.reason for s in res.scores]
    assert res.outcome == "FAIL"


def span(name: str, start: int, end: int, status: str = "ok", **attributes: Any) -> SpanRecord:
    return SpanRecord(
        "t" * 32, name[:16].ljust(16, "0"), None, name, "internal", start, end, status, attributes
    )


def test_trace_checks_read_shipyard_spans() -> None:
    spans = [
        span(
            "chat gpt",
            0,
            2_000_000,
            **{"gen_ai.operation.name": "chat", "gen_ai.response.finish_reasons": ("tool_calls",)},
        ),
        span("execute_tool refund", 2_000_000, 9_000_000, "error", **{"gen_ai.tool.name": "refund"}),
        span(
            "chat gpt",
            9_000_000,
            10_000_000,
            **{"gen_ai.operation.name": "chat", "gen_ai.response.finish_reasons": ("length",)},
        ),
    ]
    assert (
        run({"type": "finish-reason", "value": "LENGTH"}, "x", spans=spans).passed is True
    )  # the last call's
    assert run({"type": "trace-error-spans", "value": 0}, "x", spans=spans).passed is False
    assert (
        run({"type": "trace-error-spans", "value": {"max_percentage": 40}}, "x", spans=spans).passed is True
    )
    assert run({"type": "trace-error-spans", "value": {"pattern": "chat*"}}, "x", spans=spans).passed is True
    assert run({"type": "trace-span-duration", "value": {"max": 5}}, "x", spans=spans).passed is False
    assert run(
        {"type": "trace-span-duration", "value": {"max": 5, "pattern": "chat*"}}, "x", spans=spans
    ).passed
    slowest_third = {"max": 2, "percentile": 66}  # sorted 1, 2, 7 ms: the 66th percentile is 2 ms
    assert run({"type": "trace-span-duration", "value": slowest_third}, "x", spans=spans).passed is True
    steps = {"type": "trajectory_step_count", "value": {"type": "span", "min": 2, "max": 2}}
    assert run(steps, "x", spans=spans).passed is True
    # no trace at all (a replayed run with no spans) is ERROR, not a pass
    result = run({"type": "trace-span-count", "value": {"pattern": "*", "max": 3}}, "x")
    assert result.passed is None and "no spans" in result.error


def test_finish_reason_without_any_model_call_fails_and_its_negation_passes() -> None:
    assert run({"type": "finish-reason", "value": "stop"}, "x").passed is False
    assert run({"type": "not-finish-reason", "value": "stop"}, "x").passed is True


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [("chat *", "chat gpt-4o", True), ("CHAT*", "chat x", True), ("execute_tool ?ookup", "execute_tool lookup", True),
     ("a.b", "axb", False), ("chat", "chat gpt", False)],
)  # fmt: skip
def test_span_patterns_are_promptfoos_globs(pattern: str, name: str, matches: bool) -> None:
    assert bool(span_pattern(pattern).match(name)) is matches


def test_tool_call_f1_counts_calls_and_json_in_the_reply() -> None:
    calls = [{"name": "lookup", "arguments": {}}, {"name": "lookup", "arguments": {}}]
    result = run({"type": "tool-call-f1", "value": "lookup, refund", "threshold": 0.6}, "", tool_calls=calls)
    assert result.passed is True and result.score == pytest.approx(2 / 3)
    text = 'calling\n{"type": "tool_use", "name": "refund"}'
    assert run({"type": "tool-call-f1", "value": ["refund"]}, text).score == 1.0
    assert run({"type": "tool-call-f1", "value": ["refund"]}, "no calls").score == 0.0


class Hook(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.seen.append(body)
        if self.path == "/down":
            self.send_response(503)
            self.end_headers()
            return
        answer = {"/yes": {"pass": True, "score": 0.8, "reason": "fine"}, "/no": {"pass": False}}.get(
            self.path, {"reason": "no verdict"}
        )
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_webhook_posts_the_output_and_context_and_reads_the_verdict(hook: str) -> None:
    yes = run({"type": "webhook", "value": f"{hook}/yes"}, "the reply")
    assert (yes.passed, yes.score, yes.reason) == (True, 0.8, "fine")
    assert Hook.seen[-1] == {
        "output": "the reply",
        "context": {"prompt": "x", "vars": {"input": "x", "city": "Oslo"}},
    }
    no = run({"type": "webhook", "value": f"{hook}/no"}, "r")
    assert (no.passed, no.score) == (False, 0.0)
    inverted = run({"type": "not-webhook", "value": f"{hook}/yes"}, "r")
    assert inverted.passed is False and inverted.score == pytest.approx(0.2)
    assert (
        run({"type": "webhook", "value": f"{hook}/other"}, "r").passed is True
    )  # no `pass`: promptfoo passes it
    down = run({"type": "webhook", "value": f"{hook}/down"}, "r")
    assert down.passed is False and "503" in down.reason


def test_webhook_that_nobody_answers_fails_saying_so() -> None:
    result = run({"type": "webhook", "value": "http://127.0.0.1:9/judge", "timeout_s": 2}, "r")
    assert result.passed is False and result.reason.startswith("webhook error")


def test_webhook_needs_a_url() -> None:
    with pytest.raises(ValueError, match="http"):
        build_scorer(Assertion.model_validate({"type": "webhook", "value": "judge.example"}))


def test_ruby_without_an_interpreter_is_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shipyard.evals._scorers_promptfoo_agent.shutil.which", lambda name: None)
    result = run({"type": "ruby", "value": "output.length > 1"}, "hello")
    assert result.passed is None and result.error == NO_RUBY


def test_ruby_runs_with_context_when_ruby_is_there(tmp_path: Path) -> None:
    debian_program("ruby")
    assert (
        run({"type": "ruby", "value": "output.include?(context['vars']['city'])"}, "in Oslo").passed is True
    )
    assert run({"type": "ruby", "value": "raise 'boom'"}, "x").passed is False
    (tmp_path / "check.rb").write_text(
        "module Checks\n  def self.long(output, context)\n    output.length\n  end\nend\n"
    )
    value = {
        "type": "ruby",
        "value": "file://check.rb:Checks.long",
        "base_dir": str(tmp_path),
        "threshold": 3,
    }
    assert run(value, "abcd").score == 4.0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<p>plain</p>", None),
        ("<template><p>x</p></template>", None),
        ("<svg><circle r='1'/></svg>", None),
        ("<body>text straight in a written body</body>", None),
        ("text <b>bold</b>", "Output must be wrapped in HTML tags"),
        ("<?xml version='1.0'?><a/>", "Output appears to be XML, not HTML"),
        ("<foo>bar</foo>", "Output does not contain recognized HTML elements"),
        ("   ", "Output is empty"),
    ],
)
def test_is_html_reads_html_as_the_standard_parses_it(text: str, problem: str | None) -> None:
    assert html_problem(text) == problem


@pytest.mark.parametrize(
    ("text", "refuses"),
    [("I cannot do that", True), ("sorry!", True), ("As an AI, I can", True), ("Sure", False),
     ("The asana is not appropriateness-tested", False), ("that is NOT LEGAL", True)],
)  # fmt: skip
def test_is_refusal_uses_promptfoos_phrases(text: str, refuses: bool) -> None:
    assert is_refusal_text(text) is refuses


def test_python_transforms_and_prompt_columns_load_from_a_promptfoo_config(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("def get_transform(output, context):\n    return output[::-1]\n")
    (tmp_path / "tests.csv").write_text(
        'q,__prefix,__suffix,__expected,__metadata:tags[]\nab,<,>,equals: >ba<,"x,y"\n'
    )
    (tmp_path / "promptfooconfig.yaml").write_text(
        "prompts: ['{{q}}']\ndefaultTest: {options: {transform: 'file://t.py'}}\ntests: file://tests.csv\n"
    )
    [case] = load_suite(tmp_path / "promptfooconfig.yaml").cases
    assert case.first_input == "<ab>" and case.metadata["prompt"] == "<ab>"
    assert case.metadata["tags"] == ["x", "y"]
    [assertion] = case.assertions
    scorer = build_scorer(assertion)
    assert asyncio.run(scorer(ScoreInput(case=case, output="<ab>"))).passed is True


def test_types_shipyard_does_not_run_are_error_naming_why(tmp_path: Path) -> None:
    (tmp_path / "promptfooconfig.yaml").write_text(
        "prompts: ['{{q}}']\ntests:\n"
        "  - vars: {q: a}\n    assert: [{type: skill-used, value: pdf}]\n"
        "  - vars: {q: b}\n    assert: [{type: not-trace-span-count, value: {pattern: '*', max: 1}}]\n"
        "  - vars: {q: c}\n    assert: [{type: contains, value: c}]\n"
        "  - vars: {q: d}\n    providerOutput: fixed\n    assert: [{type: contains, value: d}]\n"
    )
    cases = load_suite(tmp_path / "promptfooconfig.yaml").cases
    assert [[a.type for a in c.assertions] for c in cases] == [
        ["unsupported"],
        ["unsupported"],
        ["contains"],
        ["contains", "unsupported"],
    ]
    assert "scores the agent's own replies" in cases[3].assertions[1].value
    assert "coding-agent providers" in cases[0].assertions[0].value
    assert "does not negate" in cases[1].assertions[0].value


def test_a_model_call_sent_with_tool_choice_is_not_a_tool_step() -> None:
    # promptfoo reads any `*.tool_*` attribute of a foreign trace as a tool name; ours are known
    chat = {"gen_ai.operation.name": "chat", "shipyard.request.tool_choice": "auto"}
    spans = [
        span("chat gpt", 0, 5, **chat),
        span("execute_tool lookup", 6, 9, **{"gen_ai.tool.name": "lookup"}),
    ]
    exact = {"type": "trajectory_tool_sequence", "value": {"mode": "exact", "steps": ["lookup"]}}
    assert run(exact, "", spans=spans).passed is True
    foreign = [span("llm call", 0, 5, **{"llm.tool_choice": "auto"})]
    assert run({"type": "trajectory_tool_used", "value": "auto"}, "", spans=foreign).passed is True


def test_trajectory_values_are_checked_when_the_suite_loads() -> None:
    for bad in (
        {"type": "trajectory_tool_used", "value": {"min": 1}},
        {"type": "trajectory_tool_sequence", "value": []},
        {"type": "trajectory_tool_args_match", "value": {"name": "lookup"}},
        {"type": "trajectory_tool_args_match", "value": {"name": "lookup", "args": {}, "mode": "fuzzy"}},
        {"type": "trajectory_step_count", "value": {"type": "tool"}},
    ):
        with pytest.raises(ValueError):
            build_scorer(Assertion.model_validate(bad))


@pytest.fixture(scope="module")
def mock_llm() -> Iterator[str]:
    from shipyard.llm import MockLLMServer

    server = MockLLMServer({"default": "Order 42 is shipped."})
    server.start()
    yield server.url
    server.stop()


async def test_perplexity_from_the_logprobs_of_a_real_model_call(
    project: Callable[..., ShipyardConfig],  # noqa: F811
    mock_llm: str,
    tmp_path: Path,
) -> None:
    import math
    import re

    from shipyard.llm._mockserver import mock_logprob

    (tmp_path / "promptfooconfig.yaml").write_text(
        "prompts: ['{{question}}']\n"
        "tests:\n"
        "  - vars: {question: 'where is order 42?'}\n"
        "    assert:\n"
        "      - {type: perplexity, threshold: 100}\n"
        "      - {type: perplexity-score}\n"
    )
    suite = load_suite(tmp_path / "promptfooconfig.yaml")
    tokens = re.findall(r"\s*\S+", "Order 42 is shipped.")
    mean = sum(mock_logprob(t) for t in tokens) / len(tokens)
    for logprobs, expect in ((True, "PASS"), (False, "ERROR")):
        model = f"  mocked: {{provider: openai, base_url: '{mock_llm}', logprobs: {str(logprobs).lower()}}}\n"
        cfg = project(model="mocked", extra_models=model)
        rt = Runtime(cfg)
        [res] = (await EvalRunner(rt, cfg).run("shop", [suite], progress=False)).results
        await rt.aclose()
        assert res.outcome == expect, res.reasons
        if logprobs:
            assert res.scores[0].reason == f"perplexity {math.exp(-mean):.2f}"
            assert res.scores[1].score == pytest.approx(1 / (1 + math.exp(-mean)))
        else:
            assert "logprobs: true" in (res.scores[0].error or "")


def test_meteor_without_wordnet_is_error_naming_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from shipyard.evals._scorers_promptfoo_meteor import NO_WORDNET

    monkeypatch.setenv("SHIPYARD_WORDNET_DIR", str(tmp_path))  # a folder without WordNet's files
    result = run({"type": "meteor", "value": "the cat sat"}, "the cat sat")
    assert result.passed is None and result.error == NO_WORDNET


def test_meteor_on_a_small_wordnet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # WordNet's own file layout, two synsets: {big, vast} and {fast, quick}
    header = "  1 license line\n"
    at = f"{len(header):08d}"
    (tmp_path / "data.adj").write_text(header + f"{at} 00 a 02 big 0 vast 0 000 | of size\n")
    (tmp_path / "data.adv").write_text(header + f"{at} 02 r 02 fast 0 quick 0 000 | with speed\n")
    (tmp_path / "index.adj").write_text(header + f"big a 1 0 1 0 {at}  \nvast a 1 0 1 0 {at}  \n")
    (tmp_path / "index.adv").write_text(header + f"fast r 1 0 1 0 {at}  \nquick r 1 0 1 0 {at}  \n")
    for pos in ("noun", "verb"):
        (tmp_path / f"index.{pos}").write_text(header)
        (tmp_path / f"data.{pos}").write_text(header)
    monkeypatch.setenv("SHIPYARD_WORDNET_DIR", str(tmp_path))
    same = run({"type": "meteor", "value": "the vast dog ran fast"}, "the big dog ran quick")
    exact = run({"type": "meteor", "value": "the big dog ran quick"}, "the big dog ran quick")
    assert same.passed is True and same.score == pytest.approx(exact.score)  # synonyms count as matches
    # as in promptfoo, synonyms are looked up for the stems left over: `large` became `larg`
    stemmed = run({"type": "meteor", "value": "the large dog ran fast"}, "the big dog ran quick")
    assert stemmed.score < same.score
