"""The ``ai_spans`` and ``ai_traces`` views, rendered from the canonical field definitions.

They are created as TEMP views on every connection (a few ms), so they always match the running aiobs
and the user's current price table, and work on read-only connections. ``aiobs_prices`` is a temp
table of the same lifetime.

Must not import typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiobs.semantic.fields import FIELDS, FIELDS_BY_NAME, STEP_KIND, to_sql
from aiobs.semantic.prices import MODEL_KEY_PATTERN, Price

if TYPE_CHECKING:
    import duckdb

    from aiobs.semantic.fields import Dialect

# Public columns of ai_spans, in order (the `--where` language and docs use this list).
AI_SPANS_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service_name",
    "service_version",
    "environment",
    "name",
    "step_kind",
    "start_time",
    "end_time",
    "duration_ms",
    "status",
    "error_type",
    "error_message",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "cost_usd",
    "reported_input_tokens",
    "reported_output_tokens",
    "reported_cost_usd",
    "ttft_ms",
    "prompt_name",
    "prompt_version",
    "agent_name",
    "tool_name",
    "session_id",
    "user_id",
    "finish_reason",
    "output_chars",
    "retrieval_top_score",
    "attributes",
    "resource_attributes",
)

AI_TRACES_COLUMNS = (
    "trace_id",
    "start_time",
    "end_time",
    "duration_ms",
    "service_name",
    "service_version",
    "root_name",
    "status",
    "error_count",
    "span_count",
    "llm_calls",
    "tool_calls",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "models",
    "prompt_versions",
    "session_id",
    "user_id",
)

# Status codes as the exporter writes them, across versions ("STATUS_CODE_ERROR", "Error").
ERROR_STATUS = ("STATUS_CODE_ERROR", "Error", "ERROR", "2")


def _f(name: str) -> str:
    field = FIELDS_BY_NAME[name]
    return f"{to_sql(field.expr, field.type)} AS {name}"


# Canonical fields computed from the attributes. They are materialised at ingest into
# ``aiobs_spans`` (one row per span, keyed like otel_traces): computing them from the attribute maps
# costs ~3 µs a span per read (3.3 s for `stats` on 1M spans), reading them back ~0.1 µs.
CANONICAL = tuple(f.name for f in FIELDS)


# The plain span columns, stored in ``aiobs_spans`` next to the canonical fields (name, type, SQL over
# an otel_traces row). With them, the trace table and the analytics (segment, diff, scan) read
# aiobs_spans alone: joining it back to otel_traces cost 0.9 s and 1.2 GB of a diff window on
# 974k spans, and the status read every span's attribute map for the Langfuse level.
_ERRORS = ", ".join(f"'{s}'" for s in ERROR_STATUS)
SPAN_COLUMNS = (
    ("parent_span_id", "VARCHAR", "nullif(\"ParentSpanId\", '')"),
    ("service_name", "VARCHAR", '"ServiceName"'),
    ("name", "VARCHAR", '"SpanName"'),
    ("start_time", "TIMESTAMP_NS", '"Timestamp"'),
    ("duration_ns", "BIGINT", '"Duration"::BIGINT'),
    (
        "status",
        "VARCHAR",
        f"""CASE WHEN "StatusCode" IN ({_ERRORS})
              OR upper("SpanAttributes"['langfuse.observation.level']) = 'ERROR'
         THEN 'error' ELSE 'ok' END""",
    ),
)


def canonical_select() -> str:
    """``TraceId, SpanId, <plain span columns>, <canonical fields>`` over an ``otel_traces`` row."""
    plain = ", ".join(f"{sql} AS {name}" for name, _, sql in SPAN_COLUMNS)
    return f'"TraceId", "SpanId", {plain}, ' + ", ".join(_f(n) for n in CANONICAL)


_KIND_COLUMN = "aiobs_step_kind"


def kinded_spans(dialect: Dialect = "duckdb", where: str | None = None) -> str:
    """``(otel_traces [where])`` with each span's step kind computed once, as ``_KIND_COLUMN``:
    the rows ``kinded_fields`` reads."""
    kind = to_sql(STEP_KIND.expr, STEP_KIND.type, dialect)
    tail = "" if where is None else f" {where}"
    return f"(SELECT *, {kind} AS {_KIND_COLUMN} FROM otel_traces{tail})"


def kinded_fields(dialect: Dialect = "duckdb") -> str:
    """The canonical fields over a ``kinded_spans`` row: the gated token and cost fields read its
    step kind instead of each computing it again (~12 µs a span in DuckDB, 1.9 → 3.5 s on 145k
    demo spans; in ClickHouse, which re-plans a view's SQL at every reference, the copies were
    60% of the span SQL)."""
    known = {STEP_KIND.expr: _KIND_COLUMN}
    return ", ".join(
        f"{_KIND_COLUMN} AS {n}"
        if n == STEP_KIND.name
        else f"{to_sql(FIELDS_BY_NAME[n].expr, FIELDS_BY_NAME[n].type, dialect, known)} AS {n}"
        for n in CANONICAL
    )


def canonical_query(where: str = "") -> str:
    """``SELECT <canonical_select()> FROM otel_traces {where}``, with the step kind computed once
    a row (``kinded_fields``): ingest materialises through this."""
    plain = ", ".join(f"{sql} AS {name}" for name, _, sql in SPAN_COLUMNS)
    return (
        f'SELECT "TraceId", "SpanId", {plain}, {kinded_fields()} FROM {kinded_spans(where=where)}'
    )


def canonical_ddl() -> str:
    plain = ", ".join(f"{name} {type_}" for name, type_, _ in SPAN_COLUMNS)
    cols = ", ".join(f"{n} {FIELDS_BY_NAME[n].type}" for n in CANONICAL)
    return (
        'CREATE TABLE IF NOT EXISTS aiobs_spans ("TraceId" VARCHAR, "SpanId" VARCHAR,'
        f" {plain}, {cols})"
    )


def fingerprint() -> str:
    """Identifies the canonical field definitions: a store materialised under other definitions
    (an older or newer aiobs) is re-materialised, or read through the computed view."""
    # Two 32-bit checksums, not sha256: a fingerprint only has to tell definitions apart, and
    # loading hashlib (OpenSSL) cost 4 ms of every command that opens the store.
    import zlib

    definitions = (
        canonical_select()
        + TRACE_AGGREGATES
        + span_base_sql(True)
        + "".join(TRACE_TABLES_DDL)
        + stated_costs_sql("s")
    ).encode()
    return f"{zlib.crc32(definitions):08x}{zlib.adler32(definitions):08x}"


def _span_columns(materialised: bool) -> str:
    """The ``ai_spans`` columns but cost and the attribute maps, over ``aiobs_spans a`` when
    ``materialised``, else computed over ``otel_traces o``."""
    if materialised:
        plain = {name: f"a.{name}" for name, _, _ in SPAN_COLUMNS}
        canon = ",\n    ".join(f"a.{n}" for n in CANONICAL)
        ids = 'a."TraceId" AS trace_id,\n    a."SpanId" AS span_id'
    else:
        plain = {name: sql for name, _, sql in SPAN_COLUMNS}
        canon = ",\n    ".join(_f(n) for n in CANONICAL)
        ids = 'o."TraceId" AS trace_id,\n    o."SpanId" AS span_id'
    return f"""
    {ids},
    {plain["parent_span_id"]} AS parent_span_id,
    {plain["service_name"]} AS service_name,
    {plain["name"]} AS name,
    {plain["start_time"]} AS start_time,
    make_timestamp_ns(epoch_ns({plain["start_time"]}) + {plain["duration_ns"]}) AS end_time,
    {plain["duration_ns"]} / 1e6 AS duration_ms,
    {plain["status"]} AS status,
    {canon}"""


def span_facts_sql(materialised: bool, where: str = "") -> str:
    """Spans with their canonical fields, without prices or attribute maps: ``aiobs_spans`` alone
    when ``materialised`` (``where`` over ``a``), else computed from ``otel_traces o``."""
    source = "aiobs_spans a" if materialised else "otel_traces o"
    return f"""
  SELECT {_span_columns(materialised)}
  FROM {source}
  {where}"""


def span_base_sql(materialised: bool, where: str = "") -> str:
    """Spans with their canonical fields and attribute maps (no prices): from aiobs_spans joined to
    otel_traces when ``materialised``, else computed from the attributes."""
    if materialised:
        # The start time joins too (a copy of the Timestamp): a time filter on start_time then
        # skips other times' row groups on both sides, not only in aiobs_spans (replay's span
        # read on 974k spans: 27 -> 11 ms cold).
        source = (
            'otel_traces o JOIN aiobs_spans a ON a."TraceId" = o."TraceId"'
            ' AND a."SpanId" = o."SpanId" AND a.start_time = o."Timestamp"'
        )
    else:
        source = "otel_traces o"
    return f"""
  SELECT {_span_columns(materialised)},
    o."SpanAttributes" AS attributes,
    o."ResourceAttributes" AS resource_attributes
  FROM {source}
  {where}"""


_PATTERN_SQL = MODEL_KEY_PATTERN.replace("'", "''")
# ai_spans over its unpriced spans ``base`` (span_base_sql) and the price table ``aiobs_prices``.
# Shared with the ClickHouse backend, which supplies both tables its own way.
PRICED_SPANS = f"""
SELECT
  b.trace_id, b.span_id, b.parent_span_id, b.service_name, b.service_version, b.environment,
  b.name, b.step_kind, b.start_time, b.end_time, b.duration_ms, b.status, b.error_type,
  b.error_message, b.provider, b.model, b.input_tokens, b.output_tokens, b.cache_read_tokens,
  b.reasoning_tokens,
  coalesce(
    b.recorded_cost_usd,
    CASE WHEN b.input_tokens IS NOT NULL OR b.output_tokens IS NOT NULL THEN
      (greatest(coalesce(b.input_tokens, 0) - coalesce(b.cache_read_tokens, 0), 0)
         * coalesce(pe.input, p.input)
       + least(coalesce(b.cache_read_tokens, 0), coalesce(b.input_tokens, 0))
         * coalesce(pe.cached_input, pe.input, p.cached_input, p.input)
       + coalesce(b.output_tokens, 0) * coalesce(pe.output, p.output)) / 1e6
    END
  ) AS cost_usd,
  b.reported_input_tokens, b.reported_output_tokens, b.reported_cost_usd,
  b.ttft_ms_raw * 1000 AS ttft_ms,
  b.prompt_name, b.prompt_version, b.agent_name, b.tool_name, b.session_id, b.user_id,
  b.finish_reason, b.output_chars, b.retrieval_top_score, b.attributes, b.resource_attributes
FROM base b
-- The exact model name first (text-embedding-004 is not text-embedding), then its normalised
-- form (gpt-4o-2024-08-06 -> gpt-4o).
LEFT JOIN aiobs_prices pe ON pe.model_key = lower(trim(b.model))
LEFT JOIN aiobs_prices p
  ON p.model_key = regexp_replace(lower(trim(b.model)), '{_PATTERN_SQL}', '', 'g')
"""


def ai_spans_sql(materialised: bool = False) -> str:
    return f"WITH base AS ({span_base_sql(materialised)}\n){PRICED_SPANS}"


def priced_span_facts_sql() -> str:
    """``ai_spans`` without its attribute maps (NULL): the span facts priced by ai_spans' own rule,
    for readers of every span that need the cost but not the maps, whose join back to otel_traces
    dominates a read of ai_spans."""
    return (
        "WITH base AS (SELECT *, NULL::MAP(VARCHAR, VARCHAR) AS attributes,"
        f" NULL::MAP(VARCHAR, VARCHAR) AS resource_attributes FROM aiobs_span_facts)\n{PRICED_SPANS}"
    )


# Token and cost totals count model calls only (models: the LLM calls' models): wrappers (Vercel's ai.generateText, agent spans)
# often repeat their children's usage, and summing both would double it.
MODEL_CALL_KINDS = ("llm", "embedding", "rerank")
_MODEL_CALL = f"step_kind IN {MODEL_CALL_KINDS}"


_ROOT_FIRST = "(parent_span_id IS NOT NULL, start_time)"
# Every ai_traces column but cost_usd (which depends on the price table, so is priced at read).
TRACE_AGGREGATES = f"""
  trace_id,
  min(start_time) AS start_time,
  max(end_time) AS end_time,
  (epoch_ns(max(end_time)) - epoch_ns(min(start_time))) / 1e6 AS duration_ms,
  arg_min(service_name, {_ROOT_FIRST}) AS service_name,
  arg_min(service_version, {_ROOT_FIRST}) AS service_version,
  arg_min(name, {_ROOT_FIRST}) AS root_name,
  CASE WHEN bool_or(status = 'error') THEN 'error' ELSE 'ok' END AS status,
  count_if(status = 'error') AS error_count,
  count(*) AS span_count,
  count_if(step_kind = 'llm') AS llm_calls,
  count_if(step_kind = 'tool') AS tool_calls,
  sum(input_tokens) FILTER (WHERE {_MODEL_CALL}) AS input_tokens,
  sum(output_tokens) FILTER (WHERE {_MODEL_CALL}) AS output_tokens,
  coalesce(list_sort(list_distinct(list(model) FILTER (WHERE step_kind = 'llm' AND model IS NOT NULL))), [])
    AS models,
  coalesce(
    list_sort(list_distinct(list(prompt_version) FILTER (WHERE prompt_version IS NOT NULL))), []
  ) AS prompt_versions,
  arg_min(session_id, start_time) FILTER (WHERE session_id IS NOT NULL) AS session_id,
  arg_min(user_id, start_time) FILTER (WHERE user_id IS NOT NULL) AS user_id"""
_TRACE_COLUMNS_NO_COST = tuple(c for c in AI_TRACES_COLUMNS if c != "cost_usd")


def spans_between_sql(column: str, within: tuple[int | None, int | None]) -> str:
    """``column`` (a span's start) between the bounds ``within`` (ns since the epoch, None where
    open; at least one given), as literals."""
    lower, upper = within
    bounds = [f"{column} >= make_timestamp_ns({lower})"] if lower is not None else []
    bounds += [f"{column} <= make_timestamp_ns({upper})"] if upper is not None else []
    return " AND ".join(bounds)


def trace_facts_within_sql(within: tuple[int | None, int | None]) -> str:
    """``aiobs_trace_facts`` of the spans that start ``within`` (``spans_between_sql``), as a
    subquery: for a backend that aggregates the traces at each read, the traces of a window
    (``TraceFilter.span_bounds``) without aggregating every span."""
    where = spans_between_sql("start_time", within)
    return f"(SELECT {TRACE_AGGREGATES} FROM aiobs_span_facts WHERE {where} GROUP BY trace_id)"


def stated_costs_sql(spans: str) -> str:
    """(trace_id, stated_cost_usd) over ``spans`` (rows with trace_id, span_id, parent_span_id,
    reported_cost_usd): the costs agent and chain steps state, each counted unless its parent
    states one too (a run's total already holds its sub-runs'), summed per trace. A trace's cost
    when none of its model calls has one (recorded or priced): then the telemetry's own figure is
    all there is, and the outermost statements hold the inner ones."""
    return f"""
SELECT trace_id, sum(reported_cost_usd) AS stated_cost_usd FROM {spans}
WHERE reported_cost_usd IS NOT NULL
  AND (trace_id, coalesce(parent_span_id, '')) NOT IN
    (SELECT trace_id, span_id FROM {spans} WHERE reported_cost_usd IS NOT NULL)
GROUP BY trace_id"""


def trace_select(stated: str, calls: str = "c.cost_usd") -> str:
    """ai_traces' columns over a trace row ``t``, its stated cost ``stated`` and its model calls'
    cost ``calls`` (by default of a cost row ``c``): the model calls' cost when they have one,
    else the stated cost. Each named (ClickHouse calls a column read through two USING joins
    ``t.x``)."""
    return ", ".join(
        f"coalesce({calls}, {stated}) AS cost_usd" if c == "cost_usd" else f"t.{c} AS {c}"
        for c in AI_TRACES_COLUMNS
    )


def trace_cost_usd(spans: Sequence[Mapping[str, Any]]) -> float | None:
    """ai_traces' cost rule over one trace's ``ai_spans`` rows (step_kind, cost_usd, span_id,
    parent_span_id, reported_cost_usd), for readers that have the spans in hand (replay)."""
    own = [s["cost_usd"] for s in spans if s["step_kind"] in MODEL_CALL_KINDS]
    priced = [c for c in own if c is not None]
    if priced:
        return float(sum(priced))
    stating = {s["span_id"] for s in spans if s.get("reported_cost_usd") is not None}
    stated = [
        s["reported_cost_usd"]
        for s in spans
        if s.get("reported_cost_usd") is not None and s.get("parent_span_id") not in stating
    ]
    return float(sum(stated)) if stated else None


# The span columns ai_traces aggregates (its rows from a subset of ai_spans' columns).
TRACE_SPAN_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "name", "service_name", "service_version",
    "start_time", "end_time", "status", "step_kind", "model", "prompt_version", "session_id",
    "user_id", "input_tokens", "output_tokens", "cost_usd", "reported_cost_usd",
)  # fmt: skip


def ai_traces_sql(materialised: bool = False, spans: str = "ai_spans") -> str:
    """``ai_traces`` as SQL: priced from the usage table (materialised stores), or aggregated
    from ``spans`` (``ai_spans``, or a CTE of some traces' rows of it, which must hold all their
    spans and at least the ``TRACE_SPAN_COLUMNS``)."""
    if not materialised:
        # The model calls' cost in the same pass as the aggregates: ClickHouse computes ai_spans
        # again at each read (a second pass was a quarter of segment's traces on 1M spans).
        return f"""
SELECT {trace_select("sc.stated_cost_usd", "t._calls_cost_usd")}
FROM (SELECT {TRACE_AGGREGATES},
        sum(cost_usd) FILTER (WHERE {_MODEL_CALL}) AS _calls_cost_usd
      FROM {spans} GROUP BY trace_id) t
LEFT JOIN ({stated_costs_sql(spans)}) sc USING (trace_id)
"""
    return _priced_traces("aiobs_trace_usage")


def priced_traces_sql(ids: str, within: tuple[int, int] | None = None) -> str:
    """``ai_traces`` rows of the traces whose ids the subquery ``ids`` gives, priced from their own
    usage rows only (materialised stores): filtering the view prices every trace first, 40-57 ms
    of `traces --limit 50` on 974k spans, as DuckDB does not push the filter into the pricing.

    ``within``: epoch nanoseconds (first start, last end) that hold those traces, when the caller
    knows them. With constant bounds DuckDB reads only the row groups of those times; by id alone
    it reads every trace's row (`traces --limit 50` on 966k traces: two scans of 38-56 ms)."""

    def in_time(column: str) -> str:
        if within is None:
            return ""
        lo, hi = (int(v) for v in within)
        return f" AND {column} BETWEEN make_timestamp_ns({lo}) AND make_timestamp_ns({hi})"

    usage = f"(SELECT * FROM aiobs_trace_usage WHERE trace_id IN ({ids}){in_time('start_time')})"
    return _priced_traces(usage, f"WHERE t.trace_id IN ({ids}){in_time('t.start_time')}")


def _priced_traces(usage: str, where: str = "") -> str:
    """aiobs_traces rows (``where`` over ``t``) with the cost priced from ``usage``."""
    return f"""
SELECT {trace_select("t.stated_cost_usd")} FROM aiobs_traces t
LEFT JOIN ({_trace_costs_sql(usage)}) c USING (trace_id)
{where}
"""


def _trace_costs_sql(usage: str) -> str:
    """(trace_id, cost_usd) priced from ``usage`` (aiobs_trace_usage or a subquery of it), which
    holds, per trace and model, the recorded cost and the token sums of the model calls without
    one; pricing them at read keeps costs current with the user's price table. Prices are looked
    up once per distinct model (mp), not per usage row: the regexp on every row made `traces
    --limit 50` on 974k spans spend 94 ms in the view instead of 40."""
    return f"""
WITH u AS (SELECT * FROM {usage}),
mp AS (
  SELECT m.model,
    coalesce(pe.input, p.input) AS input,
    coalesce(pe.output, p.output) AS output,
    coalesce(pe.cached_input, pe.input, p.cached_input, p.input) AS cached_input
  FROM (SELECT DISTINCT model FROM u WHERE model IS NOT NULL) m
  LEFT JOIN aiobs_prices pe ON pe.model_key = lower(trim(m.model))
  LEFT JOIN aiobs_prices p ON p.model_key = regexp_replace(lower(trim(m.model)), '{_PATTERN_SQL}', '', 'g')
),
priced AS (
  SELECT u.trace_id,
    CASE WHEN u.recorded IS NULL AND u.priced_calls = 0 THEN NULL ELSE
      coalesce(u.recorded, 0) + coalesce(
        (u.uncached_in * mp.input + u.cached_in * mp.cached_input + u.output * mp.output) / 1e6, 0)
    END AS cost,
    u.priced_calls > 0 AND coalesce(mp.input, mp.output) IS NULL AS unpriced
  FROM u LEFT JOIN mp USING (model)
)
SELECT trace_id,
  CASE WHEN bool_and(cost IS NULL OR (unpriced AND cost = 0)) THEN NULL ELSE sum(cost) END AS cost_usd
FROM priced GROUP BY trace_id
"""


def trace_facts_sql(materialised: bool = False) -> str:
    """``ai_traces`` without ``cost_usd``: for the queries that do not need the cost, whose
    pricing (a join over every trace's usage) cost 30-40 ms even when no cost was read."""
    cols = ", ".join(_TRACE_COLUMNS_NO_COST)
    if materialised:
        return f"SELECT {cols} FROM aiobs_traces"
    return f"SELECT {TRACE_AGGREGATES} FROM aiobs_span_facts GROUP BY trace_id"


TRACE_TABLES_DDL = (
    "CREATE TABLE IF NOT EXISTS aiobs_traces ("
    " trace_id VARCHAR, start_time TIMESTAMP_NS, end_time TIMESTAMP_NS, duration_ms DOUBLE,"
    " service_name VARCHAR, service_version VARCHAR, root_name VARCHAR, status VARCHAR,"
    " error_count BIGINT, span_count BIGINT, llm_calls BIGINT, tool_calls BIGINT,"
    " input_tokens HUGEINT, output_tokens HUGEINT, models VARCHAR[], prompt_versions VARCHAR[],"
    " session_id VARCHAR, user_id VARCHAR, stated_cost_usd DOUBLE)",
    # start_time: the first of the trace's model calls with that model (inside the trace's times),
    # so a read of some traces' usage can be bounded by their times.
    "CREATE TABLE IF NOT EXISTS aiobs_trace_usage (trace_id VARCHAR, model VARCHAR,"
    " recorded DOUBLE, uncached_in HUGEINT, cached_in HUGEINT, output HUGEINT, priced_calls BIGINT,"
    " start_time TIMESTAMP_NS)",
)


def _materialise_traces(con: duckdb.DuckDBPyConnection, *, only_touched: bool) -> None:
    """(Re)compute aiobs_traces and aiobs_trace_usage: for every trace, or ``only_touched``, the
    traces listed in the temp table ``aiobs_touched``."""
    touched = "trace_id IN (SELECT id FROM aiobs_touched)" if only_touched else "TRUE"
    con.execute(f"DELETE FROM aiobs_traces WHERE {touched}")
    con.execute(f"DELETE FROM aiobs_trace_usage WHERE {touched}")
    in_touched = 'a."TraceId" IN (SELECT id FROM aiobs_touched)'
    base = span_facts_sql(True, f"WHERE {in_touched}" if only_touched else "")
    names = ", ".join(_TRACE_COLUMNS_NO_COST)
    con.execute(
        f"INSERT INTO aiobs_traces ({names}) SELECT {TRACE_AGGREGATES} FROM ({base}) GROUP BY trace_id"
    )
    # The stated costs, from the few spans that state one: a second statement, as joining them
    # into the insert above held every trace's row at once (a 16 MB ingest limit ran out).
    stating = span_facts_sql(
        True,
        "WHERE a.reported_cost_usd IS NOT NULL" + (f" AND {in_touched}" if only_touched else ""),
    )
    con.execute(
        f"UPDATE aiobs_traces SET stated_cost_usd = sc.stated_cost_usd"
        f" FROM ({stated_costs_sql(f'({stating})')}) sc WHERE aiobs_traces.trace_id = sc.trace_id"
    )
    con.execute(
        f"""
INSERT INTO aiobs_trace_usage
SELECT trace_id, model,
  sum(recorded_cost_usd),
  sum(greatest(coalesce(input_tokens, 0) - coalesce(cache_read_tokens, 0), 0))
    FILTER (WHERE recorded_cost_usd IS NULL),
  sum(least(coalesce(cache_read_tokens, 0), coalesce(input_tokens, 0)))
    FILTER (WHERE recorded_cost_usd IS NULL),
  sum(coalesce(output_tokens, 0)) FILTER (WHERE recorded_cost_usd IS NULL),
  count(*) FILTER (WHERE recorded_cost_usd IS NULL
                   AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL)),
  min(start_time)
FROM ({base}) WHERE {_MODEL_CALL}
GROUP BY trace_id, model
"""
    )


def install_views(
    con: duckdb.DuckDBPyConnection, prices: Mapping[str, Price], *, materialised: bool
) -> None:
    """(Re)create the temp price table and the semantic views on this connection
    (``materialised``: whether ``is_materialised(con)``)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE aiobs_prices"
        " (model_key VARCHAR PRIMARY KEY, input DOUBLE, output DOUBLE, cached_input DOUBLE)"
    )
    if prices:
        # One statement of literals: executemany ran an INSERT a row (25 ms for the 44 shipped
        # prices, a tenth of a replay's start-up budget), and 176 bound parameters took 6.7 ms.
        def number(v: float | None) -> str:
            return "NULL" if v is None else repr(float(v))

        values = ", ".join(
            f"('{k.replace(chr(39), chr(39) * 2)}', {number(p.input)}, {number(p.output)},"
            f" {number(p.cached_input)})"
            for k, p in prices.items()
        )
        con.execute(f"INSERT INTO aiobs_prices VALUES {values}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW aiobs_span_facts AS {span_facts_sql(materialised)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW aiobs_trace_facts AS {trace_facts_sql(materialised)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW ai_spans AS {ai_spans_sql(materialised)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW ai_traces AS {ai_traces_sql(materialised)}")


def is_materialised(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``aiobs_spans`` holds every span under the current field definitions."""
    try:
        row = con.execute(
            "SELECT (SELECT value FROM aiobs_meta WHERE key = 'semantic.fingerprint'),"
            " (SELECT count(*) FROM aiobs_spans), (SELECT count(*) FROM otel_traces)"
        ).fetchone()
    except Exception:  # a store from before migration 5 (read-only, not yet migrated)
        return False
    return row is not None and row[0] == fingerprint() and row[1] == row[2]


def materialise(con: duckdb.DuckDBPyConnection, *, from_row: int | None = None) -> None:
    """Compute the canonical columns into ``aiobs_spans``: for otel_traces rows from ``from_row``
    on (rows appended by the ingest in progress), or for every row (``None``: rebuild)."""
    if from_row is None:
        # Recreated, not emptied: the columns may have changed since the tables were made.
        for table in ("aiobs_spans", "aiobs_traces", "aiobs_trace_usage"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    for ddl in TRACE_TABLES_DDL:
        con.execute(ddl)
    if from_row is None:
        con.execute(canonical_ddl())
        # A new store has no spans: planning the canonical queries over nothing is most of the
        # cost of creating one (~0.1 s, paid by every first ingest).
        has_spans = con.execute("SELECT EXISTS (SELECT 1 FROM otel_traces)").fetchone()
        if has_spans and has_spans[0]:
            con.execute(f"INSERT INTO aiobs_spans {canonical_query()}")
            _materialise_traces(con, only_touched=False)
        con.execute(
            "INSERT OR REPLACE INTO aiobs_meta VALUES ('semantic.fingerprint', ?, now()::TIMESTAMP)",
            [fingerprint()],
        )
    else:
        # otel_traces is append-only (ingest never deletes), so the rows this file added are the
        # ones at rowid >= the count before it started; the traces they belong to are recomputed.
        con.execute(f"INSERT INTO aiobs_spans {canonical_query('WHERE rowid >= ?')}", [from_row])
        con.execute(
            "CREATE OR REPLACE TEMP TABLE aiobs_touched AS"
            f' SELECT DISTINCT "TraceId" AS id FROM otel_traces WHERE rowid >= {int(from_row)}'
        )
        _materialise_traces(con, only_touched=True)
