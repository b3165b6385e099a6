"""Ingest benchmark: generate GenAI-shaped OTLP JSON Lines, time `aiobs ingest` as a whole process.

    python bench/ingest.py                 # 1M spans (~650 MB), the issue's reference size
    python bench/ingest.py --spans 200000  # quicker
    python bench/ingest.py --logs 300000   # log records / user events instead
    python bench/ingest.py --redact        # with secrets and personal data rewritten

Prints spans/s end to end and the child's peak RSS. The file is cached in bench/out/ by size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
WORDS = [
    "refund",
    "order",
    "charge",
    "card",
    "account",
    "password",
    "shipping",
    "delay",
    "invoice",
    "subscription",
    "cancel",
    "upgrade",
    "plan",
    "billing",
    "receipt",
    "address",
    "tracking",
    "package",
    "support",
    "agent",
    "customer",
    "help",
]


def _kv(key: str, value: object) -> dict[str, object]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def generate(path: Path, spans: int, per_line: int = 500, seed: int = 7) -> None:
    rng = random.Random(seed)
    t0 = 1_763_000_000_000_000_000
    written = 0
    with path.open("w", encoding="utf-8") as fh:
        while written < spans:
            batch = []
            for _ in range(min(per_line, spans - written)):
                trace = f"{rng.getrandbits(128):032x}"
                span = f"{rng.getrandbits(64):016x}"
                start = t0 + written * 1_000_000
                model = rng.choice(("gpt-4.1", "claude-sonnet-4-5", "gemini-2.5-flash"))
                attrs = [
                    _kv("gen_ai.operation.name", "chat"),
                    _kv("gen_ai.request.model", model),
                    _kv("gen_ai.usage.input_tokens", rng.randint(50, 4000)),
                    _kv("gen_ai.usage.output_tokens", rng.randint(10, 800)),
                    _kv("session.id", f"sess-{rng.randint(1, 50000)}"),
                ]
                if rng.random() < 0.7:
                    attrs.append(
                        _kv(
                            "gen_ai.input.messages",
                            json.dumps(
                                [
                                    {
                                        "role": "user",
                                        "parts": [{"type": "text", "content": _text(rng, 14)}],
                                    }
                                ]
                            ),
                        )
                    )
                    attrs.append(
                        _kv(
                            "gen_ai.output.messages",
                            json.dumps(
                                [
                                    {
                                        "role": "assistant",
                                        "parts": [{"type": "text", "content": _text(rng, 20)}],
                                    }
                                ]
                            ),
                        )
                    )
                if rng.random() < 0.5:
                    attrs.append(_kv("gen_ai.provider.name", "openai"))
                batch.append(
                    {
                        "traceId": trace,
                        "spanId": span,
                        "parentSpanId": "",
                        "name": f"chat {model}",
                        "kind": 3,
                        "startTimeUnixNano": str(start),
                        "endTimeUnixNano": str(start + rng.randint(10**8, 5 * 10**9)),
                        "attributes": attrs,
                        "status": {"code": 2 if rng.random() < 0.03 else 1},
                    }
                )
                written += 1
            doc = {
                "resourceSpans": [
                    {
                        "resource": {
                            "attributes": [
                                _kv("service.name", "chat"),
                                _kv("service.version", "1.4.2"),
                            ]
                        },
                        "scopeSpans": [{"scope": {"name": "bench"}, "spans": batch}],
                    }
                ]
            }
            fh.write(json.dumps(doc, separators=(",", ":")) + "\n")


def generate_logs(path: Path, records: int, per_line: int = 500, seed: int = 11) -> None:
    """User-behaviour events and app logs: the other big signal of the demo world."""
    rng = random.Random(seed)
    t0 = 1_763_000_000_000_000_000
    written = 0
    with path.open("w", encoding="utf-8") as fh:
        while written < records:
            batch = []
            for _ in range(min(per_line, records - written)):
                event = rng.random() < 0.5
                batch.append(
                    {
                        "timeUnixNano": str(t0 + written * 1_000_000),
                        "severityNumber": 9 if event else rng.choice((9, 13, 17)),
                        "body": {"stringValue": _text(rng, 12)},
                        "traceId": f"{rng.getrandbits(128):032x}",
                        "attributes": [
                            _kv("session.id", f"sess-{rng.randint(1, 50000)}"),
                            _kv("user.id", f"u{rng.randint(1, 9000)}"),
                        ],
                        **(
                            {"eventName": rng.choice(("chat.message_sent", "chat.thumbs_down"))}
                            if event
                            else {}
                        ),
                    }
                )
                written += 1
            doc = {
                "resourceLogs": [
                    {
                        "resource": {"attributes": [_kv("service.name", "web")]},
                        "scopeLogs": [{"scope": {"name": "bench"}, "logRecords": batch}],
                    }
                ]
            }
            fh.write(json.dumps(doc, separators=(",", ":")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument(
        "--logs", type=int, default=0, help="benchmark log records instead of spans"
    )
    parser.add_argument("--redact", action="store_true", help="ingest with --redact")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    kind = "logs" if args.logs else "genai"
    count = args.logs or args.spans
    data = OUT / f"{kind}-{count}.jsonl"
    if not data.exists():
        t = time.perf_counter()
        if args.logs:
            generate_logs(data, args.logs)
        else:
            generate(data, args.spans)
        print(
            f"generated {data} ({data.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s"
        )
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        cmd = [
            sys.executable,
            "-m",
            "aiobs",
            "--db",
            str(db),
            "-q",
            "ingest",
            *(["--redact"] if args.redact else []),
            str(data),
            "-f",
            "json",
        ]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
        seconds = time.perf_counter() - t
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            sys.exit(proc.returncode)
        summary = json.loads(proc.stdout)
        unit = "log_records" if args.logs else "spans"
        print(
            f"ingest {count:,} {unit} ({data.stat().st_size / 1e6:.0f} MB): {seconds:.2f} s wall, "
            f"{summary[unit] / seconds:,.0f} {unit}/s, peak RSS {peak_mb:,.0f} MB, "
            f"store {db.stat().st_size / 1e6:.0f} MB"
        )


if __name__ == "__main__":
    main()
