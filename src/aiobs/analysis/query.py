"""Read-only SQL for users: exactly one SELECT (WITH, UNION, VALUES allowed), checked with sqlglot.

The connection is already read-only; the check is a second wall and gives a clear exit-2 message
instead of a DuckDB error. It also refuses statements DuckDB would run on a read-only connection but
that reach outside the store (COPY … TO, ATTACH, INSTALL/LOAD, SET, PRAGMA, EXPORT).

Must not import typer, rich or textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiobs.errors import UsageError

if TYPE_CHECKING:
    from aiobs.store.connection import Store


def check_read_only(sql: str) -> str:
    """Return the single statement if it is a read; raise ``UsageError`` (exit 2) otherwise."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    text = sql.strip().rstrip(";").strip()
    if not text:
        raise UsageError("empty query")
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except (ParseError, TokenError) as exc:
        raise UsageError(f"cannot parse query: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise UsageError(f"expected one statement, got {len(statements)}")
    stmt = statements[0]
    if not isinstance(stmt, exp.Select | exp.Union | exp.Intersect | exp.Except | exp.Values):
        kind = type(stmt).__name__.upper()
        raise UsageError(f"only read queries (SELECT/WITH) are allowed; this is a {kind} statement")
    for node in stmt.walk():
        if isinstance(
            node,
            exp.Insert
            | exp.Update
            | exp.Delete
            | exp.Create
            | exp.Drop
            | exp.Alter
            | exp.Command
            | exp.Copy
            | exp.Set
            | exp.Pragma,
        ):
            raise UsageError(f"only read queries are allowed; found {type(node).__name__.upper()}")
    return text


def run_query(
    store: Store, sql: str, *, limit: int | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    import duckdb

    text = check_read_only(sql)
    if limit is not None:
        text = f"SELECT * FROM ({text}) AS q LIMIT {int(limit)}"
    try:
        cur = store.con.execute(text)
    except duckdb.Error as exc:
        raise UsageError(f"query failed: {str(exc).splitlines()[0]}") from exc
    description = cur.description or []
    columns = [d[0] for d in description]
    ns_columns = [d[0] for d in description if str(d[1]) == "TIMESTAMP_NS"]
    if ns_columns and len(set(columns)) == len(columns):
        # Python datetimes hold microseconds: render nanosecond timestamps as ISO text in SQL
        # rather than silently dropping the last three digits.
        exprs = ", ".join(
            (
                f"strftime(q.\"{c}\", '%Y-%m-%dT%H:%M:%S.')"
                f" || lpad((epoch_ns(q.\"{c}\") % 1000000000)::VARCHAR, 9, '0') || 'Z' AS \"{c}\""
            )
            if c in ns_columns
            else f'q."{c}"'
            for c in columns
        )
        cur = store.con.execute(f"SELECT {exprs} FROM ({text}) AS q")
    rows = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
    return columns, rows
