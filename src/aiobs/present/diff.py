"""A diff of two windows or filters (``aiobs.analysis.diff``) as Rich renderables: the two
sides, the metrics table with intervals and q-values, and the factors that explain the change.

A pure function of the diff; every string from telemetry is made inert.

Must not import typer, textual, duckdb, polars, pyarrow or sqlglot; rich only when rendering.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiobs.present.format import duration, md_cell, money, num, pct, plural
from aiobs.present.safe import inert
from aiobs.present.tables import KEY, Col, FittedTable, markdown_table

if TYPE_CHECKING:
    from rich.console import RenderableType

    from aiobs.analysis.results import Diff

# Every field of the result, for the row formats (-f jsonl/csv/markdown): one section a part.
SIDE_COLUMNS = [
    "side",
    "kind",
    "text",
    "since",
    "until",
    "traces",
    "primary_metric",
    "design_effect",
]
METRIC_COLUMNS = [
    "name", "higher_is_worse", "baseline_n", "target_n", "baseline", "target", "delta",
    "rel_change", "ci", "p_value", "q_value", "significant", "regression",
]  # fmt: skip
FACTOR_COLUMNS = [
    "field", "value", "baseline_share", "target_share", "lift", "score", "surprise", "explained",
    "mix", "rate", "kind", "baseline_value", "target_value", "examples",
]  # fmt: skip


def sections(r: Diff) -> list[tuple[str, list[str], list[dict[str, Any]]]]:
    """The whole diff as three tables for the row formats: the two sides (with the primary
    metric and design effect), the metrics, the factors."""
    sides = [
        {
            "side": side,
            **{k: r[side].get(k) for k in SIDE_COLUMNS[1:6]},
            "primary_metric": r["primary_metric"],
            "design_effect": r.get("design_effect"),
        }
        for side in ("baseline", "target")
    ]
    return [
        ("sides", SIDE_COLUMNS, sides),
        ("metrics", METRIC_COLUMNS, [dict(m) for m in r["metrics"]]),
        ("factors", FACTOR_COLUMNS, [dict(f) for f in r["factors"]]),
    ]


def metric_value(v: Any, name: str) -> str:
    """A metric's figure in its unit: rates (``*_rate``) as percentages, latencies in the unit
    that reads, costs in dollars, others to four digits."""
    if v is None:
        return "-"
    if name.endswith("_rate"):
        return pct(v)
    if name.endswith("_ms"):
        return duration(v)
    if name.startswith("cost"):
        return money(v)
    return num(v, 4)


METRIC_TABLE = (
    Col("metric", KEY, "text"), Col("baseline", 1, "figure"), Col("target", 1, "figure"),
    Col("change", 1, "figure"), Col("95% CI of Δ", 3, "figure"), Col("q", 2, "figure"),
    Col("", 1, "text", styles=(("REGRESSION", "bold red"), ("significant", "yellow"))),
)  # fmt: skip
FACTOR_TABLE = (
    Col("field", KEY, "text"), Col("value", KEY, "text", wrap=True), Col("baseline", 1, "figure"),
    Col("target", 1, "figure"), Col("lift", 2, "figure"), Col("kind", 4, "text"),
    Col("explains", 1, "figure"), Col("examples (target)", 3, "text", wrap=True),
)  # fmt: skip


def metric_rows(r: Diff) -> list[dict[str, str]]:
    """The metrics table's rows as shown: figures in their units, the change with its relative
    size, the interval of the difference, the q-value and the verdict."""
    rows = []
    for m in r["metrics"]:
        if m["baseline"] is None:
            continue
        name = m["name"]
        ci = m["ci"]
        rel = "" if m["rel_change"] is None else f" ({pct(m['rel_change'], 0, sign=True)})"
        rows.append(
            {
                "metric": name,
                "baseline": metric_value(m["baseline"], name),
                "target": metric_value(m["target"], name),
                "change": metric_value(m["delta"], name) + rel,
                "95% CI of Δ": "-"
                if not ci
                else f"{metric_value(ci[0], name)} … {metric_value(ci[1], name)}",
                "q": "-" if m["q_value"] is None else f"{m['q_value']:.2g}",
                "": "REGRESSION"
                if m["regression"]
                else ("significant" if m["significant"] else ""),
            }
        )
    return rows


def factor_rows(r: Diff) -> list[dict[str, str]]:
    """The factors table's rows as shown: each value's share of baseline and target traces,
    its lift, how much of the primary metric's change it explains, example traces."""
    return [
        {
            "field": f["field"],
            "value": f["value"],
            "baseline": pct(f["baseline_share"]),
            "target": pct(f["target_share"]),
            "lift": "new" if f["lift"] is None else f"×{f['lift']:.2f}",
            "kind": f["kind"],
            "explains": pct(f["explained"], 0),
            "examples (target)": " ".join(t[:12] for t in f["examples"]["target"]),
        }
        for f in r["factors"]
    ]


def renderables(r: Diff) -> Iterator[RenderableType]:
    """The diff ``r`` (``analysis.diff.diff``'s result), to print one after another."""
    # Rich is loaded here, not with the module: -f csv/jsonl/markdown need no Rich.
    from rich.text import Text

    yield Text.assemble(
        ("baseline ", "bold"),
        inert(f"{r['baseline']['text']}  ({plural(r['baseline']['traces'], 'trace')})"),
    )
    yield Text.assemble(
        ("target   ", "bold"),
        inert(f"{r['target']['text']}  ({plural(r['target']['traces'], 'trace')})"),
    )
    yield FittedTable(METRIC_TABLE, metric_rows(r), title="metrics")
    yield FittedTable(
        FACTOR_TABLE,
        factor_rows(r),
        title=f"what explains it ({r['primary_metric'] or 'no regression'})",
    )


def markdown(r: Diff) -> str:
    """The diff as a Markdown document: the two sides, the metrics and the factors as on the
    terminal (every column)."""
    lines = ["# aiobs diff", ""]
    for side in ("baseline", "target"):
        lines.append(
            f"- **{side}**: {md_cell(r[side]['text'])} ({plural(r[side]['traces'], 'trace')})"
        )
    lines.append("")
    lines.append(markdown_table(METRIC_TABLE, metric_rows(r), title="metrics"))
    title = f"what explains it ({r['primary_metric'] or 'no regression'})"
    lines.append(markdown_table(FACTOR_TABLE, factor_rows(r), title=title))
    return "\n".join(lines)
