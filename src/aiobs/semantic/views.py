"""The ``ai_spans`` and ``ai_traces`` views, rendered from the canonical field definitions.

They are created as TEMP views on every connection (a few ms), so they always match the running aiobs
and the user's current price table, and work on read-only connections. ``aiobs_prices`` is a temp
table of the same lifetime.

Must not import typer, rich or textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiobs.semantic.fields import FIELDS_BY_NAME, to_sql
from aiobs.semantic.prices import MODEL_KEY_PATTERN, Price, load_prices

if TYPE_CHECKING:
    import duckdb

    from aiobs.store.connection import Store

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
    "ttft_ms",
    "prompt_name",
    "prompt_version",
    "agent_name",
    "tool_name",
    "session_id",
    "user_id",
    "finish_reason",
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
CANONICAL = (
    "service_version",
    "environment",
    "step_kind",
    "error_type",
    "error_message",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "recorded_cost_usd",
    "ttft_ms_raw",
    "prompt_name",
    "prompt_version",
    "agent_name",
    "tool_name",
    "session_id",
    "user_id",
    "finish_reason",
)


def canonical_select() -> str:
    """``TraceId, SpanId, <canonical fields>`` over an ``otel_traces`` row."""
    return '"TraceId", "SpanId", ' + ", ".join(_f(n) for n in CANONICAL)


def canonical_ddl() -> str:
    cols = ", ".join(f"{n} {FIELDS_BY_NAME[n].type}" for n in CANONICAL)
    return f'CREATE TABLE IF NOT EXISTS aiobs_spans ("TraceId" VARCHAR, "SpanId" VARCHAR, {cols})'


def fingerprint() -> str:
    """Identifies the canonical field definitions: a store materialised under other definitions
    (an older or newer aiobs) is re-materialised, or read through the computed view."""
    import hashlib

    return hashlib.sha256(canonical_select().encode()).hexdigest()[:16]


def ai_spans_sql(materialised: bool = False) -> str:
    errors = ", ".join(f"'{s}'" for s in ERROR_STATUS)
    if materialised:
        canon = ",\n    ".join(f"a.{n}" for n in CANONICAL)
        source = 'otel_traces o JOIN aiobs_spans a ON a."TraceId" = o."TraceId" AND a."SpanId" = o."SpanId"'
    else:
        canon = ",\n    ".join(_f(n) for n in CANONICAL)
        source = "otel_traces o"
    pattern = MODEL_KEY_PATTERN.replace("'", "''")
    return f"""
WITH base AS (
  SELECT
    o."TraceId" AS trace_id,
    o."SpanId" AS span_id,
    nullif("ParentSpanId", '') AS parent_span_id,
    "ServiceName" AS service_name,
    "SpanName" AS name,
    "Timestamp" AS start_time,
    make_timestamp_ns(epoch_ns("Timestamp") + "Duration"::BIGINT) AS end_time,
    "Duration" / 1e6 AS duration_ms,
    CASE WHEN "StatusCode" IN ({errors})
              OR upper("SpanAttributes"['langfuse.observation.level']) = 'ERROR'
         THEN 'error' ELSE 'ok' END AS status,
    {canon},
    "SpanAttributes" AS attributes,
    "ResourceAttributes" AS resource_attributes
  FROM {source}
)
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
  b.ttft_ms_raw * 1000 AS ttft_ms,
  b.prompt_name, b.prompt_version, b.agent_name, b.tool_name, b.session_id, b.user_id,
  b.finish_reason, b.attributes, b.resource_attributes
FROM base b
-- The exact model name first (text-embedding-004 is not text-embedding), then its normalised
-- form (gpt-4o-2024-08-06 -> gpt-4o).
LEFT JOIN aiobs_prices pe ON pe.model_key = lower(trim(b.model))
LEFT JOIN aiobs_prices p
  ON p.model_key = regexp_replace(lower(trim(b.model)), '{pattern}', '', 'g')
"""


# Token and cost totals count model calls only (models: the LLM calls' models): wrappers (Vercel's ai.generateText, agent spans)
# often repeat their children's usage, and summing both would double it.
_MODEL_CALL = "step_kind IN ('llm', 'embedding', 'rerank')"


def ai_traces_sql() -> str:
    root_first = "(parent_span_id IS NOT NULL, start_time)"
    return f"""
SELECT
  trace_id,
  min(start_time) AS start_time,
  max(end_time) AS end_time,
  (epoch_ns(max(end_time)) - epoch_ns(min(start_time))) / 1e6 AS duration_ms,
  arg_min(service_name, {root_first}) AS service_name,
  arg_min(service_version, {root_first}) AS service_version,
  arg_min(name, {root_first}) AS root_name,
  CASE WHEN bool_or(status = 'error') THEN 'error' ELSE 'ok' END AS status,
  count_if(status = 'error') AS error_count,
  count(*) AS span_count,
  count_if(step_kind = 'llm') AS llm_calls,
  count_if(step_kind = 'tool') AS tool_calls,
  sum(input_tokens) FILTER (WHERE {_MODEL_CALL}) AS input_tokens,
  sum(output_tokens) FILTER (WHERE {_MODEL_CALL}) AS output_tokens,
  sum(cost_usd) FILTER (WHERE {_MODEL_CALL}) AS cost_usd,
  coalesce(list_sort(list_distinct(list(model) FILTER (WHERE step_kind = 'llm' AND model IS NOT NULL))), [])
    AS models,
  coalesce(
    list_sort(list_distinct(list(prompt_version) FILTER (WHERE prompt_version IS NOT NULL))), []
  ) AS prompt_versions,
  arg_min(session_id, start_time) FILTER (WHERE session_id IS NOT NULL) AS session_id,
  arg_min(user_id, start_time) FILTER (WHERE user_id IS NOT NULL) AS user_id
FROM ai_spans
GROUP BY trace_id
"""


def install_views(store: Store, prices: dict[str, Price] | None = None) -> None:
    """(Re)create the temp price table and the semantic views on this connection."""
    if prices is None:
        from aiobs.config import load_config

        prices = load_prices(load_config())
    con = store.con
    con.execute(
        "CREATE OR REPLACE TEMP TABLE aiobs_prices"
        " (model_key VARCHAR PRIMARY KEY, input DOUBLE, output DOUBLE, cached_input DOUBLE)"
    )
    if prices:
        con.executemany(
            "INSERT INTO aiobs_prices VALUES (?, ?, ?, ?)",
            [[k, p.input, p.output, p.cached_input] for k, p in prices.items()],
        )
    con.execute(f"CREATE OR REPLACE TEMP VIEW ai_spans AS {ai_spans_sql(is_materialised(store))}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW ai_traces AS {ai_traces_sql()}")


def is_materialised(store: Store) -> bool:
    """True when ``aiobs_spans`` holds every span under the current field definitions."""
    con = store.con
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
        con.execute("DELETE FROM aiobs_spans")
        con.execute(f"INSERT INTO aiobs_spans SELECT {canonical_select()} FROM otel_traces")
        con.execute(
            "INSERT OR REPLACE INTO aiobs_meta VALUES ('semantic.fingerprint', ?, now()::TIMESTAMP)",
            [fingerprint()],
        )
    else:
        # otel_traces is append-only (ingest never deletes), so the rows this file added are the
        # ones at rowid >= the count before it started.
        con.execute(
            f"INSERT INTO aiobs_spans SELECT {canonical_select()} FROM otel_traces WHERE rowid >= ?",
            [from_row],
        )
