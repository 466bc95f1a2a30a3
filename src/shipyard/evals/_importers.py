"""Importers: promptfoo configs, Google ADK eval sets and OpenAI-evals JSONL become our suites.

Each suite file format is a `SuiteImporter` registered in `IMPORTERS` under the name `import_file`
takes (Shipyard's own `shipyard`, `promptfoo`, `adk`, `jsonl`, and any plugin's): a format claims
files by suffix (read raw) or by content (parsed YAML/JSON, `detect`). `import_file(kind, path)`
converts a file; `dump_suite(suite, path)` writes our YAML. Problems name the file, the test (index
or id), the field and, where the source has lines, the line."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shipyard.config import Lines
from shipyard.evals._scorers_promptfoo import js_text
from shipyard.evals._suite import Suite, SuiteError, parse_suite, read_yaml
from shipyard.plugins import Registry


@dataclass(frozen=True, slots=True)
class SuiteImporter:
    """A suite file format that Shipyard converts into its own suites.

    Attributes:
        load: `load(path, data, lines, **options) -> Suite`. For a format read by content, `data` and
            `lines` are the parsed YAML/JSON and its line map; for one read by suffix they are None
            and `load` reads `path` itself. `options` come from the caller (`name`, `input_var`, ...);
            take `**options` and ignore the ones that do not apply. Raise `SuiteError` naming the
            file, case, field and line of every problem.
        detect: `detect(path, data) -> bool`: whether a parsed YAML/JSON file is in this format
            (None: only by suffix, or when named). Exactly one format may claim a file; a file no
            format claims is read as Shipyard's own.
        suffixes: file suffixes of this format (`.jsonl`), read raw instead of parsed as YAML first.
    """

    load: Callable[..., Suite]
    detect: Callable[[Path, Any], bool] | None = None
    suffixes: tuple[str, ...] = ()


IMPORTERS: Registry[SuiteImporter] = Registry("suite format")
"""Suite file formats by name (`shipyard eval import KIND`); `shipyard.evals` registers its own."""

OURS = "shipyard"

INPUT_VARS = ("input", "query", "question", "prompt", "user_input", "message")


class _Problems:
    """Collects problems with their line, then raises one SuiteError."""

    def __init__(self, path: Path, lines: Lines) -> None:
        self.path = path
        self.lines = lines
        self.items: list[str] = []

    def add(self, loc: tuple[str | int, ...], label: str, message: str) -> None:
        line = None
        for n in range(len(loc), -1, -1):
            line = self.lines.get(loc[:n])
            if line:
                break
        self.items.append(f"{f'line {line}: ' if line else ''}{label}: {message}")

    def raise_if_any(self, hint: str | None = None) -> None:
        if self.items:
            raise SuiteError(str(self.path), list(dict.fromkeys(self.items)), hint=hint)


def _slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].rstrip("-")


def _unique(ids: list[str]) -> list[str]:
    """Make ids unique by suffixing -2, -3 to repeats (stable for a given file)."""
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        n = seen.get(i, 0) + 1
        seen[i] = n
        out.append(i if n == 1 else f"{i}-{n}")
    return out


def _finish(cases: list[dict[str, Any]], name: str, description: str, path: Path, kind: str) -> Suite:
    """Build the suite; ids the importer made up (marked `_made_id`) get -2, -3 suffixes when they
    collide, while ids the file gave must be unique already."""
    made = [c for c in cases if c.pop("_made_id", False)]
    given = {c["id"] for c in cases if c not in made}
    for c, cid in zip(made, _unique([c["id"] for c in made]), strict=True):
        c["id"] = cid if cid not in given else f"{cid}-x"
    if not cases:
        raise SuiteError(str(path), [f"no test cases found in this {kind} file"])
    suite = parse_suite({"name": name, "description": description, "cases": cases}, path)
    suite._source = kind
    return suite


# promptfoo --------------------------------------------------------------------------------------

_TEMPLATE = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def _render(value: Any, variables: dict[str, Any]) -> Any:
    """Fill promptfoo's `{{var}}` placeholders in strings (nested values too)."""
    if isinstance(value, str):
        return _TEMPLATE.sub(lambda m: str(variables.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [_render(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, variables) for k, v in value.items()}
    return value


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and "name" in value:
        return [str(value["name"])]
    if isinstance(value, list) and value and all(isinstance(v, str | dict) for v in value):
        return [v if isinstance(v, str) else str(v.get("name")) for v in value]
    raise ValueError(f"expected a tool name or a list of tool names, got {value!r}")


def _pf_tool_used(value: Any, negate: bool, a: dict[str, Any]) -> dict[str, Any]:
    if negate:  # "none of these was used", not "not all of these were used"
        return {"type": "must_not_call", "value": _names(value)}
    return {"type": "trajectory", "value": {"mode": "superset", "calls": _names(value)}}


def _pf_tool_sequence(value: Any, negate: bool, a: dict[str, Any]) -> dict[str, Any]:
    steps, mode = value, "in_order"
    if isinstance(value, dict):
        steps = value.get("steps") or value.get("tools") or value.get("sequence")
        mode = "exact" if value.get("exact") or value.get("mode") == "exact" else "in_order"
    return {"type": "trajectory", "value": {"mode": mode, "calls": _names(steps)}}


def _pf_tool_args(value: Any, negate: bool, a: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value, dict) or "name" not in value:
        raise ValueError("value must be {name: TOOL, args: {...}, mode: partial|exact}")
    args = value.get("args", value.get("arguments", {}))
    match = value.get("mode", "partial")
    if match not in ("partial", "exact"):
        raise ValueError(f"mode must be partial or exact, got {match!r}")
    call = {"name": value["name"], "args": args, "args_match": match}
    return {"type": "trajectory", "value": {"mode": "superset", "calls": [call]}}


def _pf_max(ours: str, option: str) -> Callable[[Any, bool, dict[str, Any]], dict[str, Any]]:
    def convert(value: Any, negate: bool, a: dict[str, Any]) -> dict[str, Any]:
        limit = a.get("threshold", value)
        if not isinstance(limit, int | float) or isinstance(limit, bool):
            raise ValueError(f"needs threshold: a number (the {option.split('_')[1]} limit)")
        a.pop("threshold", None)
        return {"type": ours, option: limit}

    return convert


def _pf_same(ours: str, **options: Any) -> Callable[[Any, bool, dict[str, Any]], dict[str, Any]]:
    def convert(value: Any, negate: bool, a: dict[str, Any]) -> dict[str, Any]:
        return {"type": ours, **({"value": value} if value is not None else {}), **options}

    return convert


def _pf_inverse(ours: str, **options: Any) -> Callable[[Any, bool, dict[str, Any]], dict[str, Any]]:
    """A scorer with promptfoo's semantics that negates itself (`inverse`), keeping promptfoo's scores."""

    def convert(value: Any, negate: bool, a: dict[str, Any]) -> dict[str, Any]:
        out = {"type": ours, **({"value": value} if value is not None else {}), **options}
        return {**out, "inverse": True} if negate else out

    return convert


def split_csv(value: str) -> list[str]:
    """promptfoo's comma-separated values for contains-any / -all: fields trimmed, a quoted field
    (`"a, b"`, `""` for a quote) may hold commas."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        if i >= n:
            break
        if value[i] == '"':
            i += 1
            field = ""
            while True:
                if i >= n:
                    raise ValueError("unterminated quoted field in the comma-separated value")
                if value[i] == '"':
                    if i + 1 < n and value[i + 1] == '"':
                        field, i = field + '"', i + 2
                        continue
                    i += 1
                    break
                field, i = field + value[i], i + 1
            while i < n and value[i].isspace():
                i += 1
            if i < n and value[i] != ",":
                raise ValueError("expected a comma after a quoted field")
            out.append(field)
        else:
            j = value.find(",", i)
            j = n if j == -1 else j
            out.append(value[i:j].strip())
            i = j
    return out


def _pf_contains(ours: str, mode: str) -> Callable[[Any, bool, dict[str, Any]], dict[str, Any]]:
    def convert(value: Any, negate: bool, a: dict[str, Any]) -> dict[str, Any]:
        items = split_csv(value) if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise ValueError("needs a list of texts or a comma-separated text")
        return {"type": ours, "value": [js_text(v) for v in items], "mode": mode, "partial": False}

    return convert


def _pf_text(ours: str, **options: Any) -> Callable[[Any, bool, dict[str, Any]], dict[str, Any]]:
    def convert(value: Any, negate: bool, a: dict[str, Any]) -> dict[str, Any]:
        return {"type": ours, "value": js_text(value), **options}

    return convert


def _pf_equals(value: Any, negate: bool, a: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict | list):
        return {"type": "equals_json", "value": value, **({"inverse": True} if negate else {})}
    return {"type": "exact", "value": js_text(value), "strip": False}


PROMPTFOO_TYPES: dict[str, Callable[[Any, bool, dict[str, Any]], dict[str, Any]]] = {
    "equals": _pf_equals,
    "contains": _pf_text("contains"),
    "icontains": _pf_text("icontains"),
    "contains-any": _pf_contains("contains", "any"),
    "contains-all": _pf_contains("contains", "all"),
    "icontains-any": _pf_contains("icontains", "any"),
    "icontains-all": _pf_contains("icontains", "all"),
    "regex": _pf_same("regex"),
    "starts-with": _pf_same("starts_with", strip=False),
    "is-json": _pf_same("is_json", fenced=False, formats=True),
    "contains-json": _pf_same("contains_json", formats=True),
    "python": _pf_same("python", promptfoo=True),
    "javascript": _pf_inverse("javascript"),
    "levenshtein": _pf_inverse("levenshtein"),
    "rouge-n": _pf_inverse("rouge_n"),
    "is-valid-openai-tools-call": _pf_same("openai_tools_call"),
    "bleu": _pf_inverse("bleu"),
    "gleu": _pf_inverse("gleu"),
    "word-count": _pf_inverse("word_count"),
    "is-xml": _pf_inverse("is_xml"),
    "contains-html": _pf_inverse("contains_html"),
    "contains-xml": _pf_inverse("contains_xml"),
    "is-valid-function-call": _pf_same("openai_tools_call"),
    "is-valid-openai-function-call": _pf_same("openai_tools_call"),
    "llm-rubric": _pf_same("llm_judge"),
    "similar": _pf_same("similar"),
    "latency": _pf_max("latency", "max_ms"),
    "cost": _pf_max("cost", "max_usd"),
    "tool-used": _pf_tool_used,
    "tool-sequence": _pf_tool_sequence,
    "tool-args-match": _pf_tool_args,
    "is-html": _pf_inverse("is_html"),
    "is-refusal": _pf_inverse("is_refusal"),
    "tool-call-f1": _pf_inverse("tool_call_f1"),
    "finish-reason": _pf_inverse("finish_reason"),
    "ruby": _pf_inverse("ruby"),
    "webhook": _pf_inverse("webhook"),
    "trajectory:step-count": _pf_inverse("trajectory_step_count"),
    "trajectory:tool-used": _pf_inverse("trajectory_tool_used"),
    "trajectory:tool-sequence": _pf_inverse("trajectory_tool_sequence"),
    "trajectory:tool-args-match": _pf_inverse("trajectory_tool_args_match"),
    "trace-span-count": _pf_same("trace_span_count"),
    "trace-span-duration": _pf_same("trace_span_duration"),
    "trace-error-spans": _pf_same("trace_error_spans"),
    "meteor": _pf_inverse("meteor"),
    "perplexity": _pf_inverse("perplexity"),
    "perplexity-score": _pf_inverse("perplexity_score"),
    "is-sql": _pf_inverse("is_sql"),
    "contains-sql": _pf_inverse("contains_sql"),
}
_PF_NOT_RUN = {
    "skill-used": "it reads the skill calls of coding-agent providers (Claude Agent SDK); Shipyard agents make tool calls, checked by tool-call-f1 and trajectory:tool-used",
    "trajectory:goal-success": "it asks a judge model about the trace; use llm-rubric",
}
"""promptfoo types Shipyard does not run, and why (their cases are ERROR, saying so)."""
_PF_TRACE = {"trace-span-count", "trace-span-duration", "trace-error-spans"}
_PF_ASSERT_KEYS = {"type", "value", "threshold", "weight", "provider", "metric", "config", "transform"}
_PF_TYPE_KEYS = {"assert-set": {"assert"}, "meteor": {"alpha", "beta", "gamma"}}
"""Keys only some promptfoo types take."""
_PF_SELF_NEGATING = {
    "must_not_call",
    "javascript",
    "levenshtein",
    "rouge_n",
    "equals_json",
    "bleu",
    "gleu",
    "word_count",
    "is_xml",
    "contains_html",
    "contains_xml",
    "is_html",
    "is_refusal",
    "tool_call_f1",
    "finish_reason",
    "ruby",
    "webhook",
    "trajectory_step_count",
    "trajectory_tool_used",
    "trajectory_tool_sequence",
    "trajectory_tool_args_match",
    "is_sql",
    "contains_sql",
    "perplexity",
    "perplexity_score",
    "meteor",
}


@dataclass(frozen=True, slots=True)
class _PfContext:
    """What converting one promptfoo assertion needs from the rest of the config."""

    variables: dict[str, Any]
    base_dir: Path
    judge_model: str
    tools: list[Any] | None


def _unsupported(what: str) -> dict[str, Any]:
    return {"type": "unsupported", "value": what}


def _pf_file_value(value: Any, base_dir: Path) -> Any:
    """A `file://` schema or value read as promptfoo reads it (JSON or YAML); other values as given."""
    if not (isinstance(value, str) and value.startswith("file://")) or value.endswith(
        (".py", ".js", ".cjs", ".mjs", ".rb")
    ):
        return value
    ref = Path(value.removeprefix("file://"))
    ref = ref if ref.is_absolute() else base_dir / ref
    try:
        return yaml.safe_load(ref.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read {ref}: {e.strerror}") from None
    except yaml.YAMLError:
        raise ValueError(f"{ref} is neither JSON nor YAML") from None


def _pf_assertion(a: Any, ctx: _PfContext) -> dict[str, Any]:
    """One promptfoo assertion as ours (ValueError with the field at fault in the message). What
    Shipyard cannot run becomes an `unsupported` assertion (that case is ERROR), not a refused file."""
    if not isinstance(a, dict):
        raise ValueError(f"(assertion): must be a mapping with type, got {a!r}")
    raw = a.get("type")
    if not isinstance(raw, str):
        raise ValueError("type: required, a promptfoo assertion type")
    unknown = sorted(set(a) - _PF_ASSERT_KEYS - _PF_TYPE_KEYS.get(raw.removeprefix("not-"), set()))
    if unknown:
        return _unsupported(f"promptfoo assertion key {unknown[0]!r} (on {raw!r})")
    if raw == "unsupported-promptfoo-column":
        return _unsupported(
            f"promptfoo {a.get('value')!r}: a fixed reply stands for the provider's, and Shipyard "
            "scores the agent's own replies (record the reply as the case's expected output instead)"
        )
    negate = raw.startswith("not-")
    base = raw[4:] if negate else raw
    if base in _PF_NOT_RUN:
        return _unsupported(f"promptfoo assertion type {raw!r}: {_PF_NOT_RUN[base]}")
    if negate and base in _PF_TRACE:  # promptfoo ignores the not- of these: say so rather than guess
        return _unsupported(f"promptfoo assertion type {raw!r} (promptfoo does not negate {base})")
    if base not in PROMPTFOO_TYPES:  # `tool-used`, ...: Shipyard's older names for the trajectory checks
        base = base.removeprefix("trajectory:")
    a = dict(a)
    if base == "assert-set":
        children = a.get("assert")
        if negate or not isinstance(children, list) or not children:
            return _unsupported(
                "promptfoo assert-set " + ("negated" if negate else "without a list of assert")
            )
        ours: dict[str, Any] = {"type": "assert_set", "value": [_pf_assertion(c, ctx) for c in children]}
    else:
        convert = PROMPTFOO_TYPES.get(base)
        if convert is None:
            return _unsupported(f"promptfoo assertion type {raw!r}")
        value = _pf_file_value(_render(a.get("value"), ctx.variables), ctx.base_dir)
        try:
            ours = convert(value, negate, a)
        except ValueError as e:
            raise ValueError(f"value: {e}") from None
        if negate and ours["type"] not in _PF_SELF_NEGATING:
            ours["type"] = "not-" + ours["type"]
    if a.get("threshold") is not None:
        ours["threshold"] = a["threshold"]
    if base == "meteor":
        ours.update({k: a[k] for k in ("alpha", "beta", "gamma") if a.get(k) is not None})
    if base in ("python", "javascript", "ruby"):
        ours["base_dir"] = str(ctx.base_dir)
        if isinstance(a.get("config"), dict):
            ours["config"] = a["config"]
    if base.startswith("is-valid-") and ctx.tools:
        ours["tools"] = ctx.tools
    if base == "llm-rubric":
        provider = a.get("provider")
        ours["model"] = provider if isinstance(provider, str) and ":" not in provider else ctx.judge_model
    if a.get("transform") is not None:
        ours = _pf_transformed(ours, a["transform"], ctx.base_dir)
    if "weight" in a:
        ours["weight"] = a["weight"]
    return ours


def _pf_transformed(ours: dict[str, Any], transform: Any, base_dir: Path) -> dict[str, Any]:
    """Check `ours` on the output after a promptfoo transform: inline JavaScript, or a
    `file://` JavaScript or Python module (`file://x.py[:function]`, default `get_transform`)."""
    if not isinstance(transform, str) or (
        transform.strip().startswith("file://")
        and not re.search(r"\.(js|cjs|mjs|py)(:[\w$]+)?$", transform.strip())
    ):
        return _unsupported(f"promptfoo transform {transform!r} (JavaScript and Python transforms run)")
    weight = ours.pop("weight", None)
    out = {"type": "transformed", "value": ours, "transform": transform, "base_dir": str(base_dir)}
    return {**out, "weight": weight} if weight is not None else out


def _pf_tools(data: dict[str, Any]) -> list[Any] | None:
    """The tools the config's providers declare (`providers[].config.tools`, or the older
    `config.functions` as function tools), for the tools-call and function-call checks."""
    for p in data.get("providers") or []:
        config = p.get("config") if isinstance(p, dict) else None
        if not isinstance(config, dict):
            continue
        if isinstance(config.get("tools"), list):
            return list(config["tools"])
        if isinstance(config.get("functions"), list):
            return [{"type": "function", "function": f} for f in config["functions"]]
    return None


def _pf_expand(variables: dict[str, Any]) -> list[dict[str, Any]]:
    """promptfoo's expansion of list-valued vars: every combination, the first var varying slowest."""
    combos: list[dict[str, Any]] = [{}]
    for k, v in variables.items():
        options = v if isinstance(v, list) and v else [v]
        combos = [{**c, k: o} for c in combos for o in options]
    return combos


def _pf_prompt(data: dict[str, Any], variables: dict[str, Any]) -> str | None:
    """The config's first prompt rendered with the vars (promptfoo's `context.prompt`), when it is text."""
    prompts = data.get("prompts")
    first = prompts[0] if isinstance(prompts, list) and prompts else prompts
    if isinstance(first, dict):
        first = first.get("raw")
    if isinstance(first, str) and not first.startswith("file://"):
        return str(_render(first, variables))
    return None


PROMPTFOO_TYPE_NAMES = [
    "agent-rubric",
    "answer-relevance",
    "bleu",
    "classifier",
    "contains",
    "contains-all",
    "contains-any",
    "contains-html",
    "contains-json",
    "contains-sql",
    "contains-xml",
    "context-faithfulness",
    "context-recall",
    "context-relevance",
    "conversation-relevance",
    "cost",
    "equals",
    "factuality",
    "finish-reason",
    "g-eval",
    "gleu",
    "guardrails",
    "icontains",
    "icontains-all",
    "icontains-any",
    "is-html",
    "is-json",
    "is-refusal",
    "is-sql",
    "is-valid-function-call",
    "is-valid-openai-function-call",
    "is-valid-openai-tools-call",
    "is-xml",
    "javascript",
    "latency",
    "levenshtein",
    "llm-rubric",
    "pi",
    "meteor",
    "model-graded-closedqa",
    "model-graded-factuality",
    "moderation",
    "perplexity",
    "perplexity-score",
    "python",
    "regex",
    "rouge-n",
    "ruby",
    "similar",
    "similar:cosine",
    "similar:dot",
    "similar:euclidean",
    "starts-with",
    "tool-call-f1",
    "skill-used",
    "trajectory:goal-success",
    "trajectory:tool-args-match",
    "trajectory:step-count",
    "trajectory:tool-sequence",
    "trajectory:tool-used",
    "trace-error-spans",
    "trace-span-count",
    "trace-span-duration",
    "search-rubric",
    "webhook",
    "word-count",
]
"""promptfoo's assertion type names (its `BaseAssertionTypesSchema`), for `__expected` CSV cells."""
_PF_CELL = re.compile(
    rf"^(not-)?({'|'.join(re.escape(t) for t in PROMPTFOO_TYPE_NAMES)})(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$"
)
_PF_CELL_THRESHOLD = {
    "answer-relevance", "classifier", "context-faithfulness", "context-recall", "context-relevance", "cost",
    "latency", "levenshtein", "perplexity-score", "perplexity", "rouge-n", "similar", "starts-with",
}  # fmt: skip


def pf_assertion_from_text(text: str) -> dict[str, Any]:
    """A promptfoo assertion written as a CSV `__expected` cell (`contains: x`, `not-regex: ...`,
    `javascript: ...`, `rouge-n(0.6): ...`; anything else is `equals`), read as promptfoo reads it."""
    for prefix, kind in (("javascript:", "javascript"), ("fn:", "javascript"), ("eval:", "javascript")):
        if text.startswith(prefix):
            return {"type": kind, "value": text[len(prefix) :].strip()}
    if text.startswith("file://") and re.search(r"\.(js|cjs|mjs|ts)(:[\w$]+)?$", text):
        return {"type": "javascript", "value": text.strip()}
    for prefix in ("grade:", "llm-rubric:"):
        if text.startswith(prefix):
            return {"type": "llm-rubric", "value": text[len(prefix) :]}
    if text.startswith("python:") or (
        text.startswith("file://") and (text.endswith(".py") or ".py:" in text)
    ):
        return {"type": "python", "value": text[7:].strip() if text.startswith("python:") else text.strip()}
    m = _PF_CELL.match(text)
    if m is None:
        return {"type": "equals", "value": text}
    negate, kind, threshold, value = m.groups()
    out: dict[str, Any] = {"type": f"not-{kind}" if negate else kind}
    if kind in ("contains-all", "contains-any", "icontains-all", "icontains-any"):
        out["value"] = split_csv(value) if value else value
    elif kind in ("contains-json", "is-json"):
        out["value"] = value
    else:
        out["value"] = value.strip() if value is not None else None
    if kind in _PF_CELL_THRESHOLD:
        out["threshold"] = float(threshold) if threshold else (0.8 if kind == "similar" else 0.75)
    if out["value"] is None:
        del out["value"]
    return out


def _pf_csv_tests(path: Path) -> list[dict[str, Any]]:
    """promptfoo's CSV tests: one test per row; columns are vars, except `__expected[N]` (assertions),
    `__description`, `__threshold`, `__metadata:KEY` and `__config:__expected[N]:threshold`. The
    `__prefix` / `__suffix` (the test's `options.prefix` / `options.suffix`). A `__providerOutput`
    cell (a fixed reply standing for the provider's) makes that test's case ERROR: Shipyard tests
    the agent's own replies."""
    import csv

    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise SuiteError(str(path), [f"cannot read the CSV tests: {e.strerror}"]) from None
    tests = []
    for row in rows:
        test: dict[str, Any] = {"vars": {}, "assert": []}
        thresholds: dict[int, float] = {}
        for raw_key, cell in row.items():
            key, value = (raw_key or "").strip(), cell or ""
            if key.startswith("__expected"):
                if value.strip():
                    test["assert"].append(pf_assertion_from_text(value.strip()))
            elif key == "__description":
                test["description"] = value
            elif key == "__threshold":
                if value.strip():
                    test["threshold"] = float(value)
            elif key.startswith("__metadata:"):
                if value.strip() and key.endswith("[]"):  # a list: comma-separated, `\,` a comma
                    items = [v.strip().replace("\\,", ",") for v in re.split(r"(?<!\\),", value)]
                    test.setdefault("metadata", {})[key[11:-2]] = items
                elif value.strip():
                    test.setdefault("metadata", {})[key[11:]] = value
            elif key in ("__prefix", "__suffix"):
                test.setdefault("options", {})[key[2:]] = value
            elif key.startswith("__config:"):
                m = re.match(r"^__config:__expected(\d*):threshold$", key)
                try:
                    number = float(value)
                except ValueError:
                    number = None
                if m is None or number is None:  # promptfoo refuses the file too
                    raise SuiteError(
                        str(path),
                        [
                            f"column {key!r}: needs __config:__expected[N]:threshold and a number in every row, got {value!r}"
                        ],
                    )
                thresholds[int(m.group(1) or 1) - 1] = number
            elif key == "__providerOutput":  # a fixed reply instead of the agent's: not a test of it
                if value:
                    test["assert"].append({"type": "unsupported-promptfoo-column", "value": key})
            elif key not in ("__metric", "__metadata"):
                test["vars"][key] = value
        for n, t in thresholds.items():
            if n < len(test["assert"]):
                test["assert"][n]["threshold"] = t
        tests.append(test)
    return tests


def _pf_tests(data: dict[str, Any], path: Path, problems: _Problems) -> list[Any]:
    tests = data.get("tests", [])
    refs = [tests] if isinstance(tests, str) else tests
    if not isinstance(refs, list):
        problems.add(("tests",), "tests", "must be a list of tests or a file:// reference")
        return []
    out: list[Any] = []
    for i, t in enumerate(refs):
        if isinstance(t, str) and t.startswith("file://"):
            ref = Path(t.removeprefix("file://"))
            ref = ref if ref.is_absolute() else path.parent / ref
            if ref.suffix == ".csv":
                out.extend(_pf_csv_tests(ref))
                continue
            if ref.suffix not in (".yaml", ".yml", ".json"):
                problems.add(
                    ("tests", i), f"tests[{i}]", f"{t!r}: only CSV, YAML or JSON test files can be read"
                )
                continue
            loaded, _ = read_yaml(ref)
            out.extend(loaded if isinstance(loaded, list) else [loaded])
        else:
            out.append(t)
    return out


def from_promptfoo(
    data: Any,
    path: Path,
    lines: Lines | None = None,
    *,
    input_var: str | None = None,
    judge_model: str = "judge",
    name: str | None = None,
) -> Suite:
    """A promptfoo config (`tests` with `vars` and `assert`, `defaultTest`) as a suite.

    Args:
        data: the parsed config.
        path: its file (relative `file://` references start from its folder).
        lines: field path -> line, for messages.
        input_var: the var holding the user input (default: input, query, question, prompt, or the
            only var).
        judge_model: the `models` key llm-rubric assertions use unless they name a provider key.
        name: the suite name (default: the file name)."""
    problems = _Problems(path, lines or {})
    if not isinstance(data, dict):
        raise SuiteError(str(path), ["line 1: a promptfoo config must be a mapping with tests"])
    default = data.get("defaultTest") or {}
    if not isinstance(default, dict):
        problems.add(("defaultTest",), "defaultTest", "must be a mapping (vars, assert, threshold)")
        default = {}
    tests = _pf_tests(data, path, problems)
    cases: list[dict[str, Any]] = []
    n = -1  # promptfoo's test index, after list-valued vars are expanded
    for i, t in enumerate(tests):
        label = f"tests[{i}]"
        if not isinstance(t, dict):
            problems.add(("tests", i), label, "must be a mapping with vars and assert")
            continue
        merged = {**(default.get("vars") or {}), **(t.get("vars") or {})}
        for variables in _pf_expand(merged):  # list-valued vars: one test per combination
            n += 1
            key = input_var or next((v for v in INPUT_VARS if v in variables), None)
            if key is None and len(variables) == 1:
                key = next(iter(variables))
            if key is None or key not in variables:
                have = ", ".join(sorted(variables)) or "none"
                problems.add(
                    ("tests", i, "vars"),
                    f"{label}.vars",
                    f"cannot tell which var is the user input (vars: {have}); pass input_var "
                    "(`--input-var NAME`)",
                )
                continue
            asserts = []
            sources: list[tuple[str, Any, tuple[str | int, ...]]] = [
                ("defaultTest", a, ("defaultTest", "assert", j))
                for j, a in enumerate(default.get("assert") or [])
            ]
            sources += [(label, a, ("tests", i, "assert", j)) for j, a in enumerate(t.get("assert") or [])]
            if t.get("providerOutput") is not None:  # as the CSV column: that case is ERROR, saying why
                sources.append(
                    (label, {"type": "unsupported-promptfoo-column", "value": "providerOutput"}, ("tests", i))
                )
            ctx = _PfContext(variables, path.parent, judge_model, _pf_tools(data))
            options = {**(default.get("options") or {}), **(t.get("options") or {})}
            transform = options.get("transform") or options.get("postprocess")
            for where, a, loc in sources:
                try:
                    converted = _pf_assertion(a, ctx)
                    if transform is not None and converted["type"] != "unsupported":
                        converted = _pf_transformed(converted, transform, path.parent)
                    asserts.append(converted)
                except ValueError as e:
                    field, _, msg = str(e).partition(": ")
                    at = f"{where}.assert[{loc[-1]}]"
                    if field == "(assertion)":
                        problems.add(loc, at, msg)
                    else:
                        problems.add((*loc, field), f"{at}.{field}", msg)
            description = t.get("description")
            cid = _slug(str(description)) if description else ""
            if not cid:
                digest = json.dumps(variables, sort_keys=True, default=str).encode()
                cid = f"test-{hashlib.sha1(digest).hexdigest()[:8]}"
            # promptfoo's options.prefix / suffix wrap the prompt; here, the user input and the prompt
            mine, theirs = t.get("options") or {}, default.get("options") or {}
            prefix = str(mine.get("prefix") or theirs.get("prefix") or "")
            suffix = str(mine.get("suffix") or theirs.get("suffix") or "")
            prompt = _pf_prompt(data, variables)
            case: dict[str, Any] = {
                "id": cid,
                "_made_id": True,
                "input": prefix + str(variables[key]) + suffix,
                "assert": asserts,
                "metadata": {
                    **(t.get("metadata") or {}),
                    "vars": variables,
                    **({"prompt": prefix + prompt + suffix} if prompt is not None else {}),
                    "promptfoo_index": n,
                    **({"description": description} if description else {}),
                },
            }
            threshold = t.get("threshold", default.get("threshold"))
            if threshold is not None:
                case["threshold"] = threshold
            if not asserts:
                problems.add(("tests", i), label, "has no assert (nothing to check)")
            cases.append(case)
    problems.raise_if_any(
        hint="an assertion type or key Shipyard does not run makes only its case ERROR; these are mistakes"
    )
    desc = str(data.get("description") or "")
    return _finish(cases, name or path.stem.split(".")[0], desc, path, "promptfoo")


# Google ADK -------------------------------------------------------------------------------------

ADK_DEFAULTS: dict[str, Any] = {"tool_trajectory_avg_score": 1.0, "response_match_score": 0.8}
"""What ADK scores when no test_config.json sits beside the eval set."""
ADK_MATCH_TYPES = ("EXACT", "IN_ORDER", "ANY_ORDER")


def _adk_text(content: Any) -> str | None:
    if not isinstance(content, dict):
        return None
    parts = content.get("parts") or []
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return "\n".join(texts) if texts else None


def adk_criteria(path: Path) -> dict[str, Any]:
    """The criteria of the `test_config.json` beside an eval set (ADK's defaults when there is none):
    name -> threshold, or -> `{threshold, match_type, ignore_args, ...}` as the file gives it. Only
    these are scored, as ADK scores them."""
    cfg_path = path.parent / "test_config.json"
    if not cfg_path.is_file():
        return dict(ADK_DEFAULTS)
    data, lines = read_yaml(cfg_path)
    criteria = data.get("criteria") if isinstance(data, dict) else None
    if not isinstance(criteria, dict):
        raise SuiteError(str(cfg_path), ["line 1: test_config.json must have a `criteria` mapping"])
    problems = _Problems(cfg_path, lines)
    out: dict[str, Any] = {}
    for key, v in criteria.items():
        t = v.get("threshold") if isinstance(v, dict) else v
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 1:
            problems.add(
                ("criteria", key), f"criteria.{key}", f"threshold must be a number from 0 to 1, got {t!r}"
            )
            continue
        match = str(v.get("match_type", "EXACT")).upper() if isinstance(v, dict) else "EXACT"
        if key == "tool_trajectory_avg_score" and match not in ADK_MATCH_TYPES:
            problems.add(
                ("criteria", key, "match_type"),
                f"criteria.{key}.match_type",
                f"must be one of {', '.join(ADK_MATCH_TYPES)}, got {match!r}",
            )
        out[key] = {**v, "threshold": float(t)} if isinstance(v, dict) else float(t)
    problems.raise_if_any()
    return out


def _adk_assertions(
    replies: list[str | None], tools: list[list[dict[str, Any]]], criteria: dict[str, Any]
) -> list[dict[str, Any]]:
    """ADK's criteria as our assertions: each one listed in test_config.json, nothing else."""
    out: list[dict[str, Any]] = []
    for name, c in criteria.items():
        threshold = c["threshold"] if isinstance(c, dict) else c
        if name == "response_match_score":
            out.append({"type": "adk_response_match", "value": replies, "threshold": threshold})
        elif name == "tool_trajectory_avg_score":
            a = {"type": "adk_trajectory", "value": tools, "threshold": threshold}
            if isinstance(c, dict):
                a["match_type"] = str(c.get("match_type", "EXACT")).upper()
                a["ignore_args"] = bool(c.get("ignore_args", False))
            out.append(a)
        else:
            out.append(
                {
                    "type": "unsupported",
                    "value": f"ADK criterion {name!r} (Shipyard scores tool_trajectory_avg_score and "
                    "response_match_score)",
                }
            )
    return out


def _adk_case(
    cid: str,
    turns: list[tuple[str, str | None]],
    tools: list[list[dict[str, Any]]],
    criteria: dict[str, Any],
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """One eval case: its invocations are the turns; the expected replies and tool calls stay in the
    ADK assertions (scored per invocation, as ADK does) and in the metadata."""
    case: dict[str, Any] = {
        "id": cid,
        "metadata": {**metadata, "adk_expected_replies": [e for _, e in turns]},
        "assert": _adk_assertions([e for _, e in turns], tools, criteria),
    }
    if len(turns) == 1:
        case["input"] = turns[0][0]
    else:
        case["conversation"] = [{"user": u} for u, _ in turns]
    if any(tools):
        case["category"] = "tool_usage"
    return case


_NEEDS_EXPECTED = ("response_match_score", "tool_trajectory_avg_score")


_SIMULATOR_UNSUPPORTED = {  # ADK user_simulator_config keys Shipyard's simulator does not honour
    "custom_instructions": "customInstructions",
    "include_function_calls": "includeFunctionCalls",
}


def adk_simulator_settings(path: Path) -> tuple[int | None, list[str]]:
    """What `user_simulator_config` of the `test_config.json` beside an eval set asks of the user
    simulator: `max_allowed_invocations`, the most user turns of its scenario cases (None: not given,
    or ADK's -1, no limit of its own: `evals.user_simulator.max_turns` applies), and the settings
    Shipyard's simulator does not honour (its scenario cases are ERROR naming them, never played
    differently from ADK in silence). The config's `model` and `model_configuration` are not used:
    Shipyard's simulator model, with its settings, is the one shipyard.yaml names."""
    cfg_path = path.parent / "test_config.json"
    if not cfg_path.is_file():
        return None, []
    data, _ = read_yaml(cfg_path)
    sim = (
        (data.get("user_simulator_config") or data.get("userSimulatorConfig"))
        if isinstance(data, dict)
        else None
    )
    if not isinstance(sim, dict):
        return None, []
    n = sim.get("max_allowed_invocations", sim.get("maxAllowedInvocations"))
    turns = n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else None
    kind = sim.get("type")
    unsupported = [f"type {kind!r}"] if kind not in (None, "llm_backed") else []
    unsupported += [
        snake
        for snake, camel in _SIMULATOR_UNSUPPORTED.items()
        if sim.get(snake, sim.get(camel)) not in (None, False)
    ]
    return turns, unsupported


def _adk_scenario_case(
    cid: str,
    scenario: dict[str, Any],
    criteria: dict[str, Any],
    simulator: tuple[int | None, list[str]],
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """A `conversation_scenario` case: a `scenario` the configured user simulator plays (without one
    it is SKIPPED, saying so). The criteria that compare with expected invocations cannot score it:
    ADK raises for them ("expected_invocations is needed"), Shipyard makes them ERROR naming why."""
    asserts: list[dict[str, Any]] = []
    for name in criteria:
        if name in _NEEDS_EXPECTED:
            asserts.append(
                {
                    "type": "unsupported",
                    "value": f"ADK criterion {name!r} compares with the expected invocations of a "
                    "`conversation`; a conversation_scenario case has none",
                }
            )
        else:
            asserts += _adk_assertions([], [], {name: criteria[name]})
    if scenario.get("user_persona") is not None:
        asserts.append(
            {
                "type": "unsupported",
                "value": "ADK conversation_scenario.user_persona (Shipyard's user simulator plays no persona)",
            }
        )
    max_turns, unsupported = simulator
    asserts += [
        {
            "type": "unsupported",
            "value": f"ADK user_simulator_config {name} (Shipyard's user simulator has none)",
        }
        for name in unsupported
    ]
    spec: dict[str, Any] = {
        "starting_prompt": scenario["starting_prompt"],
        "conversation_plan": scenario["conversation_plan"],
    }
    if max_turns is not None:
        spec["max_turns"] = max_turns
    return {
        "id": cid,
        "scenario": spec,
        "metadata": {**metadata, "adk_conversation_scenario": scenario},
        "assert": asserts,
    }


def _adk_old_format(
    data: list[Any], path: Path, criteria: dict[str, Any], problems: _Problems
) -> list[dict[str, Any]]:
    """The older list format (`[{query, expected_tool_use, reference}]`): the whole file is one case
    whose entries are its invocations, as ADK converts it."""
    turns: list[tuple[str, str | None]] = []
    tools: list[list[dict[str, Any]]] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("query"), str):
            problems.add((i,), f"[{i}].query", "required: the user's query text")
            continue
        ref = item.get("reference")
        turns.append((item["query"], ref if isinstance(ref, str) else None))
        tools.append(
            [
                {"name": t.get("tool_name"), "args": t.get("tool_input") or {}}
                for t in item.get("expected_tool_use") or []
                if isinstance(t, dict)
            ]
        )
    if not turns:
        return []
    return [_adk_case(path.name.split(".")[0] or "case-1", turns, tools, criteria, {})]


def from_adk(data: Any, path: Path, lines: Lines | None = None, *, name: str | None = None) -> Suite:
    """A Google ADK eval set (`eval_set_id`, `eval_cases[].conversation[]`) as a suite, scored as ADK
    scores it: only the criteria of the sibling `test_config.json` (ADK's defaults without one).

    Each invocation is a turn: `user_content` the user's message, `final_response` the expected reply
    (`response_match_score`: ROUGE-1 with stemming, averaged over invocations) and
    `intermediate_data.tool_uses` the expected tool calls of that turn (`tool_trajectory_avg_score`:
    per invocation, arguments compared strictly). The older list format
    (`[{query, expected_tool_use: [{tool_name, tool_input}], reference}]`) is one multi-turn case. A
    `conversation_scenario` case is a `scenario` case: the configured user simulator plays its user
    (at most `user_simulator_config.max_allowed_invocations` turns), and without one it is SKIPPED."""
    problems = _Problems(path, lines or {})
    criteria = adk_criteria(path)
    simulator = adk_simulator_settings(path)
    cases: list[dict[str, Any]] = []
    if isinstance(data, list):
        cases = _adk_old_format(data, path, criteria, problems)
        problems.raise_if_any()
        return _finish(cases, name or path.name.split(".")[0], "", path, "adk")
    if not isinstance(data, dict) or not isinstance(data.get("eval_cases"), list):
        raise SuiteError(str(path), ["line 1: an ADK eval set needs eval_cases: a list"])
    for i, ec in enumerate(data["eval_cases"]):
        label = f"eval_cases[{i}]"
        if not isinstance(ec, dict):
            problems.add(("eval_cases", i), label, "must be an object")
            continue
        cid = str(ec.get("eval_id") or f"case-{i + 1}")
        made_id = not ec.get("eval_id")
        label = f"{label} (eval_id {cid!r})"
        meta: dict[str, Any] = {"adk_eval_set": data.get("eval_set_id")}
        session = ec.get("session_input")
        if isinstance(session, dict) and session.get("state"):
            meta["session_state"] = session["state"]
        scenario = ec.get("conversation_scenario")
        if scenario is not None and ec.get("conversation") is not None:
            problems.add(
                ("eval_cases", i),
                label,
                "has both conversation and conversation_scenario; ADK takes exactly one of them",
            )
            continue
        if scenario is not None:
            where: tuple[str | int, ...] = ("eval_cases", i, "conversation_scenario")
            if not isinstance(scenario, dict):
                problems.add(where, f"{label}.conversation_scenario", "must be an object")
                continue
            missing = [
                k for k in ("starting_prompt", "conversation_plan") if not isinstance(scenario.get(k), str)
            ]
            for k in missing:
                problems.add((*where, k), f"{label}.conversation_scenario.{k}", "required: text")
            if not missing:
                case = _adk_scenario_case(cid, scenario, criteria, simulator, meta)
                cases.append({**case, "_made_id": made_id})
            continue
        conv = ec.get("conversation")
        if not isinstance(conv, list) or not conv:
            problems.add(
                ("eval_cases", i, "conversation"), f"{label}.conversation", "required: a non-empty list"
            )
            continue
        turns: list[tuple[str, str | None]] = []
        tools: list[list[dict[str, Any]]] = []
        for t, inv in enumerate(conv):
            loc = ("eval_cases", i, "conversation", t)
            user = _adk_text(inv.get("user_content")) if isinstance(inv, dict) else None
            if user is None:
                problems.add(
                    (*loc, "user_content"),
                    f"{label}.conversation[{t}].user_content",
                    "required: {parts: [{text: ...}]}",
                )
                continue
            turns.append((user, _adk_text(inv.get("final_response"))))
            calls: list[dict[str, Any]] = []
            inter = inv.get("intermediate_data") or {}
            for u, use in enumerate(inter.get("tool_uses") or [] if isinstance(inter, dict) else []):
                if not isinstance(use, dict) or not isinstance(use.get("name"), str):
                    problems.add(
                        (*loc, "intermediate_data", "tool_uses", u),
                        f"{label}.conversation[{t}].intermediate_data.tool_uses[{u}].name",
                        "required: the tool's name",
                    )
                    continue
                calls.append({"name": use["name"], "args": use.get("args") or {}})
            tools.append(calls)
        if turns:
            cases.append({**_adk_case(cid, turns, tools, criteria, meta), "_made_id": made_id})
    problems.raise_if_any()
    desc = str(data.get("description") or "")
    return _finish(
        cases,
        name or str(data.get("name") or data.get("eval_set_id") or path.name.split(".")[0]),
        desc,
        path,
        "adk",
    )


# OpenAI-evals JSONL -----------------------------------------------------------------------------


def _jsonl_case(row: dict[str, Any], n: int) -> dict[str, Any]:
    """One OpenAI-evals sample (`input` text or chat messages, `ideal` text or list) as a case."""
    raw = row["input"]
    ideal = row.get("ideal")
    meta: dict[str, Any] = {"line": n}
    case: dict[str, Any] = {
        "id": str(row.get("id") or f"line-{n}"),
        "metadata": meta,
        "_made_id": "id" not in row,
    }
    if isinstance(raw, str):
        case["input"] = raw
    elif isinstance(raw, list) and raw:
        systems = [m.get("content", "") for m in raw if isinstance(m, dict) and m.get("role") == "system"]
        if systems:
            meta["system"] = "\n".join(str(s) for s in systems)
        turns: list[dict[str, Any]] = []
        for m in raw:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                raise ValueError("input: every message needs role and text content")
            if m.get("role") == "user":
                turns.append({"user": m["content"]})
            elif m.get("role") == "assistant" and turns:
                turns[-1]["expected"] = m["content"]
        if not turns:
            raise ValueError("input: the messages have no user message")
        if len(turns) == 1:
            case["input"] = turns[0]["user"]
        else:
            case["conversation"] = turns
    else:
        raise ValueError("input: must be a text or a non-empty list of chat messages")
    if ideal is not None:
        if not (
            isinstance(ideal, str)
            or (isinstance(ideal, list) and ideal and all(isinstance(i, str) for i in ideal))
        ):
            raise ValueError("ideal: must be a text or a list of texts")
        case["expected"] = ideal
    return case


def from_jsonl(path: Path, *, name: str | None = None) -> Suite:
    """A JSONL file as a suite: OpenAI-evals samples (`input`, `ideal`) or our own cases, one per line."""
    problems = _Problems(path, {})
    cases: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(str(path), ["file not found"]) from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            problems.items.append(f"{where}: not valid JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(row, dict) or ("input" not in row and "conversation" not in row):
            problems.items.append(
                f"{where}: needs input (text or chat messages) and ideal, or a case with id"
            )
            continue
        if "ideal" in row or isinstance(row.get("input"), list) or "id" not in row:
            try:
                cases.append(_jsonl_case(row, n))
            except ValueError as e:
                field, _, msg = str(e).partition(": ")
                problems.items.append(f"{where}: {field}: {msg}")
        else:
            cases.append({**row, "metadata": {**(row.get("metadata") or {}), "line": n}})
    problems.raise_if_any(hint='each line: {"input": ..., "ideal": ...} (OpenAI evals) or one of our cases')
    suite_name = name or path.stem
    try:
        return _finish(cases, suite_name, "", path, "jsonl")
    except SuiteError as e:
        # point validation problems at the JSONL line of the case
        fixed = []
        for p in e.problems:
            m = re.match(r"^cases\[(\d+)\](.*)$", p)
            fixed.append(f"line {cases[int(m.group(1))]['metadata']['line']}: {p}" if m else p)
        raise SuiteError(str(path), fixed) from None


# entry points -----------------------------------------------------------------------------------


def kind_by_suffix(path: Path) -> str | None:
    """The registered format whose suffix the file has (read raw, not as YAML), if any."""
    return next((n for n, imp in IMPORTERS.items() if path.suffix.lower() in imp.suffixes), None)


def detect_kind(path: Path, data: Any) -> str:
    """Which registered format a file is in: by suffix, else by its parsed content (`data`); a file
    no format claims is ours. SuiteError when two formats claim it, or a format's check fails."""
    by_suffix = kind_by_suffix(path)
    if by_suffix is not None:
        return by_suffix
    claims = []
    for name, imp in IMPORTERS.items():
        if imp.detect is None:
            continue
        try:
            if imp.detect(path, data):
                claims.append(name)
        except Exception as e:  # a plugin's bug: name it rather than crash every suite load
            raise SuiteError(
                str(path), [f"suite format {name!r} ({IMPORTERS.origin(name)}) failed to inspect it: {e!r}"]
            ) from None
    if len(claims) > 1:
        raise SuiteError(
            str(path),
            [f"the file looks like several suite formats: {', '.join(claims)}"],
            hint=f"convert it with `shipyard eval import KIND {path} -o suite.yaml`, naming its format",
        )
    return claims[0] if claims else OURS


def import_file(
    kind: str, path: Path | str, *, data: Any = None, lines: Lines | None = None, **options: Any
) -> Suite:
    """Convert a file of a registered suite format (promptfoo config, ADK eval set, JSONL, ...)
    into a suite.

    Args:
        kind: the format's registered name: promptfoo, adk, jsonl, shipyard (our own YAML), or a
            plugin's.
        path: the file.
        data, lines: the already-parsed content and its line map (read from `path` when omitted).
        options: importer options: `input_var`, `judge_model` (promptfoo), `name` (all)."""
    p = Path(path)
    if kind not in IMPORTERS:
        raise SuiteError(str(p), [IMPORTERS.unknown_message(kind, label="import kind")])
    importer = IMPORTERS.get(kind)
    if importer.suffixes:
        return importer.load(p, None, None, **options)
    if data is None:
        data, lines = read_yaml(p)
    return importer.load(p, data, lines or {}, **options)


# the built-in formats -----------------------------------------------------------------------------


def _load_ours(path: Path, data: Any, lines: Lines, *, name: str | None = None, **_: Any) -> Suite:
    return parse_suite(data, path, lines, name=name or path.stem.split(".")[0])


def _is_ours(path: Path, data: Any) -> bool:
    return isinstance(data, dict) and "cases" in data


def _load_promptfoo(path: Path, data: Any, lines: Lines, **options: Any) -> Suite:
    return from_promptfoo(data, path, lines, **options)


def _is_promptfoo(path: Path, data: Any) -> bool:
    return isinstance(data, dict) and any(k in data for k in ("tests", "defaultTest", "prompts", "providers"))


def _load_adk(path: Path, data: Any, lines: Lines, *, name: str | None = None, **_: Any) -> Suite:
    return from_adk(data, path, lines, name=name)


def _is_adk(path: Path, data: Any) -> bool:
    if isinstance(data, dict):
        return "eval_cases" in data or "eval_set_id" in data
    # the older ADK .test.json: a list of {query, expected_tool_use, reference}
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "query" in data[0]


def _load_jsonl(path: Path, data: Any, lines: Any, *, name: str | None = None, **_: Any) -> Suite:
    return from_jsonl(path, name=name)


BUILTIN_IMPORTERS: dict[str, SuiteImporter] = {
    OURS: SuiteImporter(_load_ours, _is_ours),
    "promptfoo": SuiteImporter(_load_promptfoo, _is_promptfoo),
    "adk": SuiteImporter(_load_adk, _is_adk),
    "jsonl": SuiteImporter(_load_jsonl, suffixes=(".jsonl",)),
}
"""Registered by `shipyard.evals._plugins` (the `evals` entry point)."""


def suite_to_data(suite: Suite) -> dict[str, Any]:
    """Our suite format as plain data: defaults already applied to each case, nothing left at default."""
    out: dict[str, Any] = {"name": suite.name}
    if suite.version is not None:
        out["version"] = suite.version
    if suite.description:
        out["description"] = suite.description
    out["cases"] = [
        c.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude_none=True)
        for c in suite.cases
    ]
    return out


def dump_suite(suite: Suite, path: Path | str) -> Path:
    """Write a suite as our YAML (loadable with `load_suite`); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(suite_to_data(suite), sort_keys=False, allow_unicode=True, width=110)
    p.write_text(text, encoding="utf-8")
    return p
