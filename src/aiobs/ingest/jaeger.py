"""Jaeger's own JSON model → OTLP-shaped documents, and the Jaeger API's envelopes.

What the Jaeger UI downloads ("Download JSON") and what ``/api/traces/ID`` answers is not OTLP but
Jaeger's JSON model: ``{"data": [trace, …]}`` (or one trace alone), each trace
``{traceID, spans, processes}``, each span ``{traceID, spanID, operationName, references, startTime,
duration, tags, logs, processID}`` with microsecond times and typed tags
``{key, type: string|bool|int64|float64|binary, value}``. It is read the way the collector's
Jaeger receiver translates it (collector-contrib ``pkg/translator/jaeger``):

- the parent is the first ``CHILD_OF`` reference in the same trace (else the deprecated
  ``parentSpanID``); every other reference becomes a link;
- the process (``processes[processID]``, or an inline ``process``) is the resource: its
  ``serviceName`` is ``service.name``, its tags the other resource attributes;
- the tags ``span.kind``, ``otel.status_code``/``otel.status_description`` (else ``error=true``),
  ``otel.scope.name``/``otel.scope.version`` (``otel.library.*``) and ``w3c.tracestate`` become the
  span's kind, status, scope and trace state, and leave the attributes; the rest are attributes;
- each log is an event, named by its ``event`` field (the other fields are its attributes).

Jaeger API v3 (``/api/v3/traces/ID``) answers OTLP wrapped by grpc-gateway as ``{"result": {…}}``
(one such object a line when streamed); ``unwrap`` takes it out.

Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiobs.ingest.values import RecordError

# Jaeger's span.kind values → OTLP span kinds.
_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
# Tags the translator turns into span fields (and removes from the attributes).
_SCOPE_NAME = ("otel.scope.name", "otel.library.name")
_SCOPE_VERSION = ("otel.scope.version", "otel.library.version")


def is_jaeger_trace(doc: dict[str, Any]) -> bool:
    """A trace in Jaeger's JSON model: ``traceID`` and a list of ``spans``."""
    return isinstance(doc.get("spans"), list) and "traceID" in doc


def is_jaeger_response(doc: dict[str, Any]) -> bool:
    """The UI's download / API v1 answer: ``{"data": [trace, …]}`` (``[]`` counts too)."""
    data = doc.get("data")
    return (
        isinstance(data, list)
        and all(isinstance(t, dict) and is_jaeger_trace(t) for t in data)
        and (bool(data) or "total" in doc or "errors" in doc)
    )


def unwrap(doc: dict[str, Any]) -> Any:
    """The OTLP document inside a Jaeger API v3 ``{"result": …}`` answer, or None if ``doc`` is
    not one. An error answer (v3 ``{"error": …}``, v1 ``{"data": null, "errors": […]}``) raises
    ``RecordError`` with its message."""
    result = doc.get("result")
    if isinstance(result, dict) and any(k in result for k in ("resourceSpans", "resource_spans")):
        return result
    error = doc.get("error")
    if result is None and isinstance(error, dict) and len(doc) == 1:
        message = error.get("message") or error.get("msg") or error
        raise RecordError(f"Jaeger API error answer: {str(message)[:200]}")
    errors = doc.get("errors")
    if not doc.get("data") and isinstance(errors, list) and errors and "data" in doc:
        # API v1 (/api/traces/ID): {"data": null, "errors": [{"code": 404, "msg": …}]}
        first = errors[0] if isinstance(errors[0], dict) else {"msg": errors[0]}
        message = first.get("msg") or first.get("message") or first
        raise RecordError(f"Jaeger API error answer: {str(message)[:200]}")
    return None


def _hex_id(value: Any, size: int, what: str) -> str:
    """A Jaeger id: hex, leading zeros sometimes dropped (64-bit trace ids are 16 digits)."""
    if not isinstance(value, str) or not value:
        raise RecordError(f"{what} is missing")
    text = value.strip().lower()
    if len(text) > size * 2 or any(c not in "0123456789abcdef" for c in text):
        raise RecordError(f"{what} {value[:60]!r} is not a hex id")
    return text.rjust(size * 2, "0")


def _any_value(tag: dict[str, Any]) -> dict[str, Any]:
    """A typed Jaeger tag's value as an OTLP AnyValue."""
    kind = str(tag.get("type") or "string").lower()
    value = tag.get("value")
    if kind == "bool":
        if isinstance(value, str):
            return {"boolValue": value.lower() == "true"}
        return {"boolValue": bool(value)}
    if kind == "int64":
        return {"intValue": value}
    if kind == "float64":
        return {"doubleValue": value}
    if kind == "binary":
        return {"bytesValue": value}
    return {"stringValue": value if isinstance(value, str) else str(value)}


def _tags(tags: Any, what: str) -> list[tuple[str, dict[str, Any]]]:
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise RecordError(f"{what} is not a list")
    out = []
    for tag in tags:
        if not isinstance(tag, dict) or not isinstance(tag.get("key"), str):
            raise RecordError(f"{what}: entry {str(tag)[:60]!r} has no key")
        out.append((tag["key"], _any_value(tag)))
    return out


def _text(value: dict[str, Any]) -> str:
    inner = next(iter(value.values()), None)
    if isinstance(inner, bool):
        return "true" if inner else "false"
    return "" if inner is None else str(inner)


def _kv(pairs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in pairs]


def _micros(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordError(f"{what}: expected microseconds, got {type(value).__name__}")
    try:
        return int(value) * 1000
    except ValueError:
        raise RecordError(f"{what}: expected microseconds, got {value!r}") from None


Resource = list[tuple[str, dict[str, Any]]]


def _span(
    span: Any, processes: dict[str, Any], trace_id: str
) -> tuple[Resource, dict[str, Any], tuple[str, str]]:
    """One Jaeger span → (its resource, the OTLP span, (scope name, version))."""
    if not isinstance(span, dict):
        raise RecordError("span is not an object")
    tid = _hex_id(span.get("traceID") or trace_id, 16, "traceID")
    sid = _hex_id(span.get("spanID"), 8, "spanID")
    refs = span.get("references") or []
    if not isinstance(refs, list):
        raise RecordError("references is not a list")
    parent = ""
    links = []
    for ref in refs:
        if not isinstance(ref, dict):
            raise RecordError("reference is not an object")
        ref_trace = _hex_id(ref.get("traceID") or tid, 16, "reference traceID")
        ref_span = _hex_id(ref.get("spanID"), 8, "reference spanID")
        if not parent and ref_trace == tid and str(ref.get("refType")).upper() == "CHILD_OF":
            parent = ref_span
        else:
            links.append({"traceId": ref_trace, "spanId": ref_span})
    if not parent and span.get("parentSpanID") not in (None, "", "0"):
        parent = _hex_id(span["parentSpanID"], 8, "parentSpanID")
    if parent.strip("0") == "":
        parent = ""
    start = _micros(span.get("startTime"), "startTime")
    duration = _micros(span.get("duration") or 0, "duration")
    attrs = []
    kind = 1
    status_code: int | None = None
    status_message = ""
    error_tag = False
    scope = ["", ""]
    trace_state = ""
    for key, value in _tags(span.get("tags"), "tags"):
        text = _text(value)
        if key == "span.kind":
            kind = _KINDS.get(text.lower(), 1)
        elif key == "otel.status_code":
            status_code = {"OK": 1, "ERROR": 2}.get(text.upper(), 0)
        elif key == "otel.status_description":
            status_message = text
        elif key == "error" and text.lower() == "true":
            error_tag = True
        elif key in _SCOPE_NAME:
            scope[0] = text
        elif key in _SCOPE_VERSION:
            scope[1] = text
        elif key == "w3c.tracestate":
            trace_state = text
        else:
            attrs.append((key, value))
    if status_code is None:
        status_code = 2 if error_tag else 0
    events = []
    for log in span.get("logs") or []:
        if not isinstance(log, dict):
            raise RecordError("log is not an object")
        fields = _tags(log.get("fields"), "log fields")
        name = next((_text(v) for k, v in fields if k == "event"), "")
        events.append(
            {
                "timeUnixNano": _micros(log.get("timestamp") or 0, "log timestamp") or start,
                "name": name,
                "attributes": _kv([(k, v) for k, v in fields if k != "event"]),
            }
        )
    process = span.get("process")
    if not isinstance(process, dict):
        process = processes.get(str(span.get("processID")))
    if not isinstance(process, dict):
        raise RecordError(f"span {sid}: process {span.get('processID')!r} is not in processes")
    service = process.get("serviceName") or ""
    if not isinstance(service, str):
        raise RecordError("process serviceName is not a string")
    resource = [("service.name", {"stringValue": service})] if service else []
    resource += _tags(process.get("tags"), "process tags")
    operation = span.get("operationName")
    otlp = {
        "traceId": tid,
        "spanId": sid,
        "parentSpanId": parent,
        "traceState": trace_state,
        "name": operation if isinstance(operation, str) else "",
        "kind": kind,
        "startTimeUnixNano": start,
        "endTimeUnixNano": start + duration,
        "attributes": _kv(attrs),
        "events": events,
        "links": links,
        "status": {"code": status_code, "message": status_message},
    }
    return resource, otlp, (scope[0], scope[1])


def jaeger_to_otlp(trace: dict[str, Any], on_reject: Callable[[str, Any], None]) -> dict[str, Any]:
    """One Jaeger trace as an OTLP traces document: one resourceSpans a process, one scopeSpans a
    scope. A bad span is passed to ``on_reject`` (reason, span) and left out."""
    processes = trace.get("processes") or {}
    if not isinstance(processes, dict):
        raise RecordError("processes is not an object")
    trace_id = trace.get("traceID") or ""
    grouped: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    resources: dict[str, Resource] = {}
    for span in trace.get("spans") or []:
        try:
            resource, otlp, scope = _span(span, processes, trace_id)
        except (RecordError, TypeError, ValueError, AttributeError) as exc:
            on_reject(str(exc), span)
            continue
        key = repr(resource)
        resources[key] = resource
        grouped.setdefault(key, {}).setdefault(scope, []).append(otlp)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _kv(resources[key])},
                "scopeSpans": [
                    {"scope": {"name": name, "version": version}, "spans": spans}
                    for (name, version), spans in scopes.items()
                ],
            }
            for key, scopes in grouped.items()
        ]
    }
