"""Importers: promptfoo configs, ADK eval sets and OpenAI-evals JSONL as suites, good and bad."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shipyard.evals import SuiteError, dump_suite, import_file, load_suite, validate_suite

DATA = Path(__file__).parent / "data"


def test_promptfoo_config_converts_every_assertion_kind() -> None:
    suite = load_suite(DATA / "promptfooconfig.yaml")
    assert suite.source == "promptfoo" and suite.name == "promptfooconfig"
    assert suite.description == "Support bot promptfoo tests"
    order, as_json, refund = suite.cases
    assert order.id == "order-status" and refund.id == "refund-policy"
    assert as_json.id.startswith("test-")  # no description: a hash of the vars, stable across runs
    assert order.input == "Where is my order 10001?"
    assert order.metadata["vars"]["order"] == "10001"
    types = [(a.type, a.value) for a in order.assertions]
    assert types[0] == ("not-icontains", "as an AI language model")  # from defaultTest
    assert types[1] == ("contains", "10001")  # {{order}} filled from vars
    assert order.assertions[1].weight == 2
    assert types[2] == ("regex", "shipped|delivered")
    assert types[3] == ("trajectory", {"mode": "superset", "calls": ["lookup_order"]})
    assert types[4][1]["calls"] == [
        {"name": "lookup_order", "args": {"order_id": "10001"}, "args_match": "partial"}
    ]
    assert as_json.threshold == 0.5
    assert [a.type for a in as_json.assertions[1:]] == [
        "is_json",
        "contains_json",
        "starts_with",
        "exact",
        "similar",
    ]
    assert as_json.assertions[-1].threshold == 0.5
    judge, python, latency, cost, not_used, sequence, icontains = refund.assertions[1:]
    assert judge.type == "llm_judge" and judge.options["model"] == "judge"
    assert python.type == "python" and python.options["base_dir"] == str(DATA)
    assert latency.options == {"max_ms": 5000} and latency.threshold is None
    assert cost.options == {"max_usd": 0.01}
    assert not_used.type == "must_not_call" and not_used.value == ["process_refund"]
    assert sequence.value == {"mode": "in_order", "calls": ["lookup_order", "check_refund"]}
    assert icontains.type == "icontains"
    validate_suite(suite)  # every converted assertion builds


def test_promptfoo_input_var_choice(tmp_path: Path) -> None:
    p = tmp_path / "pf.yaml"
    p.write_text("tests:\n  - vars: {topic: cats, tone: dry}\n    assert: [{type: contains, value: cat}]\n")
    with pytest.raises(SuiteError) as err:
        load_suite(p)
    assert err.value.problems == [
        "line 2: tests[0].vars: cannot tell which var is the user input (vars: tone, topic); pass input_var "
        "(`--input-var NAME`)"
    ]
    suite = import_file("promptfoo", p, input_var="topic")
    assert suite.cases[0].input == "cats"
    p.write_text("tests:\n  - vars: {text: cats}\n    assert: [{type: contains, value: cat}]\n")
    assert load_suite(p).cases[0].input == "cats"  # the only var


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "  - vars: {input: x}\n    assert:\n      - type: javascript\n        value: 'output.length'\n",
            "line 4: tests[0].assert[0].type: unknown or unsupported promptfoo assertion type 'javascript'",
        ),
        (
            "  - vars: {input: x}\n    assert:\n      - type: contains\n        value: a\n        transform: upper\n",
            "line 6: tests[0].assert[0].transform: unsupported assertion key",
        ),
        (
            "  - vars: {input: x}\n    assert:\n      - type: latency\n",
            "tests[0].assert[0].value: needs threshold",
        ),
        (
            "  - vars: {input: x}\n    assert:\n      - type: tool-args-match\n        value: lookup\n",
            "tests[0].assert[0].value: value must be {name: TOOL",
        ),
        ("  - vars: {input: x}\n", "line 2: tests[0]: has no assert"),
        ("  - just text\n", "tests[0]: must be a mapping"),
        (
            "  - vars: {input: x}\n    assert: [{type: contains, value: a}]\n  - vars: {input: y}\n    assert:\n"
            "      - {type: not-foo}\n",
            "line 6: tests[1].assert[0].type: unknown or unsupported",
        ),
    ],
)
def test_bad_promptfoo_files_name_test_field_line(tmp_path: Path, body: str, expected: str) -> None:
    p = tmp_path / "promptfooconfig.yaml"
    p.write_text("tests:\n" + body)
    with pytest.raises(SuiteError) as err:
        load_suite(p)
    assert str(p) in str(err.value)
    assert any(expected in x for x in err.value.problems), err.value.problems


def test_promptfoo_tests_from_a_referenced_file(tmp_path: Path) -> None:
    (tmp_path / "cases.yaml").write_text("- vars: {query: hi}\n  assert: [{type: icontains, value: hello}]\n")
    p = tmp_path / "promptfooconfig.yaml"
    p.write_text("prompts: ['{{query}}']\ntests: file://cases.yaml\n")
    suite = load_suite(p)
    assert suite.cases[0].input == "hi" and suite.cases[0].assertions[0].type == "icontains"


def test_adk_eval_set_with_thresholds_from_test_config() -> None:
    suite = load_suite(DATA / "adk" / "support.test.json")
    assert suite.source == "adk" and suite.name == "support-adk"
    order, two = suite.cases
    assert order.id == "order_status" and order.input == "Where is my order 10001?"
    assert order.expected == "Your order 10001 has shipped."
    assert order.expected_match is not None
    assert order.expected_match.type == "similar" and order.expected_match.threshold == 0.6
    assert order.category == "tool_usage"
    assert order.trajectory is not None and order.trajectory.mode == "exact"
    assert order.trajectory.threshold == 0.9
    assert [(c.name, c.args) for c in (order.trajectory.calls or [])] == [
        ("lookup_order", {"order_id": "10001"})
    ]
    assert two.conversation is not None and [t.user for t in two.conversation] == [
        "hello",
        "Where is my order 10002?",
    ]
    assert [t.expected for t in two.conversation] == [
        "Hello! How can I help?",
        "Your order 10002 is processing.",
    ]
    assert two.trajectory is not None and [c.name for c in (two.trajectory.calls or [])] == ["lookup_order"]
    plan = validate_suite(suite)
    assert [s.name for s in plan["two_turns"]] == [
        "turn 1 expected (similar)",
        "turn 2 expected (similar)",
        "trajectory",
    ]


def test_adk_defaults_without_test_config(tmp_path: Path) -> None:
    shutil.copy(DATA / "adk" / "support.test.json", tmp_path / "x.evalset.json")
    suite = load_suite(tmp_path / "x.evalset.json")
    c = suite.cases[0]
    assert c.expected_match is not None and c.expected_match.threshold == 0.8
    assert c.trajectory is not None and c.trajectory.threshold == 1.0


def test_adk_bad_input(tmp_path: Path) -> None:
    data = json.loads((DATA / "adk" / "support.test.json").read_text())
    del data["eval_cases"][1]["conversation"][1]["user_content"]
    data["eval_cases"][0]["conversation"][0]["intermediate_data"]["tool_uses"][0].pop("name")
    p = tmp_path / "bad.test.json"
    p.write_text(json.dumps(data, indent=2))
    with pytest.raises(SuiteError) as err:
        load_suite(p)
    problems = err.value.problems
    assert any(
        "eval_cases[0] (eval_id 'order_status').conversation[0].intermediate_data.tool_uses[0].name: required"
        in x
        and x.startswith("line ")
        for x in problems
    ), problems
    assert any(
        "eval_cases[1] (eval_id 'two_turns').conversation[1].user_content: required" in x for x in problems
    )
    (tmp_path / "test_config.json").write_text('{"criteria": {"response_match_score": 3}}')
    shutil.copy(DATA / "adk" / "support.test.json", tmp_path / "ok.test.json")
    with pytest.raises(SuiteError) as err:
        load_suite(tmp_path / "ok.test.json")
    assert "test_config.json" in str(err.value) and "criteria.response_match_score" in str(err.value)


def test_adk_older_list_format(tmp_path: Path) -> None:
    p = tmp_path / "old.test.json"
    p.write_text(
        json.dumps(
            [
                {
                    "query": "turn off the light",
                    "reference": "Done.",
                    "expected_tool_use": [{"tool_name": "set_light", "tool_input": {"on": False}}],
                }
            ]
        )
    )
    [case] = load_suite(p).cases
    assert case.input == "turn off the light" and case.expected == "Done."
    assert case.trajectory is not None and (case.trajectory.calls or [])[0].args == {"on": False}


def test_openai_evals_jsonl() -> None:
    suite = load_suite(DATA / "openai_evals.jsonl")
    assert suite.source == "jsonl" and [c.id for c in suite.cases] == [
        "line-1",
        "line-2",
        "line-3",
        "native-case",
    ]
    one, two, three, native = suite.cases
    assert one.input == "What is 2 plus 3?" and one.expected == "5"
    assert (
        two.input == "4 + 4"
        and two.expected == ["8", "eight"]
        and two.metadata["system"] == "You are a calculator."
    )
    assert three.conversation is not None and [(t.user, t.expected) for t in three.conversation] == [
        ("hi", "Hello"),
        ("1 and 2", None),
    ]
    assert three.expected == "3"
    assert native.category == "safety" and native.metadata["line"] == 5
    validate_suite(suite)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"input": "x", "ideal": 5}', "line 2: ideal: must be a text or a list of texts"),
        (
            '{"input": [{"role": "system", "content": "s"}], "ideal": "a"}',
            "line 2: input: the messages have no user",
        ),
        ('{"input": "x"', "line 2: not valid JSON"),
        ('{"ideal": "x"}', "line 2: needs input"),
        (
            '{"id": "a", "input": "x", "expected": "y", "colour": 1}',
            "line 2: cases[1] (id 'a').colour: unknown key",
        ),
        ('{"id": "same", "input": "x", "expected": "y"}', "line 2: cases[1] (id 'same').id: duplicate id"),
    ],
)
def test_bad_jsonl_names_the_line(tmp_path: Path, line: str, expected: str) -> None:
    p = tmp_path / "cases.jsonl"
    p.write_text('{"id": "same", "input": "ok", "ideal": "fine"}\n' + line + "\n")
    with pytest.raises(SuiteError) as err:
        load_suite(p)
    assert any(expected in x for x in err.value.problems), err.value.problems


def test_import_then_dump_gives_an_equivalent_yaml_suite(tmp_path: Path) -> None:
    for kind, path in [
        ("promptfoo", DATA / "promptfooconfig.yaml"),
        ("adk", DATA / "adk" / "support.test.json"),
        ("jsonl", DATA / "openai_evals.jsonl"),
    ]:
        suite = import_file(kind, path)
        out = dump_suite(suite, tmp_path / f"{kind}.yaml")
        again = load_suite(out)
        assert again.source == "shipyard"
        assert again.model_dump()["cases"] == suite.model_dump()["cases"], kind


def test_unknown_import_kind(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="unknown import kind 'deepeval'"):
        import_file("deepeval", tmp_path / "x.json")
