"""Scorers with promptfoo's semantics, for the assertion types promptfoo has and Shipyard's own scorers
do not express: `javascript`, `levenshtein`, `rouge_n`, `equals_json`, `assert_set`, `transformed`
(an assertion checked on the output after a promptfoo `transform`), `openai_tools_call` and
`unsupported` (a case the importer could not convert: always ERROR, naming the feature).

They take `inverse` (promptfoo's `not-` prefix, with promptfoo's scores: a negated number keeps its
score) and read promptfoo's context (`vars`, `prompt`) from the case metadata the importer wrote.
Checked against promptfoo itself by tests/conformance."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from shipyard.evals._js import JsError, call_js
from shipyard.evals._scorers import ScoreFn, ScoreInput, build_scorer, scorer
from shipyard.evals._types import ScoreResult

_FILE_REF = re.compile(r"^file://(?P<file>.+?\.(?:js|cjs|mjs))(?::(?P<fn>[A-Za-z_$][\w$]*))?$")


def pf_context(inp: ScoreInput, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """What promptfoo passes as `context` to javascript and python code."""
    variables = inp.case.metadata.get("vars") or {"input": inp.user_input}
    prompt = inp.case.metadata.get("prompt", inp.user_input)
    return {
        "prompt": prompt,
        "vars": variables,
        "test": {
            "vars": variables,
            **({"description": d} if (d := inp.case.metadata.get("description")) else {}),
        },
        "config": config or {},
    }


def js_text(value: Any) -> str:
    """A value as JavaScript's `String(value)` writes it (2.0 -> "2", True -> "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return "null"
    return str(value)


def js_json(value: Any) -> str:
    """`JSON.stringify(value)` for JSON values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def run_code(code: str, output: str, context: dict[str, Any], base_dir: str | None) -> Any:
    """Inline code or a `file://x.js[:fn]` reference, run with (output, context)."""
    m = _FILE_REF.match(code.strip())
    if m is None:
        return await call_js(code, [output, context])
    path = Path(m.group("file"))
    if not path.is_absolute() and base_dir:
        path = Path(base_dir) / path
    if not path.is_file():
        raise JsError(f"no file {path}")
    return await call_js("", [output, context], file=path, fn=m.group("fn"))


def _result(name: str, passed: bool, score: float, reason: str, inverse: bool) -> ScoreResult:
    ok = passed != inverse
    return ScoreResult(name, ok, score, reason if ok == passed else f"negated: {reason}")


@scorer("javascript")
def javascript(
    value: str,
    *,
    threshold: float | None = None,
    inverse: bool = False,
    base_dir: str | None = None,
    config: dict[str, Any] | None = None,
) -> ScoreFn:
    """JavaScript run as promptfoo runs it (Node.js when present, else the quickjs package): a true
    result or a number above 0 (at or above `threshold` when given) passes; `{pass, score, reason}`
    is taken as it is.

    Args:
        value: an expression, a function body (several lines), or `file://path.js[:function]`.
        threshold: the least number that passes.
        inverse: pass when the check fails (promptfoo's `not-javascript`).
        base_dir: the folder relative `file://` paths start from.
        config: the assertion's `config`, given to the code as `context.config`."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("javascript: value must be JavaScript code or a file:// reference")

    async def score(inp: ScoreInput) -> ScoreResult:
        try:
            out = await run_code(value, inp.output, pf_context(inp, config), base_dir)
        except JsError as e:
            return _result("javascript", False, 0.0, f"the code threw: {e}", inverse)
        if isinstance(out, bool):
            return _result("javascript", out, 1.0 if out else 0.0, f"returned {js_text(out)}", inverse)
        if isinstance(out, int | float):
            passed = out > 0 if threshold is None else out >= threshold
            return ScoreResult("javascript", passed != inverse, float(out), f"returned {out:g}")
        if isinstance(out, dict) and isinstance(out.get("pass"), bool):
            passed = out["pass"]
            score = float(out.get("score", 1.0 if passed else 0.0))
            return ScoreResult("javascript", passed != inverse, score, str(out.get("reason", "")))
        raise TypeError(f"javascript must return a boolean, a number or {{pass, score, reason}}; got {out!r}")

    return score


def levenshtein_distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute one UTF-16 unit, as JavaScript counts) from a to b."""
    a16 = a.encode("utf-16-le")
    b16 = b.encode("utf-16-le")
    x = [a16[i : i + 2] for i in range(0, len(a16), 2)]
    y = [b16[i : i + 2] for i in range(0, len(b16), 2)]
    if len(x) < len(y):
        x, y = y, x
    row = list(range(len(y) + 1))
    for i, cx in enumerate(x, 1):
        prev, row[0] = row[0], i
        for j, cy in enumerate(y, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (cx != cy))
    return row[-1]


@scorer("levenshtein")
def levenshtein(value: Any, *, threshold: float = 5, inverse: bool = False) -> ScoreFn:
    """The output is at most `threshold` edits from the value (promptfoo's `levenshtein`).

    Args:
        value: the expected text.
        threshold: the most edits allowed (default 5).
        inverse: pass when it is further than that."""
    if not isinstance(value, str):
        raise ValueError(f"levenshtein: value must be a text, got {value!r}")

    def score(inp: ScoreInput) -> ScoreResult:
        d = levenshtein_distance(inp.output, value)
        ok = d <= threshold
        return _result(
            "levenshtein", ok, 1.0 if ok != inverse else 0.0, f"distance {d} (max {threshold:g})", inverse
        )

    return score


_CONTRACTIONS = [
    re.compile(rf"(?<![\w\u200c\u200d])({a})({b})(?![\w\u200c\u200d])", re.IGNORECASE)
    for a, b in [
        ("can", "not"),
        ("d", "'ye"),
        ("gim", "me"),
        ("gon", "na"),
        ("got", "ta"),
        ("lem", "me"),
        ("more", "'n"),
        ("'t", "is"),
        ("'t", "was"),
    ]
]


def treebank_tokens(text: str) -> list[str]:
    """Penn Treebank word tokens, the tokenizer promptfoo's ROUGE-N uses (js-rouge's
    `treeBankTokenize`: punctuation, brackets and clitics are tokens of their own)."""
    t = re.sub(r"[\s\u0085]+", " ", text).strip()
    if not t:
        return []
    t = t.replace('"', ' " ')
    t = re.sub(r"\.{3}", " ... ", t)
    t = re.sub(r"[:,](?!\d)", r" \g<0> ", t)
    t = re.sub(r"[;@#$%&]", r" \g<0> ", t)
    t = re.sub(r"([^.])(?<!\b[A-Za-z]\.[A-Za-z])(\.)([\])}>'\s]*)$", r"\1 \2\3 ", t)
    t = re.sub(r"[?!]", r" \g<0> ", t)
    t = re.sub(r"[\][(){}<>]", r" \g<0> ", t)
    t = t.replace("--", " -- ")
    t = f" {t} "
    t = re.sub(r"([^'])' ", r"\1 ' ", t)
    t = re.sub(r"'([sSmMdD]) ", r" '\1 ", t)
    t = re.sub(r"('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r" \1 ", t)
    for c in _CONTRACTIONS:
        t = c.sub(r" \1 \2 ", t)
    return re.sub(r" {2,}", " ", t).strip().split(" ")


def rouge_n_score(candidate: str, reference: str, n: int = 1) -> float:
    """ROUGE-N F1 with clipped n-gram counts on lower-cased treebank tokens, as promptfoo's `rouge-n`."""
    c = treebank_tokens(candidate.lower())
    r = treebank_tokens(reference.lower())
    if len(c) < n or len(r) < n:
        return 0.0
    cg = Counter(tuple(c[i : i + n]) for i in range(len(c) - n + 1))
    rg = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
    overlap = sum((cg & rg).values())
    if overlap == 0:
        return 0.0
    precision = overlap / sum(cg.values())
    recall = overlap / sum(rg.values())
    return 2 * precision * recall / (precision + recall)


@scorer("rouge_n")
def rouge_n(value: Any, *, threshold: float = 0.75, inverse: bool = False, n: int = 1) -> ScoreFn:
    """ROUGE-N F1 of the output against the value at or above the threshold (promptfoo's `rouge-n`).

    Args:
        value: the reference text.
        threshold: the least score that passes (default 0.75).
        inverse: pass below the threshold (the score becomes 1 - score).
        n: the n-gram size."""
    if not isinstance(value, str):
        raise ValueError(f"rouge_n: value must be a text, got {value!r}")

    def score(inp: ScoreInput) -> ScoreResult:
        s = rouge_n_score(inp.output, value, n)
        ok = s >= threshold
        return _result(
            "rouge_n", ok, 1 - s if inverse else s, f"ROUGE-{n} {s:.2f} (threshold {threshold:g})", inverse
        )

    return score


@scorer("equals_json")
def equals_json(value: Any, *, inverse: bool = False) -> ScoreFn:
    """The output parsed as JSON equals the value, deeply and with types (promptfoo's `equals` with an
    object or list value).

    Args:
        value: the expected JSON value.
        inverse: pass when it differs."""

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, bool) or isinstance(b, bool):
            return type(a) is type(b) and a == b
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, int | float) and isinstance(b, int | float):
            return a == b
        return type(a) is type(b) and a == b

    def score(inp: ScoreInput) -> ScoreResult:
        try:
            parsed = json.loads(inp.output)
        except ValueError:
            return ScoreResult("equals_json", inverse, 1.0 if inverse else 0.0, "output is not JSON")
        ok = same(value, parsed)
        return _result(
            "equals_json",
            ok,
            1.0 if ok != inverse else 0.0,
            f"output {'equals' if ok else 'differs from'} {js_json(value)}",
            inverse,
        )

    return score


def _nested(value: Any, name: str) -> list[Any]:
    from shipyard.evals._suite import Assertion

    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(a, dict) for a in items):
        raise ValueError(f"{name}: value must be an assertion or a list of assertions")
    return [build_scorer(Assertion.model_validate(a)) for a in items]


@scorer("assert_set")
def assert_set(value: Any, *, threshold: float | None = None) -> ScoreFn:
    """A group of assertions judged together (promptfoo's `assert-set`): its score is their weighted
    mean; it passes when that reaches `threshold`, or without one when every assertion passed.

    Args:
        value: the assertions (our format).
        threshold: the least weighted mean score that passes."""
    children = _nested(value, "assert_set")

    async def score(inp: ScoreInput) -> ScoreResult:
        results = [await c(inp) for c in children]
        undecided = next((r for r in results if r.passed is None), None)
        if undecided is not None:
            return ScoreResult("assert_set", None, reason="a member could not decide", error=undecided.error)
        total = sum(r.weight for r in results)
        mean = sum(r.score * r.weight for r in results) / total if total else 0.0
        passed = mean >= threshold if threshold is not None else all(r.passed for r in results)
        failed = [r for r in results if not r.passed]
        reason = f"{len(results) - len(failed)} of {len(results)} passed, score {mean:.2f}"
        return ScoreResult("assert_set", passed, mean, reason)

    return score


@scorer("transformed")
def transformed(value: Any, *, transform: str, base_dir: str | None = None) -> ScoreFn:
    """An assertion checked on the output after a promptfoo `transform` (JavaScript, or a Python
    function, given the output and the context; a returned object is checked as its JSON).

    Args:
        value: the assertion (our format).
        transform: the JavaScript expression, function body or `file://path.js[:function]`, or
            `file://path.py[:function]` (a Python function, default `get_transform`).
        base_dir: the folder relative `file://` paths start from."""
    [inner] = _nested(value, "transformed")
    kind = str(value.get("type", "")) if isinstance(value, dict) else ""
    code_check = kind.removeprefix("not-") in ("javascript", "python", "ruby")
    py = re.match(r"^file://(?P<file>.+?\.py)(?::(?P<fn>[A-Za-z_]\w*))?$", transform.strip())
    py_fn = None
    if py is not None:
        from shipyard.evals._scorers_python import _load_file

        py_fn = _load_file(
            py.group("file"), py.group("fn") or "get_transform", Path(base_dir) if base_dir else None
        )

    async def score(inp: ScoreInput) -> ScoreResult:
        try:
            if py_fn is not None:
                ctx = pf_context(inp)
                out = py_fn(inp.output, {"vars": ctx["vars"], "prompt": ctx["prompt"]})
                if asyncio.iscoroutine(out):
                    out = await out
            else:
                out = await run_code(transform, inp.output, pf_context(inp), base_dir)
        except JsError as e:
            return ScoreResult("transformed", None, reason="transform failed", error=f"transform: {e}")
        except Exception as e:  # the user's Python transform raised
            return ScoreResult("transformed", None, reason="transform failed", error=f"transform: {e!r}")
        # code checks get what the transform returned, as in promptfoo (an object stays an object);
        # the others check its text (an object as its JSON)
        text = out if isinstance(out, str) or code_check else js_json(out)
        return await inner(dataclasses.replace(inp, output=text))

    return score


@scorer("openai_tools_call")
def openai_tools_call(value: Any = None, *, tools: list[dict[str, Any]] | None = None) -> ScoreFn:
    """The agent made tool calls, each of a declared function with arguments valid against its
    parameters schema (promptfoo's `is-valid-openai-tools-call`).

    Args:
        value: unused (promptfoo takes none).
        tools: the declared tools, OpenAI style (`[{type: function, function: {name, parameters}}]`)."""
    from shipyard.evals._scorers_match import _schema_problem, _validator

    functions = {
        t["function"]["name"]: t["function"]
        for t in tools or []
        if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict)
    }

    def score(inp: ScoreInput) -> ScoreResult:
        if not inp.tool_calls:
            return ScoreResult("openai_tools_call", False, 0.0, "no tool call was made")
        if not functions:
            return ScoreResult(
                "openai_tools_call", False, 0.0, "no tools are declared, but tools were called"
            )
        for call in inp.tool_calls:
            spec = functions.get(call["name"])
            if spec is None:
                return ScoreResult(
                    "openai_tools_call", False, 0.0, f"{call['name']!r} is not a declared tool"
                )
            problem = _schema_problem(
                _validator(spec.get("parameters") or {}, "openai_tools_call"), call.get("arguments") or {}
            )
            if problem:
                return ScoreResult("openai_tools_call", False, 0.0, f"{call['name']}: {problem}")
        return ScoreResult("openai_tools_call", True, 1.0, "every tool call is valid")

    return score


@scorer("unsupported")
def unsupported(value: str) -> ScoreFn:
    """A check the importer could not convert: always undecided (ERROR), naming what is not supported.

    Args:
        value: what is not supported, and where it came from."""

    def score(inp: ScoreInput) -> ScoreResult:
        # the case's reason names the scorer ("unsupported: ..."): the error says only what is not
        return ScoreResult("unsupported", None, reason="not supported", error=value)

    return score


def _words(text: str) -> list[str]:
    """`text.toLowerCase().trim().split(/\\s+/)`, as promptfoo's BLEU and GLEU split."""
    return re.split(r"\s+", text.lower().strip())


def _ngrams(words: list[str], n: int) -> list[str]:
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)] if 0 < n <= len(words) else []


def bleu_score(candidate: str, references: list[str]) -> float:
    """BLEU-4 (equal weights, brevity penalty against the closest reference length, a zero precision
    smoothed to 1e-7), as promptfoo computes it."""
    if not candidate.strip():
        return 0.0
    cand = _words(candidate)
    refs = [_words(r) for r in references]
    closest = len(refs[0])
    for r in refs[1:]:
        d, best = abs(len(r) - len(cand)), abs(closest - len(cand))
        if d < best or (d == best and len(r) < closest):
            closest = len(r)
    orders = []
    for n in range(1, 5):
        grams = Counter(_ngrams(cand, n))
        total = sum(grams.values())
        if total == 0:
            continue
        clipped = max(sum(min(c, Counter(_ngrams(r, n))[g]) for g, c in grams.items()) for r in refs)
        orders.append(clipped / total)
    if not orders:
        return 0.0
    bp = 1.0 if len(cand) > closest else math.exp(1 - closest / len(cand))
    return bp * math.exp(sum(math.log(p or 1e-7) / len(orders) for p in orders))


def gleu_score(candidate: str, references: list[str]) -> float:
    """Google-BLEU (1- to 4-grams, min of precision and recall, best reference), as promptfoo computes it."""
    cand = [re.sub(r"\.+$", "", w) for w in _words(candidate)]
    best = 0.0
    for reference in references:
        ref = [re.sub(r"\.+$", "", w) for w in _words(reference)]
        if cand == ref:
            return 1.0
        match = c_total = r_total = 0
        for n in range(1, 5):
            cg, rg = Counter(_ngrams(cand, n)), Counter(_ngrams(ref, n))
            match += sum((cg & rg).values())
            c_total += sum(cg.values())
            r_total += sum(rg.values())
        if c_total and r_total:
            best = max(best, min(match / c_total, match / r_total))
    return best


def _references(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"{name}: value must be a text or a list of texts, got {value!r}")


def _overlap_scorer(name: str, fn: Any, value: Any, threshold: float, inverse: bool) -> ScoreFn:
    refs = _references(value, name)

    def score(inp: ScoreInput) -> ScoreResult:
        s = fn(inp.output, refs)
        return _result(
            name,
            s >= threshold,
            1 - s if inverse else s,
            f"{name} {s:.4f} (threshold {threshold:g})",
            inverse,
        )

    return score


@scorer("bleu")
def bleu(value: Any, *, threshold: float = 0.5, inverse: bool = False) -> ScoreFn:
    """BLEU-4 of the output against the reference(s) at or above the threshold (promptfoo's `bleu`).

    Args:
        value: the reference text, or a list of them.
        threshold: the least score that passes (default 0.5).
        inverse: pass below the threshold (the score becomes 1 - score)."""
    return _overlap_scorer("bleu", bleu_score, value, threshold, inverse)


@scorer("gleu")
def gleu(value: Any, *, threshold: float = 0.5, inverse: bool = False) -> ScoreFn:
    """Google-BLEU of the output against the reference(s) at or above the threshold (promptfoo's `gleu`).

    Args:
        value: the reference text, or a list of them.
        threshold: the least score that passes (default 0.5).
        inverse: pass below the threshold (the score becomes 1 - score)."""
    return _overlap_scorer("gleu", gleu_score, value, threshold, inverse)


@scorer("word_count")
def word_count(value: Any, *, inverse: bool = False) -> ScoreFn:
    """The output has exactly `value` words, or between `{min, max}` (promptfoo's `word-count`).

    Args:
        value: a number of words, or `{min, max}` (either may be left out).
        inverse: pass when it has not."""
    if isinstance(value, dict):
        lo, hi = value.get("min"), value.get("max")
        if lo is None and hi is None:
            raise ValueError("word_count: {min, max} needs min and/or max")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"word_count: min ({lo}) must not exceed max ({hi})")
    else:
        try:
            lo = hi = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"word_count: value must be a number or {{min, max}}, got {value!r}") from None

    def score(inp: ScoreInput) -> ScoreResult:
        n = len([w for w in re.split(r"\s+", inp.output.strip()) if w])
        ok = (lo is None or n >= lo) and (hi is None or n <= hi)
        return _result("word_count", ok, 1.0 if ok != inverse else 0.0, f"{n} words", inverse)

    return score


def _has_path(node: Any, path: list[str]) -> bool:
    """Whether `root.child.0.leaf` exists in the parsed XML (the element paths of promptfoo's `is-xml`:
    the first name is the root element, a number picks one of repeated elements)."""
    if not path or node.tag != path[0]:
        return False
    current = [node]
    for key in path[1:]:
        if key.isdigit() and str(int(key)) == key:
            if int(key) >= len(current):
                return False
            current = [current[int(key)]]
            continue
        children = [c for c in current[0] if c.tag == key]
        attribute = key.startswith("@_") and key[2:] in current[0].attrib
        if not children and not attribute:
            return False
        current = children or current
    return True


def _required_elements(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        return [e.strip() for e in value.split(",")]
    if isinstance(value, list):
        return [str(e) for e in value]
    if isinstance(value, dict) and isinstance(value.get("requiredElements"), list):
        return [str(e) for e in value["requiredElements"]]
    if value is None or value == {}:
        return []
    raise ValueError(f"{name}: value must be element paths (a text or a list) or {{requiredElements: [...]}}")


_XML_TAG = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<![^>]*>|<\?.*?\?>"
    r"|<(?P<close>/?)(?P<name>[A-Za-z_][\w:.-]*)(?:\s[^<>]*?)?\s*(?P<self>/?)>",
    re.DOTALL,
)


def xml_candidates(text: str) -> list[tuple[int, int]]:
    """Spans of the XML elements in a text, as promptfoo's `contains-xml` finds them: each outermost
    balanced element (or self-closing tag), and each run of sibling elements taken together."""
    stack: list[tuple[str, int]] = []
    found: list[tuple[int, int, int | None]] = []  # start, end, start of the enclosing open tag
    for m in _XML_TAG.finditer(text):
        if m.group("name") is None:
            continue
        parent = stack[-1][1] if stack else None
        if m.group("close"):
            if stack and stack[-1][0] == m.group("name"):
                start = stack.pop()[1]
                found.append((start, m.end(), stack[-1][1] if stack else None))
            else:
                stack.clear()
        elif m.group("self"):
            found.append((m.start(), m.end(), parent))
        else:
            stack.append((m.group("name"), m.start()))
    starts = {f[0] for f in found}
    spans: list[tuple[int, int]] = []
    siblings: dict[int | None, list[tuple[int, int, int | None]]] = {}
    for f in found:
        siblings.setdefault(f[2], []).append(f)
    for parent, group in siblings.items():
        if len(group) > 1 and (parent is None or parent not in starts):
            group.sort()
            spans.append((group[0][0], group[-1][1]))
    spans += sorted(
        ((a, b) for a, b, parent in found if parent is None or parent not in starts),
        key=lambda x: (x[0], -x[1]),
    )
    return list(dict.fromkeys(spans))


def _xml_has(fragment: str, required: list[str]) -> bool | None:
    """Whether the XML fragment (one element or several siblings) holds every required path; None
    when it does not parse."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(f"<shipyard-fragment>{fragment}</shipyard-fragment>")
    except ET.ParseError:
        return None
    return all(any(_has_path(child, e.split(".")) for child in root) for e in required)


@scorer("contains_xml")
def contains_xml(value: Any = None, *, inverse: bool = False) -> ScoreFn:
    """The output contains XML holding the required elements (promptfoo's `contains-xml`).

    Args:
        value: required element paths (`root.child`): a comma-separated text, a list, or
            `{requiredElements: [...]}`.
        inverse: pass when it does not."""
    required = _required_elements(value, "contains_xml")

    def score(inp: ScoreInput) -> ScoreResult:
        spans = xml_candidates(inp.output)
        ok = bool(spans) and (not required or any(_xml_has(inp.output[a:b], required) for a, b in spans))
        reason = "XML found" if ok else ("no XML" if not spans else "no XML holds the required elements")
        return _result("contains_xml", ok, 1.0 if ok != inverse else 0.0, reason, inverse)

    return score


@scorer("is_xml")
def is_xml(value: Any = None, *, inverse: bool = False) -> ScoreFn:
    """The whole output is well-formed XML holding the required elements (promptfoo's `is-xml`).

    Args:
        value: required element paths (`root.child`): a comma-separated text, a list, or
            `{requiredElements: [...]}`.
        inverse: pass when it is not."""
    import xml.etree.ElementTree as ET

    required = _required_elements(value, "is_xml")

    def score(inp: ScoreInput) -> ScoreResult:
        if "<!DOCTYPE" in inp.output and "[" in inp.output.split("<!DOCTYPE", 1)[1].split(">", 1)[0]:
            return _result(
                "is_xml", False, 1.0 if inverse else 0.0, "DTD internal subsets are not read", inverse
            )
        try:
            root = ET.fromstring(inp.output.strip())
        except ET.ParseError as e:
            return _result("is_xml", False, 1.0 if inverse else 0.0, f"not well-formed XML: {e}", inverse)
        missing = [e for e in required if not _has_path(root, e.split("."))]
        ok = not missing
        reason = "well-formed XML" if ok else f"XML lacks {', '.join(missing)}"
        return _result("is_xml", ok, 1.0 if ok != inverse else 0.0, reason, inverse)

    return score


_HTML_SIGNS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"<[a-zA-Z][a-zA-Z0-9-]*(?:\s[^>]*)?/>"), 1),  # self-closing tag
    (re.compile(r"&(?:[a-zA-Z]+|#[0-9]+|#x[0-9a-fA-F]+);"), 1),  # entity
    (re.compile(r"<!DOCTYPE\s+html", re.IGNORECASE), 2),
    (re.compile(r"<!--[^-]*(?:-[^-]+)*-->"), 1),  # comment
    (re.compile(r"\s[a-zA-Z-]+=\s*[\"'][^\"']*[\"']"), 1),  # attribute
    (
        re.compile(
            r"<(html|head|body|div|span|p|a|img|h[1-6]|ul|ol|li|table|tr|td|th|form|input|button|script"
            r"|style|link|meta|br|hr)\b",
            re.IGNORECASE,
        ),
        2,
    ),
]
_OPENING = re.compile(r"<[a-zA-Z][a-zA-Z0-9-]*(?:\s[^>]*)?>")
_CLOSING = re.compile(r"</[a-zA-Z][a-zA-Z0-9-]*\s*>")


def looks_like_html(text: str) -> bool:
    """promptfoo's `contains-html` test: at least two signs of HTML (tags, entities, a doctype,
    comments, attributes, common element names), counted as promptfoo counts them."""
    if len(text) > 10 * 1024 * 1024:
        return False
    opening, closing = bool(_OPENING.search(text)), bool(_CLOSING.search(text))
    signs = 2 if opening and closing else int(opening or closing)
    signs += sum(weight for pattern, weight in _HTML_SIGNS if pattern.search(text))
    return signs >= 2


@scorer("contains_html")
def contains_html(value: Any = None, *, inverse: bool = False) -> ScoreFn:
    """The output contains HTML (promptfoo's `contains-html`).

    Args:
        value: unused (promptfoo takes none).
        inverse: pass when it does not."""

    def score(inp: ScoreInput) -> ScoreResult:
        ok = looks_like_html(inp.output)
        return _result(
            "contains_html", ok, 1.0 if ok != inverse else 0.0, f"{'' if ok else 'no '}HTML found", inverse
        )

    return score
