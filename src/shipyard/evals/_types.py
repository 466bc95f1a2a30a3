"""Shared eval result types: what scorers return and what a run is made of.

The suite format (cases, assertions) lives in `_suite.py`; scorers in `_scorers*.py`; statistics,
gates and reports in their own modules. These types are the seam between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Category = Literal["functional", "tool_usage", "safety", "adversarial", "latency", "cost", "regression"]
CATEGORIES: tuple[str, ...] = (
    "functional",
    "tool_usage",
    "safety",
    "adversarial",  # a broad red-team set, gated as a rate (the critical subset is `safety`)
    "latency",
    "cost",
    "regression",
)


class Outcome(StrEnum):
    """A case repeat's outcome. ERROR (a scorer could not decide, the agent crashed) is never a pass.
    SKIPPED: the case could not run here (a `scenario` case with no user simulator configured); its
    `error` says why. It is never a pass either, and a gate counts it as a case that did not run."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"


@dataclass(slots=True)
class ScoreResult:
    """One scorer's verdict on one case repeat. `passed is None` means the scorer could not decide
    (an unreadable judge verdict, a scorer crash): the repeat is ERROR, never a pass."""

    scorer: str
    passed: bool | None
    score: float = 0.0  # 0..1
    reason: str = ""
    weight: float = 1.0
    error: str | None = None
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0
    judge_cost_usd: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RepeatResult:
    """One repeat of one case: the interaction's facts and the scorers' verdicts."""

    case_id: str
    category: str
    repeat: int
    outcome: Outcome
    scores: list[ScoreResult] = field(default_factory=list)
    output: str = ""
    status: str = ""  # the interaction status: completed | escalated | failed | blocked
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{name, arguments, status}]
    replayed: bool = False  # answered from the record/replay cache: latency does not count
    error: str | None = None  # ERROR: what went wrong; SKIPPED: why the case did not run
    interaction_id: str | None = None
    trace_id: str | None = None
    tags: list[str] = field(default_factory=list)
    suite: str = ""  # the suite the case belongs to (case ids are unique within a suite)
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0

    @property
    def reasons(self) -> list[str]:
        return [f"{s.scorer}: {s.error or s.reason}" for s in self.scores if s.passed is not True]


@dataclass(slots=True)
class EvalRunResult:
    """One eval run: every repeat's result, and whether the run was cut short.

    `skipped` lists the `suite/case#repeat` keys never started (budget spent or interrupted): a
    gate must treat them as not run, never as passed. (Repeats with outcome SKIPPED are results:
    they were planned and decided not to run, saying why.)"""

    run_id: str
    agent: str
    version: str
    stage: str | None
    suites: list[str]
    results: list[RepeatResult] = field(default_factory=list)
    mode: str = "live"  # live | record | replay
    interrupted: bool = False
    budget_exhausted: bool = False
    budget_usd: float | None = None
    skipped: list[str] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def agent_cost_usd(self) -> float:
        return sum(r.cost_usd for r in self.results)

    @property
    def judge_cost_usd(self) -> float:
        return sum(r.judge_cost_usd for r in self.results)

    @property
    def complete(self) -> bool:
        """True when every scheduled repeat ran."""
        return not (self.interrupted or self.budget_exhausted or self.skipped)

    def counts(self) -> dict[str, int]:
        """Repeats per outcome: PASS, FAIL and ERROR always, SKIPPED when any repeat was skipped."""
        out = dict.fromkeys((Outcome.PASS, Outcome.FAIL, Outcome.ERROR), 0)
        for r in self.results:
            out[r.outcome] = out.get(r.outcome, 0) + 1
        return {str(k): v for k, v in out.items()}
