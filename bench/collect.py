"""``aiobs collect`` under load, beside ``aiobs ingest`` of the same spans in the same sitting:
spans received per second, request latency (p50/p99), spans stored per second end to end, and
the collector's peak RSS.

    python bench/collect.py                      # 200 batches of 512 spans (102,400 spans)
    python bench/collect.py --batches 1000 --connections 4

The spans (LLM and tool steps of agent traces, GenAI attributes) are built once as OTLP protobuf
ExportTraceServiceRequests and written to a file of length-prefixed frames. A separate load
process posts them to a fresh ``aiobs collect`` over keep-alive connections; then a fresh store
ingests the file with ``aiobs ingest``. Targets (issue 20): >= 50k spans/s received, >= 0.8x
ingest's rate, p99 <= 100 ms, peak RSS <= 500 MB.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def build(path: Path, batches: int, per_batch: int) -> int:
    """``batches`` export requests of ``per_batch`` spans each, framed into ``path``."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def kv(key: str, value: str | int) -> KeyValue:
        v = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
        return KeyValue(key=key, value=v)

    now = time.time_ns()
    with path.open("wb") as out:
        for b in range(batches):
            request = ExportTraceServiceRequest()
            rs = request.resource_spans.add()
            rs.resource.attributes.append(kv("service.name", "load-agent"))
            spans = rs.scope_spans.add().spans
            for i in range(per_batch):
                n = b * per_batch + i
                trace = (n // 4 + 1).to_bytes(16, "big")
                span = spans.add()
                span.trace_id = trace
                span.span_id = (n + 1).to_bytes(8, "big")
                if n % 4:
                    span.parent_span_id = (n - n % 4 + 1).to_bytes(8, "big")
                span.name = "chat gpt-4.1" if n % 4 == 1 else "execute_tool lookup"
                span.start_time_unix_nano = now - 60_000_000_000 + n * 1000
                span.end_time_unix_nano = span.start_time_unix_nano + 500_000_000
                span.attributes.extend(
                    [
                        kv("gen_ai.operation.name", "chat" if n % 4 == 1 else "execute_tool"),
                        kv("gen_ai.request.model", "gpt-4.1"),
                        kv("gen_ai.usage.input_tokens", 100 + n % 50),
                        kv("gen_ai.usage.output_tokens", 20),
                    ]
                )
            body = request.SerializeToString()
            out.write(struct.pack(">I", len(body)) + body)
    return batches * per_batch


def frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, at = [], 0
    while at < len(data):
        (n,) = struct.unpack(">I", data[at : at + 4])
        out.append(data[at + 4 : at + 4 + n])
        at += 4 + n
    return out


def soak(port: int, path: Path, seconds: float, rate: float) -> None:
    """The soak's load process: the frames again and again for ``seconds``, each pass with new
    trace ids (so every span is stored, not deduplicated), at about ``rate`` spans/s."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    requests = []
    for body in frames(path):
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        requests.append(message)
    per_request = sum(len(s.spans) for s in requests[0].resource_spans[0].scope_spans)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started, sent, refused, latencies = time.perf_counter(), 0, 0, []
    loop = 0
    while time.perf_counter() - started < seconds:
        loop += 1
        for message in requests:
            for span in message.resource_spans[0].scope_spans[0].spans:
                span.trace_id = loop.to_bytes(4, "big") + span.trace_id[4:]
            body = message.SerializeToString()
            t = time.perf_counter()
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            answer = conn.getresponse()
            answer.read()
            latencies.append(time.perf_counter() - t)
            if answer.status == 200:
                sent += per_request
            else:
                refused += 1
            ahead = sent / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
            if time.perf_counter() - started >= seconds:
                break
    print(json.dumps({"spans": sent, "refused": refused, "latencies": latencies}))


def load(port: int, path: Path, connections: int) -> None:
    """The load process: post every frame, ``connections`` at a time; print the latencies."""
    bodies = frames(path)
    latencies: list[float] = []
    lock = threading.Lock()
    todo = iter(bodies)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                body = next(todo, None)
            if body is None:
                return
            started = time.perf_counter()
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            answer = conn.getresponse()
            answer.read()
            took = time.perf_counter() - started
            if answer.status != 200:
                raise SystemExit(f"status {answer.status}")
            with lock:
                latencies.append(took)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"seconds": time.perf_counter() - started, "latencies": latencies}))


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:")), 0)


def start_collector(db: Path) -> tuple[subprocess.Popen[str], int, list[int]]:
    """A fresh ``aiobs collect`` on ``db``: the process, its port, and a one-item list that a
    thread keeps at the spans it reports stored."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiobs", "--db", str(db), "collect", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    port = int(line.split("http://127.0.0.1:")[1].split(" ")[0].rstrip(","))
    stored = [0]

    def watch() -> None:
        assert proc.stderr is not None
        for text in proc.stderr:
            if text.startswith("stored "):
                stored[0] = int(text.split()[1].replace(",", ""))
            elif text.startswith("aiobs:"):  # a merge that failed (retried): shown, not hidden
                print(f"collector: {text.rstrip()}", file=sys.stderr)

    threading.Thread(target=watch, daemon=True).start()
    return proc, port, stored


def collect_run(scratch: Path, path: Path, spans: int, connections: int) -> dict[str, float]:
    db = scratch / "collect.duckdb"
    proc, port, stored = start_collector(db)
    peak = [0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.05):
            peak[0] = max(peak[0], _rss_kb(proc.pid))

    threading.Thread(target=sample, daemon=True).start()
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--load", str(port), str(path), str(connections)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    sent = json.loads(out)
    while stored[0] < spans:
        time.sleep(0.05)
    end_to_end = time.perf_counter() - started
    sampling.set()
    proc.terminate()
    proc.wait(timeout=60)
    lat = sorted(sent["latencies"])
    return {
        "received_per_s": spans / sent["seconds"],
        "stored_per_s": spans / end_to_end,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "peak_rss_mb": peak[0] / 1024,
    }


def soak_run(scratch: Path, path: Path, seconds: float, rate: float) -> str:
    """A collector under ``rate`` spans/s for ``seconds``: its RSS over time, and the backlog."""
    db = scratch / "soak.duckdb"
    proc, port, stored = start_collector(db)
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    started = time.perf_counter()

    def sample() -> None:
        while not done.wait(1.0):
            samples.append((time.perf_counter() - started, _rss_kb(proc.pid)))

    threading.Thread(target=sample, daemon=True).start()
    out = subprocess.run(
        [sys.executable, __file__, "--soak-load", str(port), str(path), str(seconds), str(rate)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    load_ = json.loads(out)
    sent = load_["spans"]
    drain = time.perf_counter()
    while stored[0] < sent and time.perf_counter() - drain < 300:
        time.sleep(0.2)
    done.set()
    proc.terminate()
    proc.wait(timeout=120)
    lat = sorted(load_["latencies"])
    peak = max(kb for _, kb in samples) / 1024
    by_minute = [max((kb for t, kb in samples if m * 60 <= t < (m + 1) * 60), default=0) // 1024
                 for m in range(int(seconds // 60) + 1)]  # fmt: skip
    return (
        f"soak {seconds:.0f} s at {rate:,.0f} spans/s: sent {sent:,} spans"
        f" ({load_['refused']} requests refused), stored {stored[0]:,};"
        f" p50 {1000 * statistics.median(lat):.1f} ms, p99"
        f" {1000 * lat[int(0.99 * (len(lat) - 1))]:.1f} ms; drained {time.perf_counter() - drain:.1f} s"
        f" after the load; peak RSS {peak:.0f} MB; per minute (MB): {by_minute}"
    )


def ingest_run(scratch: Path, path: Path, spans: int) -> float:
    db = scratch / "ingest.duckdb"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "aiobs", "--db", str(db), "ingest", str(path)],
        check=True,
        capture_output=True,
    )
    return spans / (time.perf_counter() - started)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        load(int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--soak-load":
        soak(int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--spans-per-batch", type=int, default=512)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--soak", type=float, metavar="SECONDS", help="Instead: a steady load for this long."
    )
    parser.add_argument("--rate", type=float, default=8000, help="Spans/s of the soak.")
    args = parser.parse_args()
    if args.soak:
        with tempfile.TemporaryDirectory() as tmp:
            scratch = Path(tmp)
            path = scratch / "spans.binpb"
            build(path, 20, args.spans_per_batch)
            print(soak_run(scratch, path, args.soak, args.rate))
        return
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        path = scratch / "spans.binpb"
        spans = build(path, args.batches, args.spans_per_batch)
        print(f"{spans:,} spans in {args.batches} requests of {args.spans_per_batch}"
              f" ({path.stat().st_size / 1e6:.1f} MB), {args.connections} connections")  # fmt: skip
        for run in range(args.runs):
            for f in scratch.glob("*.duckdb*"):
                if f.is_dir():
                    for g in f.iterdir():
                        g.unlink()
                    f.rmdir()
                else:
                    f.unlink()
            c = collect_run(scratch, path, spans, args.connections)
            i = ingest_run(scratch, path, spans)
            print(
                f"run {run + 1}: collect received {c['received_per_s']:,.0f} spans/s"
                f" (p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms), stored"
                f" {c['stored_per_s']:,.0f}/s end to end, peak RSS {c['peak_rss_mb']:.0f} MB;"
                f" ingest of the file {i:,.0f} spans/s; stored/ingest {c['stored_per_s'] / i:.2f}"
            )


if __name__ == "__main__":
    main()
