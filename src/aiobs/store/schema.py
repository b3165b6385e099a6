"""Table definitions mirroring the OpenTelemetry Collector ClickHouse exporter, plus aiobs bookkeeping.

Each table is declared once, as an ordered list of (column, DuckDB type); the DDL and the Arrow schema
that ingest builds batches with are both derived from it, so they cannot drift. Column names and order
follow the exporter's DDL so that a Parquet export loads with ``INSERT INTO t SELECT * FROM file(…)``.
Nested columns are flattened to quoted list columns (``"Events.Name" VARCHAR[]``), as the exporter's
``Nested`` type is in ClickHouse.
"""

from __future__ import annotations

from dataclasses import dataclass

MAP = "MAP(VARCHAR, VARCHAR)"
TS = "TIMESTAMP_NS"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def ddl(self) -> str:
        cols = ",\n  ".join(f'"{c}" {t}' for c, t in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n)"


def _exemplars() -> tuple[tuple[str, str], ...]:
    return (
        ("Exemplars.FilteredAttributes", f"{MAP}[]"),
        ("Exemplars.TimeUnix", f"{TS}[]"),
        ("Exemplars.Value", "DOUBLE[]"),
        ("Exemplars.SpanId", "VARCHAR[]"),
        ("Exemplars.TraceId", "VARCHAR[]"),
    )


_METRIC_HEAD: tuple[tuple[str, str], ...] = (
    ("ResourceAttributes", MAP),
    ("ResourceSchemaUrl", "VARCHAR"),
    ("ScopeName", "VARCHAR"),
    ("ScopeVersion", "VARCHAR"),
    ("ScopeAttributes", MAP),
    ("ScopeDroppedAttrCount", "UINTEGER"),
    ("ScopeSchemaUrl", "VARCHAR"),
    ("ServiceName", "VARCHAR"),
    ("MetricName", "VARCHAR"),
    ("MetricDescription", "VARCHAR"),
    ("MetricUnit", "VARCHAR"),
    ("Attributes", MAP),
    ("StartTimeUnix", TS),
    ("TimeUnix", TS),
)

OTEL_TRACES = Table(
    "otel_traces",
    (
        ("Timestamp", TS),
        ("TraceId", "VARCHAR"),
        ("SpanId", "VARCHAR"),
        ("ParentSpanId", "VARCHAR"),
        ("TraceState", "VARCHAR"),
        ("SpanName", "VARCHAR"),
        ("SpanKind", "VARCHAR"),
        ("ServiceName", "VARCHAR"),
        ("ResourceAttributes", MAP),
        ("ScopeName", "VARCHAR"),
        ("ScopeVersion", "VARCHAR"),
        ("SpanAttributes", MAP),
        ("Duration", "UBIGINT"),
        ("StatusCode", "VARCHAR"),
        ("StatusMessage", "VARCHAR"),
        ("Events.Timestamp", f"{TS}[]"),
        ("Events.Name", "VARCHAR[]"),
        ("Events.Attributes", f"{MAP}[]"),
        ("Links.TraceId", "VARCHAR[]"),
        ("Links.SpanId", "VARCHAR[]"),
        ("Links.TraceState", "VARCHAR[]"),
        ("Links.Attributes", f"{MAP}[]"),
    ),
)

OTEL_LOGS = Table(
    "otel_logs",
    (
        ("Timestamp", TS),
        ("TimestampTime", "TIMESTAMP"),
        ("TraceId", "VARCHAR"),
        ("SpanId", "VARCHAR"),
        ("TraceFlags", "UTINYINT"),
        ("SeverityText", "VARCHAR"),
        ("SeverityNumber", "UTINYINT"),
        ("ServiceName", "VARCHAR"),
        ("Body", "VARCHAR"),
        ("ResourceSchemaUrl", "VARCHAR"),
        ("ResourceAttributes", MAP),
        ("ScopeSchemaUrl", "VARCHAR"),
        ("ScopeName", "VARCHAR"),
        ("ScopeVersion", "VARCHAR"),
        ("ScopeAttributes", MAP),
        ("LogAttributes", MAP),
        ("EventName", "VARCHAR"),
    ),
)

OTEL_METRICS_GAUGE = Table(
    "otel_metrics_gauge",
    (*_METRIC_HEAD, ("Value", "DOUBLE"), ("Flags", "UINTEGER"), *_exemplars()),
)

OTEL_METRICS_SUM = Table(
    "otel_metrics_sum",
    (
        *_METRIC_HEAD,
        ("Value", "DOUBLE"),
        ("Flags", "UINTEGER"),
        *_exemplars(),
        ("AggregationTemporality", "INTEGER"),
        ("IsMonotonic", "BOOLEAN"),
    ),
)

OTEL_METRICS_HISTOGRAM = Table(
    "otel_metrics_histogram",
    (
        *_METRIC_HEAD,
        ("Count", "UBIGINT"),
        ("Sum", "DOUBLE"),
        ("BucketCounts", "UBIGINT[]"),
        ("ExplicitBounds", "DOUBLE[]"),
        *_exemplars(),
        ("Flags", "UINTEGER"),
        ("Min", "DOUBLE"),
        ("Max", "DOUBLE"),
        ("AggregationTemporality", "INTEGER"),
    ),
)

OTEL_METRICS_EXP_HISTOGRAM = Table(
    "otel_metrics_exp_histogram",
    (
        *_METRIC_HEAD,
        ("Count", "UBIGINT"),
        ("Sum", "DOUBLE"),
        ("Scale", "INTEGER"),
        ("ZeroCount", "UBIGINT"),
        ("PositiveOffset", "INTEGER"),
        ("PositiveBucketCounts", "UBIGINT[]"),
        ("NegativeOffset", "INTEGER"),
        ("NegativeBucketCounts", "UBIGINT[]"),
        *_exemplars(),
        ("Flags", "UINTEGER"),
        ("Min", "DOUBLE"),
        ("Max", "DOUBLE"),
        ("AggregationTemporality", "INTEGER"),
    ),
)

OTEL_METRICS_SUMMARY = Table(
    "otel_metrics_summary",
    (
        *_METRIC_HEAD,
        ("Count", "UBIGINT"),
        ("Sum", "DOUBLE"),
        ("ValueAtQuantiles.Quantile", "DOUBLE[]"),
        ("ValueAtQuantiles.Value", "DOUBLE[]"),
        ("Flags", "UINTEGER"),
    ),
)

AIOBS_INGESTS = Table(
    "aiobs_ingests",
    (
        ("ingest_id", "BIGINT"),
        ("source", "VARCHAR"),
        ("size_bytes", "UBIGINT"),
        ("sha256", "VARCHAR"),
        ("format", "VARCHAR"),
        ("started_at", "TIMESTAMP"),
        ("seconds", "DOUBLE"),
        ("spans", "UBIGINT"),
        ("log_records", "UBIGINT"),
        ("metric_points", "UBIGINT"),
        ("duplicates", "UBIGINT"),
        ("rejected", "UBIGINT"),
        ("aiobs_version", "VARCHAR"),
    ),
)

AIOBS_REJECTS = Table(
    "aiobs_rejects",
    (
        ("ingest_id", "BIGINT"),
        ("source", "VARCHAR"),
        ("line", "BIGINT"),
        ("byte_offset", "BIGINT"),
        ("reason", "VARCHAR"),
        ("excerpt", "VARCHAR"),
        ("rejected_at", "TIMESTAMP"),
    ),
)

METRIC_TABLES: dict[str, Table] = {
    "gauge": OTEL_METRICS_GAUGE,
    "sum": OTEL_METRICS_SUM,
    "histogram": OTEL_METRICS_HISTOGRAM,
    "exp_histogram": OTEL_METRICS_EXP_HISTOGRAM,
    "summary": OTEL_METRICS_SUMMARY,
}

TELEMETRY_TABLES: tuple[Table, ...] = (OTEL_TRACES, OTEL_LOGS, *METRIC_TABLES.values())

# The identity a re-ingested record is recognised by (DESIGN.md: spans on (TraceId, SpanId); logs and
# points on their full identity). Map columns are compared through their text form.
DEDUPE_KEYS: dict[str, tuple[str, ...]] = {
    "otel_traces": ("TraceId", "SpanId"),
    "otel_logs": (
        "Timestamp",
        "ServiceName",
        "TraceId",
        "SpanId",
        "TraceFlags",
        "SeverityNumber",
        "SeverityText",
        "Body",
        "EventName",
        "LogAttributes",
        "ResourceAttributes",
        "ScopeName",
        "ScopeVersion",
        "ScopeAttributes",
    ),
    **{
        t.name: (
            "TimeUnix",
            "StartTimeUnix",
            "ServiceName",
            "MetricName",
            "MetricDescription",
            "MetricUnit",
            "Attributes",
            "ResourceAttributes",
            "ScopeName",
            "ScopeVersion",
            "ScopeAttributes",
        )
        for t in METRIC_TABLES.values()
    },
}

# When each trace's log records were written: a row per trace per ingest batch (the first and last
# Timestamp among its records there), so replay can bound its scan of otel_logs by time. Trace ids
# are random, so a `TraceId = ?` filter alone reads every log record's id: 31 ms of a replay on
# 650k log records, 81 ms on 6.7M; the lookup here plus a time-bounded read take a fraction.
# Rows are only ever added (a re-ingested batch adds a range the store already covers).
TRACE_LOG_TIMES_DDL = (
    "CREATE TABLE IF NOT EXISTS aiobs_trace_log_times"
    " (trace_id VARCHAR, first_time TIMESTAMP_NS, last_time TIMESTAMP_NS)"
)


def trace_log_times_sql(source: str) -> str:
    """The ``aiobs_trace_log_times`` rows of the otel_logs-shaped relation ``source``."""
    return (
        'SELECT "TraceId", min("Timestamp"), max("Timestamp") FROM '
        f'{source} WHERE "TraceId" <> \'\' GROUP BY "TraceId"'
    )
