"""``aiobs query``: read-only SQL over the store (one SELECT/WITH, DESCRIBE, SHOW or SUMMARIZE,
checked with sqlglot)."""

from __future__ import annotations

from typing import Annotated

import typer

from aiobs.cli.context import OutputFormat, settings


def register(app: typer.Typer) -> None:
    app.command("query", help=query.__doc__)(query)


def query(
    ctx: typer.Context,
    sql: Annotated[
        str,
        typer.Argument(
            help="One read: SELECT (or WITH, FROM, VALUES), DESCRIBE, SHOW or SUMMARIZE."
        ),
    ],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = (
        OutputFormat.table
    ),
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=0, help="Show at most this many rows; 0 shows only the columns."
        ),
    ] = None,
) -> None:
    """Run read-only SQL over the store: otel_* tables, ai_spans, ai_traces, aiobs_* bookkeeping."""
    from aiobs.analysis.query import run_query
    from aiobs.cli.render import render_rows

    s = settings(ctx)
    with s.open_backend() as store:
        columns, rows = run_query(store, sql, limit=limit)
    render_rows(s, fmt, columns, rows)
