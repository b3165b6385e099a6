"""``aiobs replay`` and ``aiobs diff-traces``: one failed AI journey (a trace, or a whole
session), step by step; two journeys aligned. The renderings are ``aiobs.present``'s; this
module parses options, loads the replay, and prints (or steps through) what present/ builds.

Must not import duckdb, polars, pyarrow, sqlglot or rich at module level.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aiobs.cli.context import OutputFormat, Settings, preload, settings
from aiobs.errors import UsageError

if TYPE_CHECKING:
    from aiobs.analysis.results import Replay, SessionReplay


def register(app: typer.Typer) -> None:
    app.command("replay", help=replay.__doc__)(replay)
    app.command("diff-traces", help=diff_traces.__doc__)(diff_traces)


def diff_traces(
    ctx: typer.Context,
    a: Annotated[
        str,
        typer.Argument(
            help="First trace (id or unique prefix), e.g. the good one.", show_default=False
        ),
    ],
    b: Annotated[str, typer.Argument(help="Second trace, e.g. the bad one.", show_default=False)],
    full: Annotated[
        bool, typer.Option("--full", help="Show changed values whole (they are cut at 60 chars).")
    ] = False,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="table, markdown, json; jsonl/csv: the traces, counts and steps, one row each.",
        ),
    ] = OutputFormat.table,
) -> None:
    """Two journeys aligned step by step: steps added or removed, and what changed in the others."""
    from aiobs.analysis.difftraces import diff_traces as align
    from aiobs.analysis.replay import load_trace, resolve_trace_id

    s = settings(ctx)
    with s.open_backend() as store:
        ra = load_trace(store, resolve_trace_id(store, a), context=False)
        rb = load_trace(store, resolve_trace_id(store, b), context=False)
    result = align(ra, rb)
    if fmt == OutputFormat.json:
        from aiobs.cli.render import render_json

        render_json(s, result)
        return
    if fmt in (OutputFormat.jsonl, OutputFormat.csv):
        from aiobs.cli.render import render_sections
        from aiobs.present.difftraces import sections

        render_sections(s, fmt, sections(result))
        return
    if fmt == OutputFormat.markdown:
        from aiobs.present.difftraces import markdown

        s.data.write(markdown(result, full))
        return
    from aiobs.present.difftraces import renderables

    for item in renderables(result, full):
        s.out.print(item)


def replay(
    ctx: typer.Context,
    trace: Annotated[
        str | None,
        typer.Argument(help="Trace id, or a unique prefix of one (like git).", show_default=False),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option(
            "--session", help="Replay every trace of this session, in order, as one journey."
        ),
    ] = None,
    step: Annotated[
        bool,
        typer.Option(
            "--step", help="One step at a time on a terminal (Enter/n next, p previous, q quit)."
        ),
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Show long content whole instead of truncated.")
    ] = False,
    no_context: Annotated[
        bool,
        typer.Option("--no-context", help="Skip logs, user events, metrics and deployments."),
    ] = False,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="text (table), markdown, json; jsonl/csv: the trace(s), steps and context "
            "records, one row each with a section.",
        ),
    ] = OutputFormat.table,
) -> None:
    """Replay a trace step by step: messages, retrieved documents, tool calls, errors, handoffs, and what happened around it."""
    from aiobs.analysis.replay import load_session, load_trace, resolve_trace_id

    s = settings(ctx)
    if (trace is None) == (session is None):
        raise UsageError("give a trace id or --session SESSION (one of them)")
    if fmt == OutputFormat.table:
        preload("rich.console", "rich.text", "rich.rule", "aiobs.present.replay")
    loaded: SessionReplay | None = None
    with s.open_backend() as store:
        if session is not None:
            loaded = load_session(store, session, context=not no_context)
            replays = loaded["traces"]
        else:
            assert trace is not None
            replays = [load_trace(store, resolve_trace_id(store, trace), context=not no_context)]
    if fmt == OutputFormat.json:
        from aiobs.cli.render import render_json

        render_json(s, loaded if loaded is not None else replays[0])
    elif fmt in (OutputFormat.jsonl, OutputFormat.csv):
        from aiobs.cli.render import render_sections, sections_of

        traces = [dict(r["trace"]) for r in replays]
        steps = [{"trace_id": r["trace"]["trace_id"], **st} for r in replays for st in r["steps"]]
        context = loaded.get("context") if loaded is not None else replays[0].get("context")
        found = [
            *(sections_of(loaded["session"], "session") if loaded is not None else []),
            ("trace", list(traces[0]), traces),
            ("steps", list(dict.fromkeys(k for st in steps for k in st)), steps),
            *(sections_of(context, "context") if context else []),
        ]
        render_sections(s, fmt, found)
    elif fmt == OutputFormat.markdown:
        from aiobs.present.replay import markdown, session_markdown

        s.data.write(
            session_markdown(loaded, full) if loaded is not None else markdown(replays[0], full)
        )
    else:
        _text(s, loaded, replays, full, step)


def _text(
    s: Settings,
    session: SessionReplay | None,
    replays: list[Replay],
    full: bool,
    step: bool,
) -> None:
    from aiobs.present.replay import journeys, session_title

    if session is not None:
        s.out.print(session_title(session))
    interactive = step and sys.stdin.isatty() and sys.stdout.isatty()
    for blocks in journeys(replays, full, session):
        if interactive:
            if not _step_through(s, blocks):
                return
        else:
            for block in blocks:
                for item in block:
                    s.out.print(item, soft_wrap=False, overflow="fold")


QUIT, PREVIOUS = ("q", "\x03", "\x04", "\x1b"), ("p", "k")


def _step_through(s: Settings, blocks: list[list[Any]]) -> bool:
    """Print one block per key: Enter/n/space next, p previous, q quit. False if the user quit."""
    from rich.text import Text

    def show(block: list[Any]) -> None:
        for item in block:
            s.out.print(item, soft_wrap=False, overflow="fold")

    i = 0
    show(blocks[0])
    s.err.print(Text("Enter/n next · p previous · q quit", style="dim"))
    while True:
        key = _getkey()
        if key in QUIT:
            return False
        if key in PREVIOUS:
            if i > 0:
                i -= 1
                s.out.print(Text("↑ back to", style="dim"))
                show(blocks[i])
            continue
        i += 1
        if i >= len(blocks):
            return True
        show(blocks[i])


def _getkey() -> str:
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        return sys.stdin.read(1)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
