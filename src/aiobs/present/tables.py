"""What the row commands show on a terminal or in Markdown: rows as a terminal table (the
first column whole, the others cut to fit), the columns of the traces, sessions and segment
tables, a segment's counts as a sparkline, and the sections of ``stats``.

Pure functions of the analysis results (rows are copied, never changed); ``cli/render.py``
writes them in the asked format.

Imports only the standard library and ``present.format``/``present.safe`` at module level
(``traces``/``sessions`` load it before their query); rich only when a table is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiobs.present.format import cell_text
from aiobs.present.safe import inert

if TYPE_CHECKING:
    from rich.table import Table

    from aiobs.analysis.results import Stats

TRACE_TABLE = (
    "trace_id", "start_time", "duration_ms", "service_name", "root_name", "status",
    "llm_calls", "tool_calls", "input_tokens", "output_tokens", "cost_usd", "models", "user_id",
)  # fmt: skip
SESSION_TABLE = (
    "session_id", "user_id", "start_time", "duration_ms", "traces", "errors", "models",
    "cost_usd", "thumbs_down", "retries", "abandoned", "resolved", "csat",
)  # fmt: skip
SEGMENT_TABLE_METRICS = (
    "traces", "error_rate", "p50_ms", "p95_ms", "tokens_per_trace", "cost_per_trace",
    "tool_error_rate", "handoff_rate", "thumbs_down_rate", "abandonment_rate", "sparkline",
)  # fmt: skip


MAX_CELL = 48  # widest a table cell grows before it is cut with an ellipsis
MIN_CELL = 10  # narrowest a cut column gets before columns are left out instead


def rows_table(
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    width: int,
    *,
    title: str | None = None,
) -> Table:
    """Rows as a table at most ``width`` wide, one line a row; the columns that do not fit are
    named in the caption."""
    from rich.table import Table
    from rich.text import Text

    cells = [[inert(cell_text(r.get(c))) for c in columns] for r in rows]
    widths = column_widths([inert(c) for c in columns], cells, width)
    hidden = columns[len(widths) :]
    table = Table(title=title, show_lines=False, header_style="bold")
    if hidden:
        table.caption = (
            f"{len(hidden)} more column{'s' if len(hidden) > 1 else ''}: "
            + ", ".join(hidden)
            + " (a wider terminal, or -f json / csv)"
        )
    # One line per row: long cells are cut with an ellipsis (use -f json/csv for whole
    # values), except the first column, the row's key (a trace id must stay copyable).
    for c, w in zip(columns, widths, strict=False):
        table.add_column(Text(inert(c)), no_wrap=True, overflow="ellipsis", width=w)
    for row in cells:
        table.add_row(*(Text(text) for text in row[: len(widths)]))
    return table


def column_widths(columns: Sequence[str], cells: Sequence[Sequence[str]], width: int) -> list[int]:
    """Each shown column's width, for a table at most ``width`` wide: the first column whole,
    the others cut to one common cap (at least MIN_CELL), and columns left out from the right
    when even that does not fit. Rich's own layout squeezed every column, down to none, and cut
    the ids people copy into `aiobs replay`."""
    natural = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    natural[1:] = [min(w, MAX_CELL) for w in natural[1:]]

    def total(ws: Sequence[int]) -> int:
        return 1 + sum(w + 3 for w in ws)  # a rule and two spaces of padding per column

    shown = len(columns)
    while shown > 1 and total([natural[0], *(min(w, MIN_CELL) for w in natural[1:shown])]) > width:
        shown -= 1
    ws = natural[:shown]
    cap = max(ws[1:], default=0)
    while cap > MIN_CELL and total([ws[0], *(min(w, cap) for w in ws[1:])]) > width:
        cap -= 1
    return [ws[0], *(min(w, cap) for w in ws[1:])]


def segment_rows(
    names: Sequence[str], rows: Sequence[Mapping[str, Any]], *, terminal: bool
) -> tuple[list[str], list[dict[str, Any]]]:
    """A segment result for a table, Markdown or CSV: its columns (on a ``terminal``, the
    metrics that fit; else all of them) and its rows with the counts drawn as a sparkline."""
    from aiobs.analysis.segment import METRICS, sparkline

    metrics = SEGMENT_TABLE_METRICS if terminal else (*METRICS, "sparkline")
    drawn = [{**row, "sparkline": sparkline(row["sparkline"])} for row in rows]
    return [*names, *metrics], drawn


def stats_sections(result: Stats) -> list[tuple[str, list[str], Sequence[Mapping[str, Any]]]]:
    """``stats`` as titled tables: (title, columns, rows) of signals, services, models, step
    kinds, LLM-step coverage, conventions and ingests."""
    ingests = [result["ingests"]] if result["ingests"] is not None else []
    return [
        ("signals", ["signal", "count", "first", "last"], result["signals"]),
        ("services", ["service_name", "service_version", "spans", "traces"], result["services"]),
        (
            "models",
            ["provider", "model", "calls", "input_tokens", "output_tokens", "cost_usd"],
            result["models"],
        ),
        ("step kinds", ["step_kind", "spans"], result["step_kinds"]),
        ("coverage of LLM steps", ["field", "share", "steps"], result["coverage"]["fields"]),
        ("conventions seen", ["convention", "spans"], result["coverage"]["conventions"]),
        ("ingests", ["files", "rejected", "redacted_files"], ingests),
    ]
