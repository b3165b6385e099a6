"""``aiobs eval`` over a big demo store, whole process, beside ``aiobs stats`` on the same store
in the same sitting (alternated run by run): wall time, answers judged per second, peak RSS.

    python bench/eval.py                     # bench/out/demo-x6.duckdb (~1M spans), built once
    python bench/eval.py --db PATH --runs 3

Each run judges a fresh copy of the store (eval stores its verdicts; --dry-run would skip the
writes, which are part of the cost). Target (issue 19): >= 20k LLM answers/s, peak RSS <= 1 GB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _tree_rss_kb(pid: int) -> int:
    """The resident memory of ``pid`` and its descendants (eval's worker processes), in KB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        total += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
        todo += [int(c) for c in children]
    return total


def timed(args: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS MB of the child and its workers together, stdout) of ``python -m
    aiobs ARGS``; the tree's memory sampled every 50 ms."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "aiobs", *args], stdout=subprocess.PIPE, text=True
    )
    peak = 0
    while child.poll() is None:
        peak = max(peak, _tree_rss_kb(child.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    out = child.stdout.read() if child.stdout else ""
    if child.returncode:
        raise SystemExit(f"aiobs {' '.join(args)} exited {child.returncode}")
    return seconds, peak / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, default=HERE / "out" / "demo-x6.duckdb")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not args.db.exists():
        raise SystemExit(f"{args.db}: build it with `aiobs --db {args.db} demo --scale 6`")
    evals, stats, rates, peaks = [], [], [], []
    answers = 0
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.runs):
            copy = Path(scratch) / "judged.duckdb"
            shutil.copy(args.db, copy)
            s, _, _ = timed(["--db", str(copy), "stats", "-f", "json"])
            stats.append(s)
            e, peak, out = timed(["--db", str(copy), "eval", "-f", "json"])
            evals.append(e)
            peaks.append(peak)
            answers = json.loads(out)["answers"]
            rates.append(answers / e)
            copy.unlink()
    print(f"store {args.db}: {answers:,} LLM answers, {args.runs} runs (medians)")
    print(
        f"  aiobs eval   {statistics.median(evals):8.1f} s  {statistics.median(rates):9,.0f} answers/s"
    )
    print(f"  aiobs stats  {statistics.median(stats):8.2f} s")
    print(f"  peak RSS (eval and its workers)  {max(peaks):,.0f} MB")


if __name__ == "__main__":
    main()
