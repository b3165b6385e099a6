"""Read-only SQL for users: one SELECT (WITH, FROM, VALUES, UNION …) or DESCRIBE, SHOW, SUMMARIZE.

The connection is already read-only; the check is a second wall and gives a clear exit-2 message
instead of a DuckDB error. It also refuses statements DuckDB would run on a read-only connection but
that reach outside the store (COPY … TO, ATTACH, INSTALL/LOAD, SET, PRAGMA, EXPORT). A refusal says
what the statement would do, in a sentence: "CHECKPOINT writes to the store". Table functions that
read files (``read_csv``, ``read_text``, ``glob`` …) are refused by DuckDB itself once the handle is
locked down (``Backend.lock_down``), inside DESCRIBE and SUMMARIZE as much as in a SELECT.

Must not import typer, rich or textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiobs.backend import QueryError
from aiobs.errors import UsageError

if TYPE_CHECKING:
    from sqlglot import exp

    from aiobs.backend import Backend

# The first word of a statement aiobs query runs.
READ_HEADS = frozenset(
    {"SELECT", "WITH", "FROM", "VALUES", "TABLE", "(", "DESCRIBE", "SHOW", "SUMMARIZE"}
)
READ_ONLY = "aiobs query runs read-only SQL"
ONE_READ = "aiobs query runs one SELECT, DESCRIBE, SHOW or SUMMARIZE"
NO_EXTENSIONS = "aiobs query cannot install or load extensions"
OUTSIDE = "only the store can be read"
# What each refused statement would do, by its first word (or two): the reason a refusal gives.
REFUSALS: dict[str, str] = {
    **{kw: f"{READ_ONLY}: {kw} changes the store's rows" for kw in (
        "INSERT", "UPDATE", "DELETE", "TRUNCATE", "MERGE", "UPSERT",
    )},
    **{kw: f"{READ_ONLY}: {kw} changes the store's schema" for kw in (
        "CREATE", "DROP", "ALTER", "COMMENT",
    )},
    **{kw: f"{READ_ONLY}: {kw} writes to the store" for kw in (
        "CHECKPOINT", "FORCE CHECKPOINT", "VACUUM", "ANALYZE",
    )},
    "ATTACH": f"{READ_ONLY}: ATTACH opens another database; {OUTSIDE}",
    "DETACH": f"{READ_ONLY}: DETACH closes a database; {OUTSIDE}",
    "USE": f"{READ_ONLY}: USE switches to another database or schema; {OUTSIDE}",
    "COPY": f"{READ_ONLY}: COPY reads or writes files; {OUTSIDE}",
    "EXPORT": f"{READ_ONLY}: EXPORT DATABASE writes files outside the store",
    "IMPORT": f"{READ_ONLY}: IMPORT DATABASE reads files into the store",
    "INSTALL": f"{READ_ONLY}: INSTALL fetches an extension; {NO_EXTENSIONS}",
    "FORCE INSTALL": f"{READ_ONLY}: FORCE INSTALL fetches an extension; {NO_EXTENSIONS}",
    "UPDATE EXTENSIONS": f"{READ_ONLY}: UPDATE EXTENSIONS fetches extensions; {NO_EXTENSIONS}",
    "LOAD": f"{READ_ONLY}: LOAD loads an extension; {NO_EXTENSIONS}",
    "SET": f"{READ_ONLY}: SET changes a setting, and the settings of aiobs query are locked",
    "RESET": f"{READ_ONLY}: RESET changes a setting, and the settings of aiobs query are locked",
    "PRAGMA": f"{READ_ONLY}: PRAGMA runs as a statement and can change settings",
    "CALL": f"{ONE_READ}: CALL runs a function as a statement",
    "EXPLAIN": f"{ONE_READ}: EXPLAIN prints a query plan, not rows",
    **{kw: f"{ONE_READ}: {kw} controls a transaction, and a read needs none" for kw in (
        "BEGIN", "START", "COMMIT", "ROLLBACK", "ABORT", "END",
    )},
    **{kw: f"{ONE_READ}: {kw} works with prepared statements" for kw in (
        "PREPARE", "EXECUTE", "DEALLOCATE",
    )},
}  # fmt: skip
HINTS: dict[str, str] = {
    "COPY": 'to save a result, redirect it: aiobs query "select …" -f csv > result.csv',
    "EXPORT": "aiobs export writes traces as OTLP JSON or Parquet",
    "IMPORT": "aiobs ingest loads telemetry files into the store",
    "SET": "to read the settings: select * from duckdb_settings()",
    "RESET": "to read the settings: select * from duckdb_settings()",
    "PRAGMA": "to read: select * from pragma_version(), describe ai_spans, show tables",
    "EXPLAIN": "run the SELECT itself; DESCRIBE shows the columns it would return",
}


# ClickHouse table functions that reach outside the cluster's tables: files, URLs, object
# stores, other databases and servers, programs.
CLICKHOUSE_OUTSIDE = frozenset(
    {
        "file", "url", "urlcluster", "s3", "s3cluster", "gcs", "azureblobstorage", "hdfs",
        "hdfscluster", "remote", "remotesecure", "cluster", "clusterallreplicas", "mysql",
        "postgresql", "sqlite", "mongodb", "redis", "jdbc", "odbc", "executable", "input",
        "iceberg", "deltalake", "hudi", "fuzzjson", "dictionary",
    }
)  # fmt: skip


def check_read_only(sql: str, dialect: str = "duckdb") -> str:
    """Return the single statement if it is a read; raise ``UsageError`` (exit 2) otherwise.
    ``dialect``: the engine's SQL the text is written in ("duckdb", or "clickhouse" on a
    ClickHouse backend, where a table function that reads outside the cluster is refused too)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import ParseError, TokenError

    from aiobs.analysis.where import quiet_sqlglot

    text = sql.strip().rstrip(";").strip()
    if not text:
        raise UsageError("empty query")
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(text)
    except TokenError:
        raise UsageError(
            "cannot parse query: a quoted string or identifier is never closed"
        ) from None
    statements = _split(tokens)
    if not statements:
        raise UsageError("empty query")  # only comments
    if len(statements) > 1:
        raise UsageError(
            f"{ONE_READ}; this text has {len(statements)} statements separated by `;`",
            hint="run each on its own",
        )
    words = [t.text.upper() for t in statements[0][:2]]
    head = words[0]
    if head not in READ_HEADS:
        raise _refusal(head, words, text, statements[0])
    if dialect == "clickhouse":
        for token, after in zip(statements[0], statements[0][1:], strict=False):
            if token.text.lower() in CLICKHOUSE_OUTSIDE and after.text == "(":
                raise UsageError(
                    f"{READ_ONLY}: {token.text}() reads outside the cluster's tables; {OUTSIDE}"
                )
    try:
        with quiet_sqlglot():
            parsed = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except (ParseError, TokenError) as exc:
        if head in ("DESCRIBE", "SHOW", "SUMMARIZE"):
            return text  # `describe` alone, `show databases`: DuckDB reads them, read-only
        raise UsageError(f"cannot parse query: {str(exc).splitlines()[0]}") from exc
    (stmt,) = parsed
    if isinstance(stmt, exp.Command) and head in ("DESCRIBE", "SHOW", "SUMMARIZE"):
        return text  # `show databases`, which sqlglot does not know: DuckDB reads it
    for node in stmt.walk():
        kind = _statement_kind(node)
        if kind is not None:
            raise _refusal(kind, [kind], text, [])
    if not isinstance(
        stmt,
        exp.Select
        | exp.Union
        | exp.Intersect
        | exp.Except
        | exp.Values
        | exp.Subquery
        | exp.Describe
        | exp.Show
        | exp.Summarize,
    ):
        raise _refusal(type(stmt).__name__.upper(), [], text, [])
    return text


def _split(tokens: list[Any]) -> list[list[Any]]:
    """The tokens of each statement, split at ``;`` (empty statements dropped)."""
    from sqlglot import TokenType

    statements: list[list[Any]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return [s for s in statements if s]


_STATEMENT_NODES = {
    "Insert": "INSERT",
    "Update": "UPDATE",
    "Delete": "DELETE",
    "Merge": "MERGE",
    "TruncateTable": "TRUNCATE",
    "Create": "CREATE",
    "Drop": "DROP",
    "Alter": "ALTER",
    "Copy": "COPY",
    "Set": "SET",
    "Pragma": "PRAGMA",
    "Attach": "ATTACH",
    "Detach": "DETACH",
    "Install": "INSTALL",
    "Use": "USE",
    "Transaction": "BEGIN",
    "Commit": "COMMIT",
    "Rollback": "ROLLBACK",
}


def _statement_kind(node: exp.Expr) -> str | None:
    """The first word of the statement ``node`` is, for a node that is one (inside a read: a
    ``WITH … INSERT``, a fallback ``Command``); None for the parts of a read."""
    from sqlglot import exp

    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return _STATEMENT_NODES.get(type(node).__name__)


def _refusal(head: str, words: list[str], text: str, tokens: list[Any]) -> UsageError:
    two = " ".join(words[:2])
    key = two if two in REFUSALS else head
    if key in REFUSALS:
        hint = HINTS.get(key)
        rest = text[tokens[0].end + 1 :].strip() if tokens else ""
        if key == "CALL" and rest:
            hint = f"a function's rows read with SELECT: select * from {rest}"
        return UsageError(REFUSALS[key], hint=hint)
    import difflib

    word = text[tokens[0].start : tokens[0].end + 1] if tokens else head
    close = difflib.get_close_matches(head, sorted(READ_HEADS - {"("}), n=1, cutoff=0.7)
    return UsageError(
        f"{READ_ONLY}: SELECT (or WITH, FROM, VALUES), DESCRIBE, SHOW or SUMMARIZE;"
        f" this statement starts with {word}",
        hint=f"did you mean {close[0]}?" if close else None,
    )


def _text_column(name: str, duck_type: str) -> str | None:
    """SQL that renders a column as ISO-8601 UTC text, for the types Python would mangle:
    TIMESTAMP_NS (datetime keeps microseconds) and TIMESTAMPTZ (needs pytz, and a zone)."""
    col = f'q."{name}"'
    if duck_type == "TIMESTAMP_NS":
        return (
            f"strftime({col}, '%Y-%m-%dT%H:%M:%S.')"
            f" || lpad((epoch_ns({col}) % 1000000000)::VARCHAR, 9, '0') || 'Z'"
        )
    if duck_type == "TIMESTAMP WITH TIME ZONE":
        return f"strftime(timezone('UTC', {col}), '%Y-%m-%dT%H:%M:%S.%fZ')"
    return None


def run_query(
    store: Backend, sql: str, *, limit: int | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    if store.engine == "clickhouse":
        return _run_clickhouse(store, sql, limit)
    text = check_read_only(sql)
    if limit is not None:
        text = f"SELECT * FROM ({text}) AS q LIMIT {int(limit)}"
    store.lock_down()
    try:
        described = store.columns(text)
        columns = [name for name, _ in described]
        rendered = {name: _text_column(name, duck_type) for name, duck_type in described}
        if any(rendered.values()) and len(set(columns)) == len(columns):
            exprs = ", ".join(
                f'{rendered[c]} AS "{c}"' if rendered[c] else f'q."{c}"' for c in columns
            )
            found = store.rows(f"SELECT {exprs} FROM ({text}) AS q")
        else:
            found = store.rows(text)
        rows = [dict(zip(columns, r, strict=True)) for r in found]
    except QueryError as exc:
        if "file system operations are disabled" in exc.message:
            raise UsageError(
                f"{READ_ONLY}: reading files is disabled; {OUTSIDE}",
                hint="aiobs ingest loads telemetry files into the store",
            ) from exc
        raise UsageError(f"query failed: {exc.message}") from exc
    return columns, rows


def _run_clickhouse(
    store: Backend, sql: str, limit: int | None
) -> tuple[list[str], list[dict[str, Any]]]:
    """``sql`` in ClickHouse's own SQL, on a ClickHouse backend, with the semantic views it
    names (``ai_spans`` …) as common table expressions; under ``readonly = 2``."""
    text = check_read_only(sql, dialect="clickhouse")
    if limit is not None:
        text = f"SELECT * FROM ({text}) AS q LIMIT {int(limit)}"
    store.lock_down()
    raw = getattr(store, "raw", None)
    if raw is None:
        raise UsageError(f"{store.location}: this backend runs no SQL of its own")
    try:
        columns, found = raw(text, views=True)
    except QueryError as exc:
        raise UsageError(f"query failed: {exc.message}") from exc
    return columns, [dict(zip(columns, r, strict=True)) for r in found]
