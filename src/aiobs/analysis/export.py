"""Export a selection of traces: OTLP JSON Lines (round-trips through ``aiobs ingest``) or Parquet
with the exporter's exact table and column names (loads into the ClickHouse exporter's tables).

Must not import typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from aiobs.analysis.browse import where_errors
from aiobs.analysis.filters import TraceFilter
from aiobs.backend import QueryError
from aiobs.store import schema

if TYPE_CHECKING:
    from aiobs.backend import Backend

SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
STATUS_CODES = {
    "STATUS_CODE_UNSET": 0,
    "STATUS_CODE_OK": 1,
    "STATUS_CODE_ERROR": 2,
    "Unset": 0,
    "Ok": 1,
    "Error": 2,
}
BATCH = 500


def select_traces(store: Backend, filt: TraceFilter, limit: int | None = None) -> int:
    """Fill the temp table ``aiobs_export_ids`` with the selected trace ids; returns how many."""
    where, params = filt.sql()
    # Created from its query (not declared, then filled): the one form of a scratch table that
    # every engine's dialect renders (ClickHouse's temporary tables take no key).
    create = "CREATE OR REPLACE TEMP TABLE aiobs_export_ids AS"
    if filt.is_empty and not limit:
        store.execute(f"{create} SELECT DISTINCT TraceId AS trace_id FROM otel_traces")
    else:  # a --limit keeps the newest traces, whatever the filter (it kept any before)
        sql = f"{create} SELECT t.trace_id FROM ai_traces t WHERE {where}"
        with where_errors(filt.where):
            store.execute(
                sql + (f" ORDER BY t.start_time DESC LIMIT {int(limit)}" if limit else ""), params
            )
    row = store.one("SELECT count(*) FROM aiobs_export_ids")
    return int(row[0]) if row else 0


def _kv(attrs: dict[str, str] | None) -> list[dict[str, Any]]:
    return [{"key": k, "value": {"stringValue": v}} for k, v in (attrs or {}).items()]


def _scope(
    name: str | None, version: str | None, attrs: dict[str, str] | None = None
) -> dict[str, Any]:
    scope: dict[str, Any] = {"name": name or ""}
    if version:
        scope["version"] = version
    if attrs:
        scope["attributes"] = _kv(attrs)
    return scope


def _epoch_ns_list(store: Backend, column: str) -> str:
    """``list_transform(column, epoch_ns)`` in the lambda syntax this DuckDB speaks (1.3 added
    ``lambda x: …`` and deprecates ``x -> …``; older releases only know the arrow)."""
    modern = f'list_transform("{column}", lambda x: epoch_ns(x))'
    try:
        store.execute(f"SELECT {modern} FROM otel_traces LIMIT 0")
        return modern
    except QueryError:
        return f'list_transform("{column}", x -> epoch_ns(x))'


def _span_lines(store: Backend) -> Iterator[bytes]:
    batches = store.batches(
        f"""
        SELECT ResourceAttributes, ScopeName, ScopeVersion, TraceId, SpanId, ParentSpanId, TraceState,
               SpanName, SpanKind, epoch_ns(Timestamp), Duration, SpanAttributes, StatusCode,
               StatusMessage, {_epoch_ns_list(store, "Events.Timestamp")}, "Events.Name",
               "Events.Attributes", "Links.TraceId", "Links.SpanId", "Links.TraceState",
               "Links.Attributes"
        FROM otel_traces WHERE TraceId IN (SELECT trace_id FROM aiobs_export_ids)
        ORDER BY ResourceAttributes::VARCHAR, ScopeName, ScopeVersion, TraceId, Timestamp, SpanId
        """,
        size=2000,
    )
    group: tuple[Any, ...] | None = None
    spans: list[dict[str, Any]] = []

    def flush() -> bytes:
        assert group is not None
        resource, scope_name, scope_version = group
        doc = {
            "resourceSpans": [
                {
                    "resource": {"attributes": _kv(resource)},
                    "scopeSpans": [{"scope": _scope(scope_name, scope_version), "spans": spans}],
                }
            ]
        }
        return orjson.dumps(doc)

    for rows in batches:
        for r in rows:
            key = (r[0], r[1], r[2])
            if group is not None and (key != group or len(spans) >= BATCH):
                yield flush()
                spans = []
            group = key
            start = int(r[9])
            span: dict[str, Any] = {
                "traceId": r[3],
                "spanId": r[4],
                "parentSpanId": r[5] or "",
                "name": r[7],
                "kind": SPAN_KINDS.get(r[8], 0),
                "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(start + int(r[10] or 0)),
                "attributes": _kv(r[11]),
                "status": {"code": STATUS_CODES.get(r[12], 0), "message": r[13] or ""},
            }
            if r[6]:
                span["traceState"] = r[6]
            if r[15]:
                span["events"] = [
                    {"timeUnixNano": str(t), "name": n, "attributes": _kv(a)}
                    for t, n, a in zip(r[14], r[15], r[16], strict=False)
                ]
            if r[17]:
                span["links"] = [
                    {"traceId": t, "spanId": s, "traceState": ts or "", "attributes": _kv(a)}
                    for t, s, ts, a in zip(r[17], r[18], r[19], r[20], strict=False)
                ]
            spans.append(span)
    if spans:
        yield flush()


def _log_lines(store: Backend) -> Iterator[bytes]:
    batches = store.batches(
        """
        SELECT ResourceAttributes, ResourceSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes,
               ScopeSchemaUrl, epoch_ns(Timestamp), TraceId, SpanId, TraceFlags, SeverityText,
               SeverityNumber, Body, LogAttributes, EventName
        FROM otel_logs WHERE TraceId IN (SELECT trace_id FROM aiobs_export_ids)
        ORDER BY ResourceAttributes::VARCHAR, ScopeName, ScopeVersion, Timestamp, TraceId,
                 SpanId, EventName, Body
        """,
        size=2000,
    )  # records written in the same nanosecond in one order, whichever engine sorts them
    group: tuple[Any, ...] | None = None
    records: list[dict[str, Any]] = []

    def flush() -> bytes:
        assert group is not None
        resource, resource_url, name, version, scope_attrs, scope_url = group
        block: dict[str, Any] = {"scope": _scope(name, version, scope_attrs), "logRecords": records}
        if scope_url:
            block["schemaUrl"] = scope_url
        entry: dict[str, Any] = {"resource": {"attributes": _kv(resource)}, "scopeLogs": [block]}
        if resource_url:
            entry["schemaUrl"] = resource_url
        return orjson.dumps({"resourceLogs": [entry]})

    for rows in batches:
        for r in rows:
            key = (r[0], r[1], r[2], r[3], r[4], r[5])
            if group is not None and (key != group or len(records) >= BATCH):
                yield flush()
                records = []
            group = key
            rec: dict[str, Any] = {
                "timeUnixNano": str(int(r[6])),
                "observedTimeUnixNano": str(int(r[6])),
                "traceId": r[7] or "",
                "spanId": r[8] or "",
                "flags": int(r[9] or 0),
                "severityText": r[10] or "",
                "severityNumber": int(r[11] or 0),
                "body": {"stringValue": r[12] or ""},
                "attributes": _kv(r[13]),
            }
            if r[14]:
                rec["eventName"] = r[14]
            records.append(rec)
    if records:
        yield flush()


def export_otlp(store: Backend, out: Path | BinaryIO) -> dict[str, int]:
    """The selected traces and their logs as OTLP JSON Lines (collector file-exporter style),
    into the file ``out`` or onto a binary stream (stdout for ``--out -``)."""
    if isinstance(out, Path):
        with out.open("wb") as fh:
            return export_otlp(store, fh)
    counts = {"span_lines": 0, "log_lines": 0}
    for line in _span_lines(store):
        out.write(line + b"\n")
        counts["span_lines"] += 1
    for line in _log_lines(store):
        out.write(line + b"\n")
        counts["log_lines"] += 1
    out.flush()
    return counts


def export_parquet(store: Backend, out_dir: Path, *, everything: bool) -> dict[str, int]:
    """One ``<table>.parquet`` per exporter table, columns exactly as the exporter's DDL.

    With a selection, traces and logs are those of the selected traces and metrics those in the
    selection's time range; without one (``everything``), whole tables."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    window = store.one(
        "SELECT min(Timestamp), max(Timestamp + to_microseconds((Duration / 1000)::BIGINT))"
        " FROM otel_traces WHERE TraceId IN (SELECT trace_id FROM aiobs_export_ids)"
    )
    # COPY takes no prepared parameters: the window's ends are timestamps read from the store.
    lo, hi = (
        f"'{v.isoformat()}'::TIMESTAMP_NS" if window and v else "NULL"
        for v in (window or (None, None))
    )
    for table in schema.TELEMETRY_TABLES:
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        if everything:
            where = "TRUE"
        elif table.name in ("otel_traces", "otel_logs"):
            where = "TraceId IN (SELECT trace_id FROM aiobs_export_ids)"
        else:
            where = f"TimeUnix BETWEEN {lo} AND {hi}"
        row = store.one(f"SELECT count(*) FROM {table.name} WHERE {where}")
        counts[table.name] = int(row[0]) if row else 0
        target = out_dir / f"{table.name}.parquet"
        store.copy_parquet(
            f"SELECT {cols} FROM {table.name} WHERE {where}", str(target), "COMPRESSION zstd"
        )
    return counts
