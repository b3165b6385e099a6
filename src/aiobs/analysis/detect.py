"""Anomaly detectors for one bucketed series: expected values, scores, and onset/end intervals.

Pure numpy on arrays indexed by time bucket (NaN = no data in that bucket); no store access. The
methods are METHODS.md §Scan:

- expected value: a seasonal median (the same slot of the previous ``seasons`` periods, when at
  least ``min_seasons`` of them have data) else a robust trailing median, computed walking
  forward over the buckets not already found anomalous and carried forward when too few clean
  ones remain — so a level shift stays anomalous for as long as it lasts instead of becoming the
  new normal; many series are scored at once (arrays (series, buckets)), the loop is over time;
- continuous series (latency, tokens, cost — in log space) are scored with a robust z,
  residual / (1.4826·MAD of the trailing residuals);
- counts (errors out of requests) are scored on the counts: a normal approximation of the
  binomial when n·p₀ ≥ 10, else the exact binomial tail turned into a z;
- onset and end come from a CUSUM of the clipped z (a spike alone cannot fire it; a sustained
  shift places its onset at the inflection), and a single bucket with an extreme z is a spike.

Must not import typer, rich, textual or duckdb.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

MAD_SCALE = 1.4826
FLAG_Z = 3.5  # a bucket this far out is left out of the expected value (METHODS.md)
# k = 1 (tuned to shifts of 2 scale units) and h = 5: on 200 synthetic 168-bucket series of
# Gaussian noise scored by robust_scores (window 24), 0.015 false shifts a series (k = 0.5: 0.4); a +35%
# shift (3.7 noise sd) was found in 200 of 200, its onset 0.43 buckets off on average.
CUSUM_K = 1.0
CUSUM_H = 5.0
CUSUM_CLIP = 3.0
SPIKE_Z = 5.0
END_Z = 1.25  # the backward CUSUM's k (see cusum_intervals); 1.5 and 2 cut count shifts short
MIN_POOLED_TRIALS = 50
MIN_LEVEL_POINTS = 4
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Expected:
    """Per bucket: the expected value and the scale of normal variation around it."""

    value: Array
    scale: Array


def _median_or_nan(m: npt.NDArray[np.float64], min_count: int) -> Array:
    """Row-wise median of the non-NaN values of ``m`` (S, W), NaN where fewer than ``min_count``.
    By sorting (NaN sorts last) and indexing by each row's count: np.nanmedian on many short
    rows cost 1.6 s of a 2.7 s scan of the demo week."""
    out = np.full(m.shape[0], np.nan)
    if m.shape[1] == 0:
        return out
    counts = m.shape[1] - np.count_nonzero(np.isnan(m), axis=1)
    ok = counts >= max(1, min_count)
    if ok.all():
        srt, c = np.sort(m, axis=1), counts
    elif ok.any():
        srt, c = np.sort(m[ok], axis=1), counts[ok]
    else:
        return out
    rows = np.arange(len(c))
    mid: Array = (srt[rows, (c - 1) // 2] + srt[rows, c // 2]) / 2
    if c is counts:
        return mid
    out[ok] = mid
    return out


def forward_fill(values: Array) -> Array:
    """Each NaN replaced by the last value before it (leading NaNs stay)."""
    idx = np.where(~np.isnan(values), np.arange(len(values)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = values[idx]
    valid = ~np.isnan(values)
    if len(values) and not valid[0]:
        first = int(np.argmax(valid)) if valid.any() else len(values)
        out[:first] = np.nan
    return out


def _as_2d(a: Array) -> npt.NDArray[np.float64]:
    return np.atleast_2d(np.asarray(a, dtype=np.float64))


class _Cusum:
    """Per series, the CUSUM of clipped z, updated a bucket at a time. A bucket joins the clean
    history only once the CUSUM is back at 0 after it: while S climbs, the bucket may be the
    start of a shift, and letting it in moves the baseline towards the shift (a +35% shift of
    3.7 scale units went undetected in 1 of 5 synthetic series when buckets were let in at once)."""

    def __init__(self, n_series: int) -> None:
        self.s = np.zeros(n_series)
        self.pending_from = np.zeros(n_series, dtype=np.int64)  # first bucket not yet confirmed

    def step(self, z: Array) -> None:
        moved = np.maximum(np.clip(z, -CUSUM_CLIP, CUSUM_CLIP) + self.s - CUSUM_K, 0.0)
        self.s = np.where(np.isnan(z), self.s, moved)  # a bucket without data leaves S as it is


def _confirm(
    t: int,
    cusums: tuple[_Cusum, ...],
    z: npt.NDArray[np.float64],
    sources: tuple[npt.NDArray[np.float64], ...],
    targets: tuple[npt.NDArray[np.float64], ...],
) -> None:
    """Copy the buckets of series whose CUSUMs are all back at 0 from ``sources`` to ``targets``
    (the clean history), leaving out single buckets with |z| > FLAG_Z."""
    settled = cusums[0].s == 0.0
    start = cusums[0].pending_from
    for c in cusums[1:]:
        settled = settled & (c.s == 0.0)
        start = np.minimum(start, c.pending_from)
    one = settled & (start == t)  # the usual case: nothing was pending but this bucket
    ok = one & ~(np.abs(z[:, t]) > FLAG_Z)
    for src, dst in zip(sources, targets, strict=True):
        dst[ok, t] = src[ok, t]
    for i in np.flatnonzero(settled & (start < t)):
        lo = int(start[i])
        keep = ~(np.abs(z[i, lo : t + 1]) > FLAG_Z)
        for src, dst in zip(sources, targets, strict=True):
            dst[i, lo : t + 1] = np.where(keep, src[i, lo : t + 1], np.nan)
    for c in cusums:
        c.pending_from = np.where(settled, t + 1, c.pending_from)


def seasonal_profile(
    x: npt.NDArray[np.float64], period: int, *, min_periods: int = 3
) -> npt.NDArray[np.float64]:
    """(S, period): each series' daily shape — per slot the median over the periods loaded,
    smoothed over neighbouring slots and centred on 0 — or zeros where it is not clearly there.

    A scan is a batch over a window, so the shape is estimated from every period loaded (STL
    does the same): the median per slot is robust to an incident on a minority of days, and a
    shift lasting several days moves all slots alike and is taken out by the centring. A slot
    with data on fewer than ``min_periods`` periods gets no shape; a shape whose spread is
    within twice the noise of estimating it from that many periods is not applied (it would only
    add that noise)."""
    n_series, n = x.shape
    days = -(-n // period)
    padded = np.full((n_series, days * period), np.nan)
    padded[:, :n] = x
    by_day = padded.reshape(n_series, days, period)
    counts = np.sum(~np.isnan(by_day), axis=1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        slot = np.nanmedian(by_day, axis=1)
        slot = np.where(counts >= min_periods, slot, np.nan)
        smooth = np.nanmean(
            np.stack([np.roll(slot, 1, axis=1), slot, np.roll(slot, -1, axis=1)]), axis=0
        )
        centred = smooth - np.nanmedian(smooth, axis=1, keepdims=True)
        resid = by_day - slot[:, None, :]
        noise = MAD_SCALE * np.nanmedian(np.abs(resid).reshape(n_series, -1), axis=1)
        spread = MAD_SCALE * np.nanmedian(np.abs(centred), axis=1)
        per_slot = np.maximum(np.nanmedian(np.where(counts > 0, counts, np.nan), axis=1), 1)
        estimate_noise = noise * np.sqrt(np.pi / 2 / per_slot)
    keep = spread > 2 * estimate_noise
    return np.where(keep[:, None] & ~np.isnan(centred), centred, 0.0)


def robust_scores(
    values: Array,
    *,
    window: int,
    period: int | None = None,
    min_periods: int = 3,
    min_scale: float = 0.05,
    fallback: Array | None = None,
) -> tuple[Array, Expected]:
    """Robust z of every bucket of one series (T,) or many (S, T), walking forward in time.

    With a ``period`` the series is first adjusted by its daily shape (``seasonal_profile``);
    the expected level at t is the median of the clean buckets of the trailing ``window`` (plus
    the shape back), the scale 1.4826·MAD of the clean residuals of the trailing 2·``window``.
    A bucket with |z| > FLAG_Z, or in a shift the CUSUM has fired on, is not clean: it never
    enters a later baseline, so a level shift stays anomalous until it ends (the last clean level
    is carried forward). ``fallback`` (same shape) is the expected level where the series has
    none of its own yet."""
    raw = _as_2d(values)
    n_series, n = raw.shape
    shape_t = np.zeros_like(raw)
    if period:
        profile = seasonal_profile(raw, period, min_periods=min_periods)
        shape_t = profile[:, np.arange(n) % period]
    x = raw - shape_t
    fb = None if fallback is None else _as_2d(fallback) - shape_t
    clean = np.full_like(x, np.nan)
    abs_resid = np.full_like(x, np.nan)  # |residual| of the buckets the scale may use
    level = np.full_like(x, np.nan)
    scale = np.full_like(x, np.nan)
    last_level = np.full(n_series, np.nan)
    last_scale = np.full(n_series, np.nan)
    z = np.full_like(x, np.nan)
    r_all = np.full_like(x, np.nan)
    admitted = np.full_like(x, np.nan)
    up, down = _Cusum(n_series), _Cusum(n_series)
    for t in range(n):
        lo = max(0, t - window)
        # Sparse series (a p95 left empty at night for want of support) still need a level:
        # a few clean buckets in the window will do, and the scale wants a quarter of 2·window.
        lv = _median_or_nan(clean[:, lo:t], MIN_LEVEL_POINTS)
        # While a CUSUM is off zero its buckets wait; if they wait long, the trailing buckets
        # let in at once (run-ups of fired shifts taken out) stand in.
        missing = np.flatnonzero(np.isnan(lv))
        if len(missing):
            lv[missing] = _median_or_nan(admitted[missing, lo:t], MIN_LEVEL_POINTS)
            lv = np.where(np.isnan(lv), last_level, lv)
        last_level = lv  # the series' own level only: a borrowed one is not carried
        if fb is not None:
            lv = np.where(np.isnan(lv), fb[:, t], lv)
        sc = _median_or_nan(abs_resid[:, max(0, t - 2 * window) : t], max(6, window // 2))
        sc = np.where(np.isnan(sc), last_scale, MAD_SCALE * sc)
        last_scale = sc
        level[:, t], scale[:, t] = lv, np.maximum(sc, min_scale)
        r_all[:, t] = x[:, t] - lv
        z[:, t] = r_all[:, t] / scale[:, t]
        # The scale takes every bucket at once (waiting for the CUSUM to settle would leave out
        # exactly the larger residuals and narrow it: 0.125 false shifts a series instead of
        # 0.015), and drops the run-up of a shift once it fires.
        fine = ~(np.abs(z[:, t]) > FLAG_Z)
        abs_resid[fine, t] = np.abs(r_all[fine, t])
        admitted[fine, t] = x[fine, t]
        up.step(z[:, t])
        down.step(-z[:, t])
        for c in (up, down):
            for i in np.flatnonzero(c.s >= CUSUM_H):
                abs_resid[i, int(c.pending_from[i]) : t + 1] = np.nan
                admitted[i, int(c.pending_from[i]) : t + 1] = np.nan
        _confirm(t, (up, down), z, (x,), (clean,))
    level = level + shape_t
    z = (raw - level) / scale
    shape = np.shape(values)
    return z.reshape(shape), Expected(level.reshape(shape), scale.reshape(shape))


def binomial_tail_z(x: int, n: int, p: float) -> float:
    """z with the same upper-tail probability as P(X ≥ x), X ~ Binomial(n, p): the exact sum,
    term to term by the ratio C(n,k+1)p/C(n,k)q (one lgamma, not three a term: it was a third
    of the scoring time on a week of 974k spans)."""
    if x <= 0:
        return 0.0
    if x > n:
        return 8.0
    p = min(max(p, 1e-12), 1 - 1e-12)  # a rate of exactly 0 or 1 has no log
    q = 1.0 - p
    log_first = (
        math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1)
        + x * math.log(p) + (n - x) * math.log1p(-p)
    )  # fmt: skip
    total, term = 1.0, 1.0  # relative to the first term
    for k in range(x, n):
        term *= (n - k) / (k + 1) * p / q
        total += term
        if term < 1e-17 * total:
            break
    log_tail = log_first + math.log(total)
    tail = min(max(math.exp(log_tail), 1e-15), 1 - 1e-15)
    return max(-8.0, min(8.0, _NORMAL.inv_cdf(1 - tail)))


def rate_scores(
    x: Array,
    n: Array,
    *,
    window: int,
    period: int | None = None,
    seasons: int = 4,
    fallback: Array | None = None,
) -> tuple[Array, Expected]:
    """z of each bucket's count ``x`` out of ``n`` (one series (T,) or many (S, T)) against the
    expected rate p₀ pooled over the clean reference buckets, walking forward; a bucket joins
    them once the CUSUM is back at 0 after it, unless its z > FLAG_Z. Few
    expected events (n·p₀ < 10): the exact binomial tail, since the normal approximation
    overstates small excesses."""
    xs, ns = _as_2d(x), _as_2d(n)
    fb = None if fallback is None else _as_2d(fallback)
    n_series, n_t = xs.shape
    cx = np.full_like(xs, np.nan)
    cn = np.full_like(xs, np.nan)
    p0 = np.full_like(xs, np.nan)
    z = np.full_like(xs, np.nan)
    last = np.full(n_series, np.nan)
    up = _Cusum(n_series)
    z_up = np.full_like(xs, np.nan)
    for t in range(n_t):
        # Counts are pooled over the clean buckets of the trailing 2·window and, when there are
        # earlier periods, the same slot and its neighbours in each: a seasonal pool alone is too
        # few events (4 slots of ~40 requests at 2% is 3 errors), and choosing between the two by
        # their event counts biased p₀ upwards (+0.016 on a 2% rate in a synthetic test).
        lo = max(0, t - 2 * window)
        slots = list(range(lo, t))
        if period:
            slots += [
                t - k * period + d
                for k in range(1, seasons + 1)
                for d in (-1, 0, 1)
                if 0 <= t - k * period + d < lo
            ]
        # Enough history: buckets with requests, and requests enough to say a rate (a new
        # segment's first bucket or two would otherwise become its normal).
        enough = np.sum(cn[:, slots] > 0, axis=1) >= max(3, window // 3)
        px, pn = np.nansum(cx[:, slots], axis=1), np.nansum(cn[:, slots], axis=1)
        p = np.where(enough & (pn >= MIN_POOLED_TRIALS), (px + 0.5) / (pn + 1), np.nan)
        p = np.where(np.isnan(p), last, p)
        last = p  # the series' own rate only: a borrowed one is not carried
        if fb is not None:
            p = np.where(np.isnan(p), fb[:, t], p)
        p0[:, t] = p
        has = (ns[:, t] > 0) & ~np.isnan(p)
        mean = ns[:, t] * p
        sd = np.sqrt(np.maximum(mean * (1 - p), 1e-12))
        with np.errstate(invalid="ignore", divide="ignore"):
            zt = np.where(has, (xs[:, t] - mean) / sd, np.nan)
        for i in np.flatnonzero(has & (mean < 10) & (xs[:, t] > mean)):
            zt[i] = binomial_tail_z(int(xs[i, t]), int(ns[i, t]), float(p[i]))
        z[:, t] = zt
        up.step(zt)
        z_up[:, t] = np.maximum(zt, 0.0)  # only an excess of events keeps a bucket out
        _confirm(t, (up,), z_up, (xs, ns), (cx, cn))
    shape = np.shape(x)
    spread = np.sqrt(np.maximum(p0 * (1 - p0), 0.0))
    return z.reshape(shape), Expected(p0.reshape(shape), spread.reshape(shape))


@dataclass(frozen=True)
class Interval:
    onset: int  # first anomalous bucket
    end: int  # last anomalous bucket (inclusive)
    ongoing: bool  # still anomalous in the last bucket
    peak: float  # the largest CUSUM (or the spike's z)
    kind: str  # shift | spike


def _cusum(z: Array, k: float, clip: float) -> Array:
    zc = np.clip(np.nan_to_num(z, nan=0.0), -clip, clip)
    has = ~np.isnan(z)
    out = np.zeros(len(z))
    s = 0.0
    for t in range(len(z)):
        if has[t]:
            s = max(0.0, s + zc[t] - k)
        out[t] = s
    return out


def _first_alarm(s: Array, h: float, start: int = 0) -> int | None:
    hits = np.flatnonzero(s[start:] >= h)
    return None if not len(hits) else start + int(hits[0])


def cusum_intervals(
    z: Array,
    *,
    k: float = CUSUM_K,
    h: float = CUSUM_H,
    clip: float = CUSUM_CLIP,
    spike_z: float = SPIKE_Z,
) -> list[Interval]:
    """Upward anomalies of ``z`` (negate it for downward). A shift: S_t = max(0, S_{t-1} +
    clip(z_t) - k) reaches ``h``; its onset is the bucket after the last S_t = 0 before that. Its
    end is found by a CUSUM run backwards from where S returned to 0 (with k = END_Z), because
    the forward statistic decays k a bucket and would place the end S/k buckets late. A spike: one bucket with z ≥ ``spike_z`` outside any shift. Buckets without
    data leave S unchanged."""
    s = _cusum(z, k, clip)
    out: list[Interval] = []
    t = 0
    n = len(z)
    while (alarm := _first_alarm(s, h, t)) is not None:
        zeros = np.flatnonzero(s[:alarm] == 0.0)
        onset = int(zeros[-1]) + 1 if len(zeros) else 0
        after = np.flatnonzero(s[alarm:] == 0.0)
        stop = alarm + int(after[0]) if len(after) else n  # exclusive
        # Backwards with k = END_Z: buckets only slightly raised after the shift (z ~1) do not
        # keep the backward CUSUM above 0.
        back = _cusum(z[onset:stop][::-1], END_Z, clip)
        back_zeros = np.flatnonzero(back[: max(1, _first_alarm(back, h) or len(back))] == 0.0)
        end = stop - 1 - (int(back_zeros[-1]) + 1 if len(back_zeros) else 0)
        end = max(end, onset)
        out.append(Interval(onset, end, end >= n - 1, float(s[onset:stop].max()), "shift"))
        t = stop
    covered = np.zeros(n, dtype=bool)
    for iv in out:
        covered[iv.onset : iv.end + 1] = True
    for i in np.flatnonzero(np.nan_to_num(z, nan=0.0) >= spike_z):
        if not covered[i]:
            out.append(Interval(int(i), int(i), bool(i == n - 1), float(z[i]), "spike"))
    return sorted(out, key=lambda iv: iv.onset)
