"""Two journeys aligned step by step (``aiobs.analysis.difftraces``) as Rich renderables: each
trace's line, the counts of same, changed, added and removed steps, and the aligned table.

A pure function of the alignment; every string from telemetry is made inert.

Must not import typer, textual, duckdb, polars, pyarrow or sqlglot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from aiobs.present.format import clip, duration, md_cell, plural, token_totals
from aiobs.present.safe import inert

if TYPE_CHECKING:
    from aiobs.analysis.results import AlignedStep, TraceDiff

MARKS = {
    "same": ("=", "dim"),
    "changed": ("~", "yellow"),
    "added": ("+", "green"),
    "removed": ("-", "red"),
}


def side_line(side: str, r: TraceDiff) -> str:
    """A trace's line: id, service, status, duration, steps, tokens, models, prompt versions."""
    t = r[side]  # type: ignore[literal-required]
    return (
        f"{t['trace_id']}  {t['service_name']}@{t['service_version']}  {t['status'].upper()}"
        f"  {duration(t['duration_ms'])}  {plural(t['span_count'], 'step')}"
        f"  tokens {token_totals(t) or '-'}"
        f"  models {', '.join(t['models'] or []) or '-'}"
        f"  prompt {', '.join(t['prompt_versions'] or []) or '-'}"
    )


def what_differs(row: AlignedStep, full: bool) -> str:
    """A changed step's differences: ``field: a → b``, each side cut unless ``full``."""
    return "; ".join(
        f"{ch['field']}: {clip(json.dumps(ch['a'], default=str, ensure_ascii=False), full, 60)}"
        f" → {clip(json.dumps(ch['b'], default=str, ensure_ascii=False), full, 60)}"
        for ch in row["changes"]
    )


def markdown(r: TraceDiff, full: bool = False) -> str:
    """The alignment as Markdown: both traces, the counts, and the aligned steps."""
    c = r["summary"]
    lines = [
        "# aiobs diff-traces",
        "",
        f"- **A** {md_cell(side_line('a', r))}",
        f"- **B** {md_cell(side_line('b', r))}",
        "",
        f"{c['same']} same · {c['changed']} changed · {c['added']} only in B · "
        f"{c['removed']} only in A",
        "",
        "| | step | A | B | what differs |",
        "|---|---|---|---|---|",
    ]
    for row in r["steps"]:
        a, b = row["a"], row["b"]
        cells = [
            MARKS[row["op"]][0],
            f"{row['kind']} {row['name']}",
            "" if a is None else f"{duration(a['duration_ms'])} {a['status']}",
            "" if b is None else f"{duration(b['duration_ms'])} {b['status']}",
            what_differs(row, full),
        ]
        lines.append("| " + " | ".join(md_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def sections(r: TraceDiff) -> list[tuple[str, list[str], list[dict[str, Any]]]]:
    """The whole alignment for the row formats: the two traces, the counts, the steps."""
    traces = [{"side": side, **r[side]} for side in ("a", "b")]
    steps = [dict(row) for row in r["steps"]]
    return [
        ("traces", list(traces[0]), traces),
        ("summary", list(r["summary"]), [dict(r["summary"])]),
        ("steps", ["op", "kind", "name", "a", "b", "changes"], steps),
    ]


def renderables(r: TraceDiff, full: bool = False) -> Iterator[RenderableType]:
    """The alignment ``r`` (``diff_traces``'s result), to print one after another; ``full``
    shows changed values whole."""
    for side in ("a", "b"):
        yield Text.assemble((f"{side.upper()} ", "bold"), inert(side_line(side, r)))
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
        what = what_differs(row, full)
        table.add_row(
            Text(mark, style=style),
            Text(inert(f"{row['kind']} {row['name']}"), style=style),
            "" if a is None else f"{duration(a['duration_ms'])} {a['status']}",
            "" if b is None else f"{duration(b['duration_ms'])} {b['status']}",
            Text(what),
        )
    yield table
