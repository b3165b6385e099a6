"""The scan's series: per time bucket and segment, the journey metrics, step and tool timings, and
the ingested infra metrics — aggregated in the store, returned as arrays (series × buckets).

Segments nest under the service: the service itself, then each of ``workflow``, ``model``,
``prompt_version`` (``--by``) within it, and each tool the service calls.
A segment's series that starts mid-window (a new model, tool or prompt version) has no history of
its own; ``parent`` names the service-level series whose expected value stands in for it.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from aiobs.analysis.browse import span_window, where_errors
from aiobs.analysis.diff import SPAN_VALUES, STEP_KINDS_TIMED
from aiobs.analysis.filters import TraceFilter
from aiobs.analysis.segment import trace_metrics_sql
from aiobs.errors import UsageError

if TYPE_CHECKING:
    import numpy.typing as npt

    from aiobs.backend import Backend

BUCKET_CHOICES_MIN = (5, 10, 15, 30, 60)
TARGET_PER_BUCKET = 25  # traces a bucket of the busiest service, when the window allows
MAX_BUCKETS = 400  # in the scanned window; the detectors walk buckets one at a time
MIN_TRACES = 5  # a bucket's mean from fewer traces is left empty
# A p95 from fewer than 40 values rests on its top one or two: on the clean demo worlds such
# buckets raised most of the false incidents (long tails, not changes).
MIN_P95_SUPPORT = 40
MIN_P50_SUPPORT = 10

DIMENSIONS = {
    "workflow": "workflow",
    "model": "model",
    "prompt_version": "prompt_version",
    "agent": "agent_name",
}
_LIST_COLUMNS = ("model", "prompt_version", "agent_name")
DEFAULT_DIMENSIONS = ("workflow", "model", "prompt_version")


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # rate (x of n) | log (positive, compared as ratios) | linear
    direction: str  # up | down | both: which change is an anomaly
    layer: str = "ai"  # ai | infra
    # The smallest change worth reporting, as observed/expected, for log metrics: quantiles
    # move more by chance than means do.
    min_ratio: float = 1.25


# Journey metrics per bucket: (metric, SQL for x or the value, SQL for n or the support)
_RATE_SQL = {
    "error_rate": ("count_if(error)", "count(*)"),
    "tool_error_rate": ("sum(tool_errors)", "sum(tool_calls)"),
    "handoff_rate": ("count_if(handoff)", "count(*)"),
    "thumbs_down_rate": ("count_if(thumbs_down)", "count(*)"),
    "retry_rate": ("count_if(retried)", "count(*)"),
    "rephrase_rate": ("count_if(rephrased)", "count(*)"),
    "abandonment_rate": ("count_if(abandoned)", "count(abandoned)"),
    "eval_fail_rate": ("count_if(eval_failed)", "count(eval_failed)"),
}
# Scores are bounded and skewed (CSAT piles up at 5): a bucket mean of a handful of them moved
# by chance by 15-20% on the clean worlds.
MIN_SCORE_SUPPORT = 20
_SUPPORT = {
    "latency_p95_ms": MIN_P95_SUPPORT,
    "latency_p50_ms": MIN_P50_SUPPORT,
    "ttft_p50_ms": MIN_P50_SUPPORT,
    "csat": MIN_SCORE_SUPPORT,
    "eval_score": MIN_SCORE_SUPPORT,
    "retrieval_top_score": MIN_SCORE_SUPPORT,
}
_VALUE_SQL = {
    "latency_p95_ms": ("quantile_cont(duration_ms, 0.95)", "count(duration_ms)"),
    "latency_p50_ms": ("quantile_cont(duration_ms, 0.5)", "count(duration_ms)"),
    "ttft_p50_ms": ("quantile_cont(ttft_ms, 0.5)", "count(ttft_ms)"),
    "tokens_per_trace": ("avg(tokens)", "count(*)"),
    "cost_per_trace": ("avg(cost_usd)", "count(cost_usd)"),
    "llm_calls_per_trace": ("avg(llm_calls)", "count(llm_calls)"),
    "response_chars": ("avg(response_chars)", "count(response_chars)"),
    "retrieval_top_score": ("avg(retrieval_top_score)", "count(retrieval_top_score)"),
    "eval_score": ("avg(eval_score)", "count(eval_score)"),
    "csat": ("avg(csat)", "count(csat)"),
}
METRICS: dict[str, Metric] = {
    **{name: Metric(name, "rate", "up") for name in _RATE_SQL},
    "latency_p95_ms": Metric("latency_p95_ms", "log", "up", min_ratio=1.5),
    "latency_p50_ms": Metric("latency_p50_ms", "log", "up", min_ratio=1.5),
    "ttft_p50_ms": Metric("ttft_p50_ms", "log", "up", min_ratio=1.5),
    "tokens_per_trace": Metric("tokens_per_trace", "log", "up"),
    "cost_per_trace": Metric("cost_per_trace", "log", "up"),
    "llm_calls_per_trace": Metric("llm_calls_per_trace", "log", "up"),
    "response_chars": Metric("response_chars", "log", "both", min_ratio=1.5),
    "retrieval_top_score": Metric("retrieval_top_score", "linear", "down"),
    "eval_score": Metric("eval_score", "linear", "down"),
    "csat": Metric("csat", "linear", "down"),
    **{
        f"{kind}_{q}_ms": Metric(f"{kind}_{q}_ms", "log", "up", min_ratio=1.5)
        for kind in ("llm", "retrieval", "tool", "embedding", "rerank")
        for q in ("p50", "p95")
    },
}


@dataclass
class Series:
    """Every series of a scan as rows of (series × bucket) arrays."""

    start: datetime  # the first bucket's start (history included)
    bucket: timedelta
    window_start: int  # index of the first bucket of the scanned window
    keys: list[dict[str, Any]] = field(default_factory=list)  # metric, layer, segment, parent
    x: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    n: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    # Each bucket's z against its series' own baseline (set by the scan's scoring): how strongly
    # and how steadily a co-moving series held over an incident.
    z: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))

    def time(self, i: int) -> datetime:
        return self.start + self.bucket * i

    @property
    def buckets(self) -> int:
        return int(self.x.shape[1]) if self.x.ndim == 2 else 0


# Of diff's per-trace span values, what the series and segment filters need.
_SCAN_SPAN_VALUES = tuple(
    (expr, name) for expr, name in SPAN_VALUES if name == "tool_name" or name.endswith("_durations")
)


def choose_bucket(
    store: Backend, since: datetime, until: datetime, *, density_since: datetime | None = None
) -> timedelta:
    """The smallest of 5/10/15/30/60 min that gives the busiest service ~25 traces a bucket
    (over the hours it has traffic, from ``density_since`` — the history too, so a one-hour
    window is judged on more than its own few minutes) and at most MAX_BUCKETS buckets in the
    window; whole hours beyond that for long windows."""
    row = store.one(
        "SELECT max(n / hours) FROM (SELECT service_name, count(*) AS n,"
        " count(DISTINCT date_trunc('hour', start_time)) AS hours FROM aiobs_trace_facts"
        " WHERE start_time >= ? AND start_time < ? GROUP BY 1)",
        [density_since or since, until],
    )
    per_hour = float(row[0]) if row and row[0] else 0.0
    span_min = (until - since).total_seconds() / 60
    for minutes in BUCKET_CHOICES_MIN:
        if span_min / minutes > MAX_BUCKETS:
            continue
        if per_hour * minutes / 60 >= TARGET_PER_BUCKET:
            return timedelta(minutes=minutes)
    # A window too long for hourly buckets gets whole hours enough to stay within MAX_BUCKETS
    # (30 years of hourly buckets took 158 s and 5.8 GB).
    hours = max(1, math.ceil(span_min / 60 / MAX_BUCKETS))
    return timedelta(hours=hours)


def parse_by(by: str | None) -> tuple[str, ...]:
    if by is None:
        return DEFAULT_DIMENSIONS
    dims = []
    for raw in (p.strip() for p in by.split(",")):
        if not raw or raw in ("service", "service_name"):
            continue  # the service is always a segment
        if raw not in DIMENSIONS:
            raise UsageError(
                f"--by {raw!r}: not a scan dimension",
                hint="dimensions: service, " + ", ".join(DIMENSIONS),
            )
        dims.append(raw)
    return tuple(dict.fromkeys(dims))


def _bucket_expr(col: str, start: datetime, width: timedelta) -> str:
    origin = int((start - datetime(1970, 1, 1)).total_seconds() * 1_000_000)
    return f"CAST(floor((epoch_us({col}) - {origin}) / {int(width.total_seconds() * 1_000_000)}) AS INTEGER)"


def load_series(
    store: Backend,
    filt: TraceFilter,
    *,
    since: datetime,
    until: datetime,
    history: timedelta,
    bucket: timedelta,
    dims: tuple[str, ...],
) -> Series:
    """Aggregate every series over ``[since - history, until)`` in the store."""
    # Buckets on the clock's grid (…:00, :30), not on whatever second --since fell.
    epoch = datetime(1970, 1, 1)
    start = epoch + bucket * ((since - history - epoch) // bucket)
    n_buckets = int(np.ceil((until - start) / bucket))
    out = Series(start=start, bucket=bucket, window_start=int((since - start) // bucket))
    hist_filter = filt.replace(since=start, until=until)
    where, params = hist_filter.sql()
    store.execute("DROP TABLE IF EXISTS aiobs_scan_traces")
    # One row per trace with its metric inputs, kept for the scan's lifetime: the series
    # aggregate it, and each incident's impact and examples select from it. The factor fields
    # (diff's rows) are fetched later for the few thousand traces an incident samples: on 974k
    # spans carrying them here cost ~1 s more.
    # The agent list only when it is a dimension: list(DISTINCT agent_name) over every trace of
    # 974k spans cost 0.8 s and 700 MB.
    span_values = _SCAN_SPAN_VALUES + tuple(
        (expr, name) for expr, name in SPAN_VALUES if name == "agent_name" and "agent" in dims
    )
    cols = ", ".join(f"m.{name}" for _, name in span_values)
    with where_errors(filt.where):  # a filter DuckDB cannot evaluate is exit 2
        store.execute(
            f"""CREATE TEMP TABLE aiobs_scan_traces AS
    SELECT {_bucket_expr("m.start_time", start, bucket)} AS bucket, m.trace_id, m.service_name,
      m.session_id, m.user_id, m.start_time, m.duration_ms, m.status = 'error' AS error, m.ttft_ms,
      coalesce(m.input_tokens, 0) + coalesce(m.output_tokens, 0) AS tokens, m.cost_usd, m.llm_calls,
      m.tool_calls, m.tool_errors, m.handoff, m.thumbs_down, m.retried, m.rephrased, m.abandoned,
      m.csat, m.response_chars, m.retrieval_top_score, m.eval_score, m.eval_failed,
      m.root_name AS workflow, m.models AS model, m.prompt_versions AS prompt_version, {cols}
    FROM ({trace_metrics_sql(where, span_values, pick_first=store.capabilities.materialised and not filt.reads_cost, within=span_window(store, hist_filter))}) m""",
            params,
        )
    aggs = [f'{x} AS "x:{name}", {n} AS "n:{name}"' for name, (x, n) in _RATE_SQL.items()]
    aggs += [
        f'CASE WHEN {n} >= {_SUPPORT.get(name, MIN_TRACES)} THEN {v} END AS "x:{name}",'
        f' {n} AS "n:{name}"'
        for name, (v, n) in _VALUE_SQL.items()
    ]
    selects = ["SELECT bucket, service_name, NULL AS dim, NULL AS value, " + ", ".join(aggs)
               + " FROM aiobs_scan_traces GROUP BY ALL"]  # fmt: skip
    for dim in dims:
        col = DIMENSIONS[dim]
        source = (
            f"(SELECT * EXCLUDE ({col}), unnest({col}) AS {col} FROM aiobs_scan_traces)"
            if col in _LIST_COLUMNS
            else "aiobs_scan_traces"
        )
        selects.append(
            f"SELECT bucket, service_name, '{dim}' AS dim, CAST({col} AS VARCHAR) AS value, "
            + ", ".join(aggs)
            + f" FROM {source} WHERE {col} IS NOT NULL GROUP BY ALL"
        )
    rows: dict[tuple[str, str, str | None, str | None], dict[int, tuple[float, float]]] = {}

    def add(metric: str, layer: str, service: str, dim: str | None, value: str | None,
            bucket_i: int, x: Any, n: Any) -> None:  # fmt: skip
        if x is None or bucket_i is None or not 0 <= bucket_i < n_buckets:
            return
        rows.setdefault((metric, service, dim, value), {})[int(bucket_i)] = (
            float(x),
            float(n or 0),
        )

    names = [*_RATE_SQL, *_VALUE_SQL]
    for rec in store.rows(" UNION ALL ".join(selects)):
        bucket_i, service, dim, value = rec[:4]
        for j, name in enumerate(names):
            add(name, "ai", service, dim, value, bucket_i, rec[4 + 2 * j], rec[5 + 2 * j])
    steps = " UNION ALL ".join(
        f"SELECT bucket, service_name, '{kind}' AS kind, unnest({kind}_durations) AS d"
        f" FROM aiobs_scan_traces"
        for kind in STEP_KINDS_TIMED
    )
    # The median sees a step that got slower across the board even at low traffic; the p95 (with
    # enough support) a tail that did.
    for rec in store.rows(
        f"SELECT bucket, service_name, kind, quantile_cont(d, 0.5), quantile_cont(d, 0.95),"
        f" count(*) FROM ({steps}) GROUP BY ALL HAVING count(*) >= {MIN_P50_SUPPORT}"
    ):
        add(f"{rec[2]}_p50_ms", "ai", rec[1], None, None, rec[0], rec[3], rec[5])
        if rec[5] >= MIN_P95_SUPPORT:
            add(f"{rec[2]}_p95_ms", "ai", rec[1], None, None, rec[0], rec[4], rec[5])
    # Tools: per call, from the spans of the selected traces.
    b_span = _bucket_expr("s.start_time", start, bucket)
    for rec in store.rows(
        f"""SELECT {b_span} AS bucket, t.service_name, s.tool_name, count_if(s.status = 'error'),
  count(*), CASE WHEN count(*) >= {MIN_P95_SUPPORT} THEN quantile_cont(s.duration_ms, 0.95) END
FROM aiobs_span_facts s JOIN aiobs_scan_traces t USING (trace_id)
WHERE s.step_kind = 'tool' AND s.tool_name IS NOT NULL
GROUP BY ALL"""
    ):
        add("tool_error_rate", "ai", rec[1], "tool", rec[2], rec[0], rec[3], rec[4])
        add("tool_p95_ms", "ai", rec[1], "tool", rec[2], rec[0], rec[5], rec[4])
    _infra(store, start, until, bucket, add)

    keys = sorted(rows, key=lambda k: (k[0], k[1], k[2] or "", k[3] or ""))
    out.x = np.full((len(keys), n_buckets), np.nan)
    out.n = np.zeros((len(keys), n_buckets))
    for i, key in enumerate(keys):
        metric, service, seg_dim, value = key
        for b, (x, n) in rows[key].items():
            out.x[i, b], out.n[i, b] = x, n
        parent = (metric, service, None, None) if seg_dim is not None else None
        out.keys.append(
            {
                "metric": metric,
                "layer": "infra" if metric not in METRICS else "ai",
                "service": service,
                "dim": seg_dim,
                "value": value,
                "parent": keys.index(parent) if parent in rows else None,
            }
        )
    return out


def _infra(store: Backend, start: datetime, until: datetime, bucket: timedelta, add: Any) -> None:
    """Gauges (mean a bucket, per quantile label when there is one) and histograms (mean from
    sum/count, and the share of 5xx when the points carry an HTTP status)."""
    b = _bucket_expr("TimeUnix", start, bucket)
    for rec in store.rows(
        f"""SELECT {b}, ServiceName, MetricName, coalesce(Attributes['quantile'], ''), avg(Value), count(*)
FROM otel_metrics_gauge WHERE TimeUnix >= ? AND TimeUnix < ? GROUP BY ALL""",
        [start, until],
    ):
        name = rec[2] + (f"{{quantile={rec[3]}}}" if rec[3] else "")
        add(name, "infra", rec[1], None, None, rec[0], rec[4], rec[5])
    for rec in store.rows(
        f"""SELECT {b}, ServiceName, MetricName, sum(Sum) / nullif(sum(Count), 0), sum(Count),
  sum(Count) FILTER (WHERE TRY_CAST(Attributes['http.response.status_code'] AS INTEGER) >= 500),
  count(Attributes['http.response.status_code'])
FROM otel_metrics_histogram WHERE TimeUnix >= ? AND TimeUnix < ? GROUP BY ALL""",
        [start, until],
    ):
        add(f"{rec[2]}:mean", "infra", rec[1], None, None, rec[0], rec[3], rec[4])
        if rec[6]:
            add(f"{rec[2]}:5xx_rate", "infra", rec[1], None, None, rec[0], rec[5] or 0, rec[4])


def metric_info(name: str) -> Metric:
    """A journey metric, or an infra one: a histogram's 5xx share is a rate, anything else
    (gauge means, histogram means) a positive level where up is the anomaly."""
    if name in METRICS:
        return METRICS[name]
    return Metric(name, "rate" if name.endswith(":5xx_rate") else "log", "up", "infra")


def _segment_where(
    segment: dict[str, str],
    since: datetime,
    until: datetime,
    *,
    exclude: dict[str, str] | None = None,
) -> tuple[str, list[Any]]:
    """A condition over ``aiobs_scan_traces`` for one segment ({service, and at most one of
    workflow/model/prompt_version/tool}) in ``[since, until)``; ``exclude`` leaves a segment out."""
    conds, params = (
        ["service_name = ?", "start_time >= ?", "start_time < ?"],
        [
            segment["service"],
            since,
            until,
        ],
    )

    def matches(seg: dict[str, str]) -> tuple[list[str], list[Any]]:
        out, args = [], []
        for dim, column, is_list in (
            ("workflow", "workflow", False),
            ("model", "model", True),
            ("prompt_version", "prompt_version", True),
            ("tool", "tool_name", True),
            ("agent", "agent_name", True),
        ):
            if dim in seg:
                out.append(f"list_contains({column}, ?)" if is_list else f"{column} = ?")
                args.append(seg[dim])
        return out, args

    more, args = matches(segment)
    conds += more
    params += args
    if exclude:
        more, args = matches(exclude)
        if more:
            conds.append(f"NOT coalesce({' AND '.join(more)}, false)")
            params += args
    return " AND ".join(conds), params


def segment_summary(
    store: Backend,
    segment: dict[str, str],
    since: datetime,
    until: datetime,
    *,
    exclude: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Counts and signal rates of a segment's traces (from the scan's per-trace table)."""
    where, params = _segment_where(segment, since, until, exclude=exclude)
    signals = ("retried", "abandoned", "thumbs_down", "error")
    cols = ", ".join(f"count({c}) AS n_{c}, count_if({c}) AS x_{c}" for c in signals)
    row = store.one(
        "SELECT count(*), count(DISTINCT session_id), count(DISTINCT user_id), avg(cost_usd), "
        f"{cols} FROM aiobs_scan_traces WHERE {where}",
        params,
    )
    assert row is not None
    out: dict[str, Any] = {
        "traces": int(row[0]),
        "sessions": int(row[1]),
        "users": int(row[2]),
        "cost_per_trace": row[3],
    }
    for i, c in enumerate(signals):
        n, x = int(row[4 + 2 * i] or 0), int(row[5 + 2 * i] or 0)
        out[c] = (x / n if n else None, x)
    return out


def segment_rows(
    store: Backend,
    segment: dict[str, str],
    since: datetime,
    until: datetime,
    *,
    columns: str = "* EXCLUDE (bucket)",
    order: str = "md5(trace_id)",
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Per-trace rows of a segment in ``[since, until)``; by default a deterministic sample
    (ordered by a hash of the trace id) when ``limit`` is given. The hash is md5, which DuckDB
    and ClickHouse compute alike (their ``hash`` functions differ), so a scan on either store
    samples the same traces and names the same examples."""

    where, params = _segment_where(segment, since, until)
    sql = f"SELECT {columns} FROM aiobs_scan_traces WHERE {where} ORDER BY {order}, trace_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return store.records(sql, params)


def factor_rows(store: Backend, trace_ids: list[str]) -> list[dict[str, Any]]:
    """``diff``'s per-trace rows (metric inputs and factor fields) of these traces: the metric
    inputs from the scan's table, the factor fields aggregated from their spans.

    The spans are read from ``aiobs_span_facts`` (no attribute maps, no prices)."""

    if not trace_ids:
        return []
    kept = {name for name, _ in store.columns("SELECT * FROM aiobs_scan_traces")}
    extra = [(expr, name) for expr, name in SPAN_VALUES if name not in kept]
    aggs = ", ".join(f"{expr} AS {name}" for expr, name in extra)
    return store.records(
        f"""WITH s AS (
  SELECT trace_id, start_time, parent_span_id, status, service_version, step_kind, error_type,
    error_message, finish_reason, provider, agent_name, tool_name
  FROM aiobs_span_facts WHERE trace_id IN (SELECT unnest(?))),
f AS (
  SELECT s.trace_id, {aggs},
    coalesce(any_value(s.service_version) FILTER (WHERE s.parent_span_id IS NULL),
             arg_min(s.service_version, s.start_time)) AS service_version
  FROM s GROUP BY 1)
SELECT st.* EXCLUDE (bucket), f.service_version, {", ".join(f"f.{n}" for _, n in extra)}
FROM aiobs_scan_traces st JOIN f USING (trace_id)
ORDER BY st.start_time, st.trace_id""",
        [trace_ids],
    )


def drop_scan_table(store: Backend) -> None:
    store.execute("DROP TABLE IF EXISTS aiobs_scan_traces")


# Per trace, what a journey metric is made of: (value SQL over ``aiobs_scan_traces``, the
# statistic over traces — a quantile, or None for the mean — and whether step durations are
# unnested first). Rates are counts of traces already and are not here.
_STEP_METRICS = {
    f"{kind}_{q}_ms": (f"{kind}_durations", 0.5 if q == "p50" else 0.95, True)
    for kind in STEP_KINDS_TIMED
    for q in ("p50", "p95")
}
TRACE_VALUES: dict[str, tuple[str, float | None, bool]] = {
    "latency_p95_ms": ("duration_ms", 0.95, False),
    "latency_p50_ms": ("duration_ms", 0.5, False),
    "ttft_p50_ms": ("ttft_ms", 0.5, False),
    "tokens_per_trace": ("tokens", None, False),
    "cost_per_trace": ("cost_usd", None, False),
    "llm_calls_per_trace": ("llm_calls", None, False),
    "response_chars": ("response_chars", None, False),
    "retrieval_top_score": ("retrieval_top_score", None, False),
    "eval_score": ("eval_score", None, False),
    "csat": ("csat", None, False),
    **{k: v for k, v in _STEP_METRICS.items() if not k.startswith("tool_")},
}
# Per trace, the event a rate counts.
TRACE_FLAGS = {
    "error_rate": "error",
    "tool_error_rate": "tool_errors > 0",
    "handoff_rate": "handoff",
    "thumbs_down_rate": "thumbs_down",
    "retry_rate": "retried",
    "rephrase_rate": "rephrased",
    "abandonment_rate": "abandoned",
    "eval_fail_rate": "eval_failed",
}


def _windows_where(
    segment: dict[str, str],
    windows: list[tuple[datetime, datetime]],
    exclude: dict[str, str] | None,
) -> tuple[str, list[Any]]:
    lo = min(w[0] for w in windows)
    hi = max(w[1] for w in windows)
    where, params = _segment_where(segment, lo, hi, exclude=exclude)
    if len(windows) > 1:
        where += (
            " AND (" + " OR ".join("(start_time >= ? AND start_time < ?)" for _ in windows) + ")"
        )
        params += [t for w in windows for t in w]
    return where, params


def trace_stat(
    store: Backend,
    segment: dict[str, str],
    metric: str,
    windows: list[tuple[datetime, datetime]],
    *,
    exclude: dict[str, str] | None = None,
) -> tuple[float | None, int]:
    """(value, traces): a journey metric computed over the segment's traces in ``windows`` — the
    mean or quantile of the traces (or of their steps), the share of traces for a rate — not a
    summary of bucket summaries."""
    where, params = _windows_where(segment, windows, exclude)
    if metric in TRACE_FLAGS:
        flag = TRACE_FLAGS[metric]
        sql = f"SELECT avg(({flag})::INT), count({flag}) FROM aiobs_scan_traces WHERE {where}"
    elif metric in TRACE_VALUES:
        col, q, steps = TRACE_VALUES[metric]
        stat = f"quantile_cont(v, {q})" if q is not None else "avg(v)"
        source = (
            f"(SELECT unnest({col}) AS v FROM aiobs_scan_traces WHERE {where})"
            if steps
            else f"(SELECT {col} AS v FROM aiobs_scan_traces WHERE {where})"
        )
        sql = f"SELECT {stat}, count(v) FROM {source}"
    else:
        return None, 0
    row = store.one(sql, params)
    if not row or not row[1]:
        return None, 0
    return (None if row[0] is None else float(row[0])), int(row[1])


def trace_points(
    store: Backend, segment: dict[str, str], metric: str, since: datetime, until: datetime
) -> list[tuple[datetime, float | None]]:
    """(start time, value) of each of the segment's traces in ``[since, until)``, oldest first:
    the trace's own value of a level (its slowest step of a step metric), 1/0 for a rate's
    event, None where the trace has none."""
    if metric in TRACE_FLAGS:
        expr = f"({TRACE_FLAGS[metric]})::INT"
    elif metric in TRACE_VALUES:
        col, _, steps = TRACE_VALUES[metric]
        expr = f"list_max({col})" if steps else col
    else:
        return []
    where, params = _segment_where(segment, since, until)
    rows = store.rows(
        f"SELECT start_time, CAST({expr} AS DOUBLE) FROM aiobs_scan_traces WHERE {where}"
        " ORDER BY start_time, trace_id",
        params,
    )
    return [(r[0], r[1]) for r in rows]
