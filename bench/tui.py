"""The triage TUI's responsiveness on a big demo store, headless (Textual's Pilot) and in tmux.

    python bench/tui.py                  # builds bench/out/demo-x6.duckdb (~1M spans) once
    python bench/tui.py --db PATH        # any store (the 10M-span one: aiobs demo --scale 60)
    python bench/tui.py --runs 5

Prints, each the median of --runs: launch to first rows (in process, from importing the app to the
first page painted; and whole-process in tmux, from the command to the rows on the screen), Enter
on a trace to its replay painted, a filter change to its new rows, a page of scrolling (PgDn to
its rows painted), the end of the table (End to the last rows), and the peak RSS after that.
Targets (issue 17): first rows <= 1.5 s, replay <= 300 ms, filter <= 500 ms, a page <= 50 ms,
peak RSS after scrolling to the last row <= 400 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FILTER = "status = 'error' and service_name = 'support-chat'"


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


async def settle(pilot: Any) -> None:
    while True:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return


async def until(pilot: Any, done: Any) -> None:
    while not done():
        await settle(pilot)


def headless(db: Path) -> dict[str, float]:
    started = time.perf_counter()
    from aiobs.backend.duckdb import open_store
    from aiobs.tui.app import TriageApp
    from aiobs.tui.screens import TraceScreen
    from aiobs.tui.widgets import FilterBar, TraceTable

    out: dict[str, float] = {}

    async def main() -> None:
        with open_store(db, read_only=True) as store:
            app = TriageApp(store)
            async with app.run_test(size=(160, 48)) as pilot:

                def table() -> TraceTable:
                    return pilot.app.screen.query_one(TraceTable)  # type: ignore[no-any-return]

                await until(pilot, lambda: table().current is not None)
                out["first rows (in process)"] = time.perf_counter() - started

                t = time.perf_counter()
                await pilot.press("enter")
                await until(
                    pilot,
                    lambda: (
                        isinstance(pilot.app.screen, TraceScreen)
                        and pilot.app.screen.replay is not None
                    ),
                )
                await pilot.pause()
                out["enter to replay painted"] = time.perf_counter() - t
                await pilot.press("escape")
                await settle(pilot)

                bar = pilot.app.screen.query_one(FilterBar)
                bar.value = FILTER
                bar.focus()
                t = time.perf_counter()
                await pilot.press("enter")
                await until(
                    pilot, lambda: table().pages.total is not None and table().current is not None
                )
                out["filter to new rows"] = time.perf_counter() - t
                bar.value = ""
                bar.focus()
                await pilot.press("enter")
                await until(pilot, lambda: table().current is not None)

                pages = []
                for _ in range(20):
                    t = time.perf_counter()
                    await pilot.press("pagedown")
                    await until(
                        pilot,
                        lambda: all(
                            table().pages.row(i) is not None
                            for i in table().visible_rows()
                            if i < (table().pages.total or 0)
                        ),
                    )
                    pages.append(time.perf_counter() - t)
                out["a page of scrolling"] = statistics.median(pages)

                t = time.perf_counter()
                await pilot.press("end")
                await until(pilot, lambda: table().current is not None)
                out["end of the table"] = time.perf_counter() - t
                out["rows"] = float(table().pages.total or 0)
        out["peak RSS MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    asyncio.run(main())
    return out


def in_tmux(db: Path) -> float | None:
    """Whole process: from the command to the first rows on a 160x48 tmux screen."""
    tmux = shutil.which("tmux")
    if tmux is None:
        return None
    session = f"aiobs-bench-{os.getpid()}"
    command = f"{sys.executable} -m aiobs --db {db} tui"
    started = time.perf_counter()
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "48", command], check=True
    )
    try:
        while time.perf_counter() - started < 30:
            screen = subprocess.run(
                [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            lines = screen.splitlines()
            if any(" traces · " in line for line in lines) and any(
                len(line.split()) > 3 and len(line.split()[0]) == 32 for line in lines
            ):
                return time.perf_counter() - started
            time.sleep(0.02)
        return None
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)


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
        # Each headless run in its own process, so imports and the peak RSS are its own.
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(db)],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in proc.stdout.splitlines():
            name, value = line.rsplit("\t", 1)
            results.setdefault(name, []).append(float(value))
        tm = in_tmux(db)
        if tm is not None:
            results.setdefault("first rows (tmux, whole process)", []).append(tm)
    print(f"store {db} ({int(results.get('rows', [0])[0]):,} traces), median of {args.runs}")
    for name, values in results.items():
        if name == "rows":
            continue
        v = statistics.median(values)
        shown = f"{v:,.0f} MB" if "MB" in name else f"{v * 1000:,.0f} ms"
        print(f"  {name:<36} {shown:>10}   (runs: {', '.join(f'{x:.3g}' for x in values)})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        for name, value in headless(Path(sys.argv[2])).items():
            print(f"{name}\t{value}")
    else:
        main()
