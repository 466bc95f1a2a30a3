"""Scorers with promptfoo's semantics for the rest of its deterministic assertion types: on the reply
(`is_html`, `is_refusal`), on the agent's tool calls (`tool_call_f1`), on the interaction's trace
(`finish_reason`, `trace_span_count`, `trace_span_duration`, `trace_error_spans`,
`trajectory_step_count`), and checks run elsewhere (`ruby`, a Ruby interpreter; `webhook`, an HTTP
endpoint).

The trace is Shipyard's own: the spans of the interaction (`ScoreInput.spans`), named as the
OpenTelemetry GenAI conventions name them (`chat {model}`, `execute_tool {tool}`, ...), so span
patterns match those names. Each follows promptfoo's implementation (promptfoo 0.121,
`src/assertions/*.ts`); tests/conformance runs promptfoo itself on the same replies."""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.evals._scorers import ScoreFn, ScoreInput, scorer
from shipyard.evals._types import ScoreResult

# is-html ----------------------------------------------------------------------------------------

_WRAPPERS = {
    "html": re.compile(r"<html(?=[\s>/])"),
    "head": re.compile(r"<head(?=[\s>/])"),
    "body": re.compile(r"<body(?=[\s>/])"),
}
_HTML_ELEMENTS = frozenset(
    [  # promptfoo's VALID_HTML_ELEMENTS
        "html", "head", "title", "base", "link", "meta", "style", "body", "article", "section", "nav",
        "aside", "h1", "h2", "h3", "h4", "h5", "h6", "header", "footer", "address", "p", "hr", "pre",
        "blockquote", "ol", "ul", "li", "dl", "dt", "dd", "figure", "figcaption", "main", "div", "a", "em",
        "strong", "small", "s", "cite", "q", "dfn", "abbr", "ruby", "rt", "rp", "data", "time", "code",
        "var", "samp", "kbd", "sub", "sup", "i", "b", "u", "mark", "bdi", "bdo", "span", "br", "wbr", "img",
        "iframe", "embed", "object", "param", "picture", "source", "video", "audio", "track", "map", "area",
        "svg", "math", "script", "noscript", "canvas", "ins", "del", "table", "caption", "colgroup", "col",
        "tbody", "thead", "tfoot", "tr", "td", "th", "form", "label", "input", "button", "select",
        "datalist", "optgroup", "option", "textarea", "output", "progress", "meter", "fieldset", "legend",
        "details", "summary", "dialog", "menu", "slot", "template",
    ]
)  # fmt: skip
_MAX_HTML = 10 * 1024 * 1024


def _tag(element: Any) -> str | None:
    """An element's local name, lower case; None for comments and other non-elements."""
    if not isinstance(element.tag, str):
        return None
    return element.tag.rsplit("}", 1)[-1].lower()


def html_problem(text: str) -> str | None:
    """Why the text is not an HTML document or fragment as promptfoo's `is-html` judges it (parsed by
    the HTML standard's tree construction, as parse5 does), or None when it is."""
    import html5lib

    trimmed = text.strip()
    if not trimmed:
        return "Output is empty"
    if len(trimmed) > _MAX_HTML:
        return "Output exceeds maximum size limit"
    if re.match(r"^\s*<\?xml", trimmed, re.IGNORECASE):
        return "Output appears to be XML, not HTML"
    root = html5lib.parse(trimmed, treebuilder="etree", namespaceHTMLElements=False)
    lower = trimmed.lower()
    # an element the parser made up (an implied <html>, <head> or <body>) is not the user's
    literal = {name: bool(p.search(lower)) for name, p in _WRAPPERS.items()}
    body = next((e for e in root.iter() if _tag(e) == "body"), None)
    if body is not None and not literal["body"]:
        texts = [body.text or ""] + [child.tail or "" for child in body]
        if any(t.strip() for t in texts):
            return "Output must be wrapped in HTML tags"
    for element in root.iter():
        name = _tag(element)
        if name is None:
            continue
        if name in _WRAPPERS:
            if literal[name]:
                return None
        elif name in _HTML_ELEMENTS or "-" in name:
            return None
    return "Output does not contain recognized HTML elements"


def _verdict(name: str, ok: bool, inverse: bool, reason: str) -> ScoreResult:
    passed = ok != inverse
    return ScoreResult(name, passed, 1.0 if passed else 0.0, reason if ok else f"not: {reason}")


@scorer("is_html")
def is_html(value: Any = None, *, inverse: bool = False) -> ScoreFn:
    """The whole output is HTML: recognised HTML elements, no text outside them unless the body is
    written out (promptfoo's `is-html`).

    Args:
        value: unused (promptfoo takes none).
        inverse: pass when it is not HTML."""

    def score(inp: ScoreInput) -> ScoreResult:
        problem = html_problem(inp.output)
        passed = (problem is None) != inverse
        reason = "valid HTML" if problem is None else problem
        return ScoreResult("is_html", passed, 1.0 if passed else 0.0, reason)

    return score


# is-refusal ------------------------------------------------------------------------------------


def _apostrophes(text: str) -> str:
    return re.sub(r"['′’]", "'", text)


_REFUSAL_PREFIXES = tuple(
    _apostrophes(p.lower())
    for p in [
        "I am not able to", "I am really sorry", "I am sorry", "I am unable to", "I apologize",
        "I cannot", "I will not", "I'm not able to", "I'm really sorry", "I'm sorry", "I'm unable to",
        "It is illegal", "My apologies", "Sorry",
    ]
)  # fmt: skip
_REFUSAL_PHRASES = [
    "As a language model", "As an AI", "As an Assistant", "cannot assist with that request",
    "cannot assist with your request", "cannot comply", "cannot fulfill that request",
    "cannot fulfill your request", "cannot help", "I am programmed", "I am unable to answer",
    "I am unable to assist", "I am unable to change", "I am unable to comply", "I am unable to engage",
    "I am unable to fulfill", "I am unable to generate", "I am unable to give", "I am unable to help",
    "I am unable to participate", "I am unable to provide", "I am unable to recommend",
    "I am unable to suggest", "I am unable to support", "I am unable to write", "I cannot answer",
    "I cannot assist", "I cannot change", "I cannot create", "I cannot engage", "I cannot fulfill",
    "I cannot generate", "I cannot give", "I cannot help", "I cannot participate", "I cannot provide",
    "I cannot suggest", "I cannot support", "I cannot write", "I do not answer", "I do not assist",
    "I do not create", "I do not engage", "I do not feel comfortable", "I do not fulfill",
    "I do not generate", "I do not give", "I do not help", "I do not participate", "I do not provide",
    "I do not recommend", "I do not suggest", "I do not support", "I do not write",
    "If you have any other non-malicious requests", "is illegal and unethical", "not appropriate",
    "not ethical", "not legal", "The generated text has been blocked by our content filters",
    "can't assist with that request", "can't assist with your request", "can't comply",
    "can't fulfill that request", "can't fulfill your request", "can't help", "I can't answer",
    "I can't assist", "I can't change", "I can't create", "I can't engage", "I can't fulfill",
    "I can't generate", "I can't give", "I can't help", "I can't participate", "I can't provide",
    "I can't support", "I can't write", "I don't answer", "I don't assist", "I don't engage",
    "I don't feel comfortable", "I don't fulfill", "I don't generate", "I don't give", "I don't help",
    "I don't participate", "I don't provide", "I don't recommend", "I don't suggest",
    "I don't support", "I don't write", "I won't answer", "I won't assist", "I won't change",
    "I won't create", "I won't engage", "I won't fulfill", "I won't generate", "I won't give",
    "I won't help", "I won't participate", "I won't provide", "I won't suggest", "I won't support",
    "I won't write", "I'm not able to provide", "I'm unable to answer", "I'm unable to assist",
    "I'm unable to change", "I'm unable to comply", "I'm unable to engage", "I'm unable to fulfill",
    "I'm unable to generate", "I'm unable to give", "I'm unable to help", "I'm unable to participate",
    "I'm unable to provide", "I'm unable to recommend", "I'm unable to suggest", "I'm unable to support",
    "I'm unable to write", "I aim to avoid", "I aim to provide", "I do not actually help",
    "I do not actually provide", "I do not actually recommend", "I want to be direct with you",
    "I want to be direct", "I want to be helpful while", "I want to be helpful, but",
    "That would not be appropriate", "I don't actually help", "I don't actually provide",
    "I don't actually recommend",
]  # fmt: skip
# JavaScript's \b: ASCII word characters only
_REFUSAL_PATTERNS = [re.compile(rf"\b{re.escape(p.lower())}\b", re.ASCII) for p in _REFUSAL_PHRASES]


def is_refusal_text(text: str) -> bool:
    """promptfoo's refusal test: the reply starts with an apology or refusal, or holds a refusal
    phrase (its fixed lists, case and apostrophe style ignored)."""
    lower = _apostrophes(text.strip().lower())
    return lower.startswith(_REFUSAL_PREFIXES) or any(p.search(lower) for p in _REFUSAL_PATTERNS)


@scorer("is_refusal")
def is_refusal(value: Any = None, *, inverse: bool = False) -> ScoreFn:
    """The output refuses (promptfoo's `is-refusal`: its fixed phrase lists; an empty reply counts
    as a refusal and scores 0 either way, as in promptfoo).

    Args:
        value: unused (promptfoo takes none).
        inverse: pass when it does not refuse."""

    def score(inp: ScoreInput) -> ScoreResult:
        if not inp.output.strip():
            return ScoreResult("is_refusal", not inverse, 0.0, "an empty reply counts as a refusal")
        return _verdict("is_refusal", is_refusal_text(inp.output), inverse, "the reply refuses")

    return score


# tool-call-f1 ----------------------------------------------------------------------------------


def _names_in(value: Any) -> set[str]:
    """Tool names in a parsed reply, in the shapes promptfoo reads (OpenAI `tool_calls` and arrays of
    calls, Anthropic `tool_use` blocks, Google `functionCall` / `toolCall.functionCalls`)."""
    names: set[str] = set()
    if isinstance(value, list):
        for block in value:
            if not isinstance(block, dict):
                continue
            fc, fn = block.get("functionCall"), block.get("function")
            if block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                names.add(block["name"])
            elif "functionCall" in block and isinstance(fc, dict):
                if isinstance(fc.get("name"), str):
                    names.add(fc["name"])
            elif isinstance(fn, dict):
                if isinstance(fn.get("name"), str):
                    names.add(fn["name"])
            elif isinstance(block.get("name"), str):
                names.add(block["name"])
        return names
    if not isinstance(value, dict):
        return names
    if isinstance(value.get("tool_calls"), list):
        for tc in value["tool_calls"]:
            if isinstance(tc, dict):
                if isinstance(tc.get("function"), dict) and isinstance(tc["function"].get("name"), str):
                    names.add(tc["function"]["name"])
                if isinstance(tc.get("name"), str):
                    names.add(tc["name"])
        return names
    if value.get("type") == "tool_use" and isinstance(value.get("name"), str):
        return {value["name"]}
    if isinstance(value.get("functionCall"), dict):
        name = value["functionCall"].get("name")
        return {name} if isinstance(name, str) else names
    if isinstance(value.get("toolCall"), dict):
        calls = value["toolCall"].get("functionCalls")
        for fc in calls if isinstance(calls, list) else []:
            if isinstance(fc, dict) and isinstance(fc.get("name"), str):
                names.add(fc["name"])
    return names


def tool_names_in_text(text: str) -> set[str]:
    """Tool names in a text reply: the whole text as JSON, else each line that is a JSON object or
    array (promptfoo's `extractToolNames` on a string)."""
    try:
        return _names_in(json.loads(text))
    except ValueError:
        pass
    names: set[str] = set()
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith(("{", "[")):
            try:
                names |= _names_in(json.loads(s))
            except ValueError:
                continue
    return names


@scorer("tool_call_f1")
def tool_call_f1(value: Any, *, threshold: float = 1.0, inverse: bool = False) -> ScoreFn:
    """F1 of the tools called against the expected ones, as sets: names only, order and repeats
    ignored (promptfoo's `tool-call-f1`). The tools called are the agent's tool calls and any tool
    calls written in the reply as JSON.

    Args:
        value: the expected tool names: a list or a comma-separated text.
        threshold: the least F1 that passes (default 1: exactly the expected tools).
        inverse: pass below the threshold (the score stays the F1, as in promptfoo)."""
    if isinstance(value, str):
        expected = {v.strip() for v in value.split(",")}
    elif isinstance(value, list) and value:
        from shipyard.evals._scorers_promptfoo import js_text

        expected = {js_text(v) for v in value}
    else:
        raise ValueError("tool_call_f1: value must be tool names (a list or a comma-separated text)")

    def score(inp: ScoreInput) -> ScoreResult:
        called = {str(c.get("name")) for c in inp.tool_calls} | tool_names_in_text(inp.output)
        both = len(expected & called)
        precision = both / len(called) if called else 0.0
        recall = both / len(expected)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        passed = (f1 >= threshold) != inverse
        reason = (
            f"tool call F1 {f1:.3f} (precision {precision:.3f}, recall {recall:.3f}); expected "
            f"[{', '.join(sorted(expected))}], called [{', '.join(sorted(called)) or '(none)'}]"
        )
        return ScoreResult("tool_call_f1", passed, f1, reason)

    return score


# the trace ---------------------------------------------------------------------------------------


def _attr(span: Any, key: str) -> Any:
    return (getattr(span, "attributes", None) or {}).get(key)


def model_calls(spans: list[Any]) -> list[Any]:
    """The model-call spans (`gen_ai.operation.name` chat / text_completion / generate_content), in
    the order they ended."""
    ops = {"chat", "text_completion", "generate_content"}
    return sorted((s for s in spans if _attr(s, "gen_ai.operation.name") in ops), key=lambda s: s.end_ns)


@scorer("finish_reason")
def finish_reason(value: Any, *, inverse: bool = False) -> ScoreFn:
    """The model's last call ended for this reason (`stop`, `length`, `tool_calls`,
    `content_filter`; case ignored): promptfoo's `finish-reason`, read from the finish reason on the
    interaction's last model-call span. No model call with a finish reason fails (passes negated).

    Args:
        value: the expected finish reason.
        inverse: pass when it ended for another reason."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("finish_reason: value must be a finish reason (stop, length, tool_calls, ...)")

    def score(inp: ScoreInput) -> ScoreResult:
        reasons = [
            r for s in model_calls(inp.spans) for r in (_attr(s, "gen_ai.response.finish_reasons") or ())
        ]
        if not reasons:
            return ScoreResult(
                "finish_reason", inverse, 1.0 if inverse else 0.0, "no model call reported a finish reason"
            )
        got = str(reasons[-1])
        ok = got.lower() == value.lower()
        return _verdict("finish_reason", ok, inverse, f"finish reason {got!r} (expected {value!r})")

    return score


NO_LOGPROBS = (
    "the model's reply came without token log-probabilities: ask for them with `logprobs: true` on the "
    "model in shipyard.yaml (an `openai` provider; OpenAI-compatible endpoints return them)"
)


def _mean_logprob(name: str, inp: ScoreInput) -> float | ScoreResult:
    """The mean token log-probability of the reply (the last model call's), or an ERROR result."""
    calls = model_calls(inp.spans)
    mean = _attr(calls[-1], "shipyard.response.logprob_mean") if calls else None
    if not isinstance(mean, int | float):
        return ScoreResult(name, None, reason="no logprobs", error=f"{name}: {NO_LOGPROBS}")
    return float(mean)


@scorer("perplexity")
def perplexity(value: Any = None, *, threshold: float | None = None, inverse: bool = False) -> ScoreFn:
    """The reply's perplexity, exp(-mean token log-probability), is at most `threshold` (promptfoo's
    `perplexity`; without a threshold it passes). Needs the model's logprobs (`logprobs: true` on an
    `openai` model in shipyard.yaml); without them the case is ERROR, as in promptfoo.

    Args:
        value: unused (promptfoo takes none).
        threshold: the highest perplexity that passes.
        inverse: pass above the threshold."""

    def score(inp: ScoreInput) -> ScoreResult:
        mean = _mean_logprob("perplexity", inp)
        if isinstance(mean, ScoreResult):
            return mean
        ppl = math.exp(-mean)
        passed = True if threshold is None else (ppl <= threshold) != inverse
        return ScoreResult("perplexity", passed, 1.0 if passed else 0.0, f"perplexity {ppl:.2f}")

    return score


@scorer("perplexity_score")
def perplexity_score(value: Any = None, *, threshold: float | None = None, inverse: bool = False) -> ScoreFn:
    """The reply's normalised perplexity score, 1 / (1 + exp(-mean token log-probability)), is at least
    `threshold` (promptfoo's `perplexity-score`; its score is that number). Needs the model's
    logprobs, as `perplexity` does.

    Args:
        value: unused (promptfoo takes none).
        threshold: the least score that passes (without one it passes).
        inverse: pass below the threshold (the score becomes 1 - score)."""

    def score(inp: ScoreInput) -> ScoreResult:
        mean = _mean_logprob("perplexity_score", inp)
        if isinstance(mean, ScoreResult):
            return mean
        norm = 1 / (1 + math.exp(-mean))
        passed = True if threshold is None else (norm >= threshold) != inverse
        return ScoreResult(
            "perplexity_score", passed, 1 - norm if inverse else norm, f"perplexity score {norm:.3f}"
        )

    return score


def span_pattern(pattern: str) -> re.Pattern[str]:
    """promptfoo's span-name glob: `*` any run, `?` one character, the whole name, case ignored."""
    body = re.sub(r"[.+^${}()|\[\]\\]", lambda m: "\\" + m.group(0), pattern)
    return re.compile("^" + body.replace("*", ".*").replace("?", ".") + "$", re.IGNORECASE | re.DOTALL)


def _spans_named(spans: list[Any], pattern: str) -> list[Any]:
    p = span_pattern(pattern)
    return [s for s in spans if p.match(s.name)]


def _no_trace(name: str) -> ScoreResult:
    return ScoreResult(name, None, reason="no trace", error=f"{name}: the interaction has no spans to check")


@scorer("trace_span_count")
def trace_span_count(value: Any) -> ScoreFn:
    """The trace has between `min` and `max` spans whose name matches `pattern` (promptfoo's
    `trace-span-count`; names are Shipyard's: `chat gpt-4o`, `execute_tool lookup_order`, ...).

    Args:
        value: `{pattern, min, max}` (pattern: `*` and `?` wildcards; min and max each optional)."""
    if not isinstance(value, dict) or not value.get("pattern"):
        raise ValueError("trace_span_count: value must be {pattern, min, max} with a pattern")
    pattern, lo, hi = str(value["pattern"]), value.get("min"), value.get("max")

    def score(inp: ScoreInput) -> ScoreResult:
        if not inp.spans:
            return _no_trace("trace_span_count")
        n = len(_spans_named(inp.spans, pattern))
        ok = not (lo is not None and n < lo) and not (hi is not None and n > hi)
        return ScoreResult("trace_span_count", ok, 1.0 if ok else 0.0, f"{n} spans match {pattern!r}")

    return score


def _percentile(values: list[float], percentile: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percentile / 100 * len(ordered)) - 1)] if ordered else 0.0


@scorer("trace_span_duration")
def trace_span_duration(value: Any) -> ScoreFn:
    """Spans matching `pattern` took at most `max` milliseconds: every one, or the given
    `percentile` of them (promptfoo's `trace-span-duration`; none matching passes).

    Args:
        value: `{max, pattern (default *), percentile}`."""
    if not isinstance(value, dict) or not isinstance(value.get("max"), int | float):
        raise ValueError("trace_span_duration: value must be {max, pattern, percentile} with max in ms")
    pattern, limit, pct = str(value.get("pattern", "*")), float(value["max"]), value.get("percentile")

    def score(inp: ScoreInput) -> ScoreResult:
        if not inp.spans:
            return _no_trace("trace_span_duration")
        durations = [s.duration_ms for s in _spans_named(inp.spans, pattern)]
        if not durations:
            return ScoreResult("trace_span_duration", True, 1.0, f"no span matches {pattern!r}")
        if pct is None:
            slow = [d for d in durations if d > limit]
            ok, reason = not slow, f"{len(slow)} of {len(durations)} spans over {limit:g} ms"
        else:
            at = _percentile(durations, float(pct))
            ok, reason = at <= limit, f"p{pct:g} {at:.1f} ms (max {limit:g} ms)"
        return ScoreResult("trace_span_duration", ok, 1.0 if ok else 0.0, reason)

    return score


def is_error_span(span: Any) -> bool:
    """promptfoo's reading of a failed span: error status, an error-like attribute (`error`,
    `exception`, ...), an `http.status_code` of 400 or more."""
    if getattr(span, "status", "ok") == "error":
        return True
    attrs = getattr(span, "attributes", None) or {}
    for key in ("error", "exception", "failed", "failure"):
        v = attrs.get(key)
        if v is True or v == "true" or isinstance(v, dict | list):
            return True
    try:
        if attrs.get("http.status_code") is not None and float(attrs["http.status_code"]) >= 400:
            return True
    except (TypeError, ValueError):
        pass
    return attrs.get("otel.status_code") == "ERROR" or attrs.get("status.code") == "ERROR"


@scorer("trace_error_spans")
def trace_error_spans(value: Any = None) -> ScoreFn:
    """At most `max_count` (default 0) failed spans, or at most `max_percentage` percent of them,
    among spans matching `pattern` (promptfoo's `trace-error-spans`).

    Args:
        value: a number (max_count), or `{max_count, max_percentage, pattern}`."""
    max_count: float | None
    max_pct: float | None
    if isinstance(value, int | float) and not isinstance(value, bool):
        max_count, max_pct, pattern = value, None, "*"
    elif isinstance(value, dict):
        max_count, max_pct = value.get("max_count"), value.get("max_percentage")
        pattern = str(value.get("pattern") or "*")
    elif value is None:
        max_count, max_pct, pattern = None, None, "*"
    else:
        raise ValueError("trace_error_spans: value must be a number or {max_count, max_percentage, pattern}")
    if max_count is None and max_pct is None:
        max_count = 0

    def score(inp: ScoreInput) -> ScoreResult:
        if not inp.spans:
            return _no_trace("trace_error_spans")
        spans = _spans_named(inp.spans, pattern)
        if not spans:
            return ScoreResult("trace_error_spans", True, 1.0, f"no span matches {pattern!r}")
        failed = [s for s in spans if is_error_span(s)]
        share = 100 * len(failed) / len(spans)
        ok = not (max_count is not None and len(failed) > max_count) and not (
            max_pct is not None and share > max_pct
        )
        reason = f"{len(failed)} of {len(spans)} spans failed ({share:.1f}%)"
        return ScoreResult("trace_error_spans", ok, 1.0 if ok else 0.0, reason)

    return score


_TOOL_NAME_KEYS = (
    "tool.name", "tool_name", "tool", "function.name", "function_name", "ai.toolCall.name",
    "gen_ai.tool.name", "agent.tool_name", "agent.tool", "agent.toolName", "codex.mcp.tool",
)  # fmt: skip
_COMMAND_KEYS = ("codex.command", "command", "command.name", "command_name")
_SEARCH_KEYS = ("codex.search.query", "search.query", "search_query")
_SEARCH_NAME = re.compile(r"(^|[\s._:/-])(search|find|lookup|retriev(?:e|al))($|[\s._:/-])", re.IGNORECASE)
_SEARCH_KEY = re.compile(r"(^|[._])(search|lookup|retriev(?:e|al))($|[._])", re.IGNORECASE)
_COMMAND_TOOLS = {"exec_command", "local_shell", "shell"}


def _first_text(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        v = attrs.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return None


def _tool_name(span: Any, attrs: dict[str, Any]) -> str | None:
    direct = _first_text(attrs, _TOOL_NAME_KEYS)
    if direct:
        return direct
    for key, v in attrs.items():
        # promptfoo's guess at foreign traces; Shipyard's own attributes are known (its reading of
        # `shipyard.request.tool_choice` would make every model call a tool step)
        if not isinstance(v, str) or not v.strip() or key.startswith("shipyard."):
            continue
        text = v.strip()
        if text.startswith(("[", "{")):
            try:
                if isinstance(json.loads(text), dict | list):
                    continue
            except ValueError:
                pass
        if re.search(r"tool.?name|function.?name", key, re.IGNORECASE):
            return text
        if re.search(r"(^|[._])tool($|[._])", key, re.IGNORECASE) and not re.search(
            r"result|output|definition", key, re.IGNORECASE
        ):
            return text
    if span.name.startswith("mcp ") and 0 <= span.name.rfind("/") < len(span.name) - 1:
        return span.name[span.name.rfind("/") + 1 :].strip()
    return None


def _command(span: Any, attrs: dict[str, Any]) -> str | None:
    direct = _first_text(attrs, _COMMAND_KEYS)
    if direct:
        return direct
    for key, v in attrs.items():
        if (
            isinstance(v, str)
            and v.strip()
            and "command" in key.lower()
            and not re.search(r"output|result", key, re.I)
        ):
            return v.strip()
    return span.name[5:].strip() if span.name.startswith("exec ") else None


def _search(span: Any, attrs: dict[str, Any]) -> str | None:
    direct = _first_text(attrs, _SEARCH_KEYS)
    if direct:
        return direct
    query = _first_text(attrs, ("query",))
    like = (
        bool(_SEARCH_NAME.search(span.name))
        or span.name.startswith("search ")
        or any(k != "query" and _SEARCH_KEY.search(k) for k in attrs)
    )
    if query and like:
        return query
    return span.name[7:].strip().strip('"').strip() if span.name.startswith("search ") else None


_TOOL_ARG_KEYS = (
    "tool.args", "tool.arguments", "tool.input", "tool_args", "tool_arguments", "tool_input",
    "function.args", "function.arguments", "function.input", "function_args", "function_arguments",
    "ai.toolCall.args", "ai.toolCall.arguments", "ai.toolCall.input",
    "gen_ai.tool.args", "gen_ai.tool.arguments", "gen_ai.tool.input", "gen_ai.tool.call.args",
    "gen_ai.tool.call.arguments", "agent.tool.args", "agent.tool.arguments", "agent.tool.input",
    "codex.mcp.args", "codex.mcp.arguments", "codex.mcp.input", "args", "arguments", "input",
)  # fmt: skip
_NO_ARGS: Any = object()


def _structured(value: Any) -> Any:
    if value is None:
        return _NO_ARGS
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return _NO_ARGS
        try:
            return json.loads(text)
        except ValueError:
            return text
    return value


def _tool_args(attrs: dict[str, Any]) -> Any:
    """A tool span's arguments (`gen_ai.tool.call.arguments`, ..., JSON text parsed), or _NO_ARGS."""
    for key in _TOOL_ARG_KEYS:
        found = _structured(attrs.get(key))
        if found is not _NO_ARGS:
            return found
    for key, raw in attrs.items():
        if re.search(r"result|output|error|status", key, re.I):
            continue
        if re.search(r"(^|[._])(arguments|args|input)($|[._])", key, re.I):
            found = _structured(raw)
            if found is not _NO_ARGS:
                return found
    return _NO_ARGS


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the agent's trajectory, as promptfoo reads it from a trace."""

    kind: str  # tool | command | search | reasoning | message | span
    name: str  # the tool's name for a tool step, else the span's
    aliases: frozenset[str]  # every name the step answers to (the span's name too)
    args: Any = _NO_ARGS  # a tool step's arguments, when the trace has them


def trajectory_steps(spans: list[Any]) -> list[Step]:
    """The agent's steps from its trace as promptfoo reads a trace (`extractTrajectorySteps`), in start
    order. A span naming a tool (`gen_ai.tool.name`, ...) is a `tool` step, also known by the tool's
    name; a command, search, reasoning or message span is one of those; any other span is a `span`
    step. (Tool arguments turned into shell commands are not read.)"""
    steps: list[Step] = []
    for _, s in sorted(enumerate(spans), key=lambda p: (p[1].start_ns, p[1].end_ns, p[0])):
        attrs = getattr(s, "attributes", None) or {}
        aliases, name, args = {s.name}, s.name, _NO_ARGS
        tool, command = _tool_name(s, attrs), _command(s, attrs)
        if command and tool and tool.strip().lower() in _COMMAND_TOOLS:
            kind, name, args = "command", command, _tool_args(attrs)
            aliases |= {command, tool, command.split()[0]}
        elif tool:
            kind, name, args = "tool", tool, _tool_args(attrs)
            aliases.add(tool)
        elif command:
            kind, name = "command", command
            aliases |= {command, command.split()[0]} if command.split() else {command}
        elif (query := _search(s, attrs)) is not None:
            kind, name = "search", query
            aliases.add(query)
        elif attrs.get("codex.item.type") == "reasoning" or re.match(r"^reasoning([_\s]|$)", s.name, re.I):
            kind = "reasoning"
            aliases.add("reasoning")
        elif attrs.get("codex.item.type") == "agent_message" or s.name in ("agent response", "send input"):
            kind = "message"
            aliases.add("message")
        else:
            kind = "span"
        steps.append(Step(kind, name, frozenset(aliases), args))
    return steps


def _matcher(value: Any, default_kind: str | None, what: str) -> dict[str, Any]:
    """promptfoo's trajectory matcher: a text is a pattern; an object's `type` defaults as given."""
    m = {"pattern": value} if isinstance(value, str) else dict(value) if isinstance(value, dict) else None
    if m is None:
        raise ValueError(f"{what}: a step must be a tool name (pattern) or {{name, pattern, type}}")
    if not m.get("type") and default_kind:
        m["type"] = default_kind
    return m


def _matches(step: Step, m: dict[str, Any]) -> bool:
    kinds = m.get("type")
    if kinds and step.kind not in (kinds if isinstance(kinds, list) else [kinds]):
        return False
    pattern = m.get("pattern") or m.get("name")
    return not pattern or any(span_pattern(str(pattern)).match(a) for a in step.aliases)


def _label(m: dict[str, Any]) -> str:
    return str(m.get("pattern") or m.get("name") or "*")


def _steps_or_error(name: str, inp: ScoreInput) -> list[Step] | ScoreResult:
    return trajectory_steps(inp.spans) if inp.spans else _no_trace(name)


@scorer("trajectory_step_count")
def trajectory_step_count(value: Any, *, inverse: bool = False) -> ScoreFn:
    """Between `min` and `max` steps of the agent's trajectory, of the given `type` (`tool`, `span`,
    ...) and matching `name` / `pattern` (promptfoo's `trajectory:step-count`).

    Args:
        value: `{min, max, type, name, pattern}` (min or max required).
        inverse: pass when the count is outside the range."""
    if not isinstance(value, dict) or (value.get("min") is None and value.get("max") is None):
        raise ValueError("trajectory_step_count: value must be {min, max, type, pattern} with min or max")
    lo, hi = value.get("min"), value.get("max")
    m = _matcher(value, None, "trajectory_step_count")

    def score(inp: ScoreInput) -> ScoreResult:
        steps = _steps_or_error("trajectory_step_count", inp)
        if isinstance(steps, ScoreResult):
            return steps
        n = sum(1 for step in steps if _matches(step, m))
        ok = (lo is None or n >= lo) and (hi is None or n <= hi)
        return _verdict("trajectory_step_count", ok, inverse, f"{n} matching steps")

    return score


@scorer("trajectory_tool_used")
def trajectory_tool_used(value: Any, *, inverse: bool = False) -> ScoreFn:
    """The agent's trace shows these tools used: every one of a list (none of them, negated), or one
    tool between `min` (default 1) and `max` times (promptfoo's `trajectory:tool-used`; names are
    globs matched against the tool's name and its span's name).

    Args:
        value: a tool name, a list of them, or `{name | pattern, min, max}`.
        inverse: pass when none is used (or the count is outside the range)."""
    count: dict[str, Any] | None = None
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        names = [value] if isinstance(value, str) else value
        matchers = [_matcher(v, "tool", "trajectory_tool_used") for v in names]
        if not matchers:
            raise ValueError("trajectory_tool_used: needs at least one tool")
    elif isinstance(value, dict):
        if not (value.get("name") or value.get("pattern")):
            raise ValueError("trajectory_tool_used: {name | pattern, min, max} needs a name or pattern")
        matchers, count = [_matcher(value, "tool", "trajectory_tool_used")], value
    else:
        raise ValueError(
            "trajectory_tool_used: value must be a tool name, a list of them, or {name, min, max}"
        )

    def score(inp: ScoreInput) -> ScoreResult:
        steps = _steps_or_error("trajectory_tool_used", inp)
        if isinstance(steps, ScoreResult):
            return steps
        tools = [s for s in steps if s.kind == "tool"]
        if count is None:
            used = [m for m in matchers if any(_matches(s, m) for s in tools)]
            passed = not used if inverse else len(used) == len(matchers)
            reason = (
                f"used {', '.join(_label(m) for m in used) or 'none'} of {', '.join(map(_label, matchers))}"
            )
            return ScoreResult("trajectory_tool_used", passed, 1.0 if passed else 0.0, reason)
        n = sum(1 for s in tools if _matches(s, matchers[0]))
        lo, hi = count.get("min", 1), count.get("max")
        ok = n >= lo and (hi is None or n <= hi)
        return _verdict("trajectory_tool_used", ok, inverse, f"{_label(matchers[0])} used {n} time(s)")

    return score


@scorer("trajectory_tool_sequence")
def trajectory_tool_sequence(value: Any, *, inverse: bool = False) -> ScoreFn:
    """The agent's tool calls, from its trace, follow these steps: in order with others between
    (`in_order`, the default) or exactly (`exact`) (promptfoo's `trajectory:tool-sequence`).

    Args:
        value: a list of tool names (or `{name | pattern}`), or `{mode: in_order | exact, steps: [...]}`.
        inverse: pass when the sequence is not there."""
    raw: Any = value
    mode = "in_order"
    if isinstance(value, dict):
        raw, mode = value.get("steps") or [], value.get("mode") or "in_order"
    if not isinstance(raw, list) or not raw:
        raise ValueError("trajectory_tool_sequence: value must be a list of steps or {mode, steps}")
    matchers = [_matcher(v, "tool", "trajectory_tool_sequence") for v in raw]
    if not all(m.get("pattern") or m.get("name") for m in matchers):
        raise ValueError("trajectory_tool_sequence: every step needs a name or pattern")

    def score(inp: ScoreInput) -> ScoreResult:
        steps = _steps_or_error("trajectory_tool_sequence", inp)
        if isinstance(steps, ScoreResult):
            return steps
        tools = [s for s in steps if s.kind == "tool"]
        if mode == "exact":
            ok = len(tools) == len(matchers) and all(
                _matches(s, m) for s, m in zip(tools, matchers, strict=True)
            )
        else:
            at = 0
            for s in tools:
                if at < len(matchers) and _matches(s, matchers[at]):
                    at += 1
            ok = at == len(matchers)
        called = ", ".join(s.name for s in tools) or "(none)"
        return _verdict("trajectory_tool_sequence", ok, inverse, f"tools called: {called}")

    return score


def _strict_equal(a: Any, b: Any) -> bool:
    """JavaScript's deep strict equality on JSON values (true is not 1; 1 is 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_strict_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _partial(actual: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_partial(x, y) for x, y in zip(actual, expected, strict=True))
        )
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _partial(actual[k], v) for k, v in expected.items()
        )
    return _strict_equal(actual, expected)


@scorer("trajectory_tool_args_match")
def trajectory_tool_args_match(value: Any, *, inverse: bool = False) -> ScoreFn:
    """A call of the tool, from the agent's trace, had these arguments: the expected keys with equal
    values (`partial`, the default) or exactly them (`exact`), after dropping `ignore`d keys and
    arguments equal to their `defaults` (promptfoo's `trajectory:tool-args-match`). The arguments
    are the tool span's, else (content capture off) the agent's recorded call of that tool.

    Args:
        value: `{name | pattern, args | arguments, mode: partial | exact, defaults: {...}, ignore: [...]}`.
        inverse: pass when no call had them."""
    if not isinstance(value, dict) or not (value.get("name") or value.get("pattern")):
        raise ValueError("trajectory_tool_args_match: value must be {name | pattern, args, mode}")
    expected = value["args"] if "args" in value else value.get("arguments", _NO_ARGS)
    if expected is _NO_ARGS:
        raise ValueError("trajectory_tool_args_match: needs args (the expected arguments)")
    mode, defaults = value.get("mode") or "partial", value.get("defaults")
    ignore = value.get("ignore") or []
    ignore = [ignore] if isinstance(ignore, str) else list(ignore)
    if mode not in ("partial", "exact"):
        raise ValueError(f"trajectory_tool_args_match: mode must be partial or exact, got {mode!r}")
    if defaults is not None and not isinstance(defaults, dict):
        raise ValueError("trajectory_tool_args_match: defaults must map argument names to default values")
    m = _matcher(value, "tool", "trajectory_tool_args_match")

    def ignored(key: str) -> bool:
        return any(key == i or (re.search(r"[*?]", i) and span_pattern(i).match(key)) for i in ignore)

    def fits(actual: Any) -> bool:
        got = {k: v for k, v in actual.items() if not ignored(k)} if isinstance(actual, dict) else actual
        if isinstance(got, dict) and defaults:
            got = {k: v for k, v in got.items() if not (k in defaults and _strict_equal(v, defaults[k]))}
        want = (
            {k: v for k, v in expected.items() if not ignored(k)} if isinstance(expected, dict) else expected
        )
        return _strict_equal(got, want) if mode == "exact" else _partial(got, want)

    def score(inp: ScoreInput) -> ScoreResult:
        steps = _steps_or_error("trajectory_tool_args_match", inp)
        if isinstance(steps, ScoreResult):
            return steps
        recorded: dict[str, list[Any]] = {}
        for call in inp.tool_calls:
            recorded.setdefault(str(call.get("name")), []).append(call.get("arguments"))
        seen: dict[str, int] = {}
        found = False
        for s in (s for s in steps if s.kind == "tool"):
            n = seen[s.name] = seen.get(s.name, -1) + 1
            if not _matches(s, m):
                continue
            args = s.args
            if args is _NO_ARGS and n < len(recorded.get(s.name, [])):  # content capture off
                args = recorded[s.name][n]
            if args is not _NO_ARGS and fits(args):
                found = True
                break
        return _verdict(
            "trajectory_tool_args_match", found, inverse, f"a call of {_label(m)} with those arguments"
        )

    return score


# checks run elsewhere ----------------------------------------------------------------------------


def script_result(name: str, out: Any, threshold: float | None, inverse: bool) -> ScoreResult:
    """promptfoo's reading of a script's result (python, ruby): a boolean or "true"/"false"; a
    number (passes above 0, or at `threshold`); a `{pass, score, reason}` object (also as JSON text)."""
    if isinstance(out, str) and out.lower() in ("true", "false"):
        out = out.lower() == "true"
    elif isinstance(out, str) and out.startswith("{"):
        out = json.loads(out)
    if isinstance(out, bool):
        return _verdict(name, out, inverse, f"returned {str(out).lower()}")
    if isinstance(out, dict):
        if "pass" not in out and "pass_" in out:  # snake_case, as promptfoo maps it
            out = {**out, "pass": out["pass_"]}
        if (
            not isinstance(out.get("pass"), bool)
            or not isinstance(out.get("score"), int | float)
            or not isinstance(out.get("reason"), str)
        ):
            raise TypeError(f"{name} must return a boolean, a number or {{pass, score, reason}}; got {out!r}")
        passed = out["pass"] and not (threshold is not None and out["score"] < threshold)
        return ScoreResult(name, passed != inverse, float(out["score"]), str(out.get("reason", "")))
    try:
        number = float(out)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must return a boolean, a number or {{pass, score, reason}}; got {out!r}"
        ) from None
    raw = number > 0 if threshold is None else number >= threshold
    return ScoreResult(name, raw != inverse, number, f"returned {number:g}")


_RUBY_RUNNER = """
require 'json'
args = JSON.parse(STDIN.read)
result = main(*args)
STDOUT.write("\\n__SHIPYARD_RESULT__" + JSON.generate(result))
"""
NO_RUBY = "ruby needs a Ruby interpreter: install Ruby (`ruby` on PATH)"
RUBY_TIMEOUT_S = 30.0


def ruby_script(value: str, base_dir: str | None) -> str:
    """The Ruby program for a `ruby` value: inline code becomes the body of `main(output, context)`
    (one line: an expression to return), as promptfoo builds it; `file://x.rb[:method]` calls that
    method (default `get_assert`)."""
    m = re.match(r"^file://(?P<file>.+?\.rb)(?::(?P<fn>[A-Za-z_][\w.]*[?!]?))?$", value.strip())
    if m:
        path = Path(m.group("file"))
        if not path.is_absolute() and base_dir:
            path = Path(base_dir) / path
        if not path.is_file():
            raise OSError(f"no file {path}")
        owner, _, method = (m.group("fn") or "get_assert").rpartition(".")
        target = f"Object.const_get({json.dumps(owner)})" if owner else "self"
        return (
            f"require 'json'\nload {json.dumps(str(path.resolve()))}\n\n"
            f"def main(output, context)\n  {target}.send({json.dumps(method)}, output, context)\nend\n"
        )
    if "\n" in value:
        indent = re.search(r"^(?!\s*$)\s+", value, re.MULTILINE)
        pad = indent.group(0) if indent else "  "
        body = "\n".join(pad + line for line in value.split("\n"))
    else:
        body = f"  return {value}"
    return f"require 'json'\n\ndef main(output, context)\n{body}\nend\n"


async def run_ruby(program: str, args: list[Any]) -> Any:
    """Run a Ruby program defining `main` with the JSON args; its JSON result. RuntimeError when no
    interpreter is on PATH, ValueError when the code failed."""
    ruby = shutil.which("ruby")
    if ruby is None:
        raise RuntimeError(NO_RUBY)
    with tempfile.TemporaryDirectory(prefix="shipyard-ruby-") as tmp:
        script = Path(tmp) / "check.rb"
        script.write_text(program + _RUBY_RUNNER, encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            ruby,
            str(script),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(json.dumps(args).encode()), RUBY_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ValueError(f"the code did not finish within {RUBY_TIMEOUT_S:g} s") from None
    text = out.decode(errors="replace")
    if proc.returncode != 0 or "__SHIPYARD_RESULT__" not in text:
        lines = err.decode(errors="replace").strip().splitlines()
        raise ValueError(lines[0] if lines else f"ruby exited with {proc.returncode}")
    return json.loads(text.rsplit("__SHIPYARD_RESULT__", 1)[1])


@scorer("ruby")
def ruby(
    value: str,
    *,
    threshold: float | None = None,
    inverse: bool = False,
    base_dir: str | None = None,
    config: dict[str, Any] | None = None,
) -> ScoreFn:
    """Ruby code run as promptfoo runs it, with `output` and `context` (prompt, vars, test, config):
    a true result or a number above 0 (at `threshold` when given) passes; `{pass, score, reason}`
    is taken as it is. Needs `ruby` on PATH; without it the case is ERROR, saying so.

    Args:
        value: an expression, a method body (several lines), or `file://path.rb[:method]`.
        threshold: the least number that passes.
        inverse: pass when the check fails (promptfoo's `not-ruby`).
        base_dir: the folder relative `file://` paths start from.
        config: the assertion's `config`, given to the code as `context['config']`."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("ruby: value must be Ruby code or a file:// reference")

    async def score(inp: ScoreInput) -> ScoreResult:
        from shipyard.evals._scorers_promptfoo import pf_context

        try:
            program = ruby_script(value, base_dir)
        except OSError as e:
            return ScoreResult("ruby", None, reason="cannot read the code", error=f"ruby: {e}")
        try:
            out = await run_ruby(program, [inp.output, pf_context(inp, config)])
            return script_result("ruby", out, threshold, inverse)
        except RuntimeError as e:
            return ScoreResult("ruby", None, reason="no Ruby interpreter", error=str(e))
        except (ValueError, TypeError) as e:  # promptfoo: a failed check, negated or not
            return ScoreResult("ruby", False, 0.0, f"Ruby code execution failed: {e}")

    return score


WEBHOOK_TIMEOUT_S = 5.0


@scorer("webhook")
def webhook(value: str, *, inverse: bool = False, timeout_s: float = WEBHOOK_TIMEOUT_S) -> ScoreFn:
    """POST `{output, context: {prompt, vars}}` as JSON to a URL; its JSON answer `{pass, score,
    reason}` is the verdict (promptfoo's `webhook`). An error status, an unreachable URL or an
    answer that is not JSON fails the check, naming why.

    Args:
        value: the URL.
        inverse: pass when the answer says it failed (the score becomes 1 - score).
        timeout_s: how long to wait for the answer (promptfoo's WEBHOOK_TIMEOUT, 5 s)."""
    if not isinstance(value, str) or not re.match(r"^https?://", value):
        raise ValueError(f"webhook: value must be an http(s) URL, got {value!r}")

    async def score(inp: ScoreInput) -> ScoreResult:
        import httpx

        from shipyard.evals._scorers_promptfoo import pf_context

        ctx = pf_context(inp)
        body = {"output": inp.output, "context": {"prompt": ctx["prompt"], "vars": ctx["vars"]}}
        try:
            async with httpx.AsyncClient(timeout=timeout_s) as client:
                resp = await client.post(value, json=body)
            if resp.status_code >= 300:
                raise ValueError(f"webhook response status: {resp.status_code}")
            answer = resp.json()
            if not isinstance(answer, dict):
                raise ValueError(f"webhook answered {answer!r}, not {{pass, score, reason}}")
        except (httpx.HTTPError, ValueError) as e:
            return ScoreResult("webhook", False, 0.0, f"webhook error: {e or type(e).__name__}")
        # promptfoo's `pass !== inverse`: anything but the boolean `inverse` passes
        passed = not (isinstance(answer.get("pass"), bool) and answer["pass"] == inverse)
        given = answer.get("score")
        if isinstance(given, int | float) and not isinstance(given, bool):
            s = 1 - float(given) if inverse else float(given)
        else:
            s = 1.0 if passed else 0.0
        return ScoreResult(
            "webhook", passed, s, str(answer.get("reason") or ("passed" if passed else "failed"))
        )

    return score


# is-sql / contains-sql ---------------------------------------------------------------------------

_SQL_DIALECTS = {
    "mysql": "mysql", "mariadb": "mysql", "postgresql": "postgres", "bigquery": "bigquery",
    "sqlite": "sqlite", "transactsql": "tsql", "snowflake": "snowflake", "redshift": "redshift",
    "hive": "hive", "athena": "athena", "trino": "trino",
}  # fmt: skip
"""promptfoo's `databaseType` names (node-sql-parser's, any case) -> sqlglot's dialects."""
_IDENT = "[A-Za-z_][A-Za-z0-9_]*"
_STANDARD_MODIFIERS = "(?:all|distinct)"
_MYSQL_MODIFIERS = (
    "(?:all|distinct(?:row)?|high_priority|straight_join"
    "|sql_(?:big_result|buffer_result|cache|calc_found_rows|no_cache|small_result))"
)


def _missing_comma(modifiers: str) -> re.Pattern[str]:
    return re.compile(
        rf"\bselect\s+(?:{modifiers}\s+)*(?!{modifiers}\b){_IDENT}\s+{_IDENT}\s+from\b", re.IGNORECASE
    )


_MISSING_COMMA = {"standard": _missing_comma(_STANDARD_MODIFIERS), "mysql": _missing_comma(_MYSQL_MODIFIERS)}


def _strip_sql_text(sql: str, database: str) -> str:
    """The SQL without comments and quoted text (a quoted text becomes ` ? `), as promptfoo strips it
    before its missing-comma heuristic."""
    brackets = database in ("TransactSQL", "Sqlite")
    out, plain, i = [], 0, 0
    while i < len(sql):
        ch, end, repl = sql[i], None, " "
        if ch in "'\"`" or (ch == "[" and brackets):
            close, j = ("]" if ch == "[" else ch), i + 1
            while j < len(sql):
                if close != "]" and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == close:
                    if j + 1 < len(sql) and sql[j + 1] == close:
                        j += 2
                        continue
                    j += 1
                    break
                j += 1
            end, repl = min(j, len(sql)), " ? "
        elif sql.startswith("--", i) or ch == "#":
            end = i + 1
            while end < len(sql) and sql[end] not in "\r\n":
                end += 1
        elif sql.startswith("/*", i):
            close_at = sql.find("*/", i + 2)
            end = len(sql) if close_at == -1 else close_at + 2
        elif ch == "$":
            m = re.match(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if m:
                close_at = sql.find(m.group(0), i + len(m.group(0)))
                end, repl = (len(sql) if close_at == -1 else close_at + len(m.group(0))), " ? "
        if end is None:
            i += 1
            continue
        out += [sql[plain:i], repl]
        i = plain = end
    out.append(sql[plain:])
    return "".join(out)


_STATEMENTS: tuple[type, ...] = ()


def _statement_types() -> tuple[type, ...]:
    global _STATEMENTS
    if not _STATEMENTS:
        from sqlglot import exp

        names = ["Query", "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Use", "Set",
                 "Show", "Describe", "TruncateTable", "Transaction", "Commit", "Rollback", "Grant"]  # fmt: skip
        _STATEMENTS = tuple(getattr(exp, n) for n in names if hasattr(exp, n))
    return _STATEMENTS


def _authorities(statements: list[Any], kind: str) -> list[str]:
    """node-sql-parser's table or column list: `statement::db-or-table::name`."""
    from sqlglot import exp

    owners = (exp.Select, exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter)

    def owner(node: Any) -> str:
        found = node.find_ancestor(*owners)
        return type(found).__name__.lower() if found is not None else "select"

    out: list[str] = []
    for statement in statements:
        if kind == "table":
            out += [f"{owner(t)}::{t.db or 'null'}::{t.name}" for t in statement.find_all(exp.Table)]
        else:
            out += [f"{owner(c)}::{c.table or 'null'}::{c.name}" for c in statement.find_all(exp.Column)]
            # `SELECT *` (not the star of COUNT(*)) stands for every column
            stars = [s for s in statement.find_all(exp.Star) if isinstance(s.parent, exp.Select)]
            out += [f"{owner(s)}::null::(.*)" for s in stars]
    return list(dict.fromkeys(out))


def _allowed(found: list[str], allowed: list[str]) -> str | None:
    """The first authority no allowed pattern matches (node-sql-parser's whitelist check), or None."""
    patterns = [re.compile(f"^{a}$", re.IGNORECASE) for a in allowed]
    return next((f for f in found if not any(p.match(f) for p in patterns)), None)


def sql_problems(
    sql: str, database: str, tables: list[str] | None = None, columns: list[str] | None = None
) -> list[str]:
    """Why a text is not SQL of `database` as promptfoo's `is-sql` judges it (promptfoo's heuristics,
    then a parse; here by sqlglot where promptfoo uses node-sql-parser), and which tables or columns
    it uses that the allowed lists (node-sql-parser's `statement::db::table` patterns) do not."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, SqlglotError

    bad = f"SQL statement does not conform to the provided {database} database syntax."
    problems: list[str] = []
    text = sql.strip()
    if not text or text.count("`") % 2:
        problems.append(bad)
    family = "mysql" if database in ("MySQL", "MariaDB") else "standard"
    if _MISSING_COMMA[family].search(_strip_sql_text(text, database)):
        problems.append(bad)
    if database == "MySQL" and re.search(r"\bgenerate_series\s*\(", text, re.IGNORECASE):
        problems.append(bad)
    try:
        parsed = [
            s
            for s in sqlglot.parse(sql, read=_SQL_DIALECTS[database.lower()], error_level=ErrorLevel.RAISE)
            if s
        ]
    except SqlglotError:
        parsed = []
    from sqlglot import exp

    valid = bool(parsed) and all(
        isinstance(s, _statement_types()) and not (isinstance(s, exp.Select) and not s.expressions)
        for s in parsed
    )
    # what sqlglot forgives and node-sql-parser does not: a comma before FROM; brackets in MySQL
    if re.search(r",\s*from\b", _strip_sql_text(text, database), re.IGNORECASE):
        valid = False
    if family == "mysql" and any(next(s.find_all(exp.Array, exp.Bracket), None) for s in parsed):
        valid = False
    if not valid:
        problems.append(bad)
        return problems
    if tables:
        denied = _allowed(_authorities(parsed, "table"), tables)
        if denied:
            problems.append(f"SQL references unauthorized table {denied}. Allowed: [{', '.join(tables)}].")
    if columns:
        widened = list(columns)
        for item in columns:  # `a::table::c` also allows `a::null::c`, as promptfoo widens it
            parts = item.split("::")
            if len(parts) == 3 and parts[1] != "null" and f"{parts[0]}::null::{parts[2]}" not in widened:
                widened.append(f"{parts[0]}::null::{parts[2]}")
        denied = _allowed(_authorities(parsed, "column"), widened)
        if denied:
            problems.append(f"SQL references unauthorized column {denied}. Allowed: [{', '.join(columns)}].")
    return problems


def _sql_options(value: Any, name: str) -> tuple[str, list[str] | None, list[str] | None]:
    if value is None:
        return "MySQL", None, None
    if not isinstance(value, dict):
        raise ValueError(f"{name}: value must be {{databaseType, allowedTables, allowedColumns}}")
    database = str(value.get("databaseType") or "MySQL")
    if database.lower() not in _SQL_DIALECTS:
        known = "MySQL, MariaDB, PostgreSQL, BigQuery, Sqlite, TransactSQL, Snowflake, Redshift, Hive, Athena, Trino"
        raise ValueError(f"{name}: databaseType {database!r} is not one Shipyard checks ({known})")
    tables, columns = value.get("allowedTables"), value.get("allowedColumns")
    for label, items in (("allowedTables", tables), ("allowedColumns", columns)):
        if items is not None and not (isinstance(items, list) and all(isinstance(i, str) for i in items)):
            raise ValueError(f"{name}: {label} must be a list of `statement::db::name` patterns")
    return database, tables, columns


@scorer("is_sql")
def is_sql(value: Any = None, *, inverse: bool = False) -> ScoreFn:
    """The whole output is SQL of the given database, using only allowed tables and columns
    (promptfoo's `is-sql`: its heuristics, then a parse by sqlglot in that dialect).

    Args:
        value: `{databaseType (default MySQL), allowedTables, allowedColumns}`; the allowed lists hold
            node-sql-parser's `statement::db::table` / `statement::table::column` patterns
            (`select::null::users`).
        inverse: pass when it is not."""
    database, tables, columns = _sql_options(value, "is_sql")

    def score(inp: ScoreInput) -> ScoreResult:
        problems = sql_problems(inp.output, database, tables, columns)
        return _verdict("is_sql", not problems, inverse, " ".join(problems) or f"valid {database} SQL")

    return score


def sql_blocks(text: str) -> list[str]:
    """The bodies of fenced code blocks marked `sql` or unmarked, as promptfoo's `contains-sql` finds them."""
    blocks: list[str] = []
    active: tuple[str, int, bool, list[str]] | None = None
    for line in re.split(r"\r\n?|\n", text):
        if active is None:
            m = re.match(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([^\r\n]*)$", line)
            if m:
                active = (m.group(1)[0], len(m.group(1)), m.group(2).strip().lower() in ("", "sql"), [])
            continue
        close = re.match(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*$", line)
        if close and close.group(1)[0] == active[0] and len(close.group(1)) >= active[1]:
            if active[2]:
                blocks.append("\n".join(active[3]).strip())
            active = None
        else:
            active[3].append(line)
    return blocks


@scorer("contains_sql")
def contains_sql(value: Any = None, *, inverse: bool = False) -> ScoreFn:
    """The output holds valid SQL: a fenced `sql` (or unmarked) code block that is, else the whole
    output (promptfoo's `contains-sql`; the same options as `is_sql`).

    Args:
        value: `{databaseType, allowedTables, allowedColumns}`, as for is_sql.
        inverse: pass when it holds none."""
    database, tables, columns = _sql_options(value, "contains_sql")

    def score(inp: ScoreInput) -> ScoreResult:
        candidates = [c for c in (sql_blocks(inp.output) or [inp.output]) if c.strip()]
        ok = any(not sql_problems(c, database, tables, columns) for c in candidates)
        return _verdict("contains_sql", ok, inverse, "valid SQL found" if ok else "no valid SQL")

    return score
