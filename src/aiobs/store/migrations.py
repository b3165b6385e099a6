"""Schema migrations: an ordered list, each applied once and recorded in ``aiobs_schema_migrations``.

A store whose recorded version is higher than ``len(MIGRATIONS)`` was written by a newer aiobs and is
refused (exit 3) rather than half-understood. Never edit or reorder a released migration: append.
The semantic views are not migrations; they are (re)created from ``aiobs.semantic`` on every open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiobs.store import schema

if TYPE_CHECKING:
    import duckdb

Migration = tuple[str, Callable[["duckdb.DuckDBPyConnection"], None]]


def _m001_exporter_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table in schema.TELEMETRY_TABLES:
        con.execute(table.ddl())


def _m002_bookkeeping(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(schema.AIOBS_INGESTS.ddl())
    con.execute(schema.AIOBS_REJECTS.ddl())
    con.execute("CREATE SEQUENCE IF NOT EXISTS aiobs_ingest_seq START 1")


def _m003_span_keys(con: duckdb.DuckDBPyConnection) -> None:
    # Span ids as 64-bit integers: ingest's cheap "seen before?" probe (ingest/pipeline.py,
    # insert_spans). Not unique: two spans may share a random span id; the exact check follows.
    con.execute("CREATE TABLE IF NOT EXISTS aiobs_span_keys (span UBIGINT)")
    con.execute(
        "INSERT INTO aiobs_span_keys SELECT DISTINCT ('0x' || SpanId)::UBIGINT FROM otel_traces"
    )


def _m004_meta(con: duckdb.DuckDBPyConnection) -> None:
    # Facts about the store as a whole, e.g. ``demo.manifest``: the ground truth of a demo store.
    con.execute(
        "CREATE TABLE IF NOT EXISTS aiobs_meta (key VARCHAR PRIMARY KEY, value VARCHAR,"
        " updated_at TIMESTAMP)"
    )


def _m005_canonical_spans(con: duckdb.DuckDBPyConnection) -> None:
    # The canonical AI fields of every span are materialised (aiobs_spans, aiobs_traces) by the
    # DuckDB backend whenever the store's semantic fingerprint is not this aiobs' — a store that
    # never had them included — and kept current by ingest. They follow the field definitions,
    # not the schema, so this step (which once built them) leaves them to it: the store layer
    # does not know the semantic layer.
    del con


def _m006_trace_log_times(con: duckdb.DuckDBPyConnection) -> None:
    # When each trace's log records were written (replay's logs lookup): see schema.TRACE_LOG_TIMES_DDL.
    con.execute(schema.TRACE_LOG_TIMES_DDL)
    con.execute(f"INSERT INTO aiobs_trace_log_times {schema.trace_log_times_sql('otel_logs')}")


def _m007_ingest_redacted(con: duckdb.DuckDBPyConnection) -> None:
    # How many values `ingest --redact` rewrote in each file; NULL: it was ingested without.
    con.execute("ALTER TABLE aiobs_ingests ADD COLUMN redacted BIGINT")


MIGRATIONS: list[Migration] = [
    ("exporter tables", _m001_exporter_tables),
    ("bookkeeping tables", _m002_bookkeeping),
    ("span keys", _m003_span_keys),
    ("store metadata", _m004_meta),
    ("canonical span fields", _m005_canonical_spans),
    ("trace log times", _m006_trace_log_times),
    ("ingest redaction count", _m007_ingest_redacted),
]

LATEST = len(MIGRATIONS)

_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS aiobs_schema_migrations (
  version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP, aiobs_version VARCHAR
)"""


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The store's recorded schema version; 0 for a blank file."""
    from aiobs.store.engine import duckdb_engine

    engine = duckdb_engine()

    # Asking the table directly: looking it up in duckdb_tables() first cost 18 ms a command.
    try:
        row = con.execute(
            "SELECT coalesce(max(version), 0) FROM aiobs_schema_migrations"
        ).fetchone()
    except engine.CatalogException:
        return 0
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection, *, target: int = LATEST) -> list[int]:
    """Apply every pending migration up to ``target``, each in its own transaction. Returns versions."""
    from aiobs import __version__

    con.execute(_MIGRATIONS_DDL)
    applied: list[int] = []
    for version in range(current_version(con) + 1, target + 1):
        name, step = MIGRATIONS[version - 1]
        con.execute("BEGIN TRANSACTION")
        try:
            step(con)
            con.execute(
                "INSERT INTO aiobs_schema_migrations VALUES (?, ?, now()::TIMESTAMP, ?)",
                [version, name, __version__],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied
