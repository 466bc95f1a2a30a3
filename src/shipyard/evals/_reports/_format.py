"""Number formatting and the data every report shares."""

from __future__ import annotations

from shipyard.evals._gate import Check, GateDecision, format_value
from shipyard.evals._stats import CategoryStats, RunSummary
from shipyard.evals._types import EvalRunResult, RepeatResult

VERDICT_MARK = {"PASS": "✅", "FAIL": "❌", "MARGINAL": "⚠️"}


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def interval(s: CategoryStats) -> str:
    return f"{100 * s.ci_low:.1f}–{100 * s.ci_high:.1f}%"


def ms(x: float | None) -> str:
    return "—" if x is None else format_value(x, "latency")


def usd(x: float | None) -> str:
    return "—" if x is None else format_value(x, "cost")


def check_value(check: Check, value: float | None) -> str:
    return "—" if value is None else format_value(value, check.kind)


def check_result(check: Check) -> str:
    if check.skipped:
        return "skipped"
    if check.passed:
        return "pass"
    return "marginal" if check.within_margin else "FAIL"


def title(summary: RunSummary, decision: GateDecision | None) -> str:
    who = f"{summary.agent} {summary.version}".strip() or "eval run"
    if decision is None:
        return f"Eval run {summary.run_id}: {who}"
    stage = f"Gate {decision.stage}" if decision.stage else "Gate"
    return f"{stage}: {decision.verdict} — {who}"


def repeats_of(run: EvalRunResult | list[RepeatResult] | None) -> list[RepeatResult]:
    if run is None:
        return []
    return list(run) if isinstance(run, list) else run.results


def live_latencies(run: EvalRunResult | list[RepeatResult] | None) -> list[float]:
    """Latencies of repeats that really ran (replayed or SKIPPED latency never counts)."""
    return [r.latency_ms for r in repeats_of(run) if not r.replayed and r.outcome != "SKIPPED"]


def thresholds(decision: GateDecision | None) -> dict[str, float]:
    """Minimum pass rate per category from a decision's checks (the safety check included)."""
    out: dict[str, float] = {}
    for c in decision.checks if decision else []:
        if c.kind == "pass_rate" and c.threshold is not None:
            out[c.name.split(".", 1)[1]] = c.threshold
        elif c.kind == "safety" and c.threshold is not None:
            out.setdefault("safety", c.threshold)
    return out
