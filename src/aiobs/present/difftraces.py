"""Two journeys aligned step by step (``aiobs.analysis.difftraces``) as Rich renderables: each
trace's line, the counts of same, changed, added and removed steps, and the aligned table.

A pure function of the alignment; every string from telemetry is made inert.

Must not import typer, textual, duckdb, polars, pyarrow or sqlglot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from aiobs.present.format import clip, duration, plural, token_totals
from aiobs.present.safe import inert

if TYPE_CHECKING:
    from aiobs.analysis.results import TraceDiff

MARKS = {
    "same": ("=", "dim"),
    "changed": ("~", "yellow"),
    "added": ("+", "green"),
    "removed": ("-", "red"),
}


def renderables(r: TraceDiff) -> Iterator[RenderableType]:
    """The alignment ``r`` (``diff_traces``'s result), to print one after another."""
    for side in ("a", "b"):
        t = r[side]
        yield Text.assemble(
            (f"{side.upper()} ", "bold"),
            inert(
                f"{t['trace_id']}  {t['service_name']}@{t['service_version']}  {t['status'].upper()}"
                f"  {duration(t['duration_ms'])}  {plural(t['span_count'], 'step')}"
                f"  tokens {token_totals(t) or '-'}"
                f"  models {', '.join(t['models'] or []) or '-'}  prompt {', '.join(t['prompt_versions'] or []) or '-'}"
            ),
        )
    c = r["summary"]
    yield (
        f"{c['same']} same · {c['changed']} changed · {c['added']} only in B · {c['removed']} only in A"
    )
    table = Table(header_style="bold")
    for col in ("", "step", "A", "B", "what differs"):
        table.add_column(col, overflow="fold")
    for row in r["steps"]:
        mark, style = MARKS[row["op"]]
        a, b = row["a"], row["b"]
        what = "; ".join(
            f"{ch['field']}: {clip(json.dumps(ch['a'], default=str), False, 60)} → {clip(json.dumps(ch['b'], default=str), False, 60)}"
            for ch in row["changes"]
        )
        table.add_row(
            Text(mark, style=style),
            Text(inert(f"{row['kind']} {row['name']}"), style=style),
            "" if a is None else f"{duration(a['duration_ms'])} {a['status']}",
            "" if b is None else f"{duration(b['duration_ms'])} {b['status']}",
            Text(what),
        )
    yield table
