"""The ``--where`` language: a SQL boolean expression over canonical fields, checked with sqlglot.

Accepted: comparisons, ``AND``/``OR``/``NOT``, ``IN``, ``BETWEEN``, ``LIKE``/``ILIKE``, ``IS [NOT]
NULL``, arithmetic, literals, a small allow-list of functions, the canonical fields of ``ai_traces``
and ``ai_spans``, ``attr['any.key']`` (span attributes) and ``resource['any.key']``. Refused: any
statement, subquery, table function, unknown column or function — so ``--where`` can never read
files, write, or reach outside the store.

Field names resolve trace-first: ``status``, ``duration_ms``, ``service_name`` … are the trace's; a
span-only field (``model``, ``step_kind``, ``tool_name``, ``error_type``, ``attr[…]`` …) holds when
*some* span of the trace has it. ``span.status``/``span.duration_ms`` name the span's own value,
``trace.x`` the trace's explicitly.

Must not import typer, rich or textual.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiobs.errors import UsageError
from aiobs.semantic.views import AI_SPANS_COLUMNS, AI_TRACES_COLUMNS

TRACE_FIELDS = frozenset(AI_TRACES_COLUMNS)
SPAN_FIELDS = frozenset(
    c for c in AI_SPANS_COLUMNS if c not in ("attributes", "resource_attributes")
)
MAP_FIELDS = {"attr": "attributes", "resource": "resource_attributes"}
FUNCTIONS = frozenset(
    {
        "lower",
        "upper",
        "length",
        "len",
        "coalesce",
        "abs",
        "round",
        "starts_with",
        "ends_with",
        "contains",
        "regexp_matches",
        "list_contains",
        "array_contains",
        "nullif",
        "greatest",
        "least",
    }
)


@dataclass(frozen=True)
class Where:
    """A checked expression, rendered for the trace (``t``) and span (``s``) aliases."""

    text: str
    sql: str
    needs_spans: bool  # True when some field is span-level (evaluate with EXISTS over ai_spans)


def parse_where(text: str) -> Where:
    import sqlglot
    from sqlglot import exp

    if not text.strip():
        raise UsageError("--where is empty")
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except sqlglot.errors.SqlglotError as err:
        raise UsageError(f"--where {text!r}: not a valid expression ({_first_line(err)})") from None
    if tree is None:
        raise UsageError("--where is empty")

    allowed = (
        exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
        exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Neg, exp.Add, exp.Sub, exp.Mul,
        exp.Div, exp.Mod, exp.Literal, exp.Boolean, exp.Null, exp.Column, exp.Identifier,
        exp.Bracket, exp.Tuple, exp.DPipe, exp.Array,
    )  # fmt: skip
    needs_spans = False
    for node in tree.walk():
        if isinstance(node, exp.Column):
            if isinstance(node.parent, exp.Bracket) and node.parent.this is node:
                continue  # attr['…'] base, checked with the bracket
            table, name = node.table.lower(), node.name.lower()
            span_level = (table == "span" and name in SPAN_FIELDS) or (
                table == "" and name not in TRACE_FIELDS and name in SPAN_FIELDS
            )
            if span_level:
                needs_spans = True
            elif not (table in ("", "trace") and name in TRACE_FIELDS):
                raise UsageError(
                    f"--where {text!r}: unknown field {node.sql()}",
                    hint="fields: "
                    + ", ".join(sorted(TRACE_FIELDS | SPAN_FIELDS))
                    + ", attr['key'], resource['key']",
                )
        elif isinstance(node, exp.Bracket):
            base, keys = node.this, node.expressions
            if not (
                isinstance(base, exp.Column)
                and not base.table
                and base.name.lower() in MAP_FIELDS
                and len(keys) == 1
                and isinstance(keys[0], exp.Literal)
                and keys[0].is_string
            ):
                raise UsageError(
                    f"--where {text!r}: only attr['key'] and resource['key'] may be indexed"
                )
            needs_spans = True
        elif isinstance(node, exp.Is) and not isinstance(node.expression, exp.Null | exp.Boolean):
            raise UsageError(f"--where {text!r}: IS takes NULL, TRUE or FALSE")
        elif isinstance(node, allowed):
            continue
        elif isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name not in FUNCTIONS:
                raise UsageError(
                    f"--where {text!r}: function {name}() is not allowed",
                    hint="allowed: " + ", ".join(sorted(FUNCTIONS)),
                )
        else:
            raise UsageError(
                f"--where {text!r}: {node.key.upper()} is not allowed in a filter expression"
            )

    def qualify(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Bracket) and isinstance(node.this, exp.Column):
            node = node.copy()
            node.set("this", exp.column(MAP_FIELDS[node.this.name.lower()], table="s"))
            return node
        if isinstance(node, exp.Column):
            table, name = node.table.lower(), node.name.lower()
            if table == "span" or (table == "" and name not in TRACE_FIELDS):
                return exp.column(name, table="s")
            return exp.column(name, table="t")
        return node

    rendered = tree.transform(qualify).sql(dialect="duckdb", comments=False)
    return Where(text, rendered, needs_spans)


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:160]
