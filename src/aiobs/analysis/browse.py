"""``traces`` and ``sessions``: filtered, sorted lists over ``ai_traces``.

One ``TraceFilter`` (time window, service, model, prompt version, status, minimum duration,
session, user, ``--where``) renders to SQL over ``ai_traces t`` (``--where``'s span-level parts are
subqueries over ``ai_spans s``); ``list_traces`` returns ``ai_traces``-shaped rows, ``list_sessions`` one row
per session with its user signals.

Must not import typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiobs.analysis.filters import TraceFilter, epoch_ns
from aiobs.analysis.where import Where
from aiobs.backend import QueryError
from aiobs.errors import UsageError
from aiobs.semantic.signals import session_signals_sql
from aiobs.semantic.views import (
    AI_TRACES_COLUMNS,
    TRACE_SPAN_COLUMNS,
    ai_traces_sql,
    priced_traces_sql,
    trace_facts_within_sql,
)

if TYPE_CHECKING:
    from aiobs.analysis.results import SessionRow, TraceRow
    from aiobs.backend import Backend

SESSION_COLUMNS = (
    "session_id",
    "user_id",
    "start_time",
    "end_time",
    "duration_ms",
    "traces",
    "errors",
    "services",
    "models",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "thumbs_down",
    "retries",
    "rephrases",
    "abandoned",
    "resolved",
    "csat",
)


@dataclass(frozen=True)
class SortOrder:
    """A ``--sort`` spec checked against a command's columns: the ``ORDER BY`` body (each column
    quoted, ``NULLS LAST``) and the columns it reads, which pick the query plan."""

    sql: str
    names: frozenset[str]


def sort_order(sort: str | None, columns: tuple[str, ...], default: str) -> SortOrder:
    spec = sort or default
    parts = []
    names = []
    for item in spec.split(","):
        item = item.strip()
        desc = item.startswith("-")
        name = item.lstrip("-+")
        if name not in columns:
            raise UsageError(
                f"--sort {sort!r}: {name} is not a column", hint="columns: " + ", ".join(columns)
            )
        parts.append(f'"{name}" {"DESC" if desc else "ASC"} NULLS LAST')
        names.append(name)
    return SortOrder(", ".join(parts), frozenset(names))


def order_by(sort: str | None, columns: tuple[str, ...], default: str) -> str:
    """``sort_order``'s ``ORDER BY`` body alone."""
    return sort_order(sort, columns, default).sql


def where_records(
    store: Backend, sql: str, params: list[Any], where: Where | None = None
) -> list[dict[str, Any]]:
    """``records`` for a query built around a user's ``--where`` (``where_errors``)."""
    with where_errors(where):
        return store.records(sql, params)


@contextmanager
def where_errors(where: Where | None) -> Iterator[None]:
    """A type error the engine meets while evaluating a user's ``--where`` is the user's to fix
    (exit 2), not a crash: every query that applies one runs inside this."""
    try:
        yield
    except QueryError as exc:
        if where is None or not exc.evaluation:
            raise
        raise UsageError(f"--where {where.text!r} cannot be evaluated: {exc.message}") from None


SpanWindow = tuple[int | None, int | None] | None  # ns since the epoch; None: unbounded


def span_window(store: Backend, *filters: TraceFilter) -> SpanWindow:
    """The times the spans of the traces ``filters`` select start between (each filter's
    ``TraceFilter.span_bounds``, together), on a backend that computes the traces from their
    spans at each read (ClickHouse), so that a window's traces are aggregated without every span
    of the table; None on the store (its traces are materialised) and for an open window."""
    if store.capabilities.materialised:
        return None
    bounds = [f.span_bounds() for f in filters]
    lows, highs = [lo for lo, _ in bounds], [hi for _, hi in bounds]
    lower = None if None in lows else epoch_ns(min(x for x in lows if x is not None))
    upper = None if None in highs else epoch_ns(max(x for x in highs if x is not None))
    return None if lower is None and upper is None else (lower, upper)


def trace_facts(store: Backend, filt: TraceFilter) -> str:
    """What to read ``filt``'s traces' rows (but the cost) from: the store's
    ``aiobs_trace_facts``, or on a backend that computes them at each read (ClickHouse), those
    of the spans within the window's reach (``span_window``): otherwise the engine aggregates
    every span of the table for a window of an hour."""
    within = span_window(store, filt)
    return "aiobs_trace_facts" if within is None else trace_facts_within_sql(within)


def count_traces(store: Backend, filt: TraceFilter) -> int:
    """How many traces ``filt`` selects (the TUI's match count, a listing's pages)."""
    where, params = filt.sql()
    table = "ai_traces" if filt.reads_cost else trace_facts(store, filt)
    row = where_records(
        store, f"SELECT count(*) AS n FROM {table} t WHERE {where}", params, filt.where
    )
    return int(row[0]["n"]) if row else 0


def list_traces(
    store: Backend,
    filt: TraceFilter,
    *,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[TraceRow]:
    """``filt``'s traces in ``sort`` order (newest first), ``limit`` of them from ``offset``
    (a page of the TUI's table)."""
    where, params = filt.sql()
    sorted_by = sort_order(sort, AI_TRACES_COLUMNS, "-start_time")
    order = sorted_by.sql
    columns = ", ".join(f"t.{c}" for c in AI_TRACES_COLUMNS)
    if filt.reads_cost or "cost_usd" in sorted_by.names:
        return cast(
            "list[TraceRow]",
            where_records(
                store,
                f"SELECT {columns} FROM ai_traces t WHERE {where} ORDER BY {order}, trace_id LIMIT ? OFFSET ?",
                [*params, limit, offset],
                filt.where,
            ),
        )
    # Neither the filter nor the order reads the cost: pick the traces without it and price
    # only those (ordering every priced trace cost 40 ms of `traces --limit 50` on 974k spans),
    # their rows read within the picked traces' times.
    found = where_records(
        store,
        "SELECT t.trace_id, epoch_ns(t.start_time) AS lo, epoch_ns(t.end_time) AS hi"
        f" FROM {trace_facts(store, filt)} t WHERE {where} ORDER BY {order}, trace_id"
        " LIMIT ? OFFSET ?",
        [*params, limit, offset],
        filt.where,
    )
    if not found:
        return []
    ids = [r["trace_id"] for r in found]
    within = (min(r["lo"] for r in found), max(r["hi"] for r in found))
    if store.capabilities.materialised:
        priced = priced_traces_sql("SELECT trace_id FROM picked", within)
        return cast(
            "list[TraceRow]",
            store.records(
                f"WITH picked AS (SELECT unnest(?) AS trace_id)"
                f" SELECT {columns} FROM ({priced}) t ORDER BY {order}, trace_id",
                [ids],
            ),
        )
    # ClickHouse computes ai_traces from the attributes at each read, and filtering the view by
    # id aggregated every trace's spans first (1M spans: 1.1-1.4 s of `traces --limit 50`,
    # 0.6 s now): the page's spans are fetched once, by id and time (the partition key
    # prunes), and only they are aggregated.
    marks = ", ".join("?" * len(ids))
    return cast(
        "list[TraceRow]",
        store.records(
            f"""WITH page_spans AS (
  SELECT {", ".join(TRACE_SPAN_COLUMNS)} FROM ai_spans s WHERE s.trace_id IN ({marks})
    AND s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?))
SELECT {columns} FROM ({ai_traces_sql(spans="page_spans")}) t ORDER BY {order}, trace_id""",
            [*ids, *within],
        ),
    )


# Session columns that need the traces' prices or the user events: a listing ordered by them
# computes them for every session; otherwise only for the sessions it shows.
_SESSION_SIGNAL_COLUMNS = ("thumbs_down", "retries", "rephrases", "abandoned", "resolved", "csat")
_SESSION_PER_TRACE = """
    arg_min(t.user_id, t.start_time) FILTER (WHERE t.user_id IS NOT NULL) AS user_id,
    min(t.start_time) AS start_time, max(t.end_time) AS end_time,
    (epoch_ns(max(t.end_time)) - epoch_ns(min(t.start_time))) / 1e6 AS duration_ms,
    count(*) AS traces, count_if(t.status = 'error') AS errors,
    list_sort(list_distinct(list(t.service_name))) AS services,
    list_sort(list_distinct(flatten(list(t.models)))) AS models,
    sum(t.input_tokens) AS input_tokens, sum(t.output_tokens) AS output_tokens"""
_SESSION_SIGNALS = """
  coalesce(sig.thumbs_down, 0) AS thumbs_down, coalesce(sig.retry, 0) AS retries,
  coalesce(sig.rephrase, 0) AS rephrases, coalesce(sig.abandoned, 0) > 0 AS abandoned,
  coalesce(sig.resolved, 0) > 0 AS resolved, sig.csat_score AS csat"""


def list_sessions(
    store: Backend,
    filt: TraceFilter,
    *,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[SessionRow]:
    """Sessions having at least one trace that matches ``filt``; totals over all their traces;
    ``limit`` of them from ``offset`` (a page of the TUI's sessions table)."""
    where, params = filt.sql()
    order = sort_order(sort, SESSION_COLUMNS, "-start_time")
    return cast(
        "list[SessionRow]",
        where_records(
            store,
            sessions_sql(where, order, store.capabilities.materialised and not filt.reads_cost),
            [*params, limit, offset],
            filt.where,
        ),
    )


def count_sessions(store: Backend, filt: TraceFilter) -> int:
    """How many sessions have a trace ``filt`` selects (the TUI's sessions count)."""
    where, params = filt.sql()
    table = "ai_traces" if filt.reads_cost else "aiobs_trace_facts"
    row = where_records(
        store,
        f"SELECT count(DISTINCT t.session_id) AS n FROM {table} t WHERE {where}",
        params,
        filt.where,
    )
    return int(row[0]["n"]) if row else 0


def sessions_sql(where: str, sorted_by: SortOrder, pick_first: bool) -> str:
    """``list_sessions``' query (``where`` over ``ai_traces t``, then ``?`` for the limit and the offset). With
    ``pick_first`` (a materialised store, and a filter that reads no cost), when the order needs
    neither the cost nor the user signals, the sessions are picked and ordered first, and only those priced and their events
    counted (`sessions --limit 50`, whole process: 974k spans 438 -> 285 ms, 10M spans 3.0 ->
    0.92 s and 1.5 GB -> 363 MB)."""
    late = bool(sorted_by.names & {"cost_usd", *_SESSION_SIGNAL_COLUMNS})
    order = sorted_by.sql
    if pick_first and not late:
        in_top = "SELECT session_id FROM top"
        traces = f"SELECT trace_id FROM aiobs_trace_facts WHERE session_id IN ({in_top})"
        return f"""
WITH picked AS (
  SELECT DISTINCT t.session_id FROM aiobs_trace_facts t WHERE {where} AND t.session_id IS NOT NULL),
ranked AS (
  SELECT t.session_id, {_SESSION_PER_TRACE}
  FROM aiobs_trace_facts t JOIN picked USING (session_id) GROUP BY t.session_id),
-- Only the ordering columns of ``ranked`` are computed for every session (DuckDB drops the
-- aggregates nothing reads); the whole rows only for the sessions shown.
top AS (SELECT session_id FROM ranked ORDER BY {order}, session_id LIMIT ? OFFSET ?),
per AS (
  SELECT t.session_id, {_SESSION_PER_TRACE}
  FROM aiobs_trace_facts t WHERE t.session_id IN ({in_top}) GROUP BY t.session_id),
cost AS (
  SELECT p.session_id, fsum(p.cost_usd) AS cost_usd FROM ({priced_traces_sql(traces)}) p
  GROUP BY p.session_id),
sig AS ({session_signals_sql(in_top)})
SELECT per.session_id, per.user_id, per.start_time, per.end_time, per.duration_ms, per.traces,
  per.errors, per.services, per.models, per.input_tokens, per.output_tokens, cost.cost_usd,
  {_SESSION_SIGNALS}
FROM per LEFT JOIN cost USING (session_id) LEFT JOIN sig USING (session_id)
ORDER BY {order}, session_id
"""
    return f"""
WITH picked AS (SELECT DISTINCT t.session_id FROM ai_traces t WHERE {where} AND t.session_id IS NOT NULL),
per AS (
  SELECT t.session_id, {_SESSION_PER_TRACE},
    -- fsum: a plain float sum's last digits follow the order DuckDB's threads add in.
    fsum(t.cost_usd) AS cost_usd
  FROM ai_traces t JOIN picked USING (session_id) GROUP BY t.session_id),
sig AS ({session_signals_sql()})
SELECT per.session_id, per.user_id, per.start_time, per.end_time, per.duration_ms, per.traces,
  per.errors, per.services, per.models, per.input_tokens, per.output_tokens, per.cost_usd,
  {_SESSION_SIGNALS}
FROM per LEFT JOIN sig USING (session_id)
ORDER BY {order}, session_id LIMIT ? OFFSET ?
"""
