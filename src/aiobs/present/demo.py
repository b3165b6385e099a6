"""The summary ``aiobs demo`` prints after building the demo world: what was built, where, and
the guided tour's steps with their commands, as Rich renderables.

A pure function of the build's result and the tour.

Must not import typer, textual, duckdb, polars, pyarrow or sqlglot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.console import RenderableType
from rich.text import Text

from aiobs.present.format import plural


def summary(result: Any) -> Iterator[RenderableType]:
    """What the demo ``result`` (``demo.build.DemoResult``) built, down to the tour's ``Try:``."""
    m = result.manifest
    yield Text.assemble(
        ("Acme Support demo", "bold"),
        f" — {plural(m['days'], 'day')} ({m['start']} .. {m['end']}), seed {m['seed']}"
        + ("" if m["incidents_enabled"] else ", no incidents"),
    )
    yield (
        f"{plural(result.traces, 'trace')} in {plural(result.sessions, 'session')} · {plural(result.spans, 'span')} · "
        f"{plural(result.log_records, 'log record')} and events · {plural(result.metric_points, 'metric point')}"
    )
    yield f"store {result.path} · built in {result.seconds:.1f} s"
    if result.out_dir is not None:
        yield f"raw telemetry and manifest.json in {result.out_dir}"
    if m["incidents_enabled"]:
        yield (
            f"{plural(len(m['incidents']), 'incident')} planted in this week; the tour shows where to look."
        )
    yield Text("")
    yield Text("Try:", style="bold")


def tour(steps: list[Any], prefix: tuple[str, ...]) -> Iterator[tuple[Text, Text]]:
    """Each tour step (``demo.tour.TourStep``) as its line and its command, printed with
    ``prefix`` (``--db PATH`` unless the store is the default one). The caller prints the
    command soft-wrapped: it must stay one line, copyable whole."""
    for i, step in enumerate(steps, 1):
        yield (
            Text.assemble((f"{i}. {step.title}", "bold"), f" — {step.why}"),
            Text("   " + step.command(prefix), style="cyan"),
        )
