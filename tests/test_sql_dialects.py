"""The SQL dialects (``aiobs.sql``): every statement the read commands send runs in ClickHouse too.

The read commands run through the real CLI on the ClickHouse corpus store (every convention
fixture, the committed demo sample and the conformance GenAI files) with the capabilities a
ClickHouse backend has (no materialised columns, no log time index, no record of ingests), and
every statement they hand the backend is recorded with its parameters. Each is then run twice:
as written, in DuckDB, and as the ClickHouse backend runs it (``aiobs.sql.clickhouse.render_parts``:
translated, parameters spliced in, expressions read twice filled into temporary tables first)
with the views as common table expressions (``aiobs.semantic.clickhouse.with_views``), in real ClickHouse (chdb) over the
collector exporter's tables filled from the store's Parquet export. Their rows must be the same.

What may differ, and is compared accordingly: rows come as a multiset (ClickHouse may return
equal-keyed rows in another order); a value rounded with ``round(x, n)`` may
round the other way when the sum lies on the half, so it is compared to that precision; a list
that DuckDB leaves NULL is an empty array in ClickHouse, where arrays are never NULL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli, exported
from test_clickhouse import DDL, _clickhouse_with, chdb_session

pytest.importorskip("chdb", reason="chdb (embedded ClickHouse) is in the test extra")

# The days of the committed demo sample, in which the corpus's traffic lies.
DAYS = "2026-11-13T00:00Z..2026-11-15T00:00Z"


@dataclass(frozen=True)
class Statement:
    method: str
    sql: str
    params: tuple[Any, ...]


def _record(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> list[Statement]:
    """Every statement the read commands hand the DuckDB backend, in the order they were sent,
    with a ClickHouse backend's capabilities."""
    from aiobs.backend import Capabilities
    from aiobs.backend import duckdb as engine

    sent: list[Statement] = []
    opener = engine.open_store

    def open_store(*args: Any, **kwargs: Any) -> Any:
        store = opener(*args, **kwargs)
        store.capabilities = Capabilities(materialised=False, log_time_index=False)
        return store

    def recording(method: str) -> Any:
        run = getattr(engine.DuckDBBackend, method)

        def record(self: Any, sql: str, params: Any = (), *args: Any, **kwargs: Any) -> Any:
            sent.append(Statement(method, sql, tuple(params)))
            return run(self, sql, params, *args, **kwargs)

        return record

    monkeypatch.setattr(engine, "open_store", open_store)
    for method in ("records", "rows", "one", "batches", "execute"):
        monkeypatch.setattr(engine.DuckDBBackend, method, recording(method))

    def ok(*args: str) -> str:
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
        return str(result.stdout)

    trace = json.loads(ok("traces", "--status", "error", "-n", "1", "-f", "json"))[0]["trace_id"]
    session = json.loads(ok("sessions", "-n", "1", "-f", "json"))[0]["session_id"]
    for args in (
        ["traces"],
        ["traces", "--where", "cost_usd > 0.001", "--sort", "-cost_usd"],
        ["traces", "--where", "tool_name IS NOT NULL and duration_ms > 1000"],
        ["traces", "--model", "gpt-4.1-2025-04-14", "--since", DAYS],
        ["sessions"],
        ["replay", trace],
        ["replay", "--session", session],
        ["segment", "--by", "model"],
        ["segment", "--by", "service_name,prompt_version", "--since", DAYS],
        ["diff", "--baseline", "prompt_version = 'v6'", "--target", "prompt_version = 'v7'"],
        ["scan", "--since", DAYS],
        ["stats"],
    ):
        ok(*args, "-f", "json")
    return sent


def _value(v: Any) -> Any:
    """A value as both engines' rows can be compared: numbers as floats (ClickHouse answers 1
    for true and 878 for 878.0), times as UTC text to the microsecond (DuckDB's Python values
    stop there), lists as sorted (``list(DISTINCT …)`` has no order in either), maps by key."""
    if v is None:
        return v
    if isinstance(v, bool | int | float | decimal.Decimal):
        return float(v)
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        return v.isoformat(sep=" ")
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?", v):
        whole, _, fraction = v.partition(".")
        micros = (fraction + "000000")[:6]
        return whole if micros == "000000" else f"{whole}.{micros}"
    if isinstance(v, dict):
        return {str(k): _value(x) for k, x in sorted(v.items())}
    if isinstance(v, list | tuple):
        return sorted((_value(x) for x in v), key=json.dumps)
    return v


def _same(a: Any, b: Any, abs_tol: float) -> bool:
    if (a is None and b == []) or (a == [] and b is None):
        return True  # a ClickHouse array is never NULL: an empty list is its "none"
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=abs_tol)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, abs_tol) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _clickhouse_rows(ch: Any, sql: str) -> list[list[Any]]:
    """The rows as lists (a SELECT may name two columns alike: ``min(x), min(x)``)."""
    out = ch.query(f"{sql}, output_format_json_quote_64bit_integers = 0", "JSONCompactEachRow")
    return [json.loads(line) for line in str(out).splitlines() if line.strip()]


def _rows(rows: list[Any]) -> list[list[Any]]:
    return sorted(([_value(v) for v in row] for row in rows), key=json.dumps)


def test_every_statement_of_the_read_commands_runs_the_same_in_clickhouse(
    corpus: tuple[Cli, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiobs.backend.duckdb import open_store
    from aiobs.config import load_config
    from aiobs.semantic.clickhouse import with_views
    from aiobs.semantic.prices import load_prices
    from aiobs.sql.clickhouse import render_parts

    cli = corpus[0]
    sent = _record(cli, monkeypatch)
    monkeypatch.undo()
    lake = exported(corpus)
    ch = _clickhouse_with(lake, DDL)
    prices = load_prices(load_config())

    compared, split, failures = 0, 0, []
    seen: set[tuple[str, str]] = set()
    with open_store(cli.db) as store:
        for statement in sent:
            key = (statement.sql, repr(statement.params))
            if key in seen and statement.method != "execute":
                continue
            seen.add(key)
            # As the backend runs it: bound after translating, each expression read twice
            # filled into a temporary table first (render_parts).
            parts, body = render_parts(statement.sql, statement.params)
            clickhouse_sql = with_views(body, prices)
            head = " ".join(statement.sql.split())[:120]
            if statement.method == "execute":
                store.execute(statement.sql, statement.params)
            want = (
                _rows(store.rows(statement.sql, statement.params))
                if statement.method != "execute"
                else []
            )
            try:
                for name, fill in parts:
                    ch.query(f"DROP TEMPORARY TABLE IF EXISTS {name}")
                    ch.query(with_views(f"CREATE TEMPORARY TABLE {name} AS {fill}", prices))
                split += bool(parts)
                if statement.method == "execute":
                    ch.query(clickhouse_sql)
                    continue
                got = _rows(_clickhouse_rows(ch, clickhouse_sql))
            except Exception as exc:  # chdb's errors: collected, to see them all at once
                failures.append((head, str(exc).splitlines()[0][:300]))
                continue
            compared += 1
            # round(x, 6) of a sum on the half may round either way: one unit of the last place.
            abs_tol = 2e-6 if "round(" in statement.sql else 1e-12
            differing = [
                f"row {i} column {j}: DuckDB {a!r:.200}, ClickHouse {b!r:.200}"
                for i, (x, y) in enumerate(zip(want, got, strict=False))
                for j, (a, b) in enumerate(zip(x, y, strict=True))
                if not _same(a, b, abs_tol)
            ]
            if len(got) != len(want) or differing:
                failures.append((head, f"{len(want)} rows, {len(got)} rows", *differing[:3]))
    assert failures == [], "\n".join(" | ".join(f) for f in failures)
    # Not vacuous: the commands sent many statements, and most compared rows, not only counts.
    assert compared >= 40, compared
    assert split >= 3, split  # segment's, diff's and scan's selections
    assert sum(s.method == "execute" for s in sent) >= 2  # scan's and stats' scratch tables


# ------------------------------------------------------------------- parameters bound as literals

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import examples  # noqa: E402

_TIMES = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1))
_SCALARS = (
    st.text(max_size=40)
    | st.integers(min_value=-(2**62), max_value=2**62)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.booleans()
    | _TIMES
    | _TIMES.map(lambda t: t.replace(tzinfo=dt.UTC))
)


@functools.cache
def _engines() -> tuple[Any, Any]:
    """One DuckDB connection (in UTC, as the store's) and one chdb session for every example."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con, chdb_session()


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(_SCALARS | st.lists(st.text(max_size=12), max_size=4), min_size=1, max_size=4))
def test_bound_literals_mean_what_the_parameters_meant(values: list[Any]) -> None:
    """A statement with its parameters bound as literals (a ``?`` in a string or a quoted name
    left alone) selects, in DuckDB and rendered for ClickHouse in chdb, the values DuckDB gets
    from the same statement with the parameters bound by the engine: quotes, backslashes,
    non-ASCII text, 64-bit integers, floats to the last bit, times to the microsecond."""
    from aiobs.sql import CLICKHOUSE, bind_literals
    from aiobs.sql.clickhouse import render_parts

    sql = "SELECT '?' AS q, " + ", ".join(f'? AS "c{i}?"' for i in range(len(values)))
    bound = bind_literals(sql, values)
    con, ch = _engines()
    want = con.execute(sql, values).fetchone()
    # The same values; an aware time arrives as the same instant without its zone.
    assert want is not None
    assert [_value(v) for v in con.execute(bound).fetchone() or ()] == [_value(v) for v in want]
    settings = " SETTINGS output_format_json_quote_64bit_integers = 0, session_timezone = 'UTC'"
    out = ch.query(CLICKHOUSE.render(sql, values).sql + settings, "JSONCompactEachRow")
    got = json.loads(str(out))
    # Bound after translating (the backend's way, render_parts): the same values.
    parts, body = render_parts(sql, values)
    assert parts == [] and json.loads(str(ch.query(body + settings, "JSONCompactEachRow"))) == got
    assert got[0] == "?"
    for value, duck, clickhouse in zip(values, want[1:], got[1:], strict=True):
        if isinstance(value, dt.datetime):
            assert _value(clickhouse) == _value(duck)
        elif isinstance(value, bool):
            assert bool(clickhouse) == duck
        elif isinstance(value, float):  # ClickHouse's JSON writes 4.1e16 as 41000000000000000
            assert float(clickhouse) == duck, (value, duck, clickhouse)
        else:
            assert clickhouse == duck, (value, duck, clickhouse)


def test_expressions_read_twice_become_temporary_tables_with_the_same_answer() -> None:
    """``to_clickhouse_parts``: a common table expression read more than once (at any depth) is
    filled into a temporary table first and read from there, inner ones first; one read once,
    or one that reads an outer query's expression, stays in place. The parts, run in order in
    chdb, answer what DuckDB answers for the whole statement."""
    from aiobs.sql.clickhouse import to_clickhouse_parts

    sql = """
WITH outer_once AS (SELECT 10 AS k),
g0 AS (SELECT m.* FROM (
  WITH sel AS (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3
    UNION ALL SELECT 4 UNION ALL SELECT 5),
  odd AS (SELECT n FROM sel WHERE n % 2 = 1),
  even AS (SELECT n FROM sel WHERE n % 2 = 0),
  uses_outer AS (SELECT k FROM outer_once)
  SELECT o.n AS odd, e.n AS even, (SELECT k FROM uses_outer) + (SELECT k FROM uses_outer) AS k
  FROM odd o JOIN even e ON e.n = o.n - 1) m),
b AS (SELECT max(odd) AS hi FROM g0)
SELECT g0.odd, g0.even, g0.k, b.hi FROM g0, b ORDER BY g0.odd"""
    parts, body = to_clickhouse_parts(sql)
    assert [name for name, _ in parts] == ["aiobs_cte0_sel", "aiobs_cte1_g0"]
    assert "aiobs_cte1_g0" in body and "UNION" not in body and "uses_outer AS" in parts[1][1]
    con, ch = _engines()
    want = [list(r) for r in con.execute(sql).fetchall()]
    for name, fill in parts:
        ch.query(f"DROP TEMPORARY TABLE IF EXISTS {name}")
        ch.query(f"CREATE TEMPORARY TABLE {name} AS {fill}")
    got = [json.loads(line) for line in str(ch.query(body, "JSONCompactEachRow")).splitlines()]
    assert got == want == [[1, 0, 20, 5], [3, 2, 20, 5], [5, 4, 20, 5]]


@settings(max_examples=examples(30), deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=200))
def test_a_list_parameter_is_spliced_in_meaning_the_same(values: list[str]) -> None:
    """A list of strings is bound after translating (``render_parts``): ClickHouse reads the
    same strings from it — quotes, backslashes, non-ASCII text — as DuckDB binds."""
    from aiobs.sql.clickhouse import render_parts

    sql = "SELECT v, count(*) AS n FROM (SELECT unnest(?) AS v) GROUP BY v ORDER BY v"
    parts, body = render_parts(sql, [values])
    assert parts == [] and "aiobs-param-" not in body
    con, ch = _engines()
    want = sorted(con.execute(sql, [values]).fetchall())
    out = str(ch.query(body, "JSONCompactEachRow"))
    got = sorted(tuple(json.loads(line)) for line in out.split("\n") if line)
    assert [(v, int(n)) for v, n in got] == want
