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


PROMPTFOO_TYPES: dict[str, Callable[[Any, bool, dict[str, Any]], dict[str, Any]]] = {
    "equals": _pf_same("exact"),
    "contains": _pf_same("contains"),
    "icontains": _pf_same("icontains"),
    "contains-any": _pf_same("contains", mode="any"),
    "contains-all": _pf_same("contains", mode="all"),
    "icontains-any": _pf_same("icontains", mode="any"),
    "icontains-all": _pf_same("icontains", mode="all"),
    "regex": _pf_same("regex"),
    "starts-with": _pf_same("starts_with"),
    "is-json": _pf_same("is_json"),
    "contains-json": _pf_same("contains_json"),
    "python": _pf_same("python"),
    "llm-rubric": _pf_same("llm_judge"),
    "similar": _pf_same("similar"),
    "latency": _pf_max("latency", "max_ms"),
    "cost": _pf_max("cost", "max_usd"),
    "tool-used": _pf_tool_used,
    "tool-sequence": _pf_tool_sequence,
    "tool-args-match": _pf_tool_args,
}
_PF_ASSERT_KEYS = {"type", "value", "threshold", "weight", "provider", "metric", "config"}


def _pf_assertion(a: Any, variables: dict[str, Any], base_dir: Path, judge_model: str) -> dict[str, Any]:
    """One promptfoo assertion as ours (ValueError with the field at fault in the message)."""
    if not isinstance(a, dict):
        raise ValueError(f"(assertion): must be a mapping with type, got {a!r}")
    unknown = sorted(set(a) - _PF_ASSERT_KEYS)
    if unknown:
        raise ValueError(
            f"{unknown[0]}: unsupported assertion key (supported: {', '.join(sorted(_PF_ASSERT_KEYS))})"
        )
    raw = a.get("type")
    if not isinstance(raw, str):
        raise ValueError("type: required, a promptfoo assertion type")
    negate = raw.startswith("not-")
    base = raw[4:] if negate else raw
    base = base.removeprefix("trajectory:")
    convert = PROMPTFOO_TYPES.get(base)
    if convert is None:
        known = ", ".join(sorted(PROMPTFOO_TYPES))
        raise ValueError(
            f"type: unknown or unsupported promptfoo assertion type {raw!r} (supported: {known}; "
            "prefix not- to negate)"
        )
    a = dict(a)
    value = _render(a.get("value"), variables)
    try:
        ours = convert(value, negate, a)
    except ValueError as e:
        raise ValueError(f"value: {e}") from None
    if negate and ours["type"] != "must_not_call":
        ours["type"] = "not-" + ours["type"]
    if "weight" in a:
        ours["weight"] = a["weight"]
    if a.get("threshold") is not None:
        ours["threshold"] = a["threshold"]
    if base == "python":
        ours["base_dir"] = str(base_dir)
    if base == "llm-rubric":
        provider = a.get("provider")
        ours["model"] = provider if isinstance(provider, str) and ":" not in provider else judge_model
    return ours


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
            if ref.suffix not in (".yaml", ".yml", ".json"):
                problems.add(("tests", i), f"tests[{i}]", f"{t!r}: only YAML or JSON test files can be read")
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
    for i, t in enumerate(tests):
        label = f"tests[{i}]"
        if not isinstance(t, dict):
            problems.add(("tests", i), label, "must be a mapping with vars and assert")
            continue
        variables = {**(default.get("vars") or {}), **(t.get("vars") or {})}
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
        for where, a, loc in sources:
            try:
                asserts.append(_pf_assertion(a, variables, path.parent, judge_model))
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
        case: dict[str, Any] = {
            "id": cid,
            "_made_id": True,
            "input": str(variables[key]),
            "assert": asserts,
            "metadata": {
                **(t.get("metadata") or {}),
                "vars": variables,
                "promptfoo_index": i,
                **({"description": description} if description else {}),
            },
        }
        threshold = t.get("threshold", default.get("threshold"))
        if threshold is not None:
            case["threshold"] = threshold
        if not asserts:
            problems.add(("tests", i), label, "has no assert (nothing to check)")
        cases.append(case)
    problems.raise_if_any(hint="see `shipyard eval import --help` for the supported promptfoo subset")
    desc = str(data.get("description") or "")
    return _finish(cases, name or path.stem.split(".")[0], desc, path, "promptfoo")


# Google ADK -------------------------------------------------------------------------------------

ADK_DEFAULTS = {"tool_trajectory_avg_score": 1.0, "response_match_score": 0.8}


def _adk_text(content: Any) -> str | None:
    if not isinstance(content, dict):
        return None
    parts = content.get("parts") or []
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return "".join(texts) if texts else None


def adk_criteria(path: Path) -> dict[str, float]:
    """Thresholds from the `test_config.json` beside an eval set (ADK's defaults otherwise)."""
    out = dict(ADK_DEFAULTS)
    cfg_path = path.parent / "test_config.json"
    if not cfg_path.is_file():
        return out
    data, lines = read_yaml(cfg_path)
    criteria = data.get("criteria") if isinstance(data, dict) else None
    if not isinstance(criteria, dict):
        raise SuiteError(str(cfg_path), ["line 1: test_config.json must have a `criteria` mapping"])
    problems = _Problems(cfg_path, lines)
    for key, v in criteria.items():
        t = v.get("threshold") if isinstance(v, dict) else v
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 1:
            problems.add(
                ("criteria", key), f"criteria.{key}", f"threshold must be a number from 0 to 1, got {t!r}"
            )
        elif key in out:
            out[key] = float(t)
    problems.raise_if_any()
    return out


def _adk_case(
    cid: str,
    turns: list[tuple[str, str | None]],
    tools: list[dict[str, Any]],
    criteria: dict[str, float],
    metadata: dict[str, Any],
) -> dict[str, Any]:
    match = {"type": "similar", "threshold": criteria["response_match_score"]}
    case: dict[str, Any] = {"id": cid, "metadata": metadata, "expected_match": match}
    if len(turns) == 1:
        case["input"] = turns[0][0]
        if turns[0][1] is not None:
            case["expected"] = turns[0][1]
    else:
        case["conversation"] = [{"user": u, **({"expected": e} if e is not None else {})} for u, e in turns]
    # as ADK: the trajectory is always checked; no expected tool uses means no tool may be called
    case["trajectory"] = {
        "mode": "exact",
        "calls": tools,
        "args_match": "exact",
        "threshold": criteria["tool_trajectory_avg_score"],
    }
    if tools:
        case["category"] = "tool_usage"
    return case


def from_adk(data: Any, path: Path, lines: Lines | None = None, *, name: str | None = None) -> Suite:
    """A Google ADK eval set (`eval_set_id`, `eval_cases[].conversation[]`) as a suite; thresholds
    come from a sibling `test_config.json` (`tool_trajectory_avg_score`, `response_match_score`).

    Each invocation's `user_content` is a user turn, its `final_response` the expected reply
    (compared by ROUGE-1 F1, ADK's response_match_score) and `intermediate_data.tool_uses` the
    expected tool calls (exact order, exact arguments). Also reads the older list format
    (`[{query, expected_tool_use: [{tool_name, tool_input}], reference}]`), one case per entry."""
    problems = _Problems(path, lines or {})
    criteria = adk_criteria(path)
    cases: list[dict[str, Any]] = []
    if isinstance(data, list):
        for i, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("query"), str):
                problems.add((i,), f"[{i}].query", "required: the user's query text")
                continue
            expected_tools = [
                {"name": t.get("tool_name"), "args": t.get("tool_input") or {}}
                for t in item.get("expected_tool_use") or []
                if isinstance(t, dict)
            ]
            cases.append(
                _adk_case(
                    f"query-{i + 1}", [(item["query"], item.get("reference"))], expected_tools, criteria, {}
                )
            )
            cases[-1]["_made_id"] = True
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
        conv = ec.get("conversation")
        if not isinstance(conv, list) or not conv:
            problems.add(
                ("eval_cases", i, "conversation"), f"{label}.conversation", "required: a non-empty list"
            )
            continue
        turns: list[tuple[str, str | None]] = []
        tools: list[dict[str, Any]] = []
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
            inter = inv.get("intermediate_data") or {}
            for u, use in enumerate(inter.get("tool_uses") or [] if isinstance(inter, dict) else []):
                if not isinstance(use, dict) or not isinstance(use.get("name"), str):
                    problems.add(
                        (*loc, "intermediate_data", "tool_uses", u),
                        f"{label}.conversation[{t}].intermediate_data.tool_uses[{u}].name",
                        "required: the tool's name",
                    )
                    continue
                tools.append({"name": use["name"], "args": use.get("args") or {}})
        if turns:
            meta = {"adk_eval_set": data.get("eval_set_id")}
            session = ec.get("session_input")
            if isinstance(session, dict) and session.get("state"):
                meta["session_state"] = session["state"]
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
