"""The vectorised ingest path gives exactly the rows the general decoder gives, or steps aside.

Each case ingests the same file twice — once with ``fast=True`` (vectorised when it can be), once
with ``fast=False`` (the general decoder) — into two fresh stores and compares every column of
every table, plus the bookkeeping counts.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from aiobs.backend.duckdb import open_store
from aiobs.ingest.pipeline import ingest_paths
from aiobs.store.schema import TELEMETRY_TABLES
from conftest import CONFORMANCE

T0 = 1_763_000_000_000_000_000


def _value(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["s", "s", "s", "i", "d", "b", "a", "bytes", "empty"])
    if kind == "s":
        return {"stringValue": rng.choice(["x", "", "ünïcode ✓", 'quote " and \\ slash', "a\nb"])}
    if kind == "i":
        return {"intValue": str(rng.choice([0, -3, 42, 2**62]))}
    if kind == "d":
        return {"doubleValue": rng.choice([0.5, 3.0, 1e-7, 1e16, -2.25, 123456789.0])}
    if kind == "b":
        return {"boolValue": rng.choice([True, False])}
    if kind == "a":
        return {
            "arrayValue": {
                "values": [{"stringValue": "stop"}, {"intValue": "7"}, {"doubleValue": 1.5}][
                    : rng.randint(0, 3)
                ]
            }
        }
    if kind == "bytes":
        return {"bytesValue": "AAEC"}
    return {}


def _attrs(rng: random.Random, n: int) -> list[dict[str, Any]]:
    keys = rng.sample(["gen_ai.request.model", "a", "b.c", "session.id", "n", "x.y.z", "k"], n)
    return [{"key": k, "value": _value(rng)} for k in keys]


def _span(rng: random.Random, i: int, trace: str, parent: str) -> dict[str, Any]:
    start = T0 + i * 1_000_003
    span: dict[str, Any] = {
        "traceId": trace.upper() if rng.random() < 0.2 else trace,
        "spanId": f"{rng.getrandbits(64) | 1:016x}",
        "parentSpanId": parent,
        "name": rng.choice(["chat gpt-4o", "execute_tool refund", ""]),
        "kind": rng.randint(0, 5),
        "startTimeUnixNano": str(start),
        "attributes": _attrs(rng, rng.randint(0, 5)),
    }
    if rng.random() < 0.9:
        span["endTimeUnixNano"] = str(start + rng.randint(-5, 10**9))
    if rng.random() < 0.7:
        span["status"] = {"code": rng.randint(0, 2), "message": rng.choice(["", "boom"])}
    if rng.random() < 0.3:
        span["events"] = [
            {
                "timeUnixNano": str(rng.choice([start + 5, 0])),
                "name": "exception",
                "attributes": _attrs(rng, 2),
            }
        ]
    if rng.random() < 0.2:
        span["links"] = [
            {"traceId": f"{rng.getrandbits(128):032x}", "spanId": f"{rng.getrandbits(64):016x}"}
        ]
    if rng.random() < 0.1:
        span["flags"] = 256
    return span


def _regular_lines(seed: int, lines: int = 30) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs = []
    i = 0
    for _ in range(lines):
        resources = []
        for _ in range(rng.randint(1, 2)):
            scopes = []
            for _ in range(rng.randint(1, 2)):
                trace = f"{rng.getrandbits(128) | 1:032x}"
                spans = []
                parent = rng.choice(["", "0000000000000000"])
                for _ in range(rng.randint(0, 6)):
                    span = _span(rng, i, trace, parent)
                    spans.append(span)
                    parent = span["spanId"] if rng.random() < 0.5 else parent
                    i += 1
                scopes.append({"scope": {"name": "s", "version": "1"}, "spans": spans})
            attrs = _attrs(rng, rng.randint(0, 3))
            if rng.random() < 0.8:
                attrs.append({"key": "service.name", "value": {"stringValue": "svc"}})
            resources.append({"resource": {"attributes": attrs}, "scopeSpans": scopes})
        docs.append({"resourceSpans": resources})
    return docs


def _hex(rng: random.Random, size: int) -> str:
    return f"{rng.getrandbits(size * 8) | 1:0{size * 2}x}"


def _log_record(rng: random.Random, i: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timeUnixNano": str(T0 + i * 999_983),
        "observedTimeUnixNano": str(T0 + i * 999_983 + 40),
        "severityNumber": rng.choice([0, 9, 13, 17, 24]),
        "severityText": rng.choice(["", "INFO", "ERROR"]),
        "attributes": _attrs(rng, rng.randint(0, 3)),
    }
    if rng.random() < 0.6:
        record["body"] = _value(rng)
    pick = rng.random()
    if pick < 0.3:
        record["eventName"] = "chat.opened"
    elif pick < 0.6:  # the event's name as an attribute (older SDKs): EventName comes from it
        record["attributes"].append({"key": "event.name", "value": {"stringValue": "page_view"}})
    if rng.random() < 0.5:
        record["traceId"] = _hex(rng, 16).upper() if rng.random() < 0.2 else _hex(rng, 16)
        record["spanId"] = _hex(rng, 8)
    if rng.random() < 0.2:
        del record["timeUnixNano"]  # observedTimeUnixNano stands in
    if rng.random() < 0.2:
        record["flags"] = rng.choice([1, 257])
    return record


def _points(rng: random.Random, kind: str, i: int) -> list[dict[str, Any]]:
    points = []
    for j in range(rng.randint(0, 4)):
        point: dict[str, Any] = {"timeUnixNano": str(T0 + (i * 10 + j) * 60_000_000_000)}
        if rng.random() < 0.7:
            point["startTimeUnixNano"] = str(T0)
        if rng.random() < 0.6:
            point["attributes"] = _attrs(rng, rng.randint(1, 2))
        if kind == "histogram":
            counts = [rng.randint(0, 5) for _ in range(4)]
            point |= {
                "count": str(sum(counts)),
                "sum": rng.random() * 10,
                "bucketCounts": [str(c) for c in counts],
                "explicitBounds": [0.1, 1.0, 10.0],
            }
            if rng.random() < 0.5:
                point |= {"min": 0.01, "max": 9.5}
        elif rng.random() < 0.5:
            point["asDouble"] = rng.choice([0.0, 0.25, 1e-9, 123.5, 7])
        else:
            point["asInt"] = str(rng.choice([0, 5, -3, 2**40]))
        if rng.random() < 0.2:
            point["exemplars"] = [
                {
                    "timeUnixNano": point["timeUnixNano"],
                    "asDouble": 0.5,
                    "traceId": _hex(rng, 16),
                    "spanId": _hex(rng, 8),
                    "filteredAttributes": _attrs(rng, 1),
                }
            ]
        if rng.random() < 0.1:
            point["flags"] = 1
        points.append(point)
    return points


def _signal_lines(seed: int, lines: int = 24) -> list[dict[str, Any]]:
    """Collector-style log and metric lines: every field the vectorised path reads, in the
    shapes exporters write them."""
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    for i in range(lines):
        resource = {
            "attributes": [
                *_attrs(rng, rng.randint(0, 2)),
                {"key": "service.name", "value": {"stringValue": rng.choice(["api", "web"])}},
            ]
        }
        scope: dict[str, Any] = {"name": "s", "version": rng.choice(["", "1.2"])}
        if rng.random() < 0.3:
            scope["attributes"] = _attrs(rng, 1)
        if rng.random() < 0.5:
            records = [_log_record(rng, i * 10 + j) for j in range(rng.randint(0, 5))]
            block = {"scope": scope, "logRecords": records, "schemaUrl": "https://s/1"}
            docs.append(
                {"resourceLogs": [{"resource": resource, "scopeLogs": [block], "schemaUrl": "r"}]}
            )
            continue
        metrics = []
        for kind in rng.sample(["gauge", "sum", "histogram"], rng.randint(1, 3)):
            data: dict[str, Any] = {"dataPoints": _points(rng, kind, i)}
            if kind != "gauge":
                data["aggregationTemporality"] = rng.choice([1, 2])
            if kind == "sum":
                data["isMonotonic"] = rng.random() < 0.5
            metric = {"name": f"m.{kind}", "unit": rng.choice(["", "ms"]), kind: data}
            if rng.random() < 0.3:
                metric["description"] = "what it counts"
            metrics.append(metric)
        block = {"scope": scope, "metrics": metrics}
        docs.append({"resourceMetrics": [{"resource": resource, "scopeMetrics": [block]}]})
    return docs


def _write(path: Path, docs: list[Any], extra_lines: list[str] = ()) -> Path:  # type: ignore[assignment]
    text = "\n".join([json.dumps(d) for d in docs] + list(extra_lines)) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _materialised_as_written(db: Path) -> None:
    """aiobs_spans, as the ingest left it (opening through aiobs would rebuild a stale one),
    holds exactly what the definitions compute from the stored spans: one row a span.

    Computed by the query ingest materialises with, over every row at once, so what is checked
    is that each file's rows were materialised, once. That this query equals the fields written
    out one by one (``canonical_select``) is test_semantic_parity's; planning that form took
    0.22 s a store, a fifth of this module's time."""
    import duckdb

    from aiobs.semantic.views import canonical_query

    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = con.execute("SELECT * FROM aiobs_spans ORDER BY 1, 2").fetchall()
        computed = con.execute(f"{canonical_query()} ORDER BY 1, 2").fetchall()
    finally:
        con.close()
    assert stored == computed


def _dump(db: Path) -> dict[str, Any]:
    _materialised_as_written(db)
    with open_store(db) as store:
        out: dict[str, Any] = {}
        for table in TELEMETRY_TABLES:
            cols = ", ".join(f'"{c}"::VARCHAR' for c in table.column_names)
            out[table.name] = sorted(
                store.con.execute(f"SELECT {cols} FROM {table.name}").fetchall()
            )
        out["counts"] = store.con.execute(
            "SELECT spans, log_records, metric_points, duplicates, rejected FROM aiobs_ingests"
            " ORDER BY ingest_id"
        ).fetchall()
        out["rejects"] = store.con.execute(
            "SELECT line, reason FROM aiobs_rejects ORDER BY ALL"
        ).fetchall()
        out["formats"] = [
            r[0] for r in store.con.execute("SELECT format FROM aiobs_ingests").fetchall()
        ]
    return out


def _both(tmp_path: Path, *paths: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    results = []
    for fast in (True, False):
        db = tmp_path / f"{fast}.duckdb"
        with open_store(db, read_only=False, create=True) as store:
            ingest_paths(store, [str(p) for p in paths], fast=fast)
        results.append(_dump(db))
    return results[0], results[1]


def _same_rows(fast: dict[str, Any], general: dict[str, Any]) -> None:
    for key in [t.name for t in TELEMETRY_TABLES] + ["counts", "rejects"]:
        assert fast[key] == general[key], key


@pytest.mark.parametrize("seed", range(6))
def test_regular_files_take_the_fast_path_and_match(tmp_path: Path, seed: int) -> None:
    suffix = ".jsonl.gz" if seed % 2 else ".jsonl"
    path = _write(tmp_path / f"t{seed}{suffix}", _regular_lines(seed))
    fast, general = _both(tmp_path, path)
    assert fast["formats"] == ["otlp-json-lines (vectorised)"]
    assert general["formats"] == ["otlp-json-lines (gzip)" if seed % 2 else "otlp-json-lines"]
    assert len(fast["otel_traces"]) > 20
    _same_rows(fast, general)


def test_reingest_and_duplicates_match(tmp_path: Path) -> None:
    docs = _regular_lines(11)
    a = _write(tmp_path / "a.jsonl", docs + docs[:3])  # duplicates inside the file
    b = _write(tmp_path / "b.jsonl", docs[5:])  # overlapping export
    again = _write(tmp_path / "again.jsonl", docs)  # the same export under another name
    fast, general = _both(tmp_path, a, b, again)
    _same_rows(fast, general)
    assert fast["formats"] == ["otlp-json-lines (vectorised)"] * 3
    assert fast["counts"][2][0] == 0  # re-ingesting adds nothing


IRREGULAR: dict[str, Any] = {
    "kvlist value": {"kvlistValue": {"values": [{"key": "a", "value": {"stringValue": "b"}}]}},
    "int as number": {"intValue": 5},
}


@pytest.mark.parametrize(
    "mutate",
    [
        "kvlist value",
        "int as number",
        "enum name",
        "base64 id",
        "duplicate key",
        "self parent",
        "cycle",
        "bad line",
        "log line",
        "absurd time",
    ],
)
def test_irregular_files_fall_back_and_match(tmp_path: Path, mutate: str) -> None:
    docs = _regular_lines(3)
    span = docs[0]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    while not span:
        docs.pop(0)
        span = docs[0]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    first = span[0]
    extra: list[str] = []
    if mutate in IRREGULAR:
        first["attributes"].append({"key": "irregular", "value": IRREGULAR[mutate]})
    elif mutate == "enum name":
        first["kind"] = "SPAN_KIND_CLIENT"
    elif mutate == "base64 id":
        first["spanId"] = "AAECAwQFBgc="
    elif mutate == "duplicate key":
        first["attributes"] += [{"key": "dup", "value": {"stringValue": v}} for v in "12"]
    elif mutate == "self parent":
        first["parentSpanId"] = first["spanId"]
    elif mutate == "cycle":
        second = dict(first, spanId="b" * 16, parentSpanId=first["spanId"])
        first["parentSpanId"] = "b" * 16
        span.append(second)
    elif mutate == "bad line":
        extra.append("{not json")
    elif mutate == "log line":
        extra.append(json.dumps({"resourceLogs": []}))
    elif mutate == "absurd time":
        first["startTimeUnixNano"] = str(32_503_680_000 * 10**9)  # year 3000
    path = _write(tmp_path / "t.jsonl", docs, extra)
    fast, general = _both(tmp_path, path)
    if mutate in ("bad line", "log line"):
        # Lines that are not compact resourceSpans go to the general decoder line by line; the
        # span lines stay on the vectorised path.
        assert fast["formats"] == ["otlp-json-lines (vectorised)"]
    else:
        assert fast["formats"] == general["formats"], (
            "an irregular file must use the general decoder"
        )
        assert "vectorised" not in fast["formats"][0]
    _same_rows(fast, general)


@pytest.mark.parametrize("seed", range(4))
def test_log_and_metric_lines_take_the_fast_path_and_match(tmp_path: Path, seed: int) -> None:
    docs = _signal_lines(seed) + _regular_lines(seed, lines=4)
    random.Random(seed).shuffle(docs)
    path = _write(tmp_path / "signals.jsonl", docs)
    fast, general = _both(tmp_path, path)
    assert fast["formats"] == ["otlp-json-lines (vectorised)"]
    assert len(fast["otel_logs"]) > 10
    assert sum(len(fast[f"otel_metrics_{k}"]) for k in ("gauge", "sum", "histogram")) > 10
    _same_rows(fast, general)


def test_repeated_logs_and_points_keep_the_first_on_both_paths(tmp_path: Path) -> None:
    """A point repeated with another value is the same point (its identity has no value): the
    first in the file is kept, as the general decoder keeps it; an exact repeat of a log record
    is one record. Both across and within chunks."""
    from aiobs.ingest import fastpath

    docs = _signal_lines(5)
    again = copy.deepcopy(docs)
    for doc in again:
        for rm in doc.get("resourceMetrics", []):
            for point in rm["scopeMetrics"][0]["metrics"][0].get("gauge", {}).get("dataPoints", []):
                point["asDouble"] = -1.0
    path = _write(tmp_path / "repeats.jsonl", docs + again + docs[:4])
    fast, general = _both(tmp_path, path)
    _same_rows(fast, general)
    assert fast["counts"][0][3] > 0  # duplicates counted
    assert all(row[14] != "-1.0" for row in fast["otel_metrics_gauge"])  # Value: the first's
    # One chunk per file is the usual case; several (a smaller block) must agree as well.
    (tmp_path / "small").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastpath, "BLOCK_BYTES", 2 << 10)
        small, _ = _both(tmp_path / "small", path)
    _same_rows(small, general)


@pytest.mark.parametrize(
    "mutate",
    [
        "exponential histogram",
        "summary",
        "null asDouble",
        "severity name",
        "base64 log id",
        "absurd log time",
        "metric without data",
        "spaced line",
    ],
)
def test_irregular_log_and_metric_lines_fall_back_and_match(tmp_path: Path, mutate: str) -> None:
    docs = _signal_lines(2)
    log = next(
        d
        for d in docs
        if d.get("resourceLogs") and d["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    )
    record = log["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    metric_doc = next(d for d in docs if "resourceMetrics" in d)
    metrics = metric_doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    point = {"timeUnixNano": str(T0), "asDouble": 1.5}
    extra: list[str] = []
    if mutate == "exponential histogram":
        metrics.append({"name": "e", "exponentialHistogram": {"dataPoints": [
            {"timeUnixNano": str(T0), "count": "1", "scale": 2, "positive": {"offset": 1, "bucketCounts": ["1"]}}
        ]}})  # fmt: skip
    elif mutate == "summary":
        metrics.append({"name": "q", "summary": {"dataPoints": [
            {"timeUnixNano": str(T0), "count": "2", "sum": 3.0, "quantileValues": [{"quantile": 0.5, "value": 1.0}]}
        ]}})  # fmt: skip
    elif mutate == "null asDouble":
        metrics.append(
            {"name": "n", "gauge": {"dataPoints": [dict(point, asDouble=None, asInt="4")]}}
        )
    elif mutate == "severity name":
        record["severityNumber"] = "SEVERITY_NUMBER_WARN"
    elif mutate == "base64 log id":
        record["spanId"] = "AAECAwQFBgc="
    elif mutate == "absurd log time":
        record["timeUnixNano"] = str(32_503_680_000 * 10**9)
    elif mutate == "metric without data":
        metrics.append({"name": "nothing"})
    elif mutate == "spaced line":
        # A repeat of a vectorised line, written another way: the general decoder's copy.
        extra.append("  " + json.dumps(log))
    path = _write(tmp_path / "t.jsonl", docs, extra)
    fast, general = _both(tmp_path, path)
    if mutate == "spaced line":
        # Not a compact line: the general decoder takes it; the rest stays vectorised.
        assert fast["formats"] == ["otlp-json-lines (vectorised)"]
    else:
        assert fast["formats"] == general["formats"], (
            "an irregular file must use the general decoder"
        )
        assert "vectorised" not in fast["formats"][0]
    _same_rows(fast, general)


def test_collector_capture_mixed_signals_match(tmp_path: Path) -> None:
    capture = CONFORMANCE / "otel-tui" / "test_data.json"
    if not capture.exists():
        pytest.skip("conformance corpus missing")
    fast, general = _both(tmp_path, capture)
    _same_rows(fast, general)
    # Signals mixed line by line: span lines vectorised, log and metric lines decoded one by one.
    assert fast["formats"] == ["otlp-json-lines (vectorised)"]
    assert len(fast["otel_traces"]) == 547


@pytest.mark.parametrize("fast", [True, False])
def test_shared_span_id_in_two_traces_is_two_spans(tmp_path: Path, fast: bool) -> None:
    """The span-key probe is only a hint: equal span ids in different traces are both kept."""
    docs = _regular_lines(5, lines=2)
    spans = [
        s for r in docs[0]["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"]
    ] or [_span(random.Random(1), 0, "a" * 32, "")]
    first = spans[0]
    other = dict(first, traceId="c" * 32, parentSpanId="")
    a = _write(tmp_path / "a.jsonl", [{"resourceSpans": [{"scopeSpans": [{"spans": [first]}]}]}])
    b = _write(tmp_path / "b.jsonl", [{"resourceSpans": [{"scopeSpans": [{"spans": [other]}]}]}])
    db = tmp_path / "s.duckdb"
    with open_store(db, read_only=False, create=True) as store:
        one = ingest_paths(store, [str(a), str(b)], fast=fast)
        again = ingest_paths(store, [str(b)], fast=fast)
        keys = store.con.execute("SELECT count(DISTINCT span) FROM aiobs_span_keys").fetchone()
    assert (one.spans, one.duplicates) == (2, 0)
    assert (again.spans, again.duplicates) == (0, 1)
    assert keys == (1,)


_ODD_VALUES: list[Any] = [
    None,
    "",
    0,
    -1,
    2**64,
    1.5,
    "x",
    "SPAN_KIND_CLIENT",
    [],
    {},
    [None],
    {"a": 1},
    True,
]


def _mutate(doc: Any, rng: random.Random) -> None:
    """Set one random field somewhere in the document to an odd value."""
    node = doc
    for _ in range(12):
        if isinstance(node, dict) and node:
            key = rng.choice(sorted(node))
            if rng.random() < 0.3 or not isinstance(node[key], dict | list) or not node[key]:
                node[key] = copy.deepcopy(rng.choice(_ODD_VALUES))
                return
            node = node[key]
        elif isinstance(node, list) and node:
            i = rng.randrange(len(node))
            if rng.random() < 0.2 or not isinstance(node[i], dict | list) or not node[i]:
                node[i] = copy.deepcopy(rng.choice(_ODD_VALUES))
                return
            node = node[i]
        else:
            return


DAMAGE_SEEDS = int(__import__("os").environ.get("AIOBS_DAMAGE_SEEDS", "40"))
# Each file is its own transaction with its own ingest row, so several share a store pair;
# what a test costs is opening and checking the two stores (~1 s), not the six-line files.
FILES_PER_STORE = 5


@pytest.mark.parametrize("first", range(0, DAMAGE_SEEDS, FILES_PER_STORE))
def test_random_damage_is_handled_the_same_on_both_paths(tmp_path: Path, first: int) -> None:
    paths = []
    for seed in range(first, min(first + FILES_PER_STORE, DAMAGE_SEEDS)):
        rng = random.Random(1000 + seed)
        docs = _regular_lines(seed, lines=6) + _signal_lines(seed, lines=4)
        for _ in range(rng.randint(1, 3)):
            _mutate(docs[rng.randrange(len(docs))], rng)
        paths.append(_write(tmp_path / f"t{seed}.jsonl", docs))
    fast, general = _both(tmp_path, *paths)
    assert len(fast["counts"]) == len(paths)  # one ingest a file
    _same_rows(fast, general)


@pytest.mark.parametrize("fast", [True, False])
def test_batches_are_freed_as_the_file_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    """A file is one transaction, but its batches must not live until the commit: memory would
    grow with the file (a registered batch is a catalog entry, which DuckDB keeps until the
    transaction ends — 3.0 GB peak on 3M spans). Arrow's own allocation count, taken as each batch
    is stored, stays flat across a 60-batch file instead of growing with it."""
    import pyarrow as pa

    from aiobs.ingest import fastpath, pipeline

    monkeypatch.setattr(fastpath, "BLOCK_BYTES", 32 << 10)
    monkeypatch.setattr(fastpath, "PARSE_BLOCK_BYTES", 32 << 10)
    monkeypatch.setattr(pipeline, "BATCH_ROWS", 200)
    path = _write(tmp_path / "many.jsonl", _regular_lines(3, lines=2000))
    held: list[int] = []
    stored: list[int] = []
    store_batch = pipeline.insert_spans

    def measured(con: Any, batch: Any) -> int:
        held.append(pa.total_allocated_bytes())
        stored.append(batch.nbytes)
        return store_batch(con, batch)

    monkeypatch.setattr(pipeline, "insert_spans", measured)
    with open_store(tmp_path / "s.duckdb", read_only=False, create=True) as store:
        summary = ingest_paths(store, [str(path)], fast=fast)
    assert summary.per_file[0].format == (
        "otlp-json-lines (vectorised)" if fast else "otlp-json-lines"
    )
    assert len(held) >= 60
    # Kept until the commit, the last batches would find every earlier one still allocated (more
    # than all the stored batches' bytes: the parsed blocks they came from are larger); freed,
    # only the few in flight (the parser runs a couple of blocks ahead).
    assert max(held[-5:]) < 0.25 * sum(stored), (max(held[-5:]), sum(stored))


def test_store_out_of_memory_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB running out of its ingest memory limit is not irregular input: the general decoder
    would run out the same way, slower. The file is rolled back, the files before it stay, and
    the user gets exit 3 and what to do."""
    from aiobs.ingest import pipeline
    from conftest import Cli

    small = _write(tmp_path / "small.jsonl", _regular_lines(1, lines=5))
    big = _write(tmp_path / "big.jsonl", _regular_lines(2, lines=12_000))
    assert big.stat().st_size > 20 << 20
    monkeypatch.setattr(pipeline, "INGEST_MEMORY_LIMIT", "16MB")
    fell_back: list[str] = []
    general = pipeline.iter_units
    monkeypatch.setattr(
        pipeline, "iter_units", lambda r, d=None: fell_back.append("x") or general(r, d)
    )
    cli = Cli(tmp_path / "s.duckdb")
    result = cli("ingest", str(small), str(big))
    assert result.exit_code == 3, result.output
    assert "big.jsonl: DuckDB ran out of memory" in result.output
    assert "nothing from it was kept" in result.output
    assert fell_back == ["x"]  # the small file only: the big one was not read again
    stored = {r["n"] for r in Cli(cli.db).query("SELECT count(*) AS n FROM otel_traces")}
    expected = sum(len(s["spans"]) for d in _regular_lines(1, lines=5)
                   for rs in d["resourceSpans"] for s in rs["scopeSpans"])  # fmt: skip
    assert stored == {expected}


EXTERNAL = CONFORMANCE / "external"


@pytest.mark.parametrize(
    "name",
    [
        "otlp2parquet-traces.otlp.jsonl",  # base64 ids, enum names
        "otlp2parquet-metrics-mixed.otlp.jsonl",
        "jaegerui-apiv3-gettrace.json",
        "jaegerui-genai.jaeger.json",
        "langfuse-pydantic-ai-tools.trace.json",
    ],
)
def test_external_files_match_on_both_paths(tmp_path: Path, name: str) -> None:
    if not EXTERNAL.is_dir():
        pytest.skip("conformance corpus missing")
    fast, general = _both(tmp_path, EXTERNAL / name)
    _same_rows(fast, general)
    assert fast["counts"][0][4] == 0  # nothing rejected
    assert sum(fast["counts"][0][:3]) > 0


def test_jaeger_lines_beside_span_lines_match(tmp_path: Path) -> None:
    """A JSON Lines file that starts like a collector export (vectorised) and carries Jaeger
    answers on later lines — an API v3 ``{"result": …}`` and a Jaeger JSON-model trace — which
    the general decoder takes line by line: the same rows as the general path alone."""
    if not EXTERNAL.is_dir():
        pytest.skip("conformance corpus missing")
    v3 = json.loads((EXTERNAL / "jaegerui-apiv3-gettrace.json").read_text())
    model = json.loads((EXTERNAL / "jaegerui-genai.jaeger.json").read_text())
    docs = [*_regular_lines(7, lines=4), v3, {"data": [model]}]
    path = _write(tmp_path / "mixed.jsonl", docs)
    fast, general = _both(tmp_path, path)
    assert fast["formats"] == ["otlp-json-lines (vectorised)"]
    _same_rows(fast, general)
    services = {row[7] for row in fast["otel_traces"]}  # ServiceName
    assert {"redis-manual", "coding-agent", "svc"} <= services


def _as_protobuf(doc: dict[str, Any]) -> bytes:
    """An OTLP/JSON export request as the protobuf message of its signal (ids from hex)."""
    import base64

    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    def ids(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
                else ids(v)
                for k, v in value.items()
            }
        return [ids(v) for v in value] if isinstance(value, list) else value

    cls = (
        ExportTraceServiceRequest
        if "resourceSpans" in doc
        else ExportLogsServiceRequest
        if "resourceLogs" in doc
        else ExportMetricsServiceRequest
    )
    return ParseDict(ids(doc), cls(), ignore_unknown_fields=True).SerializeToString()


def _frames(path: Path, docs: list[dict[str, Any]], tail: bytes = b"") -> Path:
    import struct

    bodies = [_as_protobuf(d) for d in docs]
    path.write_bytes(b"".join(struct.pack(">I", len(b)) + b for b in bodies) + tail)
    return path


@pytest.mark.parametrize("seed", range(3))
def test_protobuf_frames_take_the_fast_path_and_match(tmp_path: Path, seed: int) -> None:
    """A file of protobuf export requests (as bench/collect.py and exporters' file output write
    them) is read as JSON lines by the vectorised path: the rows, counts and rejects of the
    general decoder's frame-by-frame reading, duplicates and other signals included."""
    from aiobs.ingest.proto import decode_message

    docs = _regular_lines(seed, 20)
    docs += _signal_lines(seed, 8) + docs[:2]

    def readable(doc: dict[str, Any]) -> bool:  # an empty request is a reject: the general path
        try:
            return bool(decode_message(_as_protobuf(doc)))
        except ValueError:
            return False

    path = _frames(tmp_path / "spans.binpb", [d for d in docs if readable(d)])
    fast, general = _both(tmp_path, path)
    assert fast["formats"] == ["otlp-protobuf-frames (vectorised)"]
    assert general["formats"] != fast["formats"]
    assert len(fast["otel_traces"]) > 20 and fast["otel_logs"] + fast["otel_metrics_gauge"]
    _same_rows(fast, general)


def test_damaged_protobuf_frames_fall_back_and_match(tmp_path: Path) -> None:
    """A truncated last frame (a file still being written): the general decoder reads it all
    and records the damage, as without the fast path."""
    path = _frames(tmp_path / "cut.binpb", _regular_lines(5, 10), tail=b"\x00\x00\x01\x00\x0a")
    fast, general = _both(tmp_path, path)
    assert fast["formats"] == general["formats"] != ["otlp-protobuf-frames (vectorised)"]
    assert fast["rejects"] and len(fast["otel_traces"]) > 10
    _same_rows(fast, general)
