"""The semantic layer in ClickHouse SQL, over the OpenTelemetry Collector exporter's own tables.

The scale-out backend (DESIGN.md) reads the ``otel_*`` tables a team's collector already fills;
nothing of ours is materialised there, so spans and traces are computed from the attributes, by
the same definitions as the DuckDB views:

- the canonical fields render natively (``fields.to_sql(..., dialect="clickhouse")``);
- the plain span columns and the trace aggregates are the views' own DuckDB SQL, translated by
  the ClickHouse dialect (``aiobs.sql.clickhouse.to_clickhouse``).

- ``with_views`` completes a statement the dialect rendered (``aiobs.sql.CLICKHOUSE.render``) with
  the views it reads as common table expressions; ``query_sql`` does both for a statement written
  for the DuckDB store.

tests/test_clickhouse.py and tests/test_sql_dialects.py run these in real ClickHouse (chdb) and compares every value with the
DuckDB store's. Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiobs.semantic.views import (
    MODEL_CALL_KINDS,
    PRICED_SPANS,
    SPAN_COLUMNS,
    TRACE_AGGREGATES,
    ai_traces_sql,
    kinded_fields,
    kinded_spans,
    trace_select,
)
from aiobs.sql.clickhouse import SETTINGS, to_clickhouse

if TYPE_CHECKING:
    from aiobs.semantic.prices import Price


def fields_sql() -> str:
    """``TraceId, SpanId, <canonical fields>`` of every span of ``otel_traces`` (the DuckDB
    store's ``canonical_select`` over the same table)."""
    fields, spans = kinded_fields("clickhouse"), kinded_spans("clickhouse")
    return f'SELECT "TraceId", "SpanId", {fields} FROM {spans}'


def span_facts_sql(*, maps: bool = False) -> str:
    """``aiobs_span_facts`` in ClickHouse: one row a span of ``otel_traces``, the plain columns and
    the canonical fields; with ``maps``, also ``attributes`` and ``resource_attributes`` (the
    unpriced ``ai_spans`` rows)."""
    duck = {name: sql for name, _, sql in SPAN_COLUMNS}
    plain = {name: to_clickhouse(sql) for name, sql in duck.items()}
    # end_time as the DuckDB view writes it, over the plain columns' DuckDB sources.
    end = to_clickhouse(
        f"make_timestamp_ns(epoch_ns({duck['start_time']}) + {duck['duration_ns']})"
    )
    extra = ', "SpanAttributes" AS attributes, "ResourceAttributes" AS resource_attributes'
    return (
        f'SELECT "TraceId" AS trace_id, "SpanId" AS span_id,'
        f" {plain['parent_span_id']} AS parent_span_id, {plain['service_name']} AS service_name,"
        f" {plain['name']} AS name, {plain['start_time']} AS start_time, {end} AS end_time,"
        f" {plain['duration_ns']} / 1e6 AS duration_ms, {plain['status']} AS status,"
        f" {kinded_fields('clickhouse')}{extra if maps else ''} FROM {kinded_spans('clickhouse')}"
    )


def _trace_facts_body() -> str:
    return to_clickhouse(f"SELECT {TRACE_AGGREGATES} FROM aiobs_span_facts GROUP BY trace_id")


# A trace's stated cost (views.stated_costs_sql: the costs its agent and chain steps state, each
# unless its parent states one too) from the (span, parent, cost) of those steps, collected in
# the aggregates' own pass: the self-join computed ai_spans twice more, and each pass evaluates
# the fields from the attribute maps (segment's traces on demo-x6: 3.7 -> 2.1 s in chdb).
_STATED_STEPS = (
    "groupArrayIf((span_id, coalesce(parent_span_id, ''), reported_cost_usd),"
    " reported_cost_usd IS NOT NULL)"
)
_STATED_COST = (
    "if(empty(t._stated), NULL, arraySum(x -> if(has(arrayMap(y -> y.1, t._stated), x.2), 0,"
    " assumeNotNull(x.3)), t._stated))"
)


def ai_traces_sql_clickhouse() -> str:
    """``ai_traces`` in ClickHouse: ``views.ai_traces_sql`` (not materialised) in one pass over
    ``ai_spans``."""
    aggregates = to_clickhouse(
        f"SELECT {TRACE_AGGREGATES}, sum(cost_usd) FILTER (WHERE step_kind IN"
        f" {MODEL_CALL_KINDS}) AS _calls_cost_usd FROM ai_spans GROUP BY trace_id"
    )
    tail = " FROM ai_spans GROUP BY trace_id"
    if aggregates.count(tail) != 1:
        raise AssertionError(f"unexpected translation of the trace aggregates: {aggregates}")
    aggregates = aggregates.replace(tail, f", {_STATED_STEPS} AS _stated{tail}")
    return f"SELECT {trace_select(_STATED_COST, 't._calls_cost_usd')} FROM ({aggregates}) AS t"


def trace_facts_sql() -> str:
    """``aiobs_trace_facts`` (``ai_traces`` but the cost) in ClickHouse, from ``span_facts_sql``."""
    return query_sql("SELECT * FROM aiobs_trace_facts", {})


def _number(value: float | None) -> str:
    return "NULL" if value is None else repr(float(value))


def _prices_sql(prices: Mapping[str, Price]) -> str:
    """The price table as rows of literals (the DuckDB store's temp ``aiobs_prices``)."""
    columns = "model_key String, input Nullable(Float64), output Nullable(Float64)"
    columns += ", cached_input Nullable(Float64)"
    if not prices:
        return f"SELECT * FROM VALUES('{columns}', ('', NULL, NULL, NULL)) WHERE 0"
    rows = ", ".join(
        "('" + key.replace("\\", "\\\\").replace("'", "\\'") + "', "
        f"{_number(p.input)}, {_number(p.output)}, {_number(p.cached_input)})"
        for key, p in prices.items()
    )
    return f"SELECT * FROM VALUES('{columns}', {rows})"


SPANS_TABLE = "aiobs_spans"  # the canonical span columns, kept by a materialised view
SPANS_VIEW = "aiobs_spans_mv"


def spans_table_comment() -> str:
    """What ``SPANS_TABLE``'s comment says: the field definitions it was computed under (a
    table of another aiobs version's definitions is not read)."""
    from aiobs.semantic.views import fingerprint

    return f"aiobs canonical spans, semantic {fingerprint()}"


def ddl(database: str = "otel") -> str:
    """Optional DDL for a cluster: ``SPANS_TABLE`` with every span's canonical columns (and its
    attribute maps), filled by a materialised view as the exporter inserts into
    ``otel_traces``, and a backfill of what is there already. With it, queries read the
    columns instead of computing them from the attributes at each reference (segment on the demo
    sample: 3.0 -> 0.7 s in chdb)."""
    db = f"`{database}`"
    select = span_facts_sql(maps=True).replace("FROM otel_traces", f"FROM {db}.otel_traces")
    return f"""-- aiobs: canonical span columns for the queries of aiobs --backend (optional).
-- Run once as a user who may create tables in {database}; aiobs itself never writes.
CREATE TABLE IF NOT EXISTS {db}.{SPANS_TABLE}
ENGINE = MergeTree
PARTITION BY toDate(start_time)
ORDER BY (service_name, start_time, trace_id)
COMMENT '{spans_table_comment()}'
EMPTY AS {select}
{SETTINGS};

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{SPANS_VIEW} TO {db}.{SPANS_TABLE} AS
{select}
{SETTINGS};

-- The spans stored before the view existed (run once, right after it):
INSERT INTO {db}.{SPANS_TABLE} {select}
{SETTINGS};
"""


def _views(prices: Mapping[str, Price], spans_table: bool = False) -> dict[str, str]:
    """Each semantic view (and what they read) as ClickHouse SQL, in dependency order; with
    ``spans_table``, the span columns are read from ``SPANS_TABLE`` (``ddl``). Translated once
    per price table: it took 60 ms a statement, 6 of a scan's 17 s on chdb."""
    from aiobs.sql.clickhouse import translations

    # Keyed by everything the views are made of (DuckDB SQL and the natively rendered fields).
    sources = (
        PRICED_SPANS + TRACE_AGGREGATES + ai_traces_sql(materialised=False) + repr(SPAN_COLUMNS)
        + kinded_fields("clickhouse") + kinded_spans("clickhouse") + _STATED_STEPS + _STATED_COST
    )  # fmt: skip
    key = "\x1f".join(("views", str(spans_table), repr(sorted(prices.items())), sources))
    found = translations.get(key)
    if found is None:
        found = _translate_views(prices, spans_table)
        translations.put(key, found)
    views: dict[str, str] = found
    return views


def _translate_views(prices: Mapping[str, Price], spans_table: bool) -> dict[str, str]:
    base = SPANS_TABLE if spans_table else f"({span_facts_sql(maps=True)})"
    spans = to_clickhouse(PRICED_SPANS).replace("FROM base AS b", f"FROM {base} AS b", 1)
    facts = (
        f"SELECT * EXCEPT (attributes, resource_attributes) FROM {SPANS_TABLE}"
        if spans_table
        else span_facts_sql()
    )
    return {
        "aiobs_prices": _prices_sql(prices),
        "aiobs_span_facts": facts,
        "aiobs_trace_facts": _trace_facts_body(),
        "ai_spans": spans,
        "ai_traces": ai_traces_sql_clickhouse(),
    }


_DEPENDS = {
    "aiobs_trace_facts": ("aiobs_span_facts",),
    "ai_spans": ("aiobs_prices",),
    "ai_traces": ("ai_spans",),
}


def query_sql(sql: str, prices: Mapping[str, Price]) -> str:
    """A query written for the DuckDB store (its views, ``otel_*`` tables, DuckDB functions), with
    no parameters left (``aiobs.sql.bind_literals``), as one ClickHouse query over the collector
    exporter's tables (``with_views``)."""
    return with_views(to_clickhouse(sql), prices)


def with_views(body: str, prices: Mapping[str, Price], *, spans_table: bool = False) -> str:
    """A statement already in ClickHouse's dialect (``aiobs.sql.CLICKHOUSE.render``) with the
    semantic views it reads as common table expressions ahead of its own (for ``CREATE
    TEMPORARY TABLE … AS <query>``, of the query), and the ``SETTINGS`` that make ClickHouse
    answer as DuckDB does."""
    create = _CREATE_AS.match(body)
    head = ""
    if create:
        head, body = create.group(0), body[create.end() :]
    views = _views(prices, spans_table)
    wanted: set[str] = set()

    def want(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for dep in _DEPENDS.get(name, ()):
                want(dep)

    for name in views:
        if re.search(rf"\b{name}\b", body):
            want(name)
    ctes = ", ".join(f"{name} AS ({views[name]})" for name in views if name in wanted)
    if ctes:
        body = (
            f"WITH {ctes}, {body[len('WITH ') :]}"
            if body.startswith("WITH ")
            else (f"WITH {ctes} {body}")
        )
    return head + body + SETTINGS


_CREATE_AS = re.compile(r"CREATE (?:OR REPLACE )?TEMPORARY TABLE \S+ AS ")
