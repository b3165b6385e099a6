"""Detection power of ``scan``: recall, onset error and false incidents on synthetic services.

    python bench/scan_power.py                      # the grid below, one replicate a cell
    python bench/scan_power.py --traffic 5 --reps 3 # one traffic level, three replicates
    python bench/scan_power.py --clean-only         # false incidents of clean simulated weeks

A generator writes OTLP JSON of services with daily seasonality (traffic peaking in the
afternoon at 1.6x its mean and 0.4x at night; latency 20% higher at the peak), one LLM span a
trace (tokens lognormal around 1,200, latency around 1.5 s, 2% errors). Each store holds one
traffic level; each of its services carries one planted change — error rate ×3/×10/×30, tokens
per trace ×2/×4/×8 or latency ×2/×4/×8, lasting 1, 2 or 6 h, starting at a random time of the
scanned day — after four clean days of history. The stores are built by the real ingest and
scanned by the real ``aiobs.analysis.scan.scan`` (DuckDB), one scan a store, and each service
is judged on its own: found when an incident of that service overlaps the planted interval
(±1 h), onset error = |incident start − planted start|, false = its other incidents. Clean weeks
(4 days of history and 7 scanned days, no change) give the false incidents a service-week.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 3, 2)
HISTORY_DAYS = 4
EFFECTS = {
    "errors": (3.0, 10.0, 30.0),
    "tokens": (2.0, 4.0, 8.0),
    "latency": (2.0, 4.0, 8.0),
}
DURATIONS_H = (1, 2, 6)
TRAFFIC = (1, 5, 20, 100)
BASE_ERROR = 0.02
BASE_TOKENS = 1200.0
BASE_LATENCY_MS = 1500.0


@dataclass(frozen=True)
class Plant:
    service: str
    effect: str | None
    factor: float
    start: datetime | None
    hours: int


def _rate(hour: float) -> float:
    """Relative traffic at an hour of the day: 1.6 at 15:00, 0.4 at 03:00 (mean 1)."""
    return 1.0 + 0.6 * math.sin(2 * math.pi * (hour - 9) / 24)


def _arrivals(rng: random.Random, per_hour: float, days: int) -> list[datetime]:
    """A Poisson process with the daily shape (thinning at the peak rate)."""
    out: list[datetime] = []
    t, peak = 0.0, per_hour * 1.6
    end = days * 24.0
    while True:
        t += rng.expovariate(peak)
        if t >= end:
            return out
        if rng.random() < _rate(t % 24) / 1.6:
            out.append(START + timedelta(hours=t))


def _value(attr: str, v: Any) -> dict[str, Any]:
    key = "intValue" if isinstance(v, int) else "stringValue"
    return {"key": attr, "value": {key: str(v)}}


def write_store_files(
    out: Path, plants: list[Plant], per_hour: float, days: int, seed: int
) -> list[Path]:
    """One OTLP JSON Lines file a service: one LLM span a trace."""
    files = []
    for k, p in enumerate(plants):
        rng = random.Random(seed * 1000 + k)
        lines = []
        spans = []
        for i, t in enumerate(_arrivals(rng, per_hour, days)):
            err_p, tok_f, lat_f = BASE_ERROR, 1.0, 1.0
            if p.start is not None and p.start <= t < p.start + timedelta(hours=p.hours):
                if p.effect == "errors":
                    err_p = min(1.0, BASE_ERROR * p.factor)
                elif p.effect == "tokens":
                    tok_f = p.factor
                else:
                    lat_f = p.factor
            hour = t.hour + t.minute / 60
            season = 1 + 0.2 * math.sin(2 * math.pi * (hour - 9) / 24)
            latency = BASE_LATENCY_MS * season * lat_f * math.exp(rng.gauss(0, 0.35))
            tokens = BASE_TOKENS * tok_f * math.exp(rng.gauss(0, 0.35))
            start_ns = int((t - datetime(1970, 1, 1)).total_seconds() * 1e9)
            error = rng.random() < err_p
            spans.append(
                {
                    "traceId": f"{k:06x}{i:026x}",
                    "spanId": f"{i:016x}",
                    "name": "chat gpt-4o",
                    "kind": 3,
                    "startTimeUnixNano": str(start_ns),
                    "endTimeUnixNano": str(start_ns + int(latency * 1e6)),
                    "attributes": [
                        _value("gen_ai.operation.name", "chat"),
                        _value("gen_ai.system", "openai"),
                        _value("gen_ai.request.model", "gpt-4o"),
                        _value("gen_ai.usage.input_tokens", int(tokens * 0.8)),
                        _value("gen_ai.usage.output_tokens", int(tokens * 0.2)),
                    ],
                    "status": {"code": 2, "message": "upstream error"} if error else {},
                }
            )
            if len(spans) == 2000:
                lines.append(_doc(p.service, spans))
                spans = []
        if spans:
            lines.append(_doc(p.service, spans))
        path = out / f"{p.service}.otlp.jsonl"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    return files


def _doc(service: str, spans: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [_value("service.name", service)]},
                    "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}],
                }
            ]
        }
    )


def scan_store(
    db: Path, files: list[Path], since: datetime, until: datetime
) -> tuple[list[dict[str, Any]], float]:
    """Ingest ``files`` into a new store with the real pipeline and scan it; (incidents, scan s)."""
    from aiobs.analysis.filters import TraceFilter
    from aiobs.analysis.scan import scan
    from aiobs.backend.duckdb import open_store
    from aiobs.ingest.pipeline import ingest_paths

    with open_store(db, read_only=False, create=True) as store:
        ingest_paths(store, [str(f) for f in files])
    with open_store(db) as store:
        started = time.perf_counter()
        result = scan(store, TraceFilter(since=since, until=until))
        return result["incidents"], time.perf_counter() - started


def _overlaps(inc: dict[str, Any], p: Plant, until: datetime) -> bool:
    assert p.start is not None
    lo, hi = p.start - timedelta(hours=1), p.start + timedelta(hours=p.hours + 1)
    end = inc["end"] or until
    return bool(inc["start"] < hi and end > lo)


def run_traffic(per_hour: float, reps: int, seed: int, work: Path) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    plants = []
    day0 = START + timedelta(days=HISTORY_DAYS)
    for effect, factors in EFFECTS.items():
        for factor in factors:
            for hours in DURATIONS_H:
                for r in range(reps):
                    start = day0 + timedelta(minutes=rng.randrange(60, (24 - hours) * 60 - 60))
                    name = f"svc-{effect}-x{factor:g}-{hours}h-{r}"
                    plants.append(Plant(name, effect, factor, start, hours))
    out = work / f"t{per_hour:g}"
    out.mkdir(parents=True, exist_ok=True)
    files = write_store_files(out, plants, per_hour, HISTORY_DAYS + 1, seed)
    until = day0 + timedelta(days=1)
    incidents, seconds = scan_store(out / "store.duckdb", files, day0, until)
    by_service: dict[str, list[dict[str, Any]]] = {}
    for inc in incidents:
        by_service.setdefault(inc["segment"]["service"], []).append(inc)
    rows = []
    for p in plants:
        found = [i for i in by_service.get(p.service, []) if _overlaps(i, p, until)]
        assert p.start is not None
        rows.append(
            {
                "traffic": per_hour,
                "effect": p.effect,
                "factor": p.factor,
                "hours": p.hours,
                "found": bool(found),
                "onset_error_min": (
                    min(abs((i["start"] - p.start).total_seconds()) / 60 for i in found)
                    if found
                    else None
                ),
                "false": len(by_service.get(p.service, [])) - len(found),
            }
        )
    print(
        f"  traffic {per_hour:g}/h: {len(plants)} services, scan {seconds:.1f} s", file=sys.stderr
    )
    return rows


def run_clean(per_hour: float, services: int, seed: int, work: Path) -> tuple[int, int]:
    plants = [Plant(f"clean-{i}", None, 1.0, None, 0) for i in range(services)]
    out = work / f"clean{per_hour:g}"
    out.mkdir(parents=True, exist_ok=True)
    files = write_store_files(out, plants, per_hour, HISTORY_DAYS + 7, seed + 99)
    since = START + timedelta(days=HISTORY_DAYS)
    incidents, _ = scan_store(out / "store.duckdb", files, since, since + timedelta(days=7))
    return len(incidents), services


def table(rows: list[dict[str, Any]]) -> str:
    cells: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["traffic"], r["effect"], r["factor"], r["hours"]), []).append(r)
    lines = [
        "| traffic/h | effect | × | hours | recall | onset error (median min) | false incidents |",
        "|---|---|---|---|---|---|---|",
    ]
    for (traffic, effect, factor, hours), rs in sorted(cells.items()):
        found = [r for r in rs if r["found"]]
        onset = f"{statistics.median(r['onset_error_min'] for r in found):.0f}" if found else "-"
        lines.append(
            f"| {traffic:g} | {effect} | {factor:g} | {hours} | {len(found)}/{len(rs)} | {onset}"
            f" | {sum(r['false'] for r in rs)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traffic", type=float, nargs="*", default=list(TRAFFIC))
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clean-services", type=int, default=3)
    parser.add_argument("--clean-only", action="store_true")
    parser.add_argument("--no-clean", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiobs-power-") as tmp:
        work = Path(tmp)
        if not opts.clean_only:
            rows: list[dict[str, Any]] = []
            for t in opts.traffic:
                rows += run_traffic(t, opts.reps, opts.seed, work)
            print(table(rows))
        if not opts.no_clean:
            print()
            print("| traffic/h | clean service-weeks | false incidents |")
            print("|---|---|---|")
            for t in opts.traffic:
                false, services = run_clean(t, opts.clean_services, opts.seed, work)
                print(f"| {t:g} | {services} | {false} |")


if __name__ == "__main__":
    main()
