"""``aiobs ingest``: load OTLP exports (files, dirs, globs, stdin) into the store.

Must not import duckdb, pyarrow or the decoders at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from aiobs.cli.context import OutputFormat, settings
from aiobs.errors import ExitCode

if TYPE_CHECKING:
    from aiobs.ingest.pipeline import IngestSummary


def register(app: typer.Typer) -> None:
    app.command("ingest", help=ingest.__doc__)(ingest)


def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files, directories (recursive), globs, or - for stdin. "
            "OTLP JSON / JSON Lines / protobuf, .gz/.zst, Langfuse exports.",
            show_default=False,
        ),
    ],
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Exit 2, not 5, when some input was refused (all or nothing)."
        ),
    ] = False,
    redact: Annotated[
        bool | None,
        typer.Option(
            "--redact/--no-redact",
            help="Rewrite secrets (API keys, tokens, credential headers, card numbers) as"
            " [REDACTED:kind] and e-mails and phone numbers as stable pseudonyms before they"
            " are stored. Default: the config's [redact] enabled, else off.",
            envvar="AIOBS_REDACT",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Summary format.")
    ] = OutputFormat.table,
) -> None:
    """Load exported OpenTelemetry telemetry into the store (idempotent; one transaction per file).

    Exit 0 when everything landed, 5 when some landed and some was refused (records, files), 2
    when nothing landed; each file's outcome and its top reasons are on stderr.
    """
    from aiobs.ingest.pipeline import ingest_paths
    from aiobs.ingest.redact import redact_config

    s = settings(ctx)
    s.refuse_backend()
    # Read once here; ingest gets the tables (its [redact] among them), never the file.
    config = dict(s.config.tables)
    # Checked before the store is touched; not read at all under --no-redact.
    redacting = False if redact is False else (redact_config(config)[0] or bool(redact))
    import pyarrow as pa

    # A process-wide choice, so it is made here, not in the library: the system allocator hands
    # freed Arrow block buffers back to the OS; Arrow's default pool keeps them (bench/ingest.py,
    # 1M spans: peak RSS 1.55 GB -> 1.37 GB, same speed).
    pa.set_memory_pool(pa.system_memory_pool())
    store = s.open_store(read_only=False, create=True)
    show_progress = s.stderr_is_tty and not s.quiet
    try:
        if show_progress:
            summary = _ingest_with_progress(s, store, paths, redacting, config)
        else:
            summary = ingest_paths(store, paths, redact=redacting, config=config)
    finally:
        store.close()
    _report(s, summary, fmt)
    if summary.outcome == "nothing" or (strict and summary.outcome == "partial"):
        raise typer.Exit(int(ExitCode.USAGE))
    if summary.outcome == "partial":
        raise typer.Exit(int(ExitCode.PARTIAL))


def _ingest_with_progress(
    s: Any, store: Any, paths: list[str], redact: bool, config: dict[str, Any]
) -> IngestSummary:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    from aiobs.ingest.pipeline import ingest_paths

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[records]:,} records ({task.fields[rate]:,.0f}/s)"),
        TimeElapsedColumn(),
        console=s.err,
        transient=False,
    )
    state: dict[str, Any] = {}

    def on_file_start(inp: Any, size: int | None) -> None:
        import time

        from rich.markup import escape

        state["task"] = progress.add_task(escape(inp.name), total=size, records=0, rate=0.0)
        state["t0"] = time.perf_counter()

    def on_progress(done: int, records: int) -> None:
        import time

        elapsed = max(time.perf_counter() - state["t0"], 1e-6)
        progress.update(state["task"], completed=done, records=records, rate=records / elapsed)

    with progress:
        return ingest_paths(
            store,
            paths,
            progress=on_progress,
            on_file_start=on_file_start,
            redact=redact,
            config=config,
        )


# Past this many files, the ones that landed whole are counted, not listed.
LISTED_FILES = 10


def _report(s: Any, summary: IngestSummary, fmt: OutputFormat) -> None:
    from aiobs.cli.render import render_json, render_rows

    def say(line: str) -> None:
        s.err.print(f"aiobs: {line}", markup=False, highlight=False)

    filed = {f.error for f in summary.per_file if f.error}
    for message in summary.errors:
        if message not in filed:
            say(message)  # an argument that named no file
    if not s.quiet:
        for line in file_lines(summary):
            say(line)
        if summary.rejected:
            say('ingest: each refused record: aiobs query "select * from aiobs_rejects"')
    data = summary.to_dict()
    if fmt == OutputFormat.json:
        render_json(s, data)
        return
    columns = [
        "files",
        "spans",
        "log_records",
        "metric_points",
        "duplicates",
        "rejected",
        *(["redacted"] if summary.redacted is not None else []),
        "seconds",
    ]
    render_rows(s, fmt, columns, [data], title=None if fmt != OutputFormat.table else "ingested")


def file_lines(summary: IngestSummary) -> list[str]:
    """What happened to each file, for stderr: what it was read as, what landed, what was
    refused and the commonest reasons; then what a directory held that was passed over."""
    from aiobs.units import num, plural

    lines: list[str] = []
    whole = sum(f.outcome == "landed" for f in summary.per_file)
    list_whole = len(summary.per_file) <= LISTED_FILES
    for f in summary.per_file:
        if f.outcome == "landed" and not list_whole:
            continue
        if f.error and not f.rejected:
            lines.append(f"ingest: {f.error}")
            continue
        landed = [
            plural(n, what)
            for n, what in (
                (f.spans, "span"),
                (f.log_records, "log record"),
                (f.metric_points, "metric point"),
            )
            if n
        ]
        if f.duplicates:
            landed.append(plural(f.duplicates, "duplicate"))  # in the store or the file already
        said = f"ingest: {f.source} as {f.format or 'unreadable'}: " + (
            ", ".join(landed) if landed else "nothing landed"
        )
        if f.rejected:
            reasons = ", ".join(f"{_short(reason)} ({num(n)})" for reason, n in f.top_reasons())
            more = len(f.reasons) - len(f.top_reasons())
            said += f"; {plural(f.rejected, 'record')} refused: {reasons}"
            if more > 0:
                said += f" and {plural(more, 'other reason')}"
        lines.append(said)
    if whole and not list_whole:
        lines.append(f"ingest: {plural(whole, 'other file')} landed whole")
    if summary.skipped:
        shown = ", ".join(f"{k.path} ({k.reason})" for k in summary.skipped[:LISTED_FILES])
        more = len(summary.skipped) - LISTED_FILES
        lines.append(
            f"ingest: skipped {plural(len(summary.skipped), 'file')}: {shown}"
            + (f" and {num(more)} more" if more > 0 else "")
        )
    return lines


def _short(reason: str, limit: int = 100) -> str:
    """A reason as one line shows it (aiobs_rejects keeps it whole)."""
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"
