"""``aiobs scan``: incidents in a window — when each started, the likely cause, whom it hurt.

Must not import duckdb, polars, pyarrow, sqlglot or httpx at module level.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from aiobs.cli import options as o
from aiobs.cli.context import OutputFormat, Settings, settings
from aiobs.errors import ExitCode, UsageError


class Level(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


_RANK = {"info": 0, "warning": 1, "critical": 2}
# An explicit --bucket is not capped by the scan's own choice (400); beyond this the detectors'
# walk (a step a bucket) takes minutes.
MAX_EXPLICIT_BUCKETS = 5000
MD_ANOMALIES = 12  # rows of an incident's anomaly table in the Markdown report
_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}

INCIDENT_COLUMNS = [
    "id", "severity", "start", "end", "segment", "summary", "likely_causes", "impact", "examples",
]  # fmt: skip


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
    from datetime import UTC, datetime, timedelta

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
    urls = [*(webhook or []), *_configured_webhooks()]
    for url in urls:
        from aiobs.cli.webhook import check_url, redact

        problem = check_url(url)
        if problem:
            raise UsageError(f"--webhook {redact(url)}: {problem}")
    if width is not None and filt.since is not None:
        span = (filt.until or datetime.now(UTC).replace(tzinfo=None)) - filt.since
        if span / width > MAX_EXPLICIT_BUCKETS:
            raise UsageError(
                f"--bucket {bucket} makes {span / width:,.0f} buckets of the window",
                hint=f"at most {MAX_EXPLICIT_BUCKETS:,}: choose a wider bucket or a shorter window",
            )
    with s.open_store() as store:
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
        s.out.file.write(_markdown(result))
    elif fmt in (OutputFormat.jsonl, OutputFormat.csv):
        from aiobs.cli.render import render_rows

        render_rows(s, fmt, INCIDENT_COLUMNS, incidents, title="incidents")
    else:
        _text(s, result)
    if urls and incidents:
        from aiobs.cli.webhook import payload, post

        def warn(message: str) -> None:
            s.err.print(f"[yellow]warning:[/] {message}", highlight=False)

        post(urls, payload(result, incidents), warn=warn)
    if failed:
        raise typer.Exit(int(ExitCode.FINDINGS))


def _configured_webhooks() -> list[str]:
    from aiobs.config import load_config

    hooks = load_config().get("scan", {}).get("webhooks", [])
    if not isinstance(hooks, list) or not all(isinstance(h, str) for h in hooks):
        raise UsageError("config [scan] webhooks must be a list of URLs")
    return hooks


def _text(s: Settings, r: dict[str, Any]) -> None:
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from aiobs.analysis.incidents import label
    from aiobs.cli.safe import inert

    out = s.out
    w = r["window"]
    out.print(
        Text(
            f"scanned {w['since']:%Y-%m-%d %H:%M} .. {w['until']:%Y-%m-%d %H:%M} UTC in "
            f"{w['bucket_minutes']:g}-minute buckets: {r['series_scanned']} series, "
            f"{len(r['incidents'])} incident(s)",
            style="dim",
        )
    )
    for inc in r["incidents"]:
        out.print()
        end = "ongoing" if inc["end"] is None else f"{inc['end']:%Y-%m-%d %H:%M}"
        out.print(
            Text.assemble(
                (f"{inc['severity'].upper():<9}", _STYLE[inc["severity"]]),
                (inert(inc["id"]), "bold"),
                f"  {inc['start']:%Y-%m-%d %H:%M} → {end}",
            )
        )
        out.print(Padding(Text(inert(inc["summary"])), (0, 0, 0, 2)))
        table = Table(box=None, show_header=True, header_style="dim", padding=(0, 1))
        for col in ("anomaly", "segment", "expected", "observed", "z", "from"):
            table.add_column(
                col, justify="right" if col in ("expected", "observed", "z") else "left"
            )
        for a in inc["anomalies"][:6]:
            seg = ", ".join(f"{k}={v}" for k, v in a["segment"].items())
            table.add_row(
                Text(inert(label(a["metric"]))), Text(inert(seg)), f"{a['expected']:.4g}",
                f"{a['observed']:.4g}",
                f"{a['score']:.1f}", f"{a['onset']:%m-%d %H:%M} {a['kind']}",
            )  # fmt: skip
        out.print(Padding(table, (0, 0, 0, 2)))
        if inc["likely_causes"]:
            out.print(Padding(Text("likely causes", style="bold"), (0, 0, 0, 2)))
            for c in inc["likely_causes"][:3]:
                out.print(
                    Padding(
                        Text.assemble(
                            (f"{c['confidence']:.2f} ", "dim"),
                            (f"{c['kind']}: ", "bold"),
                            inert(c["description"]),
                            ("  — " + inert("; ".join(c["evidence"])), "dim"),
                        ),
                        (0, 0, 0, 4),
                    )
                )
        if inc["examples"]:
            out.print(
                Padding(
                    Text.assemble(("replay: ", "dim"), f"aiobs replay {inc['examples'][0]}"),
                    (0, 0, 0, 2),
                )
            )
    if not r["incidents"]:
        out.print(Text("no incidents", style="green"))
    if not r["series_scanned"]:
        s.err.print(
            "[dim]note: no traces in this window — relative --since counts back from now (UTC); "
            "`aiobs stats` shows the time range in the store[/]",
            highlight=False,
        )


def _markdown(r: dict[str, Any]) -> str:
    """An incident report: per incident its insight, anomalies, causes, impact and replays."""
    from aiobs.analysis.incidents import label
    from aiobs.cli.render import markdown_table, md_cell

    w = r["window"]
    lines = [
        f"# aiobs scan — {w['since']:%Y-%m-%d %H:%M} .. {w['until']:%Y-%m-%d %H:%M} UTC",
        "",
        f"{len(r['incidents'])} incident(s); {r['series_scanned']} series in "
        f"{w['bucket_minutes']:g}-minute buckets.",
    ]
    for n, inc in enumerate(r["incidents"], 1):
        end = "ongoing" if inc["end"] is None else f"{inc['end']:%Y-%m-%d %H:%M} UTC"
        seg = ", ".join(f"{k} {v}" for k, v in inc["segment"].items())
        lines += [
            "",
            f"## {n}. {inc['severity'].upper()} — {md_cell(inc['id'])}",
            "",
            f"**{inc['start']:%Y-%m-%d %H:%M} UTC → {end}** · {md_cell(seg)}",
            "",
            md_cell(inc["summary"]),
            "",
        ]
        rows = [
            {
                "anomaly": label(a["metric"]),
                "segment": ", ".join(f"{k}={v}" for k, v in a["segment"].items()),
                "expected": f"{a['expected']:.4g}",
                "observed": f"{a['observed']:.4g}",
                "z": f"{a['score']:.1f}",
                "from": f"{a['onset']:%m-%d %H:%M}",
                "kind": a["kind"],
            }
            for a in inc["anomalies"][:MD_ANOMALIES]
        ]
        lines.append(markdown_table(list(rows[0]), rows) if rows else "")
        if len(inc["anomalies"]) > MD_ANOMALIES:
            more = len(inc["anomalies"]) - MD_ANOMALIES
            lines += [f"… and {more} more anomalies (`-f json` has them all).", ""]
        if inc["likely_causes"]:
            lines.append("**Likely causes**")
            lines.append("")
            for i, c in enumerate(inc["likely_causes"], 1):
                evidence = "; ".join(c["evidence"])
                lines.append(
                    f"{i}. ({c['confidence']:.2f}) {c['kind']}: {md_cell(c['description'])}"
                    f" — {md_cell(evidence)}"
                )
            lines.append("")
        imp = inc["impact"]
        signals = ", ".join(
            f"{label(name)} {s['during'] * 100:.1f}% (normal {s['normal'] * 100:.1f}%)"
            for name, s in imp["signals"].items()
            if s["during"] is not None and s["normal"] is not None
        )
        cost = imp.get("extra_cost_usd")
        lines.append(
            f"**Impact**: {imp['traces']:,} traces, {imp['sessions']:,} sessions, "
            f"{imp['users']:,} users" + (f"; {signals}" if signals else "")
            + (f"; extra cost ${cost:,.2f}" if cost else "") + "."
        )  # fmt: skip
        if inc["examples"]:
            lines += [
                "",
                "**Replay**: " + ", ".join(f"`aiobs replay {t}`" for t in inc["examples"]),
            ]
    return "\n".join(lines) + "\n"
