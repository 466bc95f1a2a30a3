"""The statistical tests behind canary analysis and A/B experiments.

Every function is pure: counts or arrays in, a small frozen result with the estimate, its
confidence interval and the p-value out. Differences are always `b - a` (canary minus baseline,
B minus A). Distributions come from scipy; nothing here hand-rolls one. The normal and chi-square
quantiles and tails are scipy.special's functions, the very ones scipy.stats' `norm` and `chi2` call
(`norm.ppf` is `ndtri`, `norm.sf(z)` is `ndtr(-z)`, `chi2.ppf(q, df)` is `2 * gammaincinv(df / 2, q)`),
checked equal on many inputs in tests/server/test_serve_imports.py. The functions that need more
(Fisher, Barnard, Mann-Whitney, Welch, binomial, chi-square) import scipy.stats when they run: its
import costs 0.3-0.5 s of CPU on a quiet machine (over 2 s on a loaded one), which a process that
only imports this module (or the rollout face) does not pay.

- `two_proportion_test`: pooled z-test, or Fisher's / Barnard's exact test when an expected cell
  count is small; the interval is Newcombe's hybrid score interval (Wilson intervals combined).
- `mann_whitney`: Mann-Whitney U with the Hodges-Lehmann shift and its distribution-free interval.
- `ratio_design_effect`, `rank_design_effect`: how much clustering (several interactions of one
  session, the unit a canary randomizes) inflates a statistic's variance over independent
  observations. `two_proportion_test`, `rate_test` and `mann_whitney` take them (or the clusters)
  and test on effective sample sizes; a design effect of 1 gives the unclustered answer exactly.
- `welch_t_test`: difference of means, Welch's t-test and interval; with clusters, on the
  cluster-robust variances of the means (`variance_of_mean`).
- `rate_test`: exact conditional binomial test of two Poisson rates (safety incidents), optionally
  on overdispersed (quasi-Poisson) effective counts.
- `srm_check`: always-valid (sequential) test of the observed split against the configured one,
  with the chi-square test beside it.
- `msprt`: the always-valid mixture sequential probability ratio test (Johari et al.).
- `sample_size`, `sample_size_means`: units per arm for a two-sided (or one-sided) test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import special

from shipyard.evals import wilson_interval

CONFIDENCE = 0.95
SRM_ALPHA = 0.001
# The sequential SRM test's prior: a Dirichlet worth this many units, centred on the configured split.
SRM_PRIOR_UNITS = 100.0
# Pairwise differences kept in memory for the Hodges-Lehmann estimate before sampling them instead.
MAX_PAIRS = 1_000_000
# Below this expected count in any cell of the 2x2 table the z-test's normal approximation is poor.
MIN_EXPECTED = 5.0

Alternative = Literal["two-sided", "greater", "less"]
SmallSample = Literal["fisher", "barnard"]
Interval = tuple[float, float]

__all__ = [
    "CONFIDENCE",
    "SRM_ALPHA",
    "ProportionTest",
    "RateTest",
    "SequentialResult",
    "ShiftTest",
    "SrmCheck",
    "WelchTest",
    "hodges_lehmann",
    "mann_whitney",
    "msprt",
    "newcombe_interval",
    "rank_design_effect",
    "rate_test",
    "ratio_design_effect",
    "sample_size",
    "sample_size_means",
    "srm_check",
    "two_proportion_test",
    "variance_of_mean",
    "welch_t_test",
    "wilson_interval",
]


def json_float(x: float | None) -> float | None:
    """`x` as JSON can carry it: NaN and infinities become None."""
    return None if x is None or not math.isfinite(x) else float(x)


def _to_dict(obj: Any) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return json_float(v)
        if isinstance(v, tuple | list):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v

    return {k: clean(v) for k, v in asdict(obj).items()}


def _z(confidence: float) -> float:
    return float(special.ndtri(0.5 + confidence / 2))  # stats.norm.ppf


def _mover(d: float, p1: float, ci1: Interval, p2: float, ci2: Interval) -> Interval:
    """Interval for `p2 - p1` from each estimate's own interval (the MOVER method; with Wilson
    intervals this is Newcombe's hybrid score interval)."""
    lower = d - math.sqrt((p2 - ci2[0]) ** 2 + (ci1[1] - p1) ** 2)
    upper = d + math.sqrt((ci2[1] - p2) ** 2 + (p1 - ci1[0]) ** 2)
    return (lower, upper)


def newcombe_interval(x_a: int, n_a: int, x_b: int, n_b: int, confidence: float = CONFIDENCE) -> Interval:
    """Newcombe's hybrid score interval (his method 10) for the difference of proportions `b - a`.

    Args:
        x_a, n_a: successes and trials in arm a; x_b, n_b: the same in arm b (both n > 0).
        confidence: the two-sided confidence level.
    """
    p_a, p_b = x_a / n_a, x_b / n_b
    return _mover(
        p_b - p_a, p_a, wilson_interval(x_a, n_a, confidence), p_b, wilson_interval(x_b, n_b, confidence)
    )


def ratio_design_effect(
    numerators: Sequence[float] | np.ndarray,
    denominators: Sequence[float] | np.ndarray,
    *,
    model: Literal["binomial", "poisson"] = "binomial",
    groups: Sequence[Any] | np.ndarray | None = None,
) -> float:
    """The design effect of the ratio `sum(numerators) / sum(denominators)` over clusters.

    Each cluster (a session) contributes its events and its trials (or exposure). The ratio's
    variance is the delta method's for a ratio of cluster sums (Deng, Knoblich and Lu 2018, "Applying
    the Delta Method in Metric Analytics"): `k / (k - 1) * sum((x_i - r n_i)^2) / N^2` over the `k`
    clusters with trials, `N` trials in all (the factor `k / (k - 1)` is the usual small-sample
    correction of cluster-robust variances). The design effect is that variance over the one the
    ratio would have if the `N` trials were independent: `r (1 - r) / N` (binomial) or `r / N`
    (Poisson).

    With `groups` (e.g. each cluster's arm), every group keeps its own ratio `r` and the design
    effect is pooled: the groups' sums of squared residuals over the sum of their independent-trial
    variances (on the scale of the sums), one design effect for all groups as in Rao and Scott's
    first-order correction, and a steadier estimate than a small group's own.

    It is at least 1 (a smaller estimate is taken as 1, the conservative reading), and exactly 1
    when every cluster has at most one trial or the ratio has no variance (no events, or all events).
    When no group has two clusters with trials but some cluster has several trials, it is `N`: the
    whole sample counts as one observation.

    Args:
        numerators, denominators: per cluster, its events and its trials (same length).
        model: ``binomial`` (a proportion of trials) or ``poisson`` (events per unit of exposure).
        groups: per cluster, its group; None: one group.
    """
    x, n = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    g = (
        np.zeros(x.size, dtype=int)
        if groups is None
        else np.unique(np.asarray(groups), return_inverse=True)[1]
    )
    if x.shape != n.shape or g.size != x.size:
        raise ValueError(
            f"one numerator, denominator and group per cluster, got {x.size}, {n.size}, {g.size}"
        )
    keep = n > 0
    x, n, g = x[keep], n[keep], g[keep]
    total = float(n.sum())
    if total == 0 or bool(np.all(n <= 1)):
        return 1.0
    clustered = iid = 0.0
    informative = False
    for group in np.unique(g):
        xg, ng = x[g == group], n[g == group]
        if xg.size < 2:
            continue
        informative = True
        r = float(xg.sum() / ng.sum())
        iid += float(ng.sum()) * (r * (1 - r) if model == "binomial" else r)
        clustered += xg.size / (xg.size - 1) * float(np.sum((xg - r * ng) ** 2))
    if not informative:
        return total
    if iid <= 0:
        return 1.0
    return max(1.0, clustered / iid)


def _placements(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values: for each of `x` the share of `y` above it, for each of `y` the
    share of `x` below it (ties count half). Both average to `U / (n_x n_y)`."""
    xs, ys = np.sort(x), np.sort(y)
    below = (np.searchsorted(xs, y, "left") + np.searchsorted(xs, y, "right")) / (2 * x.size)
    above = (2 * y.size - np.searchsorted(ys, x, "left") - np.searchsorted(ys, x, "right")) / (2 * y.size)
    return above, below


def _cluster_sum_of_squares(values: np.ndarray, labels: np.ndarray, mean: float) -> float | None:
    """`k / (k - 1)` times the sum over the `k` clusters of (cluster sum - size * mean)^2: the
    cluster-robust variance of the values' sum (None with fewer than two clusters)."""
    _, index = np.unique(labels, return_inverse=True)
    sums = np.bincount(index, weights=values)
    sizes = np.bincount(index)
    k = sums.size
    if k < 2:
        return None
    return k / (k - 1) * float(np.sum((sums - sizes * mean) ** 2))


def rank_design_effect(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    clusters_a: Sequence[Any] | np.ndarray,
    clusters_b: Sequence[Any] | np.ndarray,
) -> float:
    """The design effect of the Mann-Whitney statistic when the values come in clusters.

    The statistic `U / (n_a n_b)` is the mean of each arm's placement values (DeLong et al. 1988),
    and with clusters the variance of each arm's placement sum is the cluster-robust one, from the
    clusters' sums of placements (Obuchowski 1997, "Nonparametric analysis of clustered ROC curve
    data"; the clustered rank-sum test of Rosner, Glynn and Lee 2003 rests on the same idea). The
    design effect is pooled over the two arms, as for `ratio_design_effect` with groups: the arms'
    cluster-robust variances of their placement sums over the same with every value its own
    cluster. It is at least 1, exactly 1 when every cluster holds one value; when neither arm has
    two clusters it is `max(n_a, n_b)` (each arm one observation).

    Args:
        a, b: the two samples; clusters_a, clusters_b: each value's cluster label (any hashable
            sortable values, e.g. session indices), one per value.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    la, lb = np.asarray(clusters_a), np.asarray(clusters_b)
    if la.shape != x.shape or lb.shape != y.shape:
        raise ValueError("one cluster label per value")
    if x.size == 0 or y.size == 0:
        raise ValueError("both samples need at least one value")
    if np.unique(la).size == x.size and np.unique(lb).size == y.size:
        return 1.0
    above, below = _placements(x, y)
    theta = float(below.mean())
    clustered = iid = 0.0
    informative = False
    for placements, labels in ((above, la), (below, lb)):
        cl = _cluster_sum_of_squares(placements, labels, theta)
        if cl is None:
            continue
        informative = True
        clustered += cl
        iid += placements.size / (placements.size - 1) * float(np.sum((placements - theta) ** 2))
    if not informative:
        return float(max(x.size, y.size))
    if iid <= 0:
        return 1.0
    return max(1.0, clustered / iid)


@dataclass(frozen=True, slots=True)
class ProportionTest:
    """Two proportions compared. `difference` is `p_b - p_a`; `ci` its Newcombe interval;
    `relative` is `p_b / p_a - 1` (None when `p_a` is 0); `test` names what gave the p-value;
    `design_effect_a`, `design_effect_b` the design effects the test and interval used (1: the
    trials were taken as independent)."""

    x_a: int
    n_a: int
    x_b: int
    n_b: int
    p_a: float
    p_b: float
    difference: float
    ci: Interval
    relative: float | None
    p_value: float
    test: str  # z | fisher | barnard
    alternative: str
    design_effect_a: float = 1.0
    design_effect_b: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


def two_proportion_test(
    x_a: int,
    n_a: int,
    x_b: int,
    n_b: int,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = CONFIDENCE,
    small_sample: SmallSample = "fisher",
    design_effects: tuple[float, float] = (1.0, 1.0),
) -> ProportionTest:
    """Compare two proportions.

    The pooled two-proportion z-test when every expected cell count of the 2x2 table is at least 5;
    otherwise an exact test (Fisher's, or Barnard's unconditional test, which has more power but
    costs more). The two agree closely where both apply.

    When the trials come in clusters (the turns of a session), each arm's counts are divided by its
    design effect (`ratio_design_effect`) and the same tests and interval are applied to these
    effective counts: Rao and Scott's adjustment ("A simple method for the analysis of clustered
    binary data", 1992). The exact tests take the effective counts rounded (trials to at least 1).

    Args:
        x_a, n_a: successes and trials in arm a (the baseline); x_b, n_b: in arm b (the candidate).
        alternative: ``two-sided``, or ``greater`` / ``less`` for `p_b` above / below `p_a`.
        confidence: level of the interval for the difference.
        small_sample: the exact test for small counts, ``fisher`` or ``barnard``.
        design_effects: arm a's and arm b's design effects (>= 1); 1 and 1 treat every trial as
            independent.
    """
    if n_a <= 0 or n_b <= 0:
        raise ValueError(f"both arms need trials, got n_a={n_a}, n_b={n_b}")
    for x, n in ((x_a, n_a), (x_b, n_b)):
        if not 0 <= x <= n:
            raise ValueError(f"successes must be within 0..{n}, got {x}")
    d_a, d_b = design_effects
    if not (d_a >= 1 and d_b >= 1):
        raise ValueError(f"design effects must be >= 1, got {d_a} and {d_b}")
    p_a, p_b = x_a / n_a, x_b / n_b
    # effective counts (the counts themselves when the design effects are 1)
    ya, ea = (x_a, n_a) if d_a == 1 else (x_a / d_a, n_a / d_a)
    yb, eb = (x_b, n_b) if d_b == 1 else (x_b / d_b, n_b / d_b)
    pooled = (ya + yb) / (ea + eb)
    expected = min(n * q for n in (ea, eb) for q in (pooled, 1 - pooled))
    if expected >= MIN_EXPECTED:
        se = math.sqrt(pooled * (1 - pooled) * (1 / ea + 1 / eb))
        z = (p_b - p_a) / se
        if alternative == "two-sided":
            p = 2 * float(special.ndtr(-abs(z)))  # stats.norm.sf(abs(z))
        else:  # stats.norm.sf(z) or stats.norm.cdf(z)
            p = float(special.ndtr(-z) if alternative == "greater" else special.ndtr(z))
        test = "z"
    else:
        # Rows: arm b then arm a, so the table's "greater" means p_b > p_a as in the z-test.
        (ia, ma), (ib, mb) = _integer_counts(x_a, n_a, d_a), _integer_counts(x_b, n_b, d_b)
        table = [[ib, mb - ib], [ia, ma - ia]]
        from scipy import stats

        if small_sample == "barnard":
            p = float(stats.barnard_exact(table, alternative=alternative).pvalue)
        else:
            p = float(stats.fisher_exact(table, alternative=alternative).pvalue)
        test = small_sample
    return ProportionTest(
        x_a,
        n_a,
        x_b,
        n_b,
        p_a,
        p_b,
        p_b - p_a,
        _mover(p_b - p_a, p_a, wilson_interval(ya, ea, confidence), p_b, wilson_interval(yb, eb, confidence)),
        p_b / p_a - 1 if p_a > 0 else None,
        min(1.0, p),
        test,
        alternative,
        d_a,
        d_b,
    )


def _integer_counts(x: int, n: int, design_effect: float) -> tuple[int, int]:
    """Effective successes and trials as whole numbers, for the exact tests."""
    if design_effect == 1:
        return x, n
    trials = max(1, round(n / design_effect))
    return round(x / n * trials), trials


@dataclass(frozen=True, slots=True)
class ShiftTest:
    """Two samples of a continuous value compared without assuming a distribution. `shift` is the
    Hodges-Lehmann estimate of how much b is above a (the median of all differences `b_j - a_i`);
    `ci` its distribution-free interval; `pairs` how many differences were used (all, or a
    deterministic random subset when `n_a * n_b` is huge). With clustered values, `design_effect` is
    the U statistic's (`rank_design_effect`) and `clusters_a`, `clusters_b` count the clusters."""

    n_a: int
    n_b: int
    median_a: float
    median_b: float
    mean_a: float
    mean_b: float
    shift: float
    ci: Interval
    u: float
    p_value: float
    pairs: int
    alternative: str
    design_effect: float = 1.0
    clusters_a: int | None = None
    clusters_b: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


def _pairwise_differences(a: np.ndarray, b: np.ndarray, max_pairs: int, seed: int) -> np.ndarray:
    if a.size * b.size <= max_pairs:
        return np.subtract.outer(b, a).ravel()
    rng = np.random.default_rng(seed)
    return b[rng.integers(0, b.size, max_pairs)] - a[rng.integers(0, a.size, max_pairs)]


def hodges_lehmann(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
    design_effect: float = 1.0,
) -> tuple[float, Interval, int]:
    """The Hodges-Lehmann shift of b over a, its interval and how many pairwise differences it used.

    The interval (Moses) lies between the k-th smallest and k-th largest of the n_a * n_b
    differences, with k from the normal approximation of the Mann-Whitney U distribution (its
    variance times `design_effect` when the values are clustered: the interval then inverts the
    clustered test `mann_whitney` makes). Above `max_pairs` differences, that many pairs are drawn at
    random (seeded, so the answer is repeatable) and the same quantiles are read from them.

    Args:
        a, b: the two samples (non-empty).
        confidence: the two-sided level of the interval.
        max_pairs: the most pairwise differences to hold in memory.
        seed: the seed of the pair sampling.
        design_effect: the U statistic's design effect (`rank_design_effect`, >= 1).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        raise ValueError("both samples need at least one value")
    diffs = _pairwise_differences(x, y, max_pairs, seed)
    total = x.size * y.size
    # Hollander & Wolfe: the bounds are the C-th smallest and the C-th largest difference.
    var_u = total * (x.size + y.size + 1) / 12
    c = math.floor(
        total / 2 - _z(confidence) * math.sqrt(var_u if design_effect == 1 else var_u * design_effect)
    )
    c = max(c, 1)  # tiny samples: the interval is the whole range of differences
    m = diffs.size
    lo_at, hi_at = min((c - 1) * m // total, m - 1), min((total - c) * m // total, m - 1)
    # the four order statistics wanted, each in its sorted place (a partial sort: up to MAX_PAIRS values)
    ranked = np.partition(diffs, sorted({lo_at, hi_at, (m - 1) // 2, m // 2}))
    median = (ranked[(m - 1) // 2] + ranked[m // 2]) / 2  # as np.median
    return float(median), (float(ranked[lo_at]), float(ranked[hi_at])), m


def mann_whitney(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = CONFIDENCE,
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
    clusters_a: Sequence[Any] | np.ndarray | None = None,
    clusters_b: Sequence[Any] | np.ndarray | None = None,
) -> ShiftTest:
    """Mann-Whitney U test of b against a, with the Hodges-Lehmann shift and its interval.

    With cluster labels (the session of each value) and some cluster of more than one value, the
    test is the clustered rank-sum test: U's normal approximation (tie-corrected, no continuity
    correction) with its variance multiplied by U's design effect (`rank_design_effect`), and the
    interval of the shift widened the same way. Without labels, or with one value per cluster, it
    is scipy's Mann-Whitney U exactly as for independent values.

    Args:
        a, b: the baseline and candidate samples (e.g. latency in ms), each non-empty.
        alternative: ``two-sided``, ``greater`` (b tends to be larger) or ``less``.
        confidence, max_pairs, seed: as in `hodges_lehmann`.
        clusters_a, clusters_b: each value's cluster label (both or neither).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    deff, k_a, k_b = 1.0, None, None
    if clusters_a is not None and clusters_b is not None:
        deff = rank_design_effect(x, y, clusters_a, clusters_b)
        k_a, k_b = int(np.unique(np.asarray(clusters_a)).size), int(np.unique(np.asarray(clusters_b)).size)
    clustered = k_a is not None and k_b is not None and (k_a < x.size or k_b < y.size)
    shift, ci, pairs = hodges_lehmann(
        x, y, confidence=confidence, max_pairs=max_pairs, seed=seed, design_effect=deff
    )
    if np.all(x == x[0]) and np.all(y == x[0]):
        u, p = x.size * y.size / 2, 1.0  # one value everywhere: scipy would divide by zero
    elif clustered:
        u, p = _clustered_u_test(x, y, deff, alternative)
    else:
        from scipy import stats

        res = stats.mannwhitneyu(y, x, alternative=alternative)
        u, p = float(res.statistic), float(res.pvalue)
    return ShiftTest(
        int(x.size),
        int(y.size),
        float(np.median(x)),
        float(np.median(y)),
        float(np.mean(x)),
        float(np.mean(y)),
        shift,
        ci,
        u,
        p,
        pairs,
        alternative,
        deff,
        k_a,
        k_b,
    )


def _clustered_u_test(
    x: np.ndarray, y: np.ndarray, deff: float, alternative: Alternative
) -> tuple[float, float]:
    """U of `y` over `x` and its p-value from the normal approximation with the tie-corrected null
    variance times the design effect."""
    from scipy import stats

    n_x, n_y = x.size, y.size
    both = np.concatenate([x, y])
    ranks = stats.rankdata(both)
    u = float(ranks[n_x:].sum() - n_y * (n_y + 1) / 2)
    _, ties = np.unique(both, return_counts=True)
    n = n_x + n_y
    var = n_x * n_y / 12 * ((n + 1) - float(np.sum(ties**3 - ties)) / (n * (n - 1)))
    z = (u - n_x * n_y / 2) / math.sqrt(var * deff)
    if alternative == "two-sided":
        p = 2 * float(special.ndtr(-abs(z)))
    else:
        p = float(special.ndtr(-z) if alternative == "greater" else special.ndtr(z))
    return u, min(1.0, p)


@dataclass(frozen=True, slots=True)
class WelchTest:
    """The difference of means `mean_b - mean_a` with Welch's t-test and interval."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    sd_a: float
    sd_b: float
    difference: float
    ci: Interval
    t: float
    df: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


def variance_of_mean(
    values: Sequence[float] | np.ndarray, clusters: Sequence[Any] | np.ndarray | None = None
) -> float:
    """The estimated variance of the mean of `values`: `s^2 / n` for independent values; with
    cluster labels, the cluster-robust one (Liang and Zeger 1986, with the usual small-sample
    factor): `k / (k - 1) * sum((cluster sum - size * mean)^2) / n^2` over the `k` clusters, but
    never below `s^2 / n` (a design effect below 1 is taken as 1, the conservative reading, as in
    `ratio_design_effect`). With one value per cluster the two are the same quantity. Its ratio to
    `s^2 / n` is the mean's design effect.

    Args:
        values: the sample, at least two values (with clusters: at least two clusters).
        clusters: each value's cluster label (e.g. its session or user), one per value; None: each
            value its own.
    """
    x = np.asarray(values, dtype=float)
    if clusters is None:
        if x.size < 2:
            raise ValueError("the variance of a mean needs at least two values")
        return float(np.var(x, ddof=1)) / x.size
    labels = np.asarray(clusters)
    if labels.shape != x.shape:
        raise ValueError("one cluster label per value")
    robust = _cluster_sum_of_squares(x, labels, float(x.mean())) if x.size else None
    if robust is None:
        raise ValueError("the cluster-robust variance of a mean needs at least two clusters")
    return max(robust / x.size**2, float(np.var(x, ddof=1)) / x.size)


def welch_t_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    clusters_a: Sequence[Any] | np.ndarray | None = None,
    clusters_b: Sequence[Any] | np.ndarray | None = None,
) -> WelchTest:
    """Welch's two-sample t-test (unequal variances) of the means, two-sided.

    With cluster labels (the unit of each value, e.g. its session) and some cluster of more than one
    value, each mean's variance is the cluster-robust one (`variance_of_mean`, never below the
    independent values' one), the t statistic and the interval use their sum, and the degrees of
    freedom are Welch-Satterthwaite's with `k - 1` per arm for its `k` clusters (the clusters, not
    the values, are the independent observations).
    `sd_a`, `sd_b` stay the standard deviations of the values. Without labels, or with one value per
    cluster, it is scipy's Welch test exactly as for independent values.

    Args:
        a, b: the samples, at least two values each (with clusters: at least two clusters each).
        confidence: level of the interval for the difference.
        clusters_a, clusters_b: each value's cluster label (both or neither).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        raise ValueError("Welch's t-test needs at least two values per sample")
    sd_a, sd_b = float(np.std(x, ddof=1)), float(np.std(y, ddof=1))
    diff = float(y.mean() - x.mean())
    if sd_a == 0 and sd_b == 0:  # no spread at all: the means either differ for sure or not at all
        p = 1.0 if diff == 0 else 0.0
        return WelchTest(x.size, y.size, float(x.mean()), float(y.mean()), 0.0, 0.0, diff, (diff, diff),
                         math.copysign(math.inf, diff) if diff else 0.0, math.nan, p)  # fmt: skip
    if clusters_a is not None and clusters_b is not None:
        la, lb = np.asarray(clusters_a), np.asarray(clusters_b)
        k_a, k_b = int(np.unique(la).size), int(np.unique(lb).size)
        if k_a < x.size or k_b < y.size:
            return _clustered_welch(x, y, la, lb, k_a, k_b, sd_a, sd_b, confidence)
    from scipy import stats

    res = stats.ttest_ind(y, x, equal_var=False)
    ci = res.confidence_interval(confidence_level=confidence)
    return WelchTest(
        int(x.size),
        int(y.size),
        float(x.mean()),
        float(y.mean()),
        sd_a,
        sd_b,
        diff,
        (float(ci.low), float(ci.high)),
        float(res.statistic),
        float(res.df),
        float(res.pvalue),
    )


def _clustered_welch(
    x: np.ndarray,
    y: np.ndarray,
    la: np.ndarray,
    lb: np.ndarray,
    k_a: int,
    k_b: int,
    sd_a: float,
    sd_b: float,
    confidence: float,
) -> WelchTest:
    """`welch_t_test` with the cluster-robust variances of the two means (some value has spread,
    so their sum, never below the independent values' one, is positive)."""
    if k_a < 2 or k_b < 2:
        raise ValueError(f"a clustered t-test needs at least two clusters per sample, got {k_a} and {k_b}")
    v_a, v_b = variance_of_mean(x, la), variance_of_mean(y, lb)
    mean_a, mean_b = float(x.mean()), float(y.mean())
    diff = mean_b - mean_a
    se = math.sqrt(v_a + v_b)
    df = (v_a + v_b) ** 2 / (v_a**2 / (k_a - 1) + v_b**2 / (k_b - 1))
    t = diff / se
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = 2 * float(stats.t.sf(abs(t), df))
    return WelchTest(int(x.size), int(y.size), mean_a, mean_b, sd_a, sd_b, diff, (diff - half, diff + half),
                     t, df, min(1.0, p))  # fmt: skip


@dataclass(frozen=True, slots=True)
class RateTest:
    """Two event rates (events per unit of exposure, e.g. safety incidents per interaction).

    `ratio` is `rate_b / rate_a` with its exact interval `ratio_ci` (None bounds mean unbounded);
    `difference` is `rate_b - rate_a` with a MOVER interval from the arms' exact Poisson intervals.
    The p-value is the exact conditional binomial test: given the total count, arm b's share of
    events is binomial with its share of exposure under equal rates. `dispersion` is the
    overdispersion the test allowed for (1: events independent)."""

    events_a: float
    exposure_a: float
    events_b: float
    exposure_b: float
    rate_a: float
    rate_b: float
    difference: float
    ci: Interval
    ratio: float | None
    ratio_ci: tuple[float | None, float | None]
    p_value: float
    alternative: str
    dispersion: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


def _poisson_interval(k: float, confidence: float) -> Interval:
    """The exact (Garwood) interval for a Poisson mean from one count (an effective, non-integer
    count reads the same gamma quantiles)."""
    tail = (1 - confidence) / 2
    # stats.chi2.ppf(q, df) / 2 is 2 * gammaincinv(df / 2, q) / 2, exactly gammaincinv(df / 2, q)
    lo = 0.0 if k == 0 else float(special.gammaincinv(k, tail))
    return (lo, float(special.gammaincinv(k + 1, 1 - tail)))


def rate_test(
    events_a: int,
    exposure_a: float,
    events_b: int,
    exposure_b: float,
    *,
    alternative: Alternative = "greater",
    confidence: float = CONFIDENCE,
    dispersion: float = 1.0,
) -> RateTest:
    """Compare the event rates of two arms; by default one-sided: is b's rate higher?

    With `dispersion` above 1 (events that come in clusters, e.g. several incidents in one session;
    see `ratio_design_effect` with ``poisson``), both arms' events and exposures are divided by it,
    the quasi-Poisson reading of overdispersed counts, and the same conditional test is made on
    these effective counts: its binomial tail and the Clopper-Pearson bounds are the regularized
    incomplete beta function, which takes non-integer counts (the two-sided p-value is then twice
    the smaller tail). A dispersion of 1 is the exact test as for independent events.

    Args:
        events_a, exposure_a: events counted in arm a and its exposure (e.g. interactions, > 0).
        events_b, exposure_b: the same in arm b.
        alternative: ``greater`` (b's rate is higher; the default, for incidents), ``less`` or
            ``two-sided``.
        confidence: level of the intervals.
        dispersion: the events' overdispersion, common to both arms (>= 1).
    """
    if exposure_a <= 0 or exposure_b <= 0:
        raise ValueError(f"both arms need exposure, got {exposure_a} and {exposure_b}")
    if events_a < 0 or events_b < 0:
        raise ValueError("event counts cannot be negative")
    if not dispersion >= 1:
        raise ValueError(f"dispersion must be >= 1, got {dispersion}")
    if dispersion != 1:
        return _overdispersed_rate_test(
            events_a, exposure_a, events_b, exposure_b, alternative, confidence, dispersion
        )
    rate_a, rate_b = events_a / exposure_a, events_b / exposure_b
    total = events_a + events_b
    share = exposure_b / (exposure_a + exposure_b)
    ratio: float | None = None
    ratio_ci: tuple[float | None, float | None] = (None, None)
    if total == 0:
        p = 1.0
    else:
        from scipy import stats

        bt = stats.binomtest(events_b, total, share, alternative=alternative)
        p = float(bt.pvalue)
        # The interval for b's share of events maps one to one onto the rate ratio.
        ci = stats.binomtest(events_b, total, share).proportion_ci(confidence, method="exact")
        odds = (1 - share) / share

        def to_ratio(pi: float) -> float | None:
            return None if pi >= 1 else pi / (1 - pi) * odds

        ratio = to_ratio(events_b / total)
        ratio_ci = (to_ratio(float(ci.low)), to_ratio(float(ci.high)))
    ci_a = tuple(v / exposure_a for v in _poisson_interval(events_a, confidence))
    ci_b = tuple(v / exposure_b for v in _poisson_interval(events_b, confidence))
    diff_ci = _mover(rate_b - rate_a, rate_a, (ci_a[0], ci_a[1]), rate_b, (ci_b[0], ci_b[1]))
    return RateTest(
        events_a,
        exposure_a,
        events_b,
        exposure_b,
        rate_a,
        rate_b,
        rate_b - rate_a,
        diff_ci,
        ratio,
        ratio_ci,
        p,
        alternative,
    )


def _overdispersed_rate_test(
    events_a: int,
    exposure_a: float,
    events_b: int,
    exposure_b: float,
    alternative: Alternative,
    confidence: float,
    dispersion: float,
) -> RateTest:
    """`rate_test` on the effective counts `events / dispersion`, `exposure / dispersion`."""
    ka, ea = events_a / dispersion, exposure_a / dispersion
    kb, eb = events_b / dispersion, exposure_b / dispersion
    rate_a, rate_b = events_a / exposure_a, events_b / exposure_b
    total = ka + kb
    share = eb / (ea + eb)
    ratio: float | None = None
    ratio_ci: tuple[float | None, float | None] = (None, None)
    if total == 0:
        p = 1.0
    else:
        # P(X >= k) and P(X <= k) of a binomial(total, share), as regularized incomplete beta functions
        upper = 1.0 if kb <= 0 else float(special.betainc(kb, total - kb + 1, share))
        lower = 1.0 if kb >= total else float(special.betainc(total - kb, kb + 1, 1 - share))
        p = {"greater": upper, "less": lower}.get(alternative, min(1.0, 2 * min(upper, lower)))
        tail = (1 - confidence) / 2
        lo = 0.0 if kb <= 0 else float(special.betaincinv(kb, total - kb + 1, tail))
        hi = 1.0 if kb >= total else float(special.betaincinv(kb + 1, total - kb, 1 - tail))
        odds = (1 - share) / share

        def to_ratio(pi: float) -> float | None:
            return None if pi >= 1 else pi / (1 - pi) * odds

        ratio = to_ratio(kb / total)
        ratio_ci = (to_ratio(lo), to_ratio(hi))
    ci_a = tuple(v / ea for v in _poisson_interval(ka, confidence))
    ci_b = tuple(v / eb for v in _poisson_interval(kb, confidence))
    diff_ci = _mover(rate_b - rate_a, rate_a, (ci_a[0], ci_a[1]), rate_b, (ci_b[0], ci_b[1]))
    return RateTest(events_a, exposure_a, events_b, exposure_b, rate_a, rate_b, rate_b - rate_a, diff_ci,
                    ratio, ratio_ci, min(1.0, p), alternative, dispersion)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SrmCheck:
    """Sample-ratio mismatch: do the arms' counts fit the configured split? `flagged` when the
    always-valid `sequential_p_value` is below `threshold`: the assignment (or the recording) is
    broken and no comparison of the arms can be trusted until it is understood. `p_value` is the
    chi-square test's, valid for one look only (reported, not used to flag)."""

    observed: tuple[int, int]
    expected_share_b: float
    observed_share_b: float
    chi2: float
    p_value: float
    threshold: float
    flagged: bool
    sequential_p_value: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


def srm_check(n_a: int, n_b: int, expected_share_b: float, *, threshold: float = SRM_ALPHA) -> SrmCheck:
    """Does the observed split fit the configured one? Flagged by an always-valid test, because a
    running canary or experiment checks its split at every look (every tick), and a fixed-horizon
    test read that often flags a sound split sooner or later.

    The test is the sequential one for multinomial counts of Lindon and Malek ("Anytime-valid
    inference for multinomial count data", NeurIPS 2022): the Bayes factor of a Dirichlet-multinomial
    mixture (prior `SRM_PRIOR_UNITS` units centred on the configured split) against the configured
    split is a martingale under it, so `1 / BF` is a p-value that holds at every look at once
    (Ville's inequality). The chi-square goodness-of-fit test is reported beside it.

    Count the units that were assigned (sessions or users, whatever the assignment hashes), not
    interactions: a few long sessions would otherwise look like a broken split.

    Args:
        n_a, n_b: units seen in arm a (baseline) and arm b (candidate).
        expected_share_b: arm b's configured share of traffic, strictly between 0 and 1 (e.g. 0.25).
        threshold: p-values below it are flagged (0.001 by default, as is usual for SRM checks).
    """
    if not 0 < expected_share_b < 1:
        raise ValueError(f"expected_share_b must be strictly between 0 and 1, got {expected_share_b}")
    total = n_a + n_b
    if total == 0:
        return SrmCheck((n_a, n_b), expected_share_b, math.nan, 0.0, 1.0, threshold, False, 1.0)
    expected = (total * (1 - expected_share_b), total * expected_share_b)
    # Pearson's chi-square with 1 degree of freedom (stats.chisquare's statistic and p-value)
    chi2 = sum((n - e) ** 2 / e for n, e in zip((n_a, n_b), expected, strict=True))
    p_value = float(special.chdtrc(1, chi2))  # stats.chi2.sf(chi2, 1)
    shares = np.array([1 - expected_share_b, expected_share_b])
    prior, counts = SRM_PRIOR_UNITS * shares, np.array([n_a, n_b], dtype=float)
    log_bf = float(
        special.gammaln(prior.sum())
        - special.gammaln(prior.sum() + total)
        + np.sum(special.gammaln(prior + counts) - special.gammaln(prior))
        - np.sum(counts * np.log(shares))
    )
    sequential = math.exp(-log_bf) if log_bf > 0 else 1.0
    return SrmCheck(
        (n_a, n_b),
        expected_share_b,
        n_b / total,
        float(chi2),
        p_value,
        threshold,
        sequential < threshold,
        sequential,
    )


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """The always-valid (mSPRT) view of one estimate at one look. `p_value` may be read at any
    time, as often as wished; `confidence_sequence` covers the true effect at every look at once
    with probability `1 - alpha`. `likelihood_ratio` is the mixture ratio against `theta0`."""

    estimate: float
    variance: float
    tau: float
    theta0: float
    likelihood_ratio: float
    p_value: float
    alpha: float
    confidence_sequence: Interval

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


def msprt(
    estimate: float, variance: float, tau: float, *, alpha: float = 0.05, theta0: float = 0.0
) -> SequentialResult:
    """The mixture SPRT of Johari, Pekelis and Walsh ("Always valid inference", 2017) for a
    difference with a normal mixing distribution N(theta0, tau^2) over the alternative.

    With `estimate` ~ N(theta, v), the mixture likelihood ratio is
    `sqrt(v / (v + tau^2)) * exp(tau^2 (estimate - theta0)^2 / (2 v (v + tau^2)))`, and by Ville's
    inequality `min(1, 1 / ratio)` is a p-value valid at any stopping time. Callers that look many
    times keep the running minimum of the p-value and the running intersection of the sequences.

    Args:
        estimate: the observed difference (`mean_b - mean_a` or `p_b - p_a`).
        variance: its variance now (e.g. `s_a^2/n_a + s_b^2/n_b`), > 0.
        tau: the mixing standard deviation: the size of effect the test is most sensitive to.
        alpha: level of the confidence sequence.
        theta0: the null difference.
    """
    if variance <= 0 or tau <= 0:
        raise ValueError(f"variance and tau must be positive, got {variance} and {tau}")
    v, t2 = variance, tau * tau
    log_lr = 0.5 * math.log(v / (v + t2)) + t2 * (estimate - theta0) ** 2 / (2 * v * (v + t2))
    p = 1.0 if log_lr <= 0 else math.exp(-log_lr)
    half = math.sqrt(2 * v * (v + t2) / t2 * (math.log(1 / alpha) + 0.5 * math.log((v + t2) / v)))
    lr = math.exp(log_lr) if log_lr < 700 else math.inf
    return SequentialResult(estimate, v, tau, theta0, lr, p, alpha, (estimate - half, estimate + half))


def _z_sum(alpha: float, power: float, two_sided: bool) -> tuple[float, float]:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be within (0, 1), got {alpha} and {power}")
    # stats.norm.isf(q) is -ndtri(q), stats.norm.ppf(q) is ndtri(q)
    return float(-special.ndtri(alpha / 2 if two_sided else alpha)), float(special.ndtri(power))


def sample_size(
    baseline_rate: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    *,
    relative: bool = False,
    two_sided: bool = True,
) -> int:
    """Units per arm to detect a change of a proportion from `baseline_rate` by `mde`
    (the classic normal-approximation formula, pooled variance under the null, no continuity
    correction; e.g. 0.10 -> 0.12 needs 3,841 per arm at alpha 0.05, power 0.8, two-sided).

    Args:
        baseline_rate: the proportion in the control arm, within (0, 1).
        mde: the minimum detectable effect: absolute (0.02 = two points) or, with `relative`, a
            fraction of `baseline_rate` (0.2 = 20%). Negative means a decrease.
        alpha: the false-positive rate; power: the chance of detecting an effect of size `mde`.
        relative: read `mde` as relative.
        two_sided: a two-sided test (the default) or one-sided.
    """
    p1 = baseline_rate
    p2 = p1 * (1 + mde) if relative else p1 + mde
    if not 0 < p1 < 1 or not 0 < p2 < 1 or p1 == p2:
        raise ValueError(f"need 0 < rates < 1 and a non-zero effect, got {p1} -> {p2}")
    z_a, z_b = _z_sum(alpha, power, two_sided)
    p_bar = (p1 + p2) / 2
    root = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root**2 / (p2 - p1) ** 2)


def sample_size_means(
    sd: float, mde: float, alpha: float = 0.05, power: float = 0.8, *, two_sided: bool = True
) -> int:
    """Units per arm to detect a difference of means of `mde` when each value has standard
    deviation `sd` (normal approximation: `2 (z_alpha + z_beta)^2 sd^2 / mde^2`).

    Args:
        sd: the standard deviation of one value (> 0); mde: the difference to detect (non-zero).
        alpha, power, two_sided: as in `sample_size`.
    """
    if sd <= 0 or mde == 0:
        raise ValueError(f"need sd > 0 and a non-zero mde, got sd={sd}, mde={mde}")
    z_a, z_b = _z_sum(alpha, power, two_sided)
    return math.ceil(2 * (z_a + z_b) ** 2 * sd**2 / mde**2)
