"""The incident report's data (``aiobs export --to markdown``): the selected traces, how many
failed, and the first failed ones (else the first ones) replayed whole.

Returns data only; ``aiobs.present.report`` renders it as Markdown.

Must not import typer, rich, textual or anything under ``aiobs.cli`` / ``aiobs.present``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from aiobs.analysis.export import select_traces
from aiobs.analysis.filters import TraceFilter
from aiobs.analysis.replay import load_trace

if TYPE_CHECKING:
    from aiobs.analysis.results import Report, TraceRow
    from aiobs.backend import Backend

DETAILED = 3  # traces the report shows whole: the first failed ones, else the first ones


def incident_report(store: Backend, filt: TraceFilter, limit: int | None = None) -> Report:
    """The traces ``filt`` selects (at most ``limit``, newest; as ``export`` selects them), in
    time order: ``selected`` (how many), ``traces`` (their ai_traces rows), ``failed`` (how
    many of them failed) and ``detailed`` (the replays of the first DETAILED failed traces, or
    of the first traces when none failed)."""
    selected = select_traces(store, filt, limit)
    rows = cast(
        "list[TraceRow]",
        store.records(
            "SELECT t.* FROM ai_traces t JOIN aiobs_export_ids USING (trace_id) ORDER BY t.start_time"
        ),
    )
    errors = [r for r in rows if r["status"] == "error"]
    detailed = [load_trace(store, r["trace_id"]) for r in (errors or rows)[:DETAILED]]
    return {"selected": selected, "traces": rows, "failed": len(errors), "detailed": detailed}
