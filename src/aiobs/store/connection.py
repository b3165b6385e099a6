"""Opening the store's file: one writer at a time, readers read-only, clear errors for every way it
can fail, and the schema migrated to this aiobs' version.

DuckDB allows one writing process per file; a second process gets an IOException naming the holder.
We turn that, a missing or unreadable file, and a schema from a newer aiobs into
``StoreUnavailableError`` (exit 3) with the file's path in the message.

This is the file and its tables only: the canonical views and columns over them are the DuckDB
backend's (``aiobs.backend.duckdb``), which opens the file through ``open_file``. Must not import
``aiobs.semantic`` or ``aiobs.backend``.
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
    """An open connection to the store's file and how it was opened (writers: ingest and demo
    use ``con`` directly; readers go through ``aiobs.backend``)."""

    path: Path
    con: duckdb.DuckDBPyConnection
    read_only: bool
    schema_version: int = 0
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


def connect(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to an existing store file (exit 3 when it is locked or unreadable)."""
    return _connect(path, read_only)


def open_file(path: Path, *, read_only: bool = True, create: bool = False) -> Store:
    """Open the store's file at ``path``, its schema migrated to this aiobs' version.

    Readers (``read_only=True``) never create or change the file, except to apply pending migrations
    to an older store (briefly, as a writer). ``create=True`` (ingest, demo) creates a blank store.
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
    return Store(path=path, con=con, read_only=read_only, schema_version=version)
