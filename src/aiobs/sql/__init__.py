"""The SQL dialects: the one place where an engine's SQL differs from the canonical one.

Every analysis writes each of its queries once, in the canonical dialect: DuckDB's SQL over the
canonical views (``ai_spans``, ``ai_traces``, ``aiobs_span_facts``, ``aiobs_trace_facts``) and
the collector exporter's ``otel_*`` tables, with ``?`` parameters. A backend hands each statement
to its ``Dialect``, which renders it for the engine:

- ``DUCKDB`` is the canonical dialect: the statement passes unchanged and the engine binds the
  parameters.
- ``CLICKHOUSE`` (``aiobs.sql.clickhouse``) binds the parameters as literals and translates the
  statement, function by function, to ClickHouse's SQL and semantics; the views it reads are
  then added as common table expressions by ``aiobs.semantic.clickhouse.query_sql``.

So a new engine is a new dialect here, not a fork of the analyses; tests/test_sql_dialects.py
runs every statement the read commands send, in both engines, and compares the rows.

Must not import any other aiobs package (the semantic layer, the backends and the analyses sit
above it), nor duckdb, typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rendered:
    """A statement in an engine's dialect, and the parameters still to bind (none when the
    dialect bound them as literals)."""

    sql: str
    params: Sequence[Any] = ()


@dataclass(frozen=True)
class Dialect:
    """How statements written in the canonical dialect reach one engine.

    ``name`` is sqlglot's name of the engine's dialect; ``canonical`` says the engine runs the
    canonical SQL as written (no translation, parameters bound by the engine)."""

    name: str
    canonical: bool = False

    def render(self, sql: str, params: Sequence[Any] = ()) -> Rendered:
        """``sql`` (canonical, ``?`` parameters) for this dialect's engine."""
        if self.canonical:
            return Rendered(sql, params)
        if self.name == "clickhouse":
            from aiobs.sql.clickhouse import to_clickhouse

            return Rendered(to_clickhouse(bind_literals(sql, params)))
        raise ValueError(f"no SQL translation to the {self.name} dialect")


#: The dialect the analyses write their SQL in.
DUCKDB = Dialect("duckdb", canonical=True)
CLICKHOUSE = Dialect("clickhouse")


def bind_literals(sql: str, params: Sequence[Any]) -> str:
    """``sql`` (canonical) with each ``?`` replaced, in order, by its parameter as a literal of
    the canonical dialect: for an engine that gets one self-contained statement.

    Strings are quoted (a quote doubled), times become ``TIMESTAMP`` literals in UTC (the
    store's times are UTC), lists become list literals; a ``?`` inside a string literal or a
    quoted name is not a parameter (sqlglot's tokenizer tells them apart)."""
    from sqlglot import TokenType
    from sqlglot.dialects.duckdb import DuckDB

    places = [t for t in DuckDB().tokenize(sql) if t.token_type == TokenType.PLACEHOLDER]
    if len(places) != len(params):
        raise ValueError(f"{len(places)} placeholders for {len(params)} parameters")
    out: list[str] = []
    at = 0
    for token, value in zip(places, params, strict=True):
        text = value.sql if isinstance(value, Raw) else _literal(value).sql(dialect="duckdb")
        out += [sql[at : token.start], text]
        at = token.end + 1
    return "".join(out) + sql[at:]


@dataclass(frozen=True)
class Raw:
    """A parameter ``bind_literals`` writes as this SQL text, as it is."""

    sql: str


def _literal(value: Any) -> Any:
    from datetime import UTC, datetime

    from sqlglot import exp

    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[_literal(v) for v in value])
    if value is None or isinstance(value, bool | int | float | str):
        return exp.convert(value)
    raise TypeError(f"cannot bind a {type(value).__name__} as a SQL literal")
