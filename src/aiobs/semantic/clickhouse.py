"""The semantic layer in ClickHouse SQL, over the OpenTelemetry Collector exporter's own tables.

The scale-out backend (DESIGN.md) reads the ``otel_*`` tables a team's collector already fills;
nothing of ours is materialised there, so spans and traces are computed from the attributes, by
the same definitions as the DuckDB views:

- the canonical fields render natively (``fields.to_sql(..., dialect="clickhouse")``);
- the plain span columns and the trace aggregates are the views' own DuckDB SQL, translated by
  sqlglot plus ``to_clickhouse``'s shim for what sqlglot leaves in DuckDB's words or gets wrong.

- ``query_sql`` translates an analytic query written for the DuckDB store (segment, diff and scan's
  trace metrics, over ``ai_spans``, ``ai_traces``, ``aiobs_span_facts``, ``aiobs_trace_facts`` and
  ``otel_logs``) into one ClickHouse query, with those views as common table expressions.

tests/test_clickhouse.py runs these in real ClickHouse (chdb) and compares every value with the
DuckDB store's. Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiobs.semantic.views import (
    PRICED_SPANS,
    SPAN_COLUMNS,
    TRACE_AGGREGATES,
    ai_traces_sql,
    kinded_fields,
    kinded_spans,
)

if TYPE_CHECKING:
    from sqlglot import exp

    from aiobs.semantic.prices import Price

# DuckDB functions sqlglot passes through unchanged, and their ClickHouse names.
_RENAMED = {
    "epoch_ns": "toUnixTimestamp64Nano",
    "make_timestamp_ns": "fromUnixTimestamp64Nano",
}


def _ch(sql: str) -> exp.Expr:
    import sqlglot

    return sqlglot.parse_one(sql, read="clickhouse")


def _sql(node: exp.Expr) -> str:
    return str(node.sql(dialect="clickhouse"))


def _ordered_agg(agg: exp.Expr, where: exp.Expr | None) -> exp.Expr | None:
    """``list(x ORDER BY k)`` / ``string_agg(x, sep ORDER BY k)`` (ClickHouse aggregates take no
    ORDER BY): the (k, x) pairs gathered, sorted, and their x kept. None if ``agg`` is neither."""
    from sqlglot import exp

    if not isinstance(agg, exp.ArrayAgg | exp.GroupConcat) or not isinstance(agg.this, exp.Order):
        return None
    order = agg.this
    value = _sql(order.this)
    keys = [o for o in order.expressions if isinstance(o, exp.Ordered)]
    if len(keys) != 1 or keys[0].args.get("desc"):
        raise ValueError(f"ClickHouse shim: unsupported ORDER BY in {agg.sql()}")
    gather = "groupArray" if where is None else "groupArrayIf"
    cond = "" if where is None else f", {_sql(where.this)}"
    pairs = f"arraySort({gather}(({_sql(keys[0].this)}, {value}){cond}))"
    # groupArray skips NULL values; a pair is never NULL, so skip the NULL values by hand.
    values = f"arrayFilter(v -> v IS NOT NULL, arrayMap(p -> p.2, {pairs}))"
    if isinstance(agg, exp.GroupConcat):
        separator = agg.args.get("separator")
        sep = _sql(separator) if separator is not None else "','"
        return _ch(f"nullIf(arrayStringConcat({values}, {sep}), '')")
    return _ch(values)


def to_clickhouse(sql: str) -> str:
    """DuckDB SQL as the views and analytics write it, in ClickHouse's dialect.

    The rules cover what our SQL uses and sqlglot leaves in DuckDB's words or translates to
    something that means otherwise there (a cast that fails on blanks, CHAR_LENGTH of a list).
    A missing map key reads as NULL, as in DuckDB (ClickHouse answers ''); aggregates over no rows
    are NULL given ``SETTINGS`` from ``query_sql``."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    # Bottom-up, so a replaced node's children are already translated.
    for node in list(tree.walk(bfs=False))[::-1]:
        new: exp.Expr | None = None
        if isinstance(node, exp.Anonymous) and node.name.lower() in _RENAMED:
            node.set("this", _RENAMED[node.name.lower()])
        elif isinstance(node, exp.LogicalOr):  # bool_or: ClickHouse has no LOGICAL_OR
            new = exp.Max(this=node.this)
        elif isinstance(node, exp.ArraySort):  # list_sort: written ARRAY_SORT, unknown there
            new = exp.Anonymous(this="arraySort", expressions=[node.this])
        elif isinstance(node, exp.Lower):  # on characters, as DuckDB's
            new = exp.Anonymous(this="lowerUTF8", expressions=[node.this])
        elif isinstance(node, exp.Length):  # len() of a list in our SQL
            new = exp.Anonymous(this="length", expressions=[node.this])
        elif isinstance(node, exp.TryCast) and node.to.is_type("double"):
            new = _ch(f"toFloat64OrNull(trimBoth(toString({_sql(node.this)})))")
        elif isinstance(node, exp.PercentileCont):
            # DuckDB's quantile_cont interpolates exactly between order statistics.
            new = _ch(f"quantileExactInclusive({_sql(node.expression)})({_sql(node.this)})")
        elif isinstance(node, exp.RegexpReplace):
            modifiers = node.args.get("modifiers")
            every = modifiers is not None and "g" in modifiers.name
            fn = "replaceRegexpAll" if every else "replaceRegexpOne"
            new = exp.Anonymous(
                this=fn, expressions=[node.this, node.expression, node.args["replacement"]]
            )
        elif isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Distinct):
            new = exp.Anonymous(this="groupUniqArray", expressions=node.this.expressions)
        elif isinstance(node, exp.Bracket) and _is_map_lookup(node):
            column, key = _sql(node.this), _sql(node.expressions[0])
            new = _ch(f"if(mapContains({column}, {key}), {column}[{key}], NULL)")
        elif isinstance(node, exp.Filter):
            new = _ordered_agg(node.this, node.expression)
        elif isinstance(node.parent, exp.Filter):
            pass  # the Filter above rewrites an ordered aggregate with its condition
        else:
            new = _ordered_agg(node, None)
        if new is not None:
            node.replace(new)
            if node is tree:
                tree = new
    return _sql(tree)


_MAP_COLUMNS = frozenset(
    ("spanattributes", "resourceattributes", "logattributes", "attributes", "resource_attributes")
)


def _is_map_lookup(node: exp.Bracket) -> bool:
    """``X['key']`` on one of the attribute maps (an array index is a number, not a string)."""
    from sqlglot import exp

    return (
        isinstance(node.this, exp.Column)
        and node.this.name.lower() in _MAP_COLUMNS
        and len(node.expressions) == 1
        and isinstance(node.expressions[0], exp.Literal)
        and node.expressions[0].is_string
    )


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


# ClickHouse lets a SELECT's aliases shadow its input's columns: `min(start_time) AS start_time`
# would turn every later start_time into an aggregate; prefer_column_name_to_alias reads the
# column names as columns, as DuckDB does. Its aggregates over no rows answer 0 or '' unless
# aggregate_functions_null_for_empty (DuckDB: NULL), and its outer joins fill the missing side
# with defaults unless join_use_nulls.
SETTINGS = (
    " SETTINGS prefer_column_name_to_alias = 1, aggregate_functions_null_for_empty = 1,"
    " join_use_nulls = 1"
)


def _trace_facts_body() -> str:
    return to_clickhouse(f"SELECT {TRACE_AGGREGATES} FROM aiobs_span_facts GROUP BY trace_id")


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


def _views(prices: Mapping[str, Price]) -> dict[str, str]:
    """Each semantic view (and what they read) as ClickHouse SQL, in dependency order."""
    spans = to_clickhouse(PRICED_SPANS).replace(
        "FROM base AS b", f"FROM ({span_facts_sql(maps=True)}) AS b", 1
    )
    return {
        "aiobs_prices": _prices_sql(prices),
        "aiobs_span_facts": span_facts_sql(),
        "aiobs_trace_facts": _trace_facts_body(),
        "ai_spans": spans,
        "ai_traces": to_clickhouse(ai_traces_sql(materialised=False)),
    }


_DEPENDS = {
    "aiobs_trace_facts": ("aiobs_span_facts",),
    "ai_spans": ("aiobs_prices",),
    "ai_traces": ("ai_spans",),
}


def query_sql(sql: str, prices: Mapping[str, Price]) -> str:
    """A query written for the DuckDB store (its views, ``otel_*`` tables, DuckDB functions) as
    one ClickHouse query over the collector exporter's tables: the views it reads become common
    table expressions ahead of its own."""
    body = to_clickhouse(sql)
    views = _views(prices)
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
    return body + SETTINGS
