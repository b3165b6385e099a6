"""``aiobs segment``: journey metrics per group (model, prompt version, release, tool…).

Must not import duckdb, polars, pyarrow or sqlglot at module level.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aiobs.cli import options as o
from aiobs.cli.context import OutputFormat, settings

TABLE_METRICS = (
    "traces", "error_rate", "p50_ms", "p95_ms", "tokens_per_trace", "cost_per_trace",
    "tool_error_rate", "handoff_rate", "thumbs_down_rate", "abandonment_rate", "sparkline",
)  # fmt: skip


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
        typer.Option("--sort", help="Metric to sort by; -metric for descending (default -traces)."),
    ] = None,
    limit: o.Limit = 50,
    fmt: o.Format = OutputFormat.table,
) -> None:
    """Metrics per group: traces, error rate, latency percentiles, tokens, cost, tool errors, handoffs, user signals."""
    from aiobs.analysis.segment import METRICS, sparkline
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
    with s.open_store() as store:
        names, rows = run_segment(store, filt, by, sort=sort, limit=limit)
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        render_rows(s, fmt, [*names, *METRICS, "sparkline"], rows)
        return
    for row in rows:
        row["sparkline"] = sparkline(row["sparkline"])
    columns = [*names, *(TABLE_METRICS if fmt == OutputFormat.table else (*METRICS, "sparkline"))]
    note_empty(s, fmt, rows, "traces")
    render_rows(s, fmt, columns, rows)
