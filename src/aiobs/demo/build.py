"""Build the demo store: generate the world, ingest it through the normal ingest path, record the manifest.

The demo's telemetry goes through exactly the decoder and store code a user's export does (OTLP JSON
Lines files, one transaction per file), so the demo exercises the real thing. Days are generated
in worker processes while earlier days are ingested.

The store is built into a temporary file next to the target and moved into place at the end, so a
failed or interrupted build leaves the previous store as it was.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiobs.demo.generate import World
from aiobs.demo.world import WorldConfig, WorldPlan, plan_world
from aiobs.errors import UsageError

if TYPE_CHECKING:
    from aiobs.backend import Backend

MANIFEST_KEY = "demo.manifest"


@dataclass
class DemoResult:
    path: Path
    manifest: dict[str, Any]
    files: list[Path]
    spans: int = 0
    log_records: int = 0
    metric_points: int = 0
    traces: int = 0
    sessions: int = 0
    bytes: int = 0
    seconds: float = 0.0
    out_dir: Path | None = None


def day_file_name(plan: WorldPlan, day: int) -> str:
    from aiobs.demo.world import DAY_NS, iso

    date = iso(plan.config.start_ns + day * DAY_NS)[:10]
    return f"acme-support-{date}-day{day + 1}.otlp.jsonl"


def write_day(config: WorldConfig, day: int, out_dir: Path) -> Path:
    """Generate one day into its file (runs in a worker process)."""
    plan = plan_world(config)
    path = out_dir / day_file_name(plan, day)
    lines = World(plan).day(day)
    with path.open("wb") as fh:
        for line in lines:
            fh.write(line)
            fh.write(b"\n")
    return path


def write_files(config: WorldConfig, out_dir: Path) -> list[Path]:
    """Write the world's OTLP JSON Lines files and ``manifest.json`` into ``out_dir`` (no store)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [write_day(config, day, out_dir) for day in range(config.days)]
    (out_dir / "manifest.json").write_text(
        json.dumps(plan_world(config).manifest(), indent=2) + "\n"
    )
    return files


def _is_replaceable(path: Path) -> tuple[bool, str]:
    """A store may be replaced by the demo if it is blank or was itself built by ``aiobs demo``."""
    from aiobs.backend.duckdb import open_store

    store = open_store(path, read_only=False)  # exit 3 if another process holds it
    try:
        con = store.con
        ingests = con.execute("SELECT count(*) FROM aiobs_ingests").fetchone()
        meta = con.execute(
            "SELECT count(*) FROM aiobs_meta WHERE key = ?", [MANIFEST_KEY]
        ).fetchone()
    finally:
        store.close()
    if meta and meta[0]:
        return True, "demo"
    if not ingests or not ingests[0]:
        return True, "empty"
    return False, f"{ingests[0]} ingested files"


def build_demo(
    db_path: Path,
    config: WorldConfig,
    *,
    out_dir: Path | None = None,
    force: bool = False,
    on_day: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Generate the world described by ``config`` into a fresh store at ``db_path``.

    An existing store is replaced only if it was built by ``aiobs demo`` (or is empty) — or with
    ``force``; a store holding a user's own telemetry is never silently overwritten.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from aiobs.backend.duckdb import open_store
    from aiobs.ingest.pipeline import configure_for_ingest, ingest_file
    from aiobs.ingest.sources import Input

    started = time.perf_counter()
    db_path = Path(db_path)
    if db_path.is_dir():
        raise UsageError(f"store path {db_path} is a directory, not a DuckDB file")
    if db_path.exists() and not force:
        ok, what = _is_replaceable(db_path)
        if not ok:
            raise UsageError(
                f"{db_path} already holds telemetry ({what}); the demo would replace it",
                hint="pick another store with `aiobs --db demo.duckdb demo`, or pass --force",
            )
    plan = plan_world(config)
    manifest = plan.manifest()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_db = db_path.with_name(f".{db_path.name}.building-{os.getpid()}")
    for leftover in (tmp_db, tmp_db.with_name(tmp_db.name + ".wal")):
        leftover.unlink(missing_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix="aiobs-demo-") if out_dir is None else None
    target_dir = Path(scratch.name) if scratch is not None else Path(str(out_dir))
    target_dir.mkdir(parents=True, exist_ok=True)
    result = DemoResult(path=db_path, manifest=manifest, files=[], out_dir=out_dir)

    # Days are independent, so worker processes generate them (pure Python, GIL-bound) while this
    # process ingests each file as it lands, in order. "spawn": forking a process that already
    # runs DuckDB threads is unsafe.
    workers = max(1, min(2, os.cpu_count() or 1, config.days))
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    store = None
    try:
        futures = [pool.submit(write_day, config, day, target_dir) for day in range(config.days)]
        store = open_store(tmp_db, read_only=False, create=True)
        configure_for_ingest(store.con)
        # No checkpoint until the one at the end: nothing reads this temporary file while it is
        # built, and each file's commit past DuckDB's 16 MB WAL threshold rewrote what the last
        # one had written (default week, 3 alternating pairs: 13.9-15.8 -> 11.8-14.0 s,
        # 17.7-20.2 -> 14.7-17.8 CPU-s, a 69 -> 44 MB store; peak RSS 690-740 -> 760-830 MB).
        store.con.execute("SET checkpoint_threshold = '64GB'")
        for day, future in enumerate(futures, 1):
            path = future.result()
            res = ingest_file(store, Input(name=str(path), path=path))
            if res.rejected:
                # The generator writes valid OTLP; a reject here is a bug, not bad input.
                raise RuntimeError(
                    f"demo data was rejected by ingest ({res.rejected} in {path.name})"
                )
            result.files.append(path)
            result.spans += res.spans
            result.log_records += res.log_records
            result.metric_points += res.metric_points
            result.bytes += res.size_bytes
            if on_day is not None:
                on_day(day, config.days)
            if out_dir is None:
                path.unlink()
        con = store.con
        row = con.execute(
            "SELECT count(DISTINCT TraceId), count(DISTINCT SpanAttributes['session.id'])"
            " FROM otel_traces"
        ).fetchone()
        result.traces, result.sessions = (int(row[0]), int(row[1])) if row else (0, 0)
        con.execute(
            "INSERT OR REPLACE INTO aiobs_meta VALUES (?, ?, now()::TIMESTAMP)",
            [MANIFEST_KEY, json.dumps(manifest)],
        )
        from aiobs.demo.tour import JOURNEY_KEY, journey

        told = journey(store)
        if told:
            con.execute(
                "INSERT OR REPLACE INTO aiobs_meta VALUES (?, ?, now()::TIMESTAMP)",
                [JOURNEY_KEY, told],
            )
        con.execute("CHECKPOINT")
        store.close()
        store = None
        if out_dir is not None:
            (Path(out_dir) / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if db_path.exists():
            _check_not_locked(db_path)
        os.replace(tmp_db, db_path)
        Path(str(db_path) + ".wal").unlink(missing_ok=True)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        if store is not None:
            store.close()
        for leftover in (tmp_db, tmp_db.with_name(tmp_db.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    finally:
        pool.shutdown(wait=True)
        if scratch is not None:
            scratch.cleanup()
    result.seconds = time.perf_counter() - started
    return result


def _check_not_locked(path: Path) -> None:
    """Refuse to replace a store another process is writing to (exit 3)."""
    from aiobs.backend.duckdb import open_store

    open_store(path, read_only=False).close()


def read_manifest(store: Backend) -> dict[str, Any] | None:
    """The demo manifest recorded in a store, or None for a store not built by ``aiobs demo``."""
    row = store.one("SELECT value FROM aiobs_meta WHERE key = ?", [MANIFEST_KEY])
    return json.loads(row[0]) if row else None
