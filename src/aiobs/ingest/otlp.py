"""OTLP (JSON-shaped) documents → rows of the exporter tables, leniently.

Input is an already-decoded document: OTLP/JSON as parsed by orjson, or a protobuf message turned into
a dict (``MessageToDict``), or a Langfuse export or a Jaeger trace (``ingest/jaeger.py``: the JSON
model the Jaeger UI downloads, and the API v3 ``{"result": …}`` envelope) converted to OTLP shape.
Real files break the spec in known ways (FORMATS.md §1), all accepted here: enum names instead of
numbers, base64 ids, int64 as numbers or strings, snake_case keys, ``instrumentationLibrarySpans``,
``event.name`` as an attribute, log ``timeUnixNano`` 0. A record that cannot be made sense of is refused with a reason; its
neighbours still land.

Attribute values are rendered to strings the way the collector's ClickHouse exporter does
(pcommon ``Value.AsString``): arrays and maps as JSON, bools as true/false, bytes as base64.

Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from aiobs.ingest import jaeger
from aiobs.ingest.langfuse import langfuse_to_otlp
from aiobs.ingest.values import (
    MAX_TS_NS,
    MIN_TS_NS,
    SPAN_KINDS,
    STATUS_CODES,
    RecordError,
)

_SEVERITY_NAMES = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def _enum_lookup(table: dict[int, str], prefix: str) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for number, name in table.items():
        short = name.removeprefix(prefix)
        for key in (number, str(number), name, short, short.lower(), short.capitalize()):
            out[key] = number
    return out


_KIND_LOOKUP = _enum_lookup(SPAN_KINDS, "SPAN_KIND_")
_STATUS_LOOKUP = _enum_lookup(STATUS_CODES, "STATUS_CODE_")


def _enum(value: Any, lookup: dict[Any, int], what: str) -> int:
    if value is None or value == "":
        return 0
    try:
        return lookup[value]
    except (KeyError, TypeError):
        raise RecordError(f"unknown {what} {value!r}") from None


def _str(value: Any, what: str) -> str:
    """A string field; absent → ``''``; any other JSON type refuses the record."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise RecordError(f"{what}: expected a string, got {type(value).__name__}")


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    value = d.get(camel)
    if value is None:
        value = d.get(snake)
    return value


def to_int(value: Any, what: str) -> int:
    """int64 as JSON number, decimal string, or protobufjs ``{low, high}``."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise RecordError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                raise RecordError(f"{what}: expected an integer, got {value!r}") from None
            if math.isfinite(number):
                return int(number)
            raise RecordError(f"{what}: expected an integer, got {value!r}") from None
    if isinstance(value, float):
        if math.isfinite(value):
            return int(value)
        raise RecordError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, dict) and "low" in value:
        low = int(value.get("low", 0)) & 0xFFFFFFFF
        high = int(value.get("high", 0)) & 0xFFFFFFFF
        return (high << 32) | low
    raise RecordError(f"{what}: expected an integer, got {type(value).__name__}")


def _ranged(value: Any, what: str, low: int, high: int) -> int:
    """An integer that must fit its exporter column (UInt64 counts, UInt32 flags, Int32 scale)."""
    number = to_int(value, what)
    if not low <= number <= high:
        raise RecordError(f"{what} {number} is outside {low}..{high}")
    return number


def to_float(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # also "NaN", "Infinity", "-Infinity"
        except ValueError:
            raise RecordError(f"{what}: expected a number, got {value!r}") from None
    raise RecordError(f"{what}: expected a number, got {type(value).__name__}")


_HEX = frozenset("0123456789abcdef")


def to_id(value: Any, size: int, what: str) -> str:
    """Trace (16 bytes) or span (8 bytes) id as lower-case hex; ``''`` when absent.

    Spec: hex. Seen in the wild: upper-case hex, base64 (``MessageToDict``), all-zero ids.
    """
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{what}: expected a hex string, got {type(value).__name__}")
    text = value.strip()
    low = text.lower()
    if len(low) == size * 2 and _HEX.issuperset(low):
        return "" if low.strip("0") == "" else low
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == size:
        hexed = raw.hex()
        return "" if hexed.strip("0") == "" else hexed
    raise RecordError(f"{what}: {value[:60]!r} is not a {size}-byte id in hex or base64")


def _float_text(value: float) -> str:
    """A double as the exporter writes it: pcommon ``AsString`` formats like Go's encoding/json
    (ES6 number-to-string): shortest round-trip digits, fixed notation unless |v| < 1e-6 or
    |v| >= 1e21, exponent without zero padding. 1e16 → ``10000000000000000``, 3.0 → ``3``,
    1e-07 → ``1e-7``, 1e21 → ``1e+21``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(value)  # Python uses exponent notation throughout these ranges
        mantissa, _, exponent = text.partition("e")
        sign = exponent[:1]
        digits = exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits}"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def any_value_native(value: Any) -> Any:
    """An OTLP AnyValue as a plain Python value (for JSON rendering of arrays and maps).

    A member that is JSON null counts as absent, as in proto3's JSON mapping."""
    if not isinstance(value, dict):
        return value
    for key in ("stringValue", "string_value"):
        if value.get(key) is not None:
            return value[key]
    for key in ("boolValue", "bool_value"):
        if value.get(key) is not None:
            return bool(value[key])
    for key in ("intValue", "int_value"):
        if value.get(key) is not None:
            try:
                return to_int(value[key], "intValue")
            except RecordError:
                return value[key]
    for key in ("doubleValue", "double_value"):
        if value.get(key) is not None:
            number = to_float(value[key], "doubleValue")
            if number is None or not math.isfinite(number):
                return None if number is None else _float_text(number)
            return GoFloat(number)
    for key in ("arrayValue", "array_value"):
        if value.get(key) is not None:
            return [any_value_native(v) for v in (value[key] or {}).get("values") or []]
    for key in ("kvlistValue", "kvlist_value"):
        if value.get(key) is not None:
            return {
                str(kv.get("key")): any_value_native(kv.get("value"))
                for kv in (value[key] or {}).get("values") or []
                if isinstance(kv, dict)
            }
    for key in ("bytesValue", "bytes_value"):
        if value.get(key) is not None:
            return value[key]
    return None


def any_value_text(value: Any) -> str:
    """An AnyValue rendered as the exporter stores it (``Value.AsString``)."""
    if isinstance(value, dict):
        sv = value.get("stringValue")
        if sv is not None:
            return sv if isinstance(sv, str) else str(sv)
        native = any_value_native(value)
    else:
        native = value
    if native is None:
        return ""
    if isinstance(native, str):
        return native
    if isinstance(native, bool):
        return "true" if native else "false"
    if isinstance(native, int):
        return str(native)
    if isinstance(native, float):
        return _float_text(native)
    return orjson.dumps(native, default=_go_json, option=orjson.OPT_PASSTHROUGH_SUBCLASS).decode()


class GoFloat(float):
    """A double from an AnyValue: inside arrays and maps it is written as Go's encoding/json
    writes numbers (``_float_text``: 1.0 → 1, 5.09246404381241e16 → 50924640438124100), which
    orjson's own float formatting does not match."""


def _go_json(obj: Any) -> Any:
    if isinstance(obj, GoFloat):
        return orjson.Fragment(_float_text(obj).encode())
    raise TypeError(f"cannot encode {type(obj).__name__}")


def attributes(kvs: Any) -> list[tuple[str, str]]:
    """OTLP ``[{key, value}]`` (or a plain JSON object, leniently) → list of (key, text)."""
    if not kvs:
        return []
    if isinstance(kvs, dict):
        return [(str(k), any_value_text(v)) for k, v in kvs.items()]
    if not isinstance(kvs, list):
        raise RecordError(f"attributes must be a list of {{key, value}}, got {type(kvs).__name__}")
    out = []
    for kv in kvs:
        if not isinstance(kv, dict) or kv.get("key") is None:
            raise RecordError(f"attribute entry {str(kv)[:60]!r} has no key")
        out.append((str(kv["key"]), any_value_text(kv.get("value"))))
    if len(out) > 1 and len({k for k, _ in out}) != len(out):
        # Duplicate keys are invalid OTLP but seen in the wild; a MAP cannot hold them: last wins.
        out = list(dict(out).items())
    return out


def _check_ts(ns: int, what: str) -> int:
    if not MIN_TS_NS <= ns < MAX_TS_NS:
        if ns == 0:
            raise RecordError(f"{what} is missing")
        raise RecordError(f"{what} {ns} is outside 2000..2100 (absurd timestamp)")
    return ns


@dataclass
class Reject:
    line: int | None
    offset: int | None
    reason: str
    excerpt: str


@dataclass
class Rows:
    """Rows decoded from one or more documents, per table, as tuples in the table's column order."""

    traces: list[tuple[Any, ...]] = field(default_factory=list)
    # (TraceId, SpanId) → line it came from, for rejects found after decoding (parent cycles).
    span_lines: dict[tuple[str, str], int] = field(default_factory=dict)
    logs: list[tuple[Any, ...]] = field(default_factory=list)
    metrics: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {
            k: [] for k in ("gauge", "sum", "histogram", "exp_histogram", "summary")
        }
    )
    rejects: list[Reject] = field(default_factory=list)

    @property
    def metric_points(self) -> int:
        return sum(len(v) for v in self.metrics.values())

    @property
    def size(self) -> int:
        return len(self.traces) + len(self.logs) + self.metric_points

    def clear(self) -> None:
        self.traces.clear()
        self.span_lines.clear()
        self.logs.clear()
        for rows in self.metrics.values():
            rows.clear()
        self.rejects.clear()


def _excerpt(obj: Any, limit: int = 300) -> str:
    try:
        text = orjson.dumps(obj).decode()
    except TypeError:
        text = repr(obj)
    return text[:limit]


def _resource(block: dict[str, Any]) -> tuple[list[tuple[str, str]], str, str]:
    resource = block.get("resource") or {}
    attrs = attributes(resource.get("attributes"))
    service = ""
    for k, v in attrs:
        if k == "service.name":
            service = v
            break
    schema_url = _get(block, "schemaUrl", "schema_url") or ""
    return attrs, service, schema_url


def _scope(
    block: dict[str, Any], *, attributes_too: bool = True
) -> tuple[str, str, list[tuple[str, str]], int, str]:
    if not isinstance(block, dict):
        raise RecordError("scope block is not an object")
    scope = (
        block.get("scope") or _get(block, "instrumentationLibrary", "instrumentation_library") or {}
    )
    if not isinstance(scope, dict):
        raise RecordError("scope is not an object")
    return (
        _str(scope.get("name"), "scope name"),
        _str(scope.get("version"), "scope version"),
        attributes(scope.get("attributes")) if attributes_too else [],
        to_int(_get(scope, "droppedAttributesCount", "dropped_attributes_count"), "dropped"),
        _get(block, "schemaUrl", "schema_url") or "",
    )


def _list(block: dict[str, Any], *keys: str) -> list[Any]:
    for key in keys:
        value = block.get(key)
        if value:
            if not isinstance(value, list):
                raise RecordError(f"{key} is not a list")
            return value
    return []


class Decoder:
    """Turns OTLP-shaped documents into ``Rows``; one instance per input file."""

    def __init__(self) -> None:
        self.rows = Rows()
        # The input forms met, in order (the file's format in aiobs_ingests): "otlp", and the
        # forms converted to it ("langfuse export", "jaeger json", "jaeger api v3").
        self.forms: dict[str, None] = {}
        self._converted = False

    def _feed_converted(self, form: str, doc: Any, line: int | None, offset: int | None) -> None:
        self.forms.setdefault(form)
        was, self._converted = self._converted, True
        try:
            self.feed(doc, line, offset)
        finally:
            self._converted = was

    def reject(self, line: int | None, offset: int | None, reason: str, obj: Any) -> None:
        self.rows.rejects.append(Reject(line, offset, reason, _excerpt(obj)))

    def feed(self, doc: Any, line: int | None = None, offset: int | None = None) -> None:
        """Decode one document (a whole OTLP export request / file-exporter line)."""
        if isinstance(doc, list):
            for item in doc:
                self.feed(item, line, offset)
            return
        if not isinstance(doc, dict):
            self.reject(line, offset, "not an OTLP document: expected a JSON object", doc)
            return
        handlers: list[tuple[tuple[str, ...], Callable[[dict[str, Any], int | None], None]]] = [
            (("resourceSpans", "resource_spans"), self._resource_spans),
            (("resourceLogs", "resource_logs"), self._resource_logs),
            (("resourceMetrics", "resource_metrics"), self._resource_metrics),
        ]
        found = False
        for keys, handler in handlers:
            blocks = None
            for key in keys:
                if key in doc:
                    blocks = doc[key]
                    break
            if blocks is None:
                continue
            found = True
            if not self._converted:
                self.forms.setdefault("otlp")
            if not isinstance(blocks, list):
                self.reject(line, offset, f"{keys[0]} is not a list", doc)
                continue
            for block in blocks:
                if not isinstance(block, dict):
                    self.reject(line, offset, f"{keys[0]} entry is not an object", block)
                    continue
                try:
                    handler(block, line)
                except RecordError as exc:
                    self.reject(line, offset, f"{keys[0]}: {exc}", block)
                except (TypeError, AttributeError, ValueError) as exc:
                    self.reject(line, offset, f"{keys[0]}: malformed block ({exc})", block)
        if not found:
            if self._jaeger(doc, line, offset):
                return
            if "trace" in doc and "observations" in doc:
                try:
                    converted = langfuse_to_otlp(
                        doc,
                        lambda reason, obs: self.reject(
                            line, offset, f"Langfuse observation: {reason}", obs
                        ),
                    )
                except RecordError as exc:
                    self.reject(line, offset, f"Langfuse export: {exc}", doc)
                    return
                self._feed_converted("langfuse export", converted, line, offset)
                return
            keys_seen = ", ".join(list(doc)[:5]) or "none"
            self.reject(
                line,
                offset,
                "not OTLP: expected resourceSpans, resourceLogs or resourceMetrics, a Jaeger"
                f" trace or API answer, or a Langfuse export (keys: {keys_seen})",
                doc,
            )

    def _jaeger(self, doc: dict[str, Any], line: int | None, offset: int | None) -> bool:
        """Jaeger's answers and downloads (``aiobs.ingest.jaeger``), decoded; False if ``doc``
        is none of them."""
        try:
            inner = jaeger.unwrap(doc)
        except RecordError as exc:
            self.reject(line, offset, str(exc), doc)
            return True
        if inner is not None:
            self._feed_converted("jaeger api v3", inner, line, offset)
            return True
        if jaeger.is_jaeger_response(doc):
            traces = doc["data"]
        elif jaeger.is_jaeger_trace(doc):
            traces = [doc]
        else:
            return False
        for trace in traces:
            try:
                converted = jaeger.jaeger_to_otlp(
                    trace,
                    lambda reason, span: self.reject(line, offset, f"Jaeger span: {reason}", span),
                )
            except RecordError as exc:
                self.reject(line, offset, f"Jaeger trace: {exc}", trace)
                continue
            self._feed_converted("jaeger json", converted, line, offset)
        return True

    # ------------------------------------------------------------------------------------ spans

    def _resource_spans(self, block: dict[str, Any], line: int | None) -> None:
        res_attrs, service, _ = _resource(block)
        for scope_block in _list(
            block,
            "scopeSpans",
            "scope_spans",
            "instrumentationLibrarySpans",
            "instrumentation_library_spans",
        ):
            try:
                # otel_traces keeps no scope attributes, so they are not checked here.
                scope_name, scope_version, _, _, _ = _scope(scope_block, attributes_too=False)
                spans = _list(scope_block, "spans")
            except (RecordError, TypeError, AttributeError, ValueError) as exc:
                self.reject(line, None, f"scope block: {exc}", scope_block)
                continue
            for span in spans:
                try:
                    row = self._span(span, res_attrs, service, scope_name, scope_version)
                    self.rows.traces.append(row)
                    if line is not None:
                        self.rows.span_lines.setdefault((row[1], row[2]), line)
                except RecordError as exc:
                    self.reject(line, None, f"span: {exc}", span)
                except (TypeError, AttributeError, ValueError) as exc:
                    self.reject(line, None, f"span: malformed ({exc})", span)

    def _span(
        self,
        span: Any,
        res_attrs: list[tuple[str, str]],
        service: str,
        scope_name: str,
        scope_version: str,
    ) -> tuple[Any, ...]:
        if not isinstance(span, dict):
            raise RecordError("not an object")
        trace_id = to_id(_get(span, "traceId", "trace_id"), 16, "traceId")
        span_id = to_id(_get(span, "spanId", "span_id"), 8, "spanId")
        if not trace_id:
            raise RecordError("traceId is missing")
        if not span_id:
            raise RecordError("spanId is missing")
        parent = to_id(_get(span, "parentSpanId", "parent_span_id"), 8, "parentSpanId")
        if parent == span_id:
            raise RecordError(f"span {span_id} is its own parent (parent cycle)")
        start = _check_ts(
            to_int(_get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
            "startTimeUnixNano",
        )
        end = to_int(_get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
        if end:
            _check_ts(end, "endTimeUnixNano")
        # An end before the start (clock skew between hosts) is kept as a zero-length span.
        duration = max(end - start, 0) if end else 0
        kind = SPAN_KINDS[_enum(span.get("kind"), _KIND_LOOKUP, "span kind")]
        status = span.get("status") or {}
        if not isinstance(status, dict):
            raise RecordError("status is not an object")
        code = STATUS_CODES[_enum(status.get("code"), _STATUS_LOOKUP, "status code")]
        ev_ts, ev_names, ev_attrs = [], [], []
        for event in span.get("events") or ():
            if not isinstance(event, dict):
                raise RecordError("event is not an object")
            ts = to_int(_get(event, "timeUnixNano", "time_unix_nano"), "event timeUnixNano")
            ev_ts.append(ts if MIN_TS_NS <= ts < MAX_TS_NS else start)
            ev_names.append(_str(event.get("name"), "event name"))
            ev_attrs.append(attributes(event.get("attributes")))
        lk_trace, lk_span, lk_state, lk_attrs = [], [], [], []
        for link in span.get("links") or ():
            if not isinstance(link, dict):
                raise RecordError("link is not an object")
            lk_trace.append(to_id(_get(link, "traceId", "trace_id"), 16, "link traceId"))
            lk_span.append(to_id(_get(link, "spanId", "span_id"), 8, "link spanId"))
            lk_state.append(_str(_get(link, "traceState", "trace_state"), "link traceState"))
            lk_attrs.append(attributes(link.get("attributes")))
        return (
            start,
            trace_id,
            span_id,
            parent,
            _str(_get(span, "traceState", "trace_state"), "traceState"),
            _str(span.get("name"), "name"),
            kind,
            service,
            res_attrs,
            scope_name,
            scope_version,
            attributes(span.get("attributes")),
            duration,
            code,
            _str(status.get("message"), "status message"),
            ev_ts,
            ev_names,
            ev_attrs,
            lk_trace,
            lk_span,
            lk_state,
            lk_attrs,
        )

    # ------------------------------------------------------------------------------------- logs

    def _resource_logs(self, block: dict[str, Any], line: int | None) -> None:
        res_attrs, service, res_schema = _resource(block)
        for scope_block in _list(
            block,
            "scopeLogs",
            "scope_logs",
            "instrumentationLibraryLogs",
            "instrumentation_library_logs",
        ):
            try:
                scope_name, scope_version, scope_attrs, _, scope_schema = _scope(scope_block)
                records = _list(scope_block, "logRecords", "log_records")
            except (RecordError, TypeError, AttributeError, ValueError) as exc:
                self.reject(line, None, f"scope block: {exc}", scope_block)
                continue
            for record in records:
                try:
                    self.rows.logs.append(
                        self._log(
                            record,
                            res_attrs,
                            service,
                            res_schema,
                            scope_name,
                            scope_version,
                            scope_attrs,
                            scope_schema,
                        )
                    )
                except RecordError as exc:
                    self.reject(line, None, f"log record: {exc}", record)
                except (TypeError, AttributeError, ValueError) as exc:
                    self.reject(line, None, f"log record: malformed ({exc})", record)

    def _log(
        self,
        record: Any,
        res_attrs: list[tuple[str, str]],
        service: str,
        res_schema: str,
        scope_name: str,
        scope_version: str,
        scope_attrs: list[tuple[str, str]],
        scope_schema: str,
    ) -> tuple[Any, ...]:
        if not isinstance(record, dict):
            raise RecordError("not an object")
        ts = to_int(_get(record, "timeUnixNano", "time_unix_nano"), "timeUnixNano")
        if not ts:
            ts = to_int(
                _get(record, "observedTimeUnixNano", "observed_time_unix_nano"),
                "observedTimeUnixNano",
            )
        _check_ts(ts, "timeUnixNano (and observedTimeUnixNano)")
        severity = _get(record, "severityNumber", "severity_number")
        if isinstance(severity, str) and not severity.isdigit():
            name = severity.removeprefix("SEVERITY_NUMBER_")
            base = name.rstrip("0123456789")
            if base not in _SEVERITY_NAMES and name != "UNSPECIFIED":
                raise RecordError(f"unknown severity number {severity!r}")
            step = name[len(base) :] or "1"
            if name != "UNSPECIFIED" and step not in ("1", "2", "3", "4"):
                raise RecordError(f"unknown severity number {severity!r}")
            sev = 0 if name == "UNSPECIFIED" else _SEVERITY_NAMES.index(base) * 4 + int(step)
        else:
            sev = to_int(severity, "severityNumber")
            if not 0 <= sev <= 24:
                raise RecordError(f"severityNumber {sev} is outside 0..24")
        attrs = attributes(record.get("attributes"))
        event_name = _str(_get(record, "eventName", "event_name"), "eventName")
        if not event_name:
            for k, v in attrs:
                if k == "event.name":
                    event_name = v
                    break
        flags = to_int(record.get("flags"), "flags") & 0xFF
        return (
            ts,
            ts // 10**9 * 10**6,  # TimestampTime: seconds precision, as microseconds for Arrow
            to_id(_get(record, "traceId", "trace_id"), 16, "traceId"),
            to_id(_get(record, "spanId", "span_id"), 8, "spanId"),
            flags,
            _str(_get(record, "severityText", "severity_text"), "severityText"),
            sev,
            service,
            any_value_text(record.get("body")),
            res_schema,
            res_attrs,
            scope_schema,
            scope_name,
            scope_version,
            scope_attrs,
            attrs,
            event_name,
        )

    # ---------------------------------------------------------------------------------- metrics

    def _resource_metrics(self, block: dict[str, Any], line: int | None) -> None:
        res_attrs, service, res_schema = _resource(block)
        for scope_block in _list(
            block,
            "scopeMetrics",
            "scope_metrics",
            "instrumentationLibraryMetrics",
            "instrumentation_library_metrics",
        ):
            try:
                scope = _scope(scope_block)
                metrics = _list(scope_block, "metrics")
            except (RecordError, TypeError, AttributeError, ValueError) as exc:
                self.reject(line, None, f"scope block: {exc}", scope_block)
                continue
            for metric in metrics:
                try:
                    self._metric(metric, res_attrs, res_schema, service, scope, line)
                except RecordError as exc:
                    self.reject(line, None, f"metric: {exc}", metric)
                except (TypeError, AttributeError, ValueError) as exc:
                    self.reject(line, None, f"metric: malformed ({exc})", metric)

    def _metric(
        self,
        metric: Any,
        res_attrs: list[tuple[str, str]],
        res_schema: str,
        service: str,
        scope: tuple[str, str, list[tuple[str, str]], int, str],
        line: int | None,
    ) -> None:
        if not isinstance(metric, dict):
            raise RecordError("not an object")
        name = _str(metric.get("name"), "metric name")
        if not name:
            raise RecordError("metric has no name")
        scope_name, scope_version, scope_attrs, scope_dropped, scope_schema = scope
        head = (
            res_attrs,
            res_schema,
            scope_name,
            scope_version,
            scope_attrs,
            scope_dropped,
            scope_schema,
            service,
            name,
            _str(metric.get("description"), "description"),
            _str(metric.get("unit"), "unit"),
        )
        kinds = (
            ("gauge", "gauge"),
            ("sum", "sum"),
            ("histogram", "histogram"),
            ("exponentialHistogram", "exp_histogram"),
            ("exponential_histogram", "exp_histogram"),
            ("summary", "summary"),
        )
        for key, table in kinds:
            data = metric.get(key)
            if data is None:
                continue
            if not isinstance(data, dict):
                raise RecordError(f"{key} is not an object")
            temporality = _temporality(
                _get(data, "aggregationTemporality", "aggregation_temporality")
            )
            monotonic = bool(_get(data, "isMonotonic", "is_monotonic"))
            out = self.rows.metrics[table]
            for point in _list(data, "dataPoints", "data_points"):
                try:
                    out.append(self._point(table, point, head, temporality, monotonic))
                except RecordError as exc:
                    self.reject(line, None, f"metric {name} data point: {exc}", point)
                except (TypeError, AttributeError, ValueError) as exc:
                    self.reject(line, None, f"metric {name} data point: malformed ({exc})", point)
            return
        # Metrics with no data (e.g. an empty "gauge": {} is fine; no type at all is not).
        raise RecordError(f"metric {name} has no gauge/sum/histogram/exponentialHistogram/summary")

    def _point(
        self,
        table: str,
        point: Any,
        head: tuple[Any, ...],
        temporality: int,
        monotonic: bool,
    ) -> tuple[Any, ...]:
        if not isinstance(point, dict):
            raise RecordError("not an object")
        ts = _check_ts(
            to_int(_get(point, "timeUnixNano", "time_unix_nano"), "timeUnixNano"), "timeUnixNano"
        )
        start = to_int(
            _get(point, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"
        )
        if start and not MIN_TS_NS <= start < MAX_TS_NS:
            raise RecordError(f"startTimeUnixNano {start} is outside 2000..2100 (absurd timestamp)")
        flags = _ranged(point.get("flags"), "flags", 0, 2**32 - 1)
        common = (*head, attributes(point.get("attributes")), start, ts)
        if table in ("gauge", "sum"):
            value = _number_value(point)
            ex = _exemplars(point)
            if table == "gauge":
                return (*common, value, flags, *ex)
            return (*common, value, flags, *ex, temporality, monotonic)
        if table == "histogram":
            return (
                *common,
                _ranged(point.get("count"), "count", 0, 2**64 - 1),
                to_float(point.get("sum"), "sum"),
                [
                    _ranged(c, "bucketCounts", 0, 2**64 - 1)
                    for c in _get(point, "bucketCounts", "bucket_counts") or ()
                ],
                [
                    to_float(b, "explicitBounds")
                    for b in _get(point, "explicitBounds", "explicit_bounds") or ()
                ],
                *_exemplars(point),
                flags,
                to_float(point.get("min"), "min"),
                to_float(point.get("max"), "max"),
                temporality,
            )
        if table == "exp_histogram":
            positive = point.get("positive") or {}
            negative = point.get("negative") or {}
            return (
                *common,
                _ranged(point.get("count"), "count", 0, 2**64 - 1),
                to_float(point.get("sum"), "sum"),
                _ranged(point.get("scale"), "scale", -(2**31), 2**31 - 1),
                _ranged(_get(point, "zeroCount", "zero_count"), "zeroCount", 0, 2**64 - 1),
                _ranged(positive.get("offset"), "positive.offset", -(2**31), 2**31 - 1),
                [
                    _ranged(c, "bucketCounts", 0, 2**64 - 1)
                    for c in _get(positive, "bucketCounts", "bucket_counts") or ()
                ],
                _ranged(negative.get("offset"), "negative.offset", -(2**31), 2**31 - 1),
                [
                    _ranged(c, "bucketCounts", 0, 2**64 - 1)
                    for c in _get(negative, "bucketCounts", "bucket_counts") or ()
                ],
                *_exemplars(point),
                flags,
                to_float(point.get("min"), "min"),
                to_float(point.get("max"), "max"),
                temporality,
            )
        quantiles = _get(point, "quantileValues", "quantile_values") or ()
        return (
            *common,
            _ranged(point.get("count"), "count", 0, 2**64 - 1),
            to_float(point.get("sum"), "sum"),
            [to_float(q.get("quantile"), "quantile") or 0.0 for q in quantiles],
            [to_float(q.get("value"), "value") for q in quantiles],
            flags,
        )


_TEMPORALITY = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
    "DELTA": 1,
    "CUMULATIVE": 2,
}


def _temporality(value: Any) -> int:
    if isinstance(value, str) and not value.isdigit():
        try:
            return _TEMPORALITY[value.upper()]
        except KeyError:
            raise RecordError(f"unknown aggregationTemporality {value!r}") from None
    return to_int(value, "aggregationTemporality")


def _number_value(point: dict[str, Any]) -> float | None:
    for key in ("asDouble", "as_double"):
        if key in point:
            return to_float(point[key], key)
    for key in ("asInt", "as_int"):
        if key in point:
            return float(to_int(point[key], key))
    return None


def _exemplars(point: dict[str, Any]) -> tuple[list[Any], ...]:
    filtered, times, values, span_ids, trace_ids = [], [], [], [], []
    for ex in point.get("exemplars") or ():
        if not isinstance(ex, dict):
            raise RecordError("exemplar is not an object")
        filtered.append(attributes(_get(ex, "filteredAttributes", "filtered_attributes")))
        times.append(to_int(_get(ex, "timeUnixNano", "time_unix_nano"), "exemplar time"))
        values.append(_number_value(ex))
        span_ids.append(to_id(_get(ex, "spanId", "span_id"), 8, "exemplar spanId"))
        trace_ids.append(to_id(_get(ex, "traceId", "trace_id"), 16, "exemplar traceId"))
    return filtered, times, values, span_ids, trace_ids
