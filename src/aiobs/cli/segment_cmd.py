"""``aiobs segment``: journey metrics per group (model, prompt version, release, tool…).

Must not import duckdb, polars, pyarrow or sqlglot at module level.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aiobs.cli import browse_cmd as b
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
    since: b.Since = None,
    until: b.Until = None,
    service: b.Service = None,
    model: b.Model = None,
    prompt_version: b.PromptVersion = None,
    status: b.Status = None,
    min_duration: b.MinDuration = None,
    user: b.User = None,
    where: b.Where = None,
    sort: Annotated[
        str | None,
        typer.Option("--sort", help="Metric to sort by; -metric for descending (default -traces)."),
    ] = None,
    limit: b.Limit = 50,
    fmt: b.Format = OutputFormat.table,
) -> None:
    """Metrics per group: traces, error rate, latency percentiles, tokens, cost, tool errors, handoffs, user signals."""
    from aiobs.analysis.segment import METRICS, sparkline
    from aiobs.analysis.segment import segment as run_segment
    from aiobs.cli.render import render_rows

    s = settings(ctx)
    filt = b.trace_filter(
        since, until, service, model, prompt_version, status, min_duration, None, user, where
    )
    with s.open_store() as store:
        names, rows = run_segment(store, filt, by, sort=sort, limit=limit)
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        render_rows(s, fmt, [*names, *METRICS, "sparkline"], rows)
        return
    for row in rows:
        row["sparkline"] = sparkline(row["sparkline"])
    columns = [*names, *(TABLE_METRICS if fmt == OutputFormat.table else (*METRICS, "sparkline"))]
    b.note_empty(s, fmt, rows, "traces")
    render_rows(s, fmt, columns, rows)
