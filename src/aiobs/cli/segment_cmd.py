"""``aiobs segment``: journey metrics per group (model, prompt version, release, tool…). The
columns a table shows and the sparkline are ``present.tables``'.

Must not import duckdb, polars, pyarrow or sqlglot at module level.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aiobs.cli import options as o
from aiobs.cli.context import OutputFormat, settings


def register(app: typer.Typer) -> None:
    app.command("segment", help=segment.__doc__)(segment)


def segment(
    ctx: typer.Context,
    by: Annotated[
        str,
        typer.Option(
            "--by",
            help="Fields to group by, comma-separated: model, prompt_version, service_version, "
            "tool_name, step_kind, workflow, … or attr['key'].",
        ),
    ],
    since: o.Since = None,
    until: o.Until = None,
    service: o.Service = None,
    model: o.Model = None,
    prompt_version: o.PromptVersion = None,
    status: o.Status = None,
    min_duration: o.MinDuration = None,
    user: o.User = None,
    where: o.Where = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            help="Metric to sort by (an evaluation's: eval.NAME_fail_rate); -metric for descending (default -traces).",
        ),
    ] = None,
    limit: o.Limit = 50,
    fmt: o.Format = OutputFormat.table,
) -> None:
    """Metrics per group: traces, error rate, latency percentiles, tokens, cost, tool errors, handoffs, user signals."""
    from aiobs.analysis.segment import METRICS, evaluation_columns
    from aiobs.analysis.segment import segment as run_segment
    from aiobs.cli.render import note_empty, render_rows

    s = settings(ctx)
    filt = o.trace_filter(
        since=since,
        until=until,
        service=service,
        model=model,
        prompt_version=prompt_version,
        status=status,
        min_duration=min_duration,
        user=user,
        where=where,
    )
    with s.open_backend() as store:
        names, rows = run_segment(store, filt, by, sort=sort, limit=limit)
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        render_rows(s, fmt, [*names, *METRICS, *evaluation_columns(rows), "sparkline"], rows)
        return
    from aiobs.present.tables import segment_columns, segment_rows

    drawn = segment_rows(rows)
    note_empty(s, fmt, drawn, "traces", since=since)
    render_rows(s, fmt, segment_columns(names, rows), drawn)
