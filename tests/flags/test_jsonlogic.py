"""The JsonLogic compiler: every standard operator, json-logic-js semantics, and rule errors with paths."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shipyard.flags import LogicError, compile_logic


def run(rule: Any, data: Any = None) -> Any:
    return compile_logic(rule)(data if data is not None else {})


@pytest.mark.parametrize(
    ("rule", "data", "expected"),
    [
        # var: dotted paths, array indexes, defaults, the whole data
        ({"var": "a"}, {"a": 1}, 1),
        ({"var": "a.b.c"}, {"a": {"b": {"c": "deep"}}}, "deep"),
        ({"var": "items.1"}, {"items": ["x", "y"]}, "y"),
        ({"var": ["missing", "fallback"]}, {}, "fallback"),
        ({"var": "missing"}, {}, None),
        ({"var": ""}, {"a": 1}, {"a": 1}),
        ({"var": [{"cat": ["a", "b"]}]}, {"ab": 7}, 7),
        # equality, loose and strict
        ({"==": [1, 1]}, {}, True),
        ({"==": [1, "1"]}, {}, True),
        ({"==": [0, False]}, {}, True),
        ({"==": [None, 0]}, {}, False),
        ({"===": [1, "1"]}, {}, False),
        ({"===": [1, 1.0]}, {}, True),
        ({"===": [True, 1]}, {}, False),
        ({"!=": [1, "2"]}, {}, True),
        ({"!=": [1, "1"]}, {}, False),
        ({"!==": [1, "1"]}, {}, True),
        # comparisons, and the between forms
        ({"<": [1, 2]}, {}, True),
        ({"<": ["10", 9]}, {}, False),
        ({"<": ["a", "b"]}, {}, True),
        ({"<=": [2, 2]}, {}, True),
        ({">": [3, 2]}, {}, True),
        ({">=": [2, 3]}, {}, False),
        ({"<": [1, {"var": "x"}, 3]}, {"x": 2}, True),
        ({"<": [1, {"var": "x"}, 3]}, {"x": 3}, False),
        ({"<=": [1, {"var": "x"}, 3]}, {"x": 3}, True),
        # logic: and/or return the deciding value, ! and !! use JsonLogic truthiness
        ({"and": [True, "a", 3]}, {}, 3),
        ({"and": [True, "", 3]}, {}, ""),
        ({"or": [False, 0, "x"]}, {}, "x"),
        ({"or": [False, 0]}, {}, 0),
        ({"!": [[]]}, {}, True),
        ({"!": True}, {}, False),
        ({"!!": ["0"]}, {}, True),
        ({"!!": [[]]}, {}, False),
        ({"!!": [{"var": "n"}]}, {"n": 0}, False),
        # if and ?:
        ({"if": [True, "yes", "no"]}, {}, "yes"),
        ({"if": [False, "yes", "no"]}, {}, "no"),
        ({"if": [False, 1, False, 2, 3]}, {}, 3),
        ({"if": [False, 1, True, 2, 3]}, {}, 2),
        ({"if": [False, 1]}, {}, None),
        ({"?:": [True, 1, 2]}, {}, 1),
        # in, cat, substr
        ({"in": ["Spring", "Springfield"]}, {}, True),
        ({"in": ["b", ["a", "b"]]}, {}, True),
        ({"in": [1, ["1"]]}, {}, False),
        ({"cat": ["I love", " pie", 3, True, None]}, {}, "I love pie3truenull"),
        ({"cat": [1.5, 2.0]}, {}, "1.52"),
        ({"substr": ["jsonlogic", 4]}, {}, "logic"),
        ({"substr": ["jsonlogic", -5]}, {}, "logic"),
        ({"substr": ["jsonlogic", 1, 3]}, {}, "son"),
        ({"substr": ["jsonlogic", 4, -2]}, {}, "log"),
        # arithmetic with numeric coercion
        ({"+": [1, "2", 3.5]}, {}, 6.5),
        ({"+": ["3"]}, {}, 3),
        ({"-": [5, 2]}, {}, 3),
        ({"-": [2]}, {}, -2),
        ({"*": [2, "3", 4]}, {}, 24),
        ({"/": [7, 2]}, {}, 3.5),
        ({"%": [7, 3]}, {}, 1),
        ({"%": [-7, 3]}, {}, -1),
        ({"min": [3, 1, "2"]}, {}, 1),
        ({"max": [3, 1, 2]}, {}, 3),
        ({"max": []}, {}, None),
        # arrays
        ({"merge": [[1, 2], 3, [4]]}, {}, [1, 2, 3, 4]),
        ({"map": [{"var": "xs"}, {"*": [{"var": ""}, 2]}]}, {"xs": [1, 2, 3]}, [2, 4, 6]),
        ({"filter": [{"var": "xs"}, {">": [{"var": ""}, 1]}]}, {"xs": [1, 2, 3]}, [2, 3]),
        (
            {"reduce": [{"var": "xs"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 10]},
            {"xs": [1, 2, 3]},
            16,
        ),
        ({"all": [[1, 2], {">": [{"var": ""}, 0]}]}, {}, True),
        ({"all": [[], {">": [{"var": ""}, 0]}]}, {}, False),
        ({"some": [[1, -2], {"<": [{"var": ""}, 0]}]}, {}, True),
        ({"none": [[1, 2], {"<": [{"var": ""}, 0]}]}, {}, True),
        # missing, missing_some
        ({"missing": ["a", "b", "c"]}, {"a": 1, "c": ""}, ["b", "c"]),
        ({"missing": {"merge": ["a", "b"]}}, {"b": 2}, ["a"]),
        ({"missing_some": [1, ["a", "b"]]}, {"b": 2}, []),
        ({"missing_some": [2, ["a", "b", "c"]]}, {"b": 2}, ["a", "c"]),
        # literals: lists are evaluated element-wise, multi-key objects are data
        ([1, {"var": "a"}], {"a": 2}, [1, 2]),
        ({"a": 1, "b": 2}, {}, {"a": 1, "b": 2}),
        ("plain", {}, "plain"),
        ({"log": "x"}, {}, "x"),
    ],
)
def test_operator(rule: Any, data: Any, expected: Any) -> None:
    assert run(rule, data) == expected


def test_division_by_zero_is_like_javascript() -> None:
    assert run({"/": [1, 0]}) == math.inf
    assert math.isnan(run({"/": [0, 0]}))
    assert math.isnan(run({"%": [1, 0]}))
    assert math.isnan(run({"+": ["not a number"]}))


def test_compiled_rule_is_reusable_and_pure() -> None:
    rule = compile_logic({"if": [{"in": [{"var": "plan"}, ["pro", "team"]]}, "on", "off"]})
    assert [rule({"plan": p}) for p in ("pro", "free", "team")] == ["on", "off", "on"]


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        ({"strats_with": [1, 2]}, ("strats_with",), "unknown operator 'strats_with'"),
        ({"if": [{"var": "a"}, {"nope": 1}, "x"]}, ("if", 1, "nope"), "unknown operator 'nope'"),
        ({"==": [1]}, ("==",), "takes 2 argument(s), got 1"),
        ({"!": [1, 2]}, ("!",), "takes 1 argument(s), got 2"),
        ({"substr": ["a"]}, ("substr",), "takes 2 to 3 argument(s)"),
    ],
)
def test_bad_rules_fail_at_compile_time_with_a_path(rule: Any, path: tuple[Any, ...], words: str) -> None:
    with pytest.raises(LogicError) as e:
        compile_logic(rule)
    assert e.value.path == path
    assert words in e.value.message


def test_evaluator_refs_resolve_and_cycles_are_refused() -> None:
    evaluators = {"is_beta": {"starts_with": [{"var": "user_id"}, "beta-"]}}
    from shipyard.flags import FLAGD_OPERATORS

    rule = compile_logic(
        {"if": [{"$ref": "is_beta"}, "on", "off"]}, operators=FLAGD_OPERATORS, evaluators=evaluators
    )
    assert rule({"user_id": "beta-7"}) == "on" and rule({"user_id": "u-7"}) == "off"
    with pytest.raises(LogicError, match="no evaluator named 'nope'"):
        compile_logic({"$ref": "nope"}, evaluators=evaluators)
    loop = {"a": {"$ref": "b"}, "b": {"!": {"$ref": "a"}}}
    with pytest.raises(LogicError, match="cycle: a -> b -> a"):
        compile_logic({"$ref": "a"}, evaluators=loop)
