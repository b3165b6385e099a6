"""The ClickHouse backend: the OpenTelemetry Collector ``clickhouseexporter``'s tables, read in
place, through the same analyses as the embedded DuckDB store.

Where the data is comes from a URL:

- ``clickhouse://USER:PASSWORD@HOST:8123/DATABASE`` (``clickhouses://`` for HTTPS, port 8443 by
  default): a server or cluster over its HTTP interface, with clickhouse-connect;
- ``chdb://PATH?database=NAME``: embedded ClickHouse (chdb) on a local data directory.

Each statement an analysis hands over (canonical SQL, ``?`` parameters) is rendered by
``aiobs.sql.CLICKHOUSE`` (parameters bound as literals, functions translated) and gets the
semantic views it reads as common table expressions (``aiobs.semantic.clickhouse.with_views``),
so a whole command's query runs on the engine as one statement: the engine aggregates, and only
the result travels. Results arrive as Arrow tables and become the Python values DuckDB gives
(naive UTC datetimes to the microsecond, dicts for maps), so every command formats them alike.

Read-only: aiobs sends no statement that changes a table; scratch tables are the session's
``TEMPORARY`` ones (scan, stats). Must not import duckdb, typer, rich or textual; chdb and
clickhouse-connect are imported only when such a backend is opened.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote, urlparse

from aiobs.backend import Capabilities, QueryError
from aiobs.errors import UsageError
from aiobs.sql import CLICKHOUSE, Dialect

if TYPE_CHECKING:
    import pyarrow as pa

    from aiobs.semantic.prices import Price

SCHEMES = ("clickhouse", "clickhouses", "chdb")
# Times as UTC (the store's times are UTC), strings as text rather than bytes in Arrow.
RESULT_SETTINGS = {"session_timezone": "UTC", "output_format_arrow_string_as_string": 1}
# A diff or scan passes the trace ids of its sides as an array literal (40k ids are 1.4 MB of
# SQL; the default limit is 256 KiB), and the parser applies the limit before it reads a query's
# own SETTINGS clause: so it is a session setting.
MAX_QUERY_SIZE = 256 * 1024 * 1024
TABLES = ("otel_traces", "otel_logs")  # what a backend needs to be worth opening
# ClickHouse error codes a user's own condition or SQL causes (syntax, unknown identifier or
# function, type mismatch, bad argument, cannot parse/convert): reported as their mistake.
_EVALUATION_CODES = {6, 27, 36, 38, 41, 43, 46, 47, 53, 62, 69, 70, 72, 386}


class _Engine(Protocol):
    def arrow(self, sql: str) -> pa.Table: ...

    def command(self, sql: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Chdb:
    """Embedded ClickHouse on a data directory. One per process (chdb allows one), shared by
    every reader of the backend behind a lock."""

    path: str
    database: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    session: Any = None

    def __post_init__(self) -> None:
        try:
            from chdb import session
        except ImportError as exc:
            raise UsageError(
                "chdb:// needs chdb (embedded ClickHouse)", hint="pip install 'aiobs[chdb]'"
            ) from exc

        try:
            self.session = session.Session(self.path)  # type: ignore[no-untyped-call]
            self.session.query(f"SET max_query_size = {MAX_QUERY_SIZE}")
        except Exception as exc:  # chdb raises bare RuntimeErrors
            raise UsageError(f"chdb://{self.path}: {str(exc).splitlines()[0]}") from exc

    def arrow(self, sql: str) -> pa.Table:
        settings = ", ".join(f"{k} = {v!r}" for k, v in RESULT_SETTINGS.items())
        sql = f"{sql}, {settings}" if " SETTINGS " in sql else f"{sql} SETTINGS {settings}"
        with self.lock:
            self.session.query(f"USE {_name(self.database)}")
            result = self.session.query(sql, "Arrow")
        import pyarrow as pa

        # Read here, not with chdb's "ArrowTable", which imports pandas (0.27 s a process).
        if len(result) == 0:
            return pa.Table.from_batches([], schema=pa.schema([]))
        return pa.RecordBatchFileReader(result.get_memview().view()).read_all()

    def command(self, sql: str) -> None:
        with self.lock:
            self.session.query(f"USE {_name(self.database)}")
            self.session.query(sql)

    def close(self) -> None:
        with self.lock:
            if self.session is not None:
                self.session.close()
                self.session = None


@dataclass
class _Http:
    """A ClickHouse server over HTTP(S), with clickhouse-connect (one session: the temporary
    tables of scan and stats live in it)."""

    client: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arrow(self, sql: str) -> pa.Table:
        with self.lock:  # a client's session runs one query at a time
            return self.client.query_arrow(sql, settings=RESULT_SETTINGS, use_strings=True)

    def command(self, sql: str) -> None:
        with self.lock:
            self.client.command(sql, settings=RESULT_SETTINGS)

    def close(self) -> None:
        self.client.close()


def _name(identifier: str) -> str:
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"


def redacted(url: str) -> str:
    """``url`` without its password, for messages and ``stats``."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = unquote(parts.username or "")
    return parts._replace(netloc=f"{user}:***@{netloc}" if user else netloc).geturl()


def _engine(url: str) -> _Engine:
    parts = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "chdb":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise UsageError(f"{url}: no data directory", hint="chdb:///path/to/data?database=otel")
        return _Chdb(path, query.get("database", "otel"))
    try:
        import clickhouse_connect
    except ImportError as exc:
        raise UsageError(
            "clickhouse:// needs clickhouse-connect", hint="pip install 'aiobs[clickhouse]'"
        ) from exc
    secure = parts.scheme == "clickhouses"
    database = parts.path.strip("/") or query.get("database", "otel")
    try:
        client = clickhouse_connect.get_client(
            host=parts.hostname or "localhost",
            port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=database,
            secure=secure,
            # Never a write: the server refuses any statement but reads (and settings).
            settings={"readonly": 2, "max_query_size": MAX_QUERY_SIZE},
        )
    except Exception as exc:
        raise UsageError(f"{redacted(url)}: {str(exc).splitlines()[0][:300]}") from exc
    return _Http(client)


def _to_python(table: pa.Table) -> list[list[Any]]:
    """The table's columns as DuckDB's Python values: times as naive UTC datetimes to the
    microsecond, maps as dicts (Arrow gives lists of pairs), the rest as Arrow gives them."""

    columns = []
    for column in table.columns:
        typ = column.type
        plain = _plain_type(typ)
        if plain != typ:
            # Truncated to the microsecond, as DuckDB's Python datetimes are.
            column = column.cast(plain, safe=False)
        values = column.to_pylist()
        if _has_map(typ):
            values = [_maps_to_dicts(v, typ) for v in values]
        columns.append(values)
    return columns


def _plain_type(typ: pa.DataType) -> pa.DataType:
    """``typ`` with every timestamp (in lists and structs too) naive and in microseconds."""
    import pyarrow as pa

    if pa.types.is_timestamp(typ):
        return pa.timestamp("us")
    if pa.types.is_list(typ):
        return pa.list_(pa.field(typ.value_field.name, _plain_type(typ.value_type)))
    if pa.types.is_large_list(typ):
        return pa.large_list(pa.field(typ.value_field.name, _plain_type(typ.value_type)))
    if pa.types.is_map(typ):
        return pa.map_(typ.key_type, _plain_type(typ.item_type))
    if pa.types.is_struct(typ):
        return pa.struct(
            [
                pa.field(f.name, _plain_type(f.type), f.nullable)
                for f in (typ.field(i) for i in range(typ.num_fields))
            ]
        )
    return typ


def _iso_ns(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{fraction:09d}Z"


def _rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    return list(zip(*_to_python(table), strict=True))


def _split_settings(sql: str) -> tuple[str, str]:
    """(the query, its trailing SETTINGS clause or ""): to nest the query in another statement
    that keeps the settings."""
    at = sql.rfind(" SETTINGS ")
    if at > 0 and ")" not in sql[at:]:
        return sql[:at], sql[at:]
    return sql, ""


def _has_map(typ: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_map(typ):
        return True
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return _has_map(typ.value_type)
    if pa.types.is_struct(typ):
        return any(_has_map(typ.field(i).type) for i in range(typ.num_fields))
    return False


def _maps_to_dicts(value: Any, typ: pa.DataType) -> Any:
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_map(typ):
        return {k: _maps_to_dicts(v, typ.item_type) for k, v in value}
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return [_maps_to_dicts(v, typ.value_type) for v in value]
    if pa.types.is_struct(typ):
        return {
            typ.field(i).name: _maps_to_dicts(value[typ.field(i).name], typ.field(i).type)
            for i in range(typ.num_fields)
        }
    return value


def _query_error(exc: Exception) -> QueryError:
    text = str(exc).strip()
    found = re.search(r"Code: (\d+)\. (?:DB::Exception: )?(.*?)(?: \(([A-Z_]+)\))?(?:\.|$)", text)
    code = int(found.group(1)) if found else None
    message = found.group(2) if found else text.splitlines()[0] if text else type(exc).__name__
    return QueryError(message[:500], evaluation=code in _EVALUATION_CODES)


_STATEMENTS = itertools.count(1)


@dataclass
class ClickHouseBackend:
    """An open ClickHouse backend (see the module docstring)."""

    url: str
    core: _Engine
    prices: Mapping[str, Price] = field(default_factory=dict, repr=False)
    owner: bool = True  # this handle opened the engine (a reader shares it)
    # The database has ``aiobs clickhouse ddl``'s span table, of these field definitions.
    spans_table: bool = False
    engine: str = "clickhouse"
    dialect: Dialect = CLICKHOUSE
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(
            materialised=False, log_time_index=False, temp_tables=True, ingest_log=False
        )
    )
    schema_version: int = 0

    @property
    def location(self) -> str:
        return redacted(self.url)

    def _sql(self, sql: str, params: Sequence[Any]) -> tuple[list[tuple[str, str]], str]:
        """The statement in ClickHouse SQL with its views, and before it the temporary tables it
        reads: (name, the statement that fills it), for each common table expression it reads
        more than once (``to_clickhouse_parts``)."""
        from aiobs.semantic.clickhouse import with_views
        from aiobs.sql.clickhouse import render_parts

        try:
            parts, body = render_parts(sql, params)
        except ValueError as exc:
            raise QueryError(f"not expressible in ClickHouse SQL: {exc}") from exc

        # Names of this statement's own (threads share the session: replay's context, the
        # TUI's workers), so no table of another statement is in the way.
        run = next(_STATEMENTS)
        names = {n: f"{n}_{run}" for n, _ in parts}

        def complete(statement: str) -> str:
            for name, unique in names.items():
                statement = statement.replace(name, unique)
            return with_views(statement, self.prices, spans_table=self.spans_table)

        fills = [(names[n], complete(f"CREATE TEMPORARY TABLE {n} AS {q}")) for n, q in parts]
        return fills, complete(body)

    def _run(self, sql: str, params: Sequence[Any], run: Callable[[str], Any]) -> Any:
        """``run`` the statement, after filling the temporary tables it reads (dropped after)."""
        fills, final = self._sql(sql, params)
        filled = []
        try:
            for name, fill in fills:
                self.core.command(fill)
                filled.append(name)
            return run(final)
        except UsageError:
            raise
        except Exception as exc:
            raise _query_error(exc) from exc
        finally:
            for name in filled:
                with contextlib.suppress(Exception):
                    self.core.command(f"DROP TEMPORARY TABLE IF EXISTS {name}")

    def _table(self, sql: str, params: Sequence[Any]) -> pa.Table:
        table: pa.Table = self._run(sql, params, self.core.arrow)
        return table

    def raw(self, sql: str, *, views: bool = False) -> tuple[list[str], list[tuple[Any, ...]]]:
        """A statement in ClickHouse's own SQL, as given (``aiobs query``), with the semantic
        views it names when ``views``: (names, rows)."""
        if views:
            from aiobs.semantic.clickhouse import with_views

            sql = with_views(sql, self.prices, spans_table=self.spans_table)
        try:
            table = self.core.arrow(sql)
            # ClickHouse writes DateTime (seconds) to Arrow as a plain UInt32: its type says
            # which columns are times.
            body, settings = _split_settings(sql)
            described = self.core.arrow(f"DESCRIBE TABLE ({body}){settings}")
            types = [str(r[1]) for r in _rows_of(described)]
        except UsageError:
            raise
        except Exception as exc:
            raise _query_error(exc) from exc
        import pyarrow as pa

        columns = _to_python(table)
        for i, typ in enumerate(types[: len(columns)]):
            if re.match(r"(Nullable\()?DateTime64\(9", typ):
                # To the nanosecond, as ISO text: what query shows of DuckDB's TIMESTAMP_NS.
                ns = table.column(i).cast(pa.int64()).to_pylist()
                columns[i] = [None if v is None else _iso_ns(v) for v in ns]
            elif re.match(r"(Nullable\()?DateTime(\(|\)|$)", typ):
                columns[i] = [
                    None if v is None else datetime.fromtimestamp(v, UTC).replace(tzinfo=None)
                    for v in columns[i]
                ]
        return list(table.column_names), list(zip(*columns, strict=True))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        table = self._table(sql, params)
        if table.num_columns == 0:
            return []
        return list(zip(*_to_python(table), strict=True))

    def records(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        table = self._table(sql, params)
        names = table.column_names
        return [dict(zip(names, row, strict=True)) for row in zip(*_to_python(table), strict=True)]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def batches(
        self, sql: str, params: Sequence[Any] = (), *, size: int = 2048
    ) -> Iterator[list[tuple[Any, ...]]]:
        rows = self.rows(sql, params)
        for at in range(0, len(rows), size):
            yield rows[at : at + size]

    def columns(self, sql: str) -> list[tuple[str, str]]:
        table = self._table(f"SELECT * FROM ({sql}) LIMIT 0", ())
        return [(f.name, str(f.type)) for f in table.schema]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if sql.lstrip().upper().startswith("SET "):
            return  # a DuckDB setting (memory, threads): the server's own apply
        self._run(sql, params, self.core.command)

    def copy_parquet(self, sql: str, path: str, options: str = "") -> None:
        raise QueryError("this ClickHouse backend does not write Parquet files")

    def lock_down(self) -> None:
        """From now on the session only reads: ``readonly = 2`` (reads, and settings other
        than readonly itself), which no later statement can lower. The HTTP client runs so
        from the start."""
        self.core.command("SET readonly = 2")

    def reader(self) -> ClickHouseBackend:
        return ClickHouseBackend(
            url=self.url,
            core=self.core,
            prices=self.prices,
            owner=False,
            spans_table=self.spans_table,
            capabilities=self.capabilities,
        )

    def interrupt(self) -> None:
        """Nothing to stop: the query in flight finishes, and the TUI drops its stale result."""

    def close(self) -> None:
        if self.owner:
            self.core.close()

    def __enter__(self) -> ClickHouseBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_backend(url: str, prices: Mapping[str, Price] | None = None) -> ClickHouseBackend:
    """The backend ``url`` names (``SCHEMES``), checked to hold the exporter's tables."""
    if prices is None:
        from aiobs.semantic.prices import load_prices

        prices = load_prices()
    scheme = urlparse(url).scheme
    if scheme not in SCHEMES:
        raise UsageError(
            f"--backend {redacted(url)}: not a backend URL",
            hint="clickhouse://user:password@host:8123/database, clickhouses://…, "
            "or chdb:///path?database=otel",
        )
    backend = ClickHouseBackend(url=url, core=_engine(url), prices=prices)
    try:
        _, rows = backend.raw(
            "SELECT table, name FROM system.columns WHERE database = currentDatabase()"
            f" AND table IN ({', '.join(repr(t) for t in TABLES)})"
        )
    except BaseException:
        backend.close()
        raise
    found = {(str(t), str(c)) for t, c in rows}
    missing = [t for t in TABLES if not any(table == t for table, _ in found)]
    if missing:
        backend.close()
        raise UsageError(
            f"{redacted(url)}: no {', '.join(missing)} table in its database",
            hint="point it at the database the collector's clickhouseexporter writes"
            " (?database=NAME, or the URL's path)",
        )
    from aiobs.semantic.clickhouse import SPANS_TABLE, spans_table_comment

    _, tables = backend.raw(
        "SELECT comment FROM system.tables WHERE database = currentDatabase()"
        f" AND name = '{SPANS_TABLE}'"
    )
    # Only a table of this aiobs' field definitions: another's columns would answer otherwise.
    backend.spans_table = any(str(c) == spans_table_comment() for (c,) in tables)
    if ("otel_logs", "EventName") not in found:
        backend.close()
        raise UsageError(
            f"{redacted(url)}: otel_logs has no EventName column (a clickhouseexporter older"
            " than the one that added it); aiobs reads events by name",
            hint="ALTER TABLE otel_logs ADD COLUMN EventName String, or upgrade the collector",
        )
    return backend
