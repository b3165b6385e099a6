"""``aiobs traces`` / ``aiobs sessions`` and the ``--where`` language, on the demo store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiobs.semantic.views import AI_TRACES_COLUMNS
from conftest import Cli, examples


def _sql(db: Path, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from aiobs.backend.duckdb import open_store

    with open_store(db) as store:
        return store.con.execute(query, params or []).fetchall()


def test_traces_filters(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    cli = Cli(db)
    rows = cli.json("traces", "--status", "error", "--service", "support-chat", "-n", "500")
    assert rows and all(
        r["status"] == "error" and r["service_name"] == "support-chat" for r in rows
    )
    assert list(rows[0]) == list(AI_TRACES_COLUMNS)
    assert [r["start_time"] for r in rows] == sorted((r["start_time"] for r in rows), reverse=True)
    # --model matches dated versions of the name, not other models of the family.
    gpt = cli.json("traces", "--model", "gpt-4.1", "-n", "200")
    assert gpt and all("gpt-4.1-2025-04-14" in r["models"] for r in gpt)
    assert cli.json("traces", "--model", "gpt-4.1-mini") == []
    v7 = cli.json("traces", "--prompt-version", "v7", "-n", "1000")
    assert v7 and all("v7" in r["prompt_versions"] for r in v7)
    slow = cli.json("traces", "--min-duration", "10s", "--sort", "-duration_ms", "-n", "20")
    assert slow and all(r["duration_ms"] >= 10_000 for r in slow)
    assert [r["duration_ms"] for r in slow] == sorted(
        (r["duration_ms"] for r in slow), reverse=True
    )
    one = slow[0]
    assert (
        cli.json("traces", "--session", one["session_id"], "--user", one["user_id"])[0][
            "session_id"
        ]
        == one["session_id"]
    )
    window = cli.json("traces", "--since", "2026-11-12T15:00Z..2026-11-12T16:00Z", "-n", "1000")
    assert window and all("2026-11-12T15:" in r["start_time"] for r in window)
    (count,) = _sql(
        db,
        "SELECT count(*) FROM ai_traces WHERE start_time >= '2026-11-12 15:00' AND start_time < '2026-11-12 16:00'",
    )[0]
    assert len(window) == count
    assert len(cli.json("traces", "-n", "3")) == 3
    csv = cli("traces", "-n", "2", "-f", "csv").stdout.splitlines()
    assert csv[0].split(",") == list(AI_TRACES_COLUMNS) and len(csv) == 3
    # CSV is for programs: the values whole, as in JSON (no thousands separators, no rounding).
    import csv as csvlib

    slowest = cli.json("traces", "--sort", "-duration_ms", "-n", "3")
    parsed = list(
        csvlib.DictReader(
            cli("traces", "--sort", "-duration_ms", "-n", "3", "-f", "csv").stdout.splitlines()
        )
    )
    assert slowest[0]["duration_ms"] >= 1000
    assert [float(r["duration_ms"]) for r in parsed] == [r["duration_ms"] for r in slowest]
    assert [float(r["cost_usd"]) for r in parsed] == [r["cost_usd"] for r in slowest]
    assert cli("traces", "--since", "yesterday-ish").exit_code == 2
    assert cli("traces", "--sort", "nope").exit_code == 2
    assert cli("traces", "--status", "meh").exit_code == 2
    empty = cli("traces", "--since", "1m")  # the demo week is in the past
    assert empty.exit_code == 0 and "no traces match" in empty.stderr


def test_traces_lists_what_ai_traces_holds_with_or_without_the_cost_in_play(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    # Without the cost in the filter or order, the traces are picked before they are priced;
    # with it, through ai_traces: both must be exactly the rows ai_traces gives.
    db, _ = demo
    cli = Cli(db)

    def truth(sql: str) -> list[str]:
        from aiobs.backend.duckdb import open_store

        with open_store(db) as store:
            return [r[0] for r in store.con.execute(sql).fetchall()]

    newest = cli.json("traces", "-n", "30")
    assert [r["trace_id"] for r in newest] == truth(
        "SELECT trace_id FROM ai_traces ORDER BY start_time DESC, trace_id LIMIT 30"
    )
    assert all(r["cost_usd"] is not None for r in newest)  # priced like ai_traces
    dearest = cli.json("traces", "--sort", "-cost_usd", "-n", "10")
    assert [r["trace_id"] for r in dearest] == truth(
        "SELECT trace_id FROM ai_traces ORDER BY cost_usd DESC NULLS LAST, trace_id LIMIT 10"
    )
    (threshold,) = truth("SELECT quantile_disc(cost_usd, 0.99) FROM ai_traces")
    pricey = cli.json("traces", "--where", f"cost_usd > {threshold}", "-n", "100000")
    assert pricey and all(r["cost_usd"] > threshold for r in pricey)
    assert len(pricey) == len(truth(f"SELECT trace_id FROM ai_traces WHERE cost_usd > {threshold}"))


@pytest.mark.parametrize(
    ("args", "order", "where"),
    [
        ((), "start_time DESC", "TRUE"),  # the newest: a narrow time range
        (("--sort", "duration_ms"), "duration_ms", "TRUE"),  # from anywhere in the week
        (("--status", "error", "--sort", "-span_count"), "span_count DESC", "status = 'error'"),
    ],
)
def test_traces_rows_are_ai_traces_rows(
    demo: tuple[Path, dict[str, Any]], args: tuple[str, ...], order: str, where: str
) -> None:
    """Every column of `traces` (the picked traces priced within their times) is the row
    ai_traces gives, cost included."""
    import re

    cli = Cli(demo[0])
    got = cli.json("traces", *args, "-n", "40")
    want = cli.query(f"SELECT * FROM ai_traces WHERE {where} ORDER BY {order}, trace_id LIMIT 40")
    # `query` keeps a timestamp's nanoseconds; the listing gives microseconds.
    micro = re.compile(r"(\.\d{6})\d+Z$")
    want = [
        {k: micro.sub(r"\1Z", v) if isinstance(v, str) else v for k, v in r.items()} for r in want
    ]
    assert len(got) == 40 and got == want
    assert sum(r["cost_usd"] is not None for r in got) > 20


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_the_traces_table_fits_the_terminal_and_keeps_ids_whole(
    demo: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """At any width the table stays inside the terminal, every trace id is whole (people copy
    them into `aiobs replay`), and columns left out are named under the table."""
    db, _ = demo
    cli = Cli(db)
    ids = [r["trace_id"] for r in cli.json("traces", "-n", "5")]
    lines = cli.on_terminal("traces", "-n", "5", columns=width).splitlines()
    assert max(len(line) for line in lines) <= width
    for trace_id in ids:
        assert any(trace_id in line for line in lines), trace_id
    text = " ".join(lines)
    header = lines[0].split()
    # The key and the command's own figures come first and are never the ones left out.
    key = ["trace_id", "start_time", "status", "duration_ms"]
    assert header[:4] == key if width >= 80 else header[:3] == key[:3]
    assert "more column" in text and "-f json" in text
    if width >= 120:
        assert {"service_name", "input_tokens", "cost_usd"} <= set(header)


def test_where_mixes_trace_and_span_fields(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    cli = Cli(db)
    rows = cli.json(
        "traces", "--where", "status = 'error' and tool_name = 'lookup_charge_v1'", "-n", "1000"
    )
    expected = _sql(
        db,
        "SELECT count(DISTINCT t.trace_id) FROM ai_traces t JOIN ai_spans s USING (trace_id)"
        " WHERE t.status = 'error' AND s.tool_name = 'lookup_charge_v1'",
    )[0][0]
    assert len(rows) == expected > 0
    attr = cli.json(
        "traces", "--where", "attr['gen_ai.tool.name'] = 'lookup_charge_v1'", "-n", "1000"
    )
    assert {r["trace_id"] for r in attr} == {r["trace_id"] for r in rows}
    # span.duration_ms is the span's own; duration_ms the trace's; span(…) one span meeting both.
    spans = cli.json(
        "traces",
        "--where",
        "span(step_kind = 'retrieval' and span.duration_ms > 1000)",
        "-n",
        "1000",
    )
    traces = cli.json(
        "traces", "--where", "duration_ms > 1000 and step_kind = 'retrieval'", "-n", "1000"
    )
    assert 0 < len(spans) < len(traces)
    resource = cli.json("traces", "--where", "resource['service.version'] = '1.9.0'", "-n", "5")
    assert resource and all(r["service_version"] == "1.9.0" for r in resource)
    assert (
        cli("traces", "--where", "status > 5").exit_code == 2
    )  # type error: a usage error, not a crash


@pytest.mark.parametrize(
    "expr",
    [
        "1; drop table otel_traces",
        "(select count(*) from otel_logs) > 0",
        "read_csv('/etc/passwd') is not null",
        "getenv('HOME') = 'x'",
        "nope = 1",
        "attr['a']['b'] = 'x'",
        "otel_traces.TraceId = 'x'",
        "exists (select 1)",
        "",
        "'unterminated",
        "count(*) > 1",
        "@",
    ],
)
def test_where_refuses_anything_but_a_filter(cli: Cli, write_jsonl: Any, expr: str) -> None:
    from conftest import otlp_span, traces_doc

    assert cli("ingest", str(write_jsonl("a.jsonl", traces_doc(otlp_span())))).exit_code == 0
    result = cli("traces", "--where", expr)
    assert result.exit_code == 2, (expr, result.output)
    assert "--where" in result.stderr or "empty" in result.stderr


FIELDS = [
    "status",
    "duration_ms",
    "model",
    "step_kind",
    "tool_name",
    "span.status",
    "service_name",
    "attr['x']",
    "llm_calls",
]
LITERALS = st.one_of(
    st.integers(-5, 10_000).map(str),
    st.sampled_from(["'error'", "'ok'", "'llm'", "NULL", "'it''s'", "TRUE"]),
)
ATOM = st.builds(
    lambda f, op, v: f"{f} {op} {v}",
    st.sampled_from(FIELDS),
    st.sampled_from(["=", "<>", "<", ">=", "LIKE", "IS NOT"]),
    LITERALS,
)
EXPR = st.recursive(
    ATOM,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) AND ({b})", inner, inner),
        st.builds(lambda a, b: f"{a} OR {b}", inner, inner),
        st.builds(lambda a: f"NOT ({a})", inner),
    ),
    max_leaves=4,
)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import otlp_span, traces_doc

    base = tmp_path_factory.mktemp("where")
    path = base / "a.jsonl"
    import json

    docs = [
        traces_doc(otlp_span(attrs={"gen_ai.request.model": "gpt-4o", "x": "1"})),
        traces_doc(otlp_span(trace_id="1" * 32, span_id="2" * 16, attrs={"gen_ai.tool.name": "t"})),
    ]
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    db = base / "where.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOBS_CONFIG", str(base / "config.toml"))
        assert Cli(db)("ingest", str(path)).exit_code == 0
    return db


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(EXPR)
def test_generated_filters_parse_and_run_or_fail_cleanly(small_store: Path, expr: str) -> None:
    result = Cli(small_store)("traces", "--where", expr, "-f", "json")
    assert result.exit_code in (0, 2), (expr, result.output)
    if result.exit_code == 2:
        assert result.stderr.startswith("aiobs: error: --where"), (expr, result.stderr)


@settings(max_examples=examples(80), deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes_the_parser(expr: str) -> None:
    from aiobs.analysis.where import parse_where
    from aiobs.errors import UsageError

    try:
        where = parse_where(expr)
    except UsageError:
        return
    # Accepted: it rendered to SQL over the aliases, reading no table but ai_spans (the "some
    # span of the trace" subqueries).
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(where.sql, read="duckdb")
    assert {t.name for t in tree.find_all(exp.Table)} <= {"ai_spans"}
    assert all(s.find(exp.Table) is not None for s in tree.find_all(exp.Select))


def test_sessions_with_user_signals(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    cli = Cli(db)
    rows = cli.json("sessions", "--status", "error", "--sort", "-thumbs_down", "-n", "50")
    assert rows and all(r["errors"] >= 1 for r in rows)
    top = rows[0]
    (thumbs,) = _sql(
        db,
        "SELECT count(*) FROM otel_logs WHERE EventName = 'user.feedback'"
        " AND LogAttributes['feedback.rating'] = 'thumbs_down' AND LogAttributes['session.id'] = ?",
        [top["session_id"]],
    )[0]
    assert top["thumbs_down"] == thumbs > 0
    (traces,) = _sql(
        db, "SELECT count(*) FROM ai_traces WHERE session_id = ?", [top["session_id"]]
    )[0]
    assert top["traces"] == traces
    abandoned = cli.json("sessions", "--where", "tool_name = 'lookup_charge_v1'", "-n", "1000")
    share = sum(r["abandoned"] for r in abandoned) / len(abandoned)
    everyone = cli.json("sessions", "--service", "support-chat", "-n", "100000")
    base = sum(r["abandoned"] for r in everyone) / len(everyone)
    assert share > 2 * base  # the deprecated-tool sessions are the abandoned ones
    mine = cli.json("sessions", "--user", top["user_id"], "-n", "1000")
    assert mine and all(r["user_id"] == top["user_id"] for r in mine)
    assert "session_id" in cli("sessions", "-n", "2").stdout


@pytest.mark.parametrize(
    ("sort", "status", "services", "where"),
    [
        (None, None, [], None),
        ("traces,-duration_ms", None, [], None),
        ("-errors", "error", [], None),
        (None, None, ["order-assistant"], None),
        ("-traces", None, [], "tool_name = 'lookup_charge_v1'"),  # a span field
    ],
)
def test_sessions_picked_first_equal_the_full_listing(
    demo: tuple[Path, dict[str, Any]],
    sort: str | None,
    status: str | None,
    services: list[str],
    where: str | None,
) -> None:
    """Ordered by neither cost nor user signals, `sessions` picks its sessions before pricing
    them and counting their events; the rows equal the listing that computes every session's."""
    import math

    from aiobs.analysis.browse import (
        SESSION_COLUMNS,
        sessions_sql,
        sort_order,
        where_records,
    )
    from aiobs.analysis.filters import TraceFilter
    from aiobs.analysis.where import parse_where
    from aiobs.backend.duckdb import open_store

    filt = TraceFilter(
        status=status, services=services, where=parse_where(where) if where else None
    )
    sql, params = filt.sql()
    order = sort_order(sort, SESSION_COLUMNS, "-start_time")
    with open_store(demo[0]) as store:
        assert store.capabilities.materialised
        fast, full = (
            where_records(
                store, sessions_sql(sql, order, m and not filt.reads_cost), [*params, 40, 0]
            )
            for m in (True, False)
        )
    assert len(fast) == len(full) >= (5 if where else 40)
    for a, b in zip(fast, full, strict=True):
        assert {k: v for k, v in a.items() if k != "cost_usd"} == {
            k: v for k, v in b.items() if k != "cost_usd"
        }
        assert (a["cost_usd"] is None) == (b["cost_usd"] is None)
        assert a["cost_usd"] is None or math.isclose(a["cost_usd"], b["cost_usd"], rel_tol=1e-12)
    assert any(r["thumbs_down"] or r["retries"] or r["resolved"] for r in fast)
    assert all(r["cost_usd"] is not None for r in fast)
