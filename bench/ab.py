"""Two builds of aiobs side by side, alternating run by run (the machine's speed drifts).

    git worktree add /tmp/base <old commit>
    python bench/ab.py --a /tmp/base/src --b src --db STORE -- replay 7f3a9c
    python bench/ab.py --a /tmp/base/src --b src --db STORE --runs 30 -- segment --by model

Each run is a whole ``python -m aiobs`` process with ``PYTHONPATH`` at the build's ``src``. Prints,
per build, the median and fastest wall time and the median CPU time (user + system of the child,
from ``wait4``: steadier than wall time on a loaded machine), peak RSS, and the ratio b/a. The
first run of each build only warms the bytecode and page caches and is not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def one(src: Path, args: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in KB) of one process."""
    env = dict(os.environ, PYTHONPATH=str(src.resolve()))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiobs", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{src}: aiobs {' '.join(args)} exited {status}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="the first build's src")
    parser.add_argument("--b", type=Path, required=True, help="the second build's src")
    parser.add_argument("--db", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    command = [c for c in opts.command if c != "--"]
    args = ["--db", opts.db, *command]
    results: dict[str, list[tuple[float, float, int]]] = {"a": [], "b": []}
    builds = {"a": opts.a, "b": opts.b}
    for name in builds:
        one(builds[name], args)  # warm-up
    for _ in range(opts.runs):
        for name, src in builds.items():
            results[name].append(one(src, args))
    medians = {}
    for name, runs in results.items():
        walls, cpus, rss = zip(*runs, strict=True)
        medians[name] = (statistics.median(walls), statistics.median(cpus))
        print(
            f"{name} {builds[name]}: wall median {medians[name][0] * 1000:.0f} ms"
            f" (min {min(walls) * 1000:.0f}), cpu median {medians[name][1] * 1000:.0f} ms,"
            f" peak RSS {max(rss) / 1024:.0f} MB"
        )
    print(
        f"b/a: wall {medians['b'][0] / medians['a'][0]:.3f},"
        f" cpu {medians['b'][1] / medians['a'][1]:.3f}  ({opts.runs} alternating runs each;"
        f" aiobs {' '.join(command)})"
    )


if __name__ == "__main__":
    main()
