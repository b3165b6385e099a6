"""A diff of two windows or filters (``aiobs.analysis.diff``) as Rich renderables: the two
sides, the metrics table with intervals and q-values, and the factors that explain the change.

A pure function of the diff; every string from telemetry is made inert.

Must not import typer, textual, duckdb, polars, pyarrow or sqlglot; rich only when rendering.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiobs.present.format import num, pct
from aiobs.present.safe import inert

if TYPE_CHECKING:
    from rich.console import RenderableType

    from aiobs.analysis.results import Diff

# The columns of the factors table in row formats (-f markdown/jsonl/csv), as in the JSON.
FACTOR_COLUMNS = [
    "field",
    "value",
    "baseline_share",
    "target_share",
    "lift",
    "kind",
    "score",
    "examples",
]


def metric_value(v: Any, name: str) -> str:
    """A metric's figure: rates (``*_rate``) as percentages, others to four digits."""
    return pct(v) if name.endswith("_rate") else num(v, 4)


def renderables(r: Diff) -> Iterator[RenderableType]:
    """The diff ``r`` (``analysis.diff.diff``'s result), to print one after another."""
    # Rich is loaded here, not with the module: -f csv/jsonl/markdown need FACTOR_COLUMNS only.
    from rich.table import Table
    from rich.text import Text

    yield Text.assemble(
        ("baseline ", "bold"),
        inert(f"{r['baseline']['text']}  ({r['baseline']['traces']:,} traces)"),
    )
    yield Text.assemble(
        ("target   ", "bold"),
        inert(f"{r['target']['text']}  ({r['target']['traces']:,} traces)"),
    )
    table = Table(title="metrics", header_style="bold")
    for col in ("metric", "baseline", "target", "change", "95% CI of Δ", "q", ""):
        table.add_column(col, justify="right" if col not in ("metric", "") else "left")
    for m in r["metrics"]:
        if m["baseline"] is None:
            continue
        name = m["name"]
        ci = m["ci"]
        ci_text = "-" if not ci else f"{metric_value(ci[0], name)} … {metric_value(ci[1], name)}"
        rel = "" if m["rel_change"] is None else f" ({pct(m['rel_change'], 0, sign=True)})"
        mark = (
            Text("REGRESSION", style="bold red")
            if m["regression"]
            else (Text("significant", style="yellow") if m["significant"] else Text(""))
        )
        table.add_row(
            name, metric_value(m["baseline"], name), metric_value(m["target"], name),
            metric_value(m["delta"], name) + rel, ci_text,
            "-" if m["q_value"] is None else f"{m['q_value']:.2g}", mark,
        )  # fmt: skip
    yield table
    factors = Table(
        title=f"what explains it ({r['primary_metric'] or 'no regression'})", header_style="bold"
    )
    for col in (
        "field",
        "value",
        "baseline",
        "target",
        "lift",
        "kind",
        "explains",
        "examples (target)",
    ):
        factors.add_column(col, overflow="fold")
    for f in r["factors"]:
        factors.add_row(
            f["field"], Text(inert(f["value"])), pct(f["baseline_share"]), pct(f["target_share"]),
            "new" if f["lift"] is None else f"×{f['lift']:.2f}", f["kind"],
            pct(f["explained"], 0),
            " ".join(t[:12] for t in f["examples"]["target"]),
        )  # fmt: skip
    yield factors
