"""The Parquet export loads into the OpenTelemetry Collector ClickHouse exporter's own tables, in
real ClickHouse (chdb, embedded), with ``INSERT INTO t SELECT * FROM file(…)`` — no column mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import Cli

chdb = pytest.importorskip("chdb", reason="chdb (embedded ClickHouse) is in the test extra")

MAP = "Map(LowCardinality(String), String)"
# The exporter's DDL (collector-contrib exporter/clickhouseexporter), engine clauses simplified.
DDL = {
    "otel_traces": f"""
        Timestamp DateTime64(9), TraceId String, SpanId String, ParentSpanId String,
        TraceState String, SpanName LowCardinality(String), SpanKind LowCardinality(String),
        ServiceName LowCardinality(String), ResourceAttributes {MAP}, ScopeName String,
        ScopeVersion String, SpanAttributes {MAP}, Duration UInt64,
        StatusCode LowCardinality(String), StatusMessage String,
        Events Nested (Timestamp DateTime64(9), Name LowCardinality(String), Attributes {MAP}),
        Links Nested (TraceId String, SpanId String, TraceState String, Attributes {MAP})""",
    "otel_logs": f"""
        Timestamp DateTime64(9), TimestampTime DateTime, TraceId String, SpanId String,
        TraceFlags UInt8, SeverityText LowCardinality(String), SeverityNumber UInt8,
        ServiceName LowCardinality(String), Body String, ResourceSchemaUrl LowCardinality(String),
        ResourceAttributes {MAP}, ScopeSchemaUrl LowCardinality(String), ScopeName String,
        ScopeVersion LowCardinality(String), ScopeAttributes {MAP}, LogAttributes {MAP},
        EventName String""",
    "otel_metrics_gauge": f"""
        ResourceAttributes {MAP}, ResourceSchemaUrl String, ScopeName String, ScopeVersion String,
        ScopeAttributes {MAP}, ScopeDroppedAttrCount UInt32, ScopeSchemaUrl String,
        ServiceName LowCardinality(String), MetricName String, MetricDescription String,
        MetricUnit String, Attributes {MAP}, StartTimeUnix DateTime64(9), TimeUnix DateTime64(9),
        Value Float64, Flags UInt32,
        Exemplars Nested (FilteredAttributes {MAP}, TimeUnix DateTime64(9), Value Float64,
                          SpanId String, TraceId String)""",
}


def test_parquet_export_loads_into_the_clickhouse_exporter_tables(
    demo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    from chdb import session

    db, _ = demo
    lake = tmp_path / "lake"
    result = Cli(db)(
        "export",
        "--to",
        "parquet",
        "--out",
        str(lake),
        "--since",
        "2026-11-12T14:00Z..2026-11-12T18:00Z",
    )
    assert result.exit_code == 0, result.output
    ch = session.Session()
    ch.query("CREATE DATABASE IF NOT EXISTS otel")
    ch.query("USE otel")
    for table, columns in DDL.items():
        ch.query(f"CREATE TABLE {table} ({columns}) ENGINE = MergeTree ORDER BY tuple()")
        ch.query(
            f"INSERT INTO {table} SELECT * FROM file('{lake / (table + '.parquet')}', Parquet)"
        )

    def ch_one(sql: str) -> str:
        return str(ch.query(sql, "TSV")).strip()

    from aiobs.store.connection import open_store

    with open_store(db) as store:
        con = store.con
        where = (
            "TraceId IN (SELECT TraceId FROM otel_traces GROUP BY 1 HAVING min(Timestamp)"
            " >= '2026-11-12 14:00' AND min(Timestamp) < '2026-11-12 18:00')"
        )
        spans, traces, events, tokens = con.execute(
            'SELECT count(*), count(DISTINCT TraceId), sum(len("Events.Name")),'
            " sum(TRY_CAST(SpanAttributes['gen_ai.usage.input_tokens'] AS BIGINT))"
            f" FROM otel_traces WHERE {where}"
        ).fetchone()
        logs = con.execute(f"SELECT count(*) FROM otel_logs WHERE {where}").fetchone()[0]
        first = con.execute(
            f"SELECT min(Timestamp)::VARCHAR FROM otel_traces WHERE {where}"
        ).fetchone()[0]
    assert spans > 1000
    assert (
        ch_one(
            "SELECT count(), uniqExact(TraceId), sum(length(Events.Name)),"
            " sum(toInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens'])) FROM otel_traces"
        )
        == f"{spans}\t{traces}\t{events}\t{tokens}"
    )
    assert ch_one("SELECT count() FROM otel_logs") == str(logs)
    # Nanosecond timestamps survive the trip.
    assert ch_one("SELECT toString(min(Timestamp)) FROM otel_traces") == first
    assert int(ch_one("SELECT count() FROM otel_metrics_gauge")) > 0
