"""``aiobs traces`` and ``aiobs sessions``: find journeys by time, service, model, status, user…

Must not import duckdb, polars, pyarrow or sqlglot at module level.
"""

from __future__ import annotations

import typer

from aiobs.cli.context import TABLE_MODULES, OutputFormat, preload, settings
from aiobs.cli.options import (
    Format,
    Limit,
    MinDuration,
    Model,
    PromptVersion,
    Service,
    Session,
    Since,
    Sort,
    Status,
    Until,
    User,
    Where,
    trace_filter,
)


def register(app: typer.Typer) -> None:
    app.command("traces", help=traces.__doc__)(traces)
    app.command("sessions", help=sessions.__doc__)(sessions)


def traces(
    ctx: typer.Context,
    since: Since = None,
    until: Until = None,
    service: Service = None,
    model: Model = None,
    prompt_version: PromptVersion = None,
    status: Status = None,
    min_duration: MinDuration = None,
    session: Session = None,
    user: User = None,
    where: Where = None,
    sort: Sort = None,
    limit: Limit = 50,
    fmt: Format = OutputFormat.table,
) -> None:
    """List traces (newest first) with filters; JSON is a list of ai_traces objects."""
    from aiobs.analysis.browse import list_traces
    from aiobs.cli.render import note_empty, render_rows
    from aiobs.present.tables import TRACE_TABLE
    from aiobs.semantic.views import AI_TRACES_COLUMNS

    s = settings(ctx)
    filt = trace_filter(
        since=since,
        until=until,
        service=service,
        model=model,
        prompt_version=prompt_version,
        status=status,
        min_duration=min_duration,
        session=session,
        user=user,
        where=where,
    )
    if fmt == OutputFormat.table:
        preload(*TABLE_MODULES)
    with s.open_backend() as store:
        rows = list_traces(store, filt, sort=sort, limit=limit)
    wide = fmt in (OutputFormat.json, OutputFormat.jsonl, OutputFormat.csv)
    note_empty(s, fmt, rows, "traces", since=since)
    render_rows(s, fmt, AI_TRACES_COLUMNS if wide else TRACE_TABLE, rows)


def sessions(
    ctx: typer.Context,
    since: Since = None,
    until: Until = None,
    service: Service = None,
    model: Model = None,
    prompt_version: PromptVersion = None,
    status: Status = None,
    min_duration: MinDuration = None,
    user: User = None,
    where: Where = None,
    sort: Sort = None,
    limit: Limit = 50,
    fmt: Format = OutputFormat.table,
) -> None:
    """List sessions (conversations) with their traces, errors, cost and user signals."""
    from aiobs.analysis.browse import SESSION_COLUMNS, list_sessions
    from aiobs.cli.render import note_empty, render_rows
    from aiobs.present.tables import SESSION_TABLE

    s = settings(ctx)
    filt = trace_filter(
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
    if fmt == OutputFormat.table:
        preload(*TABLE_MODULES)
    with s.open_backend() as store:
        rows = list_sessions(store, filt, sort=sort, limit=limit)
    wide = fmt in (OutputFormat.json, OutputFormat.jsonl, OutputFormat.csv)
    note_empty(s, fmt, rows, "sessions", since=since)
    render_rows(s, fmt, SESSION_COLUMNS if wide else SESSION_TABLE, rows)
