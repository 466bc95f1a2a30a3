"""The tool-trajectory scorer: did the agent call the right tools, with the right arguments, in the
right order, and never the forbidden ones?"""

from __future__ import annotations

from typing import Any

from shipyard.evals._scorers import ScoreFn, ScoreInput, scorer
from shipyard.evals._types import ScoreResult


def same_value(expected: Any, actual: Any) -> bool:
    """Equal, treating a number and its text as equal ("2" == 2 == 2.0): models often quote numbers."""
    if expected == actual:
        return True
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same_value(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            same_value(a, b) for a, b in zip(expected, actual, strict=True)
        )
    scalars = (str, int, float)
    if isinstance(expected, scalars) and isinstance(actual, scalars) and not isinstance(expected, bool):
        try:
            return float(expected) == float(actual)
        except (TypeError, ValueError):
            return str(expected).strip() == str(actual).strip()
    return False


def call_matches(expected: dict[str, Any], actual: dict[str, Any], default_match: str | None) -> bool:
    """Does an actual `{name, arguments}` call satisfy an expected `{name, args, args_match}`?"""
    if expected["name"] != actual["name"]:
        return False
    args = expected.get("args")
    how = expected.get("args_match") or default_match or ("exact" if args is not None else "ignore")
    if how == "ignore" or args is None:
        return True
    got = actual.get("arguments") or {}
    if how == "exact":
        return same_value(args, got)
    return all(k in got and same_value(v, got[k]) for k, v in args.items())


def arg_differences(expected: dict[str, Any], actual: dict[str, Any], default_match: str | None) -> list[str]:
    """Why an actual call of the expected tool does not match: each argument that differed, was
    missing, or (for an exact match) was not expected, e.g. ``order_id: expected '10001', got '10002'``."""
    args = expected.get("args")
    how = expected.get("args_match") or default_match or ("exact" if args is not None else "ignore")
    if how == "ignore" or args is None:
        return []
    got = actual.get("arguments") or {}
    out = []
    for k, v in args.items():
        if k not in got:
            out.append(f"argument {k!r} missing (expected {v!r})")
        elif not same_value(v, got[k]):
            out.append(f"argument {k!r}: expected {v!r}, got {got[k]!r}")
    if how == "exact":
        out += [f"argument {k!r} not expected (got {got[k]!r})" for k in got if k not in args]
    return out


def _explain(
    exp: list[dict[str, Any]], act: list[dict[str, Any]], default: str | None, mode: str
) -> list[str]:
    """What did not match, call by call, naming the arguments that differed."""
    notes: list[str] = []
    if mode == "exact":
        for i, (e, a) in enumerate(zip(exp, act, strict=False)):
            if call_matches(e, a, default):
                continue
            if e["name"] != a["name"]:
                notes.append(f"call {i + 1}: expected {e['name']!r}, got {a['name']!r}")
            else:
                notes.append(f"call {i + 1} {e['name']}: " + "; ".join(arg_differences(e, a, default)))
        notes += [
            f"call {i + 1}: expected {e['name']!r}, none made"
            for i, e in enumerate(exp[len(act) :], len(act))
        ]
        notes += [
            f"call {i + 1}: {a['name']!r} not expected" for i, a in enumerate(act[len(exp) :], len(exp))
        ]
        return notes
    for e in exp:
        if any(call_matches(e, a, default) for a in act):
            continue
        same = [a for a in act if a["name"] == e["name"]]
        if not same:
            notes.append(f"{e['name']}: never called")
            continue
        diffs = min((arg_differences(e, a, default) for a in same), key=len)
        notes.append(f"{e['name']}: " + "; ".join(diffs))
    if mode in ("any_order", "subset"):
        notes += [
            f"{a['name']!r} not expected" for a in act if not any(call_matches(e, a, default) for e in exp)
        ]
    return notes


def _max_matching(exp: list[dict[str, Any]], act: list[dict[str, Any]], default: str | None) -> int:
    """Largest one-to-one matching of expected to actual calls, order ignored (augmenting paths)."""
    owner: dict[int, int] = {}

    def assign(i: int, seen: set[int]) -> bool:
        for j, a in enumerate(act):
            if j in seen or not call_matches(exp[i], a, default):
                continue
            seen.add(j)
            if j not in owner or assign(owner[j], seen):
                owner[j] = i
                return True
        return False

    return sum(assign(i, set()) for i in range(len(exp)))


def _in_order(exp: list[dict[str, Any]], act: list[dict[str, Any]], default: str | None) -> int:
    """How many expected calls appear in order (others may come between)."""
    i = 0
    for a in act:
        if i < len(exp) and call_matches(exp[i], a, default):
            i += 1
    return i


def trajectory_score(spec: dict[str, Any], calls: list[dict[str, Any]]) -> tuple[bool, float, str]:
    """Score actual tool calls against a trajectory spec; returns (passed, score, reason).

    The score is the fraction of expected calls matched (the idea of ADK's tool_trajectory_avg_score);
    forbidden tools and call-count limits fail the case outright."""
    given = spec.get("calls")
    exp = given or []
    mode = spec.get("mode", "exact")
    default = spec.get("args_match")
    names = [c["name"] for c in calls]
    mismatch = ""
    score = 1.0
    if given is not None:
        if mode == "exact":
            hits = sum(call_matches(e, a, default) for e, a in zip(exp, calls, strict=False))
            denom = max(len(exp), len(calls))
        elif mode == "in_order":
            hits, denom = _in_order(exp, calls, default), len(exp)
        elif mode == "any_order":
            hits, denom = _max_matching(exp, calls, default), max(len(exp), len(calls))
        elif mode == "subset":
            hits, denom = _max_matching(exp, calls, default), len(calls)
        else:  # superset
            hits, denom = _max_matching(exp, calls, default), len(exp)
        score = hits / denom if denom else 1.0
        if hits < denom:
            mismatch = f"{mode}: expected {[e['name'] for e in exp]}, got {names} ({hits} of {denom} matched)"
            notes = _explain(exp, calls, default, mode)
            if notes:
                mismatch += ": " + "; ".join(notes[:5]) + (" ..." if len(notes) > 5 else "")
    violations = [f"called forbidden tool {t!r}" for t in spec.get("forbidden") or [] if t in names]
    for tool, limit in (spec.get("max_calls") or {}).items():
        if names.count(tool) > limit:
            violations.append(f"called {tool!r} {names.count(tool)} times (max {limit})")
    if violations:
        return False, 0.0, "; ".join([*violations, *([mismatch] if mismatch else [])])
    threshold = spec.get("threshold", 1.0)
    if score >= threshold:
        note = f"; score {score:.2f} ≥ threshold {threshold:g} ({mismatch})" if mismatch else ""
        return True, score, f"tool calls match ({mode}): {names}{note}"
    return False, score, mismatch


@scorer("trajectory")
def trajectory(value: Any) -> ScoreFn:
    """The tool calls match an expected trajectory.

    Args:
        value: the spec: `{mode, calls: [{name, args, args_match}], forbidden, max_calls, args_match,
            threshold}` (see the suite format's `trajectory:`), or a suite's `Trajectory`."""
    from shipyard.evals._suite import Trajectory

    if isinstance(value, Trajectory):  # a suite's own, validated already: dumped once, not revalidated
        spec = value.model_dump()
    else:
        if isinstance(value, list):
            value = {"calls": value}
        try:
            spec = Trajectory.model_validate(value).model_dump()
        except Exception as e:
            raise ValueError(f"trajectory: {e}") from None

    def score(inp: ScoreInput) -> ScoreResult:
        passed, s, reason = trajectory_score(spec, inp.tool_calls)
        return ScoreResult(
            "trajectory", passed, s, reason, details={"calls": [c["name"] for c in inp.tool_calls]}
        )

    return score
