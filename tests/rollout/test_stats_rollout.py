"""The rollout statistics against textbook values and scipy, and the sequential test's validity."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from shipyard.rollout import (
    hodges_lehmann,
    mann_whitney,
    msprt,
    newcombe_interval,
    rate_test,
    sample_size,
    sample_size_means,
    srm_check,
    two_proportion_test,
    welch_t_test,
    wilson_interval,
)


def test_wilson_and_newcombe_match_newcombe_1998() -> None:
    # Newcombe (1998), Statistics in Medicine 17: 81/263 -> 0.2553..0.3662 (method 3);
    # 56/70 vs 48/80 -> difference 0.2, hybrid score interval 0.0524..0.3339 (method 10).
    lo, hi = wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = newcombe_interval(48, 80, 56, 70)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)


def test_z_test_agrees_with_chi_square_and_reports_the_difference() -> None:
    t = two_proportion_test(190, 200, 160, 200)
    chi2 = stats.chi2_contingency([[190, 10], [160, 40]], correction=False)
    assert t.test == "z"
    assert t.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    assert t.difference == pytest.approx(-0.15)
    assert t.ci[0] < -0.15 < t.ci[1] < 0
    assert t.relative == pytest.approx(0.80 / 0.95 - 1)
    one_sided = two_proportion_test(190, 200, 160, 200, alternative="less")
    assert one_sided.p_value == pytest.approx(t.p_value / 2)


def test_small_counts_fall_back_to_exact_tests() -> None:
    t = two_proportion_test(1, 20, 5, 20)
    assert t.test == "fisher"
    assert t.p_value == pytest.approx(stats.fisher_exact([[5, 15], [1, 19]]).pvalue)
    b = two_proportion_test(1, 20, 5, 20, small_sample="barnard")
    assert b.test == "barnard"
    assert b.p_value == pytest.approx(stats.barnard_exact([[5, 15], [1, 19]]).pvalue)
    assert b.p_value < t.p_value  # Barnard's unconditional test is the more powerful


@pytest.mark.parametrize(("args", "match"), [((5, 4, 1, 4), "within"), ((0, 0, 1, 4), "trials")])
def test_proportion_test_rejects_impossible_counts(args: tuple[int, int, int, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        two_proportion_test(*args)


def test_hodges_lehmann_textbook_values() -> None:
    shift, ci, pairs = hodges_lehmann([1, 2, 3], [4, 5, 6])
    assert shift == 3.0 and pairs == 9
    assert ci == (1.0, 5.0)  # three per arm: the interval is the whole range of differences
    # Hollander & Wolfe's example (R: wilcox.test(x, y, conf.int=TRUE) gives W = 35, shift 0.305).
    x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    y = [1.15, 0.88, 0.90, 0.74, 1.21]
    t = mann_whitney(y, x)
    assert t.shift == pytest.approx(0.305)
    assert t.u == 35
    assert t.p_value == pytest.approx(stats.mannwhitneyu(x, y).pvalue)
    assert t.ci[0] < 0.305 < t.ci[1]


def test_hodges_lehmann_subsamples_deterministically_when_pairs_are_many() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.lognormal(6, 0.5, 3000), rng.lognormal(6, 0.5, 3000) * 1.2
    full = hodges_lehmann(a, b, max_pairs=10**8)
    sampled = hodges_lehmann(a, b, max_pairs=200_000)
    assert sampled == hodges_lehmann(a, b, max_pairs=200_000)
    assert full[2] == 9_000_000 and sampled[2] == 200_000
    assert sampled[0] == pytest.approx(full[0], rel=0.05)
    assert sampled[1][0] == pytest.approx(full[1][0], rel=0.1)
    assert sampled[1][1] == pytest.approx(full[1][1], rel=0.1)


def test_mann_whitney_interval_covers_a_known_shift() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(100):
        a, b = rng.normal(100, 20, 60), rng.normal(110, 20, 60)
        lo, hi = mann_whitney(a, b).ci
        covered += lo <= 10 <= hi
    assert covered >= 88  # 95% nominal


def test_mann_whitney_of_constant_samples() -> None:
    t = mann_whitney([5, 5, 5], [5, 5])
    assert t.p_value == 1.0 and t.shift == 0.0
    with pytest.raises(ValueError, match="at least one"):
        mann_whitney([], [1.0])


def test_welch_matches_scipy() -> None:
    a, b = [1, 2, 3, 4], [2, 3, 4, 5, 9]
    t = welch_t_test(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert t.p_value == pytest.approx(ref.pvalue)
    assert t.difference == pytest.approx(2.1)
    assert t.ci[0] == pytest.approx(ref.confidence_interval().low)
    with pytest.raises(ValueError, match="two values"):
        welch_t_test([1], [1, 2])


def test_rate_test_is_the_exact_conditional_binomial_test() -> None:
    t = rate_test(2, 1000, 10, 1000)
    assert t.p_value == pytest.approx(stats.binomtest(10, 12, 0.5, alternative="greater").pvalue)
    assert t.ratio == pytest.approx(5.0)
    assert t.ratio_ci[0] is not None and 1 < t.ratio_ci[0] < 5
    assert t.ci[0] < t.difference < t.ci[1]
    # Unequal exposure: the share of events is compared with the share of exposure.
    u = rate_test(10, 4000, 10, 1000)
    assert u.p_value == pytest.approx(stats.binomtest(10, 20, 0.2, alternative="greater").pvalue)
    none = rate_test(0, 500, 0, 500)
    assert none.p_value == 1.0 and none.ratio is None
    only_b = rate_test(0, 500, 3, 500)
    assert only_b.ratio is None and only_b.ratio_ci[1] is None  # infinitely more: unbounded
    json.dumps(only_b.to_dict(), allow_nan=False)


def test_srm_check_flags_a_broken_split() -> None:
    bad = srm_check(700, 300, 0.5)
    assert bad.flagged and bad.p_value < 1e-30 and bad.observed_share_b == pytest.approx(0.3)
    assert not srm_check(505, 495, 0.5).flagged
    assert not srm_check(951, 49, 0.05).flagged
    assert srm_check(900, 100, 0.05).flagged
    assert not srm_check(0, 0, 0.5).flagged
    with pytest.raises(ValueError, match="between 0 and 1"):
        srm_check(1, 1, 50)


def test_sample_sizes_textbook() -> None:
    assert sample_size(0.10, 0.02) == 3841
    assert sample_size(0.10, 0.2, relative=True) == 3841
    assert sample_size(0.12, -0.02) == 3841
    assert sample_size(0.10, 0.02, two_sided=False) < 3841
    assert sample_size(0.10, 0.02, power=0.9) > 3841
    assert sample_size_means(1.0, 0.5) == 63  # 2 (1.96 + 0.84)^2 / 0.25
    with pytest.raises(ValueError):
        sample_size(0.95, 0.1)
    with pytest.raises(ValueError):
        sample_size_means(0.0, 1.0)
    with pytest.raises(ValueError):
        sample_size(0.1, 0.02, alpha=1.5)


def test_msprt_formula_and_confidence_sequence() -> None:
    r = msprt(0.05, 0.0004, 0.05)
    v, t2 = 0.0004, 0.0025
    lr = math.sqrt(v / (v + t2)) * math.exp(t2 * 0.05**2 / (2 * v * (v + t2)))
    assert r.likelihood_ratio == pytest.approx(lr)
    assert r.p_value == pytest.approx(1 / lr)
    lo, hi = r.confidence_sequence
    assert lo < 0.05 < hi
    # The sequence holds exactly the nulls the test does not reject at alpha.
    assert msprt(0.05, v, 0.05, theta0=lo).p_value == pytest.approx(0.05)
    assert msprt(0.05, v, 0.05, theta0=hi).p_value == pytest.approx(0.05)
    # A confidence sequence is wider than a fixed-horizon interval.
    assert hi - 0.05 > 1.96 * math.sqrt(v)
    assert msprt(0.0, v, 0.05).p_value == 1.0


def _ever_crosses(
    rng: np.random.Generator, looks: list[int], p: float, sims: int, alpha: float
) -> tuple[float, float]:
    """Shares of null simulations (two arms of rate p) whose always-valid p-value, and whose naive
    fixed-horizon p-value, ever dips below alpha. All simulations are drawn at once (numpy): per
    simulation arm a's then arm b's n_max draws, as drawn one simulation at a time."""
    n_max, at = looks[-1], np.array(looks)
    draws = rng.random((sims, 2, n_max)) < p
    a = np.cumsum(draws[:, 0], axis=1)[:, at - 1]
    b = np.cumsum(draws[:, 1], axis=1)[:, at - 1]
    pooled = (a + b) / (2 * at)
    sound = (pooled > 0) & (pooled < 1)  # a look where both arms saw no event (or only events) is skipped
    d = (b - a) / at
    var = np.where(sound, pooled * (1 - pooled) * 2 / at, 1.0)
    naive = sound & (2 * stats.norm.sf(np.abs(d) / np.sqrt(var)) < alpha)
    crossed = sum(
        any(msprt(float(d[i, j]), float(var[i, j]), 0.05).p_value < alpha for j in np.flatnonzero(sound[i]))
        for i in range(sims)
    )
    return crossed / sims, float(naive.any(axis=1).mean())


def test_sequential_p_value_is_valid_under_repeated_looks() -> None:
    rng = np.random.default_rng(2024)
    looks = list(range(50, 2001, 50))  # 40 peeks
    seq_rate, naive_rate = _ever_crosses(rng, looks, 0.3, 400, 0.05)
    assert seq_rate <= 0.05 + 0.02
    assert naive_rate > 0.10  # peeking at a fixed-horizon test would have raised false alarms


def test_sequential_test_detects_a_real_difference() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    a, b = rng.random(n) < 0.30, rng.random(n) < 0.36
    pooled = (a.sum() + b.sum()) / (2 * n)
    r = msprt(b.mean() - a.mean(), pooled * (1 - pooled) * 2 / n, 0.05)
    assert r.p_value < 0.05 and r.confidence_sequence[0] > 0


def test_srm_check_holds_its_level_however_often_it_is_read() -> None:
    """A running canary reads its split at every tick: over 100 looks at a sound 5% split, the
    always-valid test flags (almost) no run, where the chi-square test read as often flags many;
    a split that really is broken (3% for a configured 5%) is still flagged."""
    rng = np.random.default_rng(5)
    runs, looks, per_look, alpha = 200, 100, 40, 0.01
    flagged = {"sequential": 0, "chi-square": 0}
    for _ in range(runs):
        canary = np.cumsum(rng.binomial(per_look, 0.05, looks))
        total = per_look * np.arange(1, looks + 1)
        checks = [
            srm_check(int(t - c), int(c), 0.05, threshold=alpha) for t, c in zip(total, canary, strict=True)
        ]
        flagged["sequential"] += any(c.flagged for c in checks)
        flagged["chi-square"] += any(c.p_value < alpha for c in checks)
    assert flagged["sequential"] <= alpha * runs, flagged
    assert flagged["chi-square"] >= 5 * alpha * runs, flagged
    broken = srm_check(9_700, 300, 0.05)
    assert broken.flagged and broken.sequential_p_value < 1e-6, broken
    assert not srm_check(486, 46, 0.05).flagged  # chi-square p 1.1e-4: one look's chance, not a broken split
