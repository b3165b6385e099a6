"""``aiobs stats``: what is in the store, and how well it is instrumented."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aiobs.cli.context import OutputFormat, settings


def register(app: typer.Typer) -> None:
    app.command("stats", help=stats.__doc__)(stats)


def stats(
    ctx: typer.Context,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = (
        OutputFormat.table
    ),
) -> None:
    """What is in the store: counts, time range, services, models, and instrumentation coverage."""
    from aiobs.analysis.stats import store_stats
    from aiobs.cli.render import render_json, render_rows

    s = settings(ctx)
    with s.open_store() as store:
        result = store_stats(store)
    if fmt == OutputFormat.json:
        render_json(s, result)
        return
    sections: list[tuple[str, list[str], list[dict[str, Any]]]] = [
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
    for title, columns, rows in sections:
        if fmt == OutputFormat.jsonl:
            for row in rows:
                render_rows(s, fmt, columns, [{"section": title, **row}])
            continue
        render_rows(s, fmt, columns, rows, title=title)
