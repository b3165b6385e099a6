"""The vectorised ingest path for large, regular OTLP/JSON Lines files: spans, logs and metric points.

The general decoder (``otlp.Decoder``) walks every record in Python: ~50 µs a span, ~10k spans/s end
to end (bench/ingest.py). Most big inputs are regular — collector file-exporter JSON Lines of
``resourceSpans``, ``resourceLogs`` and ``resourceMetrics`` with spec-shaped values — and for
those pyarrow's multi-threaded JSON reader, with an explicit schema per signal, parses a block of
lines into Arrow columns in C++ and we derive the exporter columns with Arrow compute.

The rule that keeps the two paths identical: this path handles only input it can decode exactly as
the general decoder would. Anything irregular — a field not in the schema (``kvlistValue``,
exponential histograms and summaries, snake_case keys), a type that differs from the spec (enum
names, int64 as numbers), a bad id or timestamp, duplicate attribute keys, a parent cycle, an
unparsable line — raises ``Unsupported``; the caller rolls the file's transaction back and ingests
it with the general decoder, which also produces the rejects. tests/test_fastpath.py checks both
paths give the same rows.

Must not import duckdb, typer, rich or textual at module level.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiobs.ingest.arrow_schema import arrow_schema, entries_type
from aiobs.ingest.otlp import any_value_text, attributes
from aiobs.ingest.values import (
    MAX_PARENT_WALK,
    MAX_TS_NS,
    MIN_TS_NS,
    SPAN_KINDS,
    STATUS_CODES,
    RecordError,
)
from aiobs.store import schema

if TYPE_CHECKING:
    import pyarrow as pa

BLOCK_BYTES = 16 << 20  # span lines handed to the parser at a time
PARSE_BLOCK_BYTES = 2 << 20  # pyarrow's unit of parallel parsing within that chunk


class Unsupported(Exception):
    """The input is not regular enough for the vectorised path; use the general decoder."""


def _attrs_type() -> pa.DataType:
    """OTLP ``[{key, value}]`` with the AnyValue members this path renders (not kvlistValue)."""
    import pyarrow as pa

    s = pa.string()
    scalar = [
        ("stringValue", s),
        ("boolValue", pa.bool_()),
        ("intValue", s),
        ("doubleValue", pa.float64()),
        ("bytesValue", s),
    ]
    any_value = pa.struct(
        [*scalar, ("arrayValue", pa.struct([("values", pa.list_(pa.struct(scalar)))]))]
    )
    return pa.list_(pa.struct([("key", s), ("value", any_value)]))


def _any_value_type() -> pa.DataType:
    attrs: pa.ListType = _attrs_type()
    return attrs.value_type.field("value").type


def _resource_type() -> pa.DataType:
    import pyarrow as pa

    return pa.struct([("attributes", _attrs_type()), ("droppedAttributesCount", pa.int64())])


def _scope_type() -> pa.DataType:
    import pyarrow as pa

    s = pa.string()
    return pa.struct(
        [
            ("name", s),
            ("version", s),
            ("attributes", _attrs_type()),
            ("droppedAttributesCount", pa.int64()),
        ]
    )


def _schema() -> pa.Schema:
    import pyarrow as pa

    s = pa.string()
    i = pa.int64()
    attrs = _attrs_type()
    event = pa.struct(
        [("timeUnixNano", s), ("name", s), ("attributes", attrs), ("droppedAttributesCount", i)]
    )
    link = pa.struct(
        [
            ("traceId", s),
            ("spanId", s),
            ("traceState", s),
            ("attributes", attrs),
            ("droppedAttributesCount", i),
            ("flags", i),
        ]
    )
    span = pa.struct(
        [
            ("traceId", s),
            ("spanId", s),
            ("traceState", s),
            ("parentSpanId", s),
            ("flags", i),
            ("name", s),
            ("kind", i),
            ("startTimeUnixNano", s),
            ("endTimeUnixNano", s),
            ("attributes", attrs),
            ("droppedAttributesCount", i),
            ("events", pa.list_(event)),
            ("droppedEventsCount", i),
            ("links", pa.list_(link)),
            ("droppedLinksCount", i),
            ("status", pa.struct([("message", s), ("code", i)])),
        ]
    )
    scope_spans = pa.struct([("scope", _scope_type()), ("spans", pa.list_(span)), ("schemaUrl", s)])
    resource_spans = pa.struct(
        [("resource", _resource_type()), ("scopeSpans", pa.list_(scope_spans)), ("schemaUrl", s)]
    )
    return pa.schema([("resourceSpans", pa.list_(resource_spans))])


def eligible(first_line: bytes) -> bool:
    """Whether a file whose first line is ``first_line`` is OTLP JSON Lines (any signal mix)."""
    import orjson

    try:
        doc = orjson.loads(first_line)
    except orjson.JSONDecodeError:
        return False
    signals = {"resourceSpans", "resourceLogs", "resourceMetrics"}
    return isinstance(doc, dict) and bool(doc) and set(doc) <= signals


def read_batches(data: bytes, schema_of_lines: pa.Schema | None = None) -> Iterator[pa.RecordBatch]:
    """Parse a chunk of JSON Lines; ``Unsupported`` on any mismatch with the OTLP schema.

    ``read_json`` on the whole chunk parses its blocks on every core; the streaming reader
    parses one block at a time (1M spans end to end: 17.8 s with the reader's own read-ahead,
    28-30 s when fed chunk by chunk, 18 s with read_json)."""
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        table = pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(block_size=PARSE_BLOCK_BYTES, use_threads=True),
            parse_options=pj.ParseOptions(
                explicit_schema=schema_of_lines or _schema(),
                unexpected_field_behavior="error",
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError) as exc:
        raise Unsupported(str(exc)) from exc
    yield from table.combine_chunks().to_batches()


# ------------------------------------------------------------------------------------ columns


def _all(mask: pa.Array) -> bool:
    import pyarrow.compute as pc

    # min_count=0: "all" of no values is True (Arrow's default answers null).
    return bool(pc.all(mask, min_count=0).as_py())


def _any(mask: pa.Array) -> bool:
    import pyarrow.compute as pc

    return bool(pc.any(mask, min_count=0).as_py())


def _field(arr: pa.Array, name: str) -> pa.Array:
    import pyarrow.compute as pc

    return pc.struct_field(arr, name)


def _offsets(lists: pa.Array) -> pa.Array:
    """Fresh 0-based int32 offsets for a list array (null lists count as empty)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.fill_null(pc.list_value_length(lists), 0).cast(pa.int32())
    return pa.concat_arrays(
        [pa.array([0], type=pa.int32()), pc.cumulative_sum(lengths).cast(pa.int32())]
    )


def _flatten(lists: pa.Array) -> pa.Array:
    """The values of a list array, in order, skipping null lists (matches ``_offsets``)."""
    import pyarrow as pa

    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    flat: pa.Array = lists.flatten()
    return flat


def _value_text(values: pa.Array) -> pa.Array:
    """AnyValue structs → text exactly as ``otlp.any_value_text`` renders them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    string = _field(values, "stringValue")
    boolean = pc.if_else(_field(values, "boolValue"), "true", "false")
    int_raw = _field(values, "intValue")
    try:
        integer = pc.cast(pc.cast(int_raw, pa.int64()), pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Unsupported(f"intValue not an int64: {exc}") from exc
    # Doubles and arrays are rare; formatting them exactly like the general decoder (Python repr,
    # JSON arrays, its precedence when a value sets several fields) is done in Python for just
    # those values.
    double = _field(values, "doubleValue")
    array = _field(values, "arrayValue")
    text = pc.coalesce(string, boolean, integer, _field(values, "bytesValue"))
    special = pc.fill_null(pc.or_(pc.is_valid(double), pc.is_valid(array)), False)
    if _any(special):
        rows = values.filter(special).to_pylist()
        rendered = pa.array(
            [any_value_text({k: v for k, v in _clean_value(r).items()}) for r in rows],
            type=pa.string(),
        )
        text = pc.replace_with_mask(text, special, rendered)
    return pc.fill_null(text, "")


def _clean_value(value: Any) -> dict[str, Any]:
    """A parsed AnyValue struct (every schema field present, most None) → its JSON shape."""
    if not isinstance(value, dict):
        return {}
    out = {k: v for k, v in value.items() if v is not None}
    array = out.get("arrayValue")
    if isinstance(array, dict):
        out["arrayValue"] = {
            "values": [
                {k: v for k, v in (x or {}).items() if v is not None}
                for x in (array.get("values") or [])
            ]
        }
    return out


def _maps(lists: pa.Array) -> pa.Array:
    """list<KV> → list of {key, value} entries (a MAP once inserted), values rendered as the
    general decoder renders them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kvs = _flatten(lists)
    if kvs.null_count:
        raise Unsupported("null attribute entry")
    keys = _field(kvs, "key")
    if keys.null_count:
        raise Unsupported("attribute without a key")
    values = _value_text(_field(kvs, "value"))
    entries = pa.StructArray.from_arrays(
        [keys, pc.cast(values, pa.string())], names=["key", "value"]
    )
    return pa.ListArray.from_arrays(_offsets(lists), entries)


def _ids(raw: pa.Array, size: int, what: str, *, required: bool) -> pa.Array:
    """Hex ids → lower-case; all-zero → ''; anything else (base64, wrong length) → Unsupported."""
    import pyarrow.compute as pc

    text = pc.fill_null(raw, "")
    ok = pc.or_(pc.equal(text, ""), pc.match_substring_regex(text, f"^[0-9a-fA-F]{{{size * 2}}}$"))
    if not _all(ok):
        raise Unsupported(f"{what} not {size}-byte hex")
    lower = pc.utf8_lower(text)
    out = pc.if_else(pc.match_substring_regex(lower, "^0+$"), "", lower)
    if required and _any(pc.equal(out, "")):
        raise Unsupported(f"{what} missing")
    return out


def _times(raw: pa.Array, what: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.fill_null(pc.cast(pc.if_else(pc.equal(raw, ""), None, raw), pa.int64()), 0)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Unsupported(f"{what} not an integer") from exc


def _checked_times(raw: pa.Array, what: str, *, required: bool) -> pa.Array:
    """Timestamps in the 2000..2100 window (0 allowed when not ``required``), else Unsupported."""
    import pyarrow.compute as pc

    ns = _times(raw, what)
    ok = _in_range(ns) if required else pc.or_(pc.equal(ns, 0), _in_range(ns))
    if not _all(ok):
        raise Unsupported(f"{what} missing or out of range" if required else f"{what} out of range")
    return ns


def _in_range(ns: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    return pc.and_(pc.greater_equal(ns, MIN_TS_NS), pc.less(ns, MAX_TS_NS))


def _enum_names(codes: pa.Array, table: dict[int, str], what: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    filled = pc.fill_null(codes, 0)
    if not _all(pc.and_(pc.greater_equal(filled, 0), pc.less(filled, len(table)))):
        raise Unsupported(f"{what} out of range")
    names = pa.array([table[i] for i in range(len(table))], type=pa.string())
    return names.take(filled)


def _list_of(values: pa.Array, parents: pa.Array) -> pa.Array:
    import pyarrow as pa

    return pa.ListArray.from_arrays(_offsets(parents), values)


def spans_table(batch: pa.RecordBatch) -> pa.Table:
    """One parsed block → an ``otel_traces``-shaped Arrow table (in file order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rs_lists = batch.column("resourceSpans")
    resources = _flatten(rs_lists)
    ss_lists = _field(resources, "scopeSpans")
    scopes = _flatten(ss_lists)
    scope_res = pc.list_parent_indices(ss_lists)
    sp_lists = _field(scopes, "spans")
    spans = _flatten(sp_lists)
    span_scope = pc.list_parent_indices(sp_lists)
    span_res = scope_res.take(span_scope)
    n = len(spans)
    # A null where an object belongs ({} or {"resourceSpans": null} lines, null list entries) is a
    # reject for the general decoder, so it is not this path's to decide.
    for arr, what in (
        (rs_lists, "resourceSpans"),
        (resources, "resource block"),
        (scopes, "scope block"),
        (spans, "span"),
    ):
        if arr.null_count:
            raise Unsupported(f"null {what}")

    res_maps, services = _resources(resources)
    scope_py = _field(scopes, "scope").to_pylist()
    scope_names = pa.array([(s or {}).get("name") or "" for s in scope_py], type=pa.string())
    scope_versions = pa.array([(s or {}).get("version") or "" for s in scope_py], type=pa.string())

    trace_id = _ids(_field(spans, "traceId"), 16, "traceId", required=True)
    span_id = _ids(_field(spans, "spanId"), 8, "spanId", required=True)
    parent = _ids(_field(spans, "parentSpanId"), 8, "parentSpanId", required=False)
    if _any(pc.equal(parent, span_id)):
        raise Unsupported("a span is its own parent")
    start = _checked_times(_field(spans, "startTimeUnixNano"), "startTimeUnixNano", required=True)
    end = _checked_times(_field(spans, "endTimeUnixNano"), "endTimeUnixNano", required=False)
    duration = pc.if_else(
        pc.equal(end, 0), 0, pc.max_element_wise(pc.subtract(end, start), 0)
    ).cast(pa.uint64())
    status = _field(spans, "status")

    events = _field(spans, "events")
    ev = _flatten(events)
    if ev.null_count:
        raise Unsupported("null event")
    ev_parent = pc.list_parent_indices(events)
    ev_ts = _times(_field(ev, "timeUnixNano"), "event timeUnixNano")
    ev_ts = pc.if_else(_in_range(ev_ts), ev_ts, start.take(ev_parent))
    links = _field(spans, "links")
    lk = _flatten(links)
    if lk.null_count:
        raise Unsupported("null link")

    def text(arr: pa.Array) -> pa.Array:
        return pc.fill_null(arr, "")

    columns = [
        start.cast(pa.timestamp("ns")),
        trace_id,
        span_id,
        parent,
        text(_field(spans, "traceState")),
        text(_field(spans, "name")),
        _enum_names(_field(spans, "kind"), SPAN_KINDS, "span kind"),
        services.take(span_res),
        res_maps.take(span_res),
        scope_names.take(span_scope),
        scope_versions.take(span_scope),
        _maps(_field(spans, "attributes")),
        duration,
        _enum_names(_field(status, "code"), STATUS_CODES, "status code"),
        text(_field(status, "message")),
        _list_of(ev_ts.cast(pa.timestamp("ns")), events),
        _list_of(text(_field(ev, "name")), events),
        _list_of(_maps(_field(ev, "attributes")), events),
        _list_of(_ids(_field(lk, "traceId"), 16, "link traceId", required=False), links),
        _list_of(_ids(_field(lk, "spanId"), 8, "link spanId", required=False), links),
        _list_of(text(_field(lk, "traceState")), links),
        _list_of(_maps(_field(lk, "attributes")), links),
    ]
    table = pa.Table.from_arrays(columns, schema=arrow_schema(schema.OTEL_TRACES))
    assert table.num_rows == n
    return table


def _resources(resources: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Resource blocks → (their attribute maps, their service names).

    Resources and scopes are few (one per export request): they are decoded with the general
    decoder's own code."""
    import pyarrow as pa

    res_attrs_py = []
    services = []
    for res in _field(resources, "resource").to_pylist():
        try:
            kv = attributes([_clean_kv(a) for a in ((res or {}).get("attributes") or [])])
        except RecordError as exc:
            raise Unsupported(f"resource attributes: {exc}") from exc
        res_attrs_py.append(kv)
        services.append(next((v for k, v in kv if k == "service.name"), ""))
    return pa.array(res_attrs_py, type=entries_type()), pa.array(services, type=pa.string())


def _clean_kv(kv: Any) -> Any:
    """A parsed KV struct → the JSON shape it came from (for the general attribute decoder)."""
    if not isinstance(kv, dict):
        return kv
    return {"key": kv.get("key"), "value": _clean_value(kv.get("value"))}


def tables(data: bytes) -> Iterator[pa.Table]:
    """``otel_traces``-shaped tables from a chunk of resourceSpans lines; ``Unsupported`` as soon
    as anything in it is irregular."""
    for batch in read_batches(data):
        table = spans_table(batch)
        if find_cycles(table):
            raise Unsupported("parent cycle")
        yield table


def find_cycles(table: pa.Table) -> bool:
    """Whether any span in the block closes a parent cycle (same walk as the general decoder)."""
    import pyarrow.compute as pc

    has_parent = pc.not_equal(table.column("ParentSpanId"), "")
    if not _any(has_parent):
        return False
    sub = table.filter(has_parent)
    trace = sub.column("TraceId").to_pylist()
    span = sub.column("SpanId").to_pylist()
    par = sub.column("ParentSpanId").to_pylist()
    parent_of = dict(zip(zip(trace, span, strict=True), par, strict=True))
    for t, s, p in zip(trace, span, par, strict=True):
        node = p
        for _ in range(MAX_PARENT_WALK):
            if node == s:
                return True
            node = parent_of.get((t, node), "")
            if not node:
                break
    return False


# ----------------------------------------------------------------------- logs and metric points
# The same rule as for spans: a line is decoded here only if the general decoder would store it
# exactly so; anything else raises ``Unsupported`` and the whole file goes to the general decoder.

LOGS_LINE = b'{"resourceLogs":'
METRICS_LINE = b'{"resourceMetrics":'
# The general decoder reads a point's value from ``asDouble`` when the key is there, even as
# null; a parsed column cannot tell a null from an absent key, so such lines are left to it.
_NULL_DOUBLE = re.compile(rb'"asDouble"\s*:\s*null')


def _logs_schema() -> pa.Schema:
    import pyarrow as pa

    s = pa.string()
    i = pa.int64()
    record = pa.struct(
        [
            ("timeUnixNano", s),
            ("observedTimeUnixNano", s),
            ("severityNumber", i),
            ("severityText", s),
            ("body", _any_value_type()),
            ("attributes", _attrs_type()),
            ("droppedAttributesCount", i),
            ("flags", i),
            ("traceId", s),
            ("spanId", s),
            ("eventName", s),
        ]
    )
    scope_logs = pa.struct(
        [("scope", _scope_type()), ("logRecords", pa.list_(record)), ("schemaUrl", s)]
    )
    resource_logs = pa.struct(
        [("resource", _resource_type()), ("scopeLogs", pa.list_(scope_logs)), ("schemaUrl", s)]
    )
    return pa.schema([("resourceLogs", pa.list_(resource_logs))])


def _metrics_schema() -> pa.Schema:
    import pyarrow as pa

    s = pa.string()
    i = pa.int64()
    f = pa.float64()
    attrs = _attrs_type()
    exemplar = pa.struct(
        [
            ("filteredAttributes", attrs),
            ("timeUnixNano", s),
            ("asDouble", f),
            ("asInt", s),
            ("spanId", s),
            ("traceId", s),
        ]
    )
    common = [
        ("attributes", attrs),
        ("startTimeUnixNano", s),
        ("timeUnixNano", s),
        ("exemplars", pa.list_(exemplar)),
        ("flags", i),
    ]
    number = pa.struct([*common, ("asDouble", f), ("asInt", s)])
    histogram = pa.struct(
        [
            *common,
            ("count", s),
            ("sum", f),
            ("bucketCounts", pa.list_(s)),
            ("explicitBounds", pa.list_(f)),
            ("min", f),
            ("max", f),
        ]
    )
    # No exponentialHistogram or summary: a metric of those kinds is an unexpected field.
    metric = pa.struct(
        [
            ("name", s),
            ("description", s),
            ("unit", s),
            ("metadata", attrs),  # read past, as the general decoder does (no column holds it)
            ("gauge", pa.struct([("dataPoints", pa.list_(number))])),
            (
                "sum",
                pa.struct(
                    [
                        ("dataPoints", pa.list_(number)),
                        ("aggregationTemporality", i),
                        ("isMonotonic", pa.bool_()),
                    ]
                ),
            ),
            (
                "histogram",
                pa.struct([("dataPoints", pa.list_(histogram)), ("aggregationTemporality", i)]),
            ),
        ]
    )
    scope_metrics = pa.struct(
        [("scope", _scope_type()), ("metrics", pa.list_(metric)), ("schemaUrl", s)]
    )
    resource_metrics = pa.struct(
        [
            ("resource", _resource_type()),
            ("scopeMetrics", pa.list_(scope_metrics)),
            ("schemaUrl", s),
        ]
    )
    return pa.schema([("resourceMetrics", pa.list_(resource_metrics))])


class _Blocks:
    """A parsed block's resource → scope → item nesting, flattened, with each item's scope and
    resource as row indices."""

    def __init__(self, lines: pa.Array, scopes_key: str, items_key: str) -> None:
        import pyarrow.compute as pc

        self.resources = _flatten(lines)
        scope_lists = _field(self.resources, scopes_key)
        self.scopes = _flatten(scope_lists)
        scope_res = pc.list_parent_indices(scope_lists)
        item_lists = _field(self.scopes, items_key)
        self.items = _flatten(item_lists)
        self.item_scope = pc.list_parent_indices(item_lists)
        self.item_res = scope_res.take(self.item_scope)
        for arr, what in (
            (lines, "resource list"),
            (self.resources, "resource block"),
            (self.scopes, "scope block"),
            (self.items, items_key),
        ):
            if arr.null_count:
                raise Unsupported(f"null {what}")
        self.res_maps, self.services = _resources(self.resources)
        self.res_schema = _text(_field(self.resources, "schemaUrl"))
        self.scope_schema = _text(_field(self.scopes, "schemaUrl"))
        self._scope_fields()

    def _scope_fields(self) -> None:
        import pyarrow as pa

        names, versions, maps, dropped = [], [], [], []
        for block in _field(self.scopes, "scope").to_pylist():
            scope = block or {}
            names.append(scope.get("name") or "")
            versions.append(scope.get("version") or "")
            try:
                maps.append(attributes([_clean_kv(a) for a in (scope.get("attributes") or [])]))
            except RecordError as exc:
                raise Unsupported(f"scope attributes: {exc}") from exc
            count = scope.get("droppedAttributesCount") or 0
            if not 0 <= count < 2**32:
                raise Unsupported("scope droppedAttributesCount out of range")
            dropped.append(count)
        self.scope_names = pa.array(names, type=pa.string())
        self.scope_versions = pa.array(versions, type=pa.string())
        self.scope_maps = pa.array(maps, type=entries_type())
        self.scope_dropped = pa.array(dropped, type=pa.uint32())


def _text(arr: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    return pc.fill_null(arr, "")


def _ints(raw: pa.Array, to: pa.DataType, what: str) -> pa.Array:
    """Decimal strings → integers of type ``to``, as ``to_int`` reads them: ``""`` is 0, absent
    stays null; anything that does not fit ``to`` is ``Unsupported``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(pc.if_else(pc.equal(raw, ""), "0", raw), to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Unsupported(f"{what} not an integer of its column: {exc}") from exc


def _int_range(values: pa.Array, low: int, high: int, what: str) -> pa.Array:
    import pyarrow.compute as pc

    filled = pc.fill_null(values, 0)
    if not _all(pc.and_(pc.greater_equal(filled, low), pc.less_equal(filled, high))):
        raise Unsupported(f"{what} out of range")
    return filled


def _first_value_of(key: str, lists: pa.Array, n: int) -> pa.Array:
    """Per row of ``lists`` (attribute lists), the text of its first ``key`` entry, else null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kvs = _flatten(lists)
    hit = pc.fill_null(pc.equal(_field(kvs, "key"), key), False)
    if not _any(hit):
        return pa.nulls(n, pa.string())
    parents = pc.list_parent_indices(lists).filter(hit)
    values = _value_text(_field(kvs, "value").filter(hit))
    if len(parents) > 1:
        first = pa.concat_arrays(
            [pa.array([True]), pc.not_equal(parents.slice(1), parents.slice(0, len(parents) - 1))]
        )
        parents, values = parents.filter(first), values.filter(first)
    rows = pc.is_in(pa.array(range(n), type=pa.int64()), value_set=parents.cast(pa.int64()))
    return pc.replace_with_mask(pa.nulls(n, pa.string()), rows, values)


def _table(table: schema.Table, columns: dict[str, pa.Array]) -> pa.Table:
    import pyarrow as pa

    arrow = arrow_schema(table)
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in arrow], schema=arrow)


def logs_table(batch: pa.RecordBatch) -> pa.Table:
    """One parsed block of resourceLogs lines → an ``otel_logs``-shaped table (file order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    blocks = _Blocks(batch.column("resourceLogs"), "scopeLogs", "logRecords")
    records = blocks.items
    n = len(records)
    time = _times(_field(records, "timeUnixNano"), "timeUnixNano")
    observed = _times(_field(records, "observedTimeUnixNano"), "observedTimeUnixNano")
    ts = pc.if_else(pc.equal(time, 0), observed, time)
    if not _all(_in_range(ts)):
        raise Unsupported("log time missing or out of range")
    attr_lists = _field(records, "attributes")
    event = _text(_field(records, "eventName"))
    fallback = _first_value_of("event.name", attr_lists, n)
    event = pc.if_else(pc.equal(event, ""), pc.coalesce(fallback, ""), event)
    flags = pc.bit_wise_and(pc.fill_null(_field(records, "flags"), 0), 0xFF)
    seconds = pc.multiply(pc.divide(ts, 10**9), 10**6)  # TimestampTime: whole seconds, in µs
    scope, res = blocks.item_scope, blocks.item_res
    return _table(
        schema.OTEL_LOGS,
        {
            "Timestamp": ts.cast(pa.timestamp("ns")),
            "TimestampTime": seconds.cast(pa.timestamp("us")),
            "TraceId": _ids(_field(records, "traceId"), 16, "traceId", required=False),
            "SpanId": _ids(_field(records, "spanId"), 8, "spanId", required=False),
            "TraceFlags": flags,
            "SeverityText": _text(_field(records, "severityText")),
            "SeverityNumber": _int_range(
                _field(records, "severityNumber"), 0, 24, "severityNumber"
            ),
            "ServiceName": blocks.services.take(res),
            "Body": _value_text(_field(records, "body")),
            "ResourceSchemaUrl": blocks.res_schema.take(res),
            "ResourceAttributes": blocks.res_maps.take(res),
            "ScopeSchemaUrl": blocks.scope_schema.take(scope),
            "ScopeName": blocks.scope_names.take(scope),
            "ScopeVersion": blocks.scope_versions.take(scope),
            "ScopeAttributes": blocks.scope_maps.take(scope),
            "LogAttributes": _maps(attr_lists),
            "EventName": event,
        },
    )


def _number_values(values: pa.Array) -> pa.Array:
    """``asDouble``, else ``asInt`` as a double, else null (``otlp._number_value``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    as_int = _ints(_field(values, "asInt"), pa.int64(), "asInt")
    try:
        as_float = pc.cast(as_int, pa.float64(), safe=False)  # rounds to nearest, as float()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Unsupported(f"asInt: {exc}") from exc
    return pc.coalesce(_field(values, "asDouble"), as_float)


def _exemplar_columns(points: pa.Array) -> dict[str, pa.Array]:
    import pyarrow as pa

    lists = _field(points, "exemplars")
    ex = _flatten(lists)
    if ex.null_count:
        raise Unsupported("null exemplar")
    return {
        "Exemplars.FilteredAttributes": _list_of(_maps(_field(ex, "filteredAttributes")), lists),
        "Exemplars.TimeUnix": _list_of(
            _times(_field(ex, "timeUnixNano"), "exemplar time").cast(pa.timestamp("ns")), lists
        ),
        "Exemplars.Value": _list_of(_number_values(ex), lists),
        "Exemplars.SpanId": _list_of(
            _ids(_field(ex, "spanId"), 8, "exemplar spanId", required=False), lists
        ),
        "Exemplars.TraceId": _list_of(
            _ids(_field(ex, "traceId"), 16, "exemplar traceId", required=False), lists
        ),
    }


def metric_tables(batch: pa.RecordBatch) -> dict[str, pa.Table]:
    """One parsed block of resourceMetrics lines → a table per point kind that occurs in it
    (``gauge``, ``sum``, ``histogram``; keys of ``schema.METRIC_TABLES``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    blocks = _Blocks(batch.column("resourceMetrics"), "scopeMetrics", "metrics")
    metrics = blocks.items
    names = _text(_field(metrics, "name"))
    if _any(pc.equal(names, "")):
        raise Unsupported("metric without a name")
    # A metric's points are read from the first of its kinds that is present, as the general
    # decoder reads them; a metric with none is its reject.
    earlier = pa.array([False] * len(metrics))
    chosen = {}
    for kind in ("gauge", "sum", "histogram"):
        present = pc.is_valid(_field(metrics, kind))
        chosen[kind] = pc.and_(present, pc.invert(earlier))
        earlier = pc.or_(earlier, present)
    if not _all(earlier):
        raise Unsupported("metric without data")
    out = {}
    for kind, mask in chosen.items():
        if not _any(mask):
            continue
        which = pc.indices_nonzero(mask)
        data = _field(metrics, kind).take(which)
        point_lists = _field(data, "dataPoints")
        points = _flatten(point_lists)
        if points.null_count:
            raise Unsupported("null data point")
        if not len(points):
            continue
        metric = which.take(pc.list_parent_indices(point_lists))
        scope = blocks.item_scope.take(metric)
        res = blocks.item_res.take(metric)
        ts = _checked_times(_field(points, "timeUnixNano"), "timeUnixNano", required=True)
        start = _checked_times(
            _field(points, "startTimeUnixNano"), "startTimeUnixNano", required=False
        )
        columns = {
            "ResourceAttributes": blocks.res_maps.take(res),
            "ResourceSchemaUrl": blocks.res_schema.take(res),
            "ScopeName": blocks.scope_names.take(scope),
            "ScopeVersion": blocks.scope_versions.take(scope),
            "ScopeAttributes": blocks.scope_maps.take(scope),
            "ScopeDroppedAttrCount": blocks.scope_dropped.take(scope),
            "ScopeSchemaUrl": blocks.scope_schema.take(scope),
            "ServiceName": blocks.services.take(res),
            "MetricName": names.take(metric),
            "MetricDescription": _text(_field(metrics, "description")).take(metric),
            "MetricUnit": _text(_field(metrics, "unit")).take(metric),
            "Attributes": _maps(_field(points, "attributes")),
            "StartTimeUnix": start.cast(pa.timestamp("ns")),
            "TimeUnix": ts.cast(pa.timestamp("ns")),
            "Flags": _int_range(_field(points, "flags"), 0, 2**32 - 1, "flags"),
            **_exemplar_columns(points),
        }
        if kind != "gauge":
            temporality = _field(data, "aggregationTemporality").take(
                pc.list_parent_indices(point_lists)
            )
            columns["AggregationTemporality"] = _int_range(
                temporality, -(2**31), 2**31 - 1, "aggregationTemporality"
            )
        if kind in ("gauge", "sum"):
            columns["Value"] = _number_values(points)
        if kind == "sum":
            monotonic = _field(data, "isMonotonic").take(pc.list_parent_indices(point_lists))
            columns["IsMonotonic"] = pc.fill_null(monotonic, False)
        if kind == "histogram":
            buckets = _field(points, "bucketCounts")
            columns |= {
                "Count": pc.fill_null(_ints(_field(points, "count"), pa.uint64(), "count"), 0),
                "Sum": _field(points, "sum"),
                "BucketCounts": _list_of(
                    pc.fill_null(_ints(_flatten(buckets), pa.uint64(), "bucketCounts"), 0),
                    buckets,
                ),
                "ExplicitBounds": _list_of(
                    _flatten(_field(points, "explicitBounds")),
                    _field(points, "explicitBounds"),
                ),
                "Min": _field(points, "min"),
                "Max": _field(points, "max"),
            }
        out[kind] = _table(schema.METRIC_TABLES[kind], columns)
    return out


def log_tables(data: bytes) -> list[tuple[schema.Table, pa.Table]]:
    """(``otel_logs``, a table shaped like it) per block of a chunk of resourceLogs lines."""
    return [(schema.OTEL_LOGS, logs_table(b)) for b in read_batches(data, _logs_schema())]


def metric_point_tables(data: bytes) -> list[tuple[schema.Table, pa.Table]]:
    """(point table, a table shaped like it) per block and point kind of a chunk of
    resourceMetrics lines."""
    if _NULL_DOUBLE.search(data):
        raise Unsupported("asDouble: null")
    return [
        (schema.METRIC_TABLES[kind], table)
        for b in read_batches(data, _metrics_schema())
        for kind, table in metric_tables(b).items()
    ]
