"""Importers: promptfoo configs, ADK eval sets and OpenAI-evals JSONL as suites, good and bad."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from shipyard.evals import ScoreInput, SuiteError, dump_suite, import_file, load_suite, validate_suite

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
            "  - vars: {input: x}\n    assert:\n      - type: contains-any\n        value: '\"a, b'\n",
            "tests[0].assert[0].value: unterminated quoted field",
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


def test_promptfoo_case_shipyard_cannot_run_loads_and_is_error(tmp_path: Path) -> None:
    p = tmp_path / "promptfooconfig.yaml"
    p.write_text(
        "tests:\n  - vars: {input: x}\n    assert: [{type: contains, value: x}]\n"
        "  - vars: {input: y}\n    assert: [{type: not-foo}, {type: contains, value: y, cache: no}]\n"
    )
    ok, odd = load_suite(p).cases  # the file loads: the case Shipyard cannot run is ERROR, named
    assert [a.type for a in ok.assertions] == ["contains"]
    assert [(a.type, a.value) for a in odd.assertions] == [
        ("unsupported", "promptfoo assertion type 'not-foo'"),
        ("unsupported", "promptfoo assertion key 'cache' (on 'contains')"),
    ]
    plan = validate_suite(load_suite(p))
    result = asyncio.run(plan[odd.id][0](ScoreInput(case=odd, output="y")))
    assert result.passed is None and result.error == "promptfoo assertion type 'not-foo'"


def test_promptfoo_conversions_keep_promptfoo_semantics(tmp_path: Path) -> None:
    p = tmp_path / "promptfooconfig.yaml"
    (tmp_path / "schema.yaml").write_text("type: object\nrequired: [a]\n")
    p.write_text(
        "prompts: ['Say {{input}}']\n"
        "tests:\n  - vars: {input: x}\n    options: {transform: output.trim()}\n    assert:\n"
        "      - {type: contains-all, value: '\"a, b\", c'}\n"
        "      - {type: equals, value: {a: 1}}\n"
        "      - {type: equals, value: 2.0}\n"
        "      - {type: is-json, value: file://schema.yaml}\n"
        "      - {type: not-levenshtein, value: abc, threshold: 1}\n"
        "      - {type: assert-set, threshold: 0.5, assert: [{type: starts-with, value: a}]}\n"
    )
    [case] = load_suite(p).cases
    assert case.metadata["prompt"] == "Say x"
    inner = [a.value for a in case.assertions]
    assert all(a.type == "transformed" and a.options["transform"] == "output.trim()" for a in case.assertions)
    assert inner[0] == {"type": "contains", "value": ["a, b", "c"], "mode": "all", "partial": False}
    assert inner[1] == {"type": "equals_json", "value": {"a": 1}}
    assert inner[2] == {"type": "exact", "value": "2", "strip": False}
    assert inner[3] == {
        "type": "is_json",
        "value": {"type": "object", "required": ["a"]},
        "fenced": False,
        "formats": True,
    }
    assert inner[4] == {"type": "levenshtein", "value": "abc", "inverse": True, "threshold": 1}
    assert inner[5]["type"] == "assert_set" and inner[5]["value"] == [
        {"type": "starts_with", "value": "a", "strip": False}
    ]
    validate_suite(load_suite(p))


def test_promptfoo_csv_tests_and_list_valued_vars(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(
        "input,__expected,__expected2,__prefix\nhi,contains: h,rouge-n(0.6): hi there,\nyo,yo,,Say: \n"
    )
    p = tmp_path / "promptfooconfig.yaml"
    p.write_text(
        "tests: [file://t.csv, {vars: {input: [a, b], n: [1, 2]}, assert: [{type: contains, value: x}]}]\n"
    )
    first, second, *expanded = load_suite(p).cases
    assert [(a.type, a.value, a.threshold) for a in first.assertions] == [
        ("contains", "h", None),
        ("rouge_n", "hi there", 0.6),
    ]
    assert [(a.type, a.value) for a in second.assertions] == [("exact", "yo")]
    assert second.first_input == "Say: yo"  # __prefix wraps the prompt (here, the user input)
    assert [(c.metadata["vars"], c.metadata["promptfoo_index"]) for c in expanded] == [
        ({"input": "a", "n": 1}, 2),
        ({"input": "a", "n": 2}, 3),
        ({"input": "b", "n": 1}, 4),
        ({"input": "b", "n": 2}, 5),
    ]
    (tmp_path / "t.csv").write_text("input,__expected,__config:__expected:threshold\nhi,contains: h,\n")
    with pytest.raises(SuiteError, match="a number in every row"):  # promptfoo refuses it as well
        load_suite(p)


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
    assert order.category == "tool_usage"
    assert order.expected is None and order.trajectory is None  # scored per invocation, as ADK does
    trajectory, match = order.assertions  # the criteria of test_config.json, in its order
    assert (trajectory.type, trajectory.threshold) == ("adk_trajectory", 0.9)
    assert trajectory.value == [[{"name": "lookup_order", "args": {"order_id": "10001"}}]]
    assert (match.type, match.threshold, match.value) == (
        "adk_response_match",
        0.6,
        ["Your order 10001 has shipped."],
    )
    assert two.conversation is not None and [t.user for t in two.conversation] == [
        "hello",
        "Where is my order 10002?",
    ]
    assert two.assertions[0].value == [[], [{"name": "lookup_order", "args": {"order_id": "10002"}}]]
    assert two.assertions[1].value == ["Hello! How can I help?", "Your order 10002 is processing."]
    plan = validate_suite(suite)
    assert [s.name for s in plan["two_turns"]] == ["adk_trajectory", "adk_response_match"]


def test_adk_only_the_criteria_of_test_config_are_scored(tmp_path: Path) -> None:
    shutil.copy(DATA / "adk" / "support.test.json", tmp_path / "x.test.json")
    (tmp_path / "test_config.json").write_text(
        '{"criteria": {"tool_trajectory_avg_score": {"threshold": 1, "match_type": "in_order"},'
        ' "safety_v1": 0.8}}'
    )
    order = load_suite(tmp_path / "x.test.json").cases[0]
    assert [a.type for a in order.assertions] == ["adk_trajectory", "unsupported"]
    assert order.assertions[0].options == {"match_type": "IN_ORDER", "ignore_args": False}
    assert "ADK criterion 'safety_v1'" in order.assertions[1].value


def test_adk_defaults_without_test_config(tmp_path: Path) -> None:
    shutil.copy(DATA / "adk" / "support.test.json", tmp_path / "x.evalset.json")
    c = load_suite(tmp_path / "x.evalset.json").cases[0]
    assert [(a.type, a.threshold) for a in c.assertions] == [
        ("adk_trajectory", 1.0),
        ("adk_response_match", 0.8),
    ]


def test_adk_conversation_scenario_case_loads_as_a_scenario(tmp_path: Path) -> None:
    """The scenario becomes a `scenario` case (the user simulator plays it, or it is SKIPPED); the
    criteria that need expected invocations are ERROR for it, as ADK raises for them."""
    data = json.loads((DATA / "adk" / "support.test.json").read_text())
    data["eval_cases"].append(
        {
            "eval_id": "simulated",
            "conversation_scenario": {"starting_prompt": "hi", "conversation_plan": "ask"},
        }
    )
    (tmp_path / "s.test.json").write_text(json.dumps(data))
    (tmp_path / "test_config.json").write_text(
        json.dumps(
            {
                "criteria": {"response_match_score": 0.8, "safety_v1": 0.9},
                "user_simulator_config": {"model": "gemini-2.5-flash", "maxAllowedInvocations": 4},
            }
        )
    )
    *others, simulated = load_suite(tmp_path / "s.test.json").cases
    assert all(c.scenario is None for c in others)
    assert simulated.input is None and simulated.conversation is None
    assert simulated.scenario is not None and simulated.turns[0].user == "hi"
    assert (simulated.scenario.conversation_plan, simulated.scenario.max_turns) == ("ask", 4)
    assert [a.type for a in simulated.assertions] == ["unsupported", "unsupported"]
    assert "'response_match_score' compares with the expected invocations" in simulated.assertions[0].value
    assert "ADK criterion 'safety_v1'" in simulated.assertions[1].value
    config = json.loads((tmp_path / "test_config.json").read_text())
    config["user_simulator_config"]["custom_instructions"] = "{{ stop_signal }} {{ conversation_plan }}"
    (tmp_path / "test_config.json").write_text(json.dumps(config))
    *_, simulated = load_suite(tmp_path / "s.test.json").cases
    assert "ADK user_simulator_config custom_instructions" in simulated.assertions[-1].value


def test_adk_conversation_scenario_that_adk_refuses_is_refused(tmp_path: Path) -> None:
    data = json.loads((DATA / "adk" / "support.test.json").read_text())
    data["eval_cases"][0]["conversation_scenario"] = {"starting_prompt": "hi", "conversation_plan": "ask"}
    data["eval_cases"].append({"eval_id": "no-plan", "conversation_scenario": {"starting_prompt": "hi"}})
    (tmp_path / "s.test.json").write_text(json.dumps(data))
    with pytest.raises(SuiteError) as err:
        load_suite(tmp_path / "s.test.json")
    text = str(err.value)
    assert "has both conversation and conversation_scenario" in text
    assert "(eval_id 'no-plan').conversation_scenario.conversation_plan: required: text" in text


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


def test_adk_older_list_format_is_one_multi_turn_case(tmp_path: Path) -> None:
    p = tmp_path / "old.test.json"
    p.write_text(
        json.dumps(
            [
                {
                    "query": "turn off the light",
                    "reference": "Done.",
                    "expected_tool_use": [{"tool_name": "set_light", "tool_input": {"on": False}}],
                },
                {"query": "and the fan", "expected_tool_use": []},
            ]
        )
    )
    [case] = load_suite(p).cases
    assert case.conversation is not None
    assert [t.user for t in case.conversation] == ["turn off the light", "and the fan"]
    trajectory, match = case.assertions
    assert trajectory.value == [[{"name": "set_light", "args": {"on": False}}], []]
    assert match.value == ["Done.", None]


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
