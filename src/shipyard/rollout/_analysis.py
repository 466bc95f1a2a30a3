"""Canary analysis in the manner of Kayenta: compare the canary with the concurrent baseline,
metric by metric, and score the step.

Each metric (`MetricSpec`) has a kind (how it is tested), a direction (which change is bad), an
allowed effect and a critical flag. A metric fails (HIGH or LOW, after the way it moved) only when
its change is statistically significant (Holm-adjusted across the metrics, so adding metrics does
not add false alarms) *and* beyond its allowed effect in the bad direction. The score is the
weighted share of passing metrics among those with data; the verdict:

- INSUFFICIENT_DATA: an arm has fewer than `min_samples_per_arm` interactions, or no metric has
  data. The step holds: it is never passed or failed on too little data, except that a critical
  metric's significant failure or a zero-tolerance incident fails it at once.
- FAIL: a critical metric failed, or the score is below `marginal_score`.
- MARGINAL: the score is below `pass_score`, or the split is broken (sample-ratio mismatch):
  pause for a human.
- PASS: otherwise.

The session is the unit: a canary assigns sessions (multi-turn conversations) to its arms, and the
turns of one session are correlated (one conversation type, a growing history), so the interactions
are not independent observations and tests that take them as such overstate significance. Every
test here takes the sessions as clusters (`ArmSample.sessions`; `from_records` groups by session id)
and works on effective sample sizes, which keeps each metric's estimate and its meaning unchanged:

- proportion metrics (task completion, escalation, tool errors, thumbs-down): the per-interaction
  (per-call, per-rating) rate as before, with a design effect from the delta-method variance of a
  ratio of session sums (Deng, Knoblich and Lu 2018), pooled over both arms (each about its own
  rate; the baseline's many sessions steady the estimate a small canary alone would give); the
  z-test, the exact test for small expected counts and Newcombe's interval are made on the counts
  divided by it (Rao and Scott 1992).
- continuous metrics (latency, cost, scores): the Hodges-Lehmann shift of the interaction values
  relative to the baseline median, as before, tested with the clustered rank-sum test: the
  Mann-Whitney U's variance times its design effect, estimated from session sums of the placement
  values (DeLong 1988, Obuchowski 1997); the shift's interval is widened the same way.
- count metrics (safety incidents): the exact conditional test of the two rates, one-sided, on
  counts divided by an overdispersion factor (quasi-Poisson), the same pooled delta-method design
  effect with the Poisson variance. Incidents in several canary sessions against a baseline that has
  none stay overwhelming evidence, so a critical safety regression still fails the step at once
  (before the minimum of interactions, as before); several incidents in one conversation weigh as
  about one.

With few canary sessions (tens) these large-sample tests are somewhat liberal per metric (up to
about 9% at a nominal 5% in seeded simulations with 30-40 canary sessions of 1-8 strongly
correlated turns); across the metrics, with the Holm adjustment, a canary without a difference was
flagged in at most 5% of them there (tests/rollout/test_analysis_sessions.py).

A design effect is never below 1. When no session of either arm holds more than one interaction
(or the arms have no sessions, e.g. ArmSamples of bare counts and arrays), the arms are tested as
independent interactions, exactly as without clusters (the tool calls of one interaction are then
taken as independent too). The sample-ratio check counts sessions (`units`), the unit
the assignment hashes.

A session served by both versions (replicas refresh their assignment a moment apart) is evidence
for neither alone: `canary_arms`, which builds the arms of every canary and blue-green verdict from
records, leaves it out of both and says how many it left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, Literal

import numpy as np

from shipyard.observe import is_safety_incident
from shipyard.rollout._stats import (
    CONFIDENCE,
    SRM_ALPHA,
    SrmCheck,
    json_float,
    mann_whitney,
    rate_test,
    ratio_design_effect,
    srm_check,
    two_proportion_test,
)
from shipyard.store import InteractionRecord

Kind = Literal["proportion", "continuous", "count"]
Direction = Literal["increase_is_bad", "decrease_is_bad"]
Classification = Literal["PASS", "HIGH", "LOW", "NODATA"]


class Verdict(StrEnum):
    """What a canary analysis concluded: PASS steps up, MARGINAL pauses, FAIL rolls back,
    INSUFFICIENT_DATA holds (see the controller)."""

    PASS = "PASS"
    MARGINAL = "MARGINAL"
    FAIL = "FAIL"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


Correction = Literal["holm", "none"]


@dataclass(frozen=True, slots=True)
class Proportion:
    """Successes out of trials."""

    successes: int
    trials: int


@dataclass(frozen=True, slots=True)
class Count:
    """Events over an exposure (e.g. incidents over interactions)."""

    events: int
    exposure: float


Observation = Proportion | Count | np.ndarray


def _floats(values: Iterable[float] | None) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.astype(float, copy=False)
    return np.asarray(list(values) if values is not None else [], dtype=float)


@dataclass(frozen=True)
class ArmSample:
    """What the analyses need of one arm's interactions in a window; build it with `from_records`,
    or directly from counts and arrays.

    Args:
        n: interactions.
        completed, escalated: interactions with that status.
        safety_incidents: interactions that were blocked or had a guardrail block something.
        latency_ms, cost_usd: one value per interaction the version ran itself (may be empty: the
            metric has no data). `from_records` leaves out the answers served from the answer cache
            (`metadata.cache`): they take and cost next to nothing, and a new version's cache starts
            cold, so while it warms up its arm has fewer of them than the baseline's; counted, they
            would make every canary look slower and dearer than it is.
        tool_calls, tool_errors: tool calls made, and those whose status was not ``success``.
        thumbs_up, thumbs_down: interactions rated +1 / -1.
        scores: the feedback scores given (e.g. 1-5).
        units: distinct assignment units (sessions) for the SRM check; None uses `n`.
        name: a label for reports (e.g. the version).
        sessions: the same arm split by session (one ArmSample per session, their `n` adding up
            to `n`), which the analysis takes as clusters; empty (the default, or an arm built
            from bare counts and arrays): every interaction is its own cluster.
    """

    n: int
    completed: int = 0
    escalated: int = 0
    safety_incidents: int = 0
    latency_ms: np.ndarray = field(default_factory=lambda: _floats(None))
    cost_usd: np.ndarray = field(default_factory=lambda: _floats(None))
    tool_calls: int = 0
    tool_errors: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    scores: np.ndarray = field(default_factory=lambda: _floats(None))
    units: int | None = None
    name: str = ""
    sessions: tuple[ArmSample, ...] = ()

    def __post_init__(self) -> None:
        for attr in ("latency_ms", "cost_usd", "scores"):
            object.__setattr__(self, attr, _floats(getattr(self, attr)))
        counts = {"completed": self.completed, "escalated": self.escalated}
        counts["safety_incidents"] = self.safety_incidents
        for attr, value in counts.items():
            if not 0 <= value <= self.n:
                raise ValueError(f"{attr} must be within 0..n={self.n}, got {value}")
        if not 0 <= self.tool_errors <= self.tool_calls:
            raise ValueError(f"tool_errors must be within 0..tool_calls={self.tool_calls}")
        object.__setattr__(self, "sessions", tuple(self.sessions))
        if self.sessions and sum(part.n for part in self.sessions) != self.n:
            raise ValueError(f"the sessions' interactions must add up to n={self.n}")

    @classmethod
    def from_records(
        cls,
        records: Iterable[InteractionRecord],
        *,
        name: str = "",
        unit: Callable[[InteractionRecord], str] | None = None,
    ) -> ArmSample:
        """Extract an arm from interaction records (one arm's, one window's), with its `sessions`
        (the records grouped by session id, or by `unit`).

        Args:
            records: the interactions; select arm and window before (by version and traffic source).
            name: the arm's label.
            unit: the cluster a record belongs to (default: its session id); `sessions` then holds
                one ArmSample per such unit and `units` counts them.
        """
        by_session: dict[str, list[InteractionRecord]] = {}
        for r in records:
            by_session.setdefault(r.session_id if unit is None else unit(r), []).append(r)
        return cls.from_sessions([cls._of_records(group) for group in by_session.values()], name=name)

    @classmethod
    def from_sessions(cls, sessions: Iterable[ArmSample], *, name: str = "") -> ArmSample:
        """The arm its sessions (or other units) make: their counts added and their values joined, in
        session order, with the sessions kept as its `sessions` and counted as its `units`."""
        parts = tuple(sessions)

        def joined(attr: str) -> np.ndarray:
            return np.concatenate([getattr(p, attr) for p in parts]) if parts else _floats(None)

        return cls(
            n=sum(p.n for p in parts),
            completed=sum(p.completed for p in parts),
            escalated=sum(p.escalated for p in parts),
            safety_incidents=sum(p.safety_incidents for p in parts),
            latency_ms=joined("latency_ms"),
            cost_usd=joined("cost_usd"),
            tool_calls=sum(p.tool_calls for p in parts),
            tool_errors=sum(p.tool_errors for p in parts),
            thumbs_up=sum(p.thumbs_up for p in parts),
            thumbs_down=sum(p.thumbs_down for p in parts),
            scores=joined("scores"),
            units=len(parts),
            name=name,
            sessions=parts,
        )

    @classmethod
    def _of_records(cls, rs: list[InteractionRecord]) -> ArmSample:
        """One session's arm (one pass over its records: an arm has thousands of sessions)."""
        completed = escalated = incidents = calls = errors = up = down = 0
        latency: list[float] = []
        cost: list[float] = []
        scores: list[float] = []
        for r in rs:
            completed += r.status == "completed"
            escalated += r.status == "escalated"
            incidents += is_safety_incident(r)
            if not (r.metadata and r.metadata.get("cache")):  # an answer from the cache: see the class
                latency.append(r.latency_ms)
                cost.append(r.cost_usd)
            calls += len(r.tool_calls)
            errors += sum(t.status != "success" for t in r.tool_calls)
            if r.feedback:
                thumbs, score = r.feedback.get("thumbs"), r.feedback.get("score")
                up += thumbs is not None and thumbs > 0
                down += thumbs is not None and thumbs < 0
                if score is not None:
                    scores.append(score)
        return cls(
            n=len(rs),
            completed=completed,
            escalated=escalated,
            safety_incidents=incidents,
            latency_ms=np.array(latency, dtype=float),
            cost_usd=np.array(cost, dtype=float),
            tool_calls=calls,
            tool_errors=errors,
            thumbs_up=up,
            thumbs_down=down,
            scores=np.array(scores, dtype=float),
            units=1,
        )

    def to_dict(self) -> dict[str, Any]:
        """Counts and summaries (not every value) for reports."""

        def summary(v: np.ndarray) -> dict[str, Any]:
            if v.size == 0:
                return {"n": 0}
            return {"n": int(v.size), "mean": float(v.mean()), "p50": float(np.median(v))}

        d = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "sessions" and not isinstance(getattr(self, f.name), np.ndarray)
        }
        d.update(latency_ms=summary(self.latency_ms), cost_usd=summary(self.cost_usd))
        d["scores"] = summary(self.scores)
        return d


def canary_arms(
    baseline: Iterable[InteractionRecord], canary: Iterable[InteractionRecord]
) -> tuple[ArmSample, ArmSample, dict[str, Any]]:
    """The two arms of a canary (or blue-green) verdict from their records, without the sessions
    that have records in both: `(baseline, canary, what was left out)`.

    A session is the analysis's unit, and its turns are correlated; when several replicas refresh
    their assignment a moment apart (after a step up, say), or a replica that cannot run the
    candidate serves the stable version, one session's turns can be served by both versions. Such
    a session is evidence for neither version alone (its later turns carry the other version's
    history), so it counts in neither arm. Records without a session id are never taken as mixed.

    The arms' statistics are those of `ArmSample.from_records` on what is left, except that the
    canary's `units` (what the sample-ratio check counts) includes the mixed sessions: a session
    the candidate served at all is one the assignment gave it (in a canary's window the weight
    only rises, so sessions move from the stable version to the candidate, never back); left out
    of the count, every step up would make the canary's share look short.

    Args:
        baseline: the stable version's (or blue's) records in the window.
        canary: the candidate's (or green's) records in the window.

    Returns:
        The arms, and ``{"mixed_sessions": n, "mixed_interactions": {"baseline": i, "canary": j}}``:
        the sessions left out and their records in each arm.
    """
    base, cand = list(baseline), list(canary)
    mixed = {r.session_id for r in base if r.session_id} & {r.session_id for r in cand if r.session_id}
    kept_base = [r for r in base if r.session_id not in mixed]
    kept_cand = [r for r in cand if r.session_id not in mixed]
    arm_b, arm_c = ArmSample.from_records(kept_base), ArmSample.from_records(kept_cand)
    if mixed:
        arm_c = replace(arm_c, units=(arm_c.units or 0) + len(mixed))
    left_out = {
        "mixed_sessions": len(mixed),
        "mixed_interactions": {"baseline": len(base) - len(kept_base), "canary": len(cand) - len(kept_cand)},
    }
    return arm_b, arm_c, left_out


# Where each metric's data comes from: a name -> a function of the arm. Register more with
# `register_source`; a MetricSpec names its source (by default its own name).
SOURCES: dict[str, Callable[[ArmSample], Observation]] = {
    "task_completion": lambda s: Proportion(s.completed, s.n),
    "escalation_rate": lambda s: Proportion(s.escalated, s.n),
    "latency_ms": lambda s: s.latency_ms,
    "cost_usd": lambda s: s.cost_usd,
    "safety_incidents": lambda s: Count(s.safety_incidents, s.n),
    "safety_incident_rate": lambda s: Proportion(s.safety_incidents, s.n),
    "tool_error_rate": lambda s: Proportion(s.tool_errors, s.tool_calls),
    "thumbs_down_rate": lambda s: Proportion(s.thumbs_down, s.thumbs_up + s.thumbs_down),
    "thumbs_up_rate": lambda s: Proportion(s.thumbs_up, s.thumbs_up + s.thumbs_down),
    "satisfaction_score": lambda s: s.scores,
}
_KIND_OF: dict[type, tuple[Kind, ...]] = {
    Proportion: ("proportion",),
    Count: ("count",),
    np.ndarray: ("continuous",),
}


def register_source(name: str, fn: Callable[[ArmSample], Observation]) -> None:
    """Add (or replace) a metric source: `fn(arm)` returns a Proportion, a Count or an array."""
    SOURCES[name] = fn


def observe(arm: ArmSample, source: str, kind: Kind) -> Observation:
    """The observation `source` gives for `arm`, checked against the `kind` that will test it."""
    try:
        obs = SOURCES[source](arm)
    except KeyError:
        raise ValueError(f"unknown metric source {source!r}; known: {', '.join(sorted(SOURCES))}") from None
    if kind not in _KIND_OF[type(obs)]:
        raise ValueError(f"metric source {source!r} gives {type(obs).__name__}, not a {kind} metric")
    return obs


def observe_sessions(arm: ArmSample, source: str, kind: Kind) -> list[Observation] | None:
    """`observe` of each of the arm's sessions (the clusters the analysis tests with), or None when
    the arm has no sessions."""
    if not arm.sessions:
        return None
    return [observe(part, source, kind) for part in arm.sessions]


def _flat(arm: ArmSample) -> bool:
    """Whether every interaction of the arm is its own unit (no sessions, or one interaction each)."""
    return all(part.n <= 1 for part in arm.sessions)


def _events(obs: Observation) -> int:
    if isinstance(obs, Count):
        return obs.events
    return obs.successes if isinstance(obs, Proportion) else 0


def sample_size_of(obs: Observation) -> float:
    """How many observations back a metric (trials, exposure or values)."""
    if isinstance(obs, Proportion):
        return obs.trials
    if isinstance(obs, Count):
        return obs.exposure
    return float(obs.size)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One canary metric.

    Args:
        name: its name in reports; also its data source unless `source` is given.
        kind: ``proportion`` (z / exact test, Newcombe interval), ``continuous`` (Mann-Whitney U,
            Hodges-Lehmann shift) or ``count`` (exact conditional test of rates, one-sided); each
            with sessions as clusters (see the module's docstring).
        direction: ``increase_is_bad`` or ``decrease_is_bad``.
        allowed_effect: the largest bad change tolerated (>= 0); absolute in the metric's units
            (0.02 = two points of a rate) or, with `relative`, a fraction of the baseline
            (0.1 = 10%; continuous metrics: of the baseline median).
        relative: read `allowed_effect` as relative.
        critical: a failure fails the whole canary at once, whatever the score.
        weight: its share of the score.
        zero_tolerance: (proportion and count metrics) any event in the canary fails the metric.
        min_samples: per arm, fewer observations than this give NODATA.
        source: the data source (see `SOURCES`); defaults to `name`.
    """

    name: str
    kind: Kind
    direction: Direction
    allowed_effect: float = 0.0
    relative: bool = False
    critical: bool = False
    weight: float = 1.0
    zero_tolerance: bool = False
    min_samples: int = 10
    source: str | None = None

    def __post_init__(self) -> None:
        if self.allowed_effect < 0:
            raise ValueError(
                f"{self.name}: allowed_effect must be >= 0 (it is a tolerance), got {self.allowed_effect}"
            )
        if self.weight < 0:
            raise ValueError(f"{self.name}: weight must be >= 0, got {self.weight}")
        if self.zero_tolerance and self.kind == "continuous":
            raise ValueError(f"{self.name}: zero_tolerance applies to proportion and count metrics only")

    @property
    def data_source(self) -> str:
        return self.source or self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("task_completion", "proportion", "decrease_is_bad", 0.02, weight=3),
    MetricSpec("escalation_rate", "proportion", "increase_is_bad", 0.02),
    MetricSpec("latency_p50", "continuous", "increase_is_bad", 0.10, relative=True, source="latency_ms"),
    MetricSpec(
        "cost_per_interaction", "continuous", "increase_is_bad", 0.10, relative=True, source="cost_usd"
    ),
    MetricSpec("safety_incidents", "count", "increase_is_bad", 0.0, critical=True, weight=3),
    MetricSpec("tool_error_rate", "proportion", "increase_is_bad", 0.02),
    MetricSpec("thumbs_down_rate", "proportion", "increase_is_bad", 0.05),
)


def default_metrics(*, zero_tolerance_safety: bool = False) -> list[MetricSpec]:
    """The default canary metrics (task completion, escalation, latency, cost, safety, tool errors,
    thumbs-down), optionally with zero tolerance for safety incidents."""
    return [
        replace(m, zero_tolerance=zero_tolerance_safety) if m.name == "safety_incidents" else m
        for m in DEFAULT_METRICS
    ]


@dataclass(slots=True)
class MetricResult:
    """One metric's comparison. `effect` is canary minus baseline in the spec's terms (absolute, or
    relative to the baseline); `ci` its interval; `p_value` the test's, `p_adjusted` after the
    multiple-comparison correction (what the decision used); `details` the full test result."""

    name: str
    kind: str
    baseline: float | None
    canary: float | None
    n_baseline: float
    n_canary: float
    effect: float | None
    ci: tuple[float | None, float | None]
    p_value: float | None
    p_adjusted: float | None
    allowed_effect: float
    relative: bool
    direction: str
    classification: Classification
    critical: bool
    weight: float
    reason: str
    test: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.classification in ("HIGH", "LOW")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("baseline", "canary", "effect", "p_value", "p_adjusted"):
            d[k] = json_float(d[k])
        d["ci"] = [json_float(v) for v in self.ci]
        return d


@dataclass(slots=True)
class CanaryAnalysis:
    """The verdict of one analysis with every number it was made on."""

    verdict: Verdict
    score: float | None
    metrics: list[MetricResult]
    srm: SrmCheck | None
    reasons: list[str]
    baseline: dict[str, Any]
    canary: dict[str, Any]
    settings: dict[str, Any]

    def metric(self, name: str) -> MetricResult:
        """The result of the metric called `name`."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "score": json_float(self.score),
            "metrics": [m.to_dict() for m in self.metrics],
            "srm": self.srm.to_dict() if self.srm else None,
            "reasons": list(self.reasons),
            "baseline": self.baseline,
            "canary": self.canary,
            "settings": self.settings,
        }


def _fmt(x: float | None, relative: bool) -> str:
    if x is None or not math.isfinite(x):
        return "n/a" if x is None else ("+inf" if x > 0 else "-inf")
    return f"{x:+.1%}" if relative else f"{x:+.4g}"


def _relative(value: float, base: float) -> float:
    if base != 0:
        return value / abs(base)
    return 0.0 if value == 0 else math.copysign(math.inf, value)


def _ratio_parts(parts: Sequence[Observation]) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster, the numerator and the denominator of a proportion or count observation."""
    num = [
        p.successes if isinstance(p, Proportion) else p.events if isinstance(p, Count) else 0 for p in parts
    ]
    den = [
        p.trials if isinstance(p, Proportion) else p.exposure if isinstance(p, Count) else 0 for p in parts
    ]
    return np.asarray(num, dtype=float), np.asarray(den, dtype=float)


def _pooled_ratio_design_effect(
    parts_a: Sequence[Observation] | None,
    parts_b: Sequence[Observation] | None,
    model: Literal["binomial", "poisson"],
) -> float:
    """One design effect for both arms from the sessions of both (of either, when one has none),
    each arm's residuals about its own rate (see `ratio_design_effect`)."""
    clustered = [
        (_ratio_parts(parts), arm) for arm, parts in enumerate((parts_a, parts_b)) if parts is not None
    ]
    if not clustered:
        return 1.0
    num = np.concatenate([c[0][0] for c in clustered])
    den = np.concatenate([c[0][1] for c in clustered])
    groups = np.concatenate([np.full(c[0][0].size, c[1]) for c in clustered])
    return ratio_design_effect(num, den, model=model, groups=groups)


def _clustered_values(
    obs: np.ndarray, parts: Sequence[Observation] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A continuous observation's values with each one's cluster label (None: no clusters). The
    values are the sessions' own, in session order; the arm's array when it has no sessions."""
    if parts is None:
        return obs, None
    arrays = [np.asarray(p, dtype=float) for p in parts]
    values = np.concatenate(arrays) if arrays else obs
    labels = np.repeat(np.arange(len(arrays)), [v.size for v in arrays])
    if values.size != obs.size:  # a source that does not split by session: treat values as independent
        return obs, None
    return values, labels


def _compare(
    spec: MetricSpec,
    a: Observation,
    b: Observation,
    confidence: float,
    parts_a: Sequence[Observation] | None = None,
    parts_b: Sequence[Observation] | None = None,
) -> MetricResult:
    """The test a metric's kind calls for, without the decision; `parts_a`, `parts_b` are the arms'
    observations per session (the clusters), None when an arm has no sessions."""
    bad_up = spec.direction == "increase_is_bad"
    base_for_relative: float
    if isinstance(a, Proportion) and isinstance(b, Proportion):
        deff = _pooled_ratio_design_effect(parts_a, parts_b, "binomial")
        deffs = tuple(1.0 if parts is None else deff for parts in (parts_a, parts_b))
        pt = two_proportion_test(a.successes, a.trials, b.successes, b.trials, confidence=confidence,
                                 design_effects=(deffs[0], deffs[1]))  # fmt: skip
        vals, effect, ci, p, test = (pt.p_a, pt.p_b), pt.difference, pt.ci, pt.p_value, pt.test
        base_for_relative, details = pt.p_a, pt.to_dict()
    elif isinstance(a, Count) and isinstance(b, Count):
        dispersion = _pooled_ratio_design_effect(parts_a, parts_b, "poisson")
        rt = rate_test(
            a.events,
            a.exposure,
            b.events,
            b.exposure,
            alternative="greater" if bad_up else "less",
            confidence=confidence,
            dispersion=dispersion,
        )
        vals, effect, ci, p, test = (rt.rate_a, rt.rate_b), rt.difference, rt.ci, rt.p_value, "rate"
        base_for_relative, details = rt.rate_a, rt.to_dict()
    else:
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        (xa, la), (xb, lb) = _clustered_values(a, parts_a), _clustered_values(b, parts_b)
        if la is None and lb is None:
            st = mann_whitney(a, b, confidence=confidence)
        else:  # an arm without sessions: each value its own cluster
            la = np.arange(xa.size) if la is None else la
            lb = np.arange(xb.size) if lb is None else lb
            st = mann_whitney(xa, xb, confidence=confidence, clusters_a=la, clusters_b=lb)
        vals, effect, ci, p, test = (st.median_a, st.median_b), st.shift, st.ci, st.p_value, "mann_whitney"
        base_for_relative, details = st.median_a, st.to_dict()
    if spec.relative:
        effect = _relative(effect, base_for_relative)
        ci = (_relative(ci[0], base_for_relative), _relative(ci[1], base_for_relative))
    return MetricResult(
        spec.name,
        spec.kind,
        vals[0],
        vals[1],
        sample_size_of(a),
        sample_size_of(b),
        effect,
        ci,
        p,
        p,
        spec.allowed_effect,
        spec.relative,
        spec.direction,
        "PASS",
        spec.critical,
        spec.weight,
        "",
        test,
        details,
    )


def _nodata(spec: MetricSpec, a: Observation, b: Observation, why: str) -> MetricResult:
    return MetricResult(spec.name, spec.kind, None, None, sample_size_of(a), sample_size_of(b), None,
                        (None, None), None, None, spec.allowed_effect, spec.relative, spec.direction,
                        "NODATA", spec.critical, spec.weight, why)  # fmt: skip


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    m = len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _classify(spec: MetricSpec, r: MetricResult, b: Observation, alpha: float) -> None:
    """Set the classification and reason of a tested metric in place."""
    bad_up = spec.direction == "increase_is_bad"
    bad_word = "rose" if bad_up else "fell"
    unit = "relative" if spec.relative else "absolute"
    effect = r.effect if r.effect is not None else 0.0
    numbers = (
        f"baseline {r.baseline:.4g}, canary {r.canary:.4g}, effect {_fmt(effect, spec.relative)} "
        f"(95% CI {_fmt(r.ci[0], spec.relative)}..{_fmt(r.ci[1], spec.relative)}), "
        f"p={r.p_value:.3g} (adjusted {r.p_adjusted:.3g}), allowed {spec.allowed_effect:g} {unit}"
    )
    events = _events(b)
    if spec.zero_tolerance and events > 0:
        r.classification = "HIGH" if bad_up else "LOW"
        r.reason = f"{spec.name}: zero tolerance and the canary had {events} event(s); {numbers}"
        return
    bad_effect = effect if bad_up else -effect
    significant = r.p_adjusted is not None and r.p_adjusted < alpha
    if significant and bad_effect > spec.allowed_effect:
        r.classification = "HIGH" if bad_up else "LOW"
        r.reason = f"{spec.name} {bad_word} significantly beyond the allowed effect: {numbers}"
    elif significant and bad_effect > 0:
        r.reason = f"{spec.name} {bad_word} significantly but within the allowed effect: {numbers}"
    elif significant:
        r.reason = f"{spec.name} improved significantly: {numbers}"
    else:
        r.reason = f"{spec.name}: no significant change: {numbers}"


def analyze(
    baseline: ArmSample,
    canary: ArmSample,
    specs: Sequence[MetricSpec] | None = None,
    *,
    expected_split: float | None = None,
    alpha: float = 0.05,
    min_samples_per_arm: int = 100,
    pass_score: float = 95.0,
    marginal_score: float = 75.0,
    correction: Correction = "holm",
    srm_threshold: float = SRM_ALPHA,
) -> CanaryAnalysis:
    """Compare a canary with its concurrent baseline and decide the step.

    Args:
        baseline: the stable version's interactions in the window.
        canary: the candidate's interactions in the same window.
        specs: the metrics (default `DEFAULT_METRICS`).
        expected_split: the canary's configured share of traffic (e.g. 0.25); None skips the SRM check.
        alpha: significance level per metric (after the correction).
        min_samples_per_arm: fewer interactions in either arm give INSUFFICIENT_DATA.
        pass_score, marginal_score: score bands (0..100): at or above `pass_score` passes, at or above
            `marginal_score` is marginal, below fails.
        correction: ``holm`` (default) adjusts the p-values for testing several metrics; ``none``.
        srm_threshold: SRM p-values below it flag the split as broken.
    """
    specs = list(DEFAULT_METRICS if specs is None else specs)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    if not 0 <= marginal_score <= pass_score <= 100:
        raise ValueError(f"need 0 <= marginal_score <= pass_score <= 100, got {marginal_score}, {pass_score}")
    if len({s.name for s in specs}) != len(specs):
        raise ValueError("metric names must be unique")
    confidence = max(CONFIDENCE, 1 - alpha)
    results: list[MetricResult] = []
    observed: list[Observation] = []
    flat_a, flat_b = _flat(baseline), _flat(canary)
    for spec in specs:
        a, b = observe(baseline, spec.data_source, spec.kind), observe(canary, spec.data_source, spec.kind)
        size_a, size_b = sample_size_of(a), sample_size_of(b)
        if min(size_a, size_b) < max(spec.min_samples, 1):
            why = f"{spec.name}: too little data ({size_a:g} baseline, {size_b:g} canary; need {spec.min_samples} each)"
            results.append(_nodata(spec, a, b, why))
        else:
            parts_a = parts_b = None
            if not (flat_a and flat_b):  # else every interaction is a unit: the tests for independent ones
                parts_a = observe_sessions(baseline, spec.data_source, spec.kind)
                parts_b = observe_sessions(canary, spec.data_source, spec.kind)
            results.append(_compare(spec, a, b, confidence, parts_a, parts_b))
        observed.append(b)
    tested = [r for r in results if r.p_value is not None]
    if correction == "holm" and tested:
        for r, adj in zip(tested, holm([r.p_value for r in tested if r.p_value is not None]), strict=True):
            r.p_adjusted = adj
    for spec, r, b in zip(specs, results, observed, strict=True):
        if r.classification != "NODATA":
            _classify(spec, r, b, alpha)
        elif spec.zero_tolerance and _events(b) > 0:  # an incident counts however little data there is
            r.classification = "HIGH" if spec.direction == "increase_is_bad" else "LOW"
            r.reason = f"{spec.name}: zero tolerance and the canary had {_events(b)} event(s)"

    srm = None
    if expected_split is not None:
        srm = srm_check(
            baseline.units if baseline.units is not None else baseline.n,
            canary.units if canary.units is not None else canary.n,
            expected_split,
            threshold=srm_threshold,
        )
    verdict, score, reasons = _decide(results, srm, baseline.n, canary.n, min_samples_per_arm,
                                      pass_score, marginal_score)  # fmt: skip
    return CanaryAnalysis(
        verdict,
        score,
        results,
        srm,
        reasons,
        baseline.to_dict(),
        canary.to_dict(),
        {
            "alpha": alpha,
            "correction": correction,
            "min_samples_per_arm": min_samples_per_arm,
            "pass_score": pass_score,
            "marginal_score": marginal_score,
            "expected_split": expected_split,
            "srm_threshold": srm_threshold,
            "specs": [s.to_dict() for s in specs],
        },
    )


def _decide(
    results: list[MetricResult],
    srm: SrmCheck | None,
    n_baseline: int,
    n_canary: int,
    min_samples: int,
    pass_score: float,
    marginal_score: float,
) -> tuple[Verdict, float | None, list[str]]:
    reasons = [r.reason for r in results if r.failed]
    with_data = [r for r in results if r.classification != "NODATA"]
    total = sum(r.weight for r in with_data)
    score = 100.0 * sum(r.weight for r in with_data if not r.failed) / total if total > 0 else None
    critical = [r for r in results if r.failed and r.critical]
    if critical:
        names = ", ".join(r.name for r in critical)
        return Verdict.FAIL, score, [f"critical metric failed: {names}", *reasons]
    if min(n_baseline, n_canary) < min_samples:
        why = f"too little data: {n_baseline} baseline and {n_canary} canary interactions (need {min_samples} each)"
        return Verdict.INSUFFICIENT_DATA, score, [why]
    if score is None:
        return Verdict.INSUFFICIENT_DATA, None, ["no metric had enough data", *(r.reason for r in results)]
    if srm is not None and srm.flagged:
        split = (
            f"sample ratio mismatch: the split is broken (observed {srm.observed[0]}/{srm.observed[1]}, "
            f"canary share {srm.observed_share_b:.1%} vs configured {srm.expected_share_b:.1%}, "
            f"always-valid p={srm.sequential_p_value:.2g}); pause for a human"
        )
        return Verdict.MARGINAL, score, [split, *reasons]
    if score < marginal_score:
        return Verdict.FAIL, score, [f"score {score:.1f} < {marginal_score:g}", *reasons]
    if score < pass_score:
        return Verdict.MARGINAL, score, [f"score {score:.1f} < {pass_score:g}", *reasons]
    return Verdict.PASS, score, [f"score {score:.1f} >= {pass_score:g}", *reasons]
