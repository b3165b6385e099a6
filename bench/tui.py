"""The triage TUI's responsiveness on a big demo store, in a real terminal (tmux) and headless.

    python bench/tui.py                  # builds bench/out/demo-x6.duckdb (~1M spans) once
    python bench/tui.py --db PATH        # any store (the 10M-span one: aiobs demo --scale 60)
    python bench/tui.py --runs 5

Prints medians over --runs. In tmux (the real app in a 160x48 terminal, as a person waits: from
the key to the screen showing the answer, capture-pane polled every 5 ms): launch to the
overview's services and to its incidents (the landing screen runs a scan); then, opened on the
last 30 days' traces, launch to first rows, Enter on a trace to its replay painted (after the
cursor rested on it, as a person's does), a filter change to its new rows, a page of scrolling
(PgDn to its rows painted), End to the last rows, B to the segments by model and C to the diff
of two windows. Headless (Pilot, in process): the peak RSS after scrolling to the last row.
Pilot's own waits make its latencies unlike a terminal's, so only tmux times those.
Targets (issue 17, on 1M spans): first rows <= 1.5 s, replay <= 300 ms, filter <= 500 ms, a page
<= 50 ms, peak RSS after scrolling to the last row <= 400 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FILTERS = (
    "status = 'error'",
    "service_name = 'support-chat'",
    "model = 'gpt-4.1'",
    "status = 'error' and service_name = 'order-assistant'",
    "tool_name = 'lookup_charge_v1'",
)
ROW = re.compile(r"^\s*◆?\s*[0-9a-f]{32}\s")


def build(scale: str) -> Path:
    db = HERE / "out" / f"demo-x{scale}.duckdb"
    if not db.exists():
        db.parent.mkdir(exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "aiobs",
                "--db",
                str(db),
                "demo",
                "--scale",
                scale,
                "-f",
                "json",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return db


# -- headless ---------------------------------------------------------------------------------


async def settle(pilot: Any) -> None:
    while True:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return


def headless(db: Path) -> dict[str, float]:
    """In process: End on the whole table, and the peak RSS with its last rows loaded."""
    from aiobs.backend.duckdb import open_store
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.data import TraceQuery
    from aiobs.tui.widgets import TraceTable

    out: dict[str, float] = {}

    async def run() -> None:
        with open_store(db, read_only=True) as store:
            # The traces screen (the overview lands otherwise), over every trace.
            start = Start(traces=True, query=TraceQuery(since="30d"))
            async with TriageApp(store, start).run_test(size=(160, 48)) as pilot:
                table = pilot.app.screen.query_one(TraceTable)
                while table.current is None:
                    await settle(pilot)
                await pilot.press("end")
                while table.current is None or table.cursor != (table.pages.total or 0) - 1:
                    await settle(pilot)
                out["rows"] = float(table.pages.total or 0)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["peak RSS MB (after the last row)"] = rss

    asyncio.run(run())
    return out


# -- tmux -------------------------------------------------------------------------------------


def in_tmux(db: Path) -> dict[str, list[float]]:
    tmux = shutil.which("tmux")
    if tmux is None:
        return {}
    session = f"aiobs-bench-{os.getpid()}"

    def screen() -> str:
        return subprocess.run(
            [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout

    def keys(*k: str) -> None:
        subprocess.run([tmux, "send-keys", "-t", session, *k], check=True)

    def rows(text: str) -> list[str]:
        return [line for line in text.splitlines() if ROW.match(line)]

    def loaded(text: str) -> bool:
        return bool(rows(text)) and not any(line.startswith("  …") for line in text.splitlines())

    def wait(done: Callable[[str], bool], timeout: float = 30) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if done(screen()):
                return time.perf_counter() - started
            time.sleep(0.005)
        raise SystemExit(f"timed out; the screen:\n{screen()}")

    out: dict[str, list[float]] = {}

    def launch(args: str) -> float:
        command = f"{sys.executable} -m aiobs --db {db} tui {args}"
        started = time.perf_counter()
        subprocess.run(
            [tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "48", command],
            check=True,
        )
        return started

    # The overview (the landing screen): its services, then the scan's incidents.
    started = launch("")
    try:
        wait(lambda c: "changes against the period before" in c)
        out["launch to the overview's services"] = [time.perf_counter() - started]
        wait(lambda c: "incidents ·" in c, timeout=120)
        out["launch to the overview's incidents"] = [time.perf_counter() - started]
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
    # The traces of the last 30 days (the command line selects traces: the table opens).
    started = launch("--since 30d")
    try:
        wait(lambda c: " traces · " in c and loaded(c))
        out["launch to first rows (tmux)"] = [time.perf_counter() - started]
        time.sleep(0.5)
        for _ in range(5):
            keys("Enter")
            out.setdefault("Enter to replay painted", []).append(
                wait(lambda c: "critical path" in c)
            )
            keys("Escape")
            wait(lambda c: " traces · " in c and "critical path" not in c)
            keys("Down")
            time.sleep(0.3)
        for condition in FILTERS:
            keys("/")
            time.sleep(0.2)
            keys(condition)
            time.sleep(0.3)
            keys("Enter")
            out.setdefault("filter to new rows", []).append(
                wait(lambda c, w=condition: f"where {w}" in c and "counting" not in c and loaded(c))
            )
            time.sleep(0.3)
        keys("0")  # clear: every trace again
        wait(lambda c: " where " not in c and loaded(c))
        time.sleep(0.3)
        for _ in range(20):
            before = rows(screen())[:1]
            keys("PageDown")
            out.setdefault("a page of scrolling", []).append(
                wait(lambda c, b=before: rows(c)[:1] != b and loaded(c))
            )
            time.sleep(0.1)
        before = rows(screen())[:1]
        keys("End")
        out["End (the last rows)"] = [wait(lambda c, b=before: rows(c)[:1] != b and loaded(c))]
        # The analysis screens over the same traces: segment by model, diff of the last day.
        keys("B")
        out["B to segments by model"] = [wait(lambda c: "Segments by model ·" in c, timeout=120)]
        keys("Escape")
        time.sleep(0.3)
        keys("C")
        out["C to the diff of two windows"] = [
            wait(lambda c: "Diff · " in c and "comparing" not in c, timeout=120)
        ]
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path)
    parser.add_argument("--scale", default="6")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    db = args.db or build(args.scale)
    results: dict[str, list[float]] = {}
    for _ in range(args.runs):
        # Each headless run in its own process, so its imports and peak RSS are its own.
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(db)],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in proc.stdout.splitlines():
            name, value = line.rsplit("\t", 1)
            results.setdefault(name, []).append(float(value))
        for name, values in in_tmux(db).items():
            results.setdefault(name, []).extend(values)
    rows = int(results.pop("rows", [0])[0])
    print(f"store {db} ({rows:,} traces), {args.runs} runs")
    for name, values in results.items():
        v = statistics.median(values)
        if "MB" in name:
            print(f"  {name:<36} {v:>8,.0f} MB")
        else:
            print(
                f"  {name:<36} {v * 1000:>8,.0f} ms"
                f"  (median of {len(values)}, max {max(values) * 1000:,.0f} ms)"
            )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        for name, value in headless(Path(sys.argv[2])).items():
            print(f"{name}\t{value}")
    else:
        main()
