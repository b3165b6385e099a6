"""``aiobs scan``: incidents in a window — when each started, the likely cause, whom it hurt.
The text and Markdown renderings are ``aiobs.present.scan``'s.

Must not import duckdb, polars, pyarrow, sqlglot, httpx or rich at module level.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from aiobs.cli import options as o
from aiobs.cli.context import OutputFormat, settings
from aiobs.errors import ExitCode, UsageError

if TYPE_CHECKING:
    # run_scan returns dict[str, Any] until it is annotated; the casts below say what it is.
    pass


class Level(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


_RANK = {"info": 0, "warning": 1, "critical": 2}
# An explicit --bucket is not capped by the scan's own choice (400); beyond this the detectors'
# walk (a step a bucket) takes minutes.
MAX_EXPLICIT_BUCKETS = 5000


def register(app: typer.Typer) -> None:
    app.command("scan", help=scan.__doc__)(scan)


def scan(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Start of the window: 30m, 2h, 7d ago, an ISO time, or A..B (default 24h).",
        ),
    ] = None,
    until: o.Until = None,
    service: o.Service = None,
    model: o.Model = None,
    prompt_version: o.PromptVersion = None,
    where: o.Where = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Segments within each service, comma-separated: workflow, model, prompt_version, "
            "agent (default: the first three; tools are always scanned).",
        ),
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option("--bucket", help="Bucket width, e.g. 5m, 30m, 1h (default: by data density)."),
    ] = None,
    fail_on: Annotated[
        Level | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 when an incident at or above this severity is found (runbooks, cron, CI); "
            "judged before --min-severity trims the output.",
        ),
    ] = None,
    webhook: Annotated[
        list[str] | None,
        typer.Option(
            "--webhook",
            help="POST the incidents here (repeatable; Slack-compatible 'text'). Also "
            "[scan] webhooks = [...] in the config file.",
        ),
    ] = None,
    min_severity: Annotated[
        Level,
        typer.Option("--min-severity", help="Leave out incidents below this severity."),
    ] = Level.info,
    fmt: o.Format = OutputFormat.table,
) -> None:
    """Scan for anomalies and group them into incidents, most severe first: onset, likely cause, impact, a one-line insight."""
    from datetime import timedelta

    from aiobs.analysis.scan import scan as run_scan
    from aiobs.analysis.timewindow import parse_duration_ms

    s = settings(ctx)
    filt = o.trace_filter(
        since=since,
        until=until,
        service=service,
        model=model,
        prompt_version=prompt_version,
        where=where,
    )
    width = None
    if bucket is not None:
        ms = parse_duration_ms(bucket, option="--bucket")
        if ms < 60_000:
            raise UsageError("--bucket must be at least 1m")
        width = timedelta(milliseconds=ms)
    urls = [*(webhook or []), *s.config.scan_webhooks]
    for url in urls:
        from aiobs.cli.webhook import check_url, redact

        problem = check_url(url)
        if problem:
            raise UsageError(f"--webhook {redact(url)}: {problem}")
    if width is not None and filt.since is not None:
        from aiobs.analysis.timewindow import utcnow

        span = (filt.until or utcnow()) - filt.since
        if span / width > MAX_EXPLICIT_BUCKETS:
            raise UsageError(
                f"--bucket {bucket} makes {span / width:,.0f} buckets of the window",
                hint=f"at most {MAX_EXPLICIT_BUCKETS:,}: choose a wider bucket or a shorter window",
            )
    with s.open_backend() as store:
        result = run_scan(store, filt, by=by, bucket=width)
    # --fail-on judges every incident found; --min-severity only trims what is shown and sent.
    failed = fail_on is not None and any(
        _RANK[i["severity"]] >= _RANK[fail_on.value] for i in result["incidents"]
    )
    result["incidents"] = [
        i for i in result["incidents"] if _RANK[i["severity"]] >= _RANK[min_severity.value]
    ]
    incidents = result["incidents"]
    if fmt == OutputFormat.json:
        from aiobs.cli.render import render_json

        render_json(s, result)
    elif fmt == OutputFormat.markdown:
        from aiobs.present.scan import markdown

        s.data.write(markdown(result))
    elif fmt in (OutputFormat.jsonl, OutputFormat.csv):
        from aiobs.cli.render import render_sections, sections_of

        # The scan's counts, its window, then one row an incident (an empty scan still says
        # what it scanned).
        render_sections(s, fmt, sections_of(result, "scan"))
    else:
        from aiobs.present.scan import renderables

        for item in renderables(result):
            s.out.print(item)
        if not result["series_scanned"]:
            s.err.print(
                "[dim]note: no traces in this window — relative --since counts back from now "
                "(UTC); `aiobs stats` shows the time range in the store[/]",
                highlight=False,
            )
    if urls and incidents:
        from aiobs.cli.webhook import payload, post

        def warn(message: str) -> None:
            s.err.print(f"[yellow]warning:[/] {message}", highlight=False)

        post(urls, payload(result, incidents), warn=warn)
    if failed:
        raise typer.Exit(int(ExitCode.FINDINGS))
