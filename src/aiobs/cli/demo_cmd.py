"""``aiobs demo``: build the demo world into the store and print a guided tour (rendered by
``present.demo``).

Must not import duckdb, pyarrow or the generator at module level.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from aiobs.cli.context import Settings, SummaryFormat, settings
from aiobs.errors import UsageError


def register(app: typer.Typer) -> None:
    app.command("demo", help=demo.__doc__)(demo)


def _parse_end(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--end {value!r}: expected an ISO time like 2026-11-15T00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def demo(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Also write the raw telemetry (OTLP JSON Lines, one file a day) and manifest.json here.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same world.")] = 7,
    days: Annotated[
        int, typer.Option("--days", min=1, max=90, help="How many days of telemetry.")
    ] = 7,
    scale: Annotated[
        float,
        typer.Option(
            "--scale",
            min=0.001,
            max=100.0,
            help="Traffic multiplier (1 = a few thousand traces a day).",
        ),
    ] = 1.0,
    end: Annotated[
        str | None,
        typer.Option("--end", help="When the world ends (ISO, UTC). Default: the current hour."),
    ] = None,
    incidents: Annotated[
        bool,
        typer.Option(
            "--incidents/--no-incidents",
            help="Plant the incidents, or build the same world without them (a clean baseline).",
        ),
    ] = True,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace the store even if it holds other telemetry."),
    ] = False,
    fmt: Annotated[
        SummaryFormat, typer.Option("--format", "-f", help="Summary format: the tour, or JSON.")
    ] = SummaryFormat.table,
) -> None:
    """Build the demo world (a week of a support assistant's telemetry, incidents planted) and print a tour."""
    from aiobs.demo.build import build_demo
    from aiobs.demo.world import WorldConfig, default_end

    s = settings(ctx)
    s.refuse_backend()
    config = WorldConfig(
        seed=seed,
        days=days,
        scale=scale,
        end=_parse_end(end) or default_end(),
        incidents=incidents,
    )
    show_progress = s.stderr_is_tty and not s.quiet and fmt == SummaryFormat.table
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]building demo"),
            BarColumn(),
            TextColumn("day {task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=s.err,
            transient=True,
        ) as progress:
            task = progress.add_task("demo", total=days)
            result = build_demo(
                s.db_path,
                config,
                out_dir=out,
                force=force,
                on_day=lambda done, total: progress.update(task, completed=done),
            )
    else:
        result = build_demo(s.db_path, config, out_dir=out, force=force)
    steps, prefix = _tour(s)
    if fmt == SummaryFormat.json:
        from aiobs.cli.render import render_json

        render_json(
            s,
            {
                "store": str(result.path),
                "seconds": round(result.seconds, 3),
                "traces": result.traces,
                "sessions": result.sessions,
                "spans": result.spans,
                "log_records": result.log_records,
                "metric_points": result.metric_points,
                "bytes": result.bytes,
                "files": [str(p) for p in result.files] if out is not None else [],
                "manifest": result.manifest,
                "tour": [
                    {"title": st.title, "why": st.why, "command": st.command(prefix)}
                    for st in steps
                ],
            },
        )
        return
    _print_summary(s, result, steps, prefix)


def _tour(s: Settings) -> tuple[list[Any], tuple[str, ...]]:
    from aiobs.config import resolve_db_path
    from aiobs.demo.build import read_manifest
    from aiobs.demo.tour import tour

    # Commands must work as printed: name the store unless it is the one aiobs finds by itself.
    prefix: tuple[str, ...] = () if resolve_db_path(None) == s.db_path else ("--db", str(s.db_path))
    with s.open_store() as store:
        manifest = read_manifest(store) or {}
        return tour(store, manifest), prefix


def _print_summary(s: Settings, result: Any, steps: list[Any], prefix: tuple[str, ...]) -> None:
    from aiobs.present.demo import summary, tour

    for item in summary(result):
        s.out.print(item)
    for line, command in tour(steps, prefix):
        s.out.print(line)
        s.out.print(command, soft_wrap=True)
