"""``aiobs collect``: an OTLP/HTTP receiver that lands what it is sent in the local store, through
the same ingest as ``aiobs ingest`` (idempotent, rejects recorded, redaction applied).

Why a spool: the store has one writer and DuckDB locks other processes out while it is open, and
an exporter wants its answer in milliseconds. So a request is checked (decompressed within a
bound, decoded as the OTLP message its path names) and appended to a spool segment next to the
store before it is answered 200; a merger thread rotates the segments every ``MERGE_SECONDS`` and
ingests each closed one as one file (one transaction), then deletes it. What was acknowledged is
on disk before the answer: a collector killed right after (SIGKILL included) loses nothing, and
the next ``aiobs collect`` ingests the segments it finds first. (An operating-system crash can
lose what the kernel had not written out yet: the spool is not fsynced per request.)

Reads while collecting: between merges the merger lets in the readers that wait for the store
(``readers_waiting``: it closes the store until they have opened it) and a reader that finds
``aiobs collect`` holding the lock waits for that (``store.connection``), so ``aiobs traces`` in
another terminal answers within a merge or two, with what was received until then.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import contextlib
import json
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiobs.store.connection import Store

MAX_BODY = 32 * 1024 * 1024  # bytes of a request, decompressed (the collector's default is 20 MiB)
MAX_BACKLOG = 512 * 1024 * 1024  # bytes spooled and not merged yet: beyond, 503 + Retry-After
MERGE_SECONDS = 0.5
# A merge is half a second of requests, not a file of millions of spans: DuckDB's buffer pool
# need not grow to ingest's 512 MB over a long run (bench/collect.py --soak: peak RSS).
COLLECT_MEMORY_LIMIT = "192MB"
SIGNALS = {
    "/v1/traces": "resourceSpans",
    "/v1/logs": "resourceLogs",
    "/v1/metrics": "resourceMetrics",
}
PROTOBUF, JSON = "application/x-protobuf", "application/json"


def lean_allocators() -> None:
    """For a long-running receiver: Arrow allocates from the C library's malloc rather than its
    mimalloc pool, and malloc keeps two arenas rather than one per thread (the HTTP, gRPC, merge
    and DuckDB threads each held memory freed long before). bench/collect.py, 90 s at 15k
    spans/s: peak RSS 764 MB as it was, 415 MB so. Call it before the first request."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX
    with contextlib.suppress(Exception):
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())


class Refused(Exception):
    """A request answered with an error status (and the message in the body)."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def inflate(body: bytes, encoding: str, limit: int = MAX_BODY) -> bytes:
    """``body`` decoded from its Content-Encoding, never past ``limit`` bytes (a gzip bomb is
    refused with 413 after inflating ``limit`` bytes, not inflated whole)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise Refused(413, f"body of {len(body):,} bytes is over the {limit:,}-byte limit")
        return body
    if encoding not in ("gzip", "deflate"):
        raise Refused(415, f"unsupported Content-Encoding {encoding!r} (gzip or none)")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Refused(400, f"body is not valid {encoding}: {exc}") from exc
    if len(out) > limit:
        raise Refused(413, f"body inflates past the {limit:,}-byte limit")
    if not inflater.eof:
        raise Refused(400, f"body is truncated {encoding}")
    return out


@dataclass(frozen=True)
class Refusals:
    """The records of an accepted request that the store will refuse (and record as rejects when
    it merges them): the request's OTLP ``partialSuccess``."""

    count: int = 0
    message: str = ""


def check(path: str, content_type: str, body: bytes) -> tuple[bytes, str, Refusals]:
    """The spool entry for a request to ``path`` (an OTLP signal's) of ``content_type``, its
    segment's suffix, and the records in it the store will refuse. JSON is one line; protobuf
    spans too (``traces_json_line``: merged at JSON Lines speed); protobuf logs and metrics a
    length-prefixed frame.
    Raises ``Refused`` with the OTLP status for what cannot be accepted (404 path, 415 type, 400
    undecodable)."""
    key = SIGNALS.get(path)
    if key is None:
        raise Refused(404, f"no OTLP endpoint {path} (/v1/traces, /v1/logs, /v1/metrics)")
    kind = content_type.split(";")[0].strip().lower()
    if kind == JSON:
        import orjson

        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Refused(400, f"body is not JSON: {exc}") from exc
        if not isinstance(value, dict) or not isinstance(value.get(key, []), list):
            raise Refused(400, f"not an OTLP JSON export request for {path} (no {key} list)")
        return orjson.dumps(value) + b"\n", ".jsonl", json_refusals(key, value)
    if kind == PROTOBUF:
        from google.protobuf.message import DecodeError

        message = _service_message(path, "Request")()
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise Refused(400, f"body is not an OTLP protobuf message for {path}: {exc}") from exc
        return (*spool_entry(message, body), message_refusals(message))
    raise Refused(415, f"unsupported Content-Type {content_type!r} ({PROTOBUF} or {JSON})")


def json_refusals(key: str, request: dict[str, Any]) -> Refusals:
    """What the store will refuse of an OTLP/JSON request holding ``key`` (``resourceSpans``…):
    the request decoded as the merge will decode it, its records counted against those decoded.
    (JSON is loose, so nothing less than the decoder says what it refuses; ~50 µs a span.)"""
    from aiobs.ingest.otlp import Decoder

    decoder = Decoder()
    decoder.feed(request)
    rows = decoder.rows
    if not rows.rejects:
        return Refusals()
    decoded = {"resourceSpans": len(rows.traces), "resourceLogs": len(rows.logs)}.get(
        key, rows.metric_points
    )
    sent = _json_records(key, request)
    count = max(sent - decoded, 1)
    return Refusals(count, _summary(count, rows.rejects[0].reason))


_JSON_RECORDS = {
    "resourceSpans": (("scopeSpans", "scope_spans"), ("spans",)),
    "resourceLogs": (("scopeLogs", "scope_logs"), ("logRecords", "log_records")),
    "resourceMetrics": (("scopeMetrics", "scope_metrics"), ("metrics",)),
}
_METRIC_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "exponential_histogram")


def _json_records(key: str, request: dict[str, Any]) -> int:
    """How many spans, log records or data points the request holds, counted where the shape
    allows (a block that is not even a list counts as none: the decoder refuses it whole)."""
    scopes_keys, records_keys = _JSON_RECORDS[key]

    def listed(block: Any, keys: tuple[str, ...]) -> list[Any]:
        if isinstance(block, dict):
            for k in keys:
                if isinstance(block.get(k), list):
                    return list(block[k])
        return []

    count = 0
    for block in request.get(key) or ():
        for scope in listed(block, scopes_keys):
            for record in listed(scope, records_keys):
                if key != "resourceMetrics":
                    count += 1
                    continue
                points = [
                    listed(record.get(k), ("dataPoints", "data_points"))
                    for k in (*_METRIC_KINDS, "summary")
                    if isinstance(record, dict)
                ]
                count += sum(len(p) for p in points) or 1
    return count


def spool_entry(message: Any, body: bytes | None = None) -> tuple[bytes, str]:
    """A decoded export request's spool entry and its segment's suffix: spans as a JSON line,
    logs and metrics as their protobuf (``body``, when at hand) in a length-prefixed frame."""
    if hasattr(message, "resource_spans"):
        return traces_json_line(message), ".jsonl"
    body = message.SerializeToString() if body is None else body
    return struct.pack(">I", len(body)) + body, ".binpb"


def traces_json_line(message: Any) -> bytes:
    """An ExportTraceServiceRequest as one OTLP/JSON line (``proto.traces_dict``), in the shape
    the vectorised ingest path reads (``ingest.fastpath``), so a merge of protobuf spans runs at
    JSON Lines speed instead of the general decoder's (~50 µs a span). tests/test_collect.py
    checks that the line stores the same rows as the message does."""
    import orjson

    from aiobs.ingest.proto import traces_dict

    return orjson.dumps(traces_dict(message)) + b"\n"


def message_refusals(message: Any) -> Refusals:
    """What the store will refuse of a decoded OTLP protobuf export request, read off its fields
    (a typed message can only fail the decoder's range checks: ids, timestamps, enums), so that
    the 512-span batch costs microseconds, not a second decode. tests/test_collect.py checks the
    count against the rejects the merge records."""
    from aiobs.ingest.values import MAX_TS_NS, MIN_TS_NS

    def stamp(ns: int) -> bool:
        return MIN_TS_NS <= ns < MAX_TS_NS

    def an_id(raw: bytes, size: int, optional: bool = False) -> bool:
        if not raw:
            return optional
        return len(raw) == size and (optional or raw.strip(b"\0") != b"")

    count, first = 0, ""
    if hasattr(message, "resource_spans"):
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    why = ""
                    if not an_id(s.trace_id, 16):
                        why = "traceId is missing or not 16 bytes"
                    elif not an_id(s.span_id, 8):
                        why = "spanId is missing or not 8 bytes"
                    elif not an_id(s.parent_span_id, 8, optional=True):
                        why = "parentSpanId is not 8 bytes"
                    elif s.parent_span_id == s.span_id:
                        why = "the span is its own parent (parent cycle)"
                    elif not stamp(s.start_time_unix_nano):
                        why = "startTimeUnixNano is missing or outside 2000..2100"
                    elif s.end_time_unix_nano and not stamp(s.end_time_unix_nano):
                        why = "endTimeUnixNano is outside 2000..2100"
                    elif not 0 <= s.kind <= 5 or not 0 <= s.status.code <= 2:
                        why = "unknown span kind or status code"
                    elif any(
                        not an_id(k.trace_id, 16, True) or not an_id(k.span_id, 8, True)
                        for k in s.links
                    ):
                        why = "a link's traceId or spanId has the wrong size"
                    if why:
                        count += 1
                        first = first or f"span {s.span_id.hex() or '?'}: {why}"
    elif hasattr(message, "resource_logs"):
        for rl in message.resource_logs:
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    why = ""
                    if not stamp(r.time_unix_nano or r.observed_time_unix_nano):
                        why = (
                            "timeUnixNano (and observedTimeUnixNano) missing or outside 2000..2100"
                        )
                    elif not 0 <= r.severity_number <= 24:
                        why = f"severityNumber {r.severity_number} is outside 0..24"
                    elif not an_id(r.trace_id, 16, True) or not an_id(r.span_id, 8, True):
                        why = "traceId or spanId has the wrong size"
                    if why:
                        count += 1
                        first = first or f"log record: {why}"
    else:
        for rm in message.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    points = list(getattr(m, kind).data_points) if kind else []
                    if not m.name or not kind:
                        count += len(points) or 1
                        first = first or f"metric {m.name!r}: no name or no data kind"
                        continue
                    for p in points:
                        start = p.start_time_unix_nano
                        if not stamp(p.time_unix_nano) or (start and not stamp(start)):
                            count += 1
                            first = first or f"metric {m.name} data point: absurd timestamp"
    return Refusals(count, _summary(count, first)) if count else Refusals()


def _summary(count: int, first: str) -> str:
    return f"{count:,} record{'s' * (count != 1)} refused (recorded as rejects); first: {first}"


# Per OTLP signal path: the module of its export service's messages, their names' stem, and the
# partialSuccess field that counts its refused records.
_SERVICES = {
    "/v1/traces": ("trace", "ExportTraceService", "rejected_spans"),
    "/v1/logs": ("logs", "ExportLogsService", "rejected_log_records"),
    "/v1/metrics": ("metrics", "ExportMetricsService", "rejected_data_points"),
}


def _service_message(path: str, which: str) -> Any:
    """The ``Request`` or ``Response`` message class of the export service of ``path``."""
    import importlib

    signal, stem, _ = _SERVICES[path]
    module = importlib.import_module(
        f"opentelemetry.proto.collector.{signal}.v1.{signal}_service_pb2"
    )
    return getattr(module, stem + which)


def partial_success(path: str, refusals: Refusals) -> Any:
    """The Export…ServiceResponse for an accepted request to ``path``, with its partialSuccess
    when some records were refused (an empty message otherwise, as the spec says)."""
    response = _service_message(path, "Response")()
    if refusals.count:
        setattr(response.partial_success, _SERVICES[path][2], refusals.count)
        response.partial_success.error_message = refusals.message
    return response


@dataclass
class Spool:
    """Accepted requests, appended to the current segment files (``NNNNNNNNN.jsonl`` for JSON,
    ``NNNNNNNNN.binpb`` for protobuf frames) in ``folder`` until the merger rotates them."""

    folder: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    sequence: int = 0
    files: dict[str, Any] = field(default_factory=dict)  # suffix: open segment
    pending: int = 0  # bytes in segments not merged yet

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        found = [int(p.stem) for p in self.folder.glob("*.*") if p.stem.isdigit()]
        self.sequence = max(found, default=0) + 1
        self.pending = sum(p.stat().st_size for p in self.closed())

    def append(self, entry: bytes, suffix: str) -> None:
        with self.lock:
            handle = self.files.get(suffix)
            if handle is None:
                name = self.folder / f"{self.sequence:09d}{suffix}"
                handle = self.files[suffix] = open(name, "ab")  # noqa: SIM115 (kept open)
            handle.write(entry)
            handle.flush()  # in the kernel before the answer: a killed process loses nothing
            self.pending += len(entry)

    def rotate(self) -> None:
        """Close the open segments; the next request starts new ones."""
        with self.lock:
            for handle in self.files.values():
                handle.close()
            self.files.clear()
            self.sequence += 1

    def closed(self) -> list[Path]:
        """Segments no request writes to any more, oldest first: those of a sequence before
        the current one. (Not "the files not open now": a request that opened the next segment
        between that look and the listing had its segment merged and deleted under it, and
        what it wrote after was lost: 12% of 1.5M spans sent back to back.)"""
        with self.lock:
            current = self.sequence
        return sorted(
            p
            for p in self.folder.iterdir()
            if p.suffix in (".jsonl", ".binpb") and p.stem.isdigit() and int(p.stem) < current
        )

    def merged(self, segment: Path) -> None:
        size = segment.stat().st_size
        segment.unlink()
        with self.lock:
            self.pending -= size


@dataclass
class Totals:
    requests: int = 0
    refused: int = 0
    spans: int = 0
    log_records: int = 0
    metric_points: int = 0
    rejected: int = 0
    merges: int = 0
    errors: list[str] = field(default_factory=list)


class Collector:
    """The receiver and the merger around one store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 4318,
        redact: bool = False,
        config: dict[str, Any] | None = None,
        max_body: int = MAX_BODY,
        max_backlog: int = MAX_BACKLOG,
        on_merge: Callable[[Totals], None] | None = None,
        yield_to_readers: bool = True,
    ) -> None:
        self.store = store
        self.spool = Spool(store.path.with_name(store.path.name + ".spool"))
        self.redact, self.config = redact, config or {}
        self.max_body, self.max_backlog = max_body, max_backlog
        self.on_merge = on_merge
        self.yield_to_readers = yield_to_readers  # False in the TUI: its readers share the store
        self.started = False
        self.grpc_server: Any = None
        self.totals = Totals()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._merger = threading.Thread(target=self._merge_loop, name="aiobs-merge", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                collector.totals.requests += 1
                path = self.path.split("?")[0]
                try:
                    kind, refusals = collector.accept(
                        path,
                        self.headers.get("Content-Type", ""),
                        self.headers.get("Content-Encoding", ""),
                        self.headers.get("Content-Length"),
                        self.rfile,
                    )
                except Refused as refused:
                    collector.totals.refused += 1
                    self._send(refused.status, refused.message, refused.retry_after)
                    return
                response = partial_success(path, refusals)
                if kind == JSON:
                    from google.protobuf.json_format import MessageToJson

                    self._reply(200, MessageToJson(response, indent=None).encode(), JSON)
                else:
                    self._reply(200, response.SerializeToString(), PROTOBUF)

            def do_GET(self) -> None:
                self._send(405, "OTLP/HTTP takes POST")

            def _send(self, status: int, message: str, retry_after: float | None = None) -> None:
                body = json.dumps({"code": status, "message": message}).encode()
                self._reply(status, body, JSON, retry_after)

            def _reply(
                self, status: int, body: bytes, kind: str, retry_after: float | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if retry_after is not None:
                    self.send_header("Retry-After", f"{retry_after:g}")
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def accept(
        self, path: str, content_type: str, encoding: str, length: str | None, stream: Any
    ) -> tuple[str, Refusals]:
        """Read, check and spool one request; its content kind (JSON or PROTOBUF) and the
        records in it the store will refuse."""
        if length is None or not length.isdigit():
            raise Refused(411, "Content-Length is required")
        size = int(length)
        if size > self.max_body:
            raise Refused(413, f"body of {size:,} bytes is over the {self.max_body:,}-byte limit")
        body = stream.read(size)
        if self.spool.pending > self.max_backlog:
            raise Refused(503, "the store is behind on what it was sent; retry", retry_after=1)
        entry, suffix, refusals = check(path, content_type, inflate(body, encoding, self.max_body))
        kind = JSON if content_type.split(";")[0].strip().lower() == JSON else PROTOBUF
        self.spool.append(entry, suffix)
        return kind, refusals

    def accept_message(self, message: Any) -> Refusals:
        """Spool one export request that arrived decoded (OTLP/gRPC); the records in it the
        store will refuse."""
        if self.spool.pending > self.max_backlog:
            raise Refused(503, "the store is behind on what it was sent; retry", retry_after=1)
        self.spool.append(*spool_entry(message))
        return message_refusals(message)

    def listen_grpc(self, host: str, port: int) -> int:
        """Also receive OTLP/gRPC on ``host:port`` (0: any free port); the port. grpcio is
        imported here only."""
        from concurrent import futures

        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        collector = self

        def export(path: str) -> Any:
            def handle(_: Any, request: Any, context: Any) -> Any:
                collector.totals.requests += 1
                try:
                    refusals = collector.accept_message(request)
                except Refused as refused:
                    collector.totals.refused += 1
                    # UNAVAILABLE: the OTLP exporter retries it, with backoff.
                    context.abort(grpc.StatusCode.UNAVAILABLE, refused.message)
                return partial_success(path, refusals)

            return handle

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            Export = export("/v1/traces")

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            Export = export("/v1/logs")

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            Export = export("/v1/metrics")

        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8),
            # A message over the limit is refused by grpc itself (RESOURCE_EXHAUSTED).
            options=[("grpc.max_receive_message_length", self.max_body)],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)  # type: ignore[no-untyped-call]
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)  # type: ignore[no-untyped-call]
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)  # type: ignore[no-untyped-call]
        bound = server.add_insecure_port(f"{host}:{port}")
        if not bound:
            raise OSError(f"cannot listen on {host}:{port} for OTLP/gRPC")
        self.grpc_server = server
        return int(bound)

    def start(self) -> None:
        self.merge()  # what a collector before this one accepted and did not merge
        self._merger.start()
        threading.Thread(target=self.server.serve_forever, name="aiobs-otlp", daemon=True).start()
        if self.grpc_server is not None:
            self.grpc_server.start()
        self.started = True

    def stop(self) -> None:
        """Stop receiving, merge everything accepted, release the store."""
        if self.started:
            self.server.shutdown()
            if self.grpc_server is not None:
                self.grpc_server.stop(grace=5).wait()  # the requests in flight are answered
        self.server.server_close()
        self.stopping.set()
        if self.started:
            self._merger.join()
        self.spool.rotate()
        self.merge()

    def _merge_loop(self) -> None:
        from aiobs.ingest.pipeline import WRITER_REOPEN_WAIT
        from aiobs.store.connection import LockWait, readers_waiting

        while not self.stopping.wait(MERGE_SECONDS):
            self.spool.rotate()
            try:
                self.merge()
            except Exception as exc:  # the segment stays in the spool: retried next time
                self.totals.errors.append(f"merge failed: {exc}")
                if self.on_merge is not None:
                    with contextlib.suppress(Exception):
                        self.on_merge(self.totals)
                continue
            if self.yield_to_readers and readers_waiting(self.store.path):
                # Closed until the waiting readers are in, then open again once they are done
                # (they read for moments; requests keep landing in the spool meanwhile).
                self.store.reopen(wait=LockWait(WRITER_REOPEN_WAIT))

    def merge(self) -> None:
        """Ingest every closed segment (each one transaction), then delete it."""
        from aiobs.ingest.pipeline import ingest_paths

        for segment in self.spool.closed():
            if segment.stat().st_size:
                summary = ingest_paths(
                    self.store,
                    [str(segment)],
                    redact=self.redact,
                    config=self.config,
                    memory_limit=COLLECT_MEMORY_LIMIT,
                )
                t = self.totals
                t.spans += summary.spans
                t.log_records += summary.log_records
                t.metric_points += summary.metric_points
                t.rejected += summary.rejected
                t.errors += summary.errors[:5]
                t.merges += 1
                if self.on_merge is not None:
                    with contextlib.suppress(Exception):
                        self.on_merge(t)
            self.spool.merged(segment)
