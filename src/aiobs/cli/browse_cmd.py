"""``aiobs traces`` and ``aiobs sessions``: find journeys by time, service, model, status, user…

Must not import duckdb, polars, pyarrow or sqlglot at module level.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aiobs.cli.context import TABLE_MODULES, OutputFormat, preload, settings

TRACE_TABLE = (
    "trace_id", "start_time", "duration_ms", "service_name", "root_name", "status",
    "llm_calls", "tool_calls", "input_tokens", "output_tokens", "cost_usd", "models", "user_id",
)  # fmt: skip
SESSION_TABLE = (
    "session_id", "user_id", "start_time", "duration_ms", "traces", "errors", "models",
    "cost_usd", "thumbs_down", "retries", "abandoned", "resolved", "csat",
)  # fmt: skip

Since = Annotated[
    str | None,
    typer.Option("--since", help="Start: 30m, 2h, 7d ago, an ISO time, or a window A..B."),
]
Until = Annotated[str | None, typer.Option("--until", help="End: relative or ISO time.")]
Service = Annotated[list[str] | None, typer.Option("--service", help="Service name (repeatable).")]
Model = Annotated[
    list[str] | None,
    typer.Option(
        "--model", help="Model of an LLM call (repeatable); gpt-4.1 also finds its dated versions."
    ),
]
PromptVersion = Annotated[
    list[str] | None, typer.Option("--prompt-version", help="Prompt version (repeatable).")
]
Status = Annotated[str | None, typer.Option("--status", help="ok or error.")]
MinDuration = Annotated[
    str | None,
    typer.Option("--min-duration", help="Only traces at least this long: 500ms, 2s, 1m."),
]
Session = Annotated[str | None, typer.Option("--session", help="Session / conversation id.")]
User = Annotated[str | None, typer.Option("--user", help="End-user id.")]
Where = Annotated[
    str | None,
    typer.Option(
        "--where",
        help="SQL condition over trace fields, span fields and attr['key'], e.g. "
        "\"status = 'error' and tool_name = 'lookup_charge_v1'\". A span field's condition holds "
        "when some span of the trace meets it, and and/or/not combine them per trace; "
        "span(…) asks for one span that meets everything inside: "
        "\"span(tool_name = 'lookup_charge_v1' and status = 'error')\".",
    ),
]
Sort = Annotated[
    str | None,
    typer.Option("--sort", help="Column to sort by; -column for descending (default -start_time)."),
]
Limit = Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many rows.")]
Format = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]


def register(app: typer.Typer) -> None:
    app.command("traces", help=traces.__doc__)(traces)
    app.command("sessions", help=sessions.__doc__)(sessions)


def trace_filter(
    since: str | None, until: str | None, service: list[str] | None, model: list[str] | None,
    prompt_version: list[str] | None, status: str | None, min_duration: str | None,
    session: str | None, user: str | None, where: str | None,
) -> Any:  # fmt: skip
    from aiobs.analysis.browse import TraceFilter
    from aiobs.analysis.timewindow import parse_duration_ms, parse_window
    from aiobs.analysis.where import parse_where

    start, end = parse_window(since, until)
    return TraceFilter(
        since=start,
        until=end,
        services=service or [],
        models=model or [],
        prompt_versions=prompt_version or [],
        status=status.lower() if status else None,
        min_duration_ms=parse_duration_ms(min_duration, option="--min-duration")
        if min_duration
        else None,
        session=session,
        user=user,
        where=parse_where(where) if where is not None else None,
    )


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
    from aiobs.cli.render import render_rows
    from aiobs.semantic.views import AI_TRACES_COLUMNS

    s = settings(ctx)
    filt = trace_filter(
        since, until, service, model, prompt_version, status, min_duration, session, user, where
    )
    if fmt == OutputFormat.table:
        preload(*TABLE_MODULES)
    with s.open_store() as store:
        rows = list_traces(store, filt, sort=sort, limit=limit)
    wide = fmt in (OutputFormat.json, OutputFormat.jsonl, OutputFormat.csv)
    note_empty(s, fmt, rows, "traces")
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
    from aiobs.cli.render import render_rows

    s = settings(ctx)
    filt = trace_filter(
        since, until, service, model, prompt_version, status, min_duration, None, user, where
    )
    if fmt == OutputFormat.table:
        preload(*TABLE_MODULES)
    with s.open_store() as store:
        rows = list_sessions(store, filt, sort=sort, limit=limit)
    wide = fmt in (OutputFormat.json, OutputFormat.jsonl, OutputFormat.csv)
    note_empty(s, fmt, rows, "sessions")
    render_rows(s, fmt, SESSION_COLUMNS if wide else SESSION_TABLE, rows)


def note_empty(s: Any, fmt: OutputFormat, rows: list[Any], what: str) -> None:
    if not rows and fmt == OutputFormat.table and not s.quiet:
        s.err.print(f"no {what} match (times are UTC; --since is relative to now)")
