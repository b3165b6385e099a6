"""Opening the store: one writer at a time, readers read-only, clear errors for every way it can fail.

DuckDB allows one writing process per file; a second process gets an IOException naming the holder.
We turn that, a missing or unreadable file, and a schema from a newer aiobs into
``StoreUnavailableError`` (exit 3) with the file's path in the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiobs.errors import StoreUnavailableError
from aiobs.store import migrations

if TYPE_CHECKING:
    import duckdb


@dataclass
class Store:
    """An open connection to the store and how it was opened."""

    path: Path
    con: duckdb.DuckDBPyConnection
    read_only: bool
    schema_version: int = 0
    # aiobs_spans/aiobs_traces hold every span under the current field definitions (else the
    # views compute the fields from the attributes).
    materialised: bool = False
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if not self._closed:
            self.con.close()
            self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LOCK_PATTERNS = ("could not set lock", "conflicting lock", "database is locked")


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    from aiobs.store.engine import duckdb_engine

    # A writer scans Python Arrow batches (ingest), which the engine alone refuses: the package
    # sets that up.
    engine = duckdb_engine(package=not read_only)

    try:
        con: duckdb.DuckDBPyConnection = engine.connect(str(path), read_only=read_only)
        return con
    except engine.Error as exc:
        text = str(exc)
        low = text.lower()
        if any(p in low for p in _LOCK_PATTERNS):
            holder = re.search(r"PID (\d+)", text)
            who = f" (held by process {holder.group(1)})" if holder else ""
            raise StoreUnavailableError(
                f"store {path} is locked by another aiobs writer{who}",
                hint="wait for the running `aiobs ingest` to finish, or use another --db",
            ) from exc
        raise StoreUnavailableError(f"cannot open store {path}: {text}") from exc


def open_store(path: Path, *, read_only: bool = True, create: bool = False) -> Store:
    """Open the store at ``path``.

    Readers (``read_only=True``) never create or change the file, except to apply pending migrations to
    an older store (briefly, as a writer). ``create=True`` (ingest, demo) creates a blank store.
    """
    path = Path(path)
    if not path.exists():
        if not create:
            raise StoreUnavailableError(
                f"no store at {path}",
                hint="run `aiobs demo` or `aiobs ingest FILE…` first, or pass --db / set AIOBS_DB",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    elif path.is_dir():
        raise StoreUnavailableError(f"store path {path} is a directory, not a DuckDB file")

    con = _connect(path, read_only=read_only)
    try:
        version = migrations.current_version(con)
    except Exception as exc:
        con.close()
        raise StoreUnavailableError(f"cannot read store {path}: {exc}") from exc
    if version > migrations.LATEST:
        con.close()
        raise StoreUnavailableError(
            f"store {path} has schema version {version}, newer than this aiobs understands"
            f" ({migrations.LATEST})",
            hint="upgrade aiobs (pip install -U aiobs)",
        )
    if version < migrations.LATEST:
        if read_only:
            con.close()
            writer = _connect(path, read_only=False)
            try:
                migrations.migrate(writer)
            finally:
                writer.close()
            con = _connect(path, read_only=True)
        else:
            migrations.migrate(con)
        version = migrations.LATEST
    store = Store(path=path, con=con, read_only=read_only, schema_version=version)
    from aiobs.semantic.views import install_views, is_materialised

    materialised = is_materialised(store)
    if version and not materialised:
        # Written under other canonical field definitions (another aiobs version): recompute them,
        # as a brief writer like a migration. If another process holds the write lock, read through
        # the computed view instead (correct, slower).
        if not read_only:
            _rematerialise(con)
        else:
            con.close()  # one process cannot hold the file both read-only and read-write
            upgrader: duckdb.DuckDBPyConnection | None
            try:
                upgrader = _connect(path, read_only=False)
            except StoreUnavailableError:
                upgrader = None
            if upgrader is not None:
                try:
                    _rematerialise(upgrader)
                finally:
                    upgrader.close()
            con = _connect(path, read_only=True)
            store = Store(path=path, con=con, read_only=read_only, schema_version=version)
        materialised = is_materialised(store)
    store.materialised = materialised
    install_views(store, materialised=materialised)
    return store


def _rematerialise(con: duckdb.DuckDBPyConnection) -> None:
    from aiobs.semantic.views import materialise

    con.execute("BEGIN TRANSACTION")
    try:
        materialise(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
