"""Loading flag files: good files in JSON and YAML, bad ones with the JSON path, file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipyard.errors import ConfigError
from shipyard.flags import ErrorCode, FlagStore, Reason, load_flag_file, parse_flag, write_flag_file

GOOD = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "flags": {
        "new_refund_flow": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"$ref": "beta_users"}, "on", {"fractional": [["on", 10], ["off", 90]]}]},
            "metadata": {
                "owner": "support-team",
                "killSwitch": {
                    "toolErrorRate": 0.2,
                    "tools": ["process_refund"],
                    "minCalls": 20,
                    "window_s": 300,
                },
            },
        },
        "greeting": {
            "state": "ENABLED",
            "variants": {"formal": "Good day", "casual": "Hi"},
            "defaultVariant": "casual",
        },
        "max_refund": {"state": "DISABLED", "variants": {"low": 50, "high": 500}, "defaultVariant": "low"},
        "tone": {"state": "ENABLED", "variants": {"a": {"temperature": 0.2}}, "defaultVariant": "a"},
    },
    "$evaluators": {"beta_users": {"starts_with": [{"var": "user_id"}, "beta-"]}},
    "metadata": {"flagSetId": "support"},
}


def test_loads_a_good_json_file(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_text(json.dumps(GOOD, indent=2))
    fs = load_flag_file(p)
    assert sorted(fs.flags) == ["greeting", "max_refund", "new_refund_flow", "tone"]
    f = fs.flags["new_refund_flow"]
    assert (f.state, f.default_variant, f.kind) == ("ENABLED", "off", "boolean")
    assert fs.flags["max_refund"].kind == "number" and fs.flags["tone"].kind == "object"
    assert fs.evaluators == GOOD["$evaluators"] and fs.metadata == {"flagSetId": "support"}
    # round trip: what is written reads back the same
    write_flag_file(fs, tmp_path / "copy.json")
    assert load_flag_file(tmp_path / "copy.json") == fs


def test_loads_yaml_the_same_way(tmp_path: Path) -> None:
    import yaml

    p = tmp_path / "flags.yaml"
    p.write_text(yaml.safe_dump(GOOD))
    assert load_flag_file(p).to_json() == load_flag_file(_json(tmp_path, GOOD)).to_json()


def _json(tmp_path: Path, doc: Any, name: str = "flags.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc, indent=2))
    return p


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_flag_file(path)
    assert e.value.path == str(path)
    return e.value.problems


def test_default_variant_not_a_variant_names_the_path_and_line(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(GOOD))
    doc["flags"]["new_refund_flow"]["defaultVariant"] = "onn"
    p = _json(tmp_path, doc)
    (problem,) = _problems(p)
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if '"onn"' in t)
    assert (
        problem
        == f"line {line}: flags.new_refund_flow.defaultVariant: 'onn' is not a variant (variants: on, off)"
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    doc = {
        "flags": {
            "a": {"state": "ON", "variants": {"on": True, "off": "no"}, "defaultVariant": "on", "colour": 1},
            "b": {"variants": {}, "defaultVariant": "x"},
            "c": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x",
                  "targeting": {"if": [{"strats_with": [{"var": "id"}, "a"]}, "x", None]}},
            "d": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x", "targeting": {"$ref": "nope"}},
            "e": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on",
                  "metadata": {"killSwitch": {"toolErrorRate": 2, "tools": []}}},
            "f": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x",
                  "targeting": {"fractional": [["x", 10.5], ["y", 5]]}},
        },
        "extra": True,
    }  # fmt: skip
    text = "\n".join(_problems(_json(tmp_path, doc)))
    for expected in (
        "extra: unknown key",
        "flags.a.colour: unknown key",
        "flags.a.state: 'ON' is not a state (use ENABLED or DISABLED)",
        "flags.a.variants.off: is a string but variant 'on' is a boolean",
        "flags.b.state: required field is missing",
        "flags.b.variants: must be a non-empty object",
        "flags.e.metadata.killSwitch.toolErrorRate: must be a number in (0, 1], got 2",
        "flags.e.metadata.killSwitch.tools: must be a non-empty list",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert all(line.startswith("line ") for line in text.splitlines())
    # rules flagd loads (and evaluates to PARSE_ERROR or null) are not problems of the file
    assert "flags.c" not in text and "flags.d" not in text and "flags.f" not in text


BROKEN_RULES = {
    "flags": {
        "c": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x",
              "targeting": {"if": [{"strats_with": [{"var": "id"}, "a"]}, "x", None]}},
        "d": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x", "targeting": {"$ref": "nope"}},
        "f": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x",
              "targeting": {"fractional": [["x", 10.5], ["y", 5]]}},
    }
}  # fmt: skip


def test_rules_flagd_loads_load_with_warnings_and_resolve_as_flagd_does(tmp_path: Path) -> None:
    fs = load_flag_file(_json(tmp_path, BROKEN_RULES))
    text = "\n".join(fs.warnings)
    for expected in (
        "flags.c.targeting.if[0].strats_with: unknown operator 'strats_with'",
        "flags.d.targeting.$ref: no evaluator named 'nope'",
        "flags.f.targeting.fractional[0]: a fractional bucket must be [variant, weight] with a whole weight",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert all(line.startswith("line ") for line in fs.warnings)
    store = FlagStore(fs)
    for name, code in (("c", ErrorCode.PARSE_ERROR), ("d", ErrorCode.PARSE_ERROR), ("f", None)):
        d = store.evaluate(name, 7, {"targetingKey": "u1"})
        assert d.error_code == code and d.value == (7 if code else 1), (name, d)
    assert store.evaluate("f", 7, {"targetingKey": "u1"}).reason == Reason.DEFAULT


def test_a_flag_written_through_shipyard_must_compile() -> None:
    for name, definition in BROKEN_RULES["flags"].items():
        with pytest.raises(ConfigError) as e:
            parse_flag(name, definition)
        assert f"flags.{name}.targeting" in e.value.problems[0]
    # a broken evaluator of the file does not block a flag that does not use it
    evaluators = {"broken": {"nope": [1]}, "beta": {"starts_with": [{"var": "id"}, "b"]}}
    ok = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
    assert (
        parse_flag("x", {**ok, "targeting": {"if": [{"$ref": "beta"}, "on", None]}}, evaluators).name == "x"
    )
    with pytest.raises(ConfigError):
        parse_flag("y", {**ok, "targeting": {"if": [{"$ref": "broken"}, "on", None]}}, evaluators)


def test_malformed_json_gives_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_text('{\n  "flags": {\n    "a": {"state": "ENABLED",}\n  }\n}\n')
    (problem,) = _problems(p)
    assert problem.startswith("line 3, column") and "malformed JSON" in problem


def test_missing_file_and_wrong_top_level(tmp_path: Path) -> None:
    assert _problems(tmp_path / "nope.json") == ["file not found"]
    assert _problems(_json(tmp_path, [1, 2])) == [
        'line 1: (top level): a flag file must be an object with a "flags" key'
    ]
    assert "flags: required field is missing" in _problems(_json(tmp_path, {"metadata": {}}))[0]


def test_parse_flag_validates_one_definition_for_the_admin_api() -> None:
    flag = parse_flag(
        "x", {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": None}
    )
    assert flag.default_variant is None
    with pytest.raises(ConfigError) as e:
        parse_flag("x", {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "of"})
    assert e.value.problems == ["flags.x.defaultVariant: 'of' is not a variant (variants: on)"]


def test_store_from_file(tmp_path: Path) -> None:
    store = FlagStore.from_file(_json(tmp_path, GOOD))
    assert store.evaluate("greeting", "", {}).value == "Hi"
