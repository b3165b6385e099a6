"""The semantic layer in ClickHouse SQL, over the OpenTelemetry Collector exporter's own tables.

The scale-out backend (DESIGN.md) reads the ``otel_*`` tables a team's collector already fills;
nothing of ours is materialised there, so spans and traces are computed from the attributes, by
the same definitions as the DuckDB views:

- the canonical fields render natively (``fields.to_sql(..., dialect="clickhouse")``);
- the plain span columns and the trace aggregates are the views' own DuckDB SQL, translated by
  sqlglot plus ``to_clickhouse``'s shim for what sqlglot leaves in DuckDB's words or gets wrong.

tests/test_clickhouse.py runs these in real ClickHouse (chdb) and compares every value with the
DuckDB store's. Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

from aiobs.semantic.fields import FIELDS_BY_NAME, to_sql
from aiobs.semantic.views import CANONICAL, SPAN_COLUMNS, TRACE_AGGREGATES

# DuckDB functions sqlglot passes through unchanged, and their ClickHouse names.
_RENAMED = {
    "epoch_ns": "toUnixTimestamp64Nano",
    "make_timestamp_ns": "fromUnixTimestamp64Nano",
}


def to_clickhouse(sql: str) -> str:
    """DuckDB SQL as the views write it, in ClickHouse's dialect."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    # Bottom-up, so a replaced function's arguments are already translated.
    for node in list(tree.walk(bfs=False))[::-1]:
        if isinstance(node, exp.Anonymous) and node.name.lower() in _RENAMED:
            node.set("this", _RENAMED[node.name.lower()])
        elif isinstance(node, exp.LogicalOr):  # bool_or: ClickHouse has no LOGICAL_OR
            node.replace(exp.Max(this=node.this))
        elif isinstance(node, exp.ArraySort):  # list_sort: written ARRAY_SORT, unknown there
            node.replace(exp.Anonymous(this="arraySort", expressions=[node.this]))
    return str(tree.sql(dialect="clickhouse"))


def _canonical_columns() -> str:
    return ", ".join(
        f"{to_sql(FIELDS_BY_NAME[n].expr, FIELDS_BY_NAME[n].type, 'clickhouse')} AS {n}"
        for n in CANONICAL
    )


def fields_sql() -> str:
    """``TraceId, SpanId, <canonical fields>`` of every span of ``otel_traces`` (the DuckDB
    store's ``canonical_select`` over the same table)."""
    return f'SELECT "TraceId", "SpanId", {_canonical_columns()} FROM otel_traces'


def span_facts_sql() -> str:
    """``aiobs_span_facts`` in ClickHouse: one row a span of ``otel_traces``, the plain columns and
    the canonical fields, no attribute maps."""
    duck = {name: sql for name, _, sql in SPAN_COLUMNS}
    plain = {name: to_clickhouse(sql) for name, sql in duck.items()}
    # end_time as the DuckDB view writes it, over the plain columns' DuckDB sources.
    end = to_clickhouse(
        f"make_timestamp_ns(epoch_ns({duck['start_time']}) + {duck['duration_ns']})"
    )
    return (
        f'SELECT "TraceId" AS trace_id, "SpanId" AS span_id,'
        f" {plain['parent_span_id']} AS parent_span_id, {plain['service_name']} AS service_name,"
        f" {plain['name']} AS name, {plain['start_time']} AS start_time, {end} AS end_time,"
        f" {plain['duration_ns']} / 1e6 AS duration_ms, {plain['status']} AS status,"
        f" {_canonical_columns()} FROM otel_traces"
    )


def trace_facts_sql() -> str:
    """``aiobs_trace_facts`` (``ai_traces`` but the cost) in ClickHouse, from ``span_facts_sql``."""
    aggregates = to_clickhouse(f"SELECT {TRACE_AGGREGATES} FROM spans GROUP BY trace_id")
    # ClickHouse lets a SELECT's aliases shadow its input's columns: `min(start_time) AS
    # start_time` would turn every later start_time into an aggregate. The setting reads the
    # column names as columns, as DuckDB does.
    return (
        aggregates.replace("FROM spans", f"FROM ({span_facts_sql()}) AS spans", 1)
        + " SETTINGS prefer_column_name_to_alias = 1"
    )
