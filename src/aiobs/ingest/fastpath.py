"""The vectorised ingest path for large, regular OTLP/JSON trace files.

The general decoder (``otlp.Decoder``) walks every span in Python: ~50 µs a span, ~10k spans/s end
to end (bench/ingest.py). Most big inputs are regular — collector file-exporter JSON Lines of
``resourceSpans`` with spec-shaped values — and for those pyarrow's multi-threaded JSON reader, with
an explicit schema, parses a block of lines into Arrow columns in C++ and we derive the exporter
columns with Arrow compute.

The rule that keeps the two paths identical: this path handles only input it can decode exactly as
the general decoder would. Anything irregular — a field not in the schema (``kvlistValue``, logs or
metrics lines, snake_case keys), a type that differs from the spec (enum names, int64 as numbers),
a bad id or timestamp, duplicate attribute keys, a parent cycle, an unparsable line — raises
``Unsupported``; the caller rolls the file's transaction back and ingests it with the general
decoder, which also produces the rejects. tests/test_fastpath.py checks both paths give the same
rows.

Must not import duckdb, typer, rich or textual at module level.
"""

from __future__ import annotations

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


def _schema() -> pa.Schema:
    import pyarrow as pa

    s = pa.string()
    i = pa.int64()
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
    attrs = pa.list_(pa.struct([("key", s), ("value", any_value)]))
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
    scope = pa.struct(
        [("name", s), ("version", s), ("attributes", attrs), ("droppedAttributesCount", i)]
    )
    scope_spans = pa.struct([("scope", scope), ("spans", pa.list_(span)), ("schemaUrl", s)])
    resource = pa.struct([("attributes", attrs), ("droppedAttributesCount", i)])
    resource_spans = pa.struct(
        [("resource", resource), ("scopeSpans", pa.list_(scope_spans)), ("schemaUrl", s)]
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


def read_batches(data: bytes) -> Iterator[pa.RecordBatch]:
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
                explicit_schema=_schema(), unexpected_field_behavior="error"
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

    # Resources and scopes are few (one per export request): decode them with the general code.
    res_attrs_py = []
    services = []
    for res in _field(resources, "resource").to_pylist():
        try:
            kv = attributes([_clean_kv(a) for a in ((res or {}).get("attributes") or [])])
        except RecordError as exc:
            raise Unsupported(f"resource attributes: {exc}") from exc
        res_attrs_py.append(kv)
        services.append(next((v for k, v in kv if k == "service.name"), ""))
    res_maps = pa.array(res_attrs_py, type=entries_type())
    scope_py = _field(scopes, "scope").to_pylist()
    scope_names = pa.array([(s or {}).get("name") or "" for s in scope_py], type=pa.string())
    scope_versions = pa.array([(s or {}).get("version") or "" for s in scope_py], type=pa.string())

    trace_id = _ids(_field(spans, "traceId"), 16, "traceId", required=True)
    span_id = _ids(_field(spans, "spanId"), 8, "spanId", required=True)
    parent = _ids(_field(spans, "parentSpanId"), 8, "parentSpanId", required=False)
    if _any(pc.equal(parent, span_id)):
        raise Unsupported("a span is its own parent")
    start = _times(_field(spans, "startTimeUnixNano"), "startTimeUnixNano")
    if not _all(_in_range(start)):
        raise Unsupported("start time missing or out of range")
    end = _times(_field(spans, "endTimeUnixNano"), "endTimeUnixNano")
    if not _all(pc.or_(pc.equal(end, 0), _in_range(end))):
        raise Unsupported("end time out of range")
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
        pa.array(services, type=pa.string()).take(span_res),
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
