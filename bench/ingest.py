"""Ingest benchmark: generate GenAI-shaped OTLP JSON Lines, time `aiobs ingest` as a whole process.

    python bench/ingest.py                 # 1M spans (~650 MB), the issue's reference size
    python bench/ingest.py --spans 200000  # quicker

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--keep-store", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    data = OUT / f"genai-{args.spans}.jsonl"
    if not data.exists():
        t = time.perf_counter()
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
        print(
            f"ingest {args.spans:,} spans ({data.stat().st_size / 1e6:.0f} MB): {seconds:.2f} s wall, "
            f"{summary['spans'] / seconds:,.0f} spans/s, peak RSS {peak_mb:,.0f} MB, "
            f"store {db.stat().st_size / 1e6:.0f} MB"
        )


if __name__ == "__main__":
    main()
