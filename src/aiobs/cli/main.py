"""The ``aiobs`` Typer app: global options, command registration, error rendering, exit codes.

Must not import duckdb, polars, pyarrow, sqlglot, textual, httpx or opentelemetry at module level.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from aiobs import __version__
from aiobs.cli.context import ColorMode, Settings
from aiobs.errors import AiobsError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def _render_error(exc: AiobsError) -> None:
    from aiobs.present.safe import inert

    sys.stderr.write(f"aiobs: error: {inert(exc.message)}\n")
    if exc.hint:
        sys.stderr.write(f"aiobs: hint: {inert(exc.hint)}\n")


class AiobsGroup(TyperGroup):
    """Renders every ``AiobsError`` raised by a command to stderr and exits with its code."""

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except AiobsError as exc:
            _render_error(exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            # Ctrl-C: the running transaction was rolled back on the way out; say so, exit 130.
            sys.stderr.write("aiobs: interrupted\n")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            from aiobs.cli.context import reader_left

            reader_left()

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        # Each command's first sentence whole, wrapped beside its name: Click's default cuts it
        # at 45 characters ("Build the demo world (a week of a support assistant's..."). The
        # formatter is typer's own Click's: importing the click package would cost ~25 ms.
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aiobs {__version__}")
        raise typer.Exit(0)


def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="AIOBS_DB",
            help="Store file (DuckDB). Default: aiobs.duckdb under the user data dir.",
            show_envvar=True,
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            envvar="AIOBS_BACKEND",
            help="Read a ClickHouse backend instead of the local store:"
            " clickhouse://USER:PASSWORD@HOST:8123/DATABASE (clickhouses:// for HTTPS) or"
            " chdb://PATH?database=NAME (embedded). Read commands only.",
            show_envvar=True,
        ),
    ] = None,
    color: Annotated[
        ColorMode,
        typer.Option("--color", help="Colour output: auto honours NO_COLOR and the terminal."),
    ] = ColorMode.auto,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars or notes on stderr.")
    ] = False,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            envvar="AIOBS_WAIT",
            min=0,
            metavar="SECONDS",
            help="Wait up to this long for another process's lock on the store."
            " Default: 10 on a terminal, 0 in scripts.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Replay and investigate AI applications from exported OpenTelemetry telemetry."""
    ctx.obj = Settings(db=db, backend=backend, color=color, quiet=quiet, wait=wait)


# Registration order is the order of `aiobs --help`.
_MODULES = (
    "demo_cmd",
    "ingest_cmd",
    "collect_cmd",
    "clickhouse_cmd",
    "browse_cmd",
    "replay_cmd",
    "export_cmd",
    "segment_cmd",
    "diff_cmd",
    "scan_cmd",
    "eval_cmd",
    "stats_cmd",
    "query_cmd",
    "tui_cmd",
)
# Which module registers each command, so one invocation builds only the command it runs:
# turning every command's signature into click parameters, and importing their modules, took
# 50 ms of `aiobs replay` under cProfile, ~15 ms in a plain run (A/B medians).
# tests/test_cli_contract.py checks this map against the full app.
COMMAND_MODULES = {
    "demo": "demo_cmd",
    "ingest": "ingest_cmd",
    "collect": "collect_cmd",
    "clickhouse": "clickhouse_cmd",
    "traces": "browse_cmd",
    "sessions": "browse_cmd",
    "replay": "replay_cmd",
    "diff-traces": "replay_cmd",
    "describe": "export_cmd",
    "export": "export_cmd",
    "segment": "segment_cmd",
    "diff": "diff_cmd",
    "scan": "scan_cmd",
    "eval": "eval_cmd",
    "stats": "stats_cmd",
    "query": "query_cmd",
    "tui": "tui_cmd",
}
# Global options that take a value (the command name comes after them).
_VALUE_OPTIONS = ("--db", "--backend", "--color")


def build_app(modules: tuple[str, ...] = _MODULES) -> typer.Typer:
    """The ``aiobs`` app with the commands of ``modules`` (by default, every command)."""
    from importlib import import_module

    built = typer.Typer(
        name="aiobs",
        cls=AiobsGroup,
        help=(
            "Replay and investigate AI applications from exported OpenTelemetry telemetry, "
            "in the terminal."
        ),
        context_settings=CONTEXT_SETTINGS,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )
    built.callback()(root)
    for name in modules:
        import_module(f"aiobs.cli.{name}").register(built)
    return built


def modules_for(args: list[str]) -> tuple[str, ...]:
    """The command modules an invocation with ``args`` needs: the one defining its command, or
    all of them (top-level help, an unknown command, shell completion)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _VALUE_OPTIONS:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        module = COMMAND_MODULES.get(arg)
        return (module,) if module else _MODULES
    return _MODULES


def __getattr__(name: str) -> typer.Typer:
    # `app` (every command) is built on first use: tests and the completion generator use it;
    # `main` builds only what it runs.
    if name == "app":
        built = build_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)


def _exit_now(code: int) -> None:
    """End the process without tearing the interpreter down: the work is done, the store closed
    (every command opens it in a ``with``), and only the output streams need flushing. Module
    teardown and the GC of DuckDB's and Rich's objects took 15-35 ms of every command (A/B of
    `replay` on 974k spans, whole process)."""
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass  # a closed pipe or stream: nothing more can be said on it
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turn ``AiobsError`` into a message and exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        build_app(modules_for(args))(args=args, prog_name="aiobs", standalone_mode=True)
    except AiobsError as exc:
        _render_error(exc)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.stderr.write("aiobs: interrupted\n")
        sys.exit(130)


def run() -> None:
    """The ``aiobs`` console script and ``python -m aiobs``: ``main``, then a fast exit. Code that
    calls ``main`` in its own process gets the ordinary ``SystemExit`` instead."""
    try:
        main()
    except SystemExit as done:
        code = done.code
        if isinstance(code, str):  # sys.exit("message"): printed by the normal path
            raise
        _exit_now(code or 0)
