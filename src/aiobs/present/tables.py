"""What the row commands show on a terminal or in Markdown: the columns of the traces, sessions
and segment tables, a segment's counts as a sparkline, and the sections of ``stats``.

Pure functions of the analysis results (rows are copied, never changed); the rows are then
written by ``cli/render.py`` in the asked format.

Imports only the standard library at module level (``traces``/``sessions`` load it before
their query).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        ("ingests", ["files", "rejected", "redacted_files"], [result["ingests"]]),
    ]
