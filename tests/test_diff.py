"""``aiobs diff`` on the demo world: the planted incidents are found and explained, and ordinary
days of the clean world show no regression."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import CLEAN_SEEDS, Cli, clean_world


def _incident(summary: dict[str, Any], incident_id: str) -> dict[str, Any]:
    return next(i for i in summary["manifest"]["incidents"] if i["id"] == incident_id)


def _before_after(inc: dict[str, Any]) -> tuple[str, str]:
    start = datetime.fromisoformat(inc["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(inc["end"].replace("Z", "+00:00"))
    before = (start - (end - start)).strftime("%Y-%m-%dT%H:%MZ")
    return f"{before}..{inc['start']}", f"{inc['start']}..{inc['end']}"


def test_prompt_change_incident_is_found_and_explained(demo: tuple[Path, dict[str, Any]]) -> None:
    db, summary = demo
    baseline, target = _before_after(_incident(summary, "deprecated-tool-503"))
    cli = Cli(db)
    args = (
        "diff",
        "--baseline",
        baseline,
        "--target",
        target,
        "--where",
        "service_name = 'support-chat'",
    )
    result = cli(*args, "-f", "json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert (
        r["baseline"]["kind"] == "window"
        and r["baseline"]["traces"] > 100
        and r["target"]["traces"] > 100
    )
    metrics = {m["name"]: m for m in r["metrics"]}
    for m in r["metrics"]:
        assert {
            "name",
            "baseline",
            "target",
            "delta",
            "rel_change",
            "ci",
            "p_value",
            "significant",
            "regression",
        } <= set(m)
    for name in ("error_rate", "latency_p95_ms", "abandonment_rate", "thumbs_down_rate"):
        assert metrics[name]["regression"], name
        lo, hi = metrics[name]["ci"]
        assert lo <= metrics[name]["delta"] <= hi and lo > 0
    assert not metrics["ttft_p50_ms"]["regression"]  # the models did not get slower
    top = [(f["field"], f["value"]) for f in r["factors"][:6]]
    assert ("prompt_version", "v7") in top and ("tool_name", "lookup_charge_v1") in top, top
    factor = next(f for f in r["factors"] if f["value"] == "lookup_charge_v1")
    assert (
        factor["kind"] == "new" and factor["baseline_share"] == 0 and factor["target_share"] > 0.3
    )
    assert set(factor) >= {
        "field",
        "value",
        "baseline_share",
        "target_share",
        "lift",
        "score",
        "kind",
        "examples",
    }
    assert len(factor["examples"]["target"]) == 3
    assert cli(*args, "--fail-on", "regression").exit_code == 1
    text = cli(*args, "--top", "5")
    assert text.exit_code == 0 and "REGRESSION" in text.stdout and "lookup_charge_v1" in text.stdout


def test_retry_loop_incident_names_the_workflow_and_the_token_rise(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    db, _ = demo
    r = Cli(db).json(
        "diff",
        "--baseline", "service_version = '1.8.2'",
        "--target", "service_version = '1.9.0'",
        "--where", "service_name = 'order-assistant'",
    )  # fmt: skip
    assert r["baseline"]["kind"] == "filter"
    metrics = {m["name"]: m for m in r["metrics"]}
    assert metrics["tokens_per_trace"]["regression"] and metrics["cost_per_trace"]["regression"]
    assert metrics["tokens_per_trace"]["rel_change"] > 2
    assert not metrics["error_rate"]["regression"]  # same errors, more retries
    workflow = next(
        f for f in r["factors"] if f["field"] == "workflow" and f["value"] == "order_status"
    )
    assert workflow["kind"] == "rate" and workflow["explained"] > 0.8
    assert r["factors"].index(workflow) < 5


def test_index_rebuild_shows_as_slower_retrieval_steps(demo: tuple[Path, dict[str, Any]]) -> None:
    db, summary = demo
    baseline, target = _before_after(_incident(summary, "vector-index-rebuild"))
    r = Cli(db).json("diff", "--baseline", baseline, "--target", target)
    metrics = {m["name"]: m for m in r["metrics"]}
    retrieval = metrics["retrieval_p95_ms"]
    assert retrieval["regression"] and retrieval["target"] > 4 * retrieval["baseline"]
    assert r["primary_metric"] == "retrieval_p95_ms"
    assert not metrics["llm_p95_ms"]["regression"] and not metrics["tool_p95_ms"]["regression"]


def test_unsupported_answers_show_in_the_evaluations(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    r = Cli(db).json(
        "diff",
        "--baseline", "model = 'claude-sonnet-4-20250514'",
        "--target", "model = 'gpt-4.1-2025-04-14'",
        "--where", "service_name = 'support-chat'",
    )  # fmt: skip
    metrics = {m["name"]: m for m in r["metrics"]}
    assert metrics["eval_fail_rate"]["regression"] and metrics["eval_fail_rate"]["baseline"] == 0
    assert metrics["eval_score"]["regression"] and metrics["eval_score"]["delta"] < 0
    assert not metrics["response_chars"]["regression"]  # a shift metric, never a regression


def test_leaked_reasoning_shows_as_a_response_length_shift(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    db, _ = demo
    cli = Cli(db)
    r = cli.json(
        "diff",
        "--baseline", "model = 'claude-sonnet-4-20250514'",
        "--target", "model = 'claude-sonnet-4-5-20250929'",
        "--top", "40",
    )  # fmt: skip
    shifts = {f["field"]: f for f in r["factors"] if f["kind"] == "shift"}
    length = shifts["response_chars"]
    assert length["target_value"] > 1.1 * length["baseline_value"]
    assert length["target_share"] > 2 * length["baseline_share"]
    assert "retrieval_top_score" not in shifts  # it did not move
    # The longest answers of the target are the ones that show their <thinking>.
    leaked = 0
    for trace in length["examples"]["target"]:
        steps = cli.json("replay", trace)["steps"]
        leaked += any("<thinking>" in json.dumps(s.get("output")) for s in steps)
    assert leaked >= 2


def test_bad_sides_are_usage_errors(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    cli = Cli(db)
    empty = cli(
        "diff", "--baseline", "2020-01-01T00:00Z..2020-01-02T00:00Z", "--target", "status = 'ok'"
    )
    assert empty.exit_code == 2 and "selects no traces" in empty.stderr
    assert cli("diff", "--baseline", "nope = 1", "--target", "status = 'ok'").exit_code == 2


@pytest.mark.xdist_group("clean-worlds")
@pytest.mark.parametrize("seed", CLEAN_SEEDS)
def test_ordinary_days_of_the_clean_world_show_no_regression(
    tmp_path_factory: pytest.TempPathFactory, seed: int
) -> None:
    cli = Cli(clean_world(tmp_path_factory, seed))
    # Tuesday vs Wednesday: both under prompt v6, no harmful change between them.
    result = cli(
        "diff",
        "--baseline", "2026-11-10T00:00Z..2026-11-11T00:00Z",
        "--target", "2026-11-11T00:00Z..2026-11-12T00:00Z",
        "--fail-on", "regression", "-f", "json",
    )  # fmt: skip
    regressions = [m["name"] for m in json.loads(result.stdout)["metrics"] if m["regression"]]
    assert result.exit_code == 0 and regressions == [], regressions


def test_design_effect_by_hand() -> None:
    from aiobs.analysis.diff import design_effect

    rows = [{"session_id": "a"}, {"session_id": "b"}, {"session_id": "c"}, {"session_id": "c"}]
    assert design_effect(rows) == (1 + 1 + 4) / 4  # Σ m² / n
    assert (
        design_effect([{"session_id": None}, {"session_id": None}]) == 1.0
    )  # no sessions: independent


def _traces(
    version: str, n: int, calls: int, errors: int, ttft: float | None
) -> list[dict[str, Any]]:
    return [
        {
            "trace_id": f"{version}-{calls}-{errors}-{i}",
            "service_version": version,
            "tool_calls": calls,
            "tool_errors": errors,
            "ttft_ms": ttft,
        }
        for i in range(n)
    ]


def test_factor_contributions_add_up_to_the_change() -> None:
    # Worked by hand. Tool error rate, pooled over calls: baseline 50 errors / 550 calls, target
    # 100 / 550. Version 1.0 (10 calls a trace) doubled its errors; 2.0 (1 call) stayed at 0; 3.0
    # makes no tool calls. All of the change is 1.0's, as a rate change: w = 500/550 of the calls
    # on both sides, r 0.1 -> 0.2, so rate = 500/550 * 0.1 = 0.0909 = the whole delta. Weighting
    # by trace share instead (the old way) gave 1.0 half the traces and explained 50 %.
    from aiobs.analysis.diff import rank_factors

    base = [
        *_traces("1.0", 50, 10, 1, 300.0),
        *_traces("2.0", 50, 1, 0, None),
        *_traces("3.0", 100, 0, 0, 200.0),
    ]
    targ = [
        *_traces("1.0", 50, 10, 2, 900.0),
        *_traces("2.0", 50, 1, 0, None),
        *_traces("3.0", 100, 0, 0, 200.0),
    ]
    factors = {
        f["value"]: f for f in rank_factors(base, targ, ("tool_error_rate", "ratio", "tool", True))
    }
    assert factors["1.0"]["explained"] == pytest.approx(1.0)
    assert factors["1.0"]["kind"] == "rate" and factors["1.0"]["mix"] == pytest.approx(0.0)
    assert factors["1.0"]["baseline_value"] == pytest.approx(0.1)
    assert factors["1.0"]["target_value"] == pytest.approx(0.2)
    assert factors["2.0"]["explained"] == pytest.approx(0.0)
    assert factors["3.0"]["baseline_value"] is None  # no calls: no weight in the tool error rate

    # A mean over the traces that have a value (TTFT; 2.0 has none), with traffic moving too:
    # the values of one field still add up to exactly the change.
    targ = [
        *_traces("1.0", 80, 10, 2, 900.0),
        *_traces("2.0", 50, 1, 0, None),
        *_traces("3.0", 70, 0, 0, 250.0),
    ]
    factors = rank_factors(base, targ, ("ttft_p50_ms", "p50", "ttft_ms", True))
    assert sum(f["explained"] for f in factors) == pytest.approx(1.0)
    by_value = {f["value"]: f for f in factors}
    # baseline mean (50*300 + 100*200)/150 = 233.3; 1.0 went from 1/3 to 80/150 of the values.
    assert by_value["1.0"]["mix"] == pytest.approx((80 / 150 - 50 / 150) * (300 - 700 / 3))
    assert by_value["1.0"]["rate"] == pytest.approx(80 / 150 * 600)


@pytest.mark.parametrize(
    "where",
    [
        "t.start_time >= TIMESTAMP '2026-11-12 00:00' AND t.start_time < TIMESTAMP '2026-11-13 00:00'",
        "t.status = 'error'",
        "t.cost_usd > 0.002",  # reads the cost: the view path either way
    ],
)
def test_rows_priced_for_the_picked_traces_equal_the_views(
    demo: tuple[Path, dict[str, Any]], where: str
) -> None:
    """On a materialised store the traces are picked without their cost and only those priced
    (segment.trace_metrics_sql); the rows equal those read through ai_traces, cost included."""
    import math

    from aiobs.analysis.diff import row_sql
    from aiobs.backend.duckdb import open_store

    db, _ = demo
    with open_store(db) as store:
        assert store.capabilities.materialised
        picked, viewed = (
            # A condition on the cost cannot pick the traces before pricing them.
            store.con.execute(row_sql(where, pick_first=m and "cost_usd" not in where)).fetchall()
            for m in (True, False)
        )
    assert len(picked) == len(viewed) > 50
    cost = 9  # m.cost_usd's position in diff's row

    def unordered(row: tuple[Any, ...]) -> tuple[Any, ...]:  # list() has no order in DuckDB
        return tuple(sorted(v, key=str) if isinstance(v, list) else v for v in row)

    for a, b in zip(map(unordered, picked), map(unordered, viewed), strict=True):
        assert a[:cost] + a[cost + 1 :] == b[:cost] + b[cost + 1 :]
        assert (a[cost] is None) == (b[cost] is None)
        assert a[cost] is None or math.isclose(a[cost], b[cost], rel_tol=1e-9)
    assert any(r[cost] for r in picked)


def test_both_sides_from_one_query_equal_each_side_alone(demo: tuple[Path, dict[str, Any]]) -> None:
    """diff reads both sides in one query (load_sides); a trace both sides select is in both, and
    each side's rows equal what that side's own query returns — overlapping filter sides and
    disjoint windows."""
    from aiobs.analysis.diff import load_rows, load_sides, parse_side
    from aiobs.analysis.filters import TraceFilter
    from aiobs.backend.duckdb import open_store

    db, _ = demo
    cases = [
        ("status = 'ok'", "service_name = 'support-chat'"),
        ("2026-11-12T00:00Z..2026-11-13T00:00Z", "2026-11-13T00:00Z..2026-11-14T00:00Z"),
    ]
    with open_store(db) as store:
        for baseline, target in cases:
            filters = [
                parse_side(n, t).filter(TraceFilter()) for n, t in (("b", baseline), ("t", target))
            ]
            both = load_sides(store, *filters)
            alone = tuple(load_rows(store, f) for f in filters)
            for got, want in zip(both, alone, strict=True):
                assert [r["trace_id"] for r in got] == [r["trace_id"] for r in want]
                assert len(got) > 50
            shared = {r["trace_id"] for r in both[0]} & {r["trace_id"] for r in both[1]}
            assert bool(shared) == (".." not in baseline), (baseline, len(shared))
