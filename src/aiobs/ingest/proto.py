"""OTLP protobuf → the same dict shape as OTLP/JSON, via opentelemetry-proto.

The three ``Export*ServiceRequest`` messages share their outer wire shape (field 1: repeated resource
block; in it, field 2: repeated scope block), so a bare message does not say which signal it holds.
We parse it as each and keep the reading in which some innermost record is well-formed (a bad one is refused on its own later): a span with a
16-byte trace id, an 8-byte span id and a start time; metrics a name and a data kind; logs a time or a body.

Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

from typing import Any


def _looks_like_traces(msg: Any) -> bool:
    # One well-formed span is enough (a bad one is refused later, on its own). A start time is
    # required: metrics misread as spans put name/description into the id fields but never set it.
    spans = [s for rs in msg.resource_spans for ss in rs.scope_spans for s in ss.spans]
    return any(
        len(s.trace_id) == 16 and len(s.span_id) == 8 and s.start_time_unix_nano > 0 for s in spans
    )


def _looks_like_metrics(msg: Any) -> bool:
    metrics = [m for rm in msg.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    return any(m.name and m.WhichOneof("data") for m in metrics)


def _looks_like_logs(msg: Any) -> bool:
    records = [r for rl in msg.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    return any(r.time_unix_nano or r.observed_time_unix_nano or r.HasField("body") for r in records)


def decode_message(data: bytes) -> dict[str, Any]:
    """Decode one OTLP protobuf export message; ``ValueError`` when it is none of the three."""
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    candidates = (
        (ExportTraceServiceRequest, _looks_like_traces),
        (ExportMetricsServiceRequest, _looks_like_metrics),
        (ExportLogsServiceRequest, _looks_like_logs),
    )
    errors = []
    for cls, looks_right in candidates:
        msg = cls()
        try:
            msg.ParseFromString(data)
        except DecodeError as exc:
            errors.append(f"{cls.__name__}: {exc}")
            continue
        if looks_right(msg):
            result: dict[str, Any] = MessageToDict(msg)
            return result
    detail = "; ".join(errors) if errors else "no spans, metrics or log records in it"
    raise ValueError(f"not an OTLP protobuf export message ({detail})")
