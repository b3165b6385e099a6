"""Canonical fields: the SQL rendering and the Python evaluation agree on arbitrary attribute text.

The conformance tests check real files; this checks the edges real files rarely hit (fractional or
huge token counts, other scripts' digits, JSON with duplicate keys, objects where arrays belong).
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aiobs.semantic.fields import FIELDS, evaluate, to_sql
from conftest import examples

KEYS = sorted(
    {
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "llm.token_count.prompt",
        "gen_ai.response.finish_reasons",
        "langfuse.observation.usage_details",
        "langfuse.observation.cost_details",
        "llm.cost.total",
        "gen_ai.request.model",
        "openinference.span.kind",
        "gen_ai.operation.name",
        "gen_ai.response.time_to_first_chunk",
        "traceloop.span.kind",
        "traceloop.entity.name",
        "gen_ai.output.messages",
        "gen_ai.retrieval.documents",
    }
)

NUMBERISH = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        ["12.5", "13.5", "-12.5", " 12 ", "1_000", "1e20", "٣", "nan", "Infinity", "0x10", "", "+5"]
    ),
)
JSONISH = st.sampled_from(
    [
        '{"input": 5, "input": 9}',
        '{"0": "Stop"}',
        '["Stop", "length"]',
        '"stop"',
        '{"input": 1.5e-05, "total": true}',
        '{"total": {"x": 1}}',
        "[]",
        "not json",
        '{"output": "٣"}',
    ]
)
TEXT = st.one_of(NUMBERISH, JSONISH, st.sampled_from(["LLM", "chat", "TOOL", "execute_tool"]))


def _sql_rows(con: duckdb.DuckDBPyConnection, batch: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Every canonical field of every attribute map in ``batch``, computed by DuckDB in one query.

    One statement per batch, not per map: planning the ~40 field expressions costs DuckDB about
    half a second, evaluating them on a row next to nothing."""
    exprs = ", ".join(f"{to_sql(f.expr, f.type)} AS {f.name}" for f in FIELDS)
    keys = [list(attrs) for attrs in batch]
    values = [[attrs[k] for k in attrs] for attrs in batch]
    rows = con.execute(
        f"""
        SELECT {exprs} FROM (
          SELECT n, map(keys[n], vals[n]) AS "SpanAttributes",
                 map([]::VARCHAR[], []::VARCHAR[]) AS "ResourceAttributes",
                 '' AS "SpanName", '' AS "StatusMessage",
                 []::VARCHAR[] AS "Events.Name",
                 []::MAP(VARCHAR, VARCHAR)[] AS "Events.Attributes"
          FROM (SELECT ?::VARCHAR[][] AS keys, ?::VARCHAR[][] AS vals),
               range(1, len(keys) + 1) AS r(n))
        ORDER BY n
        """,
        [keys, values],
    ).fetchall()
    assert len(rows) == len(batch)
    return [dict(zip([f.name for f in FIELDS], row, strict=True)) for row in rows]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return bool(a == b)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


# Hand-picked edges, checked on every run alongside the generated maps.
EDGES: list[dict[str, str]] = [
    {"gen_ai.usage.input_tokens": "12.7"},
    {"traceloop.span.kind": "TOOL", "traceloop.entity.name": "lookup_charge"},
    {"gen_ai.output.messages": "héllo ✓ 𝔘", "gen_ai.retrieval.documents": '[{"score": 0.8}]'},
    {"gen_ai.usage.input_tokens": "1e20"},
    {"langfuse.observation.usage_details": '{"input": 5, "input": 9}'},
    {"gen_ai.usage.input_tokens": "٣"},
    {"gen_ai.response.finish_reasons": '{"0": "Stop"}'},
    {"gen_ai.response.finish_reasons": '["Tool-Calls"]'},
    {},
]


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# 25 batches of up to 12 maps: about as many maps as 150 single examples, at a sixth of the queries.
@given(st.lists(st.dictionaries(st.sampled_from(KEYS), TEXT, max_size=6), min_size=1, max_size=12))
@example(EDGES)
def test_sql_and_python_agree(con: duckdb.DuckDBPyConnection, batch: list[dict[str, str]]) -> None:
    for attrs, sql in zip(batch, _sql_rows(con, batch), strict=True):
        span = {
            "SpanAttributes": attrs,
            "ResourceAttributes": {},
            "SpanName": "",
            "StatusMessage": "",
        }
        for field in FIELDS:
            py = evaluate(field.expr, span, field.type)
            assert _same(sql[field.name], py), (field.name, attrs, sql[field.name], py)


def test_materialised_fields_equal_the_computed_ones(cli: Any, tmp_path: Any) -> None:
    """ai_spans reads the canonical fields from aiobs_spans (filled at ingest); they must be
    exactly what the definitions compute from the attributes, for every convention we ship."""
    from aiobs.backend.duckdb import open_store
    from aiobs.semantic.views import ai_spans_sql
    from conftest import REPO

    for path in sorted((REPO / "fixtures" / "conventions").iterdir()):
        assert cli("ingest", str(path)).exit_code == 0
    assert cli("ingest", str(REPO / "fixtures" / "demo")).exit_code == 0
    with open_store(cli.db) as store:
        con = store.con
        materialised = con.execute(f"SELECT * FROM ({ai_spans_sql(True)}) ORDER BY 1, 2").fetchall()
        computed = con.execute(f"SELECT * FROM ({ai_spans_sql(False)}) ORDER BY 1, 2").fetchall()
        assert len(materialised) > 3000
        assert materialised == computed
        # Traces: every column equal; cost equal up to float summation order.
        from aiobs.semantic.views import AI_TRACES_COLUMNS, ai_traces_sql

        cost = AI_TRACES_COLUMNS.index("cost_usd")
        traces_m = con.execute(f"SELECT * FROM ({ai_traces_sql(True)}) ORDER BY 1").fetchall()
        con.execute(f"CREATE OR REPLACE TEMP VIEW ai_spans AS {ai_spans_sql(False)}")
        traces_c = con.execute(f"SELECT * FROM ({ai_traces_sql(False)}) ORDER BY 1").fetchall()
        assert len(traces_m) == len(traces_c) > 300
        for m, c in zip(traces_m, traces_c, strict=True):
            assert m[:cost] + m[cost + 1 :] == c[:cost] + c[cost + 1 :]
            assert (m[cost] is None) == (c[cost] is None), (m, c)
            if m[cost] is not None:
                assert math.isclose(m[cost], c[cost], rel_tol=1e-9, abs_tol=1e-12)
        # The cost-free views: spans from aiobs_spans alone, traces from aiobs_traces alone.
        from aiobs.semantic.views import span_facts_sql, trace_facts_sql

        facts = [span_facts_sql(True), span_facts_sql(False)]
        spans_m, spans_c = (
            con.execute(f"SELECT * FROM ({f}) ORDER BY 1, 2").fetchall() for f in facts
        )
        assert spans_m == spans_c and len(spans_m) == len(materialised)
        con.execute(f"CREATE OR REPLACE TEMP VIEW aiobs_span_facts AS {span_facts_sql(False)}")
        no_cost = ", ".join(c for c in AI_TRACES_COLUMNS if c != "cost_usd")
        facts = [trace_facts_sql(True), trace_facts_sql(False)]
        traces = [con.execute(f"SELECT {no_cost} FROM ({f}) ORDER BY 1").fetchall() for f in facts]
        assert traces[0] == traces[1] == [m[:cost] + m[cost + 1 :] for m in traces_m]


def test_changed_definitions_are_rematerialised_on_open(cli: Any) -> None:
    """A store materialised under other field definitions (another aiobs) is recomputed."""
    import duckdb

    from conftest import REPO

    assert (
        cli("ingest", str(REPO / "fixtures" / "conventions" / "otel-genai.otlp.json")).exit_code
        == 0
    )
    con = duckdb.connect(str(cli.db))
    con.execute("UPDATE aiobs_spans SET model = 'stale'")
    con.execute("UPDATE aiobs_meta SET value = 'older-aiobs' WHERE key = 'semantic.fingerprint'")
    con.close()
    rows = cli.query("select distinct model from ai_spans where step_kind = 'llm'")
    assert rows == [{"model": "gpt-4.1-2025-04-14"}]
    con = duckdb.connect(str(cli.db), read_only=True)
    assert con.execute("SELECT count(*) FROM aiobs_spans WHERE model = 'stale'").fetchone() == (0,)
    con.close()
