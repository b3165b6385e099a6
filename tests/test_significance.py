"""The statistics of diff against published values (R, scipy docs, Newcombe 1998), not itself."""

from __future__ import annotations

import math

import pytest

from aiobs.analysis import significance as sig


def test_fisher_exact_matches_r() -> None:
    # Fisher's tea-tasting experiment: R fisher.test(matrix(c(3,1,1,3),2)) p = 0.4857.
    assert sig.fisher_exact(3, 1, 1, 3) == pytest.approx(0.4857142857, abs=1e-9)
    # scipy.stats.fisher_exact([[8, 2], [1, 5]]) docs example: p = 0.0349650...
    assert sig.fisher_exact(8, 2, 1, 5) == pytest.approx(0.034965034965, abs=1e-9)
    assert sig.fisher_exact(0, 10, 0, 10) == pytest.approx(1.0)


def test_wilson_matches_newcombe_1998() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I.
    for (x, n), (lo, hi) in {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }.items():
        got = sig.wilson(x, n)
        assert got == pytest.approx((lo, hi), abs=5e-5), (x, n, got)


def test_newcombe_difference_matches_newcombe_1998() -> None:
    # Newcombe (1998), "Interval estimation for the difference between independent proportions",
    # method 10 (score, no continuity correction), Table II.
    assert sig.newcombe_diff(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    assert sig.newcombe_diff(9, 10, 3, 10) == pytest.approx((0.1705, 0.8090), abs=5e-5)


def test_mann_whitney_matches_scipy_docs() -> None:
    # scipy.stats.mannwhitneyu docs: males vs females, U1 = 17; asymptotic p = 0.1113.
    males, females = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    res = sig.mann_whitney(males, females)
    assert res["u"] == 17 and res["auc"] == pytest.approx(17 / 20)
    assert res["p"] == pytest.approx(0.11134688653314041, abs=1e-9)
    # Ties use average ranks and the tie-corrected variance.
    tied = sig.mann_whitney([1, 2, 2, 3], [2, 3, 3, 4])
    assert tied["u"] == 3.0 and 0 < tied["p"] < 1  # 0 + 0.5 + 0.5 + (1 + 0.5 + 0.5)
    assert math.isnan(sig.mann_whitney([], [1.0])["p"])


def test_two_proportion_risk_ratio_bh_and_quantiles_by_hand() -> None:
    # 45/100 vs 30/100: pooled 0.375, se = 0.0684653, z = -2.19089, p = 0.028459.
    z, p = sig.two_proportion_z(45, 100, 30, 100)
    assert z == pytest.approx(-2.1908902, abs=1e-6) and p == pytest.approx(0.0284597, abs=1e-6)
    rr, lo, hi = sig.risk_ratio(10, 100, 20, 100)
    assert rr == pytest.approx(2.0)
    # se = sqrt(0.13) = 0.3605551; exp(0.693147 ∓ 1.959964 × 0.3605551) = 0.986563, 4.054479
    assert (lo, hi) == pytest.approx((0.986563, 4.054479), abs=1e-5)
    assert sig.risk_ratio(0, 50, 5, 50)[0] == pytest.approx((5.5 / 51) / (0.5 / 51))
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "BH") = 0.02 0.04 0.04 0.02
    assert sig.benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx(
        [0.02, 0.04, 0.04, 0.02]
    )
    assert math.isnan(sig.benjamini_hochberg([math.nan, 0.5])[0])
    # numpy.quantile([1, 2, 3, 4], 0.95) = 3.85 (linear)
    assert sig.quantile([4, 1, 3, 2], 0.95) == pytest.approx(3.85)


def test_bootstrap_interval_covers_a_known_shift() -> None:
    base = [100.0 + (i % 17) for i in range(400)]
    shifted = [v + 50 for v in base]
    lo, hi = sig.bootstrap_diff_ci(base, shifted, 0.95, b=500, seed=1)
    assert lo <= 50 <= hi and hi - lo < 10
    same_lo, same_hi = sig.bootstrap_diff_ci(base, base, 0.5, b=500)
    assert same_lo <= 0 <= same_hi
    mean_lo, mean_hi = sig.bootstrap_diff_ci(base, shifted, "mean", b=300, seed=3)
    assert mean_lo <= 50 <= mean_hi
    assert sig.bootstrap_diff_ci(base, shifted, "mean", b=300, seed=3) == (
        mean_lo,
        mean_hi,
    )  # seeded


@pytest.mark.parametrize("q", [0.0, 0.5, 0.95, 0.99, 1.0])
def test_quantile_replicates_match_brute_force_resampling(q: float) -> None:
    # The order-statistic draw must give the distribution that resampling whole samples gives:
    # compared here with 20,000 brute-force resamples of a skewed sample (latency-like).
    import numpy as np

    rng = np.random.default_rng(5)
    values = np.round(rng.lognormal(6.0, 0.8, size=300), 1)
    fast = np.array(sig._bootstrap_stats(values.tolist(), q, 20_000, 7))
    resamples = values[rng.integers(0, len(values), size=(20_000, len(values)))]
    brute = np.quantile(resamples, q, axis=1)  # linear interpolation, like sig.quantile
    for level in (0.025, 0.25, 0.5, 0.75, 0.975):
        a, b = np.quantile(fast, level), np.quantile(brute, level)
        assert abs(a - b) <= 0.03 * max(abs(b), 1.0), (level, a, b)
    assert values.min() <= fast.min() and fast.max() <= values.max()


def test_bootstrap_of_one_value_and_of_equal_values() -> None:
    assert sig._bootstrap_stats([4.0], 0.95, 50, 1) == [4.0] * 50
    assert sig._bootstrap_stats([2.0] * 30, 0.5, 20, 1) == [2.0] * 20
    assert sig._bootstrap_stats([2.0] * 30, "mean", 20, 1) == [2.0] * 20
