"""From a scan's anomalies to incidents: grouping, likely causes, impact, severity, one-line insight.

- Grouping: anomalies of the journeys (not infra) that start within ``JOIN_BUCKETS`` of each
  other in the same service form one incident; infra anomalies starting then join it as
  co-moving evidence (on their own they are not incidents: the scan reports what hurt journeys).
- Likely causes, ranked by a confidence in [0, 1]: change events shortly before the onset —
  deployment and config events from the logs, versions, prompt versions, models and tools first
  seen then — weighted by how close they are, whether they touch the incident's service, and
  whether the incident's own segments or factors name what they introduced; the ``diff``
  factors of the incident window against the hours before it; co-moving infra metrics. A
  segment that has been worse all along (an outlier) gets the condition that separates its bad
  traces from its good ones instead.
- Impact: traces, sessions and users in the incident's segment while it lasted; user-signal
  rates then against the hours before; extra cost; example traces to replay.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from aiobs import units
from aiobs.analysis import diff as diffs
from aiobs.analysis import significance as sig
from aiobs.analysis.series import (
    TRACE_FLAGS,
    TRACE_VALUES,
    Series,
    factor_rows,
    metric_info,
    segment_rows,
    segment_summary,
    trace_points,
    trace_stat,
)
from aiobs.semantic.signals import EVAL_FAILED

if TYPE_CHECKING:
    from aiobs.backend import Backend

JOIN_BUCKETS = 2
CHANGE_LOOKBACK = timedelta(hours=6)
PROXIMITY_MINUTES = 90.0  # a change this long before the onset weighs 1/e of one at the onset
MIN_SPIKE_TRACES = 30  # a one-bucket spike on fewer traces is a long tail, not an incident
# An incident touches at least this many traces: on the clean demo worlds (seeds 11-13) every
# group below it was a night-time wobble of a quantile or a score over 25-40 traces.
MIN_INCIDENT_TRACES = 50
SEVERITIES = ("info", "warning", "critical")

_LABELS = {
    "error_rate": "error rate",
    "tool_error_rate": "tool error rate",
    "handoff_rate": "handoff rate",
    "thumbs_down_rate": "thumbs-down rate",
    "retry_rate": "retry rate",
    "rephrase_rate": "rephrase rate",
    "abandonment_rate": "abandonment rate",
    "eval_fail_rate": "evaluation failure rate",
    "latency_p95_ms": "p95 latency",
    "latency_p50_ms": "median latency",
    "ttft_p50_ms": "time to first token",
    "tokens_per_trace": "tokens per trace",
    "cost_per_trace": "cost per trace",
    "llm_calls_per_trace": "LLM calls per trace",
    "response_chars": "response length",
    "retrieval_top_score": "top retrieval score",
    "eval_score": "evaluation score",
    "csat": "CSAT",
}


def label(metric: str) -> str:
    if metric in _LABELS:
        return _LABELS[metric]
    if metric.endswith(("_p95_ms", "_p50_ms")) and metric.count("_") == 2:
        kind, q, _ = metric.split("_")
        return f"{kind} step {'p95' if q == 'p95' else 'median'} latency"
    return metric


def _article(phrase: str) -> str:
    return "an" if phrase[:1].lower() in "aeiou" else "a"


def _minutes(minutes: float) -> str:
    return "under a minute" if minutes < 1 else units.duration(minutes * 60_000)


def _fmt(metric: str, v: float | None) -> str:
    """A metric's value in its unit, as the tables show it (``aiobs.units``)."""
    if v is None:
        return "-"
    if metric_info(metric).kind == "rate":
        return units.pct(v)
    if metric.startswith("cost"):
        return units.money(v)
    if metric.endswith("_ms"):
        return units.duration(v)
    return units.num(v)


def _group(ser: Series, anomalies: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    primary = [
        a for a in anomalies
        if a["layer"] == "ai" and not (a["kind"] == "spike" and a["traces"] < MIN_SPIKE_TRACES)
    ]  # fmt: skip
    infra = [a for a in anomalies if a["layer"] == "infra"]
    groups: list[list[dict[str, Any]]] = []
    for a in sorted(primary, key=lambda a: (a["_onset"], -a["score"])):
        if a["kind"] == "outlier":
            # An outlier "starts" at the window's start: that says nothing about what else did.
            groups.append([a])
            continue
        for g in groups:
            if g[0]["kind"] == "outlier":
                continue
            head = g[0]
            if head["segment"]["service"] != a["segment"]["service"]:
                continue
            # Starting together (within JOIN_BUCKETS of a member), or the same series firing
            # again while it is still part of the incident (a service-level quantile flickering
            # on and off under a long incident).
            again = any(
                x["metric"] == a["metric"] and x["segment"] == a["segment"]
                and a["_onset"] <= x["_end"] + 1
                for x in g
            )  # fmt: skip
            if again or any(abs(x["_onset"] - a["_onset"]) <= JOIN_BUCKETS for x in g):
                g.append(a)
                break
        else:
            groups.append([a])
    for a in infra:
        near = [g for g in groups if abs(g[0]["_onset"] - a["_onset"]) <= JOIN_BUCKETS]
        if near:
            min(near, key=lambda g: abs(g[0]["_onset"] - a["_onset"])).append(a)
    # A lone spike of one metric (one bucket of slow tool calls) is a long tail, not an incident;
    # a spike of errors, or one that other metrics or the infra under it share, is.
    return [
        g for g in groups
        if any(a["kind"] != "spike" or metric_info(a["metric"]).kind == "rate" for a in g)
        or len({a["metric"] for a in g}) >= 2
    ]  # fmt: skip


def _focus(group: list[dict[str, Any]]) -> dict[str, str]:
    """The incident's most specific segment: its strongest anomaly below the service level, if
    that is at least half as strong as the strongest overall."""
    ai = [a for a in group if a["layer"] == "ai"]
    best = max(a["score"] for a in ai)
    children = [a for a in ai if len(a["segment"]) > 1 and a["score"] >= best / 2]
    if not children:
        return {"service": ai[0]["segment"]["service"]}
    return dict(max(children, key=lambda a: a["score"])["segment"])


_SIGNALS = {
    "retry_rate": "retried",
    "abandonment_rate": "abandoned",
    "thumbs_down_rate": "thumbs_down",
    "error_rate": "error",
}


def _impact(during: dict[str, Any], normal: dict[str, Any] | None) -> dict[str, Any]:
    signals: dict[str, Any] = {}
    for name, key in _SIGNALS.items():
        rate, events = during[key]
        base = normal[key][0] if normal else None
        signals[name] = {
            "during": rate,
            "normal": base,
            "ratio": rate / base if rate is not None and base else None,
            "events": events,
        }
    extra = None
    if normal and during["cost_per_trace"] is not None and normal["cost_per_trace"] is not None:
        extra = max(0.0, (during["cost_per_trace"] - normal["cost_per_trace"]) * during["traces"])
    return {
        "traces": during["traces"],
        "sessions": during["sessions"],
        "users": during["users"],
        "signals": signals,
        "extra_cost_usd": extra,
    }


# Example traces, worst first by the incident's lead metric (SQL over the scan's trace table);
# among equally bad ones a journey whose user gave up or said so first: it shows the impact.
_USER_IMPACT = "abandoned DESC NULLS LAST, thumbs_down DESC"
_WORST_FIRST = {
    "error_rate": f"error DESC, {_USER_IMPACT}, duration_ms DESC",
    "tool_error_rate": f"tool_errors > 0 DESC, {_USER_IMPACT}, tool_errors, duration_ms DESC",
    "eval_fail_rate": "eval_failed DESC NULLS LAST, eval_score ASC NULLS LAST",
    "eval_score": "eval_score ASC NULLS LAST",
    "thumbs_down_rate": "thumbs_down DESC, error DESC",
    "abandonment_rate": "abandoned DESC NULLS LAST, error DESC",
    "retry_rate": "retried DESC, error DESC",
    "handoff_rate": "handoff DESC, error DESC",
    "tokens_per_trace": "tokens DESC",
    "cost_per_trace": "cost_usd DESC NULLS LAST",
    "llm_calls_per_trace": "llm_calls DESC",
    "response_chars": "response_chars DESC NULLS LAST",
    "retrieval_top_score": "retrieval_top_score ASC NULLS LAST",
    "ttft_p50_ms": "ttft_ms DESC NULLS LAST",
    **{
        f"{kind}_{q}_ms": f"list_max({kind}_durations) DESC NULLS LAST"
        for kind in diffs.STEP_KINDS_TIMED
        for q in ("p50", "p95")
    },
}
FACTOR_SAMPLE = 1000  # traces a side for the factor ranking: shares to about ±3 points
CONDITION_SAMPLE = 5000  # traces for the separating condition: a threshold to ±1.5 % of the ranks


def _examples(
    store: Backend, focus: dict[str, str], start: datetime, stop: datetime, metric: str
) -> list[str]:
    order = _WORST_FIRST.get(metric, f"error DESC, {_USER_IMPACT}, duration_ms DESC")
    rows = segment_rows(store, focus, start, stop, columns="trace_id", order=order, limit=5)
    return [r["trace_id"] for r in rows]


def first_seen(store: Backend, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Versions, models, prompt versions and tools whose first trace in the store falls in
    ``[since, until)`` — not counting the store's first day, when everything is first seen."""
    return store.records(
        """WITH firsts AS (
  SELECT 'service_version' AS field, service_name AS service, service_version AS value, min(start_time) AS time
    FROM aiobs_trace_facts WHERE service_version IS NOT NULL GROUP BY ALL
  UNION ALL SELECT 'model', service_name, m, min(start_time)
    FROM (SELECT service_name, unnest(models) AS m, start_time FROM aiobs_trace_facts) GROUP BY ALL
  UNION ALL SELECT 'prompt_version', service_name, p, min(start_time)
    FROM (SELECT service_name, unnest(prompt_versions) AS p, start_time FROM aiobs_trace_facts) GROUP BY ALL
  UNION ALL SELECT 'tool', service_name, tool_name, min(start_time)
    FROM ai_spans WHERE tool_name IS NOT NULL GROUP BY ALL)
SELECT * FROM firsts WHERE time >= ? AND time < ?
  AND time > (SELECT min(start_time) FROM aiobs_trace_facts) + INTERVAL 1 DAY
ORDER BY time, field, service, value""",
        [since, until],
    )


def _changes(
    store: Backend, firsts: list[dict[str, Any]], start: datetime, bucket: timedelta
) -> list[dict[str, Any]]:
    """Deployment/config events and first-seen values around the onset (any service)."""
    from aiobs.analysis.replay import change_events

    lo, hi = start - CHANGE_LOOKBACK, start + bucket * JOIN_BUCKETS
    events = change_events(store, lo, hi)
    for e in events:
        e["service"] = e.pop("service_name")
        e["kind"] = "config" if e["kind"] == "config.change" else "deployment"
        e["introduced"] = []
    first_seen = [f for f in firsts if lo <= f["time"] < hi]
    standalone = []
    for f in first_seen:
        owner = next(
            (
                e for e in events
                if e["service"] == f["service"] and e["time"] <= f["time"] <= e["time"] + timedelta(hours=1)
            ),
            None,
        )  # fmt: skip
        if owner is not None:
            owner["introduced"].append(f)
        else:
            standalone.append(
                {
                    "time": f["time"],
                    "service": f["service"],
                    "kind": "first_seen",
                    "version": "",
                    "id": f"{f['field']}={f['value']}",
                    "description": f"{f['field'].replace('_', ' ')} {f['value']} first seen in {f['service']}",
                    "introduced": [f],
                }
            )
    return [*events, *standalone]


AFTER_TOLERANCE = timedelta(minutes=10)  # a change logged this soon after the onset is at it


def _change_causes(
    store: Backend,
    traced: set[str],
    firsts: list[dict[str, Any]],
    service: str,
    start: datetime,
    bucket: timedelta,
    group: list[dict[str, Any]],
    named: set[tuple[str, str]],
    mechanisms: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Change events near the onset (``start``: the onset refined from the traces). A change in
    a backend or batch service (nothing of it traced) that a held, significant infra move
    (``mechanisms``) followed is corroborated by it: a deployment that rebuilt an index, then
    the vector DB slowed."""
    infra_services = {a["segment"]["service"] for a in group if a["layer"] == "infra"}
    causes = []
    for c in _changes(store, firsts, start, bucket):
        before = (start - c["time"]).total_seconds() / 60
        if before >= 0 or -before <= AFTER_TOLERANCE.total_seconds() / 60:
            minutes = max(0.0, before)
            proximity = math.exp(-minutes / PROXIMITY_MINUTES)
            rel = f"{_minutes(minutes)} before the onset ({start:%H:%M})"
        else:  # after the onset: it cannot have started it
            minutes = -before
            proximity = 0.5 * math.exp(-minutes / 30)
            rel = f"{_minutes(minutes)} after the onset ({start:%H:%M})"
        if c["service"] == service:
            relation = 1.0
        elif c["service"] in infra_services or c["service"] not in traced:
            relation = 0.8  # infra, batch or backend services: a plausible cause from below
        else:
            relation = 0.4
        introduced = [f"{f['field'].replace('_', ' ')} {f['value']}" for f in c["introduced"]]
        corroborated = any((f["field"], f["value"]) in named for f in c["introduced"])
        followed = [
            m for m in mechanisms
            if c["service"] not in traced
            and m["_onset_time"] + bucket * JOIN_BUCKETS >= c["time"]
        ]  # fmt: skip
        confidence = proximity * relation * (1.0 if corroborated or followed else 0.8)
        when = c["time"].strftime("%Y-%m-%d %H:%M")
        evidence = [f"{when} UTC, {rel}"]
        if introduced:
            evidence.append("introduced " + ", ".join(introduced))
        if corroborated:
            evidence.append(
                "what it introduced is among the incident's anomalous segments or factors"
            )
        if followed:
            evidence.append(f"followed by {followed[0]['description']}")
        causes.append(
            {
                "kind": c["kind"],
                "description": c["description"],
                "evidence": evidence,
                "confidence": round(confidence, 3),
                "service": c["service"],
                "id": c["id"] or None,
                "time": c["time"],
            }
        )
    return causes


_DIFF_SPEC = {m[0]: m for m in diffs.METRICS}
for _kind in diffs.STEP_KINDS_TIMED:
    _DIFF_SPEC[f"{_kind}_p95_ms"] = (f"{_kind}_p95_ms", "p95", f"{_kind}_durations", True)
    _DIFF_SPEC[f"{_kind}_p50_ms"] = (f"{_kind}_p50_ms", "p50", f"{_kind}_durations", True)


LOCALISES = 0.2  # a value worse than the rest explains this much more than its traffic share


def _factor_causes(
    base_rows: list[dict[str, Any]], rows: list[dict[str, Any]], metric: str
) -> list[dict[str, Any]]:
    spec = _DIFF_SPEC.get(metric) or _DIFF_SPEC["error_rate"]
    out = []
    for f in diffs.rank_factors(base_rows, rows, spec)[:8]:
        if f["kind"] == "vanished" or (f["kind"] != "new" and f["explained"] < 0.3):
            continue
        if f["kind"] == "rate" and f["target_share"] >= diffs.UBIQUITOUS:
            continue  # every trace of the incident has it: it localises nothing
        if f["kind"] == "rate" and f["explained"] < f["target_share"] + LOCALISES:
            continue  # it explains no more of the change than its share of the traffic
        if f["kind"] == "mix" and abs(f["target_share"] - f["baseline_share"]) < 0.05:
            continue
        share = f"{f['baseline_share'] * 100:.0f}% → {f['target_share'] * 100:.0f}% of traces"
        what = f"{f['field'].replace('_', ' ')} {f['value']}"
        if f["kind"] == "new":
            description = f"{what} appears ({share})"
        elif f["kind"] == "mix":
            description = f"more traffic through {what} ({share})"
        else:
            description = f"{what} got worse ({share})"
        explained = min(1.0, max(0.0, f["explained"]))
        out.append(
            {
                "kind": "factor",
                "description": description,
                "evidence": [
                    f"explains {explained * 100:.0f}% of the {label(metric)} change",
                    f"examples: {', '.join(f['examples']['target'][:2])}",
                ],
                "confidence": round(0.25 + 0.5 * explained, 3),
                "field": f["field"],
                "value": f["value"],
            }
        )
        if len(out) == 2:
            break
    return out


# A co-moving infra series is a cause only when its move held over the incident (z above
# HELD_Z in at least HELD_SHARE of the incident's buckets with data) and is significant against
# its own history over them (Stouffer z at least INFRA_Z): one bucket of a dozen slow requests
# is a long tail, not a cause.
HELD_Z = 2.0
HELD_SHARE = 0.5
INFRA_Z = 4.0
MAX_HELD_BUCKETS = 48  # of a long (or ongoing) incident, its first day of buckets decides


def _infra_causes(
    ser: Series,
    group: list[dict[str, Any]],
    onset: int,
    end: int,
    service: str,
    called: dict[str, float],
    span_services: set[str],
) -> list[dict[str, Any]]:
    """Infra metrics moving with the incident, weighed by how they held over it, how relevant
    their service is and how well their onset aligns with the incident's.

    Relevance: the incident's own service 0.6 (its handoff queue, its CPU move because of what
    its journeys do as often as they cause it); a dependency the affected traces call,
    0.5 + 0.5 × the share of them that call it; a backend nothing traces (a vector DB) 0.7; a
    traced service these traces never call 0.2."""
    out = []
    hi = min(end, onset + MAX_HELD_BUCKETS - 1, ser.buckets - 1)
    for a in group:
        if a["layer"] != "infra":
            continue
        zs = ser.z[a["_series"], onset : hi + 1] if ser.z.size else np.array([])
        zs = zs[~np.isnan(zs)]
        if not len(zs):
            continue
        held = float(np.mean(zs > HELD_Z))
        stouffer = float(zs.sum() / math.sqrt(len(zs)))
        if held < HELD_SHARE or stouffer < INFRA_Z:
            continue
        svc = a["segment"]["service"]
        if svc == service:
            relevance = 0.6
        elif svc in called:
            relevance = 0.5 + 0.5 * called[svc]
        elif svc not in span_services:
            relevance = 0.7
        else:
            relevance = 0.2
        lag = onset - a["_onset"]  # buckets the infra move led the incident by
        align = 1.0 if 0 <= lag <= 1 else math.exp(-max(abs(lag) - 1, 0) / 2)
        ratio = a["observed"] / a["expected"] if a["expected"] else None
        # As strong as the move: ×4 or more counts fully, ×1.3 barely.
        strength = min(1.0, math.log(ratio) / math.log(4)) if ratio and ratio > 1 else 0.0
        description = (
            f"{svc} {a['metric']} rose"
            + (f" ×{ratio:.1f}" if ratio else "")
            + f" ({_fmt(a['metric'], a['expected'])} → {_fmt(a['metric'], a['observed'])})"
        )
        out.append(
            {
                "kind": "infra",
                "description": description,
                "evidence": [
                    f"co-moving from {a['onset']:%Y-%m-%d %H:%M} UTC, z {a['score']:.1f}",
                    f"held in {held * 100:.0f}% of the incident's buckets, z {stouffer:.1f}"
                    f" over them",
                ],
                "confidence": round(0.8 * relevance * held * align * (0.5 + 0.5 * strength), 3),
                "service": svc,
                "_onset_time": a["onset"],
            }
        )
    return out


_NUMERIC_CONDITIONS = ("retrieval_top_score", "response_chars", "tokens", "duration_ms")


def _best_split(pairs: list[tuple[float, bool]]) -> tuple[float, float, str] | None:
    """(gap, threshold, op): the threshold where the shares of bad and good traces below it differ
    most (the Kolmogorov-Smirnov distance), placed at the edge of the bad traces' side."""
    pairs.sort()
    n_bad = sum(b for _, b in pairs)
    n_good = len(pairs) - n_bad
    if n_bad < 10 or n_good < 10:
        return None
    best: tuple[float, float, str] | None = None
    below_bad = below_good = 0
    for i, (value, is_bad) in enumerate(pairs):
        if i and value != pairs[i - 1][0]:
            gap = below_bad / n_bad - below_good / n_good
            if best is None or abs(gap) > best[0] + 1e-12:
                best = (abs(gap), value, "<" if gap > 0 else "≥")
        below_bad += is_bad
        below_good += not is_bad
    return best


def _condition_cause(rows: list[dict[str, Any]], bad_key: str) -> list[dict[str, Any]]:
    """For a segment worse all along: the numeric condition that best separates its bad traces
    from its good ones."""
    best: tuple[float, str, str, float, float, float] | None = None
    for field in _NUMERIC_CONDITIONS:
        pairs = [
            (float(r[field]), bool(r[bad_key]))
            for r in rows
            if r[field] is not None and r[bad_key] is not None
        ]
        split = _best_split(pairs)
        if split is None:
            continue
        gap, cut, op = split
        inside = [b for v, b in pairs if (v < cut) == (op == "<")]
        outside = [b for v, b in pairs if (v < cut) != (op == "<")]
        if inside and outside and (best is None or gap > best[0]):
            best = (gap, field, op, cut, sum(inside) / len(inside), sum(outside) / len(outside))
    if best is None or best[0] < 0.4:
        return []
    gap, field, op, cut, rate_in, rate_out = best
    return [
        {
            "kind": "condition",
            "description": f"when {field} {op} {cut:.2g}",
            "evidence": [
                f"{bad_key.replace('_', ' ')} {rate_in * 100:.0f}% when {field} {op} {cut:.2g}, "
                f"{rate_out * 100:.0f}% otherwise",
                f"separates bad from good traces by {gap * 100:.0f} points",
            ],
            "confidence": round(0.4 + 0.5 * gap, 3),
            "field": field,
            "threshold": cut,
        }
    ]


EVAL_SAMPLE = 5000  # traces a side whose evaluation results are counted
EVAL_BEFORE = timedelta(hours=24)  # the period before an incident its evaluations are held to


def _evaluation_causes(
    store: Backend, focus: dict[str, str], start: datetime, stop: datetime, *, outlier: bool
) -> list[dict[str, Any]]:
    """Which evaluations fail more during an incident whose evaluation failure rate moved: per
    evaluation name, its fail rate on the segment's traces during the incident against the day
    before — or, for a segment worse all along (``outlier``), against the rest of its service
    — (``aiobs eval``'s built-in ones and imported ones alike), those that rose by ten points or
    more and at least doubled. An evaluation that explains a thumbs-down incident names what
    users saw (``reasoning_leak`` 0% → 34%)."""
    during = [
        r["trace_id"]
        for r in segment_rows(store, focus, start, stop, columns="trace_id", limit=EVAL_SAMPLE)
    ]
    if not during:
        return []
    inside = set(during)
    rest_of_service = f"in the rest of {focus['service']}"
    # The rest of the service during the incident: the baseline of a segment worse all along,
    # and of an evaluation that judged nothing the day before (it was not run then, or the
    # segment is new): an evaluator run over the last day alone is no evidence of a change.
    rest = [
        r["trace_id"]
        for r in segment_rows(
            store, {"service": focus["service"]}, start, stop, columns="trace_id",
            limit=EVAL_SAMPLE + len(inside),
        )
        if r["trace_id"] not in inside
    ][:EVAL_SAMPLE]  # fmt: skip
    before = (
        []
        if outlier
        else [
            r["trace_id"]
            for r in segment_rows(
                store, focus, start - EVAL_BEFORE, start, columns="trace_id", limit=EVAL_SAMPLE
            )
        ]
    )
    lo = start - (timedelta(0) if outlier else EVAL_BEFORE) - timedelta(hours=1)
    rows = store.rows(
        f"""SELECT LogAttributes['gen_ai.evaluation.name'] AS name,
  CASE WHEN TraceId IN (SELECT unnest(?)) THEN 'during'
       WHEN TraceId IN (SELECT unnest(?)) THEN 'before' ELSE 'rest' END AS side,
  count(*) AS judged,
  count_if({EVAL_FAILED})
FROM otel_logs
WHERE EventName = 'gen_ai.evaluation.result' AND Timestamp >= ? AND Timestamp < ?
  AND TraceId IN (SELECT unnest(?)) AND LogAttributes['gen_ai.evaluation.name'] IS NOT NULL
GROUP BY 1, 2""",
        # [""] for no traces: ClickHouse cannot type an empty array parameter (arrayJoin([])).
        [during, before or [""], lo, stop + timedelta(hours=1), [*during, *before, *rest]],
    )  # fmt: skip
    rates: dict[str, dict[str, tuple[int, int]]] = {}
    for name, side, judged, failed in rows:
        rates.setdefault(str(name), {})[str(side)] = (int(judged), int(failed))
    causes = []
    for name, sides in sorted(rates.items()):
        judged, failed = sides.get("during", (0, 0))
        if judged < MIN_EVENTS_EVAL:
            continue
        b_judged, b_failed = sides.get("before", (0, 0))
        other = "the day before"
        if not b_judged:
            b_judged, b_failed = sides.get("rest", (0, 0))
            other = rest_of_service
        if b_judged < MIN_EVENTS_EVAL:
            continue  # nothing to compare with: the evaluator judged only these answers
        now, then = failed / judged, b_failed / b_judged
        if now - then < 0.1 or now < 2 * then:
            continue
        causes.append(
            {
                "kind": "evaluation",
                "description": f"evaluation {name} fails on {now:.0%} of the answers"
                f" ({then:.0%} {other})",
                "evidence": [
                    f"{failed:,} of {judged:,} answers judged during the incident failed {name}",
                    f"{b_failed:,} of {b_judged:,} {other}",
                ],
                # Below a deployment or config change that explains it; above loose factors.
                "confidence": round(min(0.5 + 0.5 * (now - then), 0.9), 3),
                "field": "evaluation",
                "value": name,
            }
        )
    return causes


MIN_EVENTS_EVAL = 10  # answers judged during an incident before its evaluation is named


_BAD_KEY = {
    "eval_fail_rate": "eval_failed",
    "error_rate": "error",
    "thumbs_down_rate": "thumbs_down",
    "tool_error_rate": "error",
}


def _severity(
    group: list[dict[str, Any]], impact: dict[str, Any], ongoing: bool, duration: timedelta
) -> str:
    ai = [a for a in group if a["layer"] == "ai"]
    size = 0.0
    for a in ai:
        if a["expected"] and a["observed"] is not None and a["expected"] > 0:
            r = a["observed"] / a["expected"]
            size = max(size, r if r >= 1 else 1 / r)
    points = 2 if size >= 3 else 1 if size >= 1.5 else 0
    points += 2 if impact["users"] >= 100 else 1 if impact["users"] >= 20 else 0
    points += 1 if ongoing or duration >= timedelta(hours=2) else 0
    points += 1 if any(
        s["ratio"] is not None and s["ratio"] >= 1.5 and s["events"] >= 10
        for k, s in impact["signals"].items() if k != "error_rate"
    ) else 0  # fmt: skip
    points += (
        1
        if any(metric_info(a["metric"]).kind == "rate" and "error" in a["metric"] for a in ai)
        else 0
    )
    return "critical" if points >= 6 else "warning" if points >= 3 else "info"


def _summary(incident: dict[str, Any], lead: dict[str, Any]) -> str:
    seg = ", ".join(f"{k} {v}" for k, v in lead["segment"].items() if k != "service")
    where = lead["segment"]["service"] + (f" ({seg})" if seg else "")
    change = lead["change"]
    if lead["kind"] == "outlier":
        head = (
            f"{label(lead['metric'])} of {where} is {_fmt(lead['metric'], lead['observed'])} against "
            f"{_fmt(lead['metric'], lead['expected'])} for the rest of {lead['segment']['service']}"
        )
    else:
        verb = "rose" if lead["direction"] == "up" else "fell"
        pct = (
            f" {abs(change) * 100:.0f}%"
            if change is not None and abs(change) < 10
            else (f" ×{lead['observed'] / lead['expected']:.0f}" if lead["expected"] else "")
        )
        head = (
            f"{label(lead['metric']).capitalize()} of {where} {verb}{pct} "
            f"({_fmt(lead['metric'], lead['expected'])} → {_fmt(lead['metric'], lead['observed'])}) "
            f"at {incident['start']:%Y-%m-%d %H:%M} UTC"
        )
        if incident["end"] is None:
            head += ", ongoing"
        else:
            minutes = (incident["end"] - incident["start"]).total_seconds() / 60
            head += f", for {units.duration(minutes * 60_000)}"
    parts = [head[0].upper() + head[1:]]
    if incident["likely_causes"]:
        parts.append(f"Likely cause: {incident['likely_causes'][0]['description']}")
    # What the answers were, when an evaluation says so: the leak behind the thumbs-down.
    judged = [c for c in incident["likely_causes"][1:] if c["kind"] == "evaluation"]
    if judged:
        parts.append("Answers: " + "; ".join(c["description"] for c in judged[:2]))
    imp = incident["impact"]
    affected = (
        f"Affected: {units.plural(imp['users'], 'user')}, "
        f"{units.plural(imp['sessions'], 'session')}, {units.plural(imp['traces'], 'trace')}"
    )
    worst = max(
        (
            (name, s) for name, s in imp["signals"].items()
            if name != "error_rate" and s["ratio"] is not None and s["ratio"] >= 1.5 and s["events"] >= 5
        ),
        key=lambda p: p[1]["ratio"],
        default=None,
    )  # fmt: skip
    if worst:
        affected += f"; {label(worst[0])} {worst[1]['ratio']:.1f}x normal"
    parts.append(affected)
    return ". ".join(parts) + "."


# What a user sees or says (their feedback first, then what the answers did), and what only the
# system sees (cost, tokens, calls, step timings, evaluator scores, handoffs it chose). An incident led by the
# latter is headlined by the former when one of them moved.
_USER_FEEDBACK = ("thumbs_down_rate", "abandonment_rate", "csat", "retry_rate", "rephrase_rate")
_USER_VISIBLE = (
    *_USER_FEEDBACK, "error_rate", "tool_error_rate", "latency_p50_ms", "latency_p95_ms",
    "ttft_p50_ms", "response_chars",
)  # fmt: skip


def _headline(group: list[dict[str, Any]], lead: dict[str, Any]) -> dict[str, Any]:
    """The anomaly an incident's summary names: its strongest one when users see it, else the
    user-visible symptom that moved enough to matter over the traces (feedback first), else the
    strongest one."""
    if lead["metric"] in _USER_VISIBLE:
        return lead
    from aiobs.analysis.scan import _matters

    seen = [
        a for a in group
        if a["layer"] == "ai" and a["metric"] in _USER_VISIBLE and a["expected"]
        and _matters(metric_info(a["metric"]), a["observed"], a["expected"],
                     1 if a["direction"] == "up" else -1)
    ]  # fmt: skip
    if not seen:
        return lead
    return min(seen, key=lambda a: (_USER_VISIBLE.index(a["metric"]), -a["score"]))


REFINE_MIN_GAP = 0.15  # abnormal share during minus before, for the traces to date the onset
REFINE_BASELINE = timedelta(hours=24)
REFINE_BEFORE = timedelta(hours=4)


def _refine(
    store: Backend, ser: Series, lead: dict[str, Any], until: datetime
) -> tuple[datetime, datetime | None]:
    """The incident's onset and end from its traces, not its buckets: each trace of the lead
    anomaly's segment is abnormal or not (its event for a rate; beyond the midpoint of the
    before and during levels — means or quantiles, as the metric is — for a level, in log space
    for latency, tokens, cost), and the
    stretch of traces with the largest excess of abnormal ones over the midpoint share — the
    maximum-sum run of flag − (p_before + p_during)/2 — is the incident. Searched from a bucket
    before the onset bucket to a bucket after the end one."""
    seg, metric = lead["segment"], lead["metric"]
    onset_t = ser.time(lead["_onset"])
    end = lead["end"]
    if lead["kind"] == "outlier":
        return onset_t, end
    if lead["kind"] == "new-segment":
        life = trace_points(store, seg, metric, onset_t, end or until)
        if not life:
            return onset_t, end
        return life[0][0], (None if end is None else life[-1][0])
    # From REFINE_BEFORE ahead of the onset bucket (at least a bucket): a scan whose history
    # starts shortly before the incident dates the onset bucket late.
    lo = min(ser.time(max(0, lead["_onset"] - 1)), onset_t - REFINE_BEFORE)
    hi = until if end is None else min(until, ser.time(lead["_end"] + 2))
    pts: list[tuple[datetime, float]] = [
        (t, v) for t, v in trace_points(store, seg, metric, lo - REFINE_BASELINE, hi)
        if v is not None
    ]  # fmt: skip
    base = [v for t, v in pts if t < lo]
    during = [v for t, v in pts if onset_t <= t < (end or until)]
    search = [(t, v) for t, v in pts if t >= lo]
    if len(base) < 10 or len(during) < 3:
        return onset_t, end
    info = metric_info(metric)
    sign = 1 if lead["direction"] == "up" else -1
    if metric in TRACE_FLAGS:
        cut = 0.5
    else:
        # Between the two levels as the metric states them: a mean (tokens per trace) moves
        # with the few traces that changed (a retry loop in a third of them), a quantile with
        # its share of the traces.
        q = TRACE_VALUES[metric][1]
        if q is None:
            b, d = sum(base) / len(base), sum(during) / len(during)
        else:
            b, d = sig.quantile(base, q), sig.quantile(during, q)
        cut = math.sqrt(b * d) if info.kind == "log" and b > 0 and d > 0 else (b + d) / 2

    def abnormal(v: float) -> bool:
        return sign * (v - cut) > 0

    p_before = sum(map(abnormal, base)) / len(base)
    p_during = sum(map(abnormal, during)) / len(during)
    if p_during - p_before < REFINE_MIN_GAP:
        return onset_t, end
    mid = (p_before + p_during) / 2
    best, best_i, best_j, run, run_i = -1.0, 0, 0, 0.0, 0
    for j, (_, v) in enumerate(search):
        if run <= 0:
            run, run_i = 0.0, j
        run += abnormal(v) - mid
        if run > best:
            best, best_i, best_j = run, run_i, j
    if best <= 0:
        return onset_t, end
    return search[best_i][0], (None if end is None else search[best_j][0])


LONG_INCIDENT = timedelta(hours=12)


def _trace_figures(
    store: Backend, a: dict[str, Any], start: datetime, stop: datetime
) -> dict[str, Any]:
    """An anomaly of a level with its observed and expected values computed over traces (not a
    median of bucket medians): observed over the incident's traces (a new segment: its own
    life in the window); expected over the segment's traces at the same hours of the three days
    before (the day before the onset, for an incident longer than LONG_INCIDENT) or, for a new
    segment, over the rest of its service at the same time. Rates are counts of traces already."""
    if a["layer"] != "ai" or a["metric"] not in TRACE_VALUES or a["kind"] == "outlier":
        return a
    seg, metric = a["segment"], a["metric"]
    if a["kind"] == "new-segment":
        lo, hi = a["onset"], a["end"] or stop
        expected, _ = trace_stat(
            store, {"service": seg["service"]}, metric, [(lo, hi)], exclude=seg
        )
    else:
        lo, hi = start, stop
        day = timedelta(days=1)
        windows = (
            [(lo - day, lo)]
            if hi - lo > LONG_INCIDENT
            else [(lo - k * day, hi - k * day) for k in (1, 2, 3)]
        )
        expected, _ = trace_stat(store, seg, metric, windows)
    observed, _ = trace_stat(store, seg, metric, [(lo, hi)])
    if observed is None or expected is None:
        return a
    return {
        **a,
        "observed": observed,
        "expected": expected,
        "change": (observed - expected) / expected if expected else None,
    }


ANSWER_SAMPLE = 2000  # traces a side for the answer-length test
ANSWER_Z = 4.0  # Mann-Whitney z of the answer lengths, one test an incident
ANSWER_TAIL_RATIO = 2.0  # answers beyond the usual 90th percentile, against the usual 10%


def _longer_answers(
    store: Backend, ser: Series, p: dict[str, Any], group: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Answers that changed length with the incident — what users read (reasoning leaking into
    them, a model rambling, answers cut short), as a ``response_chars`` anomaly: the focus
    segment's answers against its service's others at the same time (a new segment) or the
    segment's own before the onset, by a rank test over traces, kept when significant and when
    the share of answers beyond the usual 90th (10th) percentile at least doubled. The bucket
    means miss it: a third of answers twice as long is a +20% mean."""
    if any(a["metric"] == "response_chars" for a in group):
        return []
    focus, start, stop = p["focus"], p["start"], p["stop"]
    new = p["lead"]["kind"] == "new-segment"

    def lengths(seg: dict[str, str], lo: datetime, hi: datetime, **kw: Any) -> list[float]:
        where_rows = (
            segment_rows(store, seg, lo, hi, columns="response_chars", limit=ANSWER_SAMPLE)
            if not kw
            else [
                r
                for r in segment_rows(
                    store, seg, lo, hi, columns="response_chars, model, workflow, prompt_version",
                    limit=4 * ANSWER_SAMPLE,
                )
                if not _in_segment(r, kw["exclude"])
            ][:ANSWER_SAMPLE]
        )  # fmt: skip
        return [float(r["response_chars"]) for r in where_rows if r["response_chars"] is not None]

    during = lengths(focus, start, stop)
    if new and len(focus) > 1:
        normal = lengths({"service": focus["service"]}, start, stop, exclude=focus)
    else:
        before = max(timedelta(hours=6), min(stop - start, timedelta(days=1)))
        normal = lengths(focus, start - before, start)
    if len(during) < 20 or len(normal) < 20:
        return []
    mw = sig.mann_whitney(during, normal)
    if not mw["z"] >= ANSWER_Z:
        return []
    up = mw["auc"] > 0.5
    cut = sig.quantile(normal, 0.9 if up else 0.1)
    beyond = sum((v > cut) if up else (v < cut) for v in during) / len(during)
    if beyond < 0.1 * ANSWER_TAIL_RATIO:
        return []
    observed, expected = sum(during) / len(during), sum(normal) / len(normal)
    return [
        {
            "metric": "response_chars",
            "layer": "ai",
            "segment": dict(focus),
            "observed": observed,
            "expected": expected,
            "change": (observed - expected) / expected if expected else None,
            "direction": "up" if up else "down",
            "score": float(mw["z"]),
            "onset": start,
            "end": p["end"],
            "kind": "new-segment" if new else "shift",
            "traces": len(during),
            "answers_beyond_usual": round(beyond, 3),
            "_series": -1,
            "_onset": p["onset"],
            "_end": p["onset"],
        }
    ]


def _in_segment(row: dict[str, Any], seg: dict[str, str]) -> bool:
    for dim, value in seg.items():
        if dim == "service":
            continue
        have = row.get(dim)
        if isinstance(have, list) and value in have:
            continue
        if have == value:
            continue
        return False
    return True


CARRIED_SHARE = 0.5


def _carried(rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(field, value) that at least CARRIED_SHARE of the incident's sampled traces carry: a
    change that introduced one of them is corroborated by the incident's own traces."""
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        seen: set[tuple[str, str]] = set()
        for field, col in (("service_version", "service_version"), ("model", "model"),
                           ("prompt_version", "prompt_version"), ("tool", "tool_name")):  # fmt: skip
            v = r.get(col)
            for x in v if isinstance(v, list) else [v]:
                if x is not None:
                    seen.add((field, str(x)))
        for k in seen:
            counts[k] = counts.get(k, 0) + 1
    return {k for k, n in counts.items() if rows and n / len(rows) >= CARRIED_SHARE}


def _called(store: Backend, trace_ids: list[str]) -> dict[str, float]:
    """The share of these traces with a span in each service (the dependencies they call)."""
    if not trace_ids:
        return {}
    rows = store.rows(
        "SELECT service_name, count(DISTINCT trace_id) FROM aiobs_span_facts"
        " WHERE trace_id IN (SELECT unnest(?)) GROUP BY 1",
        [trace_ids],
    )
    return {r[0]: r[1] / len(trace_ids) for r in rows if r[0] is not None}


_ID_COLUMNS = {"model": "models", "prompt_version": "prompt_versions"}


def _stable_start(
    store: Backend, focus: dict[str, str], start: datetime, outlier: bool
) -> datetime:
    """When an incident began, independent of the scanned window: its refined onset; for a
    segment worse all along, the segment's first trace in the store."""
    if not outlier:
        return start
    conds, params = ["service_name = ?"], [focus["service"]]
    for dim, value in focus.items():
        if dim in _ID_COLUMNS:
            conds.append(f"list_contains({_ID_COLUMNS[dim]}, ?)")
            params.append(value)
        elif dim == "workflow":
            conds.append("root_name = ?")
            params.append(value)
    row = store.one(
        f"SELECT min(start_time) FROM aiobs_trace_facts WHERE {' AND '.join(conds)}", params
    )
    return row[0] if row and row[0] is not None else start


def build_incidents(
    store: Backend, ser: Series, anomalies: list[dict[str, Any]], *, until: datetime
) -> list[dict[str, Any]]:
    """The scan's incidents, most severe first (``until``: the end of the scanned data)."""
    groups = _group(ser, anomalies)
    firsts = first_seen(store, ser.start, until + ser.bucket * JOIN_BUCKETS) if groups else []
    traced = {
        r[0]
        for r in store.rows(
            "SELECT DISTINCT service_name FROM aiobs_trace_facts WHERE service_name IS NOT NULL"
        )
    }
    span_services = (
        {
            r[0]
            for r in store.rows(
                "SELECT DISTINCT service_name FROM aiobs_span_facts WHERE service_name IS NOT NULL"
            )
        }
        if groups
        else set()
    )
    plans = _merge(ser, [p for p in (_plan(store, ser, g, until) for g in groups) if p is not None])
    # The factor fields of every sampled trace in one pass over the spans (a pass a sample cost
    # 0.47 s on 974k spans).
    wanted = sorted({t for p in plans for t in (*p["sample"], *p["before_sample"])})
    by_id = {r["trace_id"]: r for r in factor_rows(store, wanted)}
    incidents = []
    seen_ids: set[str] = set()
    for p in plans:
        group, lead, focus, service = p["group"], p["lead"], p["focus"], p["focus"]["service"]
        start, stop = p["start"], p["stop"]
        group = [_trace_figures(store, a, start, stop) for a in group]
        if not p["outlier"]:
            group += _longer_answers(store, ser, p, group)
        headline = _headline(group, next(a for a in group if a["_series"] == lead["_series"]
                                         and a["_onset"] == lead["_onset"]))  # fmt: skip
        named = {
            (k, v)
            for a in group
            if a["layer"] == "ai"
            for k, v in a["segment"].items()
            if k != "service"
        }
        causes: list[dict[str, Any]] = []
        if p["outlier"]:
            causes.append(
                {
                    "kind": "segment",
                    "description": f"{', '.join(f'{k} {v}' for k, v in lead['segment'].items() if k != 'service')}"
                    f" has {_article(label(lead['metric']))} {label(lead['metric'])} of {_fmt(lead['metric'], lead['observed'])} against "
                    f"{_fmt(lead['metric'], lead['expected'])} for the rest of {service}",
                    "evidence": [f"over the whole window, z {lead['score']:.1f}"],
                    "confidence": 0.8,
                }
            )
            bad_key = _BAD_KEY.get(lead["metric"], "error")
            sample = segment_rows(
                store, focus, start, stop, limit=CONDITION_SAMPLE,
                columns=f"trace_id, {', '.join(_NUMERIC_CONDITIONS)}, {bad_key}",
            )  # fmt: skip
            causes += _condition_cause(sample, bad_key)
        else:
            rows = [by_id[t] for t in p["sample"] if t in by_id]
            before = [by_id[t] for t in p["before_sample"] if t in by_id]
            factor_causes = _factor_causes(before, rows, lead["metric"]) if before and rows else []
            named |= {
                (
                    {"tool_name": "tool", "workflow": "workflow"}.get(f["field"], f["field"]),
                    f["value"],
                )
                for f in factor_causes
            }
            named |= _carried(rows)
            end_b = (
                ser.buckets - 1
                if p["end"] is None
                else max(p["onset"], int((p["end"] - ser.start) // ser.bucket))
            )
            infra = _infra_causes(
                ser, group, p["onset"], end_b, service, _called(store, p["sample"]), span_services
            )
            mechanisms = [
                c for c in infra if c["service"] not in traced and c["service"] != service
            ]
            causes += _change_causes(
                store, traced, firsts, service, start, ser.bucket, group, named, mechanisms
            )
            causes += factor_causes
            causes += infra
        if any(a["metric"] == "eval_fail_rate" for a in group):
            causes += _evaluation_causes(store, focus, start, stop, outlier=bool(p["outlier"]))
        causes.sort(key=lambda c: -c["confidence"])
        causes = [{k: v for k, v in c.items() if not k.startswith("_")} for c in causes]
        ident = f"{_stable_start(store, focus, start, p['outlier']):%Y%m%dT%H%M}-{service}"
        while ident in seen_ids:  # two incidents of one service starting the same minute
            ident += "+"
        seen_ids.add(ident)
        ordered = sorted(group, key=lambda a: (a is not headline, a["layer"] != "ai", -a["score"]))
        incident: dict[str, Any] = {
            "id": ident,
            "start": start,
            "end": p["end"],
            "ongoing": p["end"] is None,
            "duration_minutes": None
            if p["end"] is None
            else (p["end"] - start).total_seconds() / 60,
            "segment": focus,
            "symptom": headline["metric"],
            "anomalies": [{k: v for k, v in a.items() if not k.startswith("_")} for a in ordered],
            "likely_causes": causes[:5],
            "impact": p["impact"],
            "examples": _examples(store, focus, start, stop, headline["metric"]),
        }
        incident["severity"] = _severity(group, p["impact"], p["end"] is None, stop - start)
        incident["summary"] = _summary(incident, headline)
        incidents.append(incident)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    incidents.sort(
        key=lambda i: (-rank[i["severity"]], -max(a["score"] for a in i["anomalies"]), i["start"])
    )
    return incidents


SPARSE_MIN_RATIO = 1.5


def _sparse_holds(store: Backend, a: dict[str, Any], start: datetime, stop: datetime) -> bool:
    if a["metric"] in TRACE_FLAGS:
        return True  # a rate: its count test and MIN_EVENTS decided
    f = _trace_figures(store, a, start, stop)
    return bool(f["expected"] and f["observed"] / f["expected"] >= SPARSE_MIN_RATIO)


def _merge(ser: Series, plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups whose onsets, refined from the traces, fall together (within JOIN_BUCKETS) in one
    service are one incident: the strongest one's, with the others' anomalies. Grouped by bucket
    onsets, a segment whose shift the bucket CUSUM dated an hour late stood alone."""
    kept: list[dict[str, Any]] = []
    for p in sorted(plans, key=lambda p: -p["lead"]["score"]):
        near = next(
            (
                k for k in kept
                if not k["outlier"] and not p["outlier"]
                and k["focus"]["service"] == p["focus"]["service"]
                and abs(k["start"] - p["start"]) <= ser.bucket * JOIN_BUCKETS
            ),
            None,
        )  # fmt: skip
        if near is None:
            kept.append(p)
        else:
            near["group"] = [*near["group"], *p["group"]]
    return kept


def _plan(
    store: Backend, ser: Series, group: list[dict[str, Any]], until: datetime
) -> dict[str, Any] | None:
    """An incident's time (refined from its traces), segment and impact, and the traces sampled
    for its factors; None when it touches too few traces to be an incident."""
    lead = max((a for a in group if a["layer"] == "ai"), key=lambda a: a["score"])
    # The strongest anomaly dates the incident: weaker ones start and end with noise.
    onset = lead["_onset"]
    start, end = _refine(store, ser, lead, until)
    stop = end + timedelta(microseconds=1) if end is not None else until
    if any("_min_traces" in a for a in group):
        # Found over the traces of a low-traffic service: kept when, over the traces, the level
        # moved at least SPARSE_MIN_RATIO (a mix of workflows shifting moves a few traces' mean
        # by 20-30%).
        group = [a for a in group if "_min_traces" not in a or _sparse_holds(store, a, start, stop)]
        if not any(a["layer"] == "ai" for a in group):
            return None
        if lead not in group:
            return _plan(store, ser, group, until)
    focus = _focus(group)
    service = focus["service"]
    during = segment_summary(store, focus, start, stop)
    if during["traces"] < min(MIN_INCIDENT_TRACES, lead.get("_min_traces", MIN_INCIDENT_TRACES)):
        return None
    before_span = max(timedelta(hours=6), min(stop - start, timedelta(days=1)))
    outlier = lead["kind"] == "outlier"
    if outlier:  # normal is the rest of the service over the same time
        normal = segment_summary(store, {"service": service}, start, stop, exclude=focus)
        sample: list[str] = []
        before_sample: list[str] = []
    else:
        normal = segment_summary(store, {"service": service}, start - before_span, start)
        sample = [
            r["trace_id"]
            for r in segment_rows(
                store, focus, start, stop, columns="trace_id", limit=FACTOR_SAMPLE
            )
        ]
        before_sample = [
            r["trace_id"]
            for r in segment_rows(
                store,
                {"service": service},
                start - before_span,
                # Clear of the onset: the first traces of a change (a deployment minutes before
                # the refined onset) are not its baseline.
                start - ser.bucket,
                columns="trace_id",
                limit=FACTOR_SAMPLE,
            )
        ]
    return {
        "group": group, "lead": lead, "onset": onset, "start": start, "end": end, "stop": stop,
        "focus": focus, "outlier": outlier, "impact": _impact(during, normal),
        "sample": sample, "before_sample": before_sample,
    }  # fmt: skip
