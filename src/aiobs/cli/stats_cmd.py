"""``aiobs stats``: what is in the store, and how well it is instrumented. Its tables are
``present.tables.stats_sections``.

Must not import duckdb, polars, pyarrow, sqlglot or rich at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from aiobs.cli.context import OutputFormat, settings

if TYPE_CHECKING:
    pass


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
    from aiobs.cli.render import render_json, render_sections
    from aiobs.present.tables import STATS_TITLES, stats_sections

    s = settings(ctx)
    with s.open_backend() as store:
        result = store_stats(store)
    if fmt == OutputFormat.json:
        render_json(s, result)
        return
    # The cast says what store_stats returns (analysis/results.py) until the function says so.
    render_sections(s, fmt, stats_sections(result), STATS_TITLES)
