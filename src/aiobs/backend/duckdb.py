"""The embedded DuckDB store as a ``Backend``.

Opening it is more than connecting: the file is migrated (``aiobs.store``), its materialised
canonical columns are rebuilt when they were written under other field definitions than this
aiobs' (as a brief writer, like a migration), and the canonical views and the price table are
installed on the connection. The views are TEMP views: they always match the running aiobs and
the user's prices and work on a read-only file, but a ``cursor()`` of the connection does not see
them (DuckDB 2.0), so ``reader()`` installs them again on its own cursor, the first time a query
reads one (replay's context thread reads only the exporter's tables and pays nothing).

Engine exceptions become ``QueryError``; ``con`` (the DuckDB connection) is for the writers
(ingest, demo) and tests, never for analyses, which see only the ``Backend`` protocol.

Must not import the duckdb package at module level (read commands load only its engine:
``aiobs.store.engine``), nor typer, rich or textual.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiobs.backend import Capabilities, QueryError, gc_paused
from aiobs.errors import StoreUnavailableError
from aiobs.sql import DUCKDB, Dialect
from aiobs.store.connection import NO_WAIT, LockWait, Store, connect, open_file

if TYPE_CHECKING:
    import duckdb

    from aiobs.semantic.prices import Price

# The names a query reads the canonical views (and the price table) by: a reader installs them
# on its cursor before the first query that mentions one.
_VIEW_NAMES = re.compile(
    r"\b(ai_spans|ai_traces|aiobs_span_facts|aiobs_trace_facts|aiobs_prices)\b"
)

# Reader connections for user SQL may read the store and nothing else: no files, no network, no
# extension downloads, and no way to turn that back on (SET is refused by the guard as well).
_LOCKDOWN = (
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET lock_configuration = true",
)


@functools.cache
def _error_classes() -> tuple[type[Exception], tuple[type[Exception], ...]]:
    from aiobs.store.engine import duckdb_engine

    engine = duckdb_engine()
    evaluation = (
        engine.ParserException,
        engine.BinderException,
        engine.ConversionException,
        engine.InvalidInputException,
        engine.OutOfRangeException,
    )
    return engine.Error, evaluation


def _query_error(exc: Exception, evaluation: tuple[type[Exception], ...]) -> QueryError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return QueryError(first, evaluation=isinstance(exc, evaluation))


@dataclass
class DuckDBBackend(Store):
    """An open DuckDB store (see the module docstring)."""

    capabilities: Capabilities = field(default_factory=Capabilities)
    prices: Mapping[str, Price] = field(default_factory=dict, repr=False)
    # False on a reader until a query reads a view (then they are installed on its cursor).
    views_installed: bool = True
    engine: str = "duckdb"
    # The canonical dialect: the SQL runs as the analyses wrote it.
    dialect: Dialect = DUCKDB

    @property
    def location(self) -> str:
        return str(self.path)

    def _run(self, sql: str, params: Sequence[Any]) -> duckdb.DuckDBPyConnection:
        if not self.views_installed and _VIEW_NAMES.search(sql):
            self._install_views()
        error, evaluation = _error_classes()
        try:
            return self.con.execute(sql, list(params))
        except error as exc:
            raise _query_error(exc, evaluation) from exc

    def connected(self) -> None:
        if self.views_installed:
            self._install_views()

    def _install_views(self) -> None:
        from aiobs.semantic.views import install_views

        install_views(self.con, self.prices, materialised=self.capabilities.materialised)
        self.views_installed = True

    def records(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._run(sql, params)
        names = [d[0] for d in cur.description or ()]
        with gc_paused():
            return [dict(zip(names, row, strict=True)) for row in self._fetch(cur)]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._fetch(self._run(sql, params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        cur = self._run(sql, params)
        error, evaluation = _error_classes()
        try:
            row: tuple[Any, ...] | None = cur.fetchone()
        except error as exc:
            raise _query_error(exc, evaluation) from exc
        return row

    def batches(
        self, sql: str, params: Sequence[Any] = (), *, size: int = 2048
    ) -> Iterator[list[tuple[Any, ...]]]:
        cur = self._run(sql, params)
        error, evaluation = _error_classes()
        while True:
            try:
                chunk: list[tuple[Any, ...]] = cur.fetchmany(size)
            except error as exc:
                raise _query_error(exc, evaluation) from exc
            if not chunk:
                return
            yield chunk

    def columns(self, sql: str) -> list[tuple[str, str]]:
        return [(str(r[0]), str(r[1])) for r in self.rows(f"DESCRIBE {sql}")]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(sql, params)

    def copy_parquet(self, sql: str, path: str, options: str = "") -> None:
        quoted = path.replace("'", "''")
        extra = f", {options}" if options else ""
        self._run(f"COPY ({sql}) TO '{quoted}' (FORMAT PARQUET{extra})", ())

    def lock_down(self) -> None:
        for setting in _LOCKDOWN:
            self._run(setting, ())

    def reader(self) -> DuckDBBackend:
        return DuckDBBackend(
            path=self.path,
            con=self.con.cursor(),
            read_only=self.read_only,
            schema_version=self.schema_version,
            capabilities=self.capabilities,
            prices=self.prices,
            views_installed=False,
        )

    def interrupt(self) -> None:
        self.con.interrupt()

    def __enter__(self) -> DuckDBBackend:
        return self

    def _fetch(self, cur: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
        error, evaluation = _error_classes()
        try:
            rows: list[tuple[Any, ...]] = cur.fetchall()
        except error as exc:
            raise _query_error(exc, evaluation) from exc
        return rows


def open_store(
    path: Path,
    *,
    read_only: bool = True,
    create: bool = False,
    prices: Mapping[str, Price] | None = None,
    wait: LockWait = NO_WAIT,
) -> DuckDBBackend:
    """Open the DuckDB store at ``path`` as a backend (``aiobs.store.connection.open_file`` says
    what opening a file does; ``prices``: the price table, the shipped list when None; ``wait``:
    how long to wait for another process's lock)."""
    from aiobs.semantic.views import install_views, is_materialised

    if prices is None:
        from aiobs.semantic.prices import load_prices

        prices = load_prices()
    opened = open_file(path, read_only=read_only, create=create, wait=wait)
    path, con, version = opened.path, opened.con, opened.schema_version
    materialised = is_materialised(con)
    if version and not materialised:
        # Written under other canonical field definitions (another aiobs version, or one from
        # before they were stored): recompute them, as a brief writer like a migration. If another
        # process holds the write lock, read through the computed view instead (correct, slower).
        if not read_only:
            _rematerialise(con)
        else:
            con.close()  # one process cannot hold the file both read-only and read-write
            upgrader: duckdb.DuckDBPyConnection | None
            try:
                upgrader = connect(path, read_only=False)
            except StoreUnavailableError:
                upgrader = None
            if upgrader is not None:
                try:
                    _rematerialise(upgrader)
                finally:
                    upgrader.close()
            con = connect(path, read_only=True, wait=wait)
        materialised = is_materialised(con)
    install_views(con, prices, materialised=materialised)
    return DuckDBBackend(
        path=path,
        con=con,
        read_only=read_only,
        schema_version=version,
        capabilities=Capabilities(
            materialised=materialised,
            log_time_index=version >= 6,
            temp_tables=True,
            parquet_export=True,
            ingest_log=True,
        ),
        prices=prices,
        wait=wait,
    )


def _rematerialise(con: duckdb.DuckDBPyConnection) -> None:
    from aiobs.semantic.views import materialise

    con.execute("BEGIN TRANSACTION")
    try:
        materialise(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
