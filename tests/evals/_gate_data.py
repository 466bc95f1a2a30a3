"""Building real RepeatResults for the stats, gate, compare, report and CLI tests."""

from __future__ import annotations

from shipyard.evals import RepeatResult, ScoreResult


def rep(
    case_id: str,
    outcome: str = "PASS",
    *,
    category: str = "functional",
    repeat: int = 0,
    latency_ms: float = 100.0,
    cost_usd: float = 0.001,
    judge_cost_usd: float = 0.0,
    replayed: bool = False,
    suite: str = "smoke",
    reason: str = "expected '5'",
) -> RepeatResult:
    """One repeat; a FAIL carries a failing score with `reason`, an ERROR an error message."""
    scores = [
        ScoreResult(
            "contains",
            outcome == "PASS",
            1.0 if outcome == "PASS" else 0.0,
            "" if outcome == "PASS" else reason,
        )
    ]
    if outcome == "ERROR":
        scores = [ScoreResult("llm_judge", None, error="unreadable verdict")]
    return RepeatResult(
        case_id=case_id,
        category=category,
        repeat=repeat,
        outcome=outcome,  # type: ignore[arg-type]
        scores=scores,
        output=f"output of {case_id}",
        status="completed",
        latency_ms=latency_ms,
        cost_usd=cost_usd,
        judge_cost_usd=judge_cost_usd,
        replayed=replayed,
        suite=suite,
    )


def case(case_id: str, outcomes: str, **kw: object) -> list[RepeatResult]:
    """Repeats of one case from a string like "PPF" (P pass, F fail, E error)."""
    names = {"P": "PASS", "F": "FAIL", "E": "ERROR"}
    return [rep(case_id, names[o], repeat=i, **kw) for i, o in enumerate(outcomes)]  # type: ignore[arg-type]


def cases(prefix: str, n: int, outcomes: str = "P", **kw: object) -> list[RepeatResult]:
    """`n` cases named prefix-0..n-1, each with the same repeat outcomes."""
    return [r for i in range(n) for r in case(f"{prefix}-{i}", outcomes, **kw)]
