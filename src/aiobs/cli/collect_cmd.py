"""``aiobs collect``: receive OTLP/HTTP into the local store while it keeps being read
(``aiobs.ingest.collect``); Ctrl-C or SIGTERM merges what was accepted and exits 0.

Must not import duckdb, polars, pyarrow, sqlglot or rich at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from aiobs.cli.context import settings

if TYPE_CHECKING:
    from aiobs.ingest.collect import Totals

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(app: typer.Typer) -> None:
    app.command("collect", help=collect.__doc__)(collect)


def collect(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. Loopback unless given: another address (0.0.0.0 …) lets"
            " other machines send to the store.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="OTLP/HTTP port (0: any free one).")
    ] = 4318,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            "--grpc-port",
            min=0,
            max=65535,
            help="OTLP/gRPC port (0: any free one; needs grpcio). Default 4317, or none when"
            " --port is 0.",
            show_default=False,
        ),
    ] = None,
    redact: Annotated[
        bool | None,
        typer.Option(
            "--redact/--no-redact",
            help="Redact secrets and personal data before they are stored, as ingest --redact."
            " Default: the config's [redact] enabled, else off.",
            envvar="AIOBS_REDACT",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Receive OTLP/HTTP (POST /v1/traces, /v1/logs, /v1/metrics; protobuf or JSON, gzip) and OTLP/gRPC into the store, readable while it runs; Ctrl-C stops."""
    import signal
    import threading

    from aiobs.ingest.collect import Collector, lean_allocators
    from aiobs.ingest.redact import redact_config

    lean_allocators()

    s = settings(ctx)
    s.refuse_backend()
    config = dict(s.config.tables)
    redacting = False if redact is False else (redact_config(config)[0] or bool(redact))
    store = s.open_store(read_only=False, create=True)

    def merged(t: Totals) -> None:
        while t.errors:
            s.err.print(f"aiobs: {t.errors.pop(0)}", markup=False, highlight=False)
        if not s.quiet:
            s.err.print(
                f"stored {t.spans:,} spans, {t.log_records:,} log records,"
                f" {t.metric_points:,} metric points ({t.requests:,} requests,"
                f" {t.refused:,} refused, {t.rejected:,} records rejected)",
                markup=False,
                highlight=False,
            )

    try:
        try:
            collector = Collector(
                store, host=host, port=port, redact=redacting, config=config, on_merge=merged
            )
        except OSError as exc:
            from aiobs.errors import UsageError

            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        grpc_note = ""
        if grpc_port is None:
            grpc_port = None if port == 0 else 4317
        if grpc_port is not None:
            try:
                import grpc  # noqa: F401
            except ImportError:
                grpc_note = " (OTLP/gRPC needs grpcio: pip install 'aiobs[grpc]')"
            else:
                try:
                    grpc_port = collector.listen_grpc(host, grpc_port)
                except (OSError, RuntimeError) as exc:
                    from aiobs.errors import UsageError

                    raise UsageError(f"cannot listen on {host}:{grpc_port}: {exc}") from exc
                grpc_note = f", OTLP/gRPC on {host}:{grpc_port}"
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        collector.start()
        bound, listening = collector.address
        where = "" if host in LOOPBACK else " (reachable from other machines)"
        s.err.print(
            f"aiobs: OTLP/HTTP on http://{bound}:{listening}{grpc_note}{where} → {store.path}"
            " (Ctrl-C to stop)",
            markup=False,
            highlight=False,
        )
        while not stop.wait(0.2):
            pass
        collector.stop()
    finally:
        store.close()
