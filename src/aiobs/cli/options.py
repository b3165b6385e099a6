"""The options every command that selects traces shares, declared once, and the filter they make.

``Since``, ``Service``, ``Where`` … are typer option types: a command declares
``since: Since = None`` and gets the same flag, help text and parsing as every other. ``trace_filter``
turns their values into the analysis layer's ``TraceFilter``.

Must not import duckdb, polars, pyarrow or sqlglot at module level (``aiobs --help`` loads it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from aiobs.cli.context import OutputFormat

if TYPE_CHECKING:
    from aiobs.analysis.filters import TraceFilter

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


def trace_filter(
    *,
    since: str | None = None,
    until: str | None = None,
    service: list[str] | None = None,
    model: list[str] | None = None,
    prompt_version: list[str] | None = None,
    status: str | None = None,
    min_duration: str | None = None,
    session: str | None = None,
    user: str | None = None,
    where: str | None = None,
) -> TraceFilter:
    """The ``TraceFilter`` of the shared options, under the options' own names."""
    from aiobs.analysis.filters import TraceFilter

    return TraceFilter.from_options(
        since=since,
        until=until,
        services=service,
        models=model,
        prompt_versions=prompt_version,
        status=status,
        min_duration=min_duration,
        session=session,
        user=user,
        where=where,
    )
