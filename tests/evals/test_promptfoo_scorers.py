"""promptfoo-semantics scorers and helpers that the conformance tests do not reach: the JavaScript
engine's absence, quoted comma-separated values, edit distance, XML element paths."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from shipyard.evals import Assertion, Case, ScoreInput, build_scorer
from shipyard.evals._importers import split_csv
from shipyard.evals._js import NO_ENGINE, engine, function_body
from shipyard.evals._scorers_promptfoo import levenshtein_distance


def run(assertion: dict, output: str) -> object:
    case = Case(id="c", input="x", metadata={"vars": {"input": "x", "city": "Oslo"}})
    return asyncio.run(
        build_scorer(Assertion.model_validate(assertion))(ScoreInput(case=case, output=output))
    )


def test_javascript_without_node_or_quickjs_is_error_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shipyard.evals._js.shutil.which", lambda name: None)
    monkeypatch.setitem(sys.modules, "quickjs", None)  # import quickjs -> ImportError
    result = run({"type": "javascript", "value": "output.length > 1"}, "hello")
    assert result.passed is None and result.error == f"RuntimeError: {NO_ENGINE}"


def test_javascript_runs_with_context_when_node_is_there() -> None:
    if shutil.which("node") is None:
        pytest.skip("node not on PATH")
    assert (
        run({"type": "javascript", "value": "output.includes(context.vars.city)"}, "in Oslo").passed is True
    )
    assert run({"type": "javascript", "value": "throw new Error('boom')"}, "x").passed is False


@pytest.mark.parametrize(
    ("code", "body"),
    [
        ("output.length > 3", "return output.length > 3"),
        ("const n = output.length; n > 3;", "const n = output.length; return n > 3"),
        ("const s = 'a;b'; s === output", "const s = 'a;b'; return s === output"),
        ("const n = 1;\nreturn n;", "const n = 1;\nreturn n;"),
    ],
)
def test_inline_javascript_becomes_a_function_body_as_promptfoo_builds_it(code: str, body: str) -> None:
    assert function_body(code) == body


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("red, blue,green", ["red", "blue", "green"]),
        ('"Hello, world", moon', ["Hello, world", "moon"]),
        ('"say ""hi""", x', ['say "hi"', "x"]),
        (" , a,,", ["a"]),
    ],
)
def test_comma_separated_values_as_promptfoo_splits_them(text: str, fields: list[str]) -> None:
    assert split_csv(text) == fields


def test_levenshtein_counts_edits() -> None:
    assert levenshtein_distance("kitten", "sitting") == 3
    assert levenshtein_distance("", "abc") == 3
    assert levenshtein_distance("😀", "") == 2  # UTF-16 units, as JavaScript counts


def test_is_xml_element_paths() -> None:
    xml = "<order><id>7</id><items><item>a</item><item>b</item></items></order>"
    assert run({"type": "is_xml", "value": "order.items.item.1"}, xml).passed is True
    assert run({"type": "is_xml", "value": ["order.total"]}, xml).passed is False
    assert run({"type": "is_xml", "inverse": True}, "<a>").passed is True


def test_javascript_in_quickjs_when_node_is_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("quickjs")
    monkeypatch.setattr("shipyard.evals._js.shutil.which", lambda name: None)
    assert engine() == "quickjs"
    assert (
        run({"type": "javascript", "value": "output.includes(context.vars.city)"}, "in Oslo").passed is True
    )
    assert run({"type": "javascript", "value": "output.length / 10", "threshold": 0.5}, "abc").passed is False
    body = "const n = output.split(' ').length;\nreturn {pass: n === 2, score: 0.4, reason: 'words'};"
    result = run({"type": "javascript", "value": body}, "two words")
    assert (result.passed, result.score) == (True, 0.4)
    (tmp_path / "check.js").write_text(
        "module.exports.named = (output, context) => output === context.vars.input;"
    )
    named = {"type": "javascript", "value": "file://check.js:named", "base_dir": str(tmp_path)}
    assert run(named, "x").passed is True and run(named, "y").passed is False
    thrown = run({"type": "javascript", "value": "null.x"}, "x")
    assert thrown.passed is False and "threw" in thrown.reason
