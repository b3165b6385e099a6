"""Global options shared by every command, and the consoles they configure.

Must not import duckdb, polars, pyarrow, sqlglot, textual, httpx or opentelemetry.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO, cast

import typer

from aiobs.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from aiobs.backend import Backend
    from aiobs.backend.duckdb import DuckDBBackend
    from aiobs.config import Config
    from aiobs.store.connection import LockHolder, LockWait

# How long a command waits for another process's lock when --wait is not given: a person at a
# terminal would rather wait out a short ingest than retry; a script fails at once unless it asks.
INTERACTIVE_WAIT = 10.0


class ColorMode(StrEnum):
    auto = "auto"
    always = "always"
    never = "never"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    markdown = "markdown"


class SummaryFormat(StrEnum):
    """For commands whose output is a summary, not rows (``demo``)."""

    table = "table"
    json = "json"


class TextFormat(StrEnum):
    """For commands that print one text (``describe``): the text, or it in a JSON object."""

    text = "text"
    json = "json"


@dataclass
class Settings:
    db: str | None = None
    backend: str | None = None
    color: ColorMode = ColorMode.auto
    quiet: bool = False
    wait: float | None = None  # --wait; None: INTERACTIVE_WAIT on a terminal, else 0

    @property
    def db_path(self) -> Path:
        from aiobs.config import resolve_db_path

        return resolve_db_path(self.db)

    def _console(self, stderr: bool) -> Console:
        from rich.console import Console

        no_color = self.color == ColorMode.never or (
            self.color == ColorMode.auto and "NO_COLOR" in os.environ
        )
        force = True if self.color == ColorMode.always else None
        # Piped table output (less, files) is not cut to 80 columns: COLUMNS or 200.
        width = None
        stream = sys.stderr if stderr else sys.stdout
        if not stream.isatty():
            width = int(os.environ.get("COLUMNS", "0") or 0) or 200

        class PipeConsole(Console):
            def on_broken_pipe(self) -> None:
                # Rich meets the pipe itself here, and its default exits 1 ("found something"
                # to a runbook).
                reader_left()

        return PipeConsole(
            file=None if stderr or stream.isatty() else cast(TextIO, TrimmedLines(stream)),
            stderr=stderr,
            width=width,
            no_color=no_color,
            force_terminal=force,
            highlight=False,
            soft_wrap=stderr,
        )

    @cached_property
    def out(self) -> Console:
        """What a person reads on stdout: tables, replays, scans (Rich)."""
        return self._console(stderr=False)

    @property
    def data(self) -> TextIO:
        """Stdout for data written as it is: JSON, CSV, Markdown (never trimmed or wrapped)."""
        return sys.stdout

    @property
    def stdout_is_tty(self) -> bool:
        return sys.stdout.isatty()

    @cached_property
    def err(self) -> Console:
        return self._console(stderr=True)

    @property
    def stderr_is_tty(self) -> bool:
        return sys.stderr.isatty()

    @cached_property
    def config(self) -> Config:
        """The user's config file, read once per command (``aiobs.config``)."""
        from aiobs.config import read_config

        return read_config()

    def open_store(self, *, read_only: bool = True, create: bool = False) -> DuckDBBackend:
        """The local DuckDB store (``--db``), with the config's prices: what commands that
        write (ingest, demo, eval) need. With ``--backend`` they refuse: a cluster is read-only."""
        self.refuse_backend()
        from aiobs.backend.duckdb import open_store
        from aiobs.semantic.prices import load_prices

        prices = load_prices(self.config.tables)
        return open_store(
            self.db_path, read_only=read_only, create=create, prices=prices, wait=self.lock_wait()
        )

    def refuse_backend(self) -> None:
        """Exit 2 if ``--backend`` is given: for a command that writes, before it writes."""
        if self.backend:
            from aiobs.backend.clickhouse import redacted
            from aiobs.errors import UsageError

            raise UsageError(
                f"--backend {redacted(self.backend)}: this command writes, and aiobs only reads"
                " a ClickHouse backend",
                hint="run it on the local store (without --backend / AIOBS_BACKEND)",
            )

    def open_backend(self) -> Backend:
        """What every read command reads: ``--backend`` (a ClickHouse URL) when given, else the
        local store."""
        if not self.backend:
            return self.open_store()
        from aiobs.backend.clickhouse import open_backend
        from aiobs.semantic.prices import load_prices

        return open_backend(self.backend, load_prices(self.config.tables))

    def lock_wait(self) -> LockWait:
        """``--wait`` as the store takes it, with a note on stderr once waiting starts."""
        from aiobs.store.connection import LockWait

        seconds = self.wait
        if seconds is None:
            seconds = INTERACTIVE_WAIT if self.stderr_is_tty and sys.stdin.isatty() else 0.0

        def notice(holder: LockHolder, seconds: float) -> None:
            if not self.quiet:
                self.err.print(
                    f"aiobs: the store is locked by {holder.describe()};"
                    f" waiting up to {seconds:g} s (--wait)",
                    markup=False,
                    highlight=False,
                )

        return LockWait(seconds, notice)


class TrimmedLines(io.TextIOBase):
    """A text stream that drops the spaces Rich pads each line with (titles, cells, wrapped
    text) before passing whole lines on: piped output is not padded to the console's width."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tail = ""

    def write(self, text: str) -> int:
        lines = (self._tail + text).split("\n")
        self._tail = lines.pop()
        if lines:
            self._stream.write("\n".join(line.rstrip(" ") for line in lines) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._tail:
            self._stream.write(self._tail)
            self._tail = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()


# What render_rows needs for a table.
TABLE_MODULES = ("rich.console", "rich.table", "rich.text")


def preload(*modules: str) -> None:
    """Import ``modules`` in a background thread, for the output a command will render once its
    store work is done: DuckDB releases the GIL while it opens the store and runs the queries, so
    the imports (rich's console, text and table: ~35 ms) happen in that wait instead of after it.
    A module the command reaches first is simply waited for (Python's per-module import lock)."""
    import importlib
    import threading

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the command's own import reports it
                return

    threading.Thread(target=load, name="aiobs-preload", daemon=True).start()


def reader_left() -> NoReturn:
    """`aiobs … | head`: the reader has what it wanted. Exit 0 (1 means findings), with stdout
    pointed at /dev/null so the final flush does not raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(int(ExitCode.OK))


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if isinstance(obj, Settings):
        return obj
    return Settings()
