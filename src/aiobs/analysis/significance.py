"""Significance tests for diff (METHODS.md "Diff"), in plain Python on aggregated samples.

- ``mann_whitney``: Mann-Whitney U, two-sided, normal approximation with tie and continuity
  correction (scipy's ``method="asymptotic"``), with the effect size AUC = U / (n_x·n_y);
- ``quantile`` (linear interpolation, = DuckDB ``quantile_cont``) and ``bootstrap_diff_ci``
  (percentile bootstrap of a statistic's difference, resampling whole traces);
- rates: ``wilson`` interval, ``newcombe_diff`` (method 10) for a difference of proportions,
  ``two_proportion_z`` (pooled), ``fisher_exact`` (two-sided, as R and scipy), ``risk_ratio``
  with its log-normal interval (+0.5 to zero cells);
- ``benjamini_hochberg`` adjusted p-values.

The samples diff hands here are per-trace values (thousands, not millions), so plain Python is
fast enough and has no dependency (numpy and scipy are not installed).

Must not import typer, rich or textual.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054


def norm_sf(z: float) -> float:
    """P(Z > z) for a standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _ranks(values: Sequence[float]) -> tuple[list[float], float]:
    """Average ranks (1-based) and the tie term Σ(t³ − t). In numpy: the loop in Python took
    0.3 s of a diff's step-kind tests on 974k spans."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    _, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    # A value's average rank: the ranks before its group, plus the middle of the group.
    ends = np.cumsum(counts)
    average = ends - (counts - 1) / 2.0
    t = counts.astype(float)
    ranks: list[float] = average[inverse].tolist()
    return ranks, float(np.sum(t**3 - t))


def mann_whitney(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """U of ``x`` (pairs with x > y, ties half), AUC = U/(n_x·n_y), z and two-sided p."""
    nx, ny = len(x), len(y)
    if nx == 0 or ny == 0:
        return {"u": math.nan, "auc": math.nan, "z": math.nan, "p": math.nan}
    # Ranked to 12 significant digits: a cost summed in another order (another engine, another
    # thread count) differs in the last bits, and must tie as the same value does.
    ranks, ties = _ranks([float(f"{v:.12g}") for v in (*x, *y)])
    u_x = sum(ranks[:nx]) - nx * (nx + 1) / 2
    n = nx + ny
    mu = nx * ny / 2
    var = nx * ny / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return {"u": u_x, "auc": u_x / (nx * ny), "z": 0.0, "p": 1.0}
    u = max(u_x, nx * ny - u_x)
    z = (u - mu - 0.5) / math.sqrt(var)
    return {"u": u_x, "auc": u_x / (nx * ny), "z": z, "p": min(1.0, 2 * norm_sf(z))}


def quantile(values: Sequence[float], q: float) -> float:
    """Linearly interpolated quantile (numpy's default, DuckDB's ``quantile_cont``)."""
    if not values:
        return math.nan
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _bootstrap_stats(values: Sequence[float], stat: str | float, b: int, seed: int) -> list[float]:
    """``b`` bootstrap replicates of ``stat`` ("mean" or a quantile q) of ``values``.

    A quantile is drawn without resampling whole samples. A resample of the sorted values x is
    x[floor(n·U)] for n uniforms U, so its order statistic k is x[floor(n·U₍ₖ₎)], and U₍ₖ₎ is
    Beta(k+1, n−k) (0-based k); the next one up is the smallest of the n−k−1 uniforms above it.
    That is b draws instead of b·n, and exactly the resampling distribution (the polars version
    that resampled took 1.2 s of a diff on 974k spans). The mean resamples, b·n draws in numpy."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if stat == "mean":
        means: list[float] = x[rng.integers(0, n, size=(b, n))].mean(axis=1).tolist()
        return means
    pos = (n - 1) * float(stat)
    lo = math.floor(pos)
    frac = pos - lo
    u_lo = rng.beta(lo + 1, n - lo, size=b)
    if frac > 0 and lo + 1 < n:
        u_hi = u_lo + (1 - u_lo) * (1 - rng.random(b) ** (1.0 / (n - lo - 1)))
    else:
        u_hi = u_lo
    at_lo = x[np.minimum((u_lo * n).astype(np.int64), n - 1)]
    at_hi = x[np.minimum((u_hi * n).astype(np.int64), n - 1)]
    reps: list[float] = (at_lo + (at_hi - at_lo) * frac).tolist()
    return reps


def bootstrap_diff_ci(
    x: Sequence[float],
    y: Sequence[float],
    stat: str | float,
    *,
    b: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    max_n: int | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat(y) − stat(x)`` (stat: "mean" or a quantile q),
    resampling each side.

    With ``max_n``, for the mean, a side larger than that is bootstrapped from a random subsample of ``max_n``
    (m-out-of-n), and the interval is rescaled to the full sizes: each side's replicate variance
    times m/n, centred on the full-sample difference. B·n rows per side is the cost, so this keeps
    B = 2000 affordable on large windows."""
    if not x or not y:
        return (math.nan, math.nan)

    def point(v: Sequence[float]) -> float:
        return sum(v) / len(v) if stat == "mean" else quantile(v, float(stat))

    def sub(v: Sequence[float], s: int) -> Sequence[float]:
        # Quantile replicates cost b draws whatever n is (_bootstrap_stats): only the mean's
        # resampling needs the subsample.
        if max_n is None or len(v) <= max_n or stat != "mean":
            return v
        import random

        return random.Random(s).sample(list(v), max_n)

    sx, sy = sub(x, seed + 11), sub(y, seed + 12)
    bx = _bootstrap_stats(sx, stat, b, seed)
    by = _bootstrap_stats(sy, stat, b, seed + 1)
    diffs = sorted(t - u for t, u in zip(by, bx, strict=True))
    alpha = (1 - level) / 2
    lo, hi = quantile(diffs, alpha), quantile(diffs, 1 - alpha)
    if len(sx) == len(x) and len(sy) == len(y):
        return lo, hi

    def var(v: list[float]) -> float:
        m = sum(v) / len(v)
        return sum((a - m) ** 2 for a in v) / max(1, len(v) - 1)

    sub_var = var(bx) + var(by)
    full_var = var(bx) * len(sx) / len(x) + var(by) * len(sy) / len(y)
    factor = math.sqrt(full_var / sub_var) if sub_var > 0 else 1.0
    centre, d = quantile(diffs, 0.5), point(y) - point(x)
    return d - (centre - lo) * factor, d + (hi - centre) * factor


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion x/n."""
    if n == 0:
        return (0.0, 1.0)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_diff(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) for p1 − p2."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (lower, upper)


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p) of p2 − p1 with the pooled proportion."""
    if n1 == 0 or n2 == 0:
        return (math.nan, math.nan)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return (0.0, 1.0)
    z = (x2 / n2 - x1 / n1) / se
    return (z, min(1.0, 2 * norm_sf(abs(z))))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p of Fisher's exact test on [[a, b], [c, d]]: the total probability of tables with
    the same margins that are no more likely than the observed one."""
    row1, col1, n = a + b, a + c, a + b + c + d
    lo, hi = max(0, col1 - (n - row1)), min(row1, col1)

    def log_p(k: int) -> float:
        return _log_comb(col1, k) + _log_comb(n - col1, row1 - k) - _log_comb(n, row1)

    observed = log_p(a)
    total = 0.0
    for k in range(lo, hi + 1):
        lp = log_p(k)
        if lp <= observed + 1e-7:  # relative tolerance as R uses, for ties in probability
            total += math.exp(lp)
    return min(1.0, total)


def risk_ratio(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """(RR, lower, upper) of (x2/n2)/(x1/n1), adding 0.5 to every cell when a count is zero."""
    if 0 in (x1, x2, n1 - x1, n2 - x2):
        x1, x2, n1, n2 = x1 + 0.5, x2 + 0.5, n1 + 1, n2 + 1  # type: ignore[assignment]
    rr = (x2 / n2) / (x1 / n1)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    return (rr, math.exp(math.log(rr) - z * se), math.exp(math.log(rr) + z * se))


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (q-values), in the input order; NaN stays NaN."""
    indexed = [(p, i) for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(indexed)
    adjusted = [math.nan] * len(pvalues)
    running = 1.0
    for rank, (p, i) in reversed(list(enumerate(sorted(indexed), 1))):
        running = min(running, p * m / rank)
        adjusted[i] = running
    return adjusted
