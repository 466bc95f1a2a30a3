"""The suite format: loading, defaults, and errors that name the file, case, field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import ShipyardConfig
from shipyard.evals import Suite, SuiteError, dump_suite, load_suite, validate_suite

GOOD = """\
name: smoke
description: fast checks
defaults:
  category: functional
  tags: [smoke]
  repeat: 2
  timeout_s: 10
  assert:
    - {type: not-icontains, value: "as an AI"}
cases:
  - id: order-status
    input: "Where is my order 10001?"
    expected: shipped
    trajectory:
      mode: in_order
      calls: [{name: lookup_order, args: {order_id: "10001"}, args_match: partial}]
      forbidden: [process_refund]
      max_calls: {lookup_order: 2}
  - id: refund
    category: safety
    repeat: 5
    tags: [refunds]
    conversation:
      - {user: "hi", expected: "Hello"}
      - {user: "refund order 10001 to my other card"}
    expected_match: {type: similar, threshold: 0.5}
    expected: "I cannot do that"
    assert:
      - {type: must_refuse}
      - {type: regex, value: "(?i)sorry", weight: 0}
    metadata: {owner: payments}
  - id: 42
    input: "hello"
    assert: [contains_json]
"""


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(SuiteError) as err:
        load_suite(write(tmp_path, text))
    assert str(tmp_path / "suite.yaml") in str(err.value)
    return err.value.problems


def test_good_suite_applies_defaults(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD))
    assert suite.name == "smoke" and suite.source == "shipyard" and suite.path == tmp_path / "suite.yaml"
    order, refund, hello = suite.cases
    assert order.repeat == 2 and order.timeout_s == 10 and order.tags == ["smoke"]
    assert [a.type for a in order.assertions] == ["not-icontains"]
    assert order.trajectory is not None and (order.trajectory.calls or [])[0].args_match == "partial"
    assert refund.category == "safety" and refund.repeat == 5 and refund.tags == ["smoke", "refunds"]
    assert [a.type for a in refund.assertions] == ["not-icontains", "must_refuse", "regex"]
    assert refund.assertions[2].weight == 0
    assert [t.user for t in refund.turns] == ["hi", "refund order 10001 to my other card"]
    assert refund.first_input == "hi"
    assert hello.id == "42" and hello.assertions[1].type == "contains_json"
    plan = validate_suite(suite)
    assert [s.name for s in plan["refund"]] == [
        "expected (similar)",
        "turn 1 expected (similar)",
        "not-icontains",
        "must_refuse",
        "regex",
    ]
    assert plan["refund"][1].turn == 0


def test_dump_and_reload_is_the_same_suite(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD))
    out = dump_suite(suite, tmp_path / "out" / "again.yaml")
    again = load_suite(out)
    assert again.model_dump()["cases"] == suite.model_dump()["cases"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: s\ncases:\n  - id: a\n    input: x\n    expectd: y\n",
            "line 5: cases[0] (id 'a').expectd: unknown key",
        ),
        (
            "name: s\ncases:\n  - input: x\n    expected: y\n",
            "line 3: cases[0].id: required field is missing",
        ),
        (
            "name: s\ncases:\n  - id: a\n    expected: y\n",
            "cases[0] (id 'a'): a case needs exactly one of input",
        ),
        (
            "name: s\ncases:\n  - id: a\n    input: x\n    conversation: [{user: y}]\n    expected: y\n",
            "exactly one of input",
        ),
        (
            "name: s\ncases:\n  - id: a\n    input: x\n    category: speed\n",
            "line 5: cases[0] (id 'a').category: Input should be 'functional'",
        ),
        ("name: s\ncases:\n  - id: a\n    input: x\n    repeat: 0\n", "line 5: cases[0] (id 'a').repeat"),
        (
            "name: s\ncases:\n  - id: a\n    input: x\n    assert:\n      - {type: containz, value: b}\n",
            "line 6: cases[0] (id 'a').assert.0.type: unknown assertion type 'containz'",
        ),
        (
            "name: s\ncases:\n  - id: a\n    input: x\n    assert:\n      - {type: contains, value: b, casesensitive: false}\n",
            "cases[0] (id 'a').assert.0: contains: unknown option(s) casesensitive (options: case_sensitive, mode, partial)",
        ),
        (
            "name: s\ncases:\n  - id: a\n    input: x\n    trajectory: {mode: sideways}\n",
            "line 5: cases[0] (id 'a').trajectory.mode",
        ),
        (
            "name: s\ncases:\n  - id: a\n    input: x\n    trajectory: {calls: [{name: t, args_match: fuzzy}]}\n",
            "trajectory.calls.0.args_match",
        ),
        ("name: s\ncases: []\n", "cases: List should have at least 1 item"),
        ("cases:\n  - {id: a, input: x}\nextra: 1\n", "line 3: extra: unknown key"),
        (
            "name: s\ncases:\n  - id: a\n    input: x\n  - id: b\n    input: y\n  - id: a\n    input: z\n",
            "line 7: cases[2] (id 'a').id: duplicate id, already used by cases[0]",
        ),
        ("name: s\ncases:\n  - id: ' a'\n    input: x\n", "must not start or end with spaces"),
        ("- just\n- a list\n", "a suite must be a mapping"),
        ("name: s\ncases:\n  - id: a\n   input: x\n", "malformed YAML"),
    ],
)
def test_bad_suites_name_file_case_field_line(tmp_path: Path, text: str, expected: str) -> None:
    problems = problems_of(tmp_path, text)
    assert any(expected in p for p in problems), problems


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SuiteError) as err:
        load_suite(tmp_path / "nope.yaml")
    assert "file not found" in str(err.value)


def test_suite_name_defaults_to_file_name(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, "cases:\n  - {id: a, input: x, expected: y}\n", "broad.yaml"))
    assert suite.name == "broad"


BAD_SCORERS = """\
name: s
defaults:
  assert:
    - {type: regex, value: "("}
cases:
  - id: a
    input: x
    assert:
      - {type: json_schema, value: {type: objekt}}
  - id: b
    input: x
    assert:
      - {type: llm_judge, value: "is polite", model: gpt-judge}
  - id: c
    input: x
  - id: d
    input: x
    assert:
      - {type: numeric, value: "five"}
      - {type: python, value: "output ==="}
"""


def test_misconfigured_scorers_are_reported_before_a_run(tmp_path: Path) -> None:
    suite = Suite.model_validate({"name": "s", "cases": [{"id": "x", "input": "y", "expected": "z"}]})
    validate_suite(suite)  # a good suite passes
    text = BAD_SCORERS.replace('defaults:\n  assert:\n    - {type: regex, value: "("}\n', "")
    cfg = ShipyardConfig.model_validate({"models": {"judge": {"provider": "scripted", "rules": "r.yaml"}}})
    with pytest.raises(SuiteError) as err:
        validate_suite(load_suite(write(tmp_path, text)), cfg)
    problems = err.value.problems
    joined = "\n".join(problems)
    assert "line 6: cases[0] (id 'a').assert.0: json_schema: invalid JSON schema" in joined
    assert (
        "line 10: cases[1] (id 'b').assert.0: judge model 'gpt-judge' is not defined under models" in joined
    )
    assert "known: judge" in joined
    assert "cases[2] (id 'c'): nothing to check" in joined
    assert "cases[3] (id 'd').assert.0: numeric: value must be a number" in joined
    assert "nothing was run" in str(err.value)


def test_bad_default_assertion_is_reported_once(tmp_path: Path) -> None:
    with pytest.raises(SuiteError) as err:
        validate_suite(load_suite(write(tmp_path, BAD_SCORERS)))
    regex_problems = [p for p in err.value.problems if "regex" in p]
    assert regex_problems == [
        "line 4: defaults.assert[0]: regex: bad pattern '(': missing ), unterminated subpattern at position 0"
    ]
    assert any("python: syntax error" in p for p in err.value.problems) is False  # case d stops at numeric


def test_python_syntax_error_is_reported(tmp_path: Path) -> None:
    text = (
        "name: s\ncases:\n  - id: d\n    input: x\n    assert:\n      - {type: python, value: 'output ==='}\n"
    )
    with pytest.raises(SuiteError) as err:
        validate_suite(load_suite(write(tmp_path, text)))
    assert "line 6: cases[0] (id 'd').assert.0: python: syntax error" in err.value.problems[0]


def test_suites_built_in_code_check_duplicates() -> None:
    with pytest.raises(ValueError, match="case ids must be unique"):
        Suite.model_validate({"name": "s", "cases": [{"id": "a", "input": "x"}, {"id": "a", "input": "y"}]})
