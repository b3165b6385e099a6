"""Read-only SQL for users: exactly one SELECT (WITH, UNION, VALUES allowed), checked with sqlglot.

The connection is already read-only; the check is a second wall and gives a clear exit-2 message
instead of a DuckDB error. It also refuses statements DuckDB would run on a read-only connection but
that reach outside the store (COPY … TO, ATTACH, INSTALL/LOAD, SET, PRAGMA, EXPORT).

Must not import typer, rich or textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiobs.backend import QueryError
from aiobs.errors import UsageError

if TYPE_CHECKING:
    from aiobs.backend import Backend


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
        raise UsageError(f"query failed: {exc.message}") from exc
    return columns, rows
