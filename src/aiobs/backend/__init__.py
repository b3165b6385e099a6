"""The seam between the analyses and the engine that holds the telemetry.

Every analysis (replay, browse, segment, diff, scan, stats, export, query) reads through a
``Backend``: it runs SQL over the canonical views (``ai_spans``, ``ai_traces`` and their fact
views) and the exporter's tables, and says what the engine can do (``Capabilities``) instead of
the analysis looking at how the store was built. An engine's own exceptions never reach an
analysis: they arrive as one ``QueryError``. ``reader()`` gives a handle a worker thread may
use on its own (the TUI's workers, replay's context read); it sees the same views.

Every query of every analysis passes through these few methods, so they are the one place where
an engine's differences meet the analyses. The SQL the analyses hand over is written once, in the
canonical dialect (DuckDB's, over the canonical views); a backend's ``dialect``
(``aiobs.sql.Dialect``) renders it for its engine, and ``capabilities`` say which of the store's
shortcuts it has. The embedded DuckDB store is ``aiobs.backend.duckdb`` (its dialect is the
canonical one); a ClickHouse backend is another module here that renders through
``aiobs.sql.CLICKHOUSE`` and adds the views (``aiobs.semantic.clickhouse.with_views``), not a
fork of the analyses.

Must not import duckdb, typer, rich or textual: analysis modules import this one.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiobs.errors import UsageError

if TYPE_CHECKING:
    from aiobs.sql import Dialect


class QueryError(UsageError):
    """The engine refused or failed a query.

    ``evaluation`` is true for what a user's own condition or SQL can cause (a parse, bind,
    conversion, invalid-input or out-of-range error): the analysis that applied a user's
    ``--where`` turns those into a message naming it. Anything else is a failure of the engine
    or of aiobs' own SQL."""

    def __init__(self, message: str, *, evaluation: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.evaluation = evaluation


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What an engine's store offers beyond the canonical views, so analyses pick a plan by
    asking, not by knowing the engine.

    ``materialised``: the canonical span and trace columns are stored (``aiobs_spans``,
    ``aiobs_traces``), so a query that needs no cost can read them without pricing every trace.
    ``log_time_index``: ``aiobs_trace_log_times`` gives each trace's log time range, so a
    trace's logs are read within it. ``temp_tables``: the connection keeps scratch tables for
    its lifetime (scan's per-trace table, export's id list). ``parquet_export``: the engine
    writes Parquet files itself. ``ingest_log``: ``aiobs_ingests`` records each file ingested
    into the store (a collector's cluster has no such record)."""

    materialised: bool = False
    log_time_index: bool = False
    temp_tables: bool = True
    parquet_export: bool = False
    ingest_log: bool = False


class Backend(Protocol):
    """A store as the analyses see it. ``params`` bind ``?`` placeholders in order."""

    @property
    def engine(self) -> str:
        """The engine's name ("duckdb")."""
        ...

    @property
    def dialect(self) -> Dialect:
        """How the canonical SQL handed to it reaches its engine."""
        ...

    @property
    def location(self) -> str:
        """Where the data lives, for messages and ``stats`` (a path, or a URL without
        credentials)."""
        ...

    @property
    def schema_version(self) -> int:
        """The store's schema version (0 when the engine has none of aiobs' own)."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def records(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row as a dict keyed by column name."""
        ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row as a tuple."""
        ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row, or None."""
        ...

    def batches(
        self, sql: str, params: Sequence[Any] = (), *, size: int = 2048
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The rows ``size`` at a time, fetched as they are read (exports of a whole store)."""
        ...

    def columns(self, sql: str) -> list[tuple[str, str]]:
        """The (name, engine type) of each column ``sql`` would return, without running it."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A statement without a result: scratch tables of this handle (``capabilities.
        temp_tables``), settings. Never a change to the stored telemetry on a reader."""
        ...

    def copy_parquet(self, sql: str, path: str, options: str = "") -> None:
        """Write ``sql``'s rows to a Parquet file (``capabilities.parquet_export``)."""
        ...

    def lock_down(self) -> None:
        """From now on this handle reads the store and nothing else: no files, network or
        extensions, and no setting can turn that back (``aiobs query`` runs a user's SQL)."""
        ...

    def reader(self) -> Backend:
        """A handle for another thread: the same store and views, its own connection."""
        ...

    def interrupt(self) -> None:
        """Stop the query this handle is running (from another thread; the query raises
        ``QueryError``): a TUI worker superseded by a newer request."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic collector held off while many rows are built.

    Each row is a tuple, then a dict, with lists in it; every 700 new containers the collector
    runs, and its older generations walk everything built so far. Fetching diff's 187k rows
    (2.6M lists, on 10M spans) took 4.0 s with it and 1.8 s without. Rows hold no reference
    cycles, so nothing is left for it to find. It is switched back on only by whoever switched
    it off (workers of the TUI may fetch at the same time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
