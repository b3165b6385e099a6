"""Ingest behaviour, case by case, through the real CLI (and a real subprocess where processes matter).

Each case is hand-made and asserts exact counts in the store, the JSON summary and the exit code
(DESIGN.md "Quality bars", FORMATS.md §1–2). Bugs found by these cases are kept as strict xfails that
assert the correct behaviour.
"""

from __future__ import annotations

import base64
import ctypes
import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
import zstandard

from conftest import OUTCOME_EXIT, REPO, Cli, WriteFn, env_without_aiobs, otlp_span, traces_doc

T0 = 1_763_000_000_000_000_000  # 2025-11-13, ns
TRACE = "0af7651916cd43dd8448eb211c80319c"
TABLES = (
    "otel_traces",
    "otel_logs",
    "otel_metrics_gauge",
    "otel_metrics_sum",
    "otel_metrics_histogram",
    "otel_metrics_exp_histogram",
    "otel_metrics_summary",
)
SUMMARY_KEYS = ("files", "spans", "log_records", "metric_points", "duplicates", "rejected")


# ------------------------------------------------------------------------------------ helpers


@contextmanager
def connect(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        yield con
    finally:
        con.close()


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connect(db) as con:
        return con.execute(sql, params or []).fetchall()


def counts(db: Path) -> dict[str, int]:
    with connect(db) as con:
        out = {}
        for t in (*TABLES, "aiobs_ingests", "aiobs_rejects"):
            row = con.execute(f"SELECT count(*) FROM {t}").fetchone()
            out[t] = int(row[0]) if row else 0
        return out


def summary(result: Any) -> dict[str, Any]:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def totals(result: Any) -> tuple[int, ...]:
    data = summary(result)
    return tuple(data[k] for k in SUMMARY_KEYS)


def ingest(cli: Cli, *args: str) -> Any:
    return cli("ingest", *[str(a) for a in args], "-f", "json")


def kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def span(n: int, **extra: Any) -> dict[str, Any]:
    """A valid span with span id ``n`` (as 16 hex digits) in TRACE."""
    return otlp_span(span_id=f"{n:016x}", start=T0 + n * 1_000_000, **extra)


def log_record(n: int, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "timeUnixNano": str(T0 + n),
        "severityNumber": 9,
        "severityText": "INFO",
        "body": {"stringValue": f"log {n}"},
        "attributes": [kv("n", n)],
        "traceId": TRACE,
        "spanId": f"{n:016x}",
    }
    rec.update(extra)
    return rec


def logs_doc(*records: dict[str, Any], service: str = "svc") -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [kv("service.name", service)]},
                "scopeLogs": [{"scope": {"name": "test"}, "logRecords": list(records)}],
            }
        ]
    }


def gauge_point(n: int, **extra: Any) -> dict[str, Any]:
    point: dict[str, Any] = {"timeUnixNano": str(T0 + n), "asDouble": float(n)}
    point.update(extra)
    return point


def metrics_doc(*metrics: dict[str, Any], service: str = "svc") -> dict[str, Any]:
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": [kv("service.name", service)]},
                "scopeMetrics": [{"scope": {"name": "test"}, "metrics": list(metrics)}],
            }
        ]
    }


def gauge(name: str, *points: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "unit": "1", "gauge": {"dataPoints": list(points)}}


def rejects(db: Path) -> list[dict[str, Any]]:
    with connect(db) as con:
        cur = con.execute(
            "SELECT source, line, byte_offset, reason, excerpt FROM aiobs_rejects"
            " ORDER BY ingest_id, line NULLS LAST, reason"
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def span_ids(db: Path) -> list[str]:
    return [r[0] for r in rows(db, "SELECT SpanId FROM otel_traces ORDER BY SpanId")]


def run_aiobs(db: Path, *args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aiobs", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env_without_aiobs(), "NO_COLOR": "1"},
        **kw,
    )


# ---------------------------------------------------------------------------- idempotency


def test_reingesting_the_same_file_adds_nothing(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    path = write_jsonl(
        "export.jsonl",
        traces_doc(span(1), span(2, parent=f"{1:016x}")),
        logs_doc(log_record(1)),
        metrics_doc(gauge("cpu", gauge_point(1), gauge_point(2))),
    )
    first = ingest(cli, path)
    assert first.exit_code == 0, first.output
    assert totals(first) == (1, 2, 1, 2, 0, 0)
    before = counts(db)
    second = ingest(cli, path)
    assert second.exit_code == 0, second.output
    assert totals(second) == (1, 0, 0, 0, 5, 0)
    after = counts(db)
    assert after["aiobs_ingests"] == before["aiobs_ingests"] + 1
    assert {t: after[t] for t in TABLES} == {t: before[t] for t in TABLES}
    assert rows(db, "SELECT spans, duplicates FROM aiobs_ingests ORDER BY ingest_id") == [
        (2, 0),
        (0, 5),
    ]


def test_overlapping_exports_keep_one_copy(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    a = write_jsonl(
        "a.jsonl",
        traces_doc(span(1), span(2), span(3)),
        logs_doc(log_record(1), log_record(2)),
    )
    b = write_jsonl(
        "b.jsonl",
        traces_doc(span(2), span(3), span(4)),
        logs_doc(log_record(2), log_record(3)),
    )
    result = ingest(cli, a, b)
    assert result.exit_code == 0, result.output
    assert totals(result) == (2, 4, 3, 0, 3, 0)
    per_file = [
        (f["spans"], f["log_records"], f["duplicates"]) for f in summary(result)["per_file"]
    ]
    assert per_file == [(3, 2, 0), (1, 1, 3)]
    assert span_ids(db) == [f"{n:016x}" for n in (1, 2, 3, 4)]
    assert counts(db)["otel_logs"] == 3


def test_duplicate_span_inside_one_file(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    # twice in one document, and once more on a later line
    path = write_jsonl("dup.jsonl", traces_doc(span(1), span(1), span(2)), traces_doc(span(1)))
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, 2, 0, 0, 2, 0)
    assert span_ids(db) == [f"{1:016x}", f"{2:016x}"]


# --------------------------------------------------------------------------- bad input


def test_garbage_line_between_good_lines(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    garbage = '{"resourceSpans": [ this is not json'
    path = write_jsonl(
        "mixed.jsonl",
        traces_doc(span(1)),
        raw_lines=[garbage, json.dumps(traces_doc(span(2)))],
    )
    result = ingest(cli, path)
    assert result.exit_code == 5, result.output
    assert totals(result) == (1, 2, 0, 0, 0, 1)
    assert f"{path} as otlp-json-lines: 2 spans; 1 record refused: invalid JSON" in result.stderr
    assert span_ids(db) == [f"{1:016x}", f"{2:016x}"]
    [rej] = rejects(db)
    assert rej["source"].endswith("mixed.jsonl")
    assert rej["line"] == 2
    assert rej["byte_offset"] == len(json.dumps(traces_doc(span(1)))) + 1
    assert "invalid JSON" in rej["reason"]
    assert rej["excerpt"].startswith('{"resourceSpans": [ this is not json')


def test_strict_turns_any_reject_into_exit_2(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    path = write_jsonl("one-bad.jsonl", traces_doc(span(1)), raw_lines=["nope"])
    result = cli("ingest", "--strict", str(path), "-f", "json")
    assert result.exit_code == 2
    assert totals(result) == (1, 1, 0, 0, 0, 1)
    # the good record still landed: strict changes the exit code, not what is stored
    assert span_ids(db) == [f"{1:016x}"]
    clean = write_jsonl("clean.jsonl", traces_doc(span(2)))
    assert cli("ingest", "--strict", str(clean), "-f", "json").exit_code == 0


def test_nothing_parsed_is_exit_2(cli: Cli, db: Path, tmp_path: Path) -> None:
    cases = {
        "text.log": (b"this is not telemetry\nat all\n", "not OTLP JSON or protobuf"),
        "broken.json": (b'{"resourceSpans": [oops\n', "invalid JSON"),
        "other.json": (b'{"hello": "world"}\n', "not OTLP: expected resourceSpans"),
        "empty.json": (b"", "empty input"),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        result = ingest(cli, path)
        assert result.exit_code == 2, result.output
        said = f"aiobs: ingest: {path} as "
        line = next(x for x in result.stderr.splitlines() if x.startswith(said))
        assert "nothing landed; 1 record refused: " in line and reason in line, line
        data = summary(result)
        assert (data["files"], data["spans"], data["rejected"]) == (1, 0, 1)
        assert data["outcome"] == "nothing" and data["per_file"][0]["outcome"] == "refused"
        last = rejects(db)[-1]
        assert reason in last["reason"] and last["source"] == str(path)


def _truncated_gzip(tmp_path: Path, n_lines: int) -> tuple[Path, int]:
    """A gzip of ``n_lines`` JSON Lines cut in the middle; returns (path, complete lines before cut)."""
    lines = [json.dumps(traces_doc(span(i))) for i in range(1, n_lines + 1)]
    data = ("\n".join(lines) + "\n").encode()
    gz = gzip.compress(data)
    cut = gz[: len(gz) // 2]
    available = zlib.decompressobj(wbits=31).decompress(cut)
    complete = available.count(b"\n")
    assert 0 < complete < n_lines
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(cut)
    return path, complete


def test_truncated_gzip_is_reported_not_crashed(cli: Cli, db: Path, tmp_path: Path) -> None:
    path, _ = _truncated_gzip(tmp_path, 40)
    result = ingest(cli, path)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    reasons = [r["reason"] for r in rejects(db)]
    assert any("truncated" in r and "gzip" in r for r in reasons), reasons
    assert all(r["source"].endswith("cut.jsonl.gz") for r in rejects(db))


def test_truncated_gzip_keeps_the_lines_before_the_cut(cli: Cli, db: Path, tmp_path: Path) -> None:
    path, complete = _truncated_gzip(tmp_path, 40)
    result = ingest(cli, path)
    assert result.exit_code == 5, result.output
    data = summary(result)
    assert data["spans"] == complete
    assert counts(db)["otel_traces"] == complete
    assert any("truncated" in r["reason"] for r in rejects(db))


def test_truncated_zstd_names_the_truncation(cli: Cli, db: Path, tmp_path: Path) -> None:
    lines = [json.dumps(traces_doc(span(i))) for i in range(1, 200)]
    z = zstandard.ZstdCompressor().compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(z[: len(z) - 4])
    ingest(cli, path)
    assert any("truncated" in r["reason"] for r in rejects(db)), rejects(db)


def test_wrong_typed_fields_unknown_enums_and_absurd_times_are_rejected(
    cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    bad = [
        ("startTimeUnixNano", span(10, startTimeUnixNano="abc")),
        ("attribute", span(11, attributes="not a list")),
        ("attribute", span(12, attributes=5)),
        ("unknown span kind 'SPAN_KIND_BOGUS'", span(13, kind="SPAN_KIND_BOGUS")),
        ("unknown status code 7", span(14, status={"code": 7})),
        ("absurd timestamp", span(15, startTimeUnixNano=str(32_503_680_000 * 10**9))),  # 3000
        ("event is not an object", span(16, events="oops")),
        ("status is not an object", span(17, status="ERROR")),
        ("traceId", span(18, traceId="not-an-id")),
        ("spanId is missing", span(19, spanId="")),
    ]
    docs = [traces_doc(span(1))] + [traces_doc(s) for _, s in bad] + [traces_doc(span(2))]
    path = write_jsonl("bad-fields.jsonl", *docs)
    result = ingest(cli, path)
    assert result.exit_code == 5, result.output
    assert totals(result) == (1, 2, 0, 0, 0, len(bad))
    assert span_ids(db) == [f"{1:016x}", f"{2:016x}"]
    got = rejects(db)
    assert [r["line"] for r in got] == list(range(2, 2 + len(bad)))
    for (needle, _), rej in zip(bad, got, strict=True):
        assert rej["reason"].startswith("span: ") and needle in rej["reason"], rej["reason"]
        assert rej["source"].endswith("bad-fields.jsonl")
        assert rej["excerpt"].startswith("{") and '"spanId"' in rej["excerpt"]


def test_absurd_timestamps_on_logs_and_metric_points(
    cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    year_3000 = str(32_503_680_000 * 10**9)
    path = write_jsonl(
        "absurd.jsonl",
        logs_doc(log_record(1), log_record(2, timeUnixNano=year_3000)),
        metrics_doc(gauge("g", gauge_point(1), gauge_point(2, timeUnixNano=year_3000))),
    )
    result = ingest(cli, path)
    assert result.exit_code == 5, result.output
    assert totals(result) == (1, 0, 1, 1, 0, 2)
    reasons = [r["reason"] for r in rejects(db)]
    assert len(reasons) == 2 and all("absurd timestamp" in r for r in reasons)


# Each case is one record whose field has the wrong JSON type or an out-of-range integer. The decoder
# accepts them and the row then fails to convert for the store, which aborts the whole file.
SCALAR_CASES = {
    "span name is a number": traces_doc(span(9, name=5)),
    "status message is a number": traces_doc(span(9, status={"code": 2, "message": 5})),
    "traceState is a number": traces_doc(span(9, traceState=5)),
    "scope name is a number": {
        "resourceSpans": [{"scopeSpans": [{"scope": {"name": 5}, "spans": [span(9)]}]}]
    },
    "severityText is a number": logs_doc(log_record(9, severityText=5)),
    "metric name is a number": metrics_doc({"name": 5, "gauge": {"dataPoints": [gauge_point(9)]}}),
    "flags is negative": metrics_doc(gauge("g", gauge_point(9, flags=-1))),
    "histogram count is negative": metrics_doc(
        {"name": "h", "histogram": {"dataPoints": [{"timeUnixNano": str(T0), "count": -5}]}}
    ),
    "exp histogram scale overflows": metrics_doc(
        {
            "name": "e",
            "exponentialHistogram": {
                "dataPoints": [{"timeUnixNano": str(T0), "scale": 99_999_999_999}]
            },
        }
    ),
    "aggregationTemporality overflows": metrics_doc(
        {
            "name": "s",
            "sum": {"aggregationTemporality": 99_999_999_999, "dataPoints": [gauge_point(9)]},
        }
    ),
    "exemplar time overflows": metrics_doc(
        gauge("g", gauge_point(9, exemplars=[{"timeUnixNano": "9" * 25, "asDouble": 1}]))
    ),
    "duplicate attribute keys": traces_doc(
        span(9, attributes=[kv("a", 1), kv("a", 2)]),
    ),
    "metric name is an object": metrics_doc(
        {"name": {"x": 1}, "gauge": {"dataPoints": [gauge_point(9)]}}
    ),
    "severityText is an object": logs_doc(log_record(9, severityText={"x": 1})),
    "eventName is an object": logs_doc(log_record(9, eventName={"x": 1})),
    "metric scope name is an object": {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {"scope": {"name": {"x": 1}}, "metrics": [gauge("g", gauge_point(9))]}
                ]
            }
        ]
    },
    "duplicate resource attribute keys": {
        "resourceSpans": [
            {
                "resource": {"attributes": [kv("service.name", "a"), kv("service.name", "b")]},
                "scopeSpans": [{"spans": [span(9)]}],
            }
        ]
    },
}


@pytest.mark.parametrize("case", sorted(SCALAR_CASES))
def test_wrong_typed_scalar_costs_only_its_record(
    case: str, cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    path = write_jsonl("scalar.jsonl", traces_doc(span(1)), SCALAR_CASES[case])
    result = ingest(cli, path)
    data = summary(result)
    assert data["outcome"] == ("partial" if data["rejected"] else "all")
    assert result.exit_code == OUTCOME_EXIT[data["outcome"]], result.output
    # the good span lands; the odd record is either stored (coerced) or rejected, never lost
    assert data["spans"] >= 1 and f"{1:016x}" in span_ids(db)
    assert data["spans"] + data["log_records"] + data["metric_points"] + data["rejected"] == 2
    stored = sum(counts(db)[t] for t in TABLES)
    assert stored == data["spans"] + data["log_records"] + data["metric_points"]


def test_store_level_reject_is_not_also_a_duplicate(
    cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    path = write_jsonl("scalar.jsonl", traces_doc(span(1)), traces_doc(span(2, name=5)))
    result = ingest(cli, path)
    assert totals(result) == (1, 1, 0, 0, 0, 1)


@pytest.mark.parametrize("case", ["flags is negative", "histogram count is negative"])
def test_store_level_reject_names_line_and_field(
    case: str, cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    path = write_jsonl("scalar.jsonl", traces_doc(span(1)), SCALAR_CASES[case])
    ingest(cli, path)
    for rej in rejects(db):
        assert rej["line"] == 2
        assert case.split()[-3] in rej["reason"].split("(")[0]  # "flags" / "count"


def test_parent_cycles_are_refused(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    a, b, c = "a" * 16, "b" * 16, "c" * 16
    path = write_jsonl(
        "cycles.jsonl",
        traces_doc(
            otlp_span(span_id=c, parent=c),  # its own parent
            otlp_span(span_id=a, parent=b),  # A -> B
            otlp_span(span_id=b, parent=a),  # B -> A closes the cycle
            otlp_span(span_id="d" * 16, parent=a),  # an ordinary child
        ),
    )
    result = ingest(cli, path)
    assert result.exit_code == 5, result.output
    assert totals(result) == (1, 2, 0, 0, 0, 2)
    assert span_ids(db) == [a, "d" * 16]
    got = rejects(db)
    assert all("cycle" in r["reason"] for r in got)
    assert {(c in r["reason"]) or (b in r["reason"]) for r in got} == {True}


def test_parent_cycle_reject_names_its_line(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    a, b = "a" * 16, "b" * 16
    path = write_jsonl(
        "cycle.jsonl",
        traces_doc(span(1)),
        traces_doc(otlp_span(span_id=a, parent=b), otlp_span(span_id=b, parent=a)),
    )
    ingest(cli, path)
    [rej] = rejects(db)
    assert "cycle" in rej["reason"]
    assert rej["line"] == 2


def test_parent_cycle_across_files_is_refused(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    a, b, c, d = "a" * 16, "b" * 16, "c" * 16, "d" * 16
    first = write_jsonl("one.jsonl", traces_doc(otlp_span(span_id=a, parent=b)))
    second = write_jsonl(
        "two.jsonl",
        traces_doc(
            otlp_span(span_id=b, parent=a),  # closes A -> B -> A with the stored A
            otlp_span(span_id=c, parent=a),  # an ordinary child of the stored A
        ),
    )
    assert ingest(cli, first).exit_code == 0
    result = ingest(cli, second)
    assert summary(result)["rejected"] == 1 and summary(result)["spans"] == 1
    assert span_ids(db) == [a, c]
    [rej] = rejects(db)
    assert "cycle" in rej["reason"] and b in rej["reason"] and "stored before" in rej["reason"]
    # Three files, a longer loop: C -> D (new) and D -> B... B was refused, so D -> A closes it.
    third = write_jsonl("three.jsonl", traces_doc(otlp_span(span_id=d, parent=c)))
    assert summary(ingest(cli, third))["rejected"] == 0  # A <- C <- D: no cycle
    assert span_ids(db) == [a, c, d]
    # The trace's derived rows agree with what is stored (refused spans never materialised).
    assert rows(db, "SELECT span_count FROM aiobs_traces") == [(3,)]


def test_log_time_zero_falls_back_to_observed_time(
    cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    observed = T0 + 777
    path = write_jsonl(
        "logs.jsonl",
        logs_doc(
            log_record(1, timeUnixNano="0", observedTimeUnixNano=str(observed)),
            log_record(2, timeUnixNano=None, observedTimeUnixNano=observed + 1),
            log_record(3, timeUnixNano="0", observedTimeUnixNano="0"),  # no time at all
        ),
    )
    result = ingest(cli, path)
    assert result.exit_code == 5, result.output
    assert totals(result) == (1, 0, 2, 0, 0, 1)
    got = rows(db, "SELECT epoch_ns(Timestamp), Body FROM otel_logs ORDER BY Body")
    assert got == [(observed, "log 1"), (observed + 1, "log 2")]
    assert "timeUnixNano" in rejects(db)[0]["reason"]


def test_event_name_top_level_and_attribute(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    path = write_jsonl(
        "events.jsonl",
        logs_doc(
            log_record(1, eventName="gen_ai.evaluation.result"),
            log_record(2, attributes=[kv("event.name", "user.thumbs_down")]),
            log_record(3, eventName="top.wins", attributes=[kv("event.name", "attr.loses")]),
            log_record(4),
        ),
    )
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    got = rows(db, "SELECT Body, EventName FROM otel_logs ORDER BY Body")
    assert got == [
        ("log 1", "gen_ai.evaluation.result"),
        ("log 2", "user.thumbs_down"),
        ("log 3", "top.wins"),
        ("log 4", ""),
    ]


def test_enum_names_are_accepted(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    path = write_jsonl(
        "enums.jsonl",
        traces_doc(
            span(1, kind="SPAN_KIND_CLIENT", status={"code": "STATUS_CODE_ERROR", "message": "x"}),
            span(2, kind="SPAN_KIND_SERVER", status={"code": "STATUS_CODE_OK"}),
            span(3, kind=2, status={"code": 2}),
            span(4, kind=None, status={}),
        ),
        logs_doc(log_record(1, severityNumber="SEVERITY_NUMBER_WARN2")),
        metrics_doc(
            {
                "name": "requests",
                "sum": {
                    "aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                    "isMonotonic": True,
                    "dataPoints": [gauge_point(1)],
                },
            }
        ),
    )
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, 4, 1, 1, 0, 0)
    assert rows(
        db, "SELECT SpanKind, StatusCode, StatusMessage FROM otel_traces ORDER BY 1, 2"
    ) == [
        ("SPAN_KIND_CLIENT", "STATUS_CODE_ERROR", "x"),
        ("SPAN_KIND_SERVER", "STATUS_CODE_ERROR", ""),
        ("SPAN_KIND_SERVER", "STATUS_CODE_OK", ""),
        ("SPAN_KIND_UNSPECIFIED", "STATUS_CODE_UNSET", ""),
    ]
    assert rows(db, "SELECT SeverityNumber FROM otel_logs") == [(14,)]
    assert rows(db, "SELECT AggregationTemporality, IsMonotonic FROM otel_metrics_sum") == [
        (2, True)
    ]


def test_unknown_severity_name_is_rejected(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    path = write_jsonl(
        "sev.jsonl", logs_doc(log_record(1), log_record(2, severityNumber="SEVERITY_NUMBER_INFO99"))
    )
    result = ingest(cli, path)
    assert totals(result) == (1, 0, 1, 0, 0, 1)


def test_base64_and_upper_case_ids(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    trace = bytes(range(1, 17))
    sid, parent = bytes([0xAB] * 7 + [1]), bytes([0xCD] * 8)
    b64 = base64.b64encode
    path = write_jsonl(
        "ids.jsonl",
        traces_doc(
            otlp_span(
                trace_id=b64(trace).decode(),
                span_id=b64(sid).decode(),
                parent=b64(parent).decode(),
            ),
            otlp_span(trace_id=trace.hex().upper(), span_id=parent.hex().upper()),
        ),
        logs_doc(log_record(1, traceId=b64(trace).decode(), spanId=sid.hex().upper())),
    )
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, 2, 1, 0, 0, 0)
    assert rows(db, "SELECT TraceId, SpanId, ParentSpanId FROM otel_traces ORDER BY SpanId") == [
        (trace.hex(), sid.hex(), parent.hex()),
        (trace.hex(), parent.hex(), ""),
    ]
    assert rows(db, "SELECT TraceId, SpanId FROM otel_logs") == [(trace.hex(), sid.hex())]


def test_int64_as_numbers_and_strings(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    start = T0 + 123_456_789  # beyond float precision: must stay exact
    path = write_jsonl(
        "ints.jsonl",
        traces_doc(
            span(1, startTimeUnixNano=start, endTimeUnixNano=str(start + 5)),
            span(
                2,
                startTimeUnixNano=str(start),
                endTimeUnixNano=start + 7,
                attributes=[
                    {"key": "as_number", "value": {"intValue": 9_007_199_254_740_993}},
                    {"key": "as_string", "value": {"intValue": "-42"}},
                ],
            ),
            span(
                3,
                startTimeUnixNano={"low": start & 0xFFFFFFFF, "high": start >> 32},
                endTimeUnixNano=str(start + 1_000_000),
            ),
        ),
        logs_doc(log_record(1, timeUnixNano=start)),
        metrics_doc(
            gauge(
                "g",
                {"timeUnixNano": T0 + 1, "asInt": 7},
                {"timeUnixNano": str(T0 + 2), "asInt": "8"},
            ),
            {
                "name": "h",
                "histogram": {
                    "dataPoints": [
                        {
                            "timeUnixNano": T0,
                            "count": 3,
                            "sum": 6.0,
                            "bucketCounts": [1, "2"],
                            "explicitBounds": [5.0],
                        }
                    ]
                },
            },
        ),
    )
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, 3, 1, 3, 0, 0)
    assert rows(db, "SELECT epoch_ns(Timestamp), Duration FROM otel_traces ORDER BY SpanId") == [
        (start, 5),
        (start, 7),
        (start, 1_000_000),
    ]
    attrs = rows(db, f"SELECT SpanAttributes FROM otel_traces WHERE SpanId = '{2:016x}'")[0][0]
    assert attrs == {"as_number": "9007199254740993", "as_string": "-42"}
    assert rows(db, "SELECT epoch_ns(Timestamp) FROM otel_logs") == [(start,)]
    assert rows(db, "SELECT Value FROM otel_metrics_gauge ORDER BY Value") == [(7.0,), (8.0,)]
    assert rows(db, "SELECT Count, BucketCounts FROM otel_metrics_histogram") == [(3, [1, 2])]


def test_snake_case_keys(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    doc_spans = {
        "resource_spans": [
            {
                "resource": {"attributes": [kv("service.name", "snake")]},
                "scope_spans": [
                    {
                        "scope": {"name": "s", "version": "1"},
                        "spans": [
                            {
                                "trace_id": TRACE,
                                "span_id": "1" * 16,
                                "parent_span_id": "2" * 16,
                                "name": "snake",
                                "kind": "SPAN_KIND_INTERNAL",
                                "start_time_unix_nano": str(T0),
                                "end_time_unix_nano": str(T0 + 10),
                                "attributes": [{"key": "k", "value": {"string_value": "v"}}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    doc_logs = {
        "resource_logs": [
            {
                "scope_logs": [
                    {
                        "log_records": [
                            {
                                "time_unix_nano": str(T0),
                                "severity_number": 17,
                                "severity_text": "ERROR",
                                "event_name": "evt",
                                "body": {"string_value": "b"},
                            }
                        ]
                    }
                ]
            }
        ]
    }
    doc_metrics = {
        "resource_metrics": [
            {
                "scope_metrics": [
                    {
                        "metrics": [
                            {
                                "name": "m",
                                "sum": {
                                    "aggregation_temporality": 1,
                                    "is_monotonic": True,
                                    "data_points": [{"time_unix_nano": str(T0), "as_int": "3"}],
                                },
                            }
                        ]
                    }
                ]
            }
        ]
    }
    path = write_jsonl("snake.jsonl", doc_spans, doc_logs, doc_metrics)
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, 1, 1, 1, 0, 0)
    assert rows(
        db,
        "SELECT ServiceName, SpanId, ParentSpanId, SpanKind, Duration, SpanAttributes, ScopeName"
        " FROM otel_traces",
    ) == [("snake", "1" * 16, "2" * 16, "SPAN_KIND_INTERNAL", 10, {"k": "v"}, "s")]
    assert rows(db, "SELECT SeverityNumber, SeverityText, EventName, Body FROM otel_logs") == [
        (17, "ERROR", "evt", "b")
    ]
    assert rows(db, "SELECT Value, AggregationTemporality, IsMonotonic FROM otel_metrics_sum") == [
        (3.0, 1, True)
    ]


def test_instrumentation_library_spans(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [kv("service.name", "old")]},
                "instrumentationLibrarySpans": [
                    {
                        "instrumentationLibrary": {"name": "legacy-lib", "version": "0.9"},
                        "spans": [span(1), span(2)],
                    }
                ],
            }
        ]
    }
    path = write_jsonl("old.jsonl", doc)
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, 2, 0, 0, 0, 0)
    assert rows(db, "SELECT DISTINCT ServiceName, ScopeName, ScopeVersion FROM otel_traces") == [
        ("old", "legacy-lib", "0.9")
    ]


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(
            {"resourceSpans": [{"resource": "x", "scopeSpans": [{"spans": [span(9)]}]}]},
            id="resource-is-string",
        ),
        pytest.param({"resourceSpans": [{"scopeSpans": ["x"]}]}, id="scope-block-is-string"),
        pytest.param(
            {"resourceLogs": [{"scopeLogs": [{"scope": "x", "logRecords": [log_record(9)]}]}]},
            id="scope-is-string",
        ),
        pytest.param(
            {"trace": {}, "observations": ["x"]},
            id="langfuse-observation-is-string",
        ),
    ],
)
def test_non_object_blocks_are_rejected(
    doc: dict[str, Any], cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    path = write_jsonl("blocks.jsonl", traces_doc(span(1)), doc)
    result = ingest(cli, path)
    assert result.exit_code == 5, result.output
    assert totals(result) == (1, 1, 0, 0, 0, 1)
    assert rejects(db)[0]["line"] == 2


def _big_jsonl(path: Path, first: int, lines: int, extra: list[str] | None = None) -> int:
    """A traces-only JSON Lines file of ``lines`` lines of 100 spans (ids from ``first``)."""
    out = []
    for line in range(lines):
        ids = range(first + line * 100, first + (line + 1) * 100)
        out.append(json.dumps(traces_doc(*(span(n, attrs={"n": n}) for n in ids))))
    path.write_text("\n".join(out + (extra or [])) + "\n")
    return lines * 100


def test_large_files_keep_the_same_guarantees(cli: Cli, db: Path, tmp_path: Path) -> None:
    # Regular trace files of at least FAST_PATH_MIN_BYTES take the vectorised reader; irregular ones
    # fall back to the general decoder. Either way: exact counts, duplicates, rejects with lines.
    from aiobs.ingest.pipeline import FAST_PATH_MIN_BYTES

    lines = FAST_PATH_MIN_BYTES // 30_000 + 20  # ~33 KB a line
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    n = _big_jsonl(a, 1, lines)
    assert a.stat().st_size >= FAST_PATH_MIN_BYTES
    first = ingest(cli, a)
    assert first.exit_code == 0, first.output
    assert totals(first) == (1, n, 0, 0, 0, 0)
    assert totals(ingest(cli, a)) == (1, 0, 0, 0, n, 0)
    # half overlapping the first, with one span repeated inside it
    m = _big_jsonl(b, 1 + n // 2, lines, extra=[json.dumps(traces_doc(span(n + 5)))])
    assert totals(ingest(cli, b)) == (1, n // 2, 0, 0, m - n // 2 + 1, 0)
    # a garbage line in the middle: every other span lands, the line is named
    k = _big_jsonl(c, 10 * n, lines, extra=["garbage {"])
    result = ingest(cli, c)
    assert totals(result) == (1, k, 0, 0, 0, 1)
    [rej] = [r for r in rejects(db) if r["source"].endswith("c.jsonl")]
    assert rej["line"] == lines + 1 and "invalid JSON" in rej["reason"]
    assert counts(db)["otel_traces"] == n + n // 2 + k


def test_jsonl_with_mixed_signals_and_a_pretty_document(
    cli: Cli, db: Path, write_jsonl: WriteFn, tmp_path: Path
) -> None:
    mixed = write_jsonl(
        "mixed-signals.jsonl",
        metrics_doc(gauge("g", gauge_point(1))),
        traces_doc(span(1)),
        logs_doc(log_record(1)),
        traces_doc(span(2)),
    )
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(traces_doc(span(3), span(4)), indent=2))
    result = ingest(cli, mixed, pretty)
    assert result.exit_code == 0, result.output
    assert totals(result) == (2, 4, 1, 1, 0, 0)


def test_langfuse_export(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    doc = {
        "trace": {"id": TRACE, "name": "support", "userId": "u1", "sessionId": "s1"},
        "observations": [
            {
                "id": "1" * 16,
                "traceId": TRACE,
                "type": "GENERATION",
                "name": "chat",
                "startTime": "2025-11-13T02:13:20.000Z",
                "endTime": "2025-11-13T02:13:21.500Z",
                "model": "gpt-4o",
            },
            {
                "id": "2" * 16,
                "traceId": TRACE,
                "parentObservationId": "1" * 16,
                "type": "SPAN",
                "name": "tool",
                "startTime": "2025-11-13T02:13:20.100Z",
                "level": "ERROR",
            },
        ],
    }
    path = write_jsonl("langfuse.json", doc)
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, 2, 0, 0, 0, 0)
    assert rows(
        db, "SELECT SpanId, ParentSpanId, Duration, StatusCode FROM otel_traces ORDER BY SpanId"
    ) == [
        ("1" * 16, "", 1_500_000_000, "STATUS_CODE_UNSET"),
        ("2" * 16, "1" * 16, 0, "STATUS_CODE_ERROR"),
    ]


def test_langfuse_bad_observation_costs_only_itself(
    cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    doc = {
        "trace": {"id": TRACE},
        "observations": [
            {"id": "1" * 16, "name": "ok", "startTime": "2025-11-13T02:13:20Z"},
            {"id": "2" * 16, "name": "no start"},
        ],
    }
    result = ingest(cli, write_jsonl("lf.json", doc))
    assert totals(result) == (1, 1, 0, 0, 0, 1)


# ----------------------------------------------------------------------------------- protobuf


def _pb_traces(n_spans: int = 3, offset: int = 0) -> Any:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    msg = ExportTraceServiceRequest()
    rs = msg.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "pb"
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "pb-scope", "2.0"
    for i in range(n_spans):
        s = ss.spans.add()
        s.trace_id = bytes.fromhex(TRACE)
        s.span_id = (offset + i + 1).to_bytes(8, "big")
        if i:
            s.parent_span_id = (offset + 1).to_bytes(8, "big")
        s.name = f"pb span {offset + i}"
        s.kind = s.SPAN_KIND_CLIENT
        s.start_time_unix_nano = T0 + i
        s.end_time_unix_nano = T0 + i + 1000
        s.status.code = s.status.STATUS_CODE_ERROR
        s.status.message = "boom"
        a = s.attributes
        a.add(key="str").value.string_value = "v"
        a.add(key="int").value.int_value = 42
        a.add(key="dbl").value.double_value = 1.5
        a.add(key="bool").value.bool_value = True
        a.add(key="bytes").value.bytes_value = b"\x00\x01"
        arr = a.add(key="arr").value.array_value
        arr.values.add().string_value = "a"
        arr.values.add().int_value = 1
        kvl = a.add(key="map").value.kvlist_value
        kvl.values.add(key="x").value.bool_value = False
        ev = s.events.add(name="exception", time_unix_nano=T0 + i + 1)
        ev.attributes.add(key="exception.type").value.string_value = "ValueError"
    return msg


def _pb_logs() -> Any:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    msg = ExportLogsServiceRequest()
    rl = msg.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = "pb"
    sl = rl.scope_logs.add()
    r1 = sl.log_records.add(time_unix_nano=T0, severity_number=9, severity_text="INFO")
    r1.body.string_value = "hello"
    r1.event_name = "gen_ai.evaluation.result"
    r1.trace_id = bytes.fromhex(TRACE)
    r2 = sl.log_records.add(observed_time_unix_nano=T0 + 5, severity_number=17)
    r2.body.kvlist_value.values.add(key="role").value.string_value = "user"
    return msg


def _pb_metrics() -> Any:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    msg = ExportMetricsServiceRequest()
    rm = msg.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "pb"
    sm = rm.scope_metrics.add()
    g = sm.metrics.add(name="gpu.util", unit="%")
    g.gauge.data_points.add(time_unix_nano=T0, as_double=0.75)
    s = sm.metrics.add(name="requests")
    s.sum.aggregation_temporality = 2
    s.sum.is_monotonic = True
    s.sum.data_points.add(time_unix_nano=T0, start_time_unix_nano=T0 - 10, as_int=12)
    h = sm.metrics.add(name="gen_ai.client.operation.duration", unit="s")
    h.histogram.aggregation_temporality = 1
    h.histogram.data_points.add(
        time_unix_nano=T0, count=3, sum=4.5, bucket_counts=[1, 2, 0], explicit_bounds=[1.0, 2.0]
    )
    e = sm.metrics.add(name="latency.exp")
    ep = e.exponential_histogram.data_points.add(time_unix_nano=T0, count=2, scale=3, zero_count=1)
    ep.positive.offset = -2
    ep.positive.bucket_counts.extend([1])
    q = sm.metrics.add(name="latency.summary")
    qp = q.summary.data_points.add(time_unix_nano=T0, count=4, sum=8.0)
    qp.quantile_values.add(quantile=0.5, value=1.5)
    qp.quantile_values.add(quantile=0.99, value=3.0)
    return msg


def _framed(*payloads: bytes, compress: bool = False) -> bytes:
    out = b""
    for p in payloads:
        if compress:
            p = zstandard.ZstdCompressor().compress(p)
        out += struct.pack(">I", len(p)) + p
    return out


def _check_pb_store(db: Path, spans: int = 3, logs: int = 2, points: int = 5) -> None:
    c = counts(db)
    assert c["otel_traces"] == spans
    assert c["otel_logs"] == logs
    assert sum(c[t] for t in TABLES[2:]) == points
    if spans:
        got = rows(
            db,
            "SELECT TraceId, SpanId, SpanKind, StatusCode, StatusMessage, ServiceName, ScopeName,"
            ' Duration, SpanAttributes, "Events.Name" FROM otel_traces ORDER BY SpanId LIMIT 1',
        )[0]
        assert got[:8] == (
            TRACE,
            "0000000000000001",
            "SPAN_KIND_CLIENT",
            "STATUS_CODE_ERROR",
            "boom",
            "pb",
            "pb-scope",
            1000,
        )
        assert got[8] == {
            "str": "v",
            "int": "42",
            "dbl": "1.5",
            "bool": "true",
            "bytes": "AAE=",
            "arr": '["a",1]',
            "map": '{"x":false}',
        }
        assert got[9] == ["exception"]
    if logs:
        assert rows(
            db,
            "SELECT epoch_ns(Timestamp), Body, EventName, SeverityNumber FROM otel_logs ORDER BY 1",
        ) == [
            (T0, "hello", "gen_ai.evaluation.result", 9),
            (T0 + 5, '{"role":"user"}', "", 17),
        ]
    if points:
        assert rows(db, "SELECT MetricName, Value FROM otel_metrics_gauge") == [("gpu.util", 0.75)]
        assert rows(
            db, "SELECT Value, AggregationTemporality, IsMonotonic FROM otel_metrics_sum"
        ) == [(12.0, 2, True)]
        assert rows(
            db, "SELECT Count, Sum, BucketCounts, ExplicitBounds FROM otel_metrics_histogram"
        ) == [(3, 4.5, [1, 2, 0], [1.0, 2.0])]
        assert rows(
            db,
            "SELECT Count, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts"
            " FROM otel_metrics_exp_histogram",
        ) == [(2, 3, 1, -2, [1])]
        assert rows(
            db,
            'SELECT Count, "ValueAtQuantiles.Quantile", "ValueAtQuantiles.Value"'
            " FROM otel_metrics_summary",
        ) == [(4, [0.5, 0.99], [1.5, 3.0])]


@pytest.mark.parametrize(
    ("signal", "expected"),
    [("traces", (3, 0, 0)), ("logs", (0, 2, 0)), ("metrics", (0, 0, 5))],
)
def test_protobuf_single_message(
    signal: str, expected: tuple[int, int, int], cli: Cli, db: Path, tmp_path: Path
) -> None:
    build = {"traces": _pb_traces, "logs": _pb_logs, "metrics": _pb_metrics}[signal]
    path = tmp_path / f"{signal}.binpb"
    path.write_bytes(build().SerializeToString())
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, *expected, 0, 0)
    _check_pb_store(db, *expected)


def test_protobuf_length_prefixed_stream_mixing_signals(cli: Cli, db: Path, tmp_path: Path) -> None:
    path = tmp_path / "collector.proto"
    path.write_bytes(
        _framed(
            _pb_traces().SerializeToString(),
            _pb_logs().SerializeToString(),
            _pb_metrics().SerializeToString(),
        )
    )
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, 3, 2, 5, 0, 0)
    _check_pb_store(db)
    # the same stream again: all duplicates
    assert totals(ingest(cli, path)) == (1, 0, 0, 0, 10, 0)


def test_protobuf_per_message_zstd_frames(cli: Cli, db: Path, tmp_path: Path) -> None:
    # The file exporter's zstd compression: each message compressed on its own, then framed —
    # also with format: json.
    path = tmp_path / "collector.zstd-frames"
    path.write_bytes(
        _framed(
            _pb_traces().SerializeToString(),
            _pb_logs().SerializeToString(),
            _pb_metrics().SerializeToString(),
            json.dumps(traces_doc(span(100))).encode(),
            compress=True,
        )
    )
    result = ingest(cli, path)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, 4, 2, 5, 0, 0)


def test_protobuf_truncated_frame_keeps_earlier_frames(cli: Cli, db: Path, tmp_path: Path) -> None:
    data = _framed(_pb_traces().SerializeToString(), _pb_logs().SerializeToString())
    path = tmp_path / "cut.proto"
    path.write_bytes(data[:-10])
    result = ingest(cli, path)
    assert result.exit_code == 5, result.output
    assert f"{path} as otlp-protobuf-frames: 3 spans; 1 record refused: truncated frame" in (
        result.stderr
    )
    assert totals(result) == (1, 3, 0, 0, 0, 1)
    [rej] = rejects(db)
    assert rej["line"] == 2 and "truncated frame" in rej["reason"]


def test_whole_file_zstd_and_gzip(cli: Cli, db: Path, tmp_path: Path) -> None:
    jsonl = "\n".join(json.dumps(traces_doc(span(i))) for i in (1, 2, 3)) + "\n"
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl.encode()))
    stream = _framed(_pb_logs().SerializeToString(), _pb_metrics().SerializeToString())
    (tmp_path / "b.proto.zst").write_bytes(zstandard.ZstdCompressor().compress(stream))
    (tmp_path / "c.proto.gz").write_bytes(
        gzip.compress(_pb_traces(2, offset=10).SerializeToString())
    )
    result = ingest(
        cli, tmp_path / "a.jsonl.zst", tmp_path / "b.proto.zst", tmp_path / "c.proto.gz"
    )
    assert result.exit_code == 0, result.output
    assert totals(result) == (3, 5, 2, 5, 0, 0)


def test_protobuf_metric_is_not_mistaken_for_a_span(cli: Cli, db: Path, tmp_path: Path) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    msg = ExportMetricsServiceRequest()
    metric = msg.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name, metric.description = "llm.tokens.total", "tokens!!"  # 16 and 8 bytes
    metric.sum.data_points.add(time_unix_nano=T0, as_int=5)
    path = tmp_path / "m.binpb"
    path.write_bytes(msg.SerializeToString())
    result = ingest(cli, path)
    assert totals(result) == (1, 0, 0, 1, 0, 0)


def test_protobuf_bad_span_costs_only_itself(cli: Cli, db: Path, tmp_path: Path) -> None:
    msg = _pb_traces(2)
    msg.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01\x02\x03"
    path = tmp_path / "t.binpb"
    path.write_bytes(msg.SerializeToString())
    result = ingest(cli, path)
    assert totals(result) == (1, 1, 0, 0, 0, 1)


@pytest.mark.parametrize("framed", [False, True], ids=["single-message", "length-prefixed"])
def test_protobuf_message_that_starts_like_json(
    framed: bool, cli: Cli, db: Path, tmp_path: Path
) -> None:
    msg = _pb_traces(1)
    only = msg.resource_spans[0].scope_spans[0].spans[0]
    only.ClearField("attributes")
    only.ClearField("events")
    size = len(msg.resource_spans[0].SerializeToString())
    only.name += "x" * (123 - size)  # ResourceSpans of 123 bytes: the message starts b"\n{"
    data = msg.SerializeToString()
    assert data[:2] == b"\n{"
    path = tmp_path / "t.binpb"
    path.write_bytes(_framed(data) if framed else data)
    result = ingest(cli, path)
    assert totals(result) == (1, 1, 0, 0, 0, 0)


# -------------------------------------------------------------------------------- inputs


def test_stdin(cli: Cli, db: Path) -> None:
    data = json.dumps(traces_doc(span(1))) + "\n" + json.dumps(logs_doc(log_record(1))) + "\n"
    result = cli("ingest", "-", "-f", "json", input=data)
    assert result.exit_code == 0, result.output
    assert totals(result) == (1, 1, 1, 0, 0, 0)
    assert summary(result)["per_file"][0]["source"] == "<stdin>"
    assert rows(db, "SELECT source FROM aiobs_ingests") == [("<stdin>",)]
    # compressed on stdin too, and a protobuf stream
    again = cli("ingest", "-", "-f", "json", input=gzip.compress(data.encode()))
    assert totals(again) == (1, 0, 0, 0, 2, 0)
    pb = cli("ingest", "-", "-f", "json", input=_framed(_pb_metrics().SerializeToString()))
    assert totals(pb) == (1, 0, 0, 5, 0, 0)


def test_directory_recursive_and_glob(cli: Cli, db: Path, tmp_path: Path) -> None:
    root = tmp_path / "exports"
    (root / "2025" / "11").mkdir(parents=True)
    (root / "a.jsonl").write_text(json.dumps(traces_doc(span(1))) + "\n")
    (root / "2025" / "11" / "b.json").write_text(json.dumps(traces_doc(span(2))))
    (root / "2025" / "c.jsonl.gz").write_bytes(
        gzip.compress(json.dumps(traces_doc(span(3))).encode())
    )
    (root / "README.md").write_text("# not telemetry\n")
    (root / ".hidden.jsonl").write_text("garbage\n")
    result = ingest(cli, root)
    assert result.exit_code == 0, result.output
    assert totals(result) == (3, 3, 0, 0, 0, 0)
    sources = {Path(r[0]).name for r in rows(db, "SELECT source FROM aiobs_ingests")}
    assert sources == {"a.jsonl", "b.json", "c.jsonl.gz"}

    (root / "d.jsonl").write_text(json.dumps(traces_doc(span(4))) + "\n")
    globbed = ingest(cli, str(root / "*.jsonl"))
    assert globbed.exit_code == 0, globbed.output
    assert totals(globbed) == (2, 1, 0, 0, 1, 0)  # a.jsonl (duplicate) + d.jsonl
    recursive = ingest(cli, str(root / "**" / "*.json*"))
    assert totals(recursive)[0] == 4


def test_missing_path_is_refused_and_named(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    missing = db.parent / "nowhere" / "x.jsonl"
    result = ingest(cli, missing)
    assert result.exit_code == 2
    assert f"{missing}: no such file or directory" in result.stderr
    assert summary(result)["files"] == 0
    no_glob = ingest(cli, str(db.parent / "*.nomatch"))
    assert no_glob.exit_code == 2 and "no files match" in no_glob.stderr
    # a good file alongside a missing one still lands: some landed, some refused (exit 5)
    good = write_jsonl("good.jsonl", traces_doc(span(1)))
    both = ingest(cli, good, missing)
    assert both.exit_code == 5 and summary(both)["outcome"] == "partial"
    assert totals(both) == (1, 1, 0, 0, 0, 0)
    assert str(missing) in both.stderr


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_unreadable_input_is_refused_and_others_land(
    cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    # /proc/self/mem opens fine and then fails every read at offset 0 with EIO: a real I/O error.
    first = write_jsonl("first.jsonl", traces_doc(span(1)))
    last = write_jsonl("last.jsonl", traces_doc(span(2)))
    result = ingest(cli, first, "/proc/self/mem", last)
    assert result.exit_code == 5
    assert "/proc/self/mem" in result.stderr
    assert span_ids(db) == [f"{1:016x}", f"{2:016x}"]


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_read_failure_inside_a_file_leaves_store_as_before_that_file(
    cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    first = write_jsonl("first.jsonl", traces_doc(span(1)), logs_doc(log_record(1)))
    result = cli("ingest", str(first), "/proc/self/mem")
    assert result.exit_code != 0
    c = counts(db)
    assert {t: c[t] for t in TABLES if c[t]} == {"otel_traces": 1, "otel_logs": 1}
    # nothing of the failed file but, at most, the note of why it failed
    assert all(r["source"] == "/proc/self/mem" for r in rejects(db))
    assert rows(db, "SELECT source FROM aiobs_ingests") == [(str(first),)]


def test_subprocess_summary_and_exit_codes(db: Path, write_jsonl: WriteFn) -> None:
    good = write_jsonl("good.jsonl", traces_doc(span(1), span(2)), raw_lines=["{broken"])
    ok = run_aiobs(db, "ingest", str(good), "-f", "json")
    assert ok.returncode == 5, ok.stderr
    assert tuple(json.loads(ok.stdout)[k] for k in SUMMARY_KEYS) == (1, 2, 0, 0, 0, 1)
    assert f"{good} as otlp-json-lines: 2 spans; 1 record refused: invalid JSON" in ok.stderr
    assert json.loads(ok.stdout)["outcome"] == "partial"
    strict = run_aiobs(db, "ingest", "--strict", str(good), "-f", "json")
    assert strict.returncode == 2
    assert tuple(json.loads(strict.stdout)[k] for k in SUMMARY_KEYS) == (1, 0, 0, 0, 2, 1)
    missing = run_aiobs(db, "ingest", str(db.parent / "missing.jsonl"))
    assert missing.returncode == 2
    assert "missing.jsonl: no such file or directory" in missing.stderr
    assert "Traceback" not in ok.stderr + strict.stderr + missing.stderr


# ------------------------------------------------------------------ transactions and the store


def _big_first_line() -> bytes:
    """One JSON line with more spans than one batch, so the pipeline flushes inside the file."""
    from aiobs.ingest.pipeline import BATCH_ROWS

    spans = [
        {
            "traceId": TRACE,
            "spanId": f"{n:016x}",
            "name": "s",
            "startTimeUnixNano": str(T0 + n),
            "endTimeUnixNano": str(T0 + n + 1),
        }
        for n in range(1000, 1000 + BATCH_ROWS + 1)
    ]
    return json.dumps(traces_doc(*spans)).encode() + b"\n"


def _start_ingest_from_fifo(db: Path, fifo: Path, *before: Path) -> subprocess.Popen[str]:
    """``aiobs ingest [before…] fifo`` in a real process, with Ctrl-C raising KeyboardInterrupt.

    (A process started from a non-interactive shell's background job inherits SIGINT ignored, and
    Python then installs no KeyboardInterrupt handler; set it explicitly.)
    """
    os.mkfifo(fifo)
    args = ["aiobs", "--db", str(db), "ingest", *map(str, before), str(fifo)]
    boot = (
        "import runpy, signal, sys;"
        "signal.signal(signal.SIGINT, signal.default_int_handler);"
        f"sys.argv = {args!r};"
        "runpy.run_module('aiobs', run_name='__main__')"
    )
    return subprocess.Popen(
        [sys.executable, "-c", boot],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env_without_aiobs(), "NO_COLOR": "1"},
    )


def test_second_writer_gets_exit_3_naming_the_store(
    cli: Cli, db: Path, tmp_path: Path, write_jsonl: WriteFn
) -> None:
    fifo = tmp_path / "live.jsonl"
    proc = _start_ingest_from_fifo(db, fifo)
    try:
        # Opening the FIFO for writing returns only once the other process has opened it for
        # reading — and it opens the store (taking the write lock) before it opens its inputs.
        with fifo.open("wb") as pipe:
            other = write_jsonl("other.jsonl", traces_doc(span(2)))
            blocked = ingest(cli, other)
            assert blocked.exit_code == 3, blocked.output
            assert str(db) in blocked.stderr and "locked" in blocked.stderr
            reader = cli("stats")
            assert reader.exit_code == 3 and str(db) in reader.stderr
            pipe.write(json.dumps(traces_doc(span(1))).encode() + b"\n")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0, err
    assert span_ids(db) == [f"{1:016x}"]
    assert ingest(cli, other).exit_code == 0  # and once the writer is gone, it works


def _signal_main_thread(proc: subprocess.Popen[str], sig: int) -> None:
    """Ctrl-C aimed at the main thread, where Python handles it (a process-directed SIGINT may be
    taken by one of DuckDB's worker threads)."""
    if sig == signal.SIGKILL:
        proc.kill()
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "tgkill"):
        proc.kill()
        pytest.skip("needs glibc tgkill")
    if libc.tgkill(proc.pid, proc.pid, int(sig)) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_crash_mid_file_leaves_store_as_before_that_file(
    sig: int, db: Path, tmp_path: Path, write_jsonl: WriteFn
) -> None:
    first = write_jsonl("first.jsonl", traces_doc(span(1)), logs_doc(log_record(1)))
    fifo = tmp_path / "live.jsonl"
    proc = _start_ingest_from_fifo(db, fifo, first)
    try:
        with fifo.open("wb") as pipe:
            # Line 1 holds more spans than one batch, so they are written into the open transaction;
            # then 4 MiB of an unfinished line 2. That write returns only once the reader has taken
            # all but a pipe's worth of it, i.e. after it decoded and flushed line 1.
            pipe.write(_big_first_line())
            pipe.write(b" " * (4 << 20))
            pipe.flush()
            _signal_main_thread(proc, sig)
        # Closing the pipe wakes the reader should the signal have landed just before it blocked
        # in read() (Python then raises KeyboardInterrupt at its next bytecode, before any commit).
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err
        assert "aiobs: interrupted" in err
        assert "Traceback" not in err
    c = counts(db)
    assert (c["otel_traces"], c["otel_logs"], c["aiobs_ingests"], c["aiobs_rejects"]) == (
        1,
        1,
        1,
        0,
    )
    assert rows(db, "SELECT source FROM aiobs_ingests") == [(str(first),)]


def test_newer_schema_is_refused_with_exit_3(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    path = write_jsonl("a.jsonl", traces_doc(span(1)))
    assert ingest(cli, path).exit_code == 0
    con = duckdb.connect(str(db))
    con.execute(
        "UPDATE aiobs_schema_migrations SET version = 999 WHERE version = (SELECT max(version) FROM aiobs_schema_migrations)"
    )
    con.close()
    for args in (("ingest", str(path)), ("stats",), ("query", "select 1")):
        result = cli(*args)
        assert result.exit_code == 3, (args, result.output)
        assert "newer" in result.stderr and "999" in result.stderr and str(db) in result.stderr
    proc = run_aiobs(db, "stats")
    assert proc.returncode == 3 and "newer" in proc.stderr
    assert rows(db, "SELECT max(version) FROM aiobs_schema_migrations") == [(999,)]


def test_migrations_from_a_blank_file(cli: Cli, db: Path) -> None:
    from aiobs.store.migrations import LATEST, MIGRATIONS

    duckdb.connect(str(db)).close()  # a valid, empty DuckDB file
    result = cli("query", "select count(*) as n from otel_traces", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 0}]
    assert rows(db, "SELECT version, name FROM aiobs_schema_migrations ORDER BY version") == [
        (i + 1, name) for i, (name, _) in enumerate(MIGRATIONS)
    ]
    tables = {r[0] for r in rows(db, "SELECT table_name FROM duckdb_tables()")}
    assert {*TABLES, "aiobs_ingests", "aiobs_rejects"} <= tables
    assert len(MIGRATIONS) == LATEST


def test_migrations_from_an_older_store(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    from aiobs.store.migrations import LATEST

    path = write_jsonl("a.jsonl", traces_doc(span(1)))
    assert ingest(cli, path).exit_code == 0
    # Simulate a store written by the first release (schema version 1): forget every later
    # migration and drop what they created.
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM aiobs_schema_migrations WHERE version > 1")
    con.execute("DROP TABLE aiobs_ingests")
    con.execute("DROP TABLE aiobs_rejects")
    con.execute("DROP SEQUENCE aiobs_ingest_seq")
    con.execute("DROP TABLE aiobs_span_keys")
    con.execute("DROP TABLE aiobs_meta")
    con.execute("DROP TABLE aiobs_spans")
    con.execute("DROP TABLE aiobs_trace_log_times")
    con.close()
    assert rows(db, "SELECT max(version) FROM aiobs_schema_migrations") == [(1,)]
    reader = cli("query", "select count(*) as n from otel_traces", "-f", "json")
    assert reader.exit_code == 0, reader.output
    assert json.loads(reader.stdout) == [{"n": 1}]  # old data kept
    assert rows(db, "SELECT max(version) FROM aiobs_schema_migrations") == [(LATEST,)]
    assert rows(db, "SELECT count(*) FROM aiobs_ingests") == [(0,)]
    assert ("redacted", "BIGINT") in rows(
        db,
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'aiobs_ingests'",
    )
    # The span-key index was backfilled from the spans already stored: re-ingesting adds nothing.
    assert rows(db, "SELECT count(*) FROM aiobs_span_keys") == [(1,)]
    again = ingest(cli, path)
    assert again.exit_code == 0 and totals(again) == (1, 0, 0, 0, 1, 0)
    more = write_jsonl("b.jsonl", traces_doc(span(2)), raw_lines=["bad"])
    result = ingest(cli, more)
    assert result.exit_code == 5, result.output
    assert totals(result) == (1, 1, 0, 0, 0, 1)
    assert counts(db)["aiobs_rejects"] == 1


def test_replay_finds_a_traces_logs_whenever_they_were_written(
    cli: Cli, db: Path, write_jsonl: WriteFn
) -> None:
    """Replay reads a trace's logs within the times ingest recorded for them
    (aiobs_trace_log_times): records written with the trace, a day later in another file, and
    in a store from before that table (the migration backfills it) all show."""
    day = 86_400 * 10**9
    # The last record, with nanoseconds below the microsecond (a bound cut to microseconds,
    # as a Python datetime would, misses it).
    evaluation = log_record(
        7,
        timeUnixNano=str(T0 + day + 999),
        eventName="gen_ai.evaluation.result",
        spanId=f"{1:016x}",
    )
    evaluation["attributes"] = [kv("gen_ai.evaluation.name", "relevance")]
    other_trace = log_record(5, traceId="1" * 32)
    first = write_jsonl("a.jsonl", traces_doc(span(1)), logs_doc(log_record(2), other_trace))
    assert ingest(cli, first).exit_code == 0
    assert ingest(cli, write_jsonl("b.jsonl", logs_doc(log_record(3), evaluation))).exit_code == 0

    def context() -> tuple[list[str], list[Any]]:
        replay = cli.json("replay", TRACE)["context"]
        return [log["body"] for log in replay["logs"]], [e["name"] for e in replay["evaluations"]]

    assert context() == (["log 2", "log 3"], ["relevance"])
    assert rows(db, "SELECT count(*) FROM aiobs_trace_log_times WHERE trace_id = ?", [TRACE]) == [
        (2,)
    ]
    # A store from before migration 6: the times are backfilled from the stored records.
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE aiobs_trace_log_times")
    con.execute("ALTER TABLE aiobs_ingests DROP COLUMN redacted")  # migration 7's
    con.execute("DELETE FROM aiobs_schema_migrations WHERE version >= 6")
    con.close()
    assert context() == (["log 2", "log 3"], ["relevance"])
    assert rows(db, "SELECT count(*) FROM aiobs_trace_log_times") == [(2,)]


# ------------------------------------------------------------------ readers and the writer's lock


def _aiobs(db: Path, *args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aiobs", "--db", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env_without_aiobs(), "NO_COLOR": "1"},
        **kw,
    )


def _until(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Poll a condition another process brings about (its progress is not ours to time)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_waiting_reader_gets_in_between_an_ingests_files(
    cli: Cli, db: Path, tmp_path: Path, write_jsonl: WriteFn
) -> None:
    assert ingest(cli, write_jsonl("seed.jsonl", traces_doc(span(1)))).exit_code == 0
    fifo, second = tmp_path / "live.jsonl", write_jsonl("second.jsonl", traces_doc(span(3)))
    os.mkfifo(fifo)
    writer = _aiobs(db, "ingest", str(fifo), str(second), "-f", "json")
    reader: subprocess.Popen[str] | None = None
    try:
        with fifo.open("wb") as pipe:  # returns once the writer, holding the lock, opened it
            at_once = run_aiobs(db, "traces", "-f", "json")  # a script: no --wait, exit 3 now
            assert at_once.returncode == 3, at_once.stderr
            said = f"store {db} is locked by an aiobs writer (`aiobs ingest {fifo} "
            assert said in at_once.stderr, at_once.stderr  # the command line, cut at 100
            assert f"PID {writer.pid})" in at_once.stderr and "--wait" in at_once.stderr
            count = "select count(*) as spans from otel_traces"
            reader = _aiobs(db, "--wait", "60", "query", count, "-f", "json")
            marker = db.with_name(db.name + ".waiting") / str(reader.pid)
            _until(marker.exists, "the reader says it is waiting")
            pipe.write(json.dumps(traces_doc(span(2))).encode() + b"\n")
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        assert "locked by an aiobs writer" in err and "waiting up to 60 s (--wait)" in err
        # In after the first file and before the second: the writer waits for it.
        assert json.loads(out) == [{"spans": 2}]
        written, werr = writer.communicate(timeout=60)
    finally:
        for proc in (writer, reader):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    assert writer.returncode == 0, werr
    assert json.loads(written)["spans"] == 2
    assert span_ids(db) == [f"{n:016x}" for n in (1, 2, 3)]
    assert not db.with_name(db.name + ".waiting").exists()  # markers cleaned up


def test_the_lock_holder_is_named_truthfully(cli: Cli, db: Path, write_jsonl: WriteFn) -> None:
    assert ingest(cli, write_jsonl("seed.jsonl", traces_doc(span(1)))).exit_code == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(db)!r});"
         " print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        waited = run_aiobs(db, "--wait", "0.6", "stats")
        took = time.monotonic() - started
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    assert waited.returncode == 3, waited.stderr
    assert f"locked by another program (`{Path(sys.executable).name} -c import duckdb" in (
        waited.stderr
    )
    assert f"PID {holder.pid}) (waited 0.6 s)" in waited.stderr
    assert took >= 0.6  # it kept trying for the --wait it was given
    assert "close that program's connection" in waited.stderr
    assert run_aiobs(db, "stats").returncode == 0  # free again


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["/usr/bin/python3", "-m", "aiobs", "--db", "s.duckdb", "ingest", "x"], "an aiobs writer"),
        ([".venv/bin/aiobs", "--wait", "5", "traces"], "an aiobs reader"),
        (["/venv/bin/aiobs", "demo"], "an aiobs writer"),
        (["python3", "-c", "import duckdb"], "another program"),
    ],
)
def test_what_holds_the_lock_from_its_command_line(argv: list[str], kind: str) -> None:
    from aiobs.store.connection import lock_holder, process

    holder = process(4242, argv)
    assert (holder.pid, holder.kind) == (4242, kind)
    shown = " ".join(a for a in argv[argv.index("aiobs") + 1 if "aiobs" in argv else 1 :])
    assert holder.describe().startswith(f"{kind} (`" if "aiobs" in kind else kind), shown
    # DuckDB's message without a PID, or a PID that is gone: said as no more than is known.
    assert lock_holder("Conflicting lock is held").describe() == "another process"
    assert lock_holder("lock is held in x (PID 999999999)").describe() == (
        "another process (PID 999999999)"
    )


# ---------------------------------------------------------------------- outcomes a script reads


def test_a_directory_of_good_damaged_and_foreign_files_is_a_partial_ingest(
    cli: Cli, db: Path, tmp_path: Path
) -> None:
    """Each file's outcome, what it was read as and why records were refused is on stderr and in
    the JSON; what is not telemetry is listed as skipped; some landed + some refused is exit 5."""
    folder = tmp_path / "export"
    (folder / ".cache").mkdir(parents=True)
    (folder / ".cache" / "x.jsonl").write_text("{}\n")
    good = folder / "a-good.jsonl"
    good.write_text(json.dumps(traces_doc(span(1))) + "\n" + json.dumps(logs_doc(log_record(1))))
    whole = gzip.compress((json.dumps(traces_doc(span(2))) + "\n").encode() * 40)
    (folder / "b-cut.jsonl.gz").write_bytes(whole[: len(whole) - 8])  # the gzip trailer cut off
    (folder / "c-bad.json").write_text('{"hello": "world"}')
    (folder / "d.pb").write_bytes(_pb_traces(2, offset=10).SerializeToString())
    langfuse = REPO / "fixtures" / "conventions" / "langfuse.trace.json"
    (folder / "e.trace.json").write_bytes(langfuse.read_bytes())
    (folder / "README.txt").write_text("what this export is\n")
    (folder / "manifest.json").write_text("{}")
    result = ingest(cli, folder)
    assert result.exit_code == 5, result.output
    data = summary(result)
    assert data["outcome"] == "partial"
    by_name = {Path(f["source"]).name: f for f in data["per_file"]}
    assert {n: (f["format"], f["outcome"]) for n, f in by_name.items()} == {
        "a-good.jsonl": ("otlp-json-lines", "landed"),
        "b-cut.jsonl.gz": ("otlp-json-lines (gzip)", "partial"),
        "c-bad.json": ("json", "refused"),  # JSON, but not OTLP
        "d.pb": ("otlp-protobuf", "landed"),
        "e.trace.json": ("langfuse export", "landed"),
    }
    not_otlp = (
        "not OTLP: expected resourceSpans, resourceLogs or resourceMetrics, a Jaeger trace or API"
        " answer, or a Langfuse export (keys: hello)"
    )
    assert by_name["c-bad.json"]["top_reasons"] == [{"reason": not_otlp, "count": 1}]
    cut = "truncated or corrupt gzip stream: Compressed file ended before the end-of-stream marker"
    assert by_name["b-cut.jsonl.gz"]["top_reasons"] == [
        {"reason": f"{cut} was reached", "count": 1}
    ]
    # 40 copies of one span: one stored, 39 duplicates; the cut trailer refused.
    assert (by_name["b-cut.jsonl.gz"]["spans"], by_name["b-cut.jsonl.gz"]["duplicates"]) == (1, 39)
    assert data["skipped"] == [
        {"path": str(folder / ".cache") + "/", "reason": "hidden"},
        {"path": str(folder / "README.txt"), "reason": "text, not telemetry"},
        {"path": str(folder / "manifest.json"),
         "reason": "the ground truth aiobs demo writes beside its telemetry"},
    ]  # fmt: skip
    err = result.stderr
    assert f"aiobs: ingest: {good} as otlp-json-lines: 1 span, 1 log record\n" in err
    assert f"ingest: {folder / 'c-bad.json'} as json: nothing landed; 1 record refused: " in err
    assert f"1 span, 39 duplicates; 1 record refused: {cut[:80]}" in err  # a reason cut at 100
    assert f"skipped 3 files: {folder / '.cache'}/ (hidden), {folder / 'README.txt'} (text" in err

    nothing = ingest(cli, folder / "c-bad.json")
    assert nothing.exit_code == 2 and summary(nothing)["outcome"] == "nothing"
    again = ingest(cli, good)  # already stored: nothing new, nothing refused
    assert again.exit_code == 0 and summary(again)["outcome"] == "all"
    assert f"{good} as otlp-json-lines: 2 duplicates\n" in again.stderr
    strict = ingest(cli, "--strict", folder)
    assert strict.exit_code == 2 and summary(strict)["outcome"] == "partial"
