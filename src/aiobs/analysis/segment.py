"""``segment``: the journey metrics per group of one or more fields, computed in the store.

One row per trace (``trace_metrics_sql``) carries what diff and scan also need: latency, error,
tokens, cost, LLM and tool calls, tool errors, handoff, time to first token, and the user signals
joined from events (thumbs-down, retry, rephrase on the trace; abandonment and CSAT on the last
trace of the session), and online evaluation results (``gen_ai.evaluation.result`` events on the
trace: mean score, any failed). ``segment`` groups those rows by trace fields (``service_name``,
``service_version``, ``root_name``, ``status``, ``environment``…), by list fields one value at a time
(``model``/``models``, ``prompt_version``/``prompt_versions``), or by span fields and
``attr['key']`` (a trace counts in every group one of its spans belongs to).

Must not import typer, rich or textual.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiobs.analysis.browse import (
    SpanWindow,
    order_by,
    span_window,
    trace_facts,
    where_errors,
    where_records,
)
from aiobs.analysis.filters import TraceFilter
from aiobs.errors import UsageError
from aiobs.semantic.signals import EVAL_FAILED, SIGNALS
from aiobs.semantic.views import (
    AI_SPANS_COLUMNS,
    AI_TRACES_COLUMNS,
    TRACE_SPAN_COLUMNS,
    ai_traces_sql,
    priced_traces_sql,
    spans_between_sql,
)

if TYPE_CHECKING:
    from aiobs.analysis.results import SegmentRow
    from aiobs.backend import Backend

TRACE_DIMS = {  # name -> ai_traces column
    "service_name": "service_name",
    "service_version": "service_version",
    "root_name": "root_name",
    "workflow": "root_name",
    "status": "status",
    "user_id": "user_id",
    "session_id": "session_id",
}
LIST_DIMS = {
    "models": "models",
    "model": "models",
    "prompt_versions": "prompt_versions",
    "prompt_version": "prompt_versions",
}
SPAN_DIMS = frozenset(
    c for c in AI_SPANS_COLUMNS if c not in ("attributes", "resource_attributes", "trace_id", "span_id", "parent_span_id")
    and c not in ("start_time", "end_time", "duration_ms", "input_tokens", "output_tokens", "cost_usd", "ttft_ms",
                  "cache_read_tokens", "reasoning_tokens")
)  # fmt: skip

METRICS = (
    "traces",
    "error_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "ttft_p50_ms",
    "tokens_per_trace",
    "cost_usd",
    "cost_per_trace",
    "llm_calls_per_trace",
    "tool_calls_per_trace",
    "tool_error_rate",
    "handoff_rate",
    "thumbs_down_rate",
    "retry_rate",
    "rephrase_rate",
    "abandonment_rate",
    "csat",
    "response_chars",
    "retrieval_top_score",
    "eval_score",
    "eval_fail_rate",
)


def trace_metrics_sql(
    where: str,
    extra: tuple[tuple[str, str], ...] = (),
    *,
    pick_first: bool = False,
    flags: tuple[tuple[str, str], ...] = (),
    evaluations: tuple[str, ...] = (),
    within: SpanWindow = None,
) -> str:
    """One row per trace selected by ``where`` (over ``ai_traces t``) with its metric inputs, and
    ``extra`` (expression over spans ``s``, name) aggregates computed in the same pass over the
    spans. Reads ``aiobs_span_facts`` (spans without prices or attribute maps: the price join costs
    a regexp a span, the maps a join to otel_traces). With ``pick_first`` (a materialised store,
    and neither ``where`` nor a flag reads the cost), the traces are picked without it and only theirs are priced
    (``views.priced_traces_sql``): pricing every trace took ~60 ms of each side of a diff.
    ``flags`` (name, condition over ``t``) add boolean columns; their parameters come before
    ``where``'s. Each of ``evaluations`` (evaluation names) adds ``_eval{i}``: the trace has an
    answer that evaluation failed (NULL where it judged none). ``within`` (``span_window``):
    the traces and their steps are computed from the spans between those times only."""
    eval_aggs = "".join(
        f""",
    bool_or({EVAL_FAILED})
      FILTER (WHERE EventName = 'gen_ai.evaluation.result'
        AND LogAttributes['gen_ai.evaluation.name'] = '{name.replace("'", "''")}') AS _eval{i}"""
        for i, name in enumerate(evaluations)
    )
    eval_cols = "".join(f", l._eval{i}" for i in range(len(evaluations)))
    extra_aggs = "".join(f",\n    {expr} AS {name}" for expr, name in extra)
    extra_cols = "".join(f", st.{name}" for _, name in extra)
    # Named one by one, not sel.*: ClickHouse calls the columns a join also has sel.trace_id…
    trace_cols = ", ".join(f"sel.{c} AS {c}" for c in (*AI_TRACES_COLUMNS, *dict(flags)))
    flag_exprs = "".join(f", ({cond}) AS {name}" for name, cond in flags)
    linked = {name: SIGNALS[name] for name in ("thumbs_down", "retry", "rephrase")}
    signal_cols = ",\n    ".join(
        f"count(*) FILTER (WHERE {cond}) AS {name}" for name, cond in linked.items()
    )
    if pick_first:
        flag_cols = "".join(f", picked.{name}" for name, _ in flags)
        priced = priced_traces_sql("SELECT trace_id FROM picked")
        selected = f"""picked AS (SELECT t.trace_id{flag_exprs} FROM aiobs_trace_facts t WHERE {where}),
sel AS (SELECT p.*{flag_cols} FROM ({priced}) p JOIN picked USING (trace_id))"""
    elif within is not None:
        spans = f"SELECT {', '.join(TRACE_SPAN_COLUMNS)} FROM ai_spans WHERE {spans_between_sql('start_time', within)}"
        traces = ai_traces_sql(spans="window_spans")
        selected = f"""window_spans AS ({spans}),
sel AS (SELECT t.*{flag_exprs} FROM ({traces}) t WHERE {where})"""
    else:
        selected = f"sel AS (SELECT t.*{flag_exprs} FROM ai_traces t WHERE {where})"
    in_window = "" if within is None else f" AND {spans_between_sql('s.start_time', within)}"
    return f"""
WITH {selected},
steps AS (
  SELECT s.trace_id,
    count_if(s.step_kind = 'tool' AND s.status = 'error') AS tool_errors,
    bool_or(s.step_kind = 'handoff') AS handoff,
    arg_min(s.ttft_ms_raw * 1000, s.start_time) FILTER (WHERE s.ttft_ms_raw IS NOT NULL) AS ttft_ms,
    arg_max(s.output_chars, s.start_time) FILTER (WHERE s.step_kind = 'llm' AND s.output_chars IS NOT NULL)
      AS response_chars,
    arg_min(s.retrieval_top_score, s.start_time) FILTER (WHERE s.retrieval_top_score IS NOT NULL)
      AS retrieval_top_score{extra_aggs}
  FROM aiobs_span_facts s WHERE s.trace_id IN (SELECT trace_id FROM sel){in_window} GROUP BY 1),
linked AS (
  SELECT TraceId AS trace_id,
    {signal_cols},
    avg(TRY_CAST(LogAttributes['gen_ai.evaluation.score.value'] AS DOUBLE))
      FILTER (WHERE EventName = 'gen_ai.evaluation.result') AS eval_score,
    bool_or({EVAL_FAILED})
      FILTER (WHERE EventName = 'gen_ai.evaluation.result') AS eval_failed{eval_aggs}
  FROM otel_logs WHERE EventName <> '' AND TraceId IN (SELECT trace_id FROM sel) GROUP BY 1),
last_of_session AS (
  SELECT session_id, arg_max(trace_id, start_time) AS trace_id FROM aiobs_trace_facts
  WHERE session_id IN (SELECT session_id FROM sel) GROUP BY 1),
session_signals AS (
  SELECT LogAttributes['session.id'] AS session_id,
    bool_or({SIGNALS["abandoned"]}) AS abandoned,
    avg(TRY_CAST(coalesce(LogAttributes['csat.score'], LogAttributes['score']) AS DOUBLE))
      FILTER (WHERE {SIGNALS["csat"]}) AS csat
  FROM otel_logs WHERE EventName <> '' AND LogAttributes['session.id'] IN (SELECT session_id FROM sel)
  GROUP BY 1)
SELECT {trace_cols}, coalesce(st.tool_errors, 0) AS tool_errors, coalesce(st.handoff, false) AS handoff,
  st.ttft_ms, coalesce(l.thumbs_down, 0) > 0 AS thumbs_down, coalesce(l.retry, 0) > 0 AS retried,
  coalesce(l.rephrase, 0) > 0 AS rephrased,
  CASE WHEN ls.trace_id IS NULL THEN NULL ELSE coalesce(ss.abandoned, false) END AS abandoned,
  CASE WHEN ls.trace_id IS NULL THEN NULL ELSE ss.csat END AS csat,
  st.response_chars, st.retrieval_top_score, l.eval_score, l.eval_failed{eval_cols}{extra_cols}
FROM sel
LEFT JOIN steps st USING (trace_id)
LEFT JOIN linked l USING (trace_id)
LEFT JOIN last_of_session ls ON ls.trace_id = sel.trace_id
LEFT JOIN session_signals ss ON ss.session_id = sel.session_id
"""


_AGGREGATES = """
  count(*) AS traces,
  avg((status = 'error')::INT) AS error_rate,
  quantile_cont(duration_ms, 0.5) AS p50_ms,
  quantile_cont(duration_ms, 0.95) AS p95_ms,
  quantile_cont(duration_ms, 0.99) AS p99_ms,
  quantile_cont(ttft_ms, 0.5) AS ttft_p50_ms,
  avg(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens_per_trace,
  sum(cost_usd) AS cost_usd,
  avg(cost_usd) AS cost_per_trace,
  avg(llm_calls) AS llm_calls_per_trace,
  avg(tool_calls) AS tool_calls_per_trace,
  sum(tool_errors) / nullif(sum(tool_calls), 0) AS tool_error_rate,
  avg(handoff::INT) AS handoff_rate,
  avg(thumbs_down::INT) AS thumbs_down_rate,
  avg(retried::INT) AS retry_rate,
  avg(rephrased::INT) AS rephrase_rate,
  avg(abandoned::INT) AS abandonment_rate,
  avg(csat) AS csat,
  avg(response_chars) AS response_chars,
  avg(retrieval_top_score) AS retrieval_top_score,
  avg(eval_score) AS eval_score,
  avg(eval_failed::INT) AS eval_fail_rate"""


@dataclass(frozen=True)
class Dimension:
    name: str  # as shown (column name in the output)
    sql: str  # trace: an ai_traces column; list: a list column of it; span: over an ai_spans row
    kind: str  # trace | list | span


_ATTR = re.compile(r"^(attr|resource)\['([^'\]]+)'\]$")


def parse_dimensions(by: str) -> list[Dimension]:
    dims: list[Dimension] = []
    for raw in (p.strip() for p in by.split(",")):
        if not raw:
            continue
        m = _ATTR.match(raw)
        if m:
            column = "attributes" if m.group(1) == "attr" else "resource_attributes"
            key = m.group(2).replace("'", "''")
            dims.append(Dimension(raw, f"{column}['{key}']", "span"))
        elif raw in TRACE_DIMS:
            dims.append(Dimension(raw, TRACE_DIMS[raw], "trace"))
        elif raw in LIST_DIMS:
            dims.append(Dimension(raw, LIST_DIMS[raw], "list"))
        elif raw in SPAN_DIMS:
            dims.append(Dimension(raw, raw, "span"))
        else:
            raise UsageError(
                f"--by {raw!r}: not a field",
                hint="fields: "
                + ", ".join(sorted({*TRACE_DIMS, *LIST_DIMS, *SPAN_DIMS}))
                + ", attr['key']",
            )
    if not dims:
        raise UsageError("--by needs at least one field")
    return dims


def segment_sql(
    where: str,
    by: str,
    *,
    sort: str | None = None,
    limit: int = 50,
    buckets: int = 24,
    pick_first: bool = False,
    evaluations: tuple[str, ...] = (),
    within: SpanWindow = None,
) -> tuple[list[str], str]:
    """(group columns, SQL): the metrics per group of the traces ``where`` selects (over
    ``ai_traces t``), with ``_buckets``, each trace's time bucket over the selection's window.

    List fields are unnested one select at a time (a trace with two models and two prompt
    versions counts in all four groups), which ClickHouse's arrayJoin also does."""
    dims = parse_dimensions(by)
    metrics = trace_metrics_sql(
        where, pick_first=pick_first, evaluations=evaluations, within=within
    )
    eval_metrics = [eval_metric(n) for n in evaluations]
    eval_aggregates = "".join(
        f',\n  avg(_eval{i}::INT) AS "{m}"' for i, m in enumerate(eval_metrics)
    )
    steps = [f"g0 AS (SELECT m.* FROM ({metrics}) m)"]
    joins, group_cols = [], []
    for i, d in enumerate(dims):
        alias = f"d{i}"
        if d.kind == "trace":
            group_cols.append(f'g.{d.sql} AS "{d.name}"')
        elif d.kind == "list":
            prev, column = f"g{len(steps) - 1}", f"_list{i}"
            steps.append(
                f"g{len(steps)} AS (SELECT {prev}.*, unnest(CASE WHEN len({prev}.{d.sql}) = 0"
                f" THEN [NULL] ELSE {prev}.{d.sql} END) AS {column} FROM {prev})"
            )
            group_cols.append(f'g.{column} AS "{d.name}"')
        else:
            joins.append(
                f"LEFT JOIN (SELECT DISTINCT trace_id, {d.sql} AS v FROM ai_spans"
                f" WHERE {d.sql} IS NOT NULL) {alias} ON {alias}.trace_id = g.trace_id"
            )
            group_cols.append(f'{alias}.v AS "{d.name}"')
    names = [d.name for d in dims]
    group_list = ", ".join(f'"{n}"' for n in names)
    order = order_by(sort, (*names, *METRICS, *eval_metrics), "-traces")
    last = f"g{len(steps) - 1}"
    sql = f"""
WITH {", ".join(steps)},
grouped AS (SELECT g.*, {", ".join(group_cols)} FROM {last} g {" ".join(joins)}),
bounds AS (SELECT min(start_time) AS lo, max(start_time) AS hi FROM g0)
SELECT {group_list}, {_AGGREGATES}{eval_aggregates},
  list(bucket ORDER BY bucket) AS _buckets
FROM (
  SELECT grouped.*, least({buckets - 1}, floor(
    (epoch_ns(grouped.start_time) - epoch_ns(b.lo)) / greatest(epoch_ns(b.hi) - epoch_ns(b.lo), 1)
    * {buckets}))::INT AS bucket
  FROM grouped, bounds b)
GROUP BY {group_list}
ORDER BY {order}, {group_list} LIMIT {int(limit)}
"""
    return names, sql


def segment(
    store: Backend,
    filt: TraceFilter,
    by: str,
    *,
    sort: str | None = None,
    limit: int = 50,
    buckets: int = 24,
) -> tuple[list[str], list[SegmentRow]]:
    """(group columns, rows): the metrics per group, each row with a ``sparkline`` of traces per
    time bucket over the selection's window."""
    where, params = filt.sql()
    names, sql = segment_sql(
        where,
        by,
        sort=sort,
        limit=limit,
        buckets=buckets,
        pick_first=store.capabilities.materialised and not filt.reads_cost,
        evaluations=evaluation_names(store, filt),
        within=span_window(store, filt),
    )
    rows = where_records(store, sql, params, filt.where)
    for row in rows:
        counts = [0] * buckets
        for b in row.pop("_buckets") or []:
            if b is not None:
                counts[int(b)] += 1
        row["sparkline"] = counts
    return names, cast("list[SegmentRow]", rows)


MAX_EVALUATIONS = 16  # eval.<name>_fail_rate columns at most (the most frequent names)


def eval_metric(name: str) -> str:
    """The column of an evaluation's fail rate: ``eval.reasoning_leak_fail_rate`` (as in diff)."""
    return f"eval.{name.replace(chr(34), '')}_fail_rate"


def evaluation_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``eval.<name>_fail_rate`` columns segment's rows carry (the same in every row)."""
    return [k for k in (rows[0] if rows else ()) if k.startswith("eval.")]


def evaluation_names(store: Backend, filt: TraceFilter) -> tuple[str, ...]:
    """The evaluations (``aiobs eval``'s and imported) that judged the selected traces, most
    frequent first, at most MAX_EVALUATIONS, then by name."""
    where, params = filt.sql()
    table = "ai_traces" if filt.reads_cost else trace_facts(store, filt)
    with where_errors(filt.where):
        rows = store.rows(
            f"""SELECT LogAttributes['gen_ai.evaluation.name'] AS name, count(*) AS n
FROM otel_logs
WHERE EventName = 'gen_ai.evaluation.result' AND LogAttributes['gen_ai.evaluation.name'] <> ''
  AND TraceId IN (SELECT t.trace_id FROM {table} t WHERE {where})
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {MAX_EVALUATIONS}""",
            params,
        )
    return tuple(sorted(str(r[0]) for r in rows))


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(counts: list[int]) -> str:
    top = max(counts, default=0)
    if top == 0:
        return " " * len(counts)
    return "".join(
        " " if c == 0 else SPARK[min(len(SPARK) - 1, int(c / top * (len(SPARK) - 1) + 0.5))]
        for c in counts
    )
