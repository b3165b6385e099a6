"""``scan``: what broke, when it started, why, and whom it hurt.

Series come from the store (``series``), are scored per bucket against a seasonal or trailing
baseline (``detect``), and their anomalous intervals become anomalies when the change is large
enough to matter. Anomalies that start together in the same service — or in the infra under it —
form one incident; ``incidents`` explains and sizes it.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from aiobs.analysis import detect
from aiobs.analysis.filters import TraceFilter
from aiobs.analysis.series import (
    Series,
    choose_bucket,
    drop_scan_table,
    load_series,
    metric_info,
    parse_by,
)
from aiobs.analysis.timewindow import utcnow
from aiobs.errors import UsageError

if TYPE_CHECKING:
    from aiobs.analysis.results import Scan
    from aiobs.backend import Backend

HISTORY = timedelta(days=4)  # before the window: 3 daily seasons plus a trailing window
# ... and up to a week while that is at most HISTORY_BUCKETS buckets (30-minute buckets and
# wider): an incident that began a few days ago is then seen from before its start by a day's
# scan, as by the week's, and both call it ongoing (with 4 days, a day's scan of the demo learnt
# the 4-day-old retry loop as normal and reported nothing).
MAX_HISTORY = timedelta(days=7)
HISTORY_BUCKETS = 336
TRAILING = timedelta(hours=12)  # the trailing baseline (of the series adjusted by its daily shape)
# How large a change must be, over the anomalous interval, to be worth a page: observed/expected
# at least the metric's min_ratio for levels (series.Metric), and for rates both a ratio and an absolute rise (a 0.1% → 0.3% error
# rate is a ×3 nobody should be woken for).
MIN_RATE_RATIO = 1.5
MIN_RATE_RISE = 0.02
MIN_LINEAR_DROP = 0.15  # relative, for scores (eval score, CSAT, retrieval score)
MIN_EVENTS = 5  # bad events in the interval, for a rate anomaly


def _segment(key: dict[str, Any]) -> dict[str, str]:
    seg = {"service": key["service"]}
    if key["dim"]:
        seg[key["dim"]] = key["value"]
    return seg


def _log_levels(values: Any) -> Any:
    """Log of each bucket's level; a level of 0 (every answer empty, no tokens) is half the
    series' smallest positive level — still the lowest value, not missing data, so a collapse to
    zero is an anomaly."""
    positive = np.where(values > 0, values, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: series without data
        floor = np.nanmin(positive, axis=1, keepdims=True) / 2
        floor = np.where(np.isnan(floor), 1e-9, floor)
        return np.log(np.where(values > 0, values, np.where(values == 0, floor, np.nan)))


def score_series(ser: Series, window: int, period: int | None) -> tuple[Any, Any, Any]:
    """(z, expected, scale) arrays (series × buckets); segment series without history of their
    own borrow their service's expected value (a new model is held to what the service did)."""
    z = np.full(ser.x.shape, np.nan)
    expected = np.full(ser.x.shape, np.nan)
    scale = np.full(ser.x.shape, np.nan)
    order = sorted(range(len(ser.keys)), key=lambda i: ser.keys[i]["parent"] is not None)
    kinds = [metric_info(k["metric"]).kind for k in ser.keys]
    for parents in (True, False):
        for kind in ("rate", "log", "linear"):
            rows = [
                i for i in order
                if kinds[i] == kind and (ser.keys[i]["parent"] is None) == parents
            ]  # fmt: skip
            if not rows:
                continue
            fallback = None
            if not parents:
                fallback = np.stack([expected[ser.keys[i]["parent"]] for i in rows])
            if kind == "rate":
                zs, exp = detect.rate_scores(
                    ser.x[rows], ser.n[rows], window=window, period=period, fallback=fallback
                )
            else:
                values = ser.x[rows]
                if kind == "log":
                    values = _log_levels(values)
                    if fallback is not None:
                        fallback = np.log(fallback)
                zs, exp = detect.robust_scores(
                    values,
                    window=window,
                    period=period,
                    fallback=fallback,
                    min_scale=0.05 if kind == "log" else 0.02,
                )
            z[rows], scale[rows] = zs, exp.scale
            expected[rows] = np.exp(exp.value) if kind == "log" else exp.value
    return z, expected, scale


def find_anomalies(ser: Series, window: int, period: int | None) -> list[dict[str, Any]]:
    z, expected, scale = score_series(ser, window, period)
    ser.z = z
    found: list[dict[str, Any]] = []
    start = ser.window_start
    for i, key in enumerate(ser.keys):
        info = metric_info(key["metric"])
        if key["parent"] is not None and ser.n[i].sum() >= ser.n[key["parent"]].sum():
            continue  # the segment is the whole service (a service with one workflow)
        directions = {"up": (1,), "down": (-1,), "both": (1, -1)}[info.direction]
        compared = _segment_comparison(ser, i, key, info, directions, expected, scale)
        found.extend(compared)
        if compared:
            continue
        with_data = (
            np.flatnonzero(ser.n[i] > 0)
            if info.kind == "rate"
            else np.flatnonzero(~np.isnan(ser.x[i]))
        )
        # Warm-up: until a series has a trailing window of its own, its baseline is the few
        # hours it has seen (a first morning measured against the night before it).
        warm = int(with_data[0]) + window if len(with_data) else 0
        for sign in directions:
            for iv in detect.cusum_intervals(sign * z[i]):
                if iv.end < start or iv.onset < warm:
                    continue  # over before the scanned window, or during the warm-up
                a = _anomaly(ser, i, key, info, iv, sign, z[i], expected[i])
                if a is not None:
                    found.append(a)
    return found


# A whole segment against its service: one test per segment and metric, a few hundred in a scan
# (Bonferroni at 0.05 over 300 one-sided tests is z 3.8).
SEGMENT_Z = 4.0
# Segments compared with the rest of their service over the whole window: models only — models
# are substitutes for the same job, so one doing worse is a finding; workflows and prompt
# versions differ by design (or follow each other in time) — and outcome rates only (handoff
# is left out: handing off more can be the right behaviour).
OUTLIER_DIMS = ("model",)
OUTLIER_METRICS = ("error_rate", "tool_error_rate", "eval_fail_rate", "thumbs_down_rate")
MIN_REST = 30  # requests in the rest of the service to compare a model with


def _matters(
    info: Any, observed: float, expected: float, sign: int, *, spike: bool = False
) -> bool:
    """Whether a change from ``expected`` to ``observed`` (in direction ``sign``) is big enough to
    report. One bucket of a level or a score is a long tail more often than an incident: a spike
    has to move twice as far (squared ratio) as a shift."""
    if info.kind == "rate":
        return bool(observed >= expected * MIN_RATE_RATIO and observed - expected >= MIN_RATE_RISE)
    if info.kind == "log":
        if expected <= 0:
            return False
        need = info.min_ratio**2 if spike else info.min_ratio
        ratio = observed / expected
        return bool(ratio >= need if sign > 0 else ratio <= 1 / need)
    if expected == 0:
        return False
    return bool(
        sign * (observed - expected) / abs(expected) >= MIN_LINEAR_DROP * (2 if spike else 1)
    )


def _record(
    ser: Series, i: int, key: dict[str, Any], *, observed: float, expected: float, sign: int,
    score: float, onset: int, end: int, ongoing: bool, kind: str, traces: int,
) -> dict[str, Any]:  # fmt: skip
    """An anomaly as the scan reports it (underscored fields are for grouping only)."""
    return {
        "metric": key["metric"],
        "layer": key["layer"],
        "segment": _segment(key),
        "observed": observed,
        "expected": expected,
        "change": (observed - expected) / expected if expected else None,
        "direction": "up" if sign > 0 else "down",
        "score": score,
        "onset": ser.time(onset),
        "end": None if ongoing else ser.time(end + 1),
        "kind": kind,
        "traces": traces,
        "_series": i,
        "_onset": onset,
        "_end": end,
    }


def _segment_comparison(
    ser: Series,
    i: int,
    key: dict[str, Any],
    info: Any,
    directions: tuple[int, ...],
    expected: Any,
    scale: Any,
) -> list[dict[str, Any]]:
    """A segment that appears inside the window (a new model, tool, prompt version) held, over
    its whole life, to what its service was expected to do then; a model that has been there all
    along compared with the rest of its service over the window. Both are one test each — the
    per-bucket CUSUM is slow to see a moderate change in a segment of a few traces a bucket."""
    parent = key["parent"]
    if parent is None:
        return []
    has = np.flatnonzero(ser.n[i] > 0)
    if not len(has):
        return []
    first, last = int(has[0]), int(has[-1])
    parent_has = np.flatnonzero(ser.n[parent] > 0)
    # New: first seen in the window, after its service had been running a day without it.
    is_new = first >= ser.window_start and (
        len(parent_has) > 0 and first - int(parent_has[0]) >= timedelta(days=1) / ser.bucket
    )
    if not is_new and not (key["dim"] in OUTLIER_DIMS and key["metric"] in OUTLIER_METRICS):
        return []
    sl = slice(first if is_new else max(first, ser.window_start), last + 1)
    xs, ns = ser.x[i, sl], ser.n[i, sl]
    ok = ~np.isnan(xs) & (ns > 0)
    if not ok.any():
        return []
    if info.kind == "rate":
        events, trials = float(xs[ok].sum()), float(ns[ok].sum())
        if is_new:
            exp_rate = float((expected[parent, sl][ok] * ns[ok]).sum() / trials)
        else:
            px, pn = ser.x[parent, sl], ser.n[parent, sl]
            rest_x = float(np.nansum(px) - events)
            rest_n = float(np.nansum(pn) - trials)
            if rest_n < MIN_REST or rest_x < 0:
                return []
            exp_rate = (rest_x + 0.5) / (rest_n + 1)
        if not 0 < exp_rate < 1:
            return []
        zval = (events - trials * exp_rate) / math.sqrt(trials * exp_rate * (1 - exp_rate))
        observed = events / trials
        sign = 1
        keep = zval >= SEGMENT_Z and events >= MIN_EVENTS and _matters(info, observed, exp_rate, 1)
    else:
        if not is_new:
            return []
        vals, exps = xs[ok], expected[parent, sl][ok]
        scales = scale[parent, sl][ok]
        good = ~np.isnan(exps) & ~np.isnan(scales) & (vals > 0 if info.kind == "log" else True)
        if good.sum() < 3:
            return []
        vals, exps, scales = vals[good], exps[good], scales[good]
        r = np.log(vals) - np.log(exps) if info.kind == "log" else vals - exps
        zs = r / scales
        zmean = float(zs.mean() * math.sqrt(len(zs)))
        observed, exp_rate = float(np.median(vals)), float(np.median(exps))
        sign = 1 if zmean > 0 else -1
        zval = abs(zmean)
        if sign not in directions or zval < SEGMENT_Z or exp_rate == 0:
            return []
        keep = _matters(info, observed, exp_rate, sign)
        trials = float(ns[ok].sum())
    if not keep:
        return []
    onset = first if is_new else max(first, ser.window_start)
    return [
        _record(
            ser,
            i,
            key,
            observed=observed,
            expected=exp_rate,
            sign=sign,
            score=float(zval),
            onset=onset,
            end=last,
            ongoing=_segment_ongoing(ser, i, parent, sl, last),
            kind="new-segment" if is_new else "outlier",
            traces=int(trials),
        )
    ]


def _segment_ongoing(ser: Series, i: int, parent: int, sl: slice, last: int) -> bool:
    """Whether a segment is still there: not unless its service has since served enough traces
    without it that, at the segment's share of them, missing it is < 1% likely (a model on a
    third of a quiet night's traffic can go an hour unseen)."""
    own, total = float(ser.n[i, sl].sum()), float(ser.n[parent, sl].sum())
    after = float(ser.n[parent, last + 1 :].sum())
    if not 0 < own < total:
        return last >= ser.buckets - 2
    return after < math.log(0.01) / math.log(1 - own / total)


def _practical_onset(
    ser: Series, i: int, info: Any, iv: detect.Interval, sign: int, expected: Any
) -> detect.Interval:
    """The interval from its first bucket whose own change is big enough to matter. With much
    traffic the CUSUM also fires on a small drift that runs into a real shift, and would date
    the incident from the drift (2.5 h early on the demo's 974k-span week)."""
    for t in range(iv.onset, iv.end + 1):
        x, n, e = ser.x[i, t], ser.n[i, t], expected[t]
        if np.isnan(x) or np.isnan(e):
            continue
        level = (x / n if n else 0.0) if info.kind == "rate" else x
        if _matters(info, float(level), float(e), sign):
            return dataclasses.replace(iv, onset=t)
    return iv


def _anomaly(
    ser: Series,
    i: int,
    key: dict[str, Any],
    info: Any,
    iv: detect.Interval,
    sign: int,
    z: Any,
    expected: Any,
) -> dict[str, Any] | None:
    iv = _practical_onset(ser, i, info, iv, sign, expected)
    sl = slice(iv.onset, iv.end + 1)
    xs, ns, exp = ser.x[i, sl], ser.n[i, sl], expected[sl]
    have = ~np.isnan(xs) & ~np.isnan(exp)
    if not have.any():
        return None
    if info.kind == "rate":
        events, trials = float(xs[have].sum()), float(ns[have].sum())
        if trials == 0:
            return None
        observed = events / trials
        exp_value = float((exp[have] * ns[have]).sum() / trials)
        if events < MIN_EVENTS:
            return None
    else:
        observed = float(np.median(xs[have]))
        exp_value = float(np.median(exp[have]))
    if not _matters(info, observed, exp_value, sign, spike=iv.kind == "spike"):
        return None
    zs = z[sl][~np.isnan(z[sl])]
    score = float(sign * zs.mean() * math.sqrt(len(zs))) if len(zs) else 0.0
    # Still anomalous in the series' last bucket with data (a quiet last hour is not an end).
    with_data = np.flatnonzero(~np.isnan(ser.x[i]))
    ongoing = iv.ongoing or (len(with_data) > 0 and iv.end >= int(with_data[-1]))
    return _record(
        ser, i, key, observed=observed, expected=exp_value, sign=sign, score=score,
        onset=iv.onset, end=iv.end, ongoing=ongoing, kind=iv.kind, traces=int(ns[have].sum()),
    )  # fmt: skip


# Low traffic: a service with fewer than SPARSE_PER_HOUR traces an hour (its median bucket of
# the window) has most of its bucket means left empty (MIN_TRACES). It is scanned trace by trace
# instead: each trace's log level (tokens, cost, latency) against the service's daily shape and
# its trailing clean traces (a robust z, as for buckets), a CUSUM of the clipped z over traces
# (k = 1, h = SPARSE_H); errors by a Bernoulli CUSUM of the log-likelihood ratio of a rate
# SPARSE_ERROR_RATIO times the history's (h = SPARSE_LLR_H). bench/scan_power.py measures it.
SPARSE_PER_HOUR = 10
SPARSE_WINDOW = 48  # trailing traces of the baseline
SPARSE_H = 6.0
SPARSE_LLR_H = 7.0
SPARSE_ERROR_RATIO = 4.0
SPARSE_MIN_TRACES = 3  # traces an incident found this way touches at least
_SPARSE_LEVELS = {
    "tokens_per_trace": "tokens",
    "cost_per_trace": "cost_usd",
    "latency_p50_ms": "duration_ms",
}


def _sparse_services(ser: Series) -> list[str]:
    out = []
    for i, key in enumerate(ser.keys):
        if key["metric"] == "error_rate" and key["parent"] is None:
            counts = ser.n[i, ser.window_start :]
            per_hour = timedelta(hours=1) / ser.bucket
            if len(counts) and float(np.median(counts)) * per_hour < SPARSE_PER_HOUR:
                out.append(key["service"])
    return out


def _sparse_record(
    ser: Series, metric: str, service: str, times: list[Any], lo: int, hi: int, *,
    observed: float, expected: float, score: float, ongoing: bool,
) -> dict[str, Any]:  # fmt: skip
    idx = {(k["metric"], k["service"]): i for i, k in enumerate(ser.keys) if k["parent"] is None}
    onset_b = max(0, int((times[lo] - ser.start) // ser.bucket))
    end_b = max(onset_b, int((times[hi] - ser.start) // ser.bucket))
    return {
        "metric": metric,
        "layer": "ai",
        "segment": {"service": service},
        "observed": observed,
        "expected": expected,
        "change": (observed - expected) / expected if expected else None,
        "direction": "up",
        "score": score,
        "onset": times[lo],
        "end": None if ongoing else times[hi],
        "kind": "shift",
        "traces": hi - lo + 1,
        "_series": idx.get((metric, service), -1),
        "_onset": onset_b,
        "_end": end_b,
        "_min_traces": SPARSE_MIN_TRACES,
    }


def find_sparse_anomalies(store: Backend, ser: Series) -> list[dict[str, Any]]:
    """Anomalies of low-traffic services, found over their traces (see SPARSE_PER_HOUR). The
    services' traces are scored together, one row a metric and service (padded), in one walk."""
    found: list[dict[str, Any]] = []
    window_t = ser.time(ser.window_start)
    per_service = []
    for service in _sparse_services(ser):
        rows = store.rows(
            "SELECT start_time, tokens, cost_usd, duration_ms, error FROM aiobs_scan_traces"
            " WHERE service_name = ? ORDER BY start_time, trace_id",
            [service],
        )
        if len(rows) >= 2 * SPARSE_WINDOW:
            per_service.append((service, rows))
            found += _sparse_errors(ser, service, rows, window_t)
    prepared = []  # (metric, service, times, values, residuals, daily shape)
    for j, metric in enumerate(_SPARSE_LEVELS, start=1):
        for service, rows in per_service:
            raw = np.array([np.nan if r[j] is None or r[j] <= 0 else float(r[j]) for r in rows])
            ok = ~np.isnan(raw)
            if ok.sum() < 2 * SPARSE_WINDOW:
                continue
            times = [r[0] for r, k in zip(rows, ok, strict=True) if k]
            logs = np.log(raw[ok])
            hours = np.array([int((t - ser.start).total_seconds() // 3600) for t in times])
            # The daily shape from hourly medians of the traces' logs.
            hourly = np.full(int(hours.max()) + 1, np.nan)
            for h in np.unique(hours):
                hourly[h] = np.median(logs[hours == h])
            profile = detect.seasonal_profile(hourly[None, :], 24)[0][hours % 24]
            prepared.append((metric, service, times, raw[ok], logs - profile, profile))
    if not prepared:
        return found
    # One walk for every metric and service: the rows are scored independently, and the walk's
    # cost is its steps (one walk a metric took 3 x 1045 steps of a demo week's scan).
    width = max(len(p[4]) for p in prepared)
    resid = np.full((len(prepared), width), np.nan)
    for i, p in enumerate(prepared):
        resid[i, : len(p[4])] = p[4]
    z_all, exp = detect.robust_scores(resid, window=SPARSE_WINDOW, min_scale=0.05)
    for i, (metric, service, times, values, _, profile) in enumerate(prepared):
        info = metric_info(metric)
        n = len(values)
        z = z_all[i, :n]
        for iv in detect.cusum_intervals(z, h=SPARSE_H, spike_z=math.inf):
            if iv.onset < SPARSE_WINDOW or times[iv.end] < window_t:
                continue
            sl = slice(iv.onset, iv.end + 1)
            level = exp.value[i, sl] + profile[sl]
            if metric == "latency_p50_ms":
                observed = float(np.median(values[sl]))
                expected = float(np.exp(np.median(level)))
            else:  # a mean of lognormal traces, not their median
                observed = float(np.mean(values[sl]))
                spread = float(np.median(exp.scale[i, sl]))
                expected = float(np.exp(np.median(level) + spread**2 / 2))
            if not _matters(info, observed, expected, 1):
                continue
            found.append(
                _sparse_record(
                    ser, metric, service, times, iv.onset, iv.end, observed=observed,
                    expected=expected, score=float(np.mean(z[sl]) * math.sqrt(len(z[sl]))),
                    ongoing=iv.end >= n - 1,
                )
            )  # fmt: skip
    return found


def _sparse_errors(
    ser: Series, service: str, rows: list[Any], window_t: Any
) -> list[dict[str, Any]]:
    """A Bernoulli CUSUM of errors over the traces: LLR of SPARSE_ERROR_RATIO × p₀ against p₀,
    p₀ from the traces before the window."""
    errors = [bool(r[4]) for r in rows]
    times = [r[0] for r in rows]
    before = [e for t, e in zip(times, errors, strict=True) if t < window_t]
    if len(before) < 2 * SPARSE_WINDOW:
        return []
    p0 = (sum(before) + 0.5) / (len(before) + 1)
    p1 = min(0.5, p0 * SPARSE_ERROR_RATIO)
    if p1 <= p0:
        return []
    up, down = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
    out = []
    s, start = 0.0, 0
    i = 0
    while i < len(errors):
        if s == 0.0:
            start = i
        s = max(0.0, s + (up if errors[i] else down))
        if s >= SPARSE_LLR_H:
            # The run: to where S returns to 0, ending at its last error.
            j = i
            while j + 1 < len(errors) and s > 0:
                j += 1
                s = max(0.0, s + (up if errors[j] else down))
            last = max(k for k in range(start, j + 1) if errors[k])
            # The onset: where the run's log-likelihood ratio up to its last error is largest
            # (a stray error hours before would otherwise start it).
            best, acc, first = -math.inf, 0.0, last
            for k in range(last, start - 1, -1):
                acc += up if errors[k] else down
                if errors[k] and acc > best:
                    best, first = acc, k
            n = last - first + 1
            events = sum(errors[first : last + 1])
            if times[last] >= window_t and events >= MIN_EVENTS:
                observed = events / n
                zval = (events - n * p0) / math.sqrt(n * p0 * (1 - p0))
                if _matters(metric_info("error_rate"), observed, p0, 1):
                    out.append(
                        _sparse_record(
                            ser, "error_rate", service, times, first, last, observed=observed,
                            expected=p0, score=zval, ongoing=s > 0 and j == len(errors) - 1,
                        )
                    )  # fmt: skip
            s, i = 0.0, j + 1
            continue
        i += 1
    return out


def scan(
    store: Backend,
    filt: TraceFilter,
    *,
    by: str | None = None,
    bucket: timedelta | None = None,
) -> Scan:
    """Scan ``filt``'s window (default: the last 24 h) for incidents."""
    from aiobs.analysis.incidents import build_incidents

    until = filt.until or utcnow()
    since = filt.since or until - timedelta(hours=24)
    if until <= since:
        raise UsageError("the window ends before it starts")
    dims = parse_by(by)
    # Buckets only where the store has traces: empty ones before the first (history) cost the
    # detectors' walk a third of its time on a store holding just the week scanned, and a window
    # reaching years past the data would be walked bucket by bucket.
    row = store.one(
        "SELECT min(start_time), max(start_time) FROM aiobs_trace_facts"
        " WHERE start_time >= ? AND start_time < ?",
        [since - MAX_HISTORY, until],
    )
    first = row[0] if row and row[0] is not None else since
    last = row[1] if row and row[1] is not None else since
    data_since, data_until = max(since, first), min(until, last + timedelta(microseconds=1))
    width = bucket or choose_bucket(
        store, data_since, max(data_until, data_since + timedelta(hours=1)), density_since=first
    )
    reach = min(MAX_HISTORY, max(HISTORY, width * HISTORY_BUCKETS))
    first = max(first, since - reach) if first < since else first
    history = min(reach, max(timedelta(0), width * ((since - first) // width + 1)))
    load_until = min(until, since + width * ((data_until - since) // width + 1))
    # A window opening before the first trace is walked from that trace's bucket: ten empty
    # years of 30-minute buckets ahead of a week of data took the detectors 141 s.
    load_since = max(since, first)
    try:
        ser = load_series(
            store, filt, since=load_since, until=load_until, history=history, bucket=width,
            dims=dims,
        )  # fmt: skip
        per_day = int(timedelta(days=1) / width)
        window = min(48, max(12, int(TRAILING / width)))
        period = per_day if timedelta(days=1) % width == timedelta(0) else None
        anomalies = find_anomalies(ser, window, period)
        anomalies += find_sparse_anomalies(store, ser)
        incidents = build_incidents(store, ser, anomalies, until=until)
    finally:
        drop_scan_table(store)
    return cast(
        "Scan",
        {
            "window": {
                "since": since,
                "until": until,
                "bucket_minutes": width.total_seconds() / 60,
                "history_since": ser.start,
            },
            "incidents": incidents,
            "series_scanned": len(ser.keys),
            "anomalies_found": len(anomalies),
        },
    )
