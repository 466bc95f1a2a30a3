"""ScriptedModel: every rule condition, templating, usage counting, prompt-cache simulation, rule errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipyard.errors import ConfigError
from shipyard.llm import ChatClient, ScriptedModel, count_tokens, load_rules, parse_rules

TOOLS = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
    for n in ("lookup_order", "process_refund")
]


def model(rules: dict[str, Any], **kw: Any) -> ScriptedModel:
    return ScriptedModel(parse_rules(rules), **kw)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def system(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text}


def tool_turn(name: str, result: Any, call_id: str = "call_1", args: str = "{}") -> list[dict[str, Any]]:
    """An assistant tool call and its result."""
    content = result if isinstance(result, str) else json.dumps(result)
    return [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": content},
    ]


async def answer(m: ScriptedModel, messages: list[dict[str, Any]], tools: Any = None) -> str:
    r = await m.chat(messages, tools=tools)
    return r.text or ",".join(tc.name for tc in r.tool_calls)


def test_is_a_chat_client() -> None:
    assert isinstance(model({"rules": []}), ChatClient)


async def test_user_and_not_user() -> None:
    m = model(
        {
            "default": "D",
            "rules": [
                {"name": "a", "when": {"user": "(?i)order", "not_user": "(?i)cancel"}, "reply": "A"},
            ],
        }
    )
    assert await answer(m, [user("Where is my ORDER?")]) == "A"
    assert await answer(m, [user("cancel my order")]) == "D"
    # the LAST user message counts
    assert await answer(m, [user("order"), {"role": "assistant", "content": "?"}, user("thanks")]) == "D"
    assert await answer(m, [system("order")]) == "D"


async def test_system_and_not_system() -> None:
    m = model(
        {
            "default": "D",
            "rules": [
                {"when": {"system": "eligibility", "not_system": "v1\\.1"}, "reply": "checks"},
            ],
        }
    )
    assert await answer(m, [system("Always check return eligibility."), user("hi")]) == "checks"
    assert await answer(m, [system("check return eligibility (v1.1)"), user("hi")]) == "D"
    assert await answer(m, [user("eligibility")]) == "D"


async def test_last_tool_tool_result_fresh_called() -> None:
    m = model(
        {
            "default": "D",
            "rules": [
                {
                    "name": "refund",
                    "when": {
                        "last_tool": "check_.*",
                        "tool_result": '"eligible":\\s*true',
                        "called": ["lookup_order"],
                        "not_called": ["process_refund"],
                    },
                    "reply": "eligible",
                },
                {"name": "after-lookup", "when": {"last_tool": "lookup_order"}, "reply": "looked up"},
                {"name": "after-tools", "when": {"fresh": False}, "reply": "after tools"},
                {"name": "fresh", "when": {"fresh": True}, "reply": "fresh"},
            ],
        }
    )
    base = [user("return order 10002")]
    assert await answer(m, base) == "fresh"
    lookup = tool_turn("lookup_order", {"status": "delivered"})
    assert await answer(m, base + lookup) == "looked up"
    eligible = tool_turn("check_eligibility", {"eligible": True}, "call_2")
    assert await answer(m, base + lookup + eligible) == "eligible"
    not_eligible = tool_turn("check_eligibility", {"eligible": False}, "call_2")
    assert await answer(m, base + lookup + not_eligible) == "after tools"
    refunded = tool_turn("process_refund", {"ok": True}, "call_3")
    assert await answer(m, base + lookup + refunded + eligible) == "after tools"
    # tools called before the last user message do not count as called
    assert await answer(m, [*lookup, user("and now?"), *eligible]) == "after tools"
    # a tool message with an explicit name
    named = [{"role": "tool", "name": "lookup_order", "tool_call_id": "x", "content": "{}"}]
    assert await answer(m, base + named) == "looked up"


async def test_tools_available() -> None:
    m = model(
        {"default": "D", "rules": [{"when": {"tools_available": "process_refund"}, "reply": "can refund"}]}
    )
    assert await answer(m, [user("x")], TOOLS) == "can refund"
    assert await answer(m, [user("x")], TOOLS[:1]) == "D"
    assert await answer(m, [user("x")]) == "D"


async def test_templating_groups_result_user_and_missing_keys() -> None:
    m = model(
        {
            "rules": [
                {
                    "when": {"last_tool": "lookup_order"},
                    "reply": "Order {result[order_id]} is {result[status]}{result[missing]}{nope}; "
                    "items {result[items]}, "
                    "first {result[items][0][sku]}, all {result}, you said: {user}",
                },
                {
                    "when": {
                        "user": "order (?P<order_id>\\d{5})(?P<rush> rush)?",
                        "system": "(?P<shop>Acme)",
                    },
                    "tool_calls": [
                        {
                            "name": "lookup_order",
                            "arguments": {
                                "order_id": "{order_id}",
                                "meta": {"shop": "{shop}", "rush": "{rush}"},
                                "tags": ["{order_id}", 3],
                            },
                        }
                    ],
                },
            ]
        }
    )
    r = await m.chat([system("Acme support"), user("order 10001")])
    assert r.text is None and r.finish_reason == "tool_calls"
    assert r.tool_calls[0].arguments == {
        "order_id": "10001",
        "meta": {"shop": "Acme", "rush": ""},
        "tags": ["10001", 3],
    }
    assert json.loads(r.tool_calls[0].raw_arguments) == r.tool_calls[0].arguments
    result = {"order_id": "10001", "status": "shipped", "items": [{"sku": "A1"}]}
    msgs = [system("Acme support"), user("order 10001"), *tool_turn("lookup_order", result)]
    text = (await m.chat(msgs)).text
    assert text == (
        'Order 10001 is shipped; items [{"sku":"A1"}], first A1, '
        'all {"order_id":"10001","status":"shipped","items":[{"sku":"A1"}]}, you said: order 10001'
    )


async def test_templates_never_crash() -> None:
    m = model(
        {
            "rules": [
                {"when": {"last_tool": "plain"}, "reply": "got {result} / {result[x]} / {result.attr} / {0}"},
                {"when": {"user": "brace"}, "reply": "a lone { brace and {user}"},
            ]
        }
    )
    assert (await m.chat([user("q"), *tool_turn("plain", "not json")])).text == "got not json /  /  / "
    assert (await m.chat([user("brace")])).text == "a lone { brace and {user}"


async def test_default_mapping_and_tool_call_ids() -> None:
    m = model({"default": {"tool_calls": [{"name": "escalate"}, {"name": "log"}]}, "rules": []})
    r = await m.chat([user("x")])
    assert [tc.id for tc in r.tool_calls] == ["call_1", "call_2"]
    r2 = await m.chat([user("x"), *tool_turn("escalate", "{}", "call_1")])
    assert [tc.id for tc in r2.tool_calls] == ["call_2", "call_3"]  # numbered after earlier calls
    assert (await model({}).chat([user("x")])).text == "Sorry, I can't help with that."


async def test_usage_counts_tokens() -> None:
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("") == 0
    m = model(
        {
            "rules": [
                {
                    "when": {"user": "sum"},
                    "reply": "It is 5.",
                    "tool_calls": [{"name": "add", "arguments": {"a": 2}}],
                }
            ]
        }
    )
    msgs = [system("Be brief."), user("sum 2 and 3")]
    r = await m.chat(msgs, tools=TOOLS[:1])
    expected_in = (
        count_tokens("Be brief.") + count_tokens("sum 2 and 3") + count_tokens(json.dumps(TOOLS[:1]))
    )
    expected_out = count_tokens("It is 5.") + count_tokens('{"name": "add", "arguments": {"a": 2}}')
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_input_tokens) == (
        expected_in,
        expected_out,
        0,
    )
    assert expected_in == 3 + 4 + count_tokens(json.dumps(TOOLS[:1]))
    # assistant tool calls in the conversation are input too
    r2 = await m.chat([*msgs, *tool_turn("add", "5", args='{"a": 2}')])
    assert r2.usage.input_tokens == 3 + 4 + count_tokens("add") + count_tokens('{"a": 2}') + count_tokens("5")


async def test_prompt_cache_simulation() -> None:
    rules = {"prompt_cache": True, "default": "ok"}
    m = model(rules)
    sys_prompt = system("You are the support agent of Acme.")
    first = await m.chat([sys_prompt, user("a")])
    second = await m.chat([sys_prompt, user("b")])
    other = await m.chat([system("Something else"), user("b")])
    assert first.usage.cached_input_tokens == 0
    assert second.usage.cached_input_tokens == count_tokens("You are the support agent of Acme.") == 8
    assert other.usage.cached_input_tokens == 0
    # a new instance has a cold cache; without prompt_cache nothing is cached
    assert (await model(rules).chat([sys_prompt, user("c")])).usage.cached_input_tokens == 0
    off = model({"default": "ok"})
    await off.chat([sys_prompt, user("a")])
    assert (await off.chat([sys_prompt, user("a")])).usage.cached_input_tokens == 0


async def test_latency_and_attempt() -> None:
    m = model(
        {"rules": [{"when": {"user": "slow"}, "reply": "z", "latency_ms": 20}]}, latency_ms=1, name="small"
    )
    r = await m.chat([user("slow")])
    assert r.model == "small" and r.provider == "scripted"
    assert [a.outcome for a in r.attempts] == ["ok"]
    _, delay = m.respond([user("slow")])
    assert delay == 0.02
    _, delay = m.respond([user("fast")])
    assert delay == 0.001


async def test_content_parts_are_text() -> None:
    m = model({"default": "D", "rules": [{"when": {"user": "hello there"}, "reply": "hi"}]})
    parts = {
        "role": "user",
        "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}],
    }
    assert await answer(m, [parts]) == "hi"


def test_starter_rules_load() -> None:
    root = Path(__file__).parents[2] / "src/shipyard/cli/_starter/default/rules/assistant.yaml"
    rules = load_rules(root)
    assert [r.name for r in rules.rules] == ["answer-sum", "ask-add", "greet", "refuse-instructions"]


# errors ----------------------------------------------------------------------------------------
def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text(text)
    return p


def problems(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert info.value.path == str(path)
    return str(info.value)


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, "rules:\n  - name: a\n    reply: 'unclosed\n  - x: [\n")
    msg = problems(p)
    assert str(p) in msg and "malformed YAML" in msg and "line " in msg


def test_unknown_key_names_rule_field_and_line(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """default: hi
rules:
  - name: first
    reply: ok
  - name: lookup-order
    when:
      user: 'order'
      fresh_: true
    reply: x
""",
    )
    msg = problems(p)
    assert "line 8: rules.1.when.fresh_ (rule 'lookup-order'): unknown key" in msg


def test_bad_regex_names_rule_field_and_line(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """rules:
  - when:
      user: ok
    reply: x
  - name: broken
    when:
      tool_result: '"eligible":\\s*(true'
    reply: x
""",
    )
    msg = problems(p)
    assert "line 7: rules.1.when.tool_result (rule 'broken'): not a valid regular expression" in msg
    assert "missing )" in msg


def test_rule_without_an_answer_and_unnamed_rule(tmp_path: Path) -> None:
    p = write(tmp_path, "rules:\n  - when: {user: x}\n")
    msg = problems(p)
    assert "line 2: rules.0 (rule #1 (unnamed)): needs reply or tool_calls" in msg


def test_rules_file_must_be_a_mapping(tmp_path: Path) -> None:
    assert "must be a mapping" in problems(write(tmp_path, "- a\n- b\n"))
    assert "file not found" in problems(tmp_path / "missing.yaml")
