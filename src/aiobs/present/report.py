"""The incident report (``aiobs.analysis.report``) as a Markdown document: what was selected, a
table of the traces, and the detailed traces as replays (``present.replay.markdown``).

A pure function of the report's data.

Must not import typer, textual, duckdb, polars, pyarrow or sqlglot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiobs.present.format import minute, plural
from aiobs.present.replay import markdown
from aiobs.present.tables import markdown_table

if TYPE_CHECKING:
    from aiobs.analysis.results import Report

TABLE_ROWS = 200  # traces listed in the report's table
COLUMNS = ["trace_id", "start_time", "duration_ms", "service_name", "status", "models", "user_id"]


def markdown_report(report: Report) -> str:
    """The report ``report`` (``incident_report``'s result) as Markdown."""
    rows = report["traces"]
    lines = [
        "# Incident report",
        "",
        f"{plural(report['selected'], 'trace')} from {minute(rows[0]['start_time'])}Z to "
        f"{minute(rows[-1]['start_time'])}Z — {report['failed']} failed."
        if rows
        else "No traces selected.",
        "",
    ]
    if rows:
        lines.append(
            markdown_table(
                COLUMNS,
                rows[:TABLE_ROWS],
                title="Traces" + (f" (first {TABLE_ROWS})" if len(rows) > TABLE_ROWS else ""),
            )
        )
    for replay in report["detailed"]:
        lines.append(markdown(replay, full=False))
    return "\n".join(lines) + "\n"
