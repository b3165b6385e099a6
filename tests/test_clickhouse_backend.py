"""The ClickHouse backend (``--backend chdb://…`` / ``clickhouse://…``): every read command gives
on the collector exporter's tables in real ClickHouse what it gives on the DuckDB store.

The committed demo sample is ingested into a DuckDB store, exported to Parquet (whole tables),
and loaded into the clickhouseexporter's own DDL (tests/test_clickhouse.py ``DDL``) in an
embedded ClickHouse (chdb) data directory. Each read command then runs with ``-f json`` on
both, and the documents must be the same (floats to a relative 1e-9).

chdb runs one embedded server per process, on one path, and other tests of a worker hold one in
memory; so the chdb side runs in a child process (the real CLI, in process there, every command
in one child).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, Cli, built_once

pytest.importorskip("chdb", reason="chdb (embedded ClickHouse) is in the test extra")

pytestmark = pytest.mark.xdist_group("clickhouse-backend")

DAYS = "2026-11-13T00:00Z..2026-11-15T00:00Z"

# In the child: build the exporter's tables from the Parquet export in a chdb data directory.
_BUILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from chdb import session
from test_clickhouse import DDL
lake, data = Path(sys.argv[1]), sys.argv[2]
ch = session.Session(data)
ch.query("CREATE DATABASE IF NOT EXISTS otel")
for table, columns in DDL.items():
    ch.query(f"CREATE TABLE otel.{table} ({columns}) ENGINE = MergeTree ORDER BY tuple()")
    ch.query(f"INSERT INTO otel.{table} SELECT * FROM file('{lake / (table + '.parquet')}', Parquet)")
ch.close()
"""

# In the child: run each command line (a JSON list of lists) through the real CLI; print each
# one's exit code and output.
_RUN = """
import json, sys
from typer.testing import CliRunner
from aiobs.cli.main import app
runner = CliRunner()
out = []
for args in json.loads(sys.argv[1]):
    result = runner.invoke(app, args)
    out.append({"exit": result.exit_code, "stdout": result.stdout, "stderr": result.stderr})
print(json.dumps(out))
"""


def in_child(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str]:
    """(the DuckDB store's CLI, the chdb backend URL holding the same telemetry)."""

    def build(folder: Path) -> None:
        in_chdb(REPO / "fixtures" / "demo", folder / "demo.duckdb")

    folder = built_once(tmp_path_factory, "clickhouse-backend", build)
    return Cli(folder / "demo.duckdb"), f"chdb://{folder / 'chdb'}?database=otel"


def in_chdb(source: Path, db: Path) -> str:
    """``source`` ingested into the store ``db`` and, through its Parquet export, into the
    exporter's tables in a chdb directory beside it: that directory's backend URL."""
    cli = Cli(db)
    assert cli("ingest", str(source)).exit_code == 0
    result = cli("export", "--to", "parquet", "--out", str(db.parent / "lake"))
    assert result.exit_code == 0, result.output
    in_child(_BUILD, str(db.parent / "lake"), str(db.parent / "chdb"), str(REPO / "tests"))
    return f"chdb://{db.parent / 'chdb'}?database=otel"


def on_clickhouse(url: str, commands: list[list[str]]) -> list[dict[str, Any]]:
    lines = [["--backend", url, *c] for c in commands]
    found: list[dict[str, Any]] = json.loads(in_child(_RUN, json.dumps(lines)))
    return found


def same(a: Any, b: Any, path: str = "$") -> list[str]:
    """Where two JSON documents differ (floats to a relative 1e-9)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a.keys() ^ b.keys())} differ"]
        return [d for k in a for d in same(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items against {len(b)}"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in same(x, y, f"{path}[{i}]")
        ]
    numbers = isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool)
    if numbers and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
        return []
    if a != b:
        return [f"{path}: DuckDB {a!r:.120}, ClickHouse {b!r:.120}"]
    return []


def _commands(cli: Cli, *, light: bool = False) -> list[list[str]]:
    """Every read command, on the sample's traces, with ``-f json``. (One of each: every
    statement the commands send, in more variants, runs in both engines in test_sql_dialects.)"""
    failed = cli.json("traces", "--since", DAYS, "--status", "error", "-n", "1")[0]["trace_id"]
    ok = cli.json("traces", "--since", DAYS, "--status", "ok", "-n", "1")[0]["trace_id"]
    session = cli.json("sessions", "--since", DAYS, "-n", "1")[0]["session_id"]
    commands = [
        ["traces", "--since", DAYS],
        ["traces", "--since", DAYS, "--where", "cost_usd > 0.001", "--sort", "-cost_usd"],
        ["sessions", "--since", DAYS],
        ["replay", failed],
        ["replay", ok],
        ["replay", "--session", session],
        ["describe", failed],
        ["diff-traces", ok, failed],
        ["segment", "--by", "model", "--since", DAYS],
        ["diff", "--since", DAYS, "--baseline", "model = 'claude-sonnet-4-20250514'",
         "--target", "model = 'gpt-4.1-2025-04-14'"],
        ["scan", "--since", DAYS],
        ["stats"],
    ]  # fmt: skip
    # The analytics that cost ClickHouse most (seconds of planning each) run where the test
    # needs them: scan over HTTP, segment, diff and scan on the span table; without it, every
    # statement they send is compared in test_sql_dialects, and segment in test_clickhouse.
    heavy = ("segment", "diff", "scan")
    return [[*c, "-f", "json"] for c in commands if not (light and c[0] in heavy)]


_ON_DUCKDB: dict[str, str] = {}  # each command's output on the DuckDB store, by its arguments


def _differences(
    cli: Cli, url: str, commands: list[list[str]], there: list[dict[str, Any]]
) -> list[str]:
    problems = []
    for args, theirs in zip(commands, there, strict=True):
        key = json.dumps(args)
        if key not in _ON_DUCKDB:
            ours = cli(*args)
            assert ours.exit_code == 0, (args, ours.output)
            _ON_DUCKDB[key] = ours.stdout
        if theirs["exit"] != 0:
            problems.append(f"{' '.join(args)}: exit {theirs['exit']}: {theirs['stderr'][-400:]}")
            continue
        mine, their = json.loads(_ON_DUCKDB[key]), json.loads(theirs["stdout"])
        if args[0] == "stats":  # where the data is, the store's schema and ingest log differ
            for key, want in (("store", url), ("schema_version", 0), ("ingests", None)):
                assert their.pop(key) == want
                mine.pop(key)
        diffs = same(mine, their)
        if diffs:
            problems.append(f"{' '.join(args)}: " + "; ".join(diffs[:4]))
    return problems


# ``aiobs query`` takes the engine's own SQL: (DuckDB's, ClickHouse's) for the same answer.
QUERIES = [
    ("SELECT trace_id, start_time, round(cost_usd, 6) AS cost FROM ai_traces"
     " ORDER BY start_time, trace_id LIMIT 5",) * 2,
    ("SELECT count(DISTINCT TraceId) AS n, max(Timestamp) AS last FROM otel_traces",
     "SELECT uniqExact(TraceId) AS n, max(Timestamp) AS last FROM otel_traces"),
]  # fmt: skip
EXPORTS = ("otlp-json", "markdown", "dataset")
REFUSED = ["SELECT * FROM file('/etc/passwd', LineAsString)", "DROP TABLE otel_traces"]


def test_every_read_command_gives_the_same_json_on_clickhouse(worlds: tuple[Cli, str]) -> None:
    cli, url = worlds
    commands = _commands(cli, light=True)
    exports = [["export", "--to", to, "--since", DAYS, "--out", "-"] for to in EXPORTS]
    extra = [["query", ch, "-f", "json"] for _, ch in QUERIES] + [["query", q] for q in REFUSED]
    there = on_clickhouse(url, commands + exports + extra)
    problems = _differences(cli, url, commands, there[: len(commands)])
    # The exports, byte for byte: OTLP JSON Lines, the Markdown report, the dataset.
    for args, theirs in zip(exports, there[len(commands) :], strict=False):
        ours = cli(*args)
        assert ours.exit_code == 0 and theirs["exit"] == 0, (args, theirs["stderr"])
        if ours.stdout != theirs["stdout"]:
            problems.append(f"{' '.join(args)}: the files differ")
    assert problems == [], "\n".join(problems)
    answers = there[len(commands) + len(exports) :]
    for (duck, _), theirs in zip(QUERIES, answers, strict=False):
        assert theirs["exit"] == 0, theirs["stderr"]
        assert same(cli.json("query", duck), json.loads(theirs["stdout"])) == []
    for refused in answers[len(QUERIES) :]:
        assert refused["exit"] == 2 and "read-only" in refused["stderr"], refused


@pytest.fixture
def server(worlds: tuple[Cli, str]) -> Iterator[int]:
    """chdb behind ClickHouse's HTTP interface on loopback (tests/chdb_http.py), on the world's
    data directory (no other process has it open: the chdb:// child has exited): its port."""
    _, url = worlds
    data = url.removeprefix("chdb://").split("?")[0]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "chdb_http.py"), str(data)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()


def test_the_clickhouse_http_client_path_gives_the_same_json(
    worlds: tuple[Cli, str], server: int
) -> None:
    """The real clickhouse-connect client over HTTP: the same answers, the password never shown,
    and a query the server refuses is the user's error (exit 2) with ClickHouse's message."""
    from typer.testing import CliRunner

    from aiobs.cli.main import app

    cli, _ = worlds
    url = f"clickhouse://reader:pw-not-shown@127.0.0.1:{server}/otel"
    runner = CliRunner()
    # A list, and scan (25 queries, its temporary table in the HTTP session); the chdb:// test
    # above runs the rest on the same engine.
    every = _commands(cli)
    commands = [every[0], *(c for c in every if c[0] == "scan")]
    there = []
    for args in commands:
        result = runner.invoke(app, ["--backend", url, *args])
        there.append({"exit": result.exit_code, "stdout": result.stdout, "stderr": result.stderr})
    shown = url.replace("pw-not-shown", "***")
    problems = _differences(cli, shown, commands, there)
    assert problems == [], "\n".join(problems)
    assert all("pw-not-shown" not in t["stdout"] + t["stderr"] for t in there)
    bad = runner.invoke(app, ["--backend", url, "traces", "--where", "no_such_field = 1"])
    assert bad.exit_code == 2 and "no_such_field" in bad.stderr, bad.output


# In the child: apply ``aiobs clickhouse ddl``'s statements to a chdb data directory (as a
# cluster's operator would run them), and say whether the backend then reads the table.
_APPLY_DDL = """
import sys
from chdb import session
ddl, data = open(sys.argv[1]).read(), sys.argv[2]
ch = session.Session(data)
for statement in ddl.split(";\\n"):
    body = "\\n".join(l for l in statement.splitlines() if not l.startswith("--")).strip()
    if body:
        ch.query(body)
print(ch.query("SELECT count() FROM otel.aiobs_spans", "TSV"))
ch.close()
from aiobs.backend.clickhouse import open_backend
print(open_backend(f"chdb://{data}?database=otel").spans_table)
"""


def test_the_ddl_s_span_table_is_read_when_present_with_the_same_answers(
    demo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """``aiobs clickhouse ddl`` run on the cluster (chdb filled from the demo week's export, at a
    quarter of its traffic): its materialised view keeps the canonical span columns, the backend
    reads them instead of computing them at each reference, and segment, diff and scan answer
    the same. The week has incidents, so scan's causes are compared too (the sample has none),
    and diff passes its sides' ~10k trace ids, past ClickHouse's default query size."""
    from conftest import DEMO_END

    cli = Cli(demo[0])
    week = f"2026-11-08T00:00Z..{DEMO_END}"
    lake, data = tmp_path / "lake", tmp_path / "chdb"
    assert cli("export", "--to", "parquet", "--out", str(lake)).exit_code == 0
    in_child(_BUILD, str(lake), str(data), str(REPO / "tests"))
    ddl = cli("clickhouse", "ddl", "--database", "otel")
    assert ddl.exit_code == 0 and "CREATE MATERIALIZED VIEW" in ddl.stdout
    (tmp_path / "ddl.sql").write_text(ddl.stdout)
    rows, used = in_child(_APPLY_DDL, str(tmp_path / "ddl.sql"), str(data)).split()
    spans = cli.query("SELECT count(*) AS n FROM otel_traces")[0]["n"]
    assert (int(rows), used) == (spans, "True")
    with_table = f"chdb://{data}?database=otel"
    commands = [
        ["segment", "--by", "model", "--since", week, "-f", "json"],
        ["diff", "--since", week, "--baseline", "prompt_version = 'v6'",
         "--target", "prompt_version = 'v7'", "-f", "json"],
        ["scan", "--since", week, "-f", "json"],
    ]  # fmt: skip
    there = on_clickhouse(with_table, commands)
    problems = _differences(cli, with_table, commands, there)
    assert problems == [], "\n".join(problems)
    scan = json.loads(there[-1]["stdout"])
    assert len(scan["incidents"]) >= 3 and all(i["likely_causes"] for i in scan["incidents"][:3])


# In a child: run the command lines, then say whether sqlglot was imported.
_RUN_THEN_MODULES = (
    _RUN
    + """
print("sqlglot" in sys.modules)
"""
)


def test_translations_are_kept_for_the_next_command(
    worlds: tuple[Cli, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command's ClickHouse translations are kept in the cache directory: the next process
    running the same commands answers the same without importing sqlglot at all."""
    cli, url = worlds
    monkeypatch.setenv("AIOBS_CACHE_DIR", str(tmp_path / "cache"))
    failed = cli.json("traces", "--since", DAYS, "--status", "error", "-n", "1")[0]["trace_id"]
    lines = json.dumps([["--backend", url, *c, "-f", "json"] for c in
                        (["traces", "--since", DAYS], ["replay", failed])])  # fmt: skip
    first, second = (in_child(_RUN_THEN_MODULES, lines).splitlines() for _ in range(2))
    assert (first[-1], second[-1]) == ("True", "False")
    answers = [[json.loads(r["stdout"]) for r in json.loads(out[0])] for out in (first, second)]
    assert answers[0] == answers[1] and len(answers[0][0]) > 0
    assert (tmp_path / "cache" / "clickhouse-sql.sqlite").exists()


# A window's edges on ClickHouse, where a window's traces are computed from the spans within
# TRACE_REACH of it (TraceFilter.span_bounds) rather than from every span of the table.
EDGE_A = 1_764_000_000_000_000_000  # the window's start, ns
HOUR = 3_600_000_000_000
EDGE_TRACES = {  # trace: its spans' (offset from the window's start, duration), ns
    "before": [(-HOUR // 6, HOUR // 60), (HOUR // 60, HOUR // 60)],  # starts 10 min before it
    "inside": [(HOUR // 12, HOUR // 600)],
    "late": [(HOUR - HOUR // 60, HOUR // 600), (HOUR + HOUR // 6, HOUR // 3)],  # runs past it
    "after": [(HOUR + HOUR // 60, HOUR // 600)],
}


def _edge_world(tmp_path: Path, traces: dict[str, list[tuple[int, int]]]) -> tuple[Cli, str, str]:
    """(the DuckDB store's CLI, the chdb URL, the window A..A+1h) of ``traces``: name -> its
    spans' (offset from the window's start, duration) in ns; trace ids 1, 2 … by name."""
    from datetime import UTC, datetime

    from conftest import otlp_span, traces_doc

    docs = []
    for n, (name, spans) in enumerate(sorted(traces.items()), start=1):
        docs.append(
            traces_doc(
                *(
                    otlp_span(
                        trace_id=f"{n:032x}",
                        span_id=f"{n:08x}{i:08x}",
                        parent="" if i == 0 else f"{n:08x}{0:08x}",
                        name=f"{name} {i}",
                        start=EDGE_A + offset,
                        duration=duration,
                        attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
                    )
                    for i, (offset, duration) in enumerate(spans)
                )
            )
        )
    source = tmp_path / "edges.jsonl"
    source.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    url = in_chdb(source, tmp_path / "edges.duckdb")
    a, b = (datetime.fromtimestamp(t / 1e9, UTC) for t in (EDGE_A, EDGE_A + HOUR))
    return Cli(tmp_path / "edges.duckdb"), url, f"{a:%Y-%m-%dT%H:%MZ}..{b:%Y-%m-%dT%H:%MZ}"


def test_a_window_reads_its_traces_whole_and_only_those_starting_in_it(
    tmp_path: Path,
) -> None:
    """`traces` and `segment` over a window on ClickHouse, whose spans are read only within reach
    of it: a trace that starts before the window but has a span in it stays out, one that starts
    in it and runs past its end is whole (its span count and duration), as on the DuckDB store;
    and the TUI's count agrees."""

    def trace_id(name: str) -> str:
        return f"{sorted(EDGE_TRACES).index(name) + 1:032x}"

    cli, url, window = _edge_world(tmp_path, EDGE_TRACES)
    local = cli.json("traces", "--since", window)
    segments = cli.json("segment", "--by", "model", "--since", window)
    remote, remote_segments = on_clickhouse(
        url,
        [
            ["traces", "--since", window, "-f", "json"],
            ["segment", "--by", "model", "--since", window, "-f", "json"],
        ],
    )
    assert remote["exit"] == 0, remote["stderr"]
    assert same(local, json.loads(remote["stdout"])) == []
    assert [s["traces"] for s in segments] == [2]
    assert same(segments, json.loads(remote_segments["stdout"])) == []
    shown = {r["trace_id"]: r for r in local}
    assert set(shown) == {trace_id("inside"), trace_id("late")}
    late = shown[trace_id("late")]
    assert late["span_count"] == 2
    assert late["duration_ms"] == pytest.approx((HOUR // 6 + HOUR // 3 + HOUR // 60) / 1e6)
    counted = in_child(
        "import sys\n"
        "from aiobs.analysis.browse import count_traces\n"
        "from aiobs.analysis.filters import TraceFilter\n"
        "from aiobs.backend.clickhouse import open_backend\n"
        "print(count_traces(open_backend(sys.argv[1]), TraceFilter.from_options(since=sys.argv[2])))",
        url,
        window,
    )
    assert int(counted) == 2


def test_a_trace_longer_than_the_reach_is_whole_with_a_longer_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit the README states: on ClickHouse a trace that lasts longer than the reach (6 h)
    is seen in part (its spans after the window's reach are not read); AIOBS_TRACE_REACH
    lengthens it, and the trace is then as the DuckDB store has it."""
    long = {"long": [(HOUR // 12, HOUR // 60), (8 * HOUR, HOUR // 60)]}  # 8 hours from its start
    cli, url, window = _edge_world(tmp_path, long)
    (local,) = cli.json("traces", "--since", window)
    assert local["span_count"] == 2
    (cut,) = on_clickhouse(url, [["traces", "--since", window, "-f", "json"]])
    assert [r["span_count"] for r in json.loads(cut["stdout"])] == [1]
    monkeypatch.setenv("AIOBS_TRACE_REACH", "12h")
    (whole,) = on_clickhouse(url, [["traces", "--since", window, "-f", "json"]])
    assert same([local], json.loads(whole["stdout"])) == []
    monkeypatch.setenv("AIOBS_TRACE_REACH", "soon")
    (refused,) = on_clickhouse(url, [["traces", "--since", window, "-f", "json"]])
    assert refused["exit"] == 2 and "AIOBS_TRACE_REACH" in refused["stderr"]
