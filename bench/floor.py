"""Ingest cost floors: what parsing alone and writing the store alone take, as whole processes.

    python bench/floor.py                  # the 1M-span file of bench/ingest.py (made if missing)
    python bench/floor.py --spans 200000   # quicker

The issue's target is 200k spans/s end to end (1M spans in 5 s; 10 CPU-seconds on 2 cores). Each
stage below runs alone in a fresh child process; the child is timed from outside (wall, CPU =
user + sys, peak RSS) and reports the seconds of its one timed step:

  parse          orjson.loads of every line, nothing kept: the "parsing alone" floor.
  decode         aiobs's vectorised reader: every line into otel_traces-shaped Arrow tables,
                 nothing stored.
  store          those tables, written beforehand to an Arrow IPC file and memory-mapped, put
                 into a blank store's otel_traces in ONE INSERT: no dedupe, no memory limit, no
                 canonical columns, no bookkeeping. The least the store's schema costs to write.
  store-no-maps  the same with the attribute maps left NULL: what the MAP columns cost.

aiobs ingest does all of these and more (dedupe, canonical columns, per-trace tables, hashing).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest import OUT, generate  # noqa: E402


def _lines(path: Path) -> list[bytes]:
    with path.open("rb") as fh:
        return fh.readlines()


def child_parse(path: Path) -> float:
    import orjson

    lines = _lines(path)
    t = time.perf_counter()
    for line in lines:
        orjson.loads(line)
    return time.perf_counter() - t


def _decode(path: Path) -> list[object]:
    from aiobs.ingest import fastpath, pipeline

    tables: list[object] = []
    with path.open("rb") as fh:
        for kind, payload in pipeline._split_lines(fh):
            assert kind == "spans", "the bench file holds spans only"
            tables.extend(fastpath.tables(payload))
    return tables


def child_decode(path: Path) -> float:
    t = time.perf_counter()
    _decode(path)
    return time.perf_counter() - t


def child_store(ipc: Path, *, maps: bool) -> float:
    import pyarrow as pa

    from aiobs.backend.duckdb import open_store
    from aiobs.ingest.pipeline import select_list
    from aiobs.store import schema

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "floor.duckdb", read_only=False, create=True)
        con = store.con
        spans = pa.ipc.open_file(pa.memory_map(str(ipc))).read_all()  # noqa: F841 — read by name
        columns = select_list(schema.OTEL_TRACES)
        if not maps:
            columns = ", ".join(
                f'NULL AS "{name}"' if duck == schema.MAP else f'b."{name}" AS "{name}"'
                for name, duck in schema.OTEL_TRACES.columns
            )
        t = time.perf_counter()
        con.execute("BEGIN")
        con.execute(f"INSERT INTO otel_traces SELECT {columns} FROM spans b")
        con.execute("COMMIT")
        seconds = time.perf_counter() - t
        store.con.close()
    return seconds


def _run(stage: str, arg: Path) -> None:
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", stage, str(arg)], stdout=subprocess.PIPE, text=True
    )
    # The child prints one short line, so waiting before reading cannot fill the pipe.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    assert proc.stdout is not None
    out = proc.stdout.read()
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{stage} failed")
    step = float(out.strip().splitlines()[-1])
    print(
        f"{stage:14s} step {step:6.2f} s   whole process {wall:6.2f} s wall, "
        f"{usage.ru_utime + usage.ru_stime:6.2f} s CPU, peak RSS {usage.ru_maxrss / 1024:,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stage, path = args.child[0], Path(args.child[1])
        if stage == "parse":
            print(child_parse(path))
        elif stage == "decode":
            print(child_decode(path))
        else:
            print(child_store(path, maps=stage == "store"))
        return

    OUT.mkdir(exist_ok=True)
    data = OUT / f"genai-{args.spans}.jsonl"
    if not data.exists():
        generate(data, args.spans)
    ipc = OUT / f"genai-{args.spans}.arrow"
    if not ipc.exists() or ipc.stat().st_mtime < data.stat().st_mtime:
        import pyarrow as pa

        tables = _decode(data)
        whole = pa.concat_tables(tables)  # type: ignore[arg-type]
        with pa.OSFile(str(ipc), "wb") as sink, pa.ipc.new_file(sink, whole.schema) as writer:
            writer.write_table(whole, max_chunksize=65_536)
        del tables, whole
    print(
        f"{args.spans:,} spans, {data.stat().st_size / 1e6:.0f} MB; target 200k spans/s = "
        f"{args.spans / 200_000:.1f} s wall"
    )
    for stage, arg in (("parse", data), ("decode", data), ("store", ipc), ("store-no-maps", ipc)):
        _run(stage, arg)


if __name__ == "__main__":
    main()
