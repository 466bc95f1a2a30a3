"""Scorers on the output text and the interaction's numbers: matching, JSON, numeric, similarity,
latency and cost."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from shipyard.evals._scorers import ScoreFn, ScoreInput, scorer
from shipyard.evals._types import ScoreResult

if TYPE_CHECKING:
    import jsonschema  # imported when a suite uses a JSON-schema check


def _texts(value: Any, name: str) -> list[str]:
    """A value that is one text or a list of alternatives."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list) and value and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    raise ValueError(f"{name}: value must be a text or a non-empty list of texts, got {value!r}")


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _text_match(name: str, value: Any, test: Any, *, mode: str = "any", partial: bool = True) -> ScoreFn:
    """A scorer passing when `test(output, expected)` holds for any (or all) of the values; with `all`,
    its score is the share found (`partial`) or 0 / 1."""
    wanted = _texts(value, name)
    if mode not in ("any", "all"):
        raise ValueError(f"{name}: mode must be 'any' or 'all', got {mode!r}")

    def score(inp: ScoreInput) -> ScoreResult:
        hits = [w for w in wanted if test(inp.output, w)]
        ok = bool(hits) if mode == "any" else len(hits) == len(wanted)
        missing = [w for w in wanted if w not in hits]
        if ok:
            reason = f"output matches {_short(hits[0])!r}"
        elif mode == "all":
            reason = f"output lacks {', '.join(repr(_short(m)) for m in missing)}"
        else:
            reason = (
                f"output {_short(inp.output)!r} does not match {' or '.join(repr(_short(w)) for w in wanted)}"
            )
        return ScoreResult(
            name, ok, len(hits) / len(wanted) if mode == "all" and partial else float(ok), reason
        )

    return score


@scorer("exact")
def exact(value: Any, *, case_sensitive: bool = True, strip: bool = True) -> ScoreFn:
    """The output equals the value (or one of a list of values).

    Args:
        value: the expected text, or a list of accepted texts.
        case_sensitive: compare letter case too.
        strip: ignore leading and trailing white space."""

    def norm(s: str) -> str:
        s = s.strip() if strip else s
        return s if case_sensitive else s.casefold()

    return _text_match("exact", value, lambda out, w: norm(out) == norm(w))


@scorer("contains")
def contains(value: Any, *, case_sensitive: bool = True, mode: str = "any", partial: bool = True) -> ScoreFn:
    """The output contains the value.

    Args:
        value: the text to find, or a list of texts.
        case_sensitive: compare letter case too.
        mode: with a list, `any` (one is enough) or `all` (each must appear).
        partial: with `all`, score the share found (false: 0 or 1, as promptfoo)."""
    if case_sensitive:
        return _text_match("contains", value, lambda out, w: w in out, mode=mode, partial=partial)
    return _text_match(
        "contains", value, lambda out, w: w.casefold() in out.casefold(), mode=mode, partial=partial
    )


@scorer("icontains")
def icontains(value: Any, *, mode: str = "any", partial: bool = True) -> ScoreFn:
    """The output contains the value, ignoring letter case.

    Args:
        value: the text to find, or a list of texts.
        mode: with a list, `any` or `all`.
        partial: with `all`, score the share found (false: 0 or 1, as promptfoo)."""
    return contains(value, case_sensitive=False, mode=mode, partial=partial)


@scorer("starts_with")
def starts_with(value: Any, *, case_sensitive: bool = True, strip: bool = True) -> ScoreFn:
    """The output (leading white space ignored) starts with the value.

    Args:
        value: the prefix, or a list of accepted prefixes.
        case_sensitive: compare letter case too.
        strip: ignore leading white space (false: promptfoo's `starts-with`)."""

    def test(out: str, w: str) -> bool:
        out = out.lstrip() if strip else out
        return out.startswith(w) if case_sensitive else out.casefold().startswith(w.casefold())

    return _text_match("starts_with", value, test)


@scorer("regex")
def regex(value: str, *, flags: str = "") -> ScoreFn:
    """A regular expression (Python syntax) matches somewhere in the output.

    Args:
        value: the pattern.
        flags: letters of re flags: i (ignore case), m (multi-line), s (dot matches new line)."""
    if not isinstance(value, str):
        raise ValueError(f"regex: value must be a pattern text, got {value!r}")
    bits = 0
    for f in flags:
        if f not in "ims":
            raise ValueError(f"regex: unknown flag {f!r} (use i, m, s)")
        bits |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}[f]
    try:
        pattern = re.compile(value, bits)
    except re.error as e:
        raise ValueError(f"regex: bad pattern {value!r}: {e}") from None

    def score(inp: ScoreInput) -> ScoreResult:
        m = pattern.search(inp.output)
        if m:
            return ScoreResult("regex", True, 1.0, f"matched {_short(m.group(0))!r}")
        return ScoreResult("regex", False, 0.0, f"/{value}/ does not match {_short(inp.output)!r}")

    return score


# JSON ---------------------------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def parse_json_output(text: str) -> tuple[bool, Any]:
    """The output as JSON, also when wrapped in a ```json fence."""
    for candidate in (text, *(m.group(1) for m in _FENCE.finditer(text))):
        try:
            return True, json.loads(candidate)
        except ValueError:
            continue
    return False, None


def _strict_json(text: str) -> tuple[bool, Any]:
    """The whole text as JSON, as JavaScript's JSON.parse reads it (no NaN or Infinity)."""

    def no_constant(name: str) -> Any:
        raise ValueError(name)

    try:
        return True, json.loads(text, parse_constant=no_constant)
    except ValueError:
        return False, None


def find_json(text: str) -> list[Any]:
    """Every JSON object or array embedded in a text, in order."""
    decoder = json.JSONDecoder()
    found = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            found.append(value)
            i = end
        else:
            i += 1
    return found


def _validator(schema: Any, name: str, *, formats: bool = False) -> jsonschema.protocols.Validator | None:
    """A validator for a schema (a mapping, or its JSON or YAML text); `formats`: also check `format`
    (as promptfoo's ajv-formats does), which JSON schema otherwise only annotates."""
    if schema is None:
        return None
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError:
            import yaml

            try:
                schema = yaml.safe_load(schema)
            except yaml.YAMLError:
                raise ValueError(f"{name}: the schema is neither JSON nor YAML") from None
    if not isinstance(schema, dict | bool):
        raise ValueError(f"{name}: the schema must be a JSON-schema object, got {schema!r}")
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)  # type: ignore[arg-type]
    except jsonschema.SchemaError as e:
        raise ValueError(f"{name}: invalid JSON schema: {e.message}") from None
    return cls(schema, format_checker=cls.FORMAT_CHECKER if formats else None)


def _schema_problem(validator: jsonschema.protocols.Validator | None, value: Any) -> str | None:
    if validator is None:
        return None
    import jsonschema

    err = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return f"{where}: {err.message}"


@scorer("is_json")
def is_json(value: Any = None, *, fenced: bool = True, formats: bool = False) -> ScoreFn:
    """The whole output is JSON (a ```json fence is accepted), optionally matching a schema.

    Args:
        value: an optional JSON schema the parsed output must satisfy.
        fenced: accept JSON inside a ```json fence (false: the whole output must be JSON, as promptfoo).
        formats: check the schema's `format` keywords (email, date-time, ...) too."""
    validator = _validator(value, "is_json", formats=formats)

    def score(inp: ScoreInput) -> ScoreResult:
        ok, parsed = parse_json_output(inp.output) if fenced else _strict_json(inp.output)
        if not ok:
            return ScoreResult("is_json", False, 0.0, f"output is not JSON: {_short(inp.output)!r}")
        problem = _schema_problem(validator, parsed)
        if problem:
            return ScoreResult("is_json", False, 0.0, f"JSON does not match the schema at {problem}")
        return ScoreResult("is_json", True, 1.0, "output is valid JSON")

    return score


@scorer("contains_json")
def contains_json(value: Any = None, *, formats: bool = False) -> ScoreFn:
    """The output contains a JSON object or array somewhere, optionally matching a schema.

    Args:
        value: an optional JSON schema one of the embedded values must satisfy.
        formats: check the schema's `format` keywords (email, date-time, ...) too."""
    validator = _validator(value, "contains_json", formats=formats)

    def score(inp: ScoreInput) -> ScoreResult:
        found = find_json(inp.output)
        if not found:
            return ScoreResult("contains_json", False, 0.0, "no JSON object or array in the output")
        problems = [_schema_problem(validator, v) for v in found]
        if all(problems):
            return ScoreResult(
                "contains_json", False, 0.0, f"no embedded JSON matches the schema: {problems[0]}"
            )
        return ScoreResult("contains_json", True, 1.0, "output contains JSON")

    return score


@scorer("json_schema")
def json_schema(value: Any) -> ScoreFn:
    """The output is JSON valid against a JSON schema (any draft the jsonschema library knows).

    Args:
        value: the schema (a mapping, or its JSON text)."""
    validator = _validator(value, "json_schema")

    def score(inp: ScoreInput) -> ScoreResult:
        ok, parsed = parse_json_output(inp.output)
        if not ok:
            return ScoreResult("json_schema", False, 0.0, f"output is not JSON: {_short(inp.output)!r}")
        problem = _schema_problem(validator, parsed)
        if problem:
            return ScoreResult("json_schema", False, 0.0, f"schema violation at {problem}")
        return ScoreResult("json_schema", True, 1.0, "output matches the schema")

    return score


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")


def numbers_in(text: str) -> list[float]:
    """The numbers in a text (thousands separators allowed)."""
    out = []
    for m in _NUMBER.finditer(text):
        try:
            out.append(float(m.group(0).replace(",", "")))
        except ValueError:
            continue
    return out


@scorer("numeric")
def numeric(value: Any, *, tolerance: float = 1e-9, relative: float = 0.0, pick: str = "any") -> ScoreFn:
    """A number in the output equals the value within a tolerance.

    Args:
        value: the expected number.
        tolerance: the absolute difference allowed.
        relative: the difference allowed as a fraction of the expected value (0.01 = 1%).
        pick: which number of the output counts: any, first or last."""
    try:
        target = float(str(value).replace(",", ""))
    except ValueError:
        raise ValueError(f"numeric: value must be a number, got {value!r}") from None
    if pick not in ("any", "first", "last"):
        raise ValueError(f"numeric: pick must be any, first or last, got {pick!r}")
    if tolerance < 0 or relative < 0:
        raise ValueError("numeric: tolerance and relative must not be negative")
    allowed = max(tolerance, abs(target) * relative)

    def score(inp: ScoreInput) -> ScoreResult:
        found = numbers_in(inp.output)
        if pick != "any":
            found = found[:1] if pick == "first" else found[-1:]
        if not found:
            return ScoreResult("numeric", False, 0.0, f"no number in the output {_short(inp.output)!r}")
        best = min(found, key=lambda x: abs(x - target))
        ok = abs(best - target) <= allowed
        return ScoreResult("numeric", ok, float(ok), f"found {best:g}, expected {target:g} ± {allowed:g}")

    return score


_WORD = re.compile(r"[a-z0-9]+")


def rouge1_f1(candidate: str, reference: str) -> float:
    """ROUGE-1 F1 of unigram overlap (lower-cased alphanumeric tokens), as ADK's response_match_score.

    ADK applies a Porter stemmer first; this does not, so inflected forms count as different words."""
    c = Counter(_WORD.findall(candidate.lower()))
    r = Counter(_WORD.findall(reference.lower()))
    if not c or not r:
        return 1.0 if not c and not r else 0.0
    overlap = sum((c & r).values())
    if overlap == 0:
        return 0.0
    precision = overlap / sum(c.values())
    recall = overlap / sum(r.values())
    return 2 * precision * recall / (precision + recall)


@scorer("similar")
def similar(value: Any, *, threshold: float = 0.8) -> ScoreFn:
    """The output is similar to the value: ROUGE-1 F1 at or above the threshold (ADK's
    response_match_score).

    Args:
        value: the reference text, or a list (the best match counts).
        threshold: the least F1 (0..1) that passes."""
    refs = _texts(value, "similar")
    if not 0 <= threshold <= 1:
        raise ValueError(f"similar: threshold must be between 0 and 1, got {threshold}")

    def score(inp: ScoreInput) -> ScoreResult:
        best = max(rouge1_f1(inp.output, r) for r in refs)
        return ScoreResult(
            "similar", best >= threshold, best, f"ROUGE-1 F1 {best:.3f} (threshold {threshold:g})"
        )

    return score


@scorer("latency")
def latency(value: Any = None, *, max_ms: float | None = None) -> ScoreFn:
    """The interaction took at most `max_ms` milliseconds. A replayed run measures nothing, so the
    check passes and says so (replayed latency never counts toward a gate).

    Args:
        value: the same as max_ms (promptfoo's `threshold` is mapped here).
        max_ms: the most milliseconds allowed."""
    limit = max_ms if max_ms is not None else value
    if not isinstance(limit, int | float) or isinstance(limit, bool) or limit <= 0:
        raise ValueError(f"latency: needs max_ms, a positive number of milliseconds (got {limit!r})")

    def score(inp: ScoreInput) -> ScoreResult:
        if inp.replayed:
            return ScoreResult(
                "latency", True, 1.0, "replayed: latency not measured", details={"skipped": True}
            )
        ok = inp.latency_ms <= limit
        return ScoreResult(
            "latency",
            ok,
            float(ok),
            f"{inp.latency_ms:.0f} ms (max {limit:g} ms)",
            details={"latency_ms": inp.latency_ms},
        )

    return score


@scorer("cost")
def cost(value: Any = None, *, max_usd: float | None = None) -> ScoreFn:
    """The agent's model calls cost at most `max_usd` (judge cost is not counted).

    Args:
        value: the same as max_usd.
        max_usd: the most US dollars allowed for the whole case (all turns)."""
    limit = max_usd if max_usd is not None else value
    if not isinstance(limit, int | float) or isinstance(limit, bool) or limit < 0:
        raise ValueError(f"cost: needs max_usd, a non-negative number of dollars (got {limit!r})")

    def score(inp: ScoreInput) -> ScoreResult:
        ok = inp.cost_usd <= limit
        return ScoreResult(
            "cost", ok, float(ok), f"${inp.cost_usd:.6f} (max ${limit:g})", details={"cost_usd": inp.cost_usd}
        )

    return score
