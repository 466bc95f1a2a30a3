"""FlagStore and `ctx.flags`: values, reasons, type mismatches, recorded evaluations."""

from __future__ import annotations

from typing import Any

from shipyard.agents import Flags
from shipyard.flags import (
    ErrorCode,
    FlagsForContext,
    FlagStore,
    Reason,
    interaction_context,
    parse_flag_set,
)

DOC: dict[str, Any] = {
    "flags": {
        "static_on": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"},
        "beta": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"starts_with": [{"var": "user_id"}, "beta-"]}, "on", None]},
        },
        "split": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 50], ["off", 50]]},
        },
        "off_flag": {"state": "DISABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"},
        "greeting": {"state": "ENABLED", "variants": {"a": "Hello", "b": "Hi"}, "defaultVariant": "a"},
        "limit": {"state": "ENABLED", "variants": {"low": 50, "high": 500.5}, "defaultVariant": "high"},
        "model": {
            "state": "ENABLED",
            "variants": {"x": {"name": "small", "temp": 0.2}},
            "defaultVariant": "x",
        },
        "bad_target": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [True, "maybe", "off"]},
        },
        "bool_target": {
            "state": "ENABLED",
            "variants": {"true": "yes", "false": "no"},
            "defaultVariant": "false",
            "targeting": {"==": [{"var": "agent"}, "support"]},
        },
        "code_default": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": None},
        "by_agent_version": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {
                "if": [
                    {
                        "and": [
                            {"==": [{"var": "agent"}, "support"]},
                            {"sem_ver": [{"var": "version"}, ">=", "1.2.0"]},
                            {"<": [{"var": "$flagd.timestamp"}, 4102444800]},
                            {"==": [{"var": "$flagd.flagKey"}, "by_agent_version"]},
                        ]
                    },
                    "on",
                    "off",
                ]
            },
        },
    }
}
STORE = FlagStore(parse_flag_set(DOC))


def test_reasons() -> None:
    e = STORE.evaluate
    assert e("static_on", False).reason == Reason.STATIC
    d = e("beta", False, {"user_id": "beta-1"})
    assert (d.value, d.variant, d.reason) == (True, "on", Reason.TARGETING_MATCH)
    d = e("beta", False, {"user_id": "u-1"})  # the rule returned null: the default variant
    assert (d.value, d.variant, d.reason) == (False, "off", Reason.DEFAULT)
    assert e("split", None, {"targetingKey": "someone"}).reason == Reason.SPLIT
    d = e("off_flag", False)
    assert (d.value, d.variant, d.reason) == (False, None, Reason.DISABLED)
    d = e("nope", "dflt")
    assert (d.value, d.reason, d.error_code) == ("dflt", Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    d = e("bad_target", False)
    assert (d.value, d.reason, d.error_code) == (False, Reason.ERROR, ErrorCode.GENERAL)
    assert "'maybe'" in (d.error_message or "")
    d = e("code_default", "mine")
    assert (d.value, d.reason) == ("mine", Reason.DEFAULT)


def test_non_string_targeting_results_name_variants_as_flagd_does() -> None:
    assert STORE.evaluate("bool_target", "", {"agent": "support"}).value == "yes"
    assert STORE.evaluate("bool_target", "", {"agent": "sales"}).value == "no"


def test_type_mismatch_gives_the_default() -> None:
    d = STORE.evaluate("greeting", False, kind="boolean")
    assert (d.value, d.reason, d.error_code) == (False, Reason.ERROR, ErrorCode.TYPE_MISMATCH)
    assert STORE.evaluate("limit", 0, kind="integer").error_code == ErrorCode.TYPE_MISMATCH  # 500.5
    assert STORE.evaluate("limit", 0.0, kind="number").value == 500.5


def test_flagd_context_and_interaction_context() -> None:
    ctx = interaction_context(session_id="s1", user_id="u1", agent="support", version="1.2.3", plan="pro")
    assert ctx == {
        "plan": "pro",
        "session_id": "s1",
        "user_id": "u1",
        "agent": "support",
        "version": "1.2.3",
        "targetingKey": "u1",
    }
    assert interaction_context(session_id="s1")["targetingKey"] == "s1"
    assert STORE.evaluate("by_agent_version", False, ctx).value is True
    assert STORE.evaluate("by_agent_version", False, {**ctx, "version": "1.1.9"}).value is False


def test_flags_for_context_implements_the_agent_protocol_and_records() -> None:
    seen: list[Any] = []
    flags = FlagsForContext(
        STORE, interaction_context(session_id="s", user_id="beta-9"), on_evaluation=seen.append
    )
    as_protocol: Flags = flags
    assert as_protocol.enabled("beta") is True
    assert flags.enabled("off_flag", default=True) is True
    assert flags.string("greeting") == "Hello"
    assert flags.string("limit", "x") == "x"  # a number flag asked as a string: the default
    assert flags.number("limit") == 500.5
    assert flags.object("model") == {"name": "small", "temp": 0.2}
    assert flags.object("missing_flag", {"k": 1}) == {"k": 1}
    assert flags.enabled("beta") is True  # asked twice: recorded once (the last)
    recorded = {d.flag: d.to_dict() for d in flags.evaluations}
    assert recorded["beta"] == {"flag": "beta", "variant": "on", "reason": "TARGETING_MATCH"}
    assert recorded["off_flag"] == {"flag": "off_flag", "variant": None, "reason": "DISABLED"}
    assert recorded["limit"]["reason"] == "STATIC"  # the last ask (number) succeeded
    assert recorded["missing_flag"]["error"] == "FLAG_NOT_FOUND"
    assert len(seen) == 8


def test_replace_swaps_the_whole_set_and_tells_listeners() -> None:
    store = FlagStore(parse_flag_set(DOC))
    changes: list[int] = []
    store.on_change(lambda fs: changes.append(len(fs.flags)))
    store.replace(parse_flag_set({"flags": {"only": DOC["flags"]["static_on"]}}))
    assert changes == [1] and store.names() == ["only"]
    assert store.evaluate("beta", "gone").reason == Reason.ERROR
