"""Start-up benchmark: wall time of `aiobs --help` as a new process (target ≤ 150 ms).

python bench/startup.py [--runs 20]

aiobs runs with its bytecode cached, as installed (installed.py).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from installed import installed_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    cmd = [sys.executable, "-m", "aiobs", "--help"]
    env = installed_env()
    subprocess.run(cmd, capture_output=True, check=True, env=env)  # warm the page cache
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, env=env)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(
        f"aiobs --help: median {statistics.median(times):.0f} ms, "
        f"min {times[0]:.0f} ms, p90 {times[int(len(times) * 0.9) - 1]:.0f} ms over {args.runs} runs"
    )


if __name__ == "__main__":
    main()
