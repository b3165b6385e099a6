"""``aiobs describe`` and ``aiobs export``: a trace for a ticket; a selection for elsewhere.
The Markdown report is ``analysis.report``'s data rendered by ``present.report``.

Must not import duckdb, polars, pyarrow or sqlglot at module level.
"""

from __future__ import annotations

import contextlib
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from aiobs.cli import options as o
from aiobs.cli.context import TextFormat, settings
from aiobs.errors import UsageError


class ExportFormat(StrEnum):
    otlp_json = "otlp-json"
    parquet = "parquet"
    markdown = "markdown"
    dataset = "dataset"


def register(app: typer.Typer) -> None:
    app.command("describe", help=describe.__doc__)(describe)
    app.command("export", help=export.__doc__)(export)


def describe(
    ctx: typer.Context,
    trace: Annotated[str, typer.Argument(help="Trace id or a unique prefix.", show_default=False)],
    max_tokens: Annotated[
        int,
        typer.Option(
            "--max-tokens", min=50, help="Budget for the summary (≈ 4 characters a token)."
        ),
    ] = 800,
    fmt: Annotated[
        TextFormat,
        typer.Option("--format", "-f", help="text, or json: {trace_id, max_tokens, text}."),
    ] = TextFormat.text,
) -> None:
    """A compact plain-text summary of one trace, for a ticket or a coding agent."""
    from aiobs.analysis.replay import load_trace, resolve_trace_id
    from aiobs.present.describe import describe as summarise
    from aiobs.present.safe import inert

    s = settings(ctx)
    with s.open_backend() as store:
        data = load_trace(store, resolve_trace_id(store, trace))
    text = summarise(data, max_tokens)
    if fmt == TextFormat.json:
        from aiobs.cli.render import render_json

        trace_id = data["trace"]["trace_id"]
        render_json(s, {"trace_id": trace_id, "max_tokens": max_tokens, "text": text})
        return
    s.data.write(inert(text, keep_newlines=True))


def export(
    ctx: typer.Context,
    to: Annotated[
        ExportFormat,
        typer.Option(
            "--to",
            help="otlp-json (JSON Lines), parquet (a directory), markdown, dataset (the LLM"
            " answers as JSON Lines: input, output, context, tool results, evaluations).",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="File (otlp-json, markdown, dataset; - for stdout) or directory (parquet).",
        ),
    ],
    since: o.Since = None,
    until: o.Until = None,
    service: o.Service = None,
    model: o.Model = None,
    prompt_version: o.PromptVersion = None,
    status: o.Status = None,
    min_duration: o.MinDuration = None,
    session: o.Session = None,
    user: o.User = None,
    where: o.Where = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="At most this many traces (newest).")
    ] = None,
    evaluation: Annotated[
        str | None,
        typer.Option(
            "--eval",
            help="With --to dataset: only the answers this evaluation failed (NAME), or gave"
            " this label (NAME=pass).",
        ),
    ] = None,
) -> None:
    """Export the selected traces (default: all) as OTLP JSON Lines, Parquet tables, a Markdown report, or a dataset of their LLM answers."""
    from aiobs.analysis.export import export_otlp, export_parquet, select_traces
    from aiobs.units import plural

    s = settings(ctx)
    filt = o.trace_filter(
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
    to_stdout = str(out) == "-"
    if to_stdout and to == ExportFormat.parquet:
        raise UsageError(
            "--to parquet writes a directory of files; --out - (stdout) cannot hold it"
        )
    if to != ExportFormat.parquet and not to_stdout and out.is_dir():
        raise UsageError(f"--out {out} is a directory; --to {to.value} writes a file")
    if evaluation is not None and to != ExportFormat.dataset:
        raise UsageError("--eval selects answers of a dataset: use it with --to dataset")
    everything = filt.is_empty and not limit
    where_to = "stdout" if to_stdout else str(out)
    with s.open_backend() as store:
        if to == ExportFormat.dataset:
            note = _dataset(s, store, filt, evaluation, out, to_stdout, limit)
            note += f" → {where_to}"
        elif to == ExportFormat.markdown:
            from aiobs.analysis.report import incident_report
            from aiobs.present.report import markdown_report

            report = incident_report(store, filt, limit)
            if to_stdout:
                s.data.write(markdown_report(report))
            else:
                out.write_text(markdown_report(report), encoding="utf-8")
            note = f"{plural(report['selected'], 'trace')} → {where_to}"
        elif to == ExportFormat.otlp_json:
            selected = select_traces(store, filt, limit)
            counts = export_otlp(store, sys.stdout.buffer if to_stdout else out)
            note = f"{plural(selected, 'trace')} → {where_to} ({plural(counts['span_lines'], 'span line')}, {plural(counts['log_lines'], 'log line')})"
        else:
            selected = select_traces(store, filt, limit)
            tables = export_parquet(store, out, everything=everything)
            note = (
                f"{plural(selected, 'trace')} → {out}/ ("
                + ", ".join(f"{k} {v}" for k, v in tables.items() if v)
                + ")"
            )
    if not s.quiet:
        s.err.print(f"exported {note}", highlight=False, markup=False)


def _dataset(
    s: Any,
    store: Any,
    filt: Any,
    evaluation: str | None,
    out: Path,
    to_stdout: bool,
    limit: int | None,
) -> str:
    """Write the dataset; what was written, for the note on stderr."""
    from aiobs.analysis.filters import TraceFilter
    from aiobs.cli.render import json_text
    from aiobs.evals.dataset import dataset_rows
    from aiobs.units import plural

    name, _, label = (evaluation or "").partition("=")
    if limit:  # the newest traces the filter selects, as for the other targets
        from aiobs.analysis.browse import list_traces
        from aiobs.analysis.where import parse_where

        ids = [r["trace_id"] for r in list_traces(store, filt, limit=limit)]
        quoted = ", ".join("'" + i.replace("'", "''") + "'" for i in ids) or "''"
        filt = TraceFilter(where=parse_where(f"trace_id in ({quoted})"))
    rows = dataset_rows(store, filt, name or None, label or "fail")
    n = 0
    with (
        contextlib.nullcontext(sys.stdout) if to_stdout else out.open("w", encoding="utf-8")
    ) as stream:
        for row in rows:
            stream.write(json_text(row) + "\n")
            n += 1
    return plural(n, "answer") + (f" that {name} gave {label or 'fail'}" if name else "")
