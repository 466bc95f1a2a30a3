"""The scripted model reads each rule's conditions once (plain values, not the pydantic model on every
request) and parses the last tool result only when a template asks for `result`: the answers are the
same as before either way."""

from __future__ import annotations

import json
from typing import Any

from shipyard.llm import ScriptedModel, parse_rules


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def tool_turn(name: str, content: str) -> list[dict[str, Any]]:
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": "{}"}}
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": content},
    ]


async def test_a_group_named_result_gives_way_to_the_tool_result() -> None:
    m = ScriptedModel(
        parse_rules(
            {
                "rules": [
                    {"when": {"user": "(?P<result>order \\d+)", "fresh": False}, "reply": "{result[id]}!"},
                    {"when": {"user": "(?P<result>order \\d+)"}, "reply": "asked about {result}"},
                ]
            }
        )
    )
    assert (await m.chat([user("order 7")])).text == "asked about order 7"
    after = [user("order 7"), *tool_turn("lookup", json.dumps({"id": "A1"}))]
    assert (await m.chat(after)).text == "A1!"
    assert (await m.chat([user("order 7"), *tool_turn("lookup", "plain text")])).text == "!"


async def test_rules_changed_in_place_are_read_again() -> None:
    rules = parse_rules({"rules": [{"when": {"user": "hi"}, "reply": "one"}]})
    m = ScriptedModel(rules)
    assert (await m.chat([user("hi")])).text == "one"
    rules.rules.insert(0, parse_rules({"rules": [{"when": {"user": "h"}, "reply": "two"}]}).rules[0])
    assert (await m.chat([user("hi")])).text == "two"
    assert (await m.chat([user("hi"), *tool_turn("x", "{}")])).text == "two"
