"""``aiobs stats``: what is in the store and how well it is instrumented — the "why can't I see X".

Must not import typer, rich or textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from aiobs.semantic.fields import CONVENTIONS
from aiobs.semantic.views import priced_span_facts_sql

if TYPE_CHECKING:
    from aiobs.analysis.results import IngestCounts, Stats
    from aiobs.backend import Backend


def _records(store: Backend, sql: str) -> list[dict[str, Any]]:
    return store.records(sql)


# Content attributes per convention: an LLM step "has content" when any of these is present.
_CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.prompt.0.content",
    "gen_ai.completion.0.content",
    "gen_ai.prompt",
    "llm.input_messages.0.message.content",
    "llm.input_messages.0.message.role",
    "input.value",
    "output.value",
    "traceloop.entity.input",
    "langfuse.observation.input",
    "ai.prompt",
    "ai.prompt.messages",
)


def store_stats(store: Backend) -> Stats:
    # In this order: a UNION ALL's branches may come back in any (ClickHouse runs them apart).
    signal_sql = " UNION ALL ".join(
        f"SELECT {i} AS ord, '{name}' AS signal, count(*) AS count, min({ts}) AS first,"
        f" max({ts}) AS last FROM {table}"
        for i, (name, table, ts) in enumerate(
            (
                ("spans", "otel_traces", "Timestamp"),
                ("log_records", "otel_logs", "Timestamp"),
                ("metric_points (gauge)", "otel_metrics_gauge", "TimeUnix"),
                ("metric_points (sum)", "otel_metrics_sum", "TimeUnix"),
                ("metric_points (histogram)", "otel_metrics_histogram", "TimeUnix"),
                ("metric_points (exp_histogram)", "otel_metrics_exp_histogram", "TimeUnix"),
                ("metric_points (summary)", "otel_metrics_summary", "TimeUnix"),
            )
        )
    )
    signal_sql = f"SELECT signal, count, first, last FROM ({signal_sql}) s ORDER BY ord"
    signals = _records(store, signal_sql)
    traces_row = store.one("SELECT count(DISTINCT TraceId) FROM otel_traces")
    events_row = store.one("SELECT count(*) FROM otel_logs WHERE EventName <> ''")
    signals.insert(1, {"signal": "traces", "count": traces_row[0] if traces_row else 0})
    signals.append(
        {
            "signal": "events (log records with an event name)",
            "count": events_row[0] if events_row else 0,
        }
    )

    # The sections read the span facts (no attribute maps), each aggregating in its own pass, and
    # the model calls priced once into a temp table as ai_spans prices them. Reading ai_spans
    # joined every span's attribute maps back in (974k spans: 4.4 s and 1.35 GB); a temp table
    # of every span's facts held 1.3 GB on 10M spans.
    store.execute(
        "CREATE OR REPLACE TEMP TABLE aiobs_stats_calls AS SELECT step_kind, provider, model,"
        f" input_tokens, output_tokens, cost_usd FROM ({priced_span_facts_sql()})"
        " WHERE step_kind IN ('llm', 'embedding')"
    )
    services = _records(
        store,
        "SELECT service_name, service_version, count(*) AS spans, count(DISTINCT trace_id) AS traces"
        " FROM aiobs_span_facts GROUP BY ALL ORDER BY spans DESC, service_name, service_version",
    )
    models = _records(
        store,
        "SELECT provider, model, count(*) AS calls, sum(input_tokens) AS input_tokens,"
        # fsum: a plain float sum's order follows DuckDB's threads, and its last digits (so the
        # rounding) could differ from one run to the next.
        " sum(output_tokens) AS output_tokens, round(fsum(cost_usd), 6) AS cost_usd"
        " FROM aiobs_stats_calls GROUP BY ALL ORDER BY calls DESC, provider, model",
    )
    step_kinds = _records(
        store,
        "SELECT step_kind, count(*) AS spans FROM aiobs_span_facts GROUP BY ALL"
        " ORDER BY spans DESC, step_kind",
    )
    cov_row = store.one(
        """
        SELECT count(*) AS n,
          count(model), count(input_tokens), count(output_tokens),
          (SELECT count(cost_usd) FROM aiobs_stats_calls WHERE step_kind = 'llm'),
          count(prompt_version), count(session_id), count(user_id)
        FROM aiobs_span_facts WHERE step_kind = 'llm'
        """
    )
    # Only the LLM steps' maps are looked into, found by their ids: the hash table is built on
    # those and every span's ids probe it (974k spans: 0.5-0.8 s; carrying every map through a
    # join to ai_spans took 4 s and 1.1 GB).
    content = " OR ".join(f"o.SpanAttributes['{k}'] IS NOT NULL" for k in _CONTENT_KEYS)
    content_row = store.one(
        f"SELECT coalesce(count_if({content}), 0) FROM otel_traces o"
        " JOIN (SELECT trace_id, span_id, start_time FROM aiobs_span_facts"
        "       WHERE step_kind = 'llm') s"
        " ON o.TraceId = s.trace_id AND o.SpanId = s.span_id AND o.Timestamp = s.start_time"
    )
    names = [
        "model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "prompt_version",
        "session_id",
        "user_id",
        "message_content",
    ]
    n = int(cov_row[0]) if cov_row else 0
    steps = [*(int(v) for v in (cov_row or [0] * 8)[1:]), int(content_row[0]) if content_row else 0]
    fields = [
        {"field": name, "steps": k, "share": round(k / n, 4) if n else None}
        for name, k in zip(names, steps, strict=True)
    ]
    # A span's conventions follow from its set of attribute keys, and a store holds few distinct
    # sets (35 in the 974k-span demo): count the spans per set (by the set's 64-bit hash), then
    # test each set once. Testing every span's keys took 3.2 s on 974k spans; this takes 0.3 s.
    sums = ", ".join(
        "sum(CASE WHEN len(list_filter(keys, lambda k: "
        + " OR ".join(f"starts_with(k, '{p}')" for p in prefixes)
        + ")) > 0 THEN n ELSE 0 END)"
        for _, prefixes in CONVENTIONS
    )
    conv_row = store.one(
        f"SELECT {sums} FROM (SELECT any_value(map_keys(SpanAttributes)) AS keys, count(*) AS n"
        " FROM otel_traces GROUP BY hash(map_keys(SpanAttributes)))"
    )
    conventions = [
        {"convention": name, "spans": int(conv_row[i]) if conv_row else 0}
        for i, (name, _) in enumerate(CONVENTIONS)
        if conv_row and conv_row[i]
    ]
    # redacted_files: how much of the store came through `ingest --redact` (is it safe to share?).
    ingests: IngestCounts | None = None
    if store.capabilities.ingest_log:
        row = store.one(
            "SELECT count(*), coalesce(sum(rejected), 0), count(redacted) FROM aiobs_ingests"
        )
        files, rejected, redacted = (int(v) for v in row) if row else (0, 0, 0)
        ingests = {"files": files, "rejected": rejected, "redacted_files": redacted}
    return cast(
        "Stats",
        {
            "store": store.location,
            "schema_version": store.schema_version,
            "signals": signals,
            "services": services,
            "models": models,
            "step_kinds": step_kinds,
            "coverage": {"llm_steps": n, "fields": fields, "conventions": conventions},
            "ingests": ingests,
        },
    )
