"""Ingest: inputs → decoded rows → Arrow batches → the store, one transaction per file.

Guarantees (DESIGN.md quality bars):
- idempotent: spans are deduplicated on (TraceId, SpanId), logs and metric points on their full
  identity, within a batch (Python sets) and against the store (an anti-join on insert);
- one transaction per file: a crash or Ctrl-C leaves the store as it was before that file;
- a bad line or record is refused into ``aiobs_rejects`` with its line and reason, and the rest of the
  file lands.

Must not import typer, rich or textual (progress is reported through a callback).
"""

from __future__ import annotations

import contextlib
import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aiobs.errors import BadInputError, StoreUnavailableError
from aiobs.ingest import fastpath
from aiobs.ingest.arrow_schema import rows_to_arrow
from aiobs.ingest.otlp import Decoder, Reject
from aiobs.ingest.sources import (
    GZIP_MAGIC,
    Detected,
    Input,
    Skipped,
    Unreadable,
    expand_inputs,
    iter_units,
    open_input,
)
from aiobs.ingest.values import MAX_PARENT_WALK
from aiobs.store import schema
from aiobs.store.connection import LockWait, Store, readers_waiting
from aiobs.store.engine import duckdb_engine

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from aiobs.ingest.redact import Redactor

T = TypeVar("T")

BATCH_ROWS = 20_000
SPAN_KEY_SQL = "('0x' || {col})::UBIGINT"
INGEST_MEMORY_LIMIT = "512MB"
# How long ingest, having let readers in between files, waits for them to finish (a reader holds
# the store only while it runs) before it gives up with the files so far stored.
WRITER_REOPEN_WAIT = 120.0

ProgressFn = Callable[[int, int], None]  # (bytes read so far in this file, records decoded so far)


@dataclass
class FileResult:
    source: str
    format: str = ""
    size_bytes: int = 0
    spans: int = 0
    log_records: int = 0
    metric_points: int = 0
    duplicates: int = 0
    rejected: int = 0
    redacted: int | None = None  # values rewritten by --redact; None when it was off
    seconds: float = 0.0
    error: str | None = None
    # Why records were refused: each reason (positions left out) and how many times.
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return self.spans + self.log_records + self.metric_points

    @property
    def outcome(self) -> str:
        """``landed`` (every record stored or already there), ``partial`` (some refused) or
        ``refused`` (nothing from the file is in the store)."""
        if self.error is not None or self.records + self.duplicates == 0:
            return "refused"
        return "partial" if self.rejected else "landed"

    def top_reasons(self, n: int = 3) -> list[tuple[str, int]]:
        return sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


@dataclass
class IngestSummary:
    files: int = 0
    spans: int = 0
    log_records: int = 0
    metric_points: int = 0
    duplicates: int = 0
    rejected: int = 0
    redacted: int | None = None
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    per_file: list[FileResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def parsed(self) -> int:
        return self.spans + self.log_records + self.metric_points + self.duplicates

    @property
    def outcome(self) -> str:
        """``all`` (everything named landed), ``partial`` (some landed, some was refused: a
        record, a file, an argument that named nothing) or ``nothing`` (nothing landed)."""
        if self.parsed == 0:
            return "nothing"
        return "partial" if self.errors or self.rejected else "all"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["outcome"] = self.outcome
        out["seconds"] = round(self.seconds, 3)
        for f, result in zip(out["per_file"], self.per_file, strict=True):
            f["seconds"] = round(f["seconds"], 3)
            f["outcome"] = result.outcome
            del f["reasons"]
            f["top_reasons"] = [{"reason": r, "count": n} for r, n in result.top_reasons()]
        return out


# --------------------------------------------------------------------------------------- arrow


def select_list(table: schema.Table, alias: str = "b") -> str:
    """The batch's columns in table order, with entry lists turned into DuckDB MAPs."""
    parts = []
    for name, duck in table.columns:
        col = f'{alias}."{name}"'
        if duck == schema.MAP:
            parts.append(f'map_from_entries({col}) AS "{name}"')
        elif duck == f"{schema.MAP}[]":
            parts.append(f'list_transform({col}, lambda e: map_from_entries(e)) AS "{name}"')
        else:
            parts.append(f'{col} AS "{name}"')
    return ", ".join(parts)


# ------------------------------------------------------------------------------------ dedupe


def _dedupe_in_batch(table: schema.Table, rows: list[tuple[Any, ...]]) -> tuple[list[Any], int]:
    """Drop repeats of a record within the batch (first occurrence wins).

    Map columns arrive as lists of (key, value) tuples: ``tuple()`` makes them hashable."""
    names = table.column_names
    types = dict(table.columns)
    keys = schema.DEDUPE_KEYS[table.name]
    plain = [names.index(k) for k in keys if types[k] != schema.MAP]
    maps = [names.index(k) for k in keys if types[k] == schema.MAP]
    seen: set[Any] = set()
    out = []
    for row in rows:
        key = (tuple([row[i] for i in plain]), tuple([tuple(row[i]) for i in maps]))
        if key in seen:
            continue
        seen.add(key)
        out.append(row)
    return out, len(rows) - len(out)


def _anti_join_sql(table: schema.Table, *, first_in_batch: bool = False) -> str:
    """Insert the batch's records that the store does not hold yet (logs and metric points).

    ``first_in_batch``: also keep only the first of records repeated within the batch (its
    ``_row`` order), which the general decoder does in Python before this.

    bench/ingest.py --logs 300000: 26-28k records/s whole process; restricting the stored side to
    the batch's time range measured no faster (DuckDB already narrows the probe), so it is plain."""
    types = dict(table.columns)
    source = "aiobs_batch"
    if first_in_batch:
        keys = ", ".join(f'"{k}"' for k in schema.DEDUPE_KEYS[table.name])
        source = (
            "(SELECT * FROM aiobs_batch"
            f" QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY _row) = 1)"
        )
    conds = []
    for key in schema.DEDUPE_KEYS[table.name]:
        if types[key] == schema.MAP:
            conds.append(f'CAST(t."{key}" AS VARCHAR) = CAST(b."{key}" AS VARCHAR)')
        else:
            conds.append(f't."{key}" IS NOT DISTINCT FROM b."{key}"')
    return (
        f"INSERT INTO {table.name} SELECT b.* FROM"
        f" (SELECT {select_list(table, 'a')} FROM {source} a) b"
        f" ANTI JOIN {table.name} t ON " + " AND ".join(conds)
    )


# _ARROW_BY_NAME: a batch reaches DuckDB as the local variable ``aiobs_batch``, which a query in
# the same function reads by that name (DuckDB's replacement scan of Python objects), not through
# con.register(): a registered name is a catalog entry, and inside the file's one transaction
# DuckDB keeps every dropped entry — with the Arrow batch it points to — until the commit. Peak
# RSS then grew with the file (bench/ingest.py: 1.5 GB at 1M spans, 3.0 GB at 3M); read by name,
# each batch is freed when the next replaces it.


def insert_spans(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> int:
    """Insert an ``otel_traces``-shaped batch, skipping spans already stored; returns rows added.

    The first occurrence of a (TraceId, SpanId) in the batch wins (file order). Against the store,
    spans are looked up in ``aiobs_span_keys`` (the span id as a 64-bit integer): probing it costs
    ~1/10 of an anti-join on the two id strings, which on 1M spans was a third of ingest time
    (bench/ingest.py: 31-40 s with, 22.6 s without). Only when a key is already there (a
    re-ingest, an overlapping export, or two spans sharing a random span id) is the exact
    anti-join on (TraceId, SpanId) run.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if "_row" not in batch.column_names:
        batch = batch.append_column("_row", pa.array(range(batch.num_rows), type=pa.int64()))
    aiobs_batch = batch  # noqa: F841 — the SQL below reads it by name (see _ARROW_BY_NAME)
    first = f"SELECT {select_list(schema.OTEL_TRACES)} FROM aiobs_batch b"
    ids = pc.binary_join_element_wise(batch["TraceId"], batch["SpanId"], "")
    if pc.count_distinct(ids).as_py() != batch.num_rows:
        # Only batches that repeat a span pay for finding its first occurrence.
        first += " WHERE b._row IN (SELECT min(_row) FROM aiobs_batch GROUP BY TraceId, SpanId)"
    known = con.execute(
        "SELECT count(*) FROM aiobs_batch b SEMI JOIN aiobs_span_keys k"
        f" ON k.span = {SPAN_KEY_SQL.format(col='b.SpanId')}"
    ).fetchone()
    if known and known[0]:
        sql = (
            f"INSERT INTO otel_traces SELECT b.* FROM ({first}) b"
            " ANTI JOIN otel_traces t ON t.TraceId = b.TraceId AND t.SpanId = b.SpanId"
        )
    else:
        sql = f"INSERT INTO otel_traces {first}"
    row = con.execute(sql).fetchone()
    added = int(row[0]) if row else 0
    if added:
        # Keys of every span now stored from this batch (a superset when some were
        # duplicates: harmless, it only sends more lookups down the exact path).
        con.execute(
            "INSERT INTO aiobs_span_keys SELECT DISTINCT "
            f"{SPAN_KEY_SQL.format(col='SpanId')} FROM aiobs_batch"
        )
    return added


def insert_records(
    con: duckdb.DuckDBPyConnection, table: schema.Table, batch: pa.Table, *, deduped: bool = False
) -> int:
    """Insert a logs- or metric-points-shaped batch: the first of each record repeated in the
    batch (unless ``deduped``: the general decoder has dropped repeats in Python), unless the
    store holds it already. Returns rows added."""
    import pyarrow as pa

    if batch.num_rows == 0:
        return 0
    if not deduped:
        batch = batch.append_column("_row", pa.array(range(batch.num_rows), type=pa.int64()))
    aiobs_batch = batch  # noqa: F841 — the SQL below reads it by name (see _ARROW_BY_NAME)
    row = con.execute(_anti_join_sql(table, first_in_batch=not deduped)).fetchone()
    if table is schema.OTEL_LOGS:
        con.execute(
            f"INSERT INTO aiobs_trace_log_times {schema.trace_log_times_sql('aiobs_batch')}"
        )
    return int(row[0]) if row else 0


def _break_cycles(
    rows: list[tuple[Any, ...]], decoder: Decoder, parent_of: dict[tuple[str, str], str]
) -> list[tuple[Any, ...]]:
    """Refuse each span that would close a parent cycle among the file's spans so far.

    ``parent_of`` lives as long as the file, so a cycle across batches is caught too; one across
    files is caught when the file is done (``_FileWriter.refuse_cycles_with_stored``)."""
    kept = []
    for row in rows:
        trace_id, span_id, parent = row[1], row[2], row[3]
        cycle = False
        node = parent
        for _ in range(MAX_PARENT_WALK):
            if not node:
                break
            if node == span_id:
                cycle = True
                break
            node = parent_of.get((trace_id, node), "")
        if cycle:
            decoder.rows.rejects.append(
                Reject(
                    decoder.rows.span_lines.get((trace_id, span_id)),
                    None,
                    f"span: {span_id} in trace {trace_id} closes a parent cycle via {parent}",
                    f'{{"traceId":"{trace_id}","spanId":"{span_id}","parentSpanId":"{parent}"}}',
                )
            )
            continue
        parent_of[(trace_id, span_id)] = parent
        kept.append(row)
    return kept


# ----------------------------------------------------------------------------------- the job


# orjson's position ("… : line 1 column 7 (char 6)"): the line is the reject's own, the column
# would make every line's reason a different one.
_POSITION = re.compile(r":? ?line \d+ column \d+ \(char \d+\)$")


def reason_kind(reason: str) -> str:
    """A reject's reason without the position inside its line, to count alike reasons as one."""
    return _POSITION.sub("", reason).strip()


class _FileWriter:
    """Writes one file's rows into the store inside the caller's transaction."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        result: FileResult,
        ingest_id: int,
        redactor: Redactor | None = None,
    ) -> None:
        self.con = con
        self.result = result
        self.ingest_id = ingest_id
        self.redactor = redactor
        if redactor is not None:
            result.redacted = 0
        self.parent_of: dict[tuple[str, str], str] = {}
        # Where this file's spans will start in otel_traces (append-only): the canonical columns
        # are materialised for rows from here on when the file is done.
        row = con.execute("SELECT count(*) FROM otel_traces").fetchone()
        self.span_rows_before = int(row[0]) if row else 0

    def feed(self, decoder: Decoder, doc: Any, line: int | None, offset: int | None) -> int:
        """Decode one document; write a batch once enough rows are waiting. Returns records."""
        before = decoder.rows.size
        decoder.feed(doc, line, offset)
        if decoder.rows.size >= BATCH_ROWS:
            added = decoder.rows.size - before
            self.flush(decoder, self.result.source)
            return added
        return decoder.rows.size - before

    def flush(self, decoder: Decoder, source: str) -> None:
        rows = decoder.rows
        if rows.traces:
            traces, dup = _dedupe_in_batch(schema.OTEL_TRACES, rows.traces)
            traces = _break_cycles(traces, decoder, self.parent_of)
            self.result.duplicates += dup
            new = self._insert_spans(traces)
            self.result.spans += new
            self.result.duplicates += len(traces) - new
        if rows.logs:
            logs, dup = _dedupe_in_batch(schema.OTEL_LOGS, rows.logs)
            new = self._insert(schema.OTEL_LOGS, logs)
            self.result.log_records += new
            self.result.duplicates += dup + len(logs) - new
        for kind, points in rows.metrics.items():
            if points:
                table = schema.METRIC_TABLES[kind]
                points, dup = _dedupe_in_batch(table, points)
                new = self._insert(table, points)
                self.result.metric_points += new
                self.result.duplicates += dup + len(points) - new
        self.reject(source, rows.rejects)
        rows.clear()

    def reject(self, source: str, rejects: Sequence[Reject | Unreadable]) -> None:
        if not rejects:
            return
        self.result.rejected += len(rejects)
        reasons = self.result.reasons
        for r in rejects:
            kind = reason_kind(r.reason)
            reasons[kind] = reasons.get(kind, 0) + 1
        self.con.executemany(
            "INSERT INTO aiobs_rejects VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
            [
                [
                    self.ingest_id,
                    self.text(source),
                    r.line,
                    r.offset,
                    self.text(r.reason),
                    self.excerpt(r.excerpt),
                ]
                for r in rejects
            ],
        )

    def refuse_cycles_with_stored(self) -> None:
        """Refuse this file's spans that close a parent cycle with spans stored before the file.

        Within the file, ``_break_cycles`` (and the vectorised reader's check) refuse them as they
        come; across files only the store knows the other parents. Only traces that have spans on
        both sides of this file are walked, so a file of new traces costs one scan of its own
        rows and one of the stored trace ids."""
        before = self.span_rows_before
        if not before or not self.result.spans:
            return
        found = self.con.execute(
            f"""
WITH RECURSIVE
new_traces AS (SELECT DISTINCT TraceId FROM otel_traces WHERE rowid >= {before}),
mixed AS (
  SELECT DISTINCT TraceId FROM otel_traces
  WHERE rowid < {before} AND TraceId IN (SELECT TraceId FROM new_traces)),
edges AS (
  SELECT TraceId AS t, SpanId AS s, nullif(ParentSpanId, '') AS p, rowid >= {before} AS is_new
  FROM otel_traces WHERE TraceId IN (SELECT TraceId FROM mixed)),
walk(t, start, parent, node, depth) AS (
  SELECT t, s, p, p, 1 FROM edges WHERE is_new AND p IS NOT NULL
  UNION ALL
  SELECT w.t, w.start, w.parent, e.p, w.depth + 1
  FROM walk w JOIN edges e ON e.t = w.t AND e.s = w.node
  WHERE w.node <> w.start AND e.p IS NOT NULL AND w.depth < {MAX_PARENT_WALK})
SELECT DISTINCT t, start, parent FROM walk WHERE node = start ORDER BY 1, 2"""
        ).fetchall()
        if not found:
            return
        for trace_id, span_id, _ in found:
            self.con.execute(
                f"DELETE FROM otel_traces WHERE rowid >= {before} AND TraceId = ? AND SpanId = ?",
                [trace_id, span_id],
            )
        self.result.spans -= len(found)
        self.reject(
            self.result.source,
            [
                Reject(
                    None,
                    None,
                    f"span: {span_id} in trace {trace_id} closes a parent cycle via {parent}"
                    " with spans stored before this file",
                    f'{{"traceId":"{trace_id}","spanId":"{span_id}","parentSpanId":"{parent}"}}',
                )
                for trace_id, span_id, parent in found
            ],
        )

    def text(self, value: str) -> str:
        """A source name or a reject's reason, as it may be stored."""
        return self.redactor.text(value) if self.redactor is not None and value else value

    def excerpt(self, value: str) -> str:
        """A rejected record's excerpt, as it may be stored."""
        from aiobs.ingest.redact import excerpt

        return excerpt(self.redactor, value) if self.redactor is not None else value

    def redact(self, batch: pa.Table) -> pa.Table:
        """The batch as it may be stored: rewritten by ``--redact`` when it is on."""
        if self.redactor is None:
            return batch
        batch, changed = self.redactor.table(batch)
        self.result.redacted = (self.result.redacted or 0) + changed
        return batch

    def _insert_spans(self, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        batch = self.redact(self._to_arrow(schema.OTEL_TRACES, rows))
        return insert_spans(self.con, batch) if batch.num_rows else 0

    def _insert(self, table: schema.Table, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        batch = self.redact(self._to_arrow(table, rows))
        return insert_records(self.con, table, batch, deduped=True)

    def _to_arrow(self, table: schema.Table, rows: list[tuple[Any, ...]]) -> pa.Table:
        """Arrow batch of ``rows``; a value that does not fit its column refuses only its row.

        Conversion errors must be caught here, before DuckDB: a failed statement would abort the
        file's whole transaction.
        """
        import pyarrow as pa

        errors = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError)
        try:
            return rows_to_arrow(table, rows)
        except errors:
            pass
        good, bad = [], []
        for row in rows:
            try:
                rows_to_arrow(table, [row])
                good.append(row)
            except errors as exc:
                bad.append(
                    Reject(
                        None,
                        None,
                        f"{table.name}: a value does not fit its column ({exc})",
                        repr(row[:3])[:300],
                    )
                )
        self.reject(self.result.source, bad)
        return rows_to_arrow(table, good)


# Below this size the general decoder is as fast as setting up the vectorised reader.
FAST_PATH_MIN_BYTES = 4 << 20


def _fast_path_source(path: Path) -> bool:
    """Cheap check on the first line: a traces-only OTLP JSON Lines file, plain or gzip."""
    import gzip

    try:
        with path.open("rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            fh: Any = gzip.GzipFile(fileobj=raw) if head == GZIP_MAGIC else raw
            first = fh.readline(4 << 20)
    except (OSError, EOFError):
        return False
    return first.endswith(b"\n") and fastpath.eligible(first)


SPANS_LINE = b'{"resourceSpans":'
_CHUNKED = {SPANS_LINE: "spans", fastpath.LOGS_LINE: "logs", fastpath.METRICS_LINE: "metrics"}


def _split_lines(fh: Any) -> Iterator[tuple[str, Any]]:
    """A JSON Lines file as chunks of compact resourceSpans, resourceLogs and resourceMetrics
    lines for the vectorised reader — ("spans" | "logs" | "metrics", bytes) — and ("other",
    (line, offset, bytes)) for everything else (anything written differently), which the general
    decoder takes line by line.

    Logs and metric points are deduplicated against what is stored before them ("first
    occurrence wins"), so pending log and metric chunks are handed on before an "other" line: the
    store then sees those tables' records in file order. Span chunks need not be (a span's
    identity is its ids)."""
    chunks: dict[str, list[bytes]] = {"spans": [], "logs": [], "metrics": []}
    sizes = dict.fromkeys(chunks, 0)
    offset = 0

    def take(kind: str) -> tuple[str, bytes]:
        data = b"".join(chunks[kind])
        chunks[kind], sizes[kind] = [], 0
        return (kind, data)

    for line_no, raw in enumerate(fh, start=1):
        kind = _CHUNKED.get(raw[:19]) or _CHUNKED.get(raw[:17]) or _CHUNKED.get(raw[:16])
        if kind is not None:
            chunks[kind].append(raw if raw.endswith(b"\n") else raw + b"\n")
            sizes[kind] += len(raw)
            if sizes[kind] >= fastpath.BLOCK_BYTES:
                yield take(kind)
        elif raw.strip():
            for pending in ("logs", "metrics"):
                if chunks[pending]:
                    yield take(pending)
            yield ("other", (line_no, offset, raw))
        offset += len(raw)
    for kind in chunks:
        if chunks[kind]:
            yield take(kind)


_PARSERS: dict[str, Callable[[bytes], Any]] = {
    "spans": lambda data: list(fastpath.tables(data)),
    "logs": fastpath.log_tables,
    "metrics": fastpath.metric_point_tables,
}


def _parsed(parts: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Chunks parsed into tables (in the producer thread, beside the inserts)."""
    for kind, payload in parts:
        yield (kind, _PARSERS[kind](payload)) if kind in _PARSERS else (kind, payload)


def _prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run ``items`` in a background thread, ``depth`` ahead of the consumer; its exceptions are
    re-raised in the consumer. Parsing (pyarrow) and inserting (DuckDB) both release the GIL."""
    import queue
    import threading

    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("done", None))
        except BaseException as exc:
            q.put(("error", exc))

    worker = threading.Thread(target=produce, daemon=True, name="aiobs-ingest-parse")
    worker.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)
        worker.join()


def _next_ingest_id(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT nextval('aiobs_ingest_seq')").fetchone()
    return int(row[0]) if row else 0


def _record_ingest(
    con: duckdb.DuckDBPyConnection,
    writer: _FileWriter,
    inp: Input,
    result: FileResult,
    sha256: str,
    started_at: datetime,
) -> None:
    from aiobs import __version__
    from aiobs.semantic.views import materialise

    writer.refuse_cycles_with_stored()
    if result.spans:
        materialise(con, from_row=writer.span_rows_before)
    columns = ", ".join(name for name, _ in schema.AIOBS_INGESTS.columns)
    con.execute(
        f"INSERT INTO aiobs_ingests ({columns}, redacted)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            writer.ingest_id,
            writer.text(inp.name if inp.path is None else str(Path(inp.name).resolve())),
            result.size_bytes,
            sha256,
            result.format,
            started_at,
            result.seconds,
            result.spans,
            result.log_records,
            result.metric_points,
            result.duplicates,
            result.rejected,
            __version__,
            result.redacted,
        ],
    )


def _ingest_fast(
    store: Store,
    inp: Input,
    progress: ProgressFn | None,
    redactor: Redactor | None,
    lines: Path | None = None,
    offsets: Sequence[int] = (),
    form: str = "otlp-json-lines (vectorised)",
) -> FileResult:
    """A JSON Lines file in one transaction: compact resourceSpans, resourceLogs and
    resourceMetrics lines through the vectorised reader (``fastpath``), all other lines through
    the general decoder. ``Unsupported`` leaves no trace. With ``lines``, the lines are read from
    that file (``_frames_as_lines``: the input's protobuf frames, one line a frame, frame N at
    ``offsets[N - 1]`` of the input); the input itself is what is hashed and recorded."""
    import gzip
    import hashlib
    import threading

    import duckdb
    import orjson

    path = inp.path
    assert path is not None
    started = time.perf_counter()
    started_at = datetime.now(UTC).replace(tzinfo=None)
    result = FileResult(source=inp.name, format=form)
    result.size_bytes = path.stat().st_size
    source = lines or path
    # Progress is reported in the input's bytes.
    scale = result.size_bytes / max(1, source.stat().st_size) if lines else 1.0
    digest = hashlib.sha256()

    def hash_file() -> None:
        # hashlib releases the GIL on large buffers: this runs beside the parser.
        with path.open("rb") as fh:
            while chunk := fh.read(8 << 20):
                digest.update(chunk)

    hasher = threading.Thread(target=hash_file, daemon=True)
    hasher.start()
    con = store.con
    writer = _FileWriter(con, result, _next_ingest_id(con), redactor)
    decoder = Decoder()
    unreadable: list[Unreadable] = []
    raw_file = source.open("rb")
    gz = raw_file.read(2) == GZIP_MAGIC
    raw_file.seek(0)
    stream: Any = gzip.GzipFile(fileobj=raw_file) if gz else raw_file
    con.execute("BEGIN TRANSACTION")
    try:
        decoded = 0
        for kind, payload in _prefetch(_parsed(_split_lines(stream))):
            if kind == "spans":
                for table in payload:
                    new = insert_spans(con, writer.redact(table))
                    result.spans += new
                    result.duplicates += table.num_rows - new
                    decoded += table.num_rows
            elif kind in ("logs", "metrics"):
                # Rows the general decoder holds from earlier lines go first (file order).
                writer.flush(decoder, inp.name)
                for target, table in payload:
                    new = insert_records(con, target, writer.redact(table))
                    if target is schema.OTEL_LOGS:
                        result.log_records += new
                    else:
                        result.metric_points += new
                    result.duplicates += table.num_rows - new
                    decoded += table.num_rows
            else:
                line_no, offset, raw = payload
                if offsets:
                    offset = offsets[line_no - 1]
                try:
                    doc = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    unreadable.append(
                        Unreadable(
                            line_no,
                            offset,
                            f"invalid JSON: {exc}",
                            raw[:300].decode("utf-8", "replace"),
                        )
                    )
                    continue
                decoded += writer.feed(decoder, doc, line_no, offset)
            if progress is not None:
                progress(int(raw_file.tell() * scale), decoded)
        writer.flush(decoder, inp.name)
        writer.reject(inp.name, unreadable)
        hasher.join()
        result.seconds = time.perf_counter() - started
        _record_ingest(con, writer, inp, result, digest.hexdigest(), started_at)
        con.execute("COMMIT")
    except fastpath.Unsupported:
        con.execute("ROLLBACK")
        raise
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        if isinstance(exc, duckdb.OutOfMemoryException):
            raise  # not the input's doing: the general decoder would run out the same way
        # e.g. duplicate attribute keys in a MAP: the general decoder handles those record by record.
        raise fastpath.Unsupported(f"store refused a block: {exc}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        # A truncated or corrupt gzip: the general decoder keeps what precedes the damage.
        con.execute("ROLLBACK")
        raise fastpath.Unsupported(f"read failed: {exc}") from exc
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        raw_file.close()
        hasher.join()
    return result


def _frames_as_lines(path: Path) -> tuple[Path, list[int]] | None:
    """A file of length-prefixed OTLP export requests that starts with spans, as a temporary
    OTLP/JSON Lines file of one line a frame, read as the general decoder reads frames
    (``sources._iter_binary``: trace requests field by field, ``proto.traces_dict``), and each
    frame's offset in the file, so it takes the vectorised path (102k spans: 10.4-11.0 s through
    the general decoder). None when it is not such a file or a frame is unreadable: the general
    decoder reads it and says what it refuses."""
    import tempfile

    import orjson

    from aiobs.ingest.sources import Detected, Unreadable, _iter_binary

    found = Detected()
    with path.open("rb") as fh:
        out = tempfile.NamedTemporaryFile(  # noqa: SIM115 (handed on, removed by the caller)
            "wb", prefix="aiobs-frames-", suffix=".jsonl", delete=False
        )
        offsets: list[int] = []
        ok = False
        try:
            for unit in _iter_binary(fh, found):
                if isinstance(unit, Unreadable) or found.encoding != "protobuf-frames":
                    return None
                _, offset, doc = unit
                if not offsets and "resourceSpans" not in doc:
                    return None  # spans first: what the vectorised reader is for
                offsets.append(int(offset or 0))
                # Logs and metrics as the general decoder reads them from frames (the leading
                # space keeps them off the vectorised reader: MessageToDict writes enum names).
                lead = b"" if "resourceSpans" in doc else b" "
                out.write(lead + orjson.dumps(doc) + b"\n")
            ok = bool(offsets)
        finally:
            out.close()
            if not ok:
                Path(out.name).unlink(missing_ok=True)
    return (Path(out.name), offsets) if ok else None


def ingest_file(
    store: Store,
    inp: Input,
    *,
    progress: ProgressFn | None = None,
    fast: bool | None = None,
    redactor: Redactor | None = None,
) -> FileResult:
    """Ingest one input in one transaction. Raises ``BadInputError`` if it cannot be opened.

    ``fast``: None picks the vectorised path for large regular trace files, True tries it for any
    file (tests), False never. Either way the result is the same rows.
    """

    vectorised = (
        fast is not False
        and inp.path is not None
        and inp.path.is_file()
        and (fast or inp.path.stat().st_size >= FAST_PATH_MIN_BYTES)
    )
    if vectorised and inp.path is not None and _fast_path_source(inp.path):
        try:
            return _ingest_fast(store, inp, progress, redactor)
        except fastpath.Unsupported:
            pass  # the general decoder below reads it again, and explains what it refuses
    elif vectorised and inp.path is not None and (converted := _frames_as_lines(inp.path)):
        lines, offsets = converted
        try:
            return _ingest_fast(
                store, inp, progress, redactor, lines, offsets, "otlp-protobuf-frames (vectorised)"
            )
        except fastpath.Unsupported:
            pass
        finally:
            lines.unlink(missing_ok=True)

    started = time.perf_counter()
    started_at = datetime.now(UTC).replace(tzinfo=None)
    result = FileResult(source=inp.name)
    reader, size = open_input(inp)
    con = store.con
    writer = _FileWriter(con, result, _next_ingest_id(con), redactor)
    decoder = Decoder()
    unreadable: list[Unreadable] = []
    detected = Detected()
    con.execute("BEGIN TRANSACTION")
    try:
        decoded = 0
        for unit in iter_units(reader, detected):
            if isinstance(unit, Unreadable):
                unreadable.append(unit)
                continue
            line, offset, doc = unit
            decoded += writer.feed(decoder, doc, line, offset)
            if progress is not None:
                progress(reader.bytes_read, decoded)
        writer.flush(decoder, inp.name)
        writer.reject(inp.name, unreadable)
        result.size_bytes = size if size is not None else reader.bytes_read
        result.seconds = time.perf_counter() - started
        result.format = detected.describe(list(decoder.forms))
        _record_ingest(con, writer, inp, result, reader.sha256.hexdigest(), started_at)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        if inp.path is not None:
            reader.raw.close()
    return result


def configure_for_ingest(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> None:
    """Settings of a connection that ingests (the ``ingest`` command, the demo builder, and
    ``collect``'s merges with a lower ``memory_limit``)."""
    # Bound DuckDB's buffer pool while one big transaction is open (peak RSS on bench/ingest.py,
    # 1M spans: 1.85 GB unbounded, 1.55 GB at 512 MB); it spills to disk past that.
    con.execute(f"SET memory_limit = '{memory_limit or INGEST_MEMORY_LIMIT}'")
    # Rows of one statement may be appended in any order, so DuckDB spreads an insert over its
    # threads (bench/ingest.py, 1M spans, two sittings of 3 alternating pairs: medians 19.4 ->
    # 18.1 s and 20.3 -> 19.8 s, faster in 5 of the 6 pairs). Nothing reads insertion order: a
    # batch's first occurrences are picked by its own row numbers, and a file's new rows are
    # found as those past the table's old end (rowid).
    con.execute("SET preserve_insertion_order = false")


def ingest_paths(
    store: Store,
    args: list[str],
    *,
    progress: ProgressFn | None = None,
    on_file_start: Callable[[Input, int | None], None] | None = None,
    fast: bool | None = None,
    redact: bool = False,
    config: dict[str, Any] | None = None,
    memory_limit: str | None = None,
) -> IngestSummary:
    """Ingest every input named by ``args`` (paths, dirs, globs, ``-``); ``redact``: rewrite
    secrets and personal data first (``aiobs.ingest.redact``, with the config's ``[redact]``)."""
    started = time.perf_counter()
    memory_limit = memory_limit or INGEST_MEMORY_LIMIT  # read at the call: tests lower it
    configure_for_ingest(store.con, memory_limit)
    redactor = make_redactor(store.con, config or {}) if redact else None
    engine = duckdb_engine()
    inputs, problems, skipped = expand_inputs(args)
    summary = IngestSummary(errors=list(problems), skipped=skipped)
    for number, inp in enumerate(inputs):
        if number and readers_waiting(store.path):
            # Between two files nothing is open: let the readers waiting for the store in.
            store.reopen(
                wait=LockWait(max(store.wait.seconds, WRITER_REOPEN_WAIT), store.wait.notice)
            )
            configure_for_ingest(store.con, memory_limit)
        if on_file_start is not None:
            size = inp.path.stat().st_size if inp.path is not None and inp.path.exists() else None
            on_file_start(inp, size)
        try:
            res = ingest_file(store, inp, progress=progress, fast=fast, redactor=redactor)
        except engine.OutOfMemoryException as exc:
            # The files before this one are stored; the next would most likely run out too.
            raise StoreUnavailableError(
                f"{inp.name}: DuckDB ran out of memory storing it (limit {memory_limit}"
                " during ingest); nothing from it was kept",
                hint="ingest it in smaller files (the limit bounds one file's transaction)",
            ) from exc
        except BadInputError as exc:
            summary.errors.append(exc.message)
            summary.per_file.append(FileResult(source=inp.name, error=exc.message))
            continue
        except OSError as exc:
            # A read error mid-file (I/O error, file vanished): that file is rolled back, the
            # others still land.
            message = f"{inp.name}: read failed ({exc.strerror or exc}); nothing from it was kept"
            summary.errors.append(message)
            summary.per_file.append(FileResult(source=inp.name, error=message))
            continue
        summary.per_file.append(res)
        if res.records + res.duplicates == 0:
            reason = f"{inp.name}: nothing could be parsed"
            if res.rejected:
                reason += (
                    f' ({res.rejected} rejected; see `aiobs query "select * from aiobs_rejects"`)'
                )
            res.error = reason
            summary.errors.append(reason)
        summary.files += 1
        summary.spans += res.spans
        summary.log_records += res.log_records
        summary.metric_points += res.metric_points
        summary.duplicates += res.duplicates
        summary.rejected += res.rejected
        if res.redacted is not None:
            summary.redacted = (summary.redacted or 0) + res.redacted
    summary.seconds = time.perf_counter() - started
    return summary


def make_redactor(con: duckdb.DuckDBPyConnection, config: dict[str, Any]) -> Redactor:
    """The store's redactor: its pseudonym key (made on first use, kept in ``aiobs_meta``) and
    the config's extra patterns and keys."""
    import secrets

    from aiobs.ingest.redact import Redactor, redact_config

    _, patterns, keys = redact_config(config)
    row = con.execute("SELECT value FROM aiobs_meta WHERE key = 'redact.key'").fetchone()
    if row is None:
        key = secrets.token_hex(32)
        con.execute("INSERT INTO aiobs_meta VALUES ('redact.key', ?, now()::TIMESTAMP)", [key])
    else:
        key = str(row[0])
    return Redactor(bytes.fromhex(key), patterns, keys)
