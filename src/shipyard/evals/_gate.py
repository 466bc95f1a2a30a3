"""The gate: a stage policy applied to a run's statistics gives PASS, FAIL or MARGINAL, with every
number and threshold it was decided on.

Rules a careful team can rely on (the gate fails closed):

- ERROR is never a pass. Hard checks (safety, and whatever the policy lists under `hard`) always
  count ERROR as failure; the safety check also needs every repeat of a case to pass.
- Safety cases always get the hard 100% safety check, whether the policy names it or not; only a
  policy that gives a written reason (`safety.relaxed`) may lower it, leave ERROR out or make it soft.
- A category no `min_pass_rate` names needs every case to pass (ERROR counts as failure): a policy
  with no thresholds passes only a run in which every case passed.
- A run that did not finish (interrupted, budget exhausted, no cases, still `running` in the store)
  fails the gate, and so does one that left out any case of the stage's suites (`expected_cases`)
  or SKIPPED any (a skipped case did not run).
- A threshold on a category no case ran in fails: a typo in a suite must not pass silently.
- MARGINAL only when every failed check is soft and missed its threshold by at most the policy's
  `marginal_margin`; it ships only with a recorded manual approval.
- Regression: every case that passed in the baseline and does not now is listed. Without repeats
  each counts. With repeats a paired sign test over per-case pass fractions (the exact McNemar test
  when each case ran once) decides whether the run as a whole got worse; when it did, every newly
  failing case counts, otherwise only cases whose own repeats show a significant drop (one-sided
  Fisher exact test) count, and the rest are reported as noise.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from shipyard.config import SafetyPolicy, StagePolicy
from shipyard.errors import NotFoundError
from shipyard.evals._compare import CaseChange, compare_runs
from shipyard.evals._stats import CaseRule, CaseStats, CategoryStats, RunSummary, summarize, wilson_interval
from shipyard.evals._types import Outcome, RepeatResult, ScoreResult

if TYPE_CHECKING:
    from shipyard.store import Store


class GateVerdict(StrEnum):
    """What a gate decided: PASS ships, FAIL does not, MARGINAL needs a recorded approval."""

    PASS = "PASS"
    FAIL = "FAIL"
    MARGINAL = "MARGINAL"

    @property
    def exit_code(self) -> int:
        """0 PASS, 1 FAIL, 3 MARGINAL (awaiting approval): `shipyard gate`'s exit code."""
        return _EXIT_CODES[self]


_EXIT_CODES = {GateVerdict.PASS: 0, GateVerdict.FAIL: 1, GateVerdict.MARGINAL: 3}


@dataclass(slots=True)
class Check:
    """One comparison of a number against a threshold.

    `margin` is how far past the threshold a soft check may land and still be MARGINAL, in the
    check's own units (None: this check can never be marginal)."""

    name: str
    kind: str  # completeness | pass_rate | safety | latency | cost | regression
    observed: float | None
    threshold: float | None
    comparator: Literal[">=", "<="]
    passed: bool
    hard: bool
    margin: float | None = None
    detail: str = ""
    skipped: bool = False  # nothing to measure (e.g. every repeat replayed, no baseline): passes, says so

    @property
    def within_margin(self) -> bool:
        """Failed, soft, and no further past the threshold than the margin."""
        if self.passed or self.hard or self.margin is None or self.observed is None or self.threshold is None:
            return False
        gap = self.threshold - self.observed if self.comparator == ">=" else self.observed - self.threshold
        return gap <= self.margin + 1e-12

    def describe(self) -> str:
        """E.g. ``pass_rate.functional: 0.850, needs >= 0.900``."""
        if self.observed is None or self.threshold is None:
            return f"{self.name}: {self.detail}"
        observed, threshold = format_value(self.observed, self.kind), format_value(self.threshold, self.kind)
        return f"{self.name}: {observed}, needs {self.comparator} {threshold}"


@dataclass(slots=True)
class Regression:
    """How the candidate's cases compare with the baseline's."""

    baseline_run_id: str
    matched: int
    newly_failing: list[CaseChange] = field(default_factory=list)
    counted: list[str] = field(default_factory=list)  # newly failing cases judged real
    paired: bool = False  # repeats were available, so a paired test was used
    worse: int = 0
    better: int = 0
    p_value: float | None = None  # sign test over per-case pass fractions
    case_p_values: dict[str, float] = field(default_factory=dict)  # Fisher exact, per newly failing case


INCIDENT_TAG = "incident:"
"""The tag of a case promoted from an incident (`incident:<id>`); gate reasons name the incident."""

GATE_RULES = 2
"""The version of the rules above that a decision was made under (on every stored decision as
`rules`). 2: fail closed (safety always hard, unnamed categories need every case, every case of the
stage's suites must run). A decision made before (no `rules`) no longer lets a version ship."""


@dataclass(slots=True)
class GateDecision:
    """A verdict with the checks and reasons it was made on."""

    verdict: GateVerdict
    checks: list[Check] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    stage: str | None = None
    run_id: str = ""
    agent: str = ""
    version: str = ""
    baseline_run_id: str | None = None
    regression: Regression | None = None
    failing_cases: list[str] = field(default_factory=list)
    rules: int = GATE_RULES

    @property
    def exit_code(self) -> int:
        """0 PASS, 1 FAIL, 3 MARGINAL (awaiting approval)."""
        return self.verdict.exit_code

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for c, check in zip(d["checks"], self.checks, strict=True):
            c["within_margin"] = check.within_margin
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        check_names = set(Check.__dataclass_fields__)
        checks = [Check(**{k: v for k, v in c.items() if k in check_names}) for c in data.get("checks", [])]
        reg = data.get("regression")
        regression = None
        if reg:
            reg = dict(reg)
            reg["newly_failing"] = [CaseChange(**c) for c in reg.get("newly_failing", [])]
            regression = Regression(**reg)
        names = set(cls.__dataclass_fields__) - {"checks", "regression", "verdict"}
        kw = {k: v for k, v in data.items() if k in names}
        kw.setdefault("rules", 1)  # stored before decisions said which rules made them
        return cls(GateVerdict(data["verdict"]), checks=checks, regression=regression, **kw)


def format_value(value: float, kind: str) -> str:
    """A check's number as people read it: rates to 3 places, latency in ms, cost in dollars."""
    if kind == "latency":
        return f"{value:,.0f} ms"
    if kind == "cost":
        if abs(value) >= 10:
            return f"${value:,.2f}"
        return f"${value:.4f}" if abs(value) >= 0.01 or value == 0 else f"${value:.6f}"
    if kind in ("pass_rate", "safety"):
        return f"{value:.3f}"
    return f"{value:g}"


def _strict_safety(cases: list[CaseStats]) -> tuple[int, int]:
    """(passed, total): a case passes only when every repeat passed; ERROR is a failure."""
    return sum(c.n > 0 and c.passed == c.n for c in cases), len(cases)


def _completeness(summary: RunSummary, expected_cases: Collection[str] | None) -> Check:
    ran = len(summary.cases)
    planned = summary.planned_cases if summary.planned_cases is not None else ran
    why = summary.stopped_reason or ("interrupted" if summary.interrupted else "")
    keys = {c.key for c in summary.cases}
    missing = sorted(set(expected_cases) - keys) if expected_cases is not None else []
    if expected_cases is not None:
        planned = max(planned, len(keys | set(expected_cases)))
    # SKIPPED cases (issue 15: a `scenario` case with no user simulator) did not run: not run
    # completely, so they fail completeness like missing cases, with their reasons (F3's edit)
    skipped = summary.skipped_cases()
    if ran == 0:
        detail = "no cases ran" + (f" ({why})" if why else "")
    elif not summary.complete:
        detail = f"the run did not finish: {ran} of {planned} cases ran" + (f" ({why})" if why else "")
    elif missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        detail = (
            f"{len(missing)} case(s) of the stage's suites did not run ({shown}); "
            "a gate decides only on a run of every case of its suites"
        )
    elif skipped:
        shown = "; ".join(f"{c.key}: {c.reasons[0] if c.reasons else 'no reason given'}" for c in skipped[:5])
        detail = (
            f"{len(skipped)} case(s) were SKIPPED and did not run ({shown}"
            f"{' ...' if len(skipped) > 5 else ''}); a gate decides only on a run of every case"
        )
    else:
        detail = f"all {ran} cases ran"
    return Check(
        name="completeness",
        kind="completeness",
        observed=float(ran - len(missing) - len(skipped)),
        threshold=float(max(planned, 1)),
        comparator=">=",
        passed=ran > 0 and summary.complete and not missing and not skipped,
        hard=True,
        detail=detail,
    )


def _pass_rate_check(
    category: str, stats: CategoryStats | None, minimum: float, policy: StagePolicy, case_rule: str
) -> Check:
    hard = "pass_rate" in policy.hard
    name = f"pass_rate.{category}"
    if stats is None or stats.cases == 0:
        return Check(
            name,
            "pass_rate",
            None,
            minimum,
            ">=",
            False,
            hard,
            None,
            f"no {category} cases ran; the stage's suites must hold some for this threshold",
        )
    errors = "fail" if hard else policy.errors
    point, low, high, n = stats.rate(errors)
    if n == 0:
        return Check(
            name,
            "pass_rate",
            None,
            minimum,
            ">=",
            False,
            hard,
            None,
            f"every {category} case was ERROR; nothing passed or failed to measure",
        )
    observed = low if policy.on == "wilson_lower" else point
    estimate = "Wilson lower bound" if policy.on == "wilson_lower" else "point estimate"
    detail = (
        f"{stats.passed}/{n} cases passed = {point:.3f} (95% CI {low:.3f}-{high:.3f}); "
        f"compared: {estimate}; case rule: {case_rule}"
    )
    if stats.errors:
        detail += f"; {stats.errors} ERROR case(s) " + (
            "counted as failures" if errors == "fail" else "left out"
        )
    return Check(
        name, "pass_rate", observed, minimum, ">=", observed >= minimum, hard, policy.marginal_margin, detail
    )


def _safety_check(summary: RunSummary, policy: StagePolicy) -> Check:
    """The safety check: hard, 100%, every repeat, ERROR a failure; relaxed only with a reason."""
    safety = policy.safety or SafetyPolicy()
    cat = safety.category
    cases = [c for c in summary.cases if c.category == cat]
    relaxed = safety.relaxed is not None
    hard = "safety" in policy.hard or not relaxed
    minimum = safety.min_pass_rate
    if not cases:
        return Check(
            "safety",
            "safety",
            None,
            minimum,
            ">=",
            False,
            hard,
            None,
            f"no {cat} cases ran; add the safety suite to this stage",
        )
    errored = [c for c in cases if c.errors > 0]
    if safety.errors == "exclude" and relaxed:
        cases = [c for c in cases if c.errors == 0]
    passed, n = _strict_safety(cases)
    if n == 0:
        return Check(
            "safety", "safety", None, minimum, ">=", False, hard, None,
            f"every {cat} case had ERROR repeats; nothing passed or failed to measure",
        )  # fmt: skip
    low, high = wilson_interval(passed, n)
    counted = "left out (relaxed)" if safety.errors == "exclude" and relaxed else "counts as failure"
    detail = f"{passed}/{n} {cat} cases passed every repeat (95% CI {low:.3f}-{high:.3f}); ERROR {counted}"
    if errored:
        detail += f"; {len(errored)} case(s) had ERROR repeats"
    if relaxed:
        detail += f"; relaxed by the policy: {safety.relaxed}"
    rate = passed / n
    # always the point estimate: a Wilson lower bound never reaches 1.0
    return Check(
        "safety", "safety", rate, minimum, ">=", rate >= minimum, hard, policy.marginal_margin, detail
    )


def _latency_check(summary: RunSummary, policy: StagePolicy) -> Check:
    assert policy.max_p95_latency_ms is not None
    o = summary.overall
    hard = "latency" in policy.hard
    margin = policy.max_p95_latency_ms * policy.marginal_margin
    if o.latency_p95_ms is None:
        return Check(
            "latency.p95",
            "latency",
            None,
            policy.max_p95_latency_ms,
            "<=",
            True,
            hard,
            margin,
            "not measured: every repeat was replayed, and replayed latency never counts",
            skipped=True,
        )
    detail = (
        f"p50 {o.latency_p50_ms:.0f} ms, p95 {o.latency_p95_ms:.0f} ms, p99 {o.latency_p99_ms:.0f} ms "
        f"over {o.latency_samples} live repeats"
    )
    if summary.replayed_repeats:
        detail += f" ({summary.replayed_repeats} replayed repeats left out)"
    return Check(
        "latency.p95",
        "latency",
        o.latency_p95_ms,
        policy.max_p95_latency_ms,
        "<=",
        o.latency_p95_ms <= policy.max_p95_latency_ms,
        hard,
        margin,
        detail,
    )


def _cost_check(summary: RunSummary, policy: StagePolicy) -> Check:
    assert policy.max_mean_cost_usd is not None
    o = summary.overall
    hard = "cost" in policy.hard
    detail = (
        f"agent ${o.agent_cost_usd:.4f} over {o.repeats} interactions "
        f"(judge ${o.judge_cost_usd:.4f}, not counted)"
    )
    if summary.replayed_repeats:
        detail += f"; {summary.replayed_repeats} replayed repeats may report no cost"
    return Check(
        "cost.mean",
        "cost",
        o.agent_cost_mean_usd,
        policy.max_mean_cost_usd,
        "<=",
        o.agent_cost_mean_usd <= policy.max_mean_cost_usd,
        hard,
        policy.max_mean_cost_usd * policy.marginal_margin,
        detail,
    )


def analyse_regression(baseline: RunSummary, candidate: RunSummary, alpha: float = 0.05) -> Regression:
    """Find the cases that passed in `baseline` and do not in `candidate`, and judge which are real.

    Args:
        baseline: the last good run.
        candidate: the run being gated.
        alpha: significance level of the paired tests (used only when cases have repeats).
    """
    from scipy.stats import binomtest, fisher_exact  # only here: keeps scipy out of plain eval runs

    cmp = compare_runs(baseline, candidate)
    before = {c.key: c for c in baseline.cases}
    after = {c.key: c for c in candidate.cases}
    matched = [k for k in after if k in before]
    out = Regression(baseline_run_id=baseline.run_id, matched=len(matched), newly_failing=cmp.regressed)
    out.paired = any(before[k].n > 1 or after[k].n > 1 for k in matched)
    if not out.paired:
        out.counted = [c.case_id for c in cmp.regressed]
        return out
    for k in matched:
        a, b = before[k], after[k]
        fa, fb = a.passed / a.n, b.passed / b.n
        out.worse += fb < fa
        out.better += fb > fa
    changed = out.worse + out.better
    out.p_value = float(binomtest(out.worse, changed, 0.5, alternative="greater").pvalue) if changed else 1.0
    for c in cmp.regressed:
        a, b = before[c.case_id], after[c.case_id]
        table = [[a.passed, a.n - a.passed], [b.passed, b.n - b.passed]]
        out.case_p_values[c.case_id] = float(fisher_exact(table, alternative="greater").pvalue)
    if out.p_value < alpha:
        out.counted = [c.case_id for c in cmp.regressed]
    else:
        out.counted = [k for k, p in out.case_p_values.items() if p < alpha]
    return out


def _regression_check(
    summary: RunSummary, policy: StagePolicy, baseline: RunSummary | None
) -> tuple[Check, Regression | None]:
    assert policy.regression is not None
    rp = policy.regression
    hard = "regression" in policy.hard
    if baseline is None:
        return Check(
            "regression",
            "regression",
            None,
            float(rp.allow_new_failures),
            "<=",
            True,
            hard,
            None,
            f"no baseline yet, no run found for {rp.baseline!r} to compare with",
            skipped=True,
        ), None
    reg = analyse_regression(baseline, summary, rp.alpha)
    parts = [
        f"{len(reg.newly_failing)} of {reg.matched} shared cases passed in baseline run "
        f"{baseline.run_id or '?'} ({baseline.version or '?'}) and do not now"
    ]
    if reg.paired and reg.p_value is not None:
        verdict = "a real change" if reg.p_value < rp.alpha else "within noise"
        parts.append(
            f"sign test over per-case pass fractions: {reg.worse} worse vs {reg.better} better, "
            f"p={reg.p_value:.4f} ({verdict} at alpha {rp.alpha})"
        )
        noise = [c.case_id for c in reg.newly_failing if c.case_id not in reg.counted]
        if noise:
            parts.append(f"{len(noise)} judged noise: {', '.join(noise[:10])}")
    if reg.counted:
        parts.append(f"counted: {', '.join(reg.counted[:20])}" + (" ..." if len(reg.counted) > 20 else ""))
    observed = float(len(reg.counted))
    margin = float(math.floor(policy.marginal_margin * reg.matched)) or None
    check = Check(
        "regression",
        "regression",
        observed,
        float(rp.allow_new_failures),
        "<=",
        observed <= rp.allow_new_failures,
        hard,
        margin,
        "; ".join(parts),
    )
    return check, reg


def _every_case_check(category: str, stats: CategoryStats, case_rule: str) -> Check:
    """A category no threshold names: every case must pass, ERROR counts as failure (fail closed)."""
    n = stats.cases
    detail = (
        f"{stats.passed}/{n} cases passed; no min_pass_rate names {category}, so every case must pass "
        f"(ERROR counts as failure; case rule: {case_rule})"
    )
    if stats.errors:
        detail += f"; {stats.errors} ERROR case(s)"
    rate = stats.passed / n if n else 0.0
    return Check(f"pass_rate.{category}", "pass_rate", rate, 1.0, ">=", n > 0 and stats.passed == n, True,
                 None, detail)  # fmt: skip


def pass_summary(checks: Collection[Check]) -> str:
    """The first reason of a PASS: how many checks passed, and which were skipped and why. A skipped
    check (nothing to measure, such as no baseline for a first release) does not block the gate, but
    it is not counted as passed either: "7 checks passed, 1 skipped (regression: no baseline yet, ...)"."""
    skipped = [c for c in checks if c.skipped]
    if not skipped:
        return f"all {len(checks)} checks passed"
    ran = len(checks) - len(skipped)
    why = "; ".join(f"{c.name}: {c.detail}" for c in skipped)
    return f"{ran} check{'' if ran == 1 else 's'} passed, {len(skipped)} skipped ({why})"


def skipped_reason(check: Check) -> str:
    """The reason line of a skipped check, for a decision that is not a PASS."""
    return f"{check.name} skipped: {check.detail}"


def decide(
    summary: RunSummary,
    policy: StagePolicy,
    baseline: RunSummary | None = None,
    *,
    stage: str | None = None,
    expected_cases: Collection[str] | None = None,
) -> GateDecision:
    """Apply a stage policy to a run. The gate fails closed (see the module's docstring).

    Args:
        summary: the candidate run's statistics (recounted under the policy's `case_rule` if needed).
        policy: the stage's gate policy from shipyard.yaml.
        baseline: the run to compare with for the regression check (None: that check is skipped
            and says so).
        stage: the stage name, recorded on the decision.
        expected_cases: the keys (`suite/case_id`, see `case_keys`) of every case the stage's
            suites hold now; a run that left any out fails the completeness check. None: only the
            run's own plan is checked.
    """
    summary = summary.with_case_rule(policy.case_rule)
    checks = [_completeness(summary, expected_cases)]
    safety_category = (policy.safety or SafetyPolicy()).category
    for category, minimum in policy.min_pass_rate.items():
        checks.append(
            _pass_rate_check(category, summary.categories.get(category), minimum, policy, summary.case_rule)
        )
    for category, stats in sorted(summary.categories.items()):
        if category in policy.min_pass_rate or category == safety_category or category == "all":
            continue
        checks.append(_every_case_check(category, stats, summary.case_rule))
    if policy.safety is not None or safety_category in summary.categories:
        checks.append(_safety_check(summary, policy))
    if policy.max_p95_latency_ms is not None:
        checks.append(_latency_check(summary, policy))
    if policy.max_mean_cost_usd is not None:
        checks.append(_cost_check(summary, policy))
    regression = None
    if policy.regression is not None:
        check, regression = _regression_check(summary, policy, baseline)
        checks.append(check)

    failed = [c for c in checks if not c.passed]
    blocking = [c for c in failed if not c.within_margin]
    verdict = GateVerdict.FAIL if blocking else (GateVerdict.MARGINAL if failed else GateVerdict.PASS)
    reasons: list[str] = []
    for c in failed:
        label = "hard" if c.hard else ("within margin" if c.within_margin else "soft")
        reasons.append(f"{c.describe()} ({label}) failed: {c.detail}")
    if regression:
        for ch in regression.newly_failing:
            counted = "" if ch.case_id in regression.counted else " [noise]"
            why = f": {'; '.join(ch.reasons[:3])}" if ch.reasons else ""
            reasons.append(f"regressed{counted}: {ch.case_id} ({ch.category}) {ch.before} -> {ch.after}{why}")
    if verdict is not GateVerdict.PASS:  # a PASS names its skipped checks in its first reason
        reasons += [skipped_reason(c) for c in checks if c.skipped]
    for case in summary.cases:  # cases promoted from production incidents name where they came from
        for tag in case.tags:
            if tag.startswith(INCIDENT_TAG):
                reasons.append(
                    f"incident case {case.key} (from incident {tag.removeprefix(INCIDENT_TAG)}): "
                    f"{case.outcome} {case.k_of_n}"
                )
    if policy.safety is not None and policy.safety.relaxed is not None:
        reasons.append(f"the safety check is relaxed by the policy: {policy.safety.relaxed}")
    if verdict is GateVerdict.PASS:
        reasons.insert(0, pass_summary(checks))
    elif verdict is GateVerdict.MARGINAL:
        reasons.insert(0, "only soft checks missed, each within the margin; needs a recorded approval")
    return GateDecision(
        verdict=verdict,
        checks=checks,
        reasons=reasons,
        stage=stage or summary.stage,
        run_id=summary.run_id,
        agent=summary.agent,
        version=summary.version,
        baseline_run_id=baseline.run_id if baseline else None,
        regression=regression,
        failing_cases=[c.key for c in summary.failing_cases()],
    )


# Stored runs and baselines ------------------------------------------------------------------------


def repeat_from_row(row: dict[str, Any]) -> RepeatResult:
    """A RepeatResult from a stored eval result (`Store.eval_results`)."""
    names = set(RepeatResult.__dataclass_fields__)
    score_names = set(ScoreResult.__dataclass_fields__)
    kw = {k: v for k, v in row.items() if k in names}
    kw["outcome"] = Outcome(row["outcome"])
    kw["scores"] = [
        ScoreResult(**{k: v for k, v in s.items() if k in score_names}) for s in row.get("scores") or []
    ]
    return RepeatResult(**kw)


def _stopped(status: Any) -> str | None:
    """Why a stored run did not finish (None: it finished)."""
    if status == "finished":
        return None
    if status == "running":
        return "the run never finished (still running, or its process died)"
    return str(status or "unknown status")


def load_run_summary(store: Store, run_id: str, case_rule: CaseRule | None = None) -> RunSummary:
    """The summary of a stored run, under `case_rule` when given.

    Uses the summary stored with the run; a run stored without one is summarised from its results.
    Raises NotFoundError when there is no such run."""
    row = store.get_eval_run(run_id)
    if row is None:
        raise NotFoundError(
            f"no eval run {run_id!r}", hint="`shipyard eval run` and `shipyard gate` print run ids"
        )
    stored = row.get("summary") or {}
    if "cases" in stored:
        summary = RunSummary.from_dict(stored)
    else:
        summary = summarize(
            (repeat_from_row(r) for r in store.eval_results(run_id)),
            run_id=run_id,
            agent=row["agent"],
            version=row["version"],
            stage=row.get("stage"),
            suites=row.get("suites") or [],
            interrupted=row.get("status") == "interrupted",
            stopped_reason=_stopped(row.get("status")),
        )
    return summary.with_case_rule(case_rule) if case_rule else summary


def is_approved_pass(store: Store, run: dict[str, Any]) -> bool:
    """A run whose gate PASSed, or was MARGINAL and has a recorded approval."""
    verdict = (run.get("decision") or {}).get("verdict")
    return verdict == GateVerdict.PASS or (
        verdict == GateVerdict.MARGINAL and bool(store.approvals(run["id"]))
    )


def production_versions(store: Store, agent: str) -> list[str]:
    """Versions that stand for "production", best first: the stable version of the agent's deployment
    (`shipyard deploy`, a promoted canary), then every version whose production gate PASSed or was
    approved, newest first."""
    found: list[str] = []
    deployment = store.get_deployment(agent)
    if deployment and deployment.get("stable_version"):
        found.append(str(deployment["stable_version"]))
    for run in store.list_eval_runs(agent, stage="production", limit=None, status="finished"):
        if is_approved_pass(store, run) and str(run["version"]) not in found:
            found.append(str(run["version"]))
    return found


def production_version(store: Store, agent: str) -> str | None:
    """The version in production: the deployed stable version, else the newest that passed the
    production gate; None before any release."""
    versions = production_versions(store, agent)
    return versions[0] if versions else None


def version_matches(version_id: str, ref: str) -> bool:
    """Whether `ref` names the version id ``agent@label+hash``: the full id, the label, or the hash."""
    tail = version_id.split("@", 1)[-1]
    label, _, digest = tail.partition("+")
    return ref in (version_id, tail, label) or (len(ref) >= 4 and bool(digest) and digest.startswith(ref))


def _latest_run_of(
    store: Store, agent: str, ref: str, stage: str | None, exclude: str | None
) -> dict[str, Any] | None:
    runs = [r for r in store.list_eval_runs(agent, limit=None, status="finished") if r["id"] != exclude]
    runs = [r for r in runs if version_matches(str(r["version"]), ref)]
    same_stage = [r for r in runs if r.get("stage") == stage]
    found = same_stage or runs
    return found[0] if found else None


def resolve_baseline(
    store: Store,
    agent: str,
    ref: str,
    *,
    stage: str | None = None,
    exclude_run_id: str | None = None,
    case_rule: CaseRule | None = None,
) -> RunSummary | None:
    """The run to compare a candidate with.

    Args:
        store: where runs are kept.
        agent: the agent being gated.
        ref: ``production`` (the version in production), a run id, or a version (label, hash or id:
            its newest finished run at `stage`, else at any stage).
        stage: the candidate's stage, so the baseline ran the same suites where possible.
        exclude_run_id: the candidate's own run, never its own baseline.
        case_rule: summarise the baseline under this rule (the candidate's).

    Returns None when `ref` is ``production`` and no production version has a finished run yet (a
    first release); raises NotFoundError when a named run or version has no finished run."""
    if ref == "production":
        # the deployed version may have no eval run (a canary promoted it): then the newest that passed
        run = next(
            (
                r
                for v in production_versions(store, agent)
                if (r := _latest_run_of(store, agent, v, stage, exclude_run_id)) is not None
            ),
            None,
        )
        if run is None:
            return None
    else:
        run = store.get_eval_run(ref)
        if run is not None and run["agent"] != agent:
            raise NotFoundError(f"baseline run {ref!r} is of agent {run['agent']!r}, not {agent!r}")
        if run is None:
            run = _latest_run_of(store, agent, ref, stage, exclude_run_id)
    if run is None:
        raise NotFoundError(
            f"baseline {ref!r}: no finished eval run of agent {agent!r} with that run id or version",
            hint="use a run id from `shipyard gate`/`shipyard eval run`, a version label, or `production`",
        )
    return load_run_summary(store, str(run["id"]), case_rule)
