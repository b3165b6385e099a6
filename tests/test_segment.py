"""``aiobs segment`` on the demo world: each planted incident stands out in its segment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiobs.analysis.segment import METRICS, sparkline
from conftest import Cli


def _by(rows: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def test_prompt_version_segment_shows_the_bad_prompt(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    cli = Cli(db)
    rows = cli.json("segment", "--by", "prompt_version", "--service", "support-chat")
    # the metrics, then each evaluation's fail rate (the demo's online groundedness evaluator)
    assert list(rows[0]) == ["prompt_version", *METRICS, "eval.groundedness_fail_rate", "sparkline"]
    seg = _by(rows, "prompt_version")
    assert set(seg) == {"v5", "v6", "v7", "v8"}
    others = [seg[v] for v in ("v5", "v6", "v8")]
    v7 = seg["v7"]
    assert all(v7["error_rate"] > 5 * o["error_rate"] for o in others)
    assert all(v7["abandonment_rate"] > 2 * o["abandonment_rate"] for o in others)
    assert all(v7["thumbs_down_rate"] > 1.5 * o["thumbs_down_rate"] for o in others)
    assert all(v7["p95_ms"] > o["p95_ms"] for o in others)
    assert all(v7["tool_error_rate"] > 0.3 > o["tool_error_rate"] for o in others)
    # Trace-level groups partition the selection; sparklines count the same traces.
    total = cli.json("traces", "--service", "support-chat", "-n", "100000")
    assert sum(r["traces"] for r in rows) == len(total)
    assert all(sum(r["sparkline"]) == r["traces"] and len(r["sparkline"]) == 24 for r in rows)


def test_release_and_workflow_segment_shows_the_retry_loop(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    db, _ = demo
    rows = Cli(db).json(
        "segment", "--by", "service_version,workflow", "--service", "order-assistant"
    )
    seg = _by(rows, "service_version", "workflow")
    loop = (
        seg[("1.9.0", "order_status")]["tokens_per_trace"]
        / seg[("1.8.2", "order_status")]["tokens_per_trace"]
    )
    assert 6 <= loop <= 11
    cost = (
        seg[("1.9.0", "order_status")]["cost_per_trace"]
        / seg[("1.8.2", "order_status")]["cost_per_trace"]
    )
    assert 6 <= cost <= 11
    calm = (
        seg[("1.9.0", "change_delivery")]["tokens_per_trace"]
        / seg[("1.8.2", "change_delivery")]["tokens_per_trace"]
    )
    assert 0.8 <= calm <= 1.25


def test_span_and_attribute_segments(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    cli = Cli(db)
    models = _by(cli.json("segment", "--by", "model"), "model")
    # The leaked <thinking> makes claude-sonnet-4-5's answers longer.
    leak, before = models["claude-sonnet-4-5-20250929"], models["claude-sonnet-4-20250514"]
    assert leak["response_chars"] > 1.1 * before["response_chars"]
    assert 0.4 < models["gpt-4.1-2025-04-14"]["retrieval_top_score"] < 1
    # gpt-4.1 answers when retrieval found nothing: the groundedness evaluator fails it, only it.
    assert models["gpt-4.1-2025-04-14"]["eval_fail_rate"] > 0.05
    assert models["claude-sonnet-4-20250514"]["eval_fail_rate"] == 0
    assert (
        models["gpt-4.1-2025-04-14"]["eval_score"]
        < models["claude-sonnet-4-20250514"]["eval_score"]
    )
    assert (
        models["claude-sonnet-4-5-20250929"]["thumbs_down_rate"]
        > 1.5 * models["claude-sonnet-4-20250514"]["thumbs_down_rate"]
    )
    tools = _by(
        cli.json("segment", "--by", "attr['gen_ai.tool.name']", "--sort", "-error_rate"),
        "attr['gen_ai.tool.name']",
    )
    assert tools["lookup_charge_v1"]["error_rate"] == 1.0
    assert next(iter(tools)) == "lookup_charge_v1"  # sorted by error rate
    text = cli("segment", "--by", "tool_name", "-n", "3")
    assert text.exit_code == 0 and "sparkline" in text.stdout
    assert any(ch in text.stdout for ch in "▁▂▃▄▅▆▇█")
    assert cli("segment", "--by", "nope").exit_code == 2
    assert cli("segment", "--by", "model", "--sort", "nope").exit_code == 2
    assert len(cli("segment", "--by", "model", "-f", "csv").stdout.splitlines()) == 1 + len(models)


def test_sparkline_rendering() -> None:
    assert sparkline([0, 0]) == "  "
    assert sparkline([0, 1, 2, 4, 8]) == " ▂▃▅█"  # level = round(count / max × 7)
    assert sparkline([5, 5]) == "██"
