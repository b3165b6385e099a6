"""``diff``: what changed between a baseline and a target (two windows or two filters), and why.

Per-trace rows come from the store (``segment.trace_metrics_sql`` plus each trace's span-level
values); the statistics run here on those rows (``significance``):

- metrics: rates (error, tool error, handoff, thumbs-down, retry, rephrase, abandonment) with a
  Newcombe interval of the difference and Fisher's exact test when a cell is small, else the
  two-proportion z test; latency/TTFT quantiles and per-trace means (tokens, cost, LLM calls,
  CSAT) with Mann-Whitney U and a bootstrap interval of the difference resampling traces; tests
  and intervals corrected for traces clustered in sessions (``design_effect``);
  Benjamini-Hochberg across all of them; a regression is a significant change in the bad
  direction at least ``min_change`` relative.
- factors: for each field (release, workflow, model, prompt version, tool, step kind, error type,
  finish reason, provider, agent, tool-call sequence, error message), each value's share of the
  baseline and target traces, lift, Adtributor surprise, and its part of the change of the primary
  regressed metric, split into mix (traffic moved to the value) and rate (the value got worse);
  ``new`` for values only the target has. Each factor carries example trace ids from both sides.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from aiobs.analysis import significance as sig
from aiobs.analysis.browse import SpanWindow, span_window, where_records
from aiobs.analysis.filters import TraceFilter
from aiobs.analysis.segment import trace_metrics_sql
from aiobs.analysis.timewindow import parse_window
from aiobs.analysis.where import Where, parse_where
from aiobs.errors import UsageError
from aiobs.semantic.signals import EVAL_FAILED

if TYPE_CHECKING:
    from aiobs.analysis.results import Diff
    from aiobs.backend import Backend

BOOTSTRAP_B = 2000
BOOTSTRAP_MAX = 1000  # larger sides are bootstrapped m-out-of-n (significance.bootstrap_diff_ci)
MIN_SUPPORT = 10  # traces with a value, on the side that has more, before it is a factor
UBIQUITOUS = 0.95  # a value on at least this share of both sides explains nothing
Q = 0.05

# name, kind, per-trace value, higher_is_worse (None: a shift worth seeing, never a regression)
METRICS: tuple[tuple[str, str, str, bool | None], ...] = (
    ("error_rate", "rate", "error", True),
    ("latency_p50_ms", "p50", "duration_ms", True),
    ("latency_p95_ms", "p95", "duration_ms", True),
    ("ttft_p50_ms", "p50", "ttft_ms", True),
    ("tokens_per_trace", "mean", "tokens", True),
    ("cost_per_trace", "mean", "cost_usd", True),
    ("llm_calls_per_trace", "mean", "llm_calls", True),
    ("tool_error_rate", "ratio", "tool", True),
    ("handoff_rate", "rate", "handoff", True),
    ("thumbs_down_rate", "rate", "thumbs_down", True),
    ("retry_rate", "rate", "retried", True),
    ("rephrase_rate", "rate", "rephrased", True),
    ("abandonment_rate", "rate", "abandoned", True),
    ("csat", "mean", "csat", False),
    ("eval_score", "mean", "eval_score", False),
    ("eval_fail_rate", "rate", "eval_failed", True),
    ("response_chars", "mean", "response_chars", None),
    ("retrieval_top_score", "mean", "retrieval_top_score", None),
)
FACTOR_FIELDS = (
    "service_version",
    "workflow",
    "model",
    "prompt_version",
    "tool_name",
    "tool_sequence",
    "step_kind",
    "error_type",
    "error_message",
    "finish_reason",
    "provider",
    "agent_name",
)


@dataclass(frozen=True)
class Side:
    label: str  # baseline | target
    text: str  # as given
    where: Where | None
    since: Any = None
    until: Any = None

    def filter(self, base: TraceFilter) -> TraceFilter:
        wheres = [w for w in (base.where, self.where) if w is not None]
        where = None
        if wheres:
            where = Where(
                " and ".join(w.text for w in wheres),
                " AND ".join(f"({w.sql})" for w in wheres),
            )
        return TraceFilter(
            since=self.since if self.since is not None else base.since,
            until=self.until if self.until is not None else base.until,
            services=base.services,
            models=base.models,
            prompt_versions=base.prompt_versions,
            status=base.status,
            min_duration_ms=base.min_duration_ms,
            user=base.user,
            where=where,
        )

    def describe(self) -> dict[str, Any]:
        if self.where is None:
            return {"kind": "window", "text": self.text, "since": self.since, "until": self.until}
        return {"kind": "filter", "text": self.text}


def parse_side(label: str, text: str) -> Side:
    """A window ``A..B`` (relative or ISO ends) or a filter expression."""
    if ".." in text and "'" not in text:
        since, until = parse_window(text, None)
        return Side(label, text, None, since, until)
    return Side(label, text, parse_where(text, option=f"--{label}"))


# Each trace's span-level values, for the factors: aggregated in the metrics' pass over its spans.
SPAN_VALUES = (
    ("list(DISTINCT s.tool_name) FILTER (WHERE s.tool_name IS NOT NULL)", "tool_name"),
    (
        "string_agg(s.tool_name, ' → ' ORDER BY s.start_time) FILTER (WHERE s.step_kind = 'tool')",
        "tool_sequence",
    ),
    ("list(DISTINCT s.step_kind)", "step_kind"),
    ("list(DISTINCT s.error_type) FILTER (WHERE s.error_type IS NOT NULL)", "error_type"),
    (
        "list(DISTINCT left(s.error_message, 120))"
        " FILTER (WHERE s.error_message IS NOT NULL AND s.status = 'error')",
        "error_message",
    ),
    ("list(DISTINCT s.finish_reason) FILTER (WHERE s.finish_reason IS NOT NULL)", "finish_reason"),
    (
        "list(DISTINCT s.provider) FILTER (WHERE s.provider IS NOT NULL AND s.step_kind = 'llm')",
        "provider",
    ),
    ("list(DISTINCT s.agent_name) FILTER (WHERE s.agent_name IS NOT NULL)", "agent_name"),
    *(
        (f"list(s.duration_ms) FILTER (WHERE s.step_kind = '{kind}')", f"{kind}_durations")
        for kind in ("llm", "retrieval", "tool", "embedding", "rerank")
    ),
)
STEP_KINDS_TIMED = ("llm", "retrieval", "tool", "embedding", "rerank")

_ROW_SQL = """
WITH m AS ({metrics})
SELECT m.trace_id, m.service_name, m.session_id, m.user_id, m.start_time, m.duration_ms, m.status = 'error' AS error, m.ttft_ms,
  coalesce(m.input_tokens, 0) + coalesce(m.output_tokens, 0) AS tokens, m.cost_usd, m.llm_calls,
  m.tool_calls, m.tool_errors, m.handoff, m.thumbs_down, m.retried, m.rephrased, m.abandoned, m.csat,
  m.response_chars, m.retrieval_top_score, m.eval_score, m.eval_failed,
  m.service_version, m.root_name AS workflow, m.models AS model, m.prompt_versions AS prompt_version,
  m.tool_name, m.tool_sequence, m.step_kind, m.error_type, m.error_message, m.finish_reason,
  m.provider, m.agent_name, m.llm_durations, m.retrieval_durations, m.tool_durations,
  m.embedding_durations, m.rerank_durations{flags}
FROM m
ORDER BY m.start_time, m.trace_id
"""


def row_sql(
    where: str,
    *,
    pick_first: bool = False,
    flags: tuple[tuple[str, str], ...] = (),
    within: SpanWindow = None,
) -> str:
    """One row per trace selected by ``where`` (over ``ai_traces t``): the metric inputs and the
    factor fields (as ``load_rows`` returns them), and ``flags`` and ``within``
    (trace_metrics_sql)."""
    metrics = trace_metrics_sql(
        where, SPAN_VALUES, pick_first=pick_first, flags=flags, within=within
    )
    return _ROW_SQL.format(metrics=metrics, flags="".join(f", m.{name}" for name, _ in flags))


def load_rows(store: Backend, filt: TraceFilter) -> list[dict[str, Any]]:
    where, params = filt.sql()
    pick_first = store.capabilities.materialised and not filt.reads_cost
    sql = row_sql(where, pick_first=pick_first, within=span_window(store, filt))
    return where_records(store, sql, params, filt.where)


def load_sides(
    store: Backend, baseline: TraceFilter, target: TraceFilter
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of both sides from one query (a trace on both sides is in both lists): the spans
    and events are scanned once, not once a side (~120 ms of a diff on 974k spans)."""
    (wb, pb), (wt, pt) = baseline.sql(), target.sql()
    flags = (("_in_baseline", wb), ("_in_target", wt))
    pick_first = store.capabilities.materialised and not (baseline.reads_cost or target.reads_cost)
    within = span_window(store, baseline, target)
    sql = row_sql(f"({wb}) OR ({wt})", pick_first=pick_first, flags=flags, within=within)
    named = [w for w in (baseline.where, target.where) if w is not None]
    shown = Where(" / ".join(w.text for w in named), "") if named else None
    rows = where_records(store, sql, [*pb, *pt, *pb, *pt], shown)
    sides: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    for row in rows:
        in_baseline, in_target = row.pop("_in_baseline"), row.pop("_in_target")
        if in_baseline:
            sides[0].append(row)
        if in_target:
            sides[1].append(row if not in_baseline else dict(row))
    return sides


def _values(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r[key] is not None]


def design_effect(rows: list[dict[str, Any]]) -> float:
    """Worst-case design effect of traces clustered in sessions: n / n_eff with
    n_eff = (Σ m_i)² / Σ m_i² (m_i traces in session i; traces of a session assumed fully
    correlated). Tests built for independent traces have z divided, and intervals widened, by
    its square root — otherwise a day whose sessions happen to be longer looks significant."""
    sizes: dict[Any, int] = {}
    for i, r in enumerate(rows):
        key = r.get("session_id") or ("trace", i)
        sizes[key] = sizes.get(key, 0) + 1
    n = sum(sizes.values())
    return sum(m * m for m in sizes.values()) / n if n else 1.0


_NO_ESTIMATE = dict.fromkeys(("baseline", "target", "delta", "rel_change", "ci", "p_value"))


def _widen(delta: float, lo: float, hi: float, factor: float) -> list[float]:
    return [delta - (delta - lo) * factor, delta + (hi - delta) * factor]


def _metric(
    name: str,
    kind: str,
    key: str,
    worse_up: bool | None,
    base: list[dict[str, Any]],
    targ: list[dict[str, Any]],
    deff: float = 1.0,
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "higher_is_worse": worse_up}
    if kind in ("rate", "ratio"):
        if kind == "ratio":  # tool errors per tool call
            xb, nb = sum(r["tool_errors"] for r in base), sum(r["tool_calls"] for r in base)
            xt, nt = sum(r["tool_errors"] for r in targ), sum(r["tool_calls"] for r in targ)
        else:
            vb = [r[key] for r in base if r[key] is not None]
            vt = [r[key] for r in targ if r[key] is not None]
            xb, nb, xt, nt = sum(map(bool, vb)), len(vb), sum(map(bool, vt)), len(vt)
        out.update(baseline_n=nb, target_n=nt)
        if nb == 0 or nt == 0:
            return {**out, **_NO_ESTIMATE}
        pb, pt = xb / nb, xt / nt
        lo, hi = sig.newcombe_diff(xt, nt, xb, nb)
        if min(xb, nb - xb, xt, nt - xt) < 5:
            p = sig.fisher_exact(xt, nt - xt, xb, nb - xb)
        else:
            z = sig.two_proportion_z(xb, nb, xt, nt)[0]
            p = min(1.0, 2 * sig.norm_sf(abs(z) / math.sqrt(deff)))
        lo, hi = _widen(pt - pb, lo, hi, math.sqrt(deff))
        return {**out, "baseline": pb, "target": pt, "delta": pt - pb,
                "rel_change": (pt - pb) / pb if pb else None, "ci": [lo, hi], "p_value": p}  # fmt: skip
    vb, vt = _values(base, key), _values(targ, key)
    out.update(baseline_n=len(vb), target_n=len(vt))
    if len(vb) < 2 or len(vt) < 2:
        return {**out, **_NO_ESTIMATE}
    spec: str | float = "mean" if kind == "mean" else (0.5 if kind == "p50" else 0.95)

    def stat(values: list[float]) -> float:
        return sum(values) / len(values) if spec == "mean" else sig.quantile(values, float(spec))

    b, t = stat(vb), stat(vt)
    lo, hi = sig.bootstrap_diff_ci(vb, vt, spec, b=BOOTSTRAP_B, seed=7, max_n=BOOTSTRAP_MAX)
    lo, hi = _widen(t - b, lo, hi, math.sqrt(deff))
    z = sig.mann_whitney(vb, vt)["z"]
    p = min(1.0, 2 * sig.norm_sf(abs(z) / math.sqrt(deff)))
    return {**out, "baseline": b, "target": t, "delta": t - b,
            "rel_change": (t - b) / b if b else None, "ci": [lo, hi], "p_value": p}  # fmt: skip


def _step_kind_metric(
    kind: str, base: list[dict[str, Any]], targ: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """p95 duration of one step kind's spans: Mann-Whitney and a bootstrap interval on the spans,
    corrected by the design effect of spans clustered in traces."""
    key = f"{kind}_durations"
    vb = [float(v) for r in base for v in (r.get(key) or [])]
    vt = [float(v) for r in targ for v in (r.get(key) or [])]
    if len(vb) < MIN_SUPPORT or len(vt) < MIN_SUPPORT:
        return None
    # Spans cluster in traces and traces in sessions (same intent, same model arm): the design
    # effect counts spans per session.
    per_session: dict[Any, int] = {}
    for i, r in enumerate((*base, *targ)):
        n = len(r.get(key) or [])
        if n:
            cluster = r.get("session_id") or ("trace", i)
            per_session[cluster] = per_session.get(cluster, 0) + n
    sizes = list(per_session.values())
    deff = sum(m * m for m in sizes) / sum(sizes)
    b, t = sig.quantile(vb, 0.95), sig.quantile(vt, 0.95)
    lo, hi = sig.bootstrap_diff_ci(vb, vt, 0.95, b=BOOTSTRAP_B, seed=9, max_n=BOOTSTRAP_MAX)
    lo, hi = _widen(t - b, lo, hi, math.sqrt(deff))
    z = sig.mann_whitney(vb, vt)["z"]
    return {
        "name": f"{kind}_p95_ms",
        "higher_is_worse": True,
        "baseline_n": len(vb),
        "target_n": len(vt),
        "baseline": b,
        "target": t,
        "delta": t - b,
        "rel_change": (t - b) / b if b else None,
        "ci": [lo, hi],
        "p_value": min(1.0, 2 * sig.norm_sf(abs(z) / math.sqrt(deff))),
    }


def _trace_value(row: dict[str, Any], key: str, kind: str) -> float | None:
    if kind == "ratio":
        return row["tool_errors"] / row["tool_calls"] if row["tool_calls"] else None
    v = row.get(key)
    if isinstance(v, list):  # a step kind's durations: the trace's mean
        return sum(v) / len(v) if v else None
    return None if v is None else float(v)


def _weights(
    rows: list[dict[str, Any]], values: list[float | None], kind: str
) -> tuple[list[float], list[float]]:
    """Per trace, the metric's numerator and denominator: (tool errors, tool calls) for the tool
    error rate, (value, 1) for a trace with a value, (0, 0) for one without."""
    if kind == "ratio":
        return (
            [float(r["tool_errors"] or 0) for r in rows],
            [float(r["tool_calls"] or 0) for r in rows],
        )
    return [v or 0.0 for v in values], [0.0 if v is None else 1.0 for v in values]


def rank_factors(
    base: list[dict[str, Any]],
    targ: list[dict[str, Any]],
    primary: tuple[str, str, str, bool | None] | None,
) -> list[dict[str, Any]]:
    nb, nt = len(base), len(targ)
    if not nb or not nt:
        return []
    key, kind = (primary[2], primary[1]) if primary else ("error", "rate")
    if kind in ("p50", "p95"):
        kind = "mean"  # attribution of a quantile change by segment means
    # Each trace's (numerator, denominator) once, not once per field and value it belongs to (on 7
    # incidents of a scan that was 317k calls and 0.3 s). A trace's weight is its share of the
    # metric's denominator: its tool calls for the tool error rate, 1 for a trace with a value,
    # 0 without one. Weighting the segments by it (not by their share of all traces) makes the
    # mix and rate terms of a field's values add up to the metric's change exactly, so one value
    # explains more than 100 % only when others moved the other way.
    value_b = [_trace_value(r, key, kind) for r in base]
    value_t = [_trace_value(r, key, kind) for r in targ]
    num_b, den_b = _weights(base, value_b, kind)
    num_t, den_t = _weights(targ, value_t, kind)
    all_b, all_t = sum(den_b), sum(den_t)
    mean_b = sum(num_b) / all_b if all_b else 0.0
    mean_t = sum(num_t) / all_t if all_t else 0.0
    total_delta = mean_t - mean_b
    factors: list[dict[str, Any]] = []
    for field in FACTOR_FIELDS:
        groups: dict[str, tuple[list[int], list[int]]] = {}
        for side, rows in ((0, base), (1, targ)):
            # Inline: a helper call per trace and field was a third of this function's time.
            for i, r in enumerate(rows):
                v = r.get(field)
                if v is None:
                    continue
                if isinstance(v, list):
                    for x in v:
                        if x is not None:
                            groups.setdefault(str(x), ([], []))[side].append(i)
                else:
                    groups.setdefault(str(v), ([], []))[side].append(i)
        for value, (in_b, in_t) in groups.items():
            if max(len(in_b), len(in_t)) < MIN_SUPPORT:
                continue
            share_b, share_t = len(in_b) / nb, len(in_t) / nt
            if share_b >= UBIQUITOUS and share_t >= UBIQUITOUS:
                continue  # on (nearly) every trace of both sides: it cannot tell them apart
            p, q = share_b, share_t
            surprise = 0.5 * (
                (p * math.log(2 * p / (p + q)) if p else 0.0)
                + (q * math.log(2 * q / (p + q)) if q else 0.0)
            )
            seg_den_b = sum(den_b[i] for i in in_b)
            seg_den_t = sum(den_t[i] for i in in_t)
            r0 = sum(num_b[i] for i in in_b) / seg_den_b if seg_den_b else mean_b
            r1 = sum(num_t[i] for i in in_t) / seg_den_t if seg_den_t else mean_b
            w0 = seg_den_b / all_b if all_b else 0.0
            w1 = seg_den_t / all_t if all_t else 0.0
            mix = (w1 - w0) * (r0 - mean_b)
            rate = w1 * (r1 - r0)
            explained = (mix + rate) / total_delta if total_delta else 0.0
            kind_label = (
                "new"
                if share_b == 0
                else ("vanished" if share_t == 0 else ("mix" if abs(mix) > abs(rate) else "rate"))
            )
            if kind_label == "vanished" and explained <= 0:
                continue
            lift = share_t / share_b if share_b else None
            # Beyond all of the change, explaining more does not make a better cause.
            score = surprise + min(1.0, max(0.0, explained))
            factors.append(
                {
                    "field": field,
                    "value": value,
                    "baseline_share": share_b,
                    "target_share": share_t,
                    "lift": lift,
                    "score": score,
                    "surprise": surprise,
                    "explained": explained,
                    "mix": mix,
                    "rate": rate,
                    "kind": kind_label,
                    "baseline_value": r0 if seg_den_b else None,
                    "target_value": r1 if seg_den_t else None,
                    "examples": {
                        "baseline": [base[i]["trace_id"] for i in in_b[:3]],
                        "target": [
                            targ[i]["trace_id"]
                            for i in sorted(in_t, key=lambda i: -(value_t[i] or 0))[:3]
                        ],
                    },
                }
            )
    # Equal scores mean the same traces carry the values: the more basic field first (a release or
    # prompt version before the tool it calls, a tool before the error it raises).
    order = {field: i for i, field in enumerate(FACTOR_FIELDS)}
    factors.sort(key=lambda f: (-round(f["score"], 9), order[f["field"]], f["value"]))
    return factors


def diff(
    store: Backend,
    base: TraceFilter,
    baseline: str,
    target: str,
    *,
    min_change: float = 0.05,
    top: int = 15,
) -> Diff:
    sides = (parse_side("baseline", baseline), parse_side("target", target))
    rows = load_sides(store, sides[0].filter(base), sides[1].filter(base))
    if not rows[0] or not rows[1]:
        empty = "baseline" if not rows[0] else "target"
        raise UsageError(
            f"the {empty} selects no traces", hint="check the window (UTC) or the filter"
        )
    deff = design_effect([*rows[0], *rows[1]])
    metrics = [_metric(*m, rows[0], rows[1], deff) for m in METRICS]
    specs: list[tuple[str, str, str, bool | None]] = list(METRICS)
    for kind in STEP_KINDS_TIMED:
        step = _step_kind_metric(kind, rows[0], rows[1])
        if step is not None:
            metrics.append(step)
            specs.append((step["name"], "p95", f"{kind}_durations", True))
    for name, key in _evaluation_flags(store, rows):
        metric = f"eval.{name}_fail_rate"
        metrics.append(_metric(metric, "rate", key, True, rows[0], rows[1], deff))
        specs.append((metric, "rate", key, True))
    qvalues = sig.benjamini_hochberg(
        [m["p_value"] if m["p_value"] is not None else math.nan for m in metrics]
    )
    primary = None
    best = math.inf
    for spec, m, qv in zip(specs, metrics, qvalues, strict=True):
        m["q_value"] = None if math.isnan(qv) else qv
        # A quantile or mean claim also needs its own interval to exclude no change: Mann-Whitney
        # tests the whole distribution, not the p95.
        ci_clear = m["ci"] is None or m["ci"][0] > 0 or m["ci"][1] < 0
        m["significant"] = m["q_value"] is not None and m["q_value"] < Q and ci_clear
        worse = (
            m["higher_is_worse"] is not None
            and m["delta"] is not None
            and m["delta"] != 0
            and (m["delta"] > 0) == m["higher_is_worse"]
        )
        big = m["rel_change"] is None or abs(m["rel_change"]) >= min_change
        m["regression"] = bool(m["significant"] and worse and big)
        if m["regression"] and m["q_value"] < best:
            best, primary = m["q_value"], spec
    factors = rank_factors(rows[0], rows[1], primary) + shift_factors(rows[0], rows[1], metrics)
    factors.sort(key=lambda f: -f["score"])
    return cast(
        "Diff",
        {
            "baseline": {**sides[0].describe(), "traces": len(rows[0])},
            "target": {**sides[1].describe(), "traces": len(rows[1])},
            "primary_metric": primary[0] if primary else None,
            "design_effect": deff,
            "metrics": metrics,
            "factors": factors[:top],
        },
    )


def _evaluation_flags(
    store: Backend, rows: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> list[tuple[str, str]]:
    """Per evaluation name on the two sides' traces (``aiobs eval``'s and imported ones), a
    per-trace flag set on ``rows`` — the trace has an answer that evaluation failed; None where
    it judged none — so each gets its fail-rate metric (``eval.reasoning_leak_fail_rate``).
    Returns (name, the rows' key) for each name judged on both sides."""
    ids = [r["trace_id"] for side in rows for r in side]
    if not ids:
        return []
    times = [r["start_time"] for side in rows for r in side]
    found = store.rows(
        f"""SELECT TraceId, LogAttributes['gen_ai.evaluation.name'] AS name,
  max(CASE WHEN {EVAL_FAILED} THEN 1 ELSE 0 END) AS failed
FROM otel_logs
WHERE EventName = 'gen_ai.evaluation.result' AND Timestamp >= ? AND Timestamp <= ?
  AND TraceId IN (SELECT unnest(?)) AND LogAttributes['gen_ai.evaluation.name'] IS NOT NULL
GROUP BY 1, 2""",
        [min(times) - EVAL_SLACK, max(times) + EVAL_SLACK, ids],
    )
    flags: dict[str, dict[str, bool]] = {}
    for trace_id, name, failed in found:
        flags.setdefault(str(name), {})[trace_id] = bool(failed)
    out: list[tuple[str, str]] = []
    for name in sorted(flags):
        key = f"_eval_{len(out)}"
        judged = [0, 0]
        for i, side in enumerate(rows):
            for r in side:
                r[key] = flags[name].get(r["trace_id"])
                judged[i] += r[key] is not None
        if all(judged):
            out.append((name, key))
    return out


EVAL_SLACK = timedelta(hours=1)  # evaluation results land a little after their traces


SHIFT_FIELDS = ("response_chars", "retrieval_top_score")


def shift_factors(
    base: list[dict[str, Any]], targ: list[dict[str, Any]], metrics: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Answer length and top retrieval score whose distribution moved significantly (their
    metric's test, design effect and Benjamini-Hochberg included) as ``shift`` factors: the
    medians, and the share of each side beyond the baseline's 90th percentile in the direction
    of the move (10th when it fell) — e.g. answers that got long because reasoning leaked into
    them, or retrieval that stopped finding relevant pages."""
    out = []
    by_name = {m["name"]: m for m in metrics}
    for field in SHIFT_FIELDS:
        m = by_name.get(field)
        if m is None or not m["significant"]:
            continue
        vb, vt = _values(base, field), _values(targ, field)
        mb, mt = sig.quantile(vb, 0.5), sig.quantile(vt, 0.5)
        up = mt > mb
        cut = sig.quantile(vb, 0.9 if up else 0.1)

        def beyond(v: float, cut: float = cut, up: bool = up) -> bool:
            return v > cut if up else v < cut

        share_b = sum(beyond(v) for v in vb) / len(vb)
        share_t = sum(beyond(v) for v in vt) / len(vt)
        p, q = share_b, share_t
        surprise = 0.5 * (
            (p * math.log(2 * p / (p + q)) if p else 0.0)
            + (q * math.log(2 * q / (p + q)) if q else 0.0)
        )
        extreme_t = sorted(
            (r for r in targ if r[field] is not None and beyond(float(r[field]))),
            key=lambda r: -float(r[field]) if up else float(r[field]),
        )
        extreme_b = [r for r in base if r[field] is not None and beyond(float(r[field]))]
        out.append(
            {
                "field": field,
                "value": f"median {mb:.3g} → {mt:.3g}; {'above' if up else 'below'} {cut:.3g}",
                "baseline_share": share_b,
                "target_share": share_t,
                "lift": share_t / share_b if share_b else None,
                "score": surprise + abs(m["rel_change"] or 0.0),
                "surprise": surprise,
                "explained": None,
                "mix": None,
                "rate": None,
                "kind": "shift",
                "baseline_value": mb,
                "target_value": mt,
                "examples": {
                    "baseline": [r["trace_id"] for r in extreme_b[:3]],
                    "target": [r["trace_id"] for r in extreme_t[:3]],
                },
            }
        )
    return out
