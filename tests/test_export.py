"""``aiobs describe`` and ``aiobs export``: summaries within budget, OTLP round trip, Parquet tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from aiobs.store import schema
from conftest import REPO, Cli


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _failed_trace(db: Path) -> str:
    (row,) = _rows(
        db,
        "SELECT TraceId FROM otel_traces WHERE SpanAttributes['gen_ai.tool.name'] = 'lookup_charge_v1'"
        " ORDER BY Timestamp LIMIT 1",
    )
    return str(row[0])


def test_describe_fits_the_budget_and_says_what_matters(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    cli = Cli(db)
    trace_id = _failed_trace(db)
    for budget in (120, 400, 800, 3000):
        result = cli("describe", trace_id[:12], "--max-tokens", str(budget))
        assert result.exit_code == 0, result.output
        assert len(result.stdout) <= budget * 4 + 1, budget
    text = cli("describe", trace_id, "--max-tokens", "800").stdout
    assert text.startswith(f"Trace {trace_id}")
    for needle in (
        "Asked:",
        "Failed at",
        "lookup_charge_v1",
        "503",
        "Handed off",
        "User next:",
        "Changes before:",
        "2.4.0",
    ):
        assert needle in text, needle
    short = cli("describe", trace_id, "--max-tokens", "120").stdout
    assert short.startswith(f"Trace {trace_id}") and "ERROR" in short
    assert cli("describe", "ffffffff").exit_code == 4


def _table(db: Path, table: str, where: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(
        f'"{c}"' for c in next(t for t in schema.TELEMETRY_TABLES if t.name == table).column_names
    )
    return sorted(_rows(db, f"SELECT {cols} FROM {table} WHERE {where}"), key=repr)


def test_otlp_export_round_trips(demo: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    db, _ = demo
    out = tmp_path / "failed.jsonl"
    window = "2026-11-12T12:00Z..2026-11-13T12:00Z"
    result = Cli(db)(
        "export",
        "--to",
        "otlp-json",
        "--out",
        str(out),
        "--since",
        window,
        "--where",
        "status = 'error'",
    )
    assert result.exit_code == 0, result.output
    assert "exported" in result.stderr
    ids = {
        json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
        for line in out.read_text().splitlines()
        if line.startswith('{"resourceSpans"')
    }
    assert ids
    fresh = Cli(tmp_path / "fresh.duckdb")
    ingested = fresh("ingest", str(out), "--strict", "-f", "json")
    assert ingested.exit_code == 0, ingested.output
    selected = (
        "TraceId IN (SELECT trace_id FROM (SELECT TraceId AS trace_id, bool_or(StatusCode = 'STATUS_CODE_ERROR') e,"
        " min(Timestamp) s FROM otel_traces GROUP BY 1) WHERE e AND s >= '2026-11-12 12:00' AND s < '2026-11-13 12:00')"
    )
    original = _table(db, "otel_traces", selected)
    copy = _table(tmp_path / "fresh.duckdb", "otel_traces", "TRUE")
    assert len(copy) == len(original) > 100
    assert copy == original
    assert _table(tmp_path / "fresh.duckdb", "otel_logs", "TRUE") == _table(
        db, "otel_logs", selected
    )
    # Exported again from the copy, the file is identical: the round trip is stable.
    again = tmp_path / "again.jsonl"
    assert fresh("export", "--to", "otlp-json", "--out", str(again)).exit_code == 0
    assert sorted(again.read_text().splitlines()) == sorted(out.read_text().splitlines())


def test_otlp_export_of_each_convention_round_trips(cli: Cli, tmp_path: Path) -> None:
    # Events (exception, OpenInference), links-free spans, all value types flattened to text.
    for name in sorted(p.name for p in (REPO / "fixtures" / "conventions").iterdir()):
        assert cli("ingest", str(REPO / "fixtures" / "conventions" / name)).exit_code == 0
    assert cli("ingest", str(REPO / "fixtures" / "support-agent.otlp.jsonl")).exit_code == 0
    out = tmp_path / "all.jsonl"
    assert cli("export", "--to", "otlp-json", "--out", str(out)).exit_code == 0
    fresh = Cli(tmp_path / "fresh.duckdb")
    assert fresh("ingest", str(out), "--strict").exit_code == 0
    assert _table(tmp_path / "fresh.duckdb", "otel_traces", "TRUE") == _table(
        cli.db, "otel_traces", "TRUE"
    )
    assert _table(tmp_path / "fresh.duckdb", "otel_logs", "TRUE") == _table(
        cli.db, "otel_logs", "TraceId <> ''"
    )


def test_parquet_export_has_the_exporter_tables(
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
        "--service",
        "order-assistant",
        "--since",
        "2026-11-14T00:00Z..2026-11-14T06:00Z",
    )
    assert result.exit_code == 0, result.output
    con = duckdb.connect()
    for table in schema.TELEMETRY_TABLES:
        path = lake / f"{table.name}.parquet"
        assert path.exists(), table.name
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
        assert [(r[0], r[1]) for r in described] == [
            (c, t.replace("MAP(VARCHAR, VARCHAR)", "MAP(VARCHAR, VARCHAR)"))
            for c, t in table.columns
        ], table.name
    traces = con.execute(
        f"SELECT count(DISTINCT TraceId), count(*) FROM read_parquet('{lake}/otel_traces.parquet')"
    ).fetchone()
    expected = _rows(
        db,
        "SELECT count(DISTINCT TraceId), count(*) FROM otel_traces WHERE TraceId IN (SELECT TraceId FROM otel_traces"
        " WHERE ParentSpanId = '' AND ServiceName = 'order-assistant' AND Timestamp >= '2026-11-14' AND Timestamp < '2026-11-14 06:00')",
    )[0]
    assert traces == expected and traces[0] > 0
    gauges = con.execute(
        f"SELECT min(TimeUnix), max(TimeUnix) FROM read_parquet('{lake}/otel_metrics_gauge.parquet')"
    ).fetchone()
    assert (
        gauges is not None
        and str(gauges[0]) >= "2026-11-14"
        and str(gauges[1]) < "2026-11-14 07:00"
    )
    # The Parquet files load back into the exporter's DDL as they are (INSERT … SELECT *).
    for table in schema.TELEMETRY_TABLES:
        con.execute(table.ddl())
        con.execute(
            f"INSERT INTO {table.name} SELECT * FROM read_parquet('{lake}/{table.name}.parquet')"
        )
    assert con.execute("SELECT count(*) FROM otel_traces").fetchone() == (traces[1],)


def test_markdown_report(demo: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    db, _ = demo
    out = tmp_path / "report.md"
    result = Cli(db)(
        "export",
        "--to",
        "markdown",
        "--out",
        str(out),
        "--where",
        "tool_name = 'lookup_charge_v1'",
        "-n",
        "30",
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# Incident report") and "30 traces" in text
    assert (
        text.count("# Trace `") == 3 and "lookup_charge_v1" in text and "## Where it failed" in text
    )
    assert (
        Cli(db)("export", "--to", "markdown", "--out", str(tmp_path)).exit_code == 2
    )  # a directory
