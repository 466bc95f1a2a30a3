"""A/B experiment analysis: arm A (control) against arm B, metric by metric.

For each metric the report gives the effect `B - A` with two views of it:

- fixed-horizon: proportions by the z-test (or Fisher's exact test on small counts) with a
  Newcombe interval; continuous values by Welch's t-test (difference of means, interval) and
  Mann-Whitney U. Valid when read once, at the sample size planned in advance.
- always-valid (sequential): the mixture SPRT (`msprt`), whose p-value and confidence sequence
  may be read at every look. Pass the previous report's `to_dict()` as `previous` to carry the
  running minimum p-value and the intersected confidence sequence across looks.

The verdict of a metric (A better, B better, no detectable difference) uses the sequential view by
default, because an experiment's status is looked at many times; with no detectable difference,
it says how many more interactions per arm a fixed-horizon test would need for the metric's `mde`.

The assignment unit is the cluster. The assigner buckets a request by its session id when the
caller gave one, else by its user id (`assignment_key`), so an arm is made of whole sessions (or
whole users), and the interactions of one unit are correlated (one conversation, one customer):
taken as independent observations they make every p-value, interval and the mSPRT overconfident.
`experiment_arm` groups an arm's records by that unit (which the assigner records on them), and
each test takes the units as clusters (`ArmSample.sessions`), keeping each metric's estimate
(per-interaction rates and means) and changing only its variance, as the canary analysis does:

- proportions: the delta-method design effect of a ratio of unit sums, pooled over both arms
  (`ratio_design_effect`, Deng, Knoblich and Lu 2018); the z / exact test and the Newcombe
  interval on the counts divided by it (`two_proportion_test(design_effects=...)`, Rao-Scott).
- continuous values: Welch's t on the cluster-robust variance of each arm's mean
  (`variance_of_mean`: the sum of squared unit residuals times `k / (k - 1)`), with
  Welch-Satterthwaite degrees of freedom from the units; Mann-Whitney U with the units as clusters
  (`mann_whitney(clusters_a=, clusters_b=)`).
- the mSPRT: the variance it is given is the same clustered one (the independent-trial variance
  times the design effect for proportions; the sum of the cluster-robust variances of the means
  for continuous values). Why this keeps it (approximately) always valid: the mSPRT's guarantee
  rests on the estimate being about N(effect, v) at every look with the right v. The units, not
  the interactions, are the independent draws, so the effect is a smooth function of means of
  i.i.d. unit sums and is asymptotically normal with the delta-method / cluster-robust variance;
  the mixture likelihood ratio computed with it is the one of the unit-level data (the effective
  sample size is `n / design effect`), a martingale under the null to the same plug-in
  approximation the unclustered test already makes with the sample variance. It stays approximate:
  the variance is estimated at each look, and a unit still active (a session continuing after a
  look) adds to a cluster already counted.
- the sample-size advice: the independent-trial answer times the metric's design effect (the
  interactions a clustered sample of units like this one needs).

With one interaction per unit (or arms without units, e.g. ArmSamples of bare counts and arrays)
every design effect is 1 and the numbers are exactly those for independent interactions. A metric
whose arm has fewer than two units cannot be tested (its variance is unknown). The sample-ratio
check counts units.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shipyard.rollout._analysis import (
    ArmSample,
    Proportion,
    _clustered_values,
    _flat,
    _pooled_ratio_design_effect,
    observe,
    observe_sessions,
    sample_size_of,
)
from shipyard.rollout._deployment import UNIT_KEY
from shipyard.rollout._stats import (
    CONFIDENCE,
    SRM_ALPHA,
    SequentialResult,
    SrmCheck,
    json_float,
    mann_whitney,
    msprt,
    sample_size,
    sample_size_means,
    srm_check,
    two_proportion_test,
    variance_of_mean,
    welch_t_test,
)

if TYPE_CHECKING:
    from shipyard.store import InteractionRecord

A_BETTER = "A better"
B_BETTER = "B better"
NO_DIFFERENCE = "no detectable difference"
NOT_ENOUGH_DATA = "not enough data"
SPLIT_BROKEN = "split is broken (sample ratio mismatch)"
DecideOn = Literal["sequential", "fixed"]


@dataclass(frozen=True, slots=True)
class ExperimentMetric:
    """One experiment metric.

    Args:
        name: its name in reports; also its data source (see `SOURCES`) unless `source` is given.
        kind: ``proportion`` or ``continuous``.
        higher_is_better: which arm wins when the metric is higher.
        mde: the smallest effect worth detecting (> 0): absolute, or with `relative` a fraction of
            A's value. It sizes the sample-size advice and the sequential test's mixing distribution.
        relative: read `mde` as relative.
        min_samples: per arm, fewer observations than this leave the metric without a result.
        source: the data source; defaults to `name`.
    """

    name: str
    kind: Literal["proportion", "continuous"]
    higher_is_better: bool
    mde: float
    relative: bool = False
    min_samples: int = 10
    source: str | None = None

    def __post_init__(self) -> None:
        if self.mde <= 0:
            raise ValueError(f"{self.name}: mde must be > 0, got {self.mde}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_EXPERIMENT_METRICS: tuple[ExperimentMetric, ...] = (
    ExperimentMetric("task_completion", "proportion", True, 0.02),
    ExperimentMetric("thumbs_up_rate", "proportion", True, 0.05),
    ExperimentMetric("satisfaction_score", "continuous", True, 0.05, relative=True),
    ExperimentMetric("cost_per_interaction", "continuous", False, 0.10, relative=True, source="cost_usd"),
    ExperimentMetric("latency_ms", "continuous", False, 0.10, relative=True),
)


@dataclass(slots=True)
class ExperimentMetricResult:
    """One metric of an experiment. `effect` is `B - A` (rates or means), `relative_effect` that over
    A; `ci` / `p_value` the fixed-horizon ones (`test` names it); `mann_whitney_p` for continuous
    metrics; `sequential` the always-valid view (running minimum p-value, intersected sequence)."""

    name: str
    kind: str
    higher_is_better: bool
    n_a: float
    n_b: float
    a: float | None
    b: float | None
    effect: float | None
    relative_effect: float | None
    ci: tuple[float | None, float | None]
    p_value: float | None
    test: str
    mann_whitney_p: float | None
    sequential: SequentialResult | None
    verdict: str
    needed_per_arm: int | None
    more_per_arm: int | None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__slots__ if k != "sequential"}
        for k in ("a", "b", "effect", "relative_effect", "p_value", "mann_whitney_p"):
            d[k] = json_float(d[k])
        d["ci"] = [json_float(v) for v in self.ci]
        d["sequential"] = self.sequential.to_dict() if self.sequential else None
        return d


@dataclass(slots=True)
class ExperimentReport:
    """The analysis of an A/B experiment at one look."""

    verdict: str
    primary: str
    metrics: list[ExperimentMetricResult]
    srm: SrmCheck | None
    warnings: list[str]
    a: dict[str, Any]
    b: dict[str, Any]
    settings: dict[str, Any]

    def metric(self, name: str) -> ExperimentMetricResult:
        """The result of the metric called `name`."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "primary": self.primary,
            "metrics": [m.to_dict() for m in self.metrics],
            "srm": self.srm.to_dict() if self.srm else None,
            "warnings": list(self.warnings),
            "a": self.a,
            "b": self.b,
            "settings": self.settings,
        }

    def render_markdown(self) -> str:
        """The report as Markdown: verdict, warnings, one table row per metric."""
        a_name, b_name = self.a.get("name") or "A", self.b.get("name") or "B"
        lines = [
            f"# Experiment report: {a_name} (A) vs {b_name} (B)",
            "",
            f"**Verdict** (primary metric `{self.primary}`): {self.verdict}",
            "",
            f"Units: A {self.a.get('units', self.a.get('n'))}, B {self.b.get('units', self.b.get('n'))}; "
            f"decisions on the {self.settings['decide_on']} test at alpha {self.settings['alpha']:g}.",
        ]
        if self.srm is not None:
            state = "**broken**" if self.srm.flagged else "ok"
            lines.append(
                f"Split {state}: observed B share {self.srm.observed_share_b:.1%} vs configured "
                f"{self.srm.expected_share_b:.1%} (always-valid p={self.srm.sequential_p_value:.3g}, chi-square p={self.srm.p_value:.3g})."
            )
        lines += [f"> warning: {w}" for w in self.warnings]
        lines += [
            "",
            "| metric | A | B | effect (B-A) | 95% CI | p (fixed) | p (always valid) | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for m in self.metrics:
            seq = m.sequential.p_value if m.sequential else None
            rel = f" ({m.relative_effect:+.1%})" if m.relative_effect is not None else ""
            verdict = m.verdict + (f"; {m.note}" if m.note else "")
            lines.append(
                f"| {m.name} | {_num(m.a)} | {_num(m.b)} | {_num(m.effect, sign=True)}{rel} | "
                f"{_num(m.ci[0])} .. {_num(m.ci[1])} | {_num(m.p_value)} | {_num(seq)} | {verdict} |"
            )
        return "\n".join(lines) + "\n"


def _num(x: float | None, *, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:+.4g}" if sign else f"{x:.4g}"


def _previous_sequential(previous: Mapping[str, Any] | None, name: str) -> Mapping[str, Any] | None:
    for m in (previous or {}).get("metrics", []):
        if m.get("name") == name:
            seq = m.get("sequential")
            return seq if isinstance(seq, Mapping) else None
    return None


def _carry(now: SequentialResult, before: Mapping[str, Any] | None) -> SequentialResult:
    """Keep the running minimum of the p-value and the running intersection of the sequence."""
    if not before or before.get("p_value") is None:
        return now
    p = min(now.p_value, float(before["p_value"]))
    lo_b, hi_b = (before.get("confidence_sequence") or [None, None])[:2]
    lo = max(now.confidence_sequence[0], lo_b if lo_b is not None else -math.inf)
    hi = min(now.confidence_sequence[1], hi_b if hi_b is not None else math.inf)
    cs = (lo, hi) if lo <= hi else now.confidence_sequence
    return SequentialResult(
        now.estimate, now.variance, now.tau, now.theta0, now.likelihood_ratio, p, now.alpha, cs
    )


def experiment_arm(records: Iterable[InteractionRecord], *, name: str = "") -> ArmSample:
    """One experiment arm from its interaction records, with its assignment units as clusters.

    The unit of a record (`ArmSample.sessions` holds one ArmSample per unit) is what the assigner
    bucketed it by (`assignment_key`): its session when the caller supplied one, else its user,
    else the request alone. The assigner records which (`metadata.assignment_unit`: ``session``,
    ``user`` or ``request``), and the unit is then exactly that: the record's session id, its user
    id, or the record itself.

    Records from before the unit was recorded (or with an unknown value in it) are grouped as the
    assigner most likely did: a record does not say whether its session id was supplied or made up
    for that one request (then the user was the key), so the sessions of one interaction that carry
    a user id are grouped per user: exactly the assigner's unit for requests keyed by user, and for
    one-turn sessions of a user who supplied them, a coarser cluster (several of one user's
    sessions), which only errs on the safe side. Sessions of several interactions are units of
    their own; a record with neither (assigned afresh per request) is its own unit.

    Args:
        records: the arm's interactions (selected by experiment and arm).
        name: the arm's label.
    """
    rs = list(records)
    turns = Counter(r.session_id for r in rs)

    def unit(r: InteractionRecord) -> str:
        recorded = r.metadata.get(UNIT_KEY) if isinstance(r.metadata, dict) else None
        if recorded == "session" and r.session_id:
            return f"session:{r.session_id}"
        if recorded == "user" and r.user_id:
            return f"user:{r.user_id}"
        if recorded == "request":
            return f"request:{r.id}"
        if turns[r.session_id] == 1 and r.user_id:  # not recorded: inferred
            return f"user:{r.user_id}"
        return f"session:{r.session_id}"

    return ArmSample.from_records(rs, name=name, unit=unit)


def _units(labels: np.ndarray | None, size: int) -> np.ndarray:
    """Cluster labels of an arm's values: its own, or each value alone when it has none."""
    return np.arange(size) if labels is None else labels


def _metric(
    spec: ExperimentMetric,
    arm_a: ArmSample,
    arm_b: ArmSample,
    *,
    alpha: float,
    power: float,
    decide_on: DecideOn,
    previous: Mapping[str, Any] | None,
) -> ExperimentMetricResult:
    source = spec.source or spec.name
    oa, ob = observe(arm_a, source, spec.kind), observe(arm_b, source, spec.kind)
    n_a, n_b = sample_size_of(oa), sample_size_of(ob)
    result = ExperimentMetricResult(spec.name, spec.kind, spec.higher_is_better, n_a, n_b, None, None, None,
                                    None, (None, None), None, "", None, None, NOT_ENOUGH_DATA, None, None)  # fmt: skip
    if min(n_a, n_b) < max(spec.min_samples, 2):
        result.note = f"need {spec.min_samples} per arm, have {n_a:g} (A) and {n_b:g} (B)"
        return result
    # the arms' observations per assignment unit, None when every interaction is its own unit
    parts_a = parts_b = None
    if not (_flat(arm_a) and _flat(arm_b)):
        parts_a, parts_b = (
            observe_sessions(arm_a, source, spec.kind),
            observe_sessions(arm_b, source, spec.kind),
        )
    confidence = max(CONFIDENCE, 1 - alpha)
    needed: int | None = None
    variance: float
    deff = 1.0  # the design effect of the metric's estimate (1: its interactions are independent)
    if isinstance(oa, Proportion) and isinstance(ob, Proportion):
        deff = _pooled_ratio_design_effect(parts_a, parts_b, "binomial")
        d_a, d_b = (1.0 if parts is None else deff for parts in (parts_a, parts_b))
        pt = two_proportion_test(oa.successes, oa.trials, ob.successes, ob.trials, confidence=confidence,
                                 design_effects=(d_a, d_b))  # fmt: skip
        result.a, result.b, result.effect, result.ci = pt.p_a, pt.p_b, pt.difference, pt.ci
        result.p_value, result.test, result.details = pt.p_value, pt.test, pt.to_dict()
        pooled = (oa.successes + ob.successes) / (oa.trials + ob.trials)
        if d_a == d_b == 1:
            variance = pooled * (1 - pooled) * (1 / oa.trials + 1 / ob.trials)
        else:
            variance = pooled * (1 - pooled) * (d_a / oa.trials + d_b / ob.trials)
        if parts_a is not None or parts_b is not None:
            result.details["units"] = [_count(parts_a), _count(parts_b)]
        mde = spec.mde * pt.p_a if spec.relative else spec.mde
        if 0 < pt.p_a < 1 and 0 < pt.p_a + mde < 1 and mde > 0:
            needed = sample_size(pt.p_a, mde, alpha, power)
    else:
        assert isinstance(oa, np.ndarray) and isinstance(ob, np.ndarray)
        (xa, la), (xb, lb) = _clustered_values(oa, parts_a), _clustered_values(ob, parts_b)
        units: list[int] | None = None
        if la is None and lb is None:
            wt = welch_t_test(oa, ob, confidence=confidence)
            mw = mann_whitney(oa, ob, confidence=confidence)
            variance = wt.sd_a**2 / wt.n_a + wt.sd_b**2 / wt.n_b
        else:  # the units as clusters (an arm without them: each value its own)
            la, lb = _units(la, xa.size), _units(lb, xb.size)
            units = [int(np.unique(la).size), int(np.unique(lb).size)]
            if min(units) < 2:
                result.note = f"need 2 units per arm, have {units[0]} (A) and {units[1]} (B)"
                return result
            wt = welch_t_test(xa, xb, confidence=confidence, clusters_a=la, clusters_b=lb)
            mw = mann_whitney(xa, xb, confidence=confidence, clusters_a=la, clusters_b=lb)
            variance = variance_of_mean(xa, la) + variance_of_mean(xb, lb)
            independent = wt.sd_a**2 / wt.n_a + wt.sd_b**2 / wt.n_b
            deff = variance / independent if independent > 0 else 1.0
        result.a, result.b, result.effect, result.ci = wt.mean_a, wt.mean_b, wt.difference, wt.ci
        result.p_value, result.test, result.mann_whitney_p = wt.p_value, "welch_t", mw.p_value
        result.details = {"welch": wt.to_dict(), "mann_whitney": mw.to_dict()}
        if units is not None:
            result.details.update(units=units, design_effect=deff)
        mde = spec.mde * abs(wt.mean_a) if spec.relative else spec.mde
        sd = math.sqrt((wt.sd_a**2 + wt.sd_b**2) / 2)
        if sd > 0 and mde > 0:
            needed = sample_size_means(sd, mde, alpha, power)
    if needed is not None and deff > 1:
        needed = math.ceil(needed * deff)
    assert result.a is not None and result.effect is not None
    result.relative_effect = result.effect / abs(result.a) if result.a else None
    if variance > 0 and mde > 0:
        seq = msprt(result.effect, variance, mde, alpha=alpha)
        result.sequential = _carry(seq, _previous_sequential(previous, spec.name))
    if decide_on == "sequential":
        p = result.sequential.p_value if result.sequential else (1.0 if result.effect == 0 else 0.0)
    else:
        assert result.p_value is not None
        p = result.p_value
    if p < alpha and result.effect != 0:
        result.verdict = B_BETTER if (result.effect > 0) == spec.higher_is_better else A_BETTER
    else:
        result.verdict = NO_DIFFERENCE
        result.needed_per_arm = needed
        have = int(min(n_a, n_b))
        if needed is not None and needed > have:
            result.more_per_arm = needed - have
            result.note = f"underpowered: need {needed - have} more per arm to detect {_mde_text(spec)}"
    return result


def _count(parts: Sequence[object] | None) -> int | None:
    """How many units an arm's observations come from (None: no units)."""
    return None if parts is None else len(parts)


def _mde_text(spec: ExperimentMetric) -> str:
    return f"a {spec.mde:.0%} change" if spec.relative else f"a change of {spec.mde:g}"


def analyze_experiment(
    a: ArmSample,
    b: ArmSample,
    metrics: Sequence[ExperimentMetric] | None = None,
    *,
    expected_split: float | None = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
    primary: str | None = None,
    decide_on: DecideOn = "sequential",
    previous: Mapping[str, Any] | None = None,
    srm_threshold: float = SRM_ALPHA,
) -> ExperimentReport:
    """Analyse an A/B experiment at one look.

    Args:
        a, b: the arms' interactions (A is the control), with their assignment units as
            `sessions` (`experiment_arm` builds them from records); arms without units, or with
            one interaction per unit, are tested as independent interactions.
        metrics: what to compare (default `DEFAULT_EXPERIMENT_METRICS`).
        expected_split: B's configured share of traffic for the SRM check (None skips it).
        alpha: significance level; power: the power the sample-size advice aims for.
        primary: the metric whose verdict is the experiment's (default: the first metric).
        decide_on: ``sequential`` (safe to look any time; the default) or ``fixed`` (only valid
            when read once at the planned sample size).
        previous: the previous look's `ExperimentReport.to_dict()`, to carry the sequential test.
        srm_threshold: SRM p-values below it mark the split as broken.
    """
    specs = list(DEFAULT_EXPERIMENT_METRICS if metrics is None else metrics)
    if not specs:
        raise ValueError("an experiment needs at least one metric")
    primary = primary or specs[0].name
    if primary not in {m.name for m in specs}:
        raise ValueError(f"primary metric {primary!r} is not among the metrics")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    results = [
        _metric(s, a, b, alpha=alpha, power=power, decide_on=decide_on, previous=previous) for s in specs
    ]
    srm = None
    warnings: list[str] = []
    if expected_split is not None:
        units_a = a.units if a.units is not None else a.n
        units_b = b.units if b.units is not None else b.n
        srm = srm_check(units_a, units_b, expected_split, threshold=srm_threshold)
        if srm.flagged:
            warnings.append(
                f"sample ratio mismatch: B has {srm.observed_share_b:.1%} of units, configured "
                f"{srm.expected_share_b:.1%} (always-valid p={srm.sequential_p_value:.2g}); fix the assignment before trusting any result"
            )
    if decide_on == "fixed":
        warnings.append("fixed-horizon p-values are valid only when read once, at the planned sample size")
    verdict = next(r.verdict for r in results if r.name == primary)
    if srm is not None and srm.flagged:
        verdict = SPLIT_BROKEN
    return ExperimentReport(
        verdict,
        primary,
        results,
        srm,
        warnings,
        a.to_dict(),
        b.to_dict(),
        {
            "alpha": alpha,
            "power": power,
            "decide_on": decide_on,
            "expected_split": expected_split,
            "srm_threshold": srm_threshold,
            "metrics": [m.to_dict() for m in specs],
        },
    )
