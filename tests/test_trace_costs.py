"""Whose tokens and cost a trace counts: its model calls', never an agent's or chain's roll-up
twice; and the cost the telemetry states on a chain or agent when no model call has one.

Synthetic traces, each built to isolate one case of the rule (views.stated_costs_sql):
- ``chain``: a workflow states $0.05; its only model call is unpriced and records none;
- ``both``: an agent states $0.90 and its run's usage; its two model calls record or price their
  own — the trace costs theirs, the agent's figures are reported apart;
- ``nested``: a chain states $1.00, the agent inside it $0.70, a sub-agent $0.20 — one run's
  total counted once;
- ``siblings``: under a root that states nothing, two agent runs state $0.30 and $0.40, a
  sub-agent of the first $0.10 — the two runs summed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli, otlp_span, traces_doc

T0 = 1_763_000_000_000_000_000
UNPRICED = "in-house-model-7"
PRICE_4O_MINI = (0.15, 0.6)  # shipped prices.toml, USD per 1M tokens in / out


def _trace_id(n: int) -> str:
    return f"{n:032x}"


def _span_id(t: int, n: int) -> str:
    return f"{t:08x}{n:08x}"


def _docs() -> list[dict[str, Any]]:
    def sp(t: int, n: int, parent: int | None, name: str, **attrs: Any) -> dict[str, Any]:
        return otlp_span(
            trace_id=_trace_id(t),
            span_id=_span_id(t, n),
            parent=_span_id(t, parent) if parent is not None else "",
            name=name,
            start=T0 + t * 10**9 + n * 10**6,
            attrs=attrs,
        )

    chat = {"gen_ai.operation.name": "chat"}
    workflow = {"traceloop.span.kind": "workflow"}
    agent = {"gen_ai.operation.name": "invoke_agent"}
    spans = [
        # 1: chain
        sp(1, 1, None, "support.workflow", **workflow, **{"gen_ai.usage.cost": 0.05}),
        sp(
            1,
            2,
            1,
            f"chat {UNPRICED}",
            **chat,
            **{
                "gen_ai.request.model": UNPRICED,
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 20,
            },
        ),
        # 2: both
        sp(
            2,
            1,
            None,
            "invoke_agent helper",
            **agent,
            **{
                "gen_ai.agent.name": "helper",
                "gen_ai.usage.cost": 0.9,
                "gen_ai.usage.input_tokens": 300,
                "gen_ai.usage.output_tokens": 30,
            },
        ),
        sp(
            2,
            2,
            1,
            "chat gpt-4o",
            **chat,
            **{
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 10,
                "gen_ai.usage.cost": 0.002,
            },
        ),
        sp(
            2,
            3,
            1,
            "chat gpt-4o-mini",
            **chat,
            **{
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
            },
        ),
        # 3: nested
        sp(3, 1, None, "pipeline", **workflow, **{"gen_ai.usage.cost": 1.0}),
        sp(3, 2, 1, "invoke_agent planner", **agent, **{"gen_ai.usage.cost": 0.7}),
        sp(3, 3, 2, "invoke_agent searcher", **agent, **{"gen_ai.usage.cost": 0.2}),
        sp(3, 4, 3, f"chat {UNPRICED}", **chat, **{"gen_ai.request.model": UNPRICED}),
        # 4: siblings
        sp(4, 1, None, "handle request"),
        sp(4, 2, 1, "invoke_agent a", **agent, **{"gen_ai.usage.cost": 0.3}),
        sp(4, 3, 2, "invoke_agent a.sub", **agent, **{"gen_ai.usage.cost": 0.1}),
        sp(4, 4, 1, "invoke_agent b", **agent, **{"gen_ai.usage.cost": 0.4}),
    ]
    return [traces_doc(*spans)]


@pytest.fixture
def costs(cli: Cli, write_jsonl: Any) -> Cli:
    path = write_jsonl("costs.jsonl", *_docs())
    result = cli("ingest", "--strict", str(path))
    assert result.exit_code == 0, result.output
    return cli


EXPECTED_TRACE_COST = {
    1: 0.05,  # the workflow's stated cost: no model call has one
    # the model calls': recorded $0.002 + gpt-4o-mini priced; not the agent's $0.90 on top
    2: 0.002 + (1000 * PRICE_4O_MINI[0] + 100 * PRICE_4O_MINI[1]) / 1e6,
    3: 1.0,  # the outermost statement holds the inner ones
    4: 0.3 + 0.4,  # two runs side by side; a.sub is inside a
}


def _trace_costs(cli: Cli) -> dict[int, float | None]:
    rows = cli.query("SELECT trace_id, cost_usd FROM ai_traces ORDER BY trace_id")
    return {int(r["trace_id"], 16): r["cost_usd"] for r in rows}


def test_trace_cost_is_the_model_calls_else_the_stated(costs: Cli) -> None:
    got = _trace_costs(costs)
    assert got.keys() == EXPECTED_TRACE_COST.keys()
    for trace, want in EXPECTED_TRACE_COST.items():
        assert got[trace] == pytest.approx(want, rel=1e-12), trace


def test_agent_and_chain_figures_are_reported_not_counted(costs: Cli) -> None:
    rows = costs.query(
        "SELECT span_id, step_kind, input_tokens, output_tokens, cost_usd, reported_input_tokens,"
        " reported_output_tokens, reported_cost_usd FROM ai_spans"
        f" WHERE trace_id IN ('{_trace_id(1)}', '{_trace_id(2)}') ORDER BY span_id"
    )
    mini = (1000 * PRICE_4O_MINI[0] + 100 * PRICE_4O_MINI[1]) / 1e6

    def row(span: str, kind: str, own: tuple[Any, Any, Any], rep: tuple[Any, Any, Any]) -> Any:
        return dict(
            zip(
                ("span_id", "step_kind", "input_tokens", "output_tokens", "cost_usd"),
                (span, kind, *own),
                strict=True,
            ),
            **dict(
                zip(
                    ("reported_input_tokens", "reported_output_tokens", "reported_cost_usd"),
                    rep,
                    strict=True,
                )
            ),
        )

    none = (None, None, None)
    assert rows == [
        row(_span_id(1, 1), "chain", none, (None, None, 0.05)),
        row(_span_id(1, 2), "llm", (100, 20, None), none),  # unpriced, nothing recorded
        row(_span_id(2, 1), "agent", none, (300, 30, 0.9)),
        row(_span_id(2, 2), "llm", (100, 10, 0.002), none),
        row(_span_id(2, 3), "llm", (1000, 100, pytest.approx(mini)), none),
    ]
    # Sums over ai_spans are the model calls' (with the agent's figures they were 1400 / $0.90 more).
    assert costs.query(
        f"SELECT sum(input_tokens) AS i FROM ai_spans WHERE trace_id = '{_trace_id(2)}'"
    ) == [{"i": 1100}]
    assert costs.query(
        f"SELECT input_tokens, output_tokens FROM ai_traces WHERE trace_id = '{_trace_id(2)}'"
    ) == [{"input_tokens": 1100, "output_tokens": 110}]


def test_python_rule_for_replay_agrees(costs: Cli) -> None:
    """``views.trace_cost_usd`` (for readers holding one trace's spans, like replay) gives
    ai_traces' cost."""
    from aiobs.semantic.views import trace_cost_usd

    spans = costs.query(
        "SELECT trace_id, span_id, parent_span_id, step_kind, cost_usd, reported_cost_usd"
        " FROM ai_spans"
    )
    want = _trace_costs(costs)
    for trace in EXPECTED_TRACE_COST:
        mine = [s for s in spans if s["trace_id"] == _trace_id(trace)]
        got = trace_cost_usd(mine)
        assert got is not None and math.isclose(got, want[trace] or 0, rel_tol=1e-12), trace


def test_materialised_and_computed_traces_agree(costs: Cli) -> None:
    from aiobs.backend.duckdb import open_store
    from aiobs.semantic.views import ai_spans_sql, ai_traces_sql

    with open_store(costs.db) as store:
        con = store.con
        assert store.capabilities.materialised
        stored = con.execute(f"SELECT * FROM ({ai_traces_sql(True)}) ORDER BY 1").fetchall()
        con.execute(f"CREATE OR REPLACE TEMP VIEW ai_spans AS {ai_spans_sql(False)}")
        computed = con.execute(f"SELECT * FROM ({ai_traces_sql(False)}) ORDER BY 1").fetchall()
    assert len(stored) == 4
    assert [r[:14] for r in stored] == [r[:14] for r in computed]
    for a, b in zip(stored, computed, strict=True):
        assert math.isclose(a[14], b[14], rel_tol=1e-12)  # cost_usd
        assert a[15:] == b[15:]


def test_a_store_from_before_is_rematerialised(costs: Cli) -> None:
    """A store written before these fields (no reported_* columns, no stated cost, the agents'
    usage counted as their own) is recomputed when opened: its fingerprint differs."""
    import duckdb

    con = duckdb.connect(str(costs.db))
    for column in ("reported_input_tokens", "reported_output_tokens", "reported_cost_usd"):
        con.execute(f"ALTER TABLE aiobs_spans DROP COLUMN {column}")
    con.execute("ALTER TABLE aiobs_traces DROP COLUMN stated_cost_usd")
    con.execute("UPDATE aiobs_spans SET input_tokens = 300 WHERE step_kind = 'agent'")
    con.execute("UPDATE aiobs_meta SET value = 'before-15' WHERE key = 'semantic.fingerprint'")
    con.close()
    got = _trace_costs(costs)
    assert got[1] == pytest.approx(0.05)
    assert costs.query(
        f"SELECT reported_input_tokens AS r, input_tokens AS i FROM ai_spans"
        f" WHERE span_id = '{_span_id(2, 1)}'"
    ) == [{"r": 300, "i": None}]


def test_clickhouse_prices_traces_the_same(costs: Cli, tmp_path: Path) -> None:
    pytest.importorskip("chdb")
    from test_clickhouse import _differences, _rows_in_both

    expected, got = _rows_in_both((costs, tmp_path / "lake"), "SELECT * FROM ai_traces", "trace_id")
    assert _differences(expected, got) == []
    assert {int(r["trace_id"], 16): r["cost_usd"] for r in got} == pytest.approx(
        EXPECTED_TRACE_COST
    )
    expected, got = _rows_in_both(
        (costs, tmp_path / "lake"),
        "SELECT trace_id, span_id, reported_input_tokens, reported_output_tokens,"
        " reported_cost_usd, input_tokens, cost_usd FROM ai_spans",
        "trace_id, span_id",
    )
    assert _differences(expected, got) == []
