"""``aiobs tui``: the interactive triage app on the store every other command resolves.

The store is opened (and a trace or session named on the command line resolved) before Textual
is imported, so a locked or missing store is exit 3 and an unknown trace exit 4 with the usual
message, and neither costs Textual's import.

Must not import duckdb, polars, pyarrow, sqlglot or textual at module level.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aiobs.cli.context import settings
from aiobs.cli.options import Model, PromptVersion, Service, Since, Until, Where
from aiobs.errors import UsageError


def register(app: typer.Typer) -> None:
    app.command("tui", help=tui.__doc__)(tui)


def tui(
    ctx: typer.Context,
    trace: Annotated[
        str | None, typer.Argument(help="A trace id (or a unique prefix) to open first.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Open this session's traces.")
    ] = None,
    scan: Annotated[bool, typer.Option("--scan", help="Open the anomaly scan first.")] = False,
    since: Since = None,
    until: Until = None,
    service: Service = None,
    model: Model = None,
    prompt_version: PromptVersion = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only traces that failed.")] = False,
    where: Where = None,
    listen: Annotated[
        bool,
        typer.Option(
            "--listen",
            help="Receive OTLP/HTTP too (as aiobs collect does, on --port): traces appear in the"
            " list as they arrive.",
        ),
    ] = False,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="OTLP/HTTP port with --listen.")
    ] = 4318,
) -> None:
    """Find, replay, compare and scan traces interactively, with the keyboard (the triage TUI)."""
    from aiobs.tui.data import TraceQuery

    s = settings(ctx)
    query = TraceQuery(
        base=where,
        since=since,
        until=until,
        services=tuple(service or ()),
        models=tuple(model or ()),
        prompt_versions=tuple(prompt_version or ()),
        errors_only=errors,
    )
    query.filter()  # a bad --where or window is exit 2 before the store is opened
    keymap = _keymap(s.config.tables)
    collector = None
    if listen:
        s.refuse_backend()
        store: Any = s.open_store(read_only=False, create=True)
    else:
        store = s.open_backend()
    try:
        if listen:
            from aiobs.ingest.collect import Collector
            from aiobs.ingest.redact import redact_config

            config = dict(s.config.tables)
            try:
                # The TUI reads through cursors of the store's own connection, which the
                # collector writes on: other processes wait until the TUI closes.
                collector = Collector(
                    store,
                    port=port,
                    redact=redact_config(config)[0],
                    config=config,
                    yield_to_readers=False,
                )
            except OSError as exc:
                raise UsageError(
                    f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}"
                ) from exc
        from aiobs.errors import NotFoundError

        if trace is not None:
            from aiobs.analysis.replay import resolve_trace_id

            trace = resolve_trace_id(store, trace)
            if _absent(store, "trace_id", trace):
                raise NotFoundError(f"no trace {trace} in {store.location}")
        if session is not None and _absent(store, "session_id", session):
            raise NotFoundError(f"no session {session!r} in {store.location}")
        from aiobs.tui.app import Start, TriageApp

        app = TriageApp(
            store,
            Start(
                trace=trace,
                session=session,
                scan="24h" if scan else None,
                query=query,
                traces=query != TraceQuery() or listen,
            ),
            keymap=keymap,
            collector=collector,
        )
        app.run()
        if app.return_code:  # a crash Textual printed: a script must not read success
            raise SystemExit(app.return_code)
    finally:
        if collector is not None:
            collector.stop()
        store.close()


def _absent(store: Any, column: str, value: str) -> bool:
    sql = f"SELECT 1 FROM aiobs_trace_facts WHERE {column} = ? LIMIT 1"
    return store.one(sql, [value]) is None


def _keymap(tables: Any) -> dict[str, str]:
    """``[tui.keys]`` of the config: binding id → keys (``"traces.errors" = "E"``)."""
    keys = (tables.get("tui") or {}).get("keys") or {}
    if not isinstance(keys, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in keys.items()
    ):
        raise UsageError(
            '[tui.keys] in the config maps binding ids to keys, e.g. "traces.errors" = "E"'
        )
    return dict(keys)
