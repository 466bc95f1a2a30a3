"""Statistics over an eval run: per case (k-of-n, pass@k, pass^k, flaky) and per category
(pass rate with a 95% Wilson interval, latency percentiles, cost with agent and judge apart).

When a case counts as passed is the `case_rule`:

- ``all`` (the default, and what the gates use unless a stage says otherwise): every repeat passed.
  A case that passes 4 of 5 repeats is flaky and counts as *not passed*: a user meets it one time
  in five. This is pass^n, the reliability view (tau-bench).
- ``majority``: more than half the repeats passed.
- ``any``: at least one repeat passed (pass@n, the capability view).

ERROR is never a pass under any rule. A case that did not pass is FAIL when any repeat failed and
ERROR when every non-passing repeat was an error (the agent raised, timed out, or the judge gave
an unreadable verdict), so infrastructure trouble is told apart from wrong answers.

SKIPPED (the case could not run here and says why, e.g. a `scenario` case without a user simulator)
is never a pass either: a skipped case stays in every pass-rate denominator, is not "failing", and
a gate counts it as not run. A case is SKIPPED only when no repeat passed, failed or errored.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from statistics import NormalDist
from typing import Any, Literal

from shipyard.evals._types import CATEGORIES, EvalRunResult, Outcome, RepeatResult

CaseRule = Literal["all", "majority", "any"]
ErrorPolicy = Literal["fail", "exclude"]
CONFIDENCE = 0.95


@functools.lru_cache(maxsize=4096)  # reports ask for the same few (k, n) pairs many times
def wilson_interval(successes: float, n: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (no continuity correction).

    Args:
        successes: how many trials passed (an effective, non-integer count works too).
        n: how many trials there were; with none, the interval is the whole of [0, 1].
        confidence: the two-sided confidence level.
    """
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..{n}, got {successes}")
    # the closed form (what scipy's binomtest(...).proportion_ci(method="wilson") computes), so a
    # summary does not pull scipy into every eval run; tests cross-check it against scipy
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, center - half), min(1.0, center + half))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of the chance that at least one of k samples passes (HumanEval, Chen et al.
    2021): 1 - C(n-c, k) / C(n, k).

    Args:
        n: repeats run; c: repeats passed; k: samples drawn (1 <= k <= n).
    """
    _check_k(n, c, k)
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of the chance that all of k samples pass (pass^k, tau-bench, Yao et al.
    2024): C(c, k) / C(n, k).

    Args:
        n: repeats run; c: repeats passed; k: samples drawn (1 <= k <= n).
    """
    _check_k(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def _check_k(n: int, c: int, k: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"k must be within 1..{n}, got {k}")
    if not 0 <= c <= n:
        raise ValueError(f"c must be within 0..{n}, got {c}")


def _ks(n: int) -> list[int]:
    """Which k to report: 1, a few round numbers, and n itself."""
    return sorted({k for k in (1, 2, 3, 5, 10) if k <= n} | {n}) if n else []


def case_passed(passed: int, n: int, rule: CaseRule) -> bool:
    """Whether a case with `passed` of `n` repeats passing counts as passed under `rule`."""
    if n == 0:
        return False
    if rule == "all":
        return passed == n
    if rule == "majority":
        return passed * 2 > n
    return passed >= 1


@dataclass(slots=True)
class CaseStats:
    """One case over its repeats."""

    case_id: str
    category: str
    n: int
    passed: int
    failed: int
    errors: int
    outcome: Outcome
    flaky: bool
    pass_at_k: dict[int, float] = field(default_factory=dict)
    pass_hat_k: dict[int, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    latency_ms: float | None = None  # mean over live (non-replayed) repeats
    cost_usd: float = 0.0  # agent cost, all repeats
    judge_cost_usd: float = 0.0
    tags: list[str] = field(default_factory=list)
    output: str = ""  # the last non-passing repeat's output, else the last one's
    suite: str = ""
    skipped: int = 0  # repeats SKIPPED (their reason is in `reasons`)

    @property
    def key(self) -> str:
        """`suite/case_id`: case ids are unique within a suite only."""
        return f"{self.suite}/{self.case_id}" if self.suite else self.case_id

    @property
    def k_of_n(self) -> str:
        return f"{self.passed}/{self.n}"

    @property
    def always_failed(self) -> bool:
        return self.n > 0 and self.passed == 0


@dataclass(slots=True)
class CategoryStats:
    """One category (or the whole run, category ``all``). Counts of passed / failed / errors are
    of cases, under the summary's case rule; `repeats` counts case repeats."""

    category: str
    cases: int = 0
    repeats: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    flaky: int = 0
    skipped: int = 0  # cases SKIPPED: not passed, not failed, not run
    pass_rate: float = 0.0  # passed / cases: ERROR and SKIPPED count as not passed
    ci_low: float = 0.0
    ci_high: float = 1.0
    repeat_pass_rate: float = 0.0  # passed repeats / repeats
    latency_p50_ms: float | None = None  # over live repeats; None when every repeat was replayed
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_samples: int = 0
    agent_cost_usd: float = 0.0  # total
    agent_cost_mean_usd: float = 0.0  # per repeat that ran (SKIPPED ones left out)
    judge_cost_usd: float = 0.0
    judge_cost_mean_usd: float = 0.0

    def rate(self, errors: ErrorPolicy = "fail") -> tuple[float, float, float, int]:
        """(point, wilson low, wilson high, denominator) of the case pass rate.

        Args:
            errors: ``fail`` counts ERROR cases as not passed; ``exclude`` leaves them out of the
                denominator (only for soft checks: a hard check always counts them as failures).
                SKIPPED cases always stay in the denominator, as not passed.
        """
        n = self.cases if errors == "fail" else self.cases - self.errors
        if n <= 0:
            return (0.0, 0.0, 1.0, 0)
        low, high = wilson_interval(self.passed, n)
        return (self.passed / n, low, high, n)


@dataclass(slots=True)
class RunSummary:
    """Everything the gate and the reports need about one run. JSON-serialisable via `to_dict`."""

    run_id: str = ""
    agent: str = ""
    version: str = ""
    stage: str | None = None
    suites: list[str] = field(default_factory=list)
    case_rule: CaseRule = "all"
    overall: CategoryStats = field(default_factory=lambda: CategoryStats("all"))
    categories: dict[str, CategoryStats] = field(default_factory=dict)
    cases: list[CaseStats] = field(default_factory=list)
    planned_cases: int | None = None  # how many cases the suites hold; None when unknown
    interrupted: bool = False
    stopped_reason: str | None = None  # e.g. "budget exhausted", "interrupted (Ctrl-C)"
    replayed_repeats: int = 0

    @property
    def complete(self) -> bool:
        """The run finished every case it planned."""
        if self.interrupted or self.stopped_reason:
            return False
        return self.planned_cases is None or len(self.cases) >= self.planned_cases

    def case(self, key: str) -> CaseStats | None:
        """The case with this key (`suite/case_id`), or with this bare case id."""
        return next((c for c in self.cases if key in (c.key, c.case_id)), None)

    def failing_cases(self) -> list[CaseStats]:
        """Cases that FAILed or were ERROR, worst first (always failing, then by pass fraction)."""
        bad = [c for c in self.cases if c.outcome in (Outcome.FAIL, Outcome.ERROR)]
        return sorted(bad, key=lambda c: (c.passed / c.n if c.n else 0.0, c.category, c.key))

    def skipped_cases(self) -> list[CaseStats]:
        """Cases that did not run here (SKIPPED), each with its reason in `reasons`."""
        return [c for c in self.cases if c.outcome == Outcome.SKIPPED]

    def flaky_cases(self) -> list[CaseStats]:
        return [c for c in self.cases if c.flaky]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["complete"] = self.complete
        return d

    def with_case_rule(self, rule: CaseRule) -> RunSummary:
        """A copy whose case outcomes and category pass counts follow another case rule
        (latency and cost do not depend on it)."""
        if rule == self.case_rule:
            return self
        out = RunSummary.from_dict(self.to_dict())
        out.case_rule = rule
        for c in out.cases:
            c.outcome = case_outcome(c.passed, c.failed, c.errors, c.n, rule)
        for s in [out.overall, *out.categories.values()]:
            _count_cases(s, [c for c in out.cases if s.category in ("all", c.category)])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """Rebuild a summary stored with `to_dict` (JSON turns the pass@k keys into strings)."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        kw["overall"] = _category_from(data.get("overall") or {"category": "all"})
        kw["categories"] = {k: _category_from(v) for k, v in (data.get("categories") or {}).items()}
        kw["cases"] = [_case_from(c) for c in data.get("cases") or []]
        return cls(**kw)


def _category_from(d: Mapping[str, Any]) -> CategoryStats:
    names = {f.name for f in fields(CategoryStats)}
    return CategoryStats(**{k: v for k, v in d.items() if k in names})


def _case_from(d: Mapping[str, Any]) -> CaseStats:
    names = {f.name for f in fields(CaseStats)}
    kw = {k: v for k, v in d.items() if k in names}
    for key in ("pass_at_k", "pass_hat_k"):
        kw[key] = {int(k): float(v) for k, v in (d.get(key) or {}).items()}
    if "outcome" in kw:
        kw["outcome"] = Outcome(kw["outcome"])
    return CaseStats(**kw)


def case_outcome(passed: int, failed: int, errors: int, n: int, rule: CaseRule) -> Outcome:
    """A case's outcome from its repeat counts: PASS under `rule`, else FAIL when any repeat failed,
    ERROR when any errored, SKIPPED when the rest were skipped (never PASS with nothing run)."""
    if case_passed(passed, n, rule):
        return Outcome.PASS
    if failed:
        return Outcome.FAIL
    return Outcome.ERROR if errors or n == 0 else Outcome.SKIPPED


def percentiles(values: Iterable[float]) -> tuple[float | None, float | None, float | None]:
    """p50, p95, p99 (linear interpolation between closest ranks, numpy's default method); Nones
    when there are no values. Plain Python, so an eval run does not import numpy for three numbers."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return (None, None, None)
    p50, p95, p99 = (_linear_quantile(ordered, q) for q in (0.50, 0.95, 0.99))
    return (p50, p95, p99)


def _linear_quantile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values: rank (n-1)q, interpolated between its neighbours (written as
    numpy's lerp, so the figures agree to the last bit)."""
    rank = (len(ordered) - 1) * q
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    a, b, t = ordered[lo], ordered[hi], rank - lo
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def _timed(r: RepeatResult) -> bool:
    """Whether a repeat's latency counts: it ran live (not replayed, not SKIPPED, whose 0 ms would
    pull the percentiles down and let a latency gate pass)."""
    return not r.replayed and r.outcome != Outcome.SKIPPED


def _judge_cost(r: RepeatResult) -> float:
    # the runner may total the judges' cost on the repeat, or leave it on each score
    return r.judge_cost_usd or sum(s.judge_cost_usd for s in r.scores)


def summarize_case(repeats: list[RepeatResult], rule: CaseRule = "all") -> CaseStats:
    """Fold the repeats of one case (same suite and case id) into its statistics."""
    first = repeats[0]
    n = len(repeats)
    passed = sum(r.outcome == Outcome.PASS for r in repeats)
    failed = sum(r.outcome == Outcome.FAIL for r in repeats)
    skipped = sum(r.outcome == Outcome.SKIPPED for r in repeats)
    errors = n - passed - failed - skipped
    outcome = case_outcome(passed, failed, errors, n, rule)
    reasons: list[str] = []
    for r in repeats:
        if r.outcome == Outcome.PASS:
            continue
        said = "skipped" if r.outcome == Outcome.SKIPPED else "error"
        # an ERROR's error is its first undecided score's reason: said once, as the error
        for reason in ([f"{said}: {r.error}"] if r.error else []) + [x for x in r.reasons if x != r.error]:
            if reason not in reasons:
                reasons.append(reason)
    live = [r.latency_ms for r in repeats if _timed(r)]
    shown = next((r for r in reversed(repeats) if r.outcome != Outcome.PASS), repeats[-1])
    return CaseStats(
        case_id=first.case_id,
        category=first.category,
        n=n,
        passed=passed,
        failed=failed,
        errors=errors,
        outcome=outcome,
        flaky=0 < passed < n,
        pass_at_k={k: pass_at_k(n, passed, k) for k in _ks(n)},
        pass_hat_k={k: pass_hat_k(n, passed, k) for k in _ks(n)},
        reasons=reasons,
        latency_ms=(sum(live) / len(live)) if live else None,
        cost_usd=sum(r.cost_usd for r in repeats),
        judge_cost_usd=sum(_judge_cost(r) for r in repeats),
        tags=list(first.tags),
        output=shown.output,
        suite=first.suite,
        skipped=skipped,
    )


def _count_cases(s: CategoryStats, cases: list[CaseStats]) -> None:
    s.cases = len(cases)
    s.passed = sum(c.outcome == Outcome.PASS for c in cases)
    s.errors = sum(c.outcome == Outcome.ERROR for c in cases)
    s.skipped = sum(c.outcome == Outcome.SKIPPED for c in cases)
    s.failed = s.cases - s.passed - s.errors - s.skipped
    s.flaky = sum(c.flaky for c in cases)
    s.pass_rate, s.ci_low, s.ci_high, _ = s.rate("fail")


def summarize_category(category: str, cases: list[CaseStats], repeats: list[RepeatResult]) -> CategoryStats:
    """Fold cases (already summarised) and their repeats into one category's statistics."""
    s = CategoryStats(category)
    _count_cases(s, cases)
    s.repeats = len(repeats)
    if s.repeats:
        s.repeat_pass_rate = sum(r.outcome == Outcome.PASS for r in repeats) / s.repeats
    live = [r.latency_ms for r in repeats if _timed(r)]
    s.latency_p50_ms, s.latency_p95_ms, s.latency_p99_ms = percentiles(live)
    s.latency_samples = len(live)
    s.agent_cost_usd = sum(c.cost_usd for c in cases)
    s.judge_cost_usd = sum(c.judge_cost_usd for c in cases)
    ran = sum(r.outcome != Outcome.SKIPPED for r in repeats)  # a skipped repeat cost nothing: no mean
    if ran:
        s.agent_cost_mean_usd = s.agent_cost_usd / ran
        s.judge_cost_mean_usd = s.judge_cost_usd / ran
    return s


def summarize(
    results: Iterable[RepeatResult],
    *,
    case_rule: CaseRule = "all",
    run_id: str = "",
    agent: str = "",
    version: str = "",
    stage: str | None = None,
    suites: Iterable[str] = (),
    planned_cases: int | None = None,
    interrupted: bool = False,
    stopped_reason: str | None = None,
) -> RunSummary:
    """Compute a run's statistics from its repeat results.

    Args:
        results: every repeat of every case, in any order; repeats are grouped by suite and case id.
        case_rule: when a case counts as passed (see the module docstring).
        run_id, agent, version, stage, suites: recorded on the summary for reports and the store.
        planned_cases: how many cases the suites hold, so a partial run is visible.
        interrupted, stopped_reason: whether (and why) the run stopped early.
    """
    by_case: dict[tuple[str, str], list[RepeatResult]] = {}
    for r in results:
        by_case.setdefault((r.suite, r.case_id), []).append(r)
    cases = [summarize_case(sorted(rs, key=lambda r: r.repeat), case_rule) for rs in by_case.values()]
    order = {c: i for i, c in enumerate(CATEGORIES)}
    cats = sorted({c.category for c in cases}, key=lambda c: (order.get(c, len(order)), c))
    all_repeats = [r for rs in by_case.values() for r in rs]
    categories = {
        cat: summarize_category(
            cat,
            [c for c in cases if c.category == cat],
            [r for r in all_repeats if r.category == cat],
        )
        for cat in cats
    }
    return RunSummary(
        run_id=run_id,
        agent=agent,
        version=version,
        stage=stage,
        suites=list(suites),
        case_rule=case_rule,
        overall=summarize_category("all", cases, all_repeats),
        categories=categories,
        cases=cases,
        planned_cases=planned_cases,
        interrupted=interrupted,
        stopped_reason=stopped_reason,
        replayed_repeats=sum(r.replayed for r in all_repeats),
    )


def summarize_run(run: EvalRunResult, case_rule: CaseRule = "all") -> RunSummary:
    """`summarize` for a runner's EvalRunResult: cases never started (budget spent, Ctrl-C) make the
    summary incomplete, so a gate can never mistake a partial run for a passing one.

    Args:
        run: the runner's result.
        case_rule: when a case counts as passed (see the module docstring).
    """
    ran = {f"{r.suite}/{r.case_id}" if r.suite else r.case_id for r in run.results}
    never = {key.rsplit("#", 1)[0] for key in run.skipped}
    if run.interrupted:
        stopped: str | None = "interrupted (Ctrl-C)"
    elif run.budget_exhausted:
        stopped = f"budget of ${run.budget_usd} exhausted" if run.budget_usd else "budget exhausted"
    elif run.skipped:
        stopped = f"{len(run.skipped)} repeat(s) never started"
    else:
        stopped = None
    return summarize(
        run.results,
        case_rule=case_rule,
        run_id=run.run_id,
        agent=run.agent,
        version=run.version,
        stage=run.stage,
        suites=run.suites,
        planned_cases=len(ran | never),
        interrupted=run.interrupted,
        stopped_reason=stopped,
    )
