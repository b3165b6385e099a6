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
from typing import TYPE_CHECKING, Any

import numpy as np

from aiobs.analysis import detect
from aiobs.analysis.browse import TraceFilter
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
    from aiobs.store.connection import Store

HISTORY = timedelta(days=4)  # before the window: 3 daily seasons plus a trailing window
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
            ongoing=last >= ser.buckets - 2,
            kind="new-segment" if is_new else "outlier",
            traces=int(trials),
        )
    ]


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


def scan(
    store: Store,
    filt: TraceFilter,
    *,
    by: str | None = None,
    bucket: timedelta | None = None,
) -> dict[str, Any]:
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
    row = store.con.execute(
        "SELECT min(start_time), max(start_time) FROM aiobs_trace_facts"
        " WHERE start_time >= ? AND start_time < ?",
        [since - HISTORY, until],
    ).fetchone()
    first = row[0] if row and row[0] is not None else since
    last = row[1] if row and row[1] is not None else since
    data_since, data_until = max(since, first), min(until, last + timedelta(microseconds=1))
    width = bucket or choose_bucket(
        store, data_since, max(data_until, data_since + timedelta(hours=1)), density_since=first
    )
    history = min(HISTORY, max(timedelta(0), width * ((since - first) // width + 1)))
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
        incidents = build_incidents(store, ser, anomalies, until=until)
    finally:
        drop_scan_table(store)
    return {
        "window": {
            "since": since,
            "until": until,
            "bucket_minutes": width.total_seconds() / 60,
            "history_since": ser.start,
        },
        "incidents": incidents,
        "series_scanned": len(ser.keys),
        "anomalies_found": len(anomalies),
    }
