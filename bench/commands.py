"""Whole-process timings of the read commands on a demo store (new process each run).

    python bench/commands.py                 # builds bench/out/demo-x6.duckdb (~1M spans) once
    python bench/commands.py --scale 1       # the default demo store (~160k spans)
    python bench/commands.py --db PATH       # any store
    python bench/commands.py --only replay,traces --runs 15

Prints, per command, the median and fastest wall time of --runs runs and the peak RSS, and the
time `aiobs demo` took to build the store when it built it. Targets: replay and
`traces --limit 50` <= 300 ms on 1M spans (issue 4), segment and diff <= 2 s (issue 5), a scan of 7 days
<= 3 s (issue 6). aiobs runs with its bytecode cached, as installed (installed.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from installed import installed_env

HERE = Path(__file__).resolve().parent
AIOBS = [sys.executable, "-m", "aiobs"]
ENV = installed_env()


def run(args: list[str]) -> tuple[float, int, str]:
    """(seconds, peak RSS of that child in KB, stdout) of one whole aiobs process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([*AIOBS, *args], stdout=out, stderr=err, env=ENV)
        # Reap it ourselves: wait4 gives this child's own peak RSS (RUSAGE_CHILDREN is a max over
        # every child so far).
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"aiobs {' '.join(args)} failed: {err.read().decode()}")
        return seconds, usage.ru_maxrss, out.read().decode()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path)
    parser.add_argument("--scale", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--only", default="", help="comma-separated words; time only commands whose label has one"
    )
    opts = parser.parse_args()
    env_db = opts.db or HERE / "out" / f"demo-x{opts.scale:g}.duckdb"
    if not env_db.exists():
        env_db.parent.mkdir(parents=True, exist_ok=True)
        seconds, peak, out = run(
            [
                "--db",
                str(env_db),
                "demo",
                "--scale",
                str(opts.scale),
                "--end",
                "2026-11-15T00:00Z",
                "-f",
                "json",
            ]
        )
        built = json.loads(out)
        print(
            f"built {env_db.name}: {built['spans']:,} spans, {built['log_records']:,} log records,"
            f" {built['metric_points']:,} points in {seconds:.1f} s (peak RSS {peak / 1024:.0f} MB)"
        )
    db = ["--db", str(env_db)]
    _, _, ids = run(
        [
            *db,
            "query",
            "select trace_id from ai_traces where status = 'error' order by trace_id limit 1",
            "-f",
            "csv",
        ]
    )
    trace = ids.splitlines()[-1]
    # The windows end where the store's telemetry does (the hour its last trace starts in; the
    # demo's last sessions run a little past its --end), so any demo store works: for the
    # default end, 2026-11-15T00:00Z.
    _, _, last = run(
        [
            *db,
            "query",
            "select strftime(date_trunc('hour', max(start_time)),"
            " '%Y-%m-%dT%H:%MZ') as e from ai_traces",
            "-f",
            "csv",
        ]
    )
    end = datetime.strptime(last.splitlines()[-1], "%Y-%m-%dT%H:%MZ")

    def at(hours_before: int) -> str:
        return (end - timedelta(hours=hours_before)).strftime("%Y-%m-%dT%H:%MZ")

    _, _, counts = run([*db, "query", "select count(*) as spans from otel_traces", "-f", "json"])
    print(
        f"store {env_db} ({json.loads(counts)[0]['spans']:,} spans), {opts.runs} runs each, os.cpu_count()={os.cpu_count()}"
    )
    commands = {
        "aiobs --help": ["--help"],
        "query 'select 1'": [*db, "query", "select 1"],
        "replay TRACE": [*db, "replay", trace],
        "replay TRACE -f json": [*db, "replay", trace, "-f", "json"],
        "describe TRACE": [*db, "describe", trace],
        "traces --limit 50": [*db, "traces", "--limit", "50"],
        "traces --where tool_name=… --limit 50": [
            *db,
            "traces",
            "--where",
            "tool_name = 'lookup_charge_v1'",
            "--limit",
            "50",
        ],
        "sessions --limit 50": [*db, "sessions", "--limit", "50"],
        "stats": [*db, "stats"],
        "segment --by prompt_version": [*db, "segment", "--by", "prompt_version"],
        "diff of two 19-hour windows": [
            *db, "diff", "--baseline", f"{at(76)}..{at(57)}", "--target", f"{at(57)}..{at(38)}",
        ],
        "scan (the demo week)": [*db, "scan", "--since", f"{at(168)}..{at(0)}", "-f", "json"],
    }  # fmt: skip
    print(f"{'command':<42} {'median':>8} {'fastest':>8} {'peak RSS':>9}")
    wanted = [w.strip() for w in opts.only.split(",") if w.strip()]
    for label, args in commands.items():
        if wanted and not any(w in label for w in wanted):
            continue
        times = []
        peak = 0
        for _ in range(opts.runs):
            seconds, rss, _ = run(args)
            times.append(seconds)
            peak = max(peak, rss)
        print(
            f"{label:<42} {statistics.median(times) * 1000:>6.0f}ms {min(times) * 1000:>6.0f}ms {peak / 1024:>7.0f}MB"
        )


if __name__ == "__main__":
    main()
