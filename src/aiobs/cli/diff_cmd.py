"""``aiobs diff``: two windows or two filters compared — metric deltas with significance, and the
fields and values that explain the change. The text rendering is ``aiobs.present.diff``'s.

Must not import duckdb, polars, pyarrow, sqlglot or rich at module level.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from aiobs.cli import options as o
from aiobs.cli.context import OutputFormat, settings
from aiobs.errors import ExitCode

if TYPE_CHECKING:
    pass


class FailOn(StrEnum):
    regression = "regression"


def register(app: typer.Typer) -> None:
    app.command("diff", help=diff.__doc__)(diff)


def diff(
    ctx: typer.Context,
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            help="A window A..B (ISO or relative ends) or a filter such as \"prompt_version = 'v6'\".",
        ),
    ],
    target: Annotated[
        str, typer.Option("--target", help="The window or filter to compare with the baseline.")
    ],
    since: o.Since = None,
    until: o.Until = None,
    service: o.Service = None,
    model: o.Model = None,
    prompt_version: o.PromptVersion = None,
    status: o.Status = None,
    min_duration: o.MinDuration = None,
    user: o.User = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="A condition both sides must also meet (same language as traces --where).",
        ),
    ] = None,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on", help="Exit 1 when the target has a significant regression (for CI gates)."
        ),
    ] = None,
    min_change: Annotated[
        float,
        typer.Option(
            "--min-change",
            min=0.0,
            help="Smallest relative change that counts as a regression (0.05 = 5%).",
        ),
    ] = 0.05,
    top: Annotated[
        int, typer.Option("--top", min=1, help="How many explaining factors to list.")
    ] = 15,
    fmt: o.Format = OutputFormat.table,
) -> None:
    """Compare a baseline with a target: metric deltas with confidence intervals and p-values, and the factors that explain them."""
    from aiobs.analysis.diff import diff as run_diff

    s = settings(ctx)
    base = o.trace_filter(
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
        result = run_diff(store, base, baseline, target, min_change=min_change, top=top)
    if fmt == OutputFormat.json:
        from aiobs.cli.render import render_json

        render_json(s, result)
    elif fmt == OutputFormat.markdown:
        from aiobs.present.diff import markdown

        s.data.write(markdown(result))
    elif fmt in (OutputFormat.jsonl, OutputFormat.csv):
        from aiobs.cli.render import render_sections
        from aiobs.present.diff import sections

        render_sections(s, fmt, sections(result))
    else:
        from aiobs.present.diff import renderables

        # The cast says what diff returns (analysis/results.py) until the function says so.
        for item in renderables(result):
            s.out.print(item)
    if fail_on == FailOn.regression and any(m["regression"] for m in result["metrics"]):
        raise typer.Exit(int(ExitCode.FINDINGS))
