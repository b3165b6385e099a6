"""The read commands on ClickHouse (embedded, chdb) beside the same store in DuckDB, whole process.

    python bench/clickhouse.py                       # bench/out/demo-x6.duckdb (~1M spans)
    python bench/clickhouse.py --runs 5 --only replay,traces

Builds, once, chdb data directories from the store's Parquet export (`aiobs export --to
parquet`) under the clickhouseexporter's DDL (tests/test_clickhouse.py): `…-chdb` as the
exporter leaves a cluster, `…-chdb-ddl` with `aiobs clickhouse ddl` applied (the canonical
`aiobs_spans` table), and `…-http`, the same, served by tests/chdb_http.py (chdb behind
ClickHouse's HTTP interface) for `clickhouse://` as against a running server. Then times each
command on the DuckDB store and on each of those, alternating run by run, and prints the
medians and the ratios to DuckDB (issue 20's target: within 3x). A chdb:// process starts an
embedded server and loads the tables' parts: the floor line shows that cost beside DuckDB's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from commands import run

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

# In a child (one chdb server per process): the exporter's tables from the Parquet lake, and
# with "ddl", aiobs's table too (its backfill fills it from otel_traces).
_BUILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from chdb import session
from test_clickhouse import DDL
lake, data, ddl = Path(sys.argv[1]), sys.argv[2], sys.argv[4:]
ch = session.Session(data)
ch.query("CREATE DATABASE IF NOT EXISTS otel")
for table, columns in DDL.items():
    order = "ServiceName, SpanName, toDateTime(Timestamp)" if table == "otel_traces" else "tuple()"
    if table == "otel_traces":  # the exporter's trace-id index
        columns += ", INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1"
    ch.query(
        f"CREATE TABLE otel.{table} ({columns}) ENGINE = MergeTree"
        f" PARTITION BY toDate({'TimeUnix' if 'metrics' in table else 'Timestamp'})"
        f" ORDER BY ({order})"
    )
    ch.query(f"INSERT INTO otel.{table} SELECT * FROM file('{lake / (table + '.parquet')}', Parquet)")
if ddl:
    for statement in Path(ddl[0]).read_text().split(";\\n"):
        body = "\\n".join(l for l in statement.splitlines() if not l.startswith("--")).strip()
        if body:
            ch.query(body)
ch.close()
"""


def build(store: Path, data: Path, with_table: bool) -> None:
    lake = store.with_name(store.stem + "-lake")
    if not lake.exists():
        run(["--db", str(store), "export", "--to", "parquet", "--out", str(lake)])
    args = [sys.executable, "-c", _BUILD, str(lake), str(data), str(HERE.parent / "tests")]
    if with_table:
        ddl = data.with_suffix(".sql")
        ddl.write_text(run(["clickhouse", "ddl"])[2])
        args.append(str(ddl))
    started = time.perf_counter()
    subprocess.run(args, check=True)
    print(f"built {data.name} in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, default=HERE / "out" / "demo-x6.duckdb")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="")
    opts = parser.parse_args()
    store: Path = opts.db
    if not store.exists():
        raise SystemExit(f"{store}: build it first (python bench/commands.py)")
    engines = {"DuckDB": ["--db", str(store)]}
    for suffix, with_table in (("chdb", False), ("chdb-ddl", True), ("http", True)):
        data = store.with_name(f"{store.stem}-{suffix}")
        if not data.exists():
            build(store, data, with_table)
        engines[suffix] = ["--backend", f"chdb://{data}?database=otel"]
    # A running server, as a cluster is: chdb behind ClickHouse's HTTP interface (the tests'
    # stand-in), its own copy of the data (one process may open a chdb directory).
    server = subprocess.Popen(
        [sys.executable, str(HERE.parent / "tests" / "chdb_http.py"), _data(engines["http"])],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    port = int(server.stdout.readline())
    engines["http"] = ["--backend", f"clickhouse://default@127.0.0.1:{port}/otel"]
    try:
        _bench(opts, store, engines)
    finally:
        server.kill()


def _bench(opts: argparse.Namespace, store: Path, engines: dict[str, list[str]]) -> None:
    db = engines["DuckDB"]
    trace = run([*db, "query", "select trace_id from ai_traces where status = 'error'"
                 " order by trace_id limit 1", "-f", "csv"])[2].splitlines()[-1]  # fmt: skip
    # The windows end where the store's telemetry does, as in bench/commands.py.
    last = run([*db, "query", "select strftime(date_trunc('hour', max(start_time)),"
                " '%Y-%m-%dT%H:%MZ') as e from ai_traces", "-f", "csv"])[2].splitlines()[-1]  # fmt: skip
    end = datetime.strptime(last, "%Y-%m-%dT%H:%MZ")

    def at(hours_before: int) -> str:
        return (end - timedelta(hours=hours_before)).strftime("%Y-%m-%dT%H:%MZ")

    week = f"{at(168)}..{at(0)}"
    commands = {
        "replay TRACE": ["replay", trace],
        "traces --limit 50": ["traces", "--since", week, "--limit", "50"],
        "segment --by model": ["segment", "--by", "model", "--since", week],
        "diff of two 19-hour windows": ["diff", "--baseline", f"{at(76)}..{at(57)}",
                                        "--target", f"{at(57)}..{at(38)}"],
        "scan (the demo week)": ["scan", "--since", week, "-f", "json"],
    }  # fmt: skip
    wanted = [w.strip() for w in opts.only.split(",") if w.strip()]
    # The floors of a replay: a bare process that opens the store and fetches the trace's rows.
    data = _data(engines["chdb-ddl"])
    floors = {
        "DuckDB": "import duckdb; duckdb.connect(sys.argv[1], read_only=True).execute("
        "'SELECT * FROM otel_traces WHERE TraceId = ?', [sys.argv[2]]).fetchall()",
        "chdb": "from chdb import session; session.Session(sys.argv[3]).query("
        "f\"SELECT * FROM otel.otel_traces WHERE TraceId = '{sys.argv[2]}'\", 'Arrow')",
    }
    bare = {
        name: statistics.median(
            _seconds([sys.executable, "-c", f"import sys; {code}", str(store), trace, data])
            for _ in range(3)
        )
        for name, code in floors.items()
    }
    print(f"store {store}, {opts.runs} runs each")
    print(
        "floor (a bare process: open the store, fetch the trace's rows):"
        f" DuckDB {bare['DuckDB']:.2f} s, chdb {bare['chdb']:.2f} s"
    )
    print(f"{'command':<30}" + "".join(f"{e:>10}" for e in engines) + "  ratios to DuckDB")
    for label, args in commands.items():
        if wanted and not any(w in label for w in wanted):
            continue
        times: dict[str, list[float]] = {e: [] for e in engines}
        for _ in range(opts.runs):  # alternating: each run of each engine in turn
            for engine, prefix in engines.items():
                times[engine].append(run([*prefix, *args])[0])
        medians = {e: statistics.median(t) for e, t in times.items()}
        ratios = " ".join(f"{medians[e] / medians['DuckDB']:.1f}x" for e in list(engines)[1:])
        print(f"{label:<30}" + "".join(f"{m:>9.2f}s" for m in medians.values()) + f"  {ratios}")


def _data(engine: list[str]) -> str:
    """The data directory of a ``--backend chdb://DIR?database=otel`` engine."""
    return engine[1].removeprefix("chdb://").removesuffix("?database=otel")


def _seconds(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
