"""Each scorer on passing and failing inputs; the judge against real scripted models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import ShipyardConfig
from shipyard.evals import (
    Assertion,
    Case,
    Judge,
    ScoreInput,
    ScoreResult,
    build_scorer,
    find_pii,
    rouge1_f1,
    scorer,
    trajectory_score,
)
from shipyard.llm import ModelPool


def inp(output: str = "", **kw: Any) -> ScoreInput:
    case = kw.pop("case", None) or Case(id="c", input=kw.pop("user_input", "hello"))
    return ScoreInput(case=case, output=output, user_input=case.first_input, **kw)


async def run(type_: str, output: str = "", value: Any = None, **kw: Any) -> ScoreResult:
    fields = {k: kw.pop(k) for k in list(kw) if k in ScoreInput.__dataclass_fields__}
    threshold = kw.pop("threshold", None)
    weight = kw.pop("weight", 1.0)
    built = build_scorer(Assertion(type=type_, value=value, threshold=threshold, weight=weight, **kw))
    return await built(inp(output, **fields))


@pytest.mark.parametrize(
    ("type_", "output", "value", "opts", "passed"),
    [
        ("exact", " 42 ", "42", {}, True),
        ("exact", "42!", "42", {}, False),
        ("exact", "Yes", ["yes", "y"], {"case_sensitive": False}, True),
        ("contains", "Order 10001 shipped", "shipped", {}, True),
        ("contains", "Order 10001 Shipped", "shipped", {}, False),
        ("contains", "a b", ["a", "c"], {"mode": "all"}, False),
        ("contains", "a b c", ["a", "c"], {"mode": "all"}, True),
        ("icontains", "Order SHIPPED", "shipped", {}, True),
        ("not-contains", "as an AI I cannot", "as an AI", {}, False),
        ("not-contains", "Sure!", "as an AI", {}, True),
        ("starts_with", "  Hello there", "Hello", {}, True),
        ("starts-with", "Well, hello", "Hello", {}, False),
        ("regex", "order #12345", r"#\d{5}\b", {}, True),
        ("regex", "ORDER", "order", {"flags": "i"}, True),
        ("regex", "no digits", r"\d", {}, False),
        ("is_json", '```json\n{"a": 1}\n```', None, {}, True),
        ("is_json", "{'a': 1}", None, {}, False),
        ("is_json", '{"a": "x"}', {"type": "object", "properties": {"a": {"type": "integer"}}}, {}, False),
        ("contains_json", 'Here: {"id": 3} done', {"required": ["id"]}, {}, True),
        ("contains_json", "no json {here", None, {}, False),
        ("json_schema", '{"id": 3, "ok": true}', {"type": "object", "required": ["id", "ok"]}, {}, True),
        ("json_schema", '{"id": 3}', {"type": "object", "required": ["id", "ok"]}, {}, False),
        ("numeric", "The total is 1,250.00 dollars", 1250, {}, True),
        ("numeric", "about 3.14", 3.1416, {"tolerance": 0.01}, True),
        ("numeric", "about 3.14", 3.1416, {}, False),
        ("numeric", "10 then 20", 10, {"pick": "last"}, False),
        ("numeric", "no number", 1, {}, False),
        ("similar", "Your order 10001 has shipped", "Your order 10001 has shipped.", {}, True),
        ("similar", "I like turtles", "Your order has shipped", {}, False),
        ("must_refuse", "I'm sorry, but I can't share other customers' orders.", None, {}, True),
        ("must_refuse", "I cannot help with that request.", None, {}, True),
        ("must_refuse", "Sure! Order 10002 belongs to Jane.", None, {}, False),
        ("no_system_prompt_leak", "I help customers with orders.", None, {}, True),
        ("no_pii", "Contact us via the help page.", None, {}, True),
        ("no_pii", "Jane's email is jane.doe@example.com", None, {}, False),
        ("python", "hello world", "len(output) > 5 and 'world' in output", {}, True),
        ("python", "hi", "len(output) > 5", {}, False),
        (
            "python",
            "abc",
            "n = len(output)\nreturn {'pass': n == 3, 'score': 1.0, 'reason': 'three'}",
            {},
            True,
        ),
    ],
)
async def test_text_scorers(type_: str, output: str, value: Any, opts: dict[str, Any], passed: bool) -> None:
    r = await run(type_, output, value, **opts)
    assert r.passed is passed, r
    assert r.scorer == type_ and r.reason


async def test_threshold_and_negation_and_weight() -> None:
    r = await run("similar", "the order shipped today", "your order shipped", threshold=0.5)
    assert r.passed is True and 0.5 <= r.score < 1
    r = await run("not-similar", "the order shipped today", "your order shipped", threshold=0.5)
    assert r.passed is False and r.score == pytest.approx(
        1 - rouge1_f1("the order shipped today", "your order shipped")
    )
    r = await run("contains", "abc", "b", weight=0)
    assert r.weight == 0 and r.passed is True
    # a generic threshold applies to scorers without their own: a 2-of-3 `all` match passes at 0.6
    r = await run("contains", "a b", ["a", "b", "z"], mode="all", threshold=0.6)
    assert r.passed is True and r.details["threshold"] == 0.6


def test_rouge1_matches_hand_computation() -> None:
    # candidate tokens: the cat sat (3); reference: the cat sat down (4); overlap 3
    assert rouge1_f1("The cat sat.", "the cat sat down") == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert rouge1_f1("", "") == 1.0 and rouge1_f1("a", "") == 0.0


async def test_latency_and_cost() -> None:
    assert (await run("latency", max_ms=100, latency_ms=50.0)).passed is True
    assert (await run("latency", value=100, latency_ms=150.0)).passed is False
    replayed = await run("latency", max_ms=100, latency_ms=5000.0, replayed=True)
    assert replayed.passed is True and replayed.details == {"skipped": True}
    assert (await run("cost", max_usd=0.01, cost_usd=0.002)).passed is True
    assert (await run("cost", max_usd=0.001, cost_usd=0.002)).passed is False


async def test_system_prompt_leak() -> None:
    prompt = "You are the support agent for Acme. Never reveal internal refund codes to anyone at all."
    leak = "Sure: You are the support agent for Acme. Never reveal internal refund codes."
    assert (await run("no_system_prompt_leak", leak, system_prompt=prompt)).passed is False
    assert (
        await run("no_system_prompt_leak", "I am the Acme support agent.", system_prompt=prompt)
    ).passed is True
    assert (await run("no_system_prompt_leak", leak, system_prompt=prompt, min_words=20)).passed is True


def test_pii_detection() -> None:
    text = (
        "Mail bob@shop.io or call +1 415-555-0132. Card 4111 1111 1111 1111, not 4111 1111 1111 1112. "
        "SSN 123-45-6789 but not 000-12-3456. Order 10001."
    )
    kinds = sorted(k for k, _ in find_pii(text))
    assert kinds == ["card", "email", "phone", "ssn"]


async def test_pii_allow_lists() -> None:
    out = "We will email you at ann@example.com."
    assert (await run("no_pii", out)).passed is False
    assert (await run("no_pii", out, allow=["ann@example.com"])).passed is True
    r = await run("no_pii", out, allow_input=True, user_input="I am ann@example.com, where is my order?")
    assert r.passed is True
    assert (await run("no_pii", out, kinds=["card"])).passed is True


async def test_must_refuse_counts_blocked_and_escalated() -> None:
    assert (await run("must_refuse", "Let me get a human.", status="escalated")).passed is True
    r = await run("must_refuse", "Let me get a human.", status="escalated", escalation_counts=False)
    assert r.passed is False
    assert (await run("must_refuse", "", status="blocked")).passed is True


async def test_must_not_call() -> None:
    calls = [
        {"name": "lookup_order", "arguments": {}, "status": "success"},
        {"name": "process_refund", "arguments": {}, "status": "invalid_arguments"},
    ]
    assert (await run("must_not_call", value="process_refund", tool_calls=calls)).passed is False
    assert (await run("must_not_call", value=["delete_account"], tool_calls=calls)).passed is True


def calls(*specs: Any) -> list[dict[str, Any]]:
    return [{"name": n, "arguments": a, "status": "success"} for n, a in specs]


ACTUAL = calls(("lookup", {"id": "1"}), ("check", {"id": "1", "days": 30}), ("refund", {"id": "1"}))


@pytest.mark.parametrize(
    ("spec", "passed", "score"),
    [
        ({"mode": "exact", "calls": [{"name": "lookup"}, {"name": "check"}, {"name": "refund"}]}, True, 1.0),
        ({"mode": "exact", "calls": [{"name": "lookup"}, {"name": "refund"}]}, False, 1 / 3),
        ({"mode": "in_order", "calls": [{"name": "lookup"}, {"name": "refund"}]}, True, 1.0),
        ({"mode": "in_order", "calls": [{"name": "refund"}, {"name": "lookup"}]}, False, 0.5),
        (
            {"mode": "any_order", "calls": [{"name": "refund"}, {"name": "check"}, {"name": "lookup"}]},
            True,
            1.0,
        ),
        ({"mode": "any_order", "calls": [{"name": "refund"}, {"name": "lookup"}]}, False, 2 / 3),
        ({"mode": "superset", "calls": [{"name": "refund"}, {"name": "lookup"}]}, True, 1.0),
        ({"mode": "superset", "calls": [{"name": "refund"}, {"name": "escalate"}]}, False, 0.5),
        (
            {
                "mode": "subset",
                "calls": [{"name": "lookup"}, {"name": "check"}, {"name": "refund"}, {"name": "x"}],
            },
            True,
            1.0,
        ),
        ({"mode": "subset", "calls": [{"name": "lookup"}]}, False, 1 / 3),
        # arguments: exact / partial / ignore, per call; numbers and their text are equal
        ({"mode": "in_order", "calls": [{"name": "check", "args": {"id": 1, "days": "30"}}]}, True, 1.0),
        ({"mode": "in_order", "calls": [{"name": "check", "args": {"id": "1"}}]}, False, 0.0),
        (
            {"mode": "in_order", "calls": [{"name": "check", "args": {"id": "1"}, "args_match": "partial"}]},
            True,
            1.0,
        ),
        (
            {"mode": "in_order", "args_match": "partial", "calls": [{"name": "check", "args": {"days": 31}}]},
            False,
            0.0,
        ),
        (
            {"mode": "in_order", "calls": [{"name": "check", "args": {"id": "9"}, "args_match": "ignore"}]},
            True,
            1.0,
        ),
        # forbidden tools and call limits fail outright
        ({"mode": "superset", "calls": [{"name": "lookup"}], "forbidden": ["refund"]}, False, 0.0),
        ({"forbidden": ["delete"], "max_calls": {"lookup": 1}}, True, 1.0),
        ({"max_calls": {"lookup": 0}}, False, 0.0),
        # a threshold below 1 accepts a partial trajectory (ADK's tool_trajectory_avg_score)
        (
            {"mode": "superset", "calls": [{"name": "refund"}, {"name": "escalate"}], "threshold": 0.5},
            True,
            0.5,
        ),
    ],
)
def test_trajectory_modes(spec: dict[str, Any], passed: bool, score: float) -> None:
    ok, s, reason = trajectory_score(spec, ACTUAL)
    assert (ok, s) == (passed, pytest.approx(score)), reason


async def test_trajectory_scorer_and_empty_expectation() -> None:
    r = await run("trajectory", value={"mode": "exact", "calls": []}, tool_calls=[])
    assert r.passed is True
    r = await run("trajectory", value={"mode": "exact", "calls": []}, tool_calls=ACTUAL[:1])
    assert r.passed is False and "expected [], got ['lookup']" in r.reason


@pytest.mark.parametrize(
    ("type_", "value", "opts", "message"),
    [
        ("regex", "(", {}, "regex: bad pattern"),
        ("regex", "a", {"flags": "x"}, "unknown flag"),
        ("json_schema", {"type": 5}, {}, "invalid JSON schema"),
        ("numeric", "abc", {}, "value must be a number"),
        ("similar", "x", {"threshold": 2}, "threshold must be between 0 and 1"),
        ("latency", None, {}, "latency: needs max_ms"),
        ("cost", None, {"max_usd": -1}, "cost: needs max_usd"),
        ("must_not_call", 3, {}, "must_not_call: value must be a tool name"),
        ("contains", None, {}, "contains: needs a value"),
        ("contains", "a", {"mode": "most"}, "mode must be 'any' or 'all'"),
        ("no_pii", None, {"kinds": ["dna"]}, "no_pii: kinds must be among"),
        ("llm_judge", "", {}, "llm_judge: value must be the rubric"),
        ("llm_judge", "polite", {"k": 0}, "k must be between 1 and 25"),
        ("python", "no_such_module_xyz:fn", {}, "cannot import 'no_such_module_xyz'"),
        ("python", "os.path:nope", {}, "has no 'nope'"),
        ("python", "file://missing.py:check", {}, "no file"),
        ("trajectory", {"mode": "zigzag"}, {}, "trajectory:"),
        ("is_json", "{not json", {}, "the schema is neither JSON nor YAML"),
        ("must_refuse", None, {"patterns": ["("]}, "must_refuse: bad pattern"),
        ("no_system_prompt_leak", None, {"min_words": 1}, "min_words must be at least 3"),
    ],
)
def test_misconfigured_scorers_fail_to_build(
    type_: str, value: Any, opts: dict[str, Any], message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=None) as err:
        build_scorer(Assertion(type=type_, value=value, **opts))
    assert message in str(err.value)


def test_unknown_types_and_options() -> None:
    with pytest.raises(ValueError, match="unknown assertion type 'equals'"):
        Assertion(type="equals", value="x")
    with pytest.raises(ValueError, match=r"unknown option\(s\) tolerance"):
        Assertion(type="contains", value="x", tolerance=1)


async def test_custom_scorer_by_decorator_and_import_path(tmp_path: Path) -> None:
    @scorer("shouts")
    def shouts(value: Any = None, *, min_ratio: float = 0.5) -> Any:
        """Most letters are upper case.

        Args:
            min_ratio: the share of upper-case letters needed."""

        def score(i: ScoreInput) -> float:
            letters = [c for c in i.output if c.isalpha()]
            return sum(c.isupper() for c in letters) / max(len(letters), 1)

        return score

    assert (await run("shouts", "HELLO there")).passed is True  # 5/10 = 0.5
    assert (
        await run("shouts", "hello THERE", min_ratio=0.9)
    ).passed is True  # the float decides, not the option
    assert (await run("not-shouts", "quiet")).passed is True

    (tmp_path / "my_scorers.py").write_text(
        "async def polite(inp):\n    return {'pass': 'please' in inp.output, 'reason': 'checked'}\n"
        "def broken(inp):\n    raise RuntimeError('boom')\n"
        "def get_assert(output, context):\n    return context['vars']['input'] in output\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        assert (await run("python", "yes please", "my_scorers:polite")).passed is True
        r = await run("python", "x", "my_scorers:broken")
        assert r.passed is None and r.error == "RuntimeError: boom"  # a crash is ERROR, not an exception
        r = await run("python", "you said hello", f"file://{tmp_path}/my_scorers.py")
        assert r.passed is True
    finally:
        sys.path.remove(str(tmp_path))


# the judge ----------------------------------------------------------------------------------------

# the scripted model's replies are templates: JSON braces are doubled
GOOD = 'default: \'{{"pass": true, "score": 0.9, "reason": "polite and correct"}}\'\n'
FAIL = 'default: \'Verdict: {{"pass": false, "score": 0.2, "reason": "rude"}}\'\n'
GARBAGE = "default: 'I think it is fine, probably.'\n"
BY_RUBRIC = """\
default: 'no idea'
rules:
  - when: {user: 'mention the refund window'}
    reply: '```json\n{{"pass": true, "score": 1, "reason": "mentions 30 days"}}\n```'
"""


def judge_cfg(tmp_path: Path, **rules: str) -> ShipyardConfig:
    models = {}
    for key, text in rules.items():
        (tmp_path / f"{key}.yaml").write_text(text)
        models[key] = {
            "provider": "scripted",
            "rules": f"{key}.yaml",
            "prices": {"input": 1.0, "output": 2.0},
        }
    cfg = ShipyardConfig.model_validate({"models": models})
    cfg._root = tmp_path
    return cfg


async def judged(cfg: ShipyardConfig, output: str, **opts: Any) -> ScoreResult:
    built = build_scorer(Assertion(type="llm_judge", value=opts.pop("rubric", "Is polite"), **opts))
    pool = ModelPool(cfg)
    handle = Judge(pool).handle()
    return await built(inp(output, judge=handle))


async def test_judge_good_verdict_records_tokens_and_cost(tmp_path: Path) -> None:
    cfg = judge_cfg(tmp_path, judge=GOOD)
    r = await judged(cfg, "Thank you, your order shipped.")
    assert r.passed is True and r.score == pytest.approx(0.9) and "polite and correct" in r.reason
    assert r.judge_input_tokens > 0 and r.judge_output_tokens > 0
    expected = (r.judge_input_tokens * 1.0 + r.judge_output_tokens * 2.0) / 1e6
    assert r.judge_cost_usd == pytest.approx(expected)


async def test_judge_verdict_in_text_and_fences(tmp_path: Path) -> None:
    cfg = judge_cfg(tmp_path, judge=FAIL, fenced=BY_RUBRIC)
    r = await judged(cfg, "whatever")
    assert r.passed is False and r.score == pytest.approx(0.2)
    r = await judged(cfg, "30 days", model="fenced", rubric="Must mention the refund window")
    assert r.passed is True


async def test_unreadable_verdict_is_error_not_pass(tmp_path: Path) -> None:
    cfg = judge_cfg(tmp_path, judge=GARBAGE)
    r = await judged(cfg, "hello")
    assert r.passed is None and "unreadable verdict" in (r.error or "")
    assert r.judge_input_tokens > 0  # the judge's tokens still count


async def test_judge_majority_of_k(tmp_path: Path) -> None:
    cfg = judge_cfg(tmp_path, a=GOOD, b=GOOD, c=FAIL, bad=GARBAGE)
    r = await judged(cfg, "x", model=["a", "b", "c"])
    assert r.passed is True and r.details["k"] == 3 and "2/3 pass" in r.reason
    r = await judged(cfg, "x", model=["a", "c", "c"])
    assert r.passed is False
    r = await judged(cfg, "x", model=["a", "c", "bad"])  # 1 pass, 1 fail, 1 unreadable: undecided
    assert r.passed is None and "no majority verdict (1 pass, 1 fail of 3)" in (r.error or "")
    r = await judged(cfg, "x", model=["a", "a", "bad"])  # two of three readable and passing: a majority
    assert r.passed is True
    r = await judged(cfg, "x", model=["a", "c"])  # a tie fails
    assert r.passed is False
    r = await judged(cfg, "x", model="a", k=3)  # k samples of one model
    assert r.passed is True and len(r.details["votes"]) == 3


async def test_judge_without_handle_is_error() -> None:
    built = build_scorer(Assertion(type="llm_judge", value="polite"))
    r = await built(inp("x"))
    assert r.passed is None
