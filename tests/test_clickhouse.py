"""The Parquet export loads into the OpenTelemetry Collector ClickHouse exporter's own tables, in
real ClickHouse (chdb, embedded), with ``INSERT INTO t SELECT * FROM file(…)`` — no column mapping."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli, exported, otlp_span, traces_doc

chdb = pytest.importorskip("chdb", reason="chdb (embedded ClickHouse) is in the test extra")

MAP = "Map(LowCardinality(String), String)"
# The columns every metric table of the exporter starts with, and its exemplars.
_METRIC = f"""
        ResourceAttributes {MAP}, ResourceSchemaUrl String, ScopeName String, ScopeVersion String,
        ScopeAttributes {MAP}, ScopeDroppedAttrCount UInt32, ScopeSchemaUrl String,
        ServiceName LowCardinality(String), MetricName String, MetricDescription String,
        MetricUnit String, Attributes {MAP}, StartTimeUnix DateTime64(9), TimeUnix DateTime64(9),"""
_EXEMPLARS = f"""Exemplars Nested (FilteredAttributes {MAP}, TimeUnix DateTime64(9), Value Float64,
                          SpanId String, TraceId String)"""
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
    "otel_metrics_gauge": f"""{_METRIC}
        Value Float64, Flags UInt32, {_EXEMPLARS}""",
    "otel_metrics_sum": f"""{_METRIC}
        Value Float64, Flags UInt32, {_EXEMPLARS}, AggregationTemporality Int32,
        IsMonotonic Boolean""",
    "otel_metrics_histogram": f"""{_METRIC}
        Count UInt64, Sum Float64, BucketCounts Array(UInt64), ExplicitBounds Array(Float64),
        {_EXEMPLARS}, Flags UInt32, Min Float64, Max Float64, AggregationTemporality Int32""",
    "otel_metrics_exp_histogram": f"""{_METRIC}
        Count UInt64, Sum Float64, Scale Int32, ZeroCount UInt64, PositiveOffset Int32,
        PositiveBucketCounts Array(UInt64), NegativeOffset Int32,
        NegativeBucketCounts Array(UInt64), {_EXEMPLARS}, Flags UInt32, Min Float64,
        Max Float64, AggregationTemporality Int32""",
    "otel_metrics_summary": f"""{_METRIC}
        Count UInt64, Sum Float64,
        ValueAtQuantiles Nested (Quantile Float64, Value Float64), Flags UInt32""",
}


@functools.cache
def chdb_session() -> Any:
    """This process's one chdb session (chdb runs one embedded server a process): every test
    of a worker that queries chdb in process shares it."""
    from chdb import session

    return session.Session()


# Which export each of the session's tables holds: the corpus's tables, once filled, serve
# every test that reads them (the tests only read).
_FILLED: dict[str, Path] = {}


def _clickhouse_with(lake: Path, tables: dict[str, str]) -> Any:
    """A chdb session with the exporter's ``tables`` filled from our Parquet export in ``lake``."""
    ch = chdb_session()
    ch.query("CREATE DATABASE IF NOT EXISTS otel")
    ch.query("USE otel")
    for table, columns in tables.items():
        if _FILLED.get(table) == lake:
            continue
        _FILLED.pop(table, None)
        ch.query(f"DROP TABLE IF EXISTS {table}")
        ch.query(f"CREATE TABLE {table} ({columns}) ENGINE = MergeTree ORDER BY tuple()")
        ch.query(
            f"INSERT INTO {table} SELECT * FROM file('{lake / (table + '.parquet')}', Parquet)"
        )
        _FILLED[table] = lake
    return ch


def test_parquet_export_loads_into_the_clickhouse_exporter_tables(
    demo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
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
    ch = _clickhouse_with(lake, DDL)

    def ch_one(sql: str) -> str:
        return str(ch.query(sql, "TSV")).strip()

    from aiobs.backend.duckdb import open_store

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


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, int | float) or isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _fields_in_both(cli: Cli, lake: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every span's canonical fields as the DuckDB store computes them from the attributes, and
    as ClickHouse computes them from ``lake``, our Parquet export of the same spans, in the same
    order."""
    from aiobs.backend.duckdb import open_store
    from aiobs.semantic.clickhouse import fields_sql
    from aiobs.semantic.views import canonical_select

    ch = _clickhouse_with(lake, {"otel_traces": DDL["otel_traces"]})
    with open_store(cli.db) as store:
        cur = store.con.execute(f"SELECT {canonical_select()} FROM otel_traces ORDER BY 1, 2")
        columns = [d[0] for d in cur.description or ()]
        expected = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    return expected, _ch_rows(ch, f"{fields_sql()} ORDER BY TraceId, SpanId")


def _ch_rows(ch: Any, sql: str) -> list[dict[str, Any]]:
    out = ch.query(f"{sql} SETTINGS output_format_json_quote_64bit_integers = 0", "JSONEachRow")
    return [json.loads(line) for line in str(out).splitlines() if line.strip()]


def _mismatches(
    expected: list[dict[str, Any]], got: list[dict[str, Any]], names: Any = None
) -> list[tuple[Any, ...]]:
    from aiobs.semantic.views import CANONICAL

    assert len(got) == len(expected)
    names = names or ("TraceId", "SpanId", *CANONICAL)
    return [
        (want.get("TraceId", want.get("trace_id")), name, want[name], have[name])
        for want, have in zip(expected, got, strict=True)
        for name in names
        if not _same(want[name], have[name])
    ]


def test_canonical_fields_are_the_same_in_clickhouse(corpus: tuple[Cli, Path]) -> None:
    """The semantic layer's ClickHouse rendering gives, span for span, the values the DuckDB store
    computes: on every convention we ship a fixture for, the demo sample, and the conformance
    corpus's GenAI files, read from the collector exporter's own otel_traces in real ClickHouse."""
    expected, got = _fields_in_both(corpus[0], exported(corpus))
    assert len(expected) > 3000
    assert _mismatches(expected, got) == []


def test_span_and_trace_facts_are_the_same_in_clickhouse(corpus: tuple[Cli, Path]) -> None:
    """aiobs_span_facts and aiobs_trace_facts (ai_spans and ai_traces without prices or maps),
    computed in ClickHouse from the exporter's otel_traces, equal the DuckDB store's."""
    from aiobs.backend.duckdb import open_store
    from aiobs.semantic import clickhouse
    from aiobs.semantic.views import AI_TRACES_COLUMNS

    cli = corpus[0]
    lake = exported(corpus)
    ch = _clickhouse_with(lake, {"otel_traces": DDL["otel_traces"]})

    def duck(view: str, key: str) -> tuple[list[str], list[dict[str, Any]]]:
        with open_store(cli.db) as store:
            cur = store.con.execute(f"SELECT * FROM {view} ORDER BY {key}")
            names = [d[0] for d in cur.description or ()]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            # Nanoseconds since the epoch on both sides (Python's datetime stops at microseconds).
            text = store.con.execute(
                f"SELECT epoch_ns(start_time), epoch_ns(end_time) FROM {view} ORDER BY {key}"
            ).fetchall()
        for row, (start, end) in zip(rows, text, strict=True):
            row["start_time"], row["end_time"] = start, end
        return names, rows

    def clickhouse_rows(sql: str, key: str) -> list[dict[str, Any]]:
        return _ch_rows(
            ch,
            "SELECT * EXCEPT (start_time, end_time),"
            " toUnixTimestamp64Nano(start_time) AS start_time,"
            f" toUnixTimestamp64Nano(end_time) AS end_time FROM ({sql}) ORDER BY {key}",
        )

    names, spans = duck("aiobs_span_facts", "trace_id, span_id")
    got = clickhouse_rows(clickhouse.span_facts_sql(), "trace_id, span_id")
    assert len(spans) > 3000
    assert _mismatches(spans, got, names) == []

    names, traces = duck("aiobs_trace_facts", "trace_id")
    assert set(names) == set(AI_TRACES_COLUMNS) - {"cost_usd"}
    got = clickhouse_rows(clickhouse.trace_facts_sql(), "trace_id")
    assert len(traces) > 300
    assert _mismatches(traces, got, names) == []
    assert {t["status"] for t in traces} == {"ok", "error"}  # not vacuous


def test_clickhouse_fields_on_awkward_values(cli: Cli, write_jsonl: Any, tmp_path: Path) -> None:
    """Where the two engines differ by default: blanks around numbers, halves (to even in both,
    where a plain ClickHouse cast truncates), JSON null and nested arrays (ClickHouse counts from
    1), text outside ASCII (ClickHouse's plain lower and length work on bytes)."""
    awkward = [
        {"gen_ai.usage.input_tokens": " 12 ", "gen_ai.usage.output_tokens": "2.5"},
        {"gen_ai.usage.input_tokens": "-2.5", "gen_ai.usage.output_tokens": "1e3"},
        {"gen_ai.usage.input_tokens": "twelve", "llm.token_count.prompt": "7"},
        {"langfuse.observation.usage_details": '{"input": null, "output": 4}'},
        {"langfuse.observation.usage_details": '{"input": "9", "output": [1, 2]}'},
        {"langfuse.observation.usage_details": "not json"},
        {"gen_ai.response.finish_reasons": '["stop", "length"]'},
        {"gen_ai.response.finish_reasons": "[]"},
        {"gen_ai.retrieval.documents": '[{"id": "d1", "score": 0.5}, {"score": 0.2}]'},
        {"gen_ai.operation.name": "CHAT", "gen_ai.request.model": "GPT-4o-Ünïcode"},
        {"openinference.span.kind": "Retriever", "gen_ai.output.messages": "Ünïcödé ✓ text"},
        {"gen_ai.response.time_to_first_chunk": "0.25", "gen_ai.provider.name": "Åzure"},
    ]
    spans = [
        otlp_span(trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", name=f"step-{i}", attrs=attrs)
        for i, attrs in enumerate(awkward)
    ]
    assert cli("ingest", str(write_jsonl("awkward.jsonl", traces_doc(*spans)))).exit_code == 0
    lake = tmp_path / "lake"
    assert cli("export", "--to", "parquet", "--out", str(lake)).exit_code == 0
    expected, got = _fields_in_both(cli, lake)
    assert len(expected) == len(awkward)
    assert _mismatches(expected, got) == []
    # Not vacuous: the awkward values did produce values.
    assert sum(r["input_tokens"] is not None for r in expected) >= 4


# ------------------------------------------------------------- analytics: segment, diff, scan


def _rows_in_both(
    corpus: tuple[Cli, Path], sql: str, order: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of ``sql`` (written for the DuckDB store) from the store, and from ClickHouse over
    the exporter's otel_traces and otel_logs, ordered by ``order``; times in ns since the epoch."""
    from aiobs.backend.duckdb import open_store
    from aiobs.config import load_config
    from aiobs.semantic.clickhouse import query_sql
    from aiobs.semantic.prices import load_prices

    cli = corpus[0]
    with open_store(cli.db) as store:
        cur = store.con.execute(f"SELECT * FROM ({sql}) LIMIT 0")
        names = [d[0] for d in cur.description or ()]
        times = [n for n in names if n in ("start_time", "end_time")]
        # Nanoseconds on both sides (Python's datetime stops at microseconds).
        star = f"* REPLACE ({', '.join(f'epoch_ns({t}) AS {t}' for t in times)})" if times else "*"
        wrapped = f"SELECT {star} FROM ({sql}) ORDER BY {order}"
        cur = store.con.execute(wrapped)
        duck = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    lake = exported(corpus)
    ch = _clickhouse_with(lake, {t: DDL[t] for t in ("otel_traces", "otel_logs")})
    got = _ch_rows(ch, query_sql(wrapped, load_prices(load_config())))
    assert got and set(got[0]) == set(names)
    return duck, got


def _same_value(a: Any, b: Any) -> bool:
    """``_same``, and lists as sets, an empty list as NULL: DuckDB's ``list(DISTINCT …)`` has no
    order and is NULL over no rows, ClickHouse's ``groupUniqArray`` neither (arrays are never
    NULL there); the diff reads both as the same set."""
    if isinstance(a, list) or isinstance(b, list):

        def key(v: Any) -> str:  # 878.0 from DuckDB is 878 from ClickHouse's JSON
            return json.dumps(float(v) if isinstance(v, int | float) else v)

        return sorted(map(key, a or [])) == sorted(map(key, b or []))
    return _same(a, b)


def _differences(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[Any]:
    assert len(got) == len(expected)
    return [
        (want.get("trace_id"), name, want[name], have[name])
        for want, have in zip(expected, got, strict=True)
        for name in want
        if not _same_value(want[name], have[name])
    ]


def test_priced_views_are_the_same_in_clickhouse(corpus: tuple[Cli, Path]) -> None:
    """ai_spans and ai_traces with their costs, priced in ClickHouse from the shipped price table
    (the exact model, then its normalised name), equal the store's."""
    from aiobs.semantic.views import AI_SPANS_COLUMNS

    spans_cols = ", ".join(c for c in AI_SPANS_COLUMNS if "attributes" not in c)
    expected, got = _rows_in_both(corpus, f"SELECT {spans_cols} FROM ai_spans", "trace_id, span_id")
    assert _differences(expected, got) == []
    assert sum(r["cost_usd"] is not None for r in expected) > 500  # not vacuous
    expected, got = _rows_in_both(corpus, "SELECT * FROM ai_traces", "trace_id")
    assert _differences(expected, got) == []
    assert sum(r["cost_usd"] is not None for r in expected) > 100


def test_diff_rows_are_the_same_in_clickhouse(corpus: tuple[Cli, Path]) -> None:
    """The per-trace rows diff and scan compute their statistics from — metrics, user signals
    joined from events, evaluation results and each trace's factor values — equal in ClickHouse."""
    from aiobs.analysis.diff import row_sql

    expected, got = _rows_in_both(corpus, row_sql("TRUE"), "trace_id")
    assert len(expected) > 300
    assert _differences(expected, got) == []
    # The joined signals are there to compare, not all NULL.
    for column in ("thumbs_down", "abandoned", "csat", "eval_score", "tool_sequence", "ttft_ms"):
        assert any(r[column] not in (None, False, 0) for r in expected), column


@pytest.mark.parametrize(
    ("by", "where"),
    [
        ("service_name", "TRUE"),
        ("model,prompt_version", "TRUE"),
        ("step_kind", "t.status = 'error'"),
        ("attr['gen_ai.request.model'],status", "TRUE"),
        ("workflow", "t.start_time >= TIMESTAMP '2026-11-13 12:00:00'"),
    ],
)
def test_segment_is_the_same_in_clickhouse(corpus: tuple[Cli, Path], by: str, where: str) -> None:
    """segment's aggregation (exact quantiles, rates, user signals, time buckets) grouped by trace,
    list (unnested), span and attribute fields gives the same groups and values in ClickHouse."""
    from aiobs.analysis.segment import segment_sql

    names, sql = segment_sql(where, by, limit=10_000)
    order = ", ".join(f'"{n}" NULLS LAST' for n in names)
    expected, got = _rows_in_both(corpus, sql, order)
    assert len(expected) >= 2
    assert _differences(expected, got) == []
