"""The ``--where`` language: a SQL boolean expression over canonical fields, checked with sqlglot.

Accepted: comparisons, ``AND``/``OR``/``NOT``, ``IN``, ``BETWEEN``, ``LIKE``/``ILIKE``, ``IS [NOT]
NULL``, arithmetic, literals, a small allow-list of functions, the canonical fields of ``ai_traces``
and ``ai_spans``, ``attr['any.key']`` (span attributes), ``resource['any.key']`` and ``span(…)``.
Refused: any statement, subquery, table function, unknown column or function — so ``--where`` can
never read files, write, or reach outside the store.

What a condition means, for the commands that select traces:

- Field names resolve trace-first: ``status``, ``duration_ms``, ``service_name`` … are the trace's
  (``trace.x`` says so explicitly); a span-only field (``model``, ``step_kind``, ``tool_name``,
  ``error_type``, ``attr[…]`` …) and ``span.x`` are a span's.
- Each comparison that reads a span field holds when *some span of the trace* meets it, and
  ``and``/``or``/``not`` combine those answers at the trace level: ``tool_name = 'a' and step_kind
  = 'handoff'`` is a trace with a span calling ``a`` and a span that hands off (not necessarily
  the same span); ``not tool_name = 'a'`` is a trace with no span calling ``a``. The negated forms
  of one comparison (``is not null``, ``not in``, ``not like``, ``not between``, ``<>``) stay one
  comparison: ``tool_name is not null`` is a trace with some span that calls a tool.
- ``span(…)`` asks for *one span* that meets everything inside at once: ``span(tool_name = 'a' and
  status = 'error')`` is a trace with a failed call of ``a``. Inside it, a name both levels have
  (``status``, ``duration_ms``, ``input_tokens`` …) is the span's; ``trace.x`` is the trace's.

Must not import typer, rich or textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from aiobs.errors import UsageError
from aiobs.semantic.views import AI_SPANS_COLUMNS, AI_TRACES_COLUMNS

if TYPE_CHECKING:
    from sqlglot import exp

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
        "regexp_like",  # what sqlglot parses regexp_matches(…) to; rendered back as it was
        "list_contains",
        "array_contains",
        "nullif",
        "greatest",
        "least",
    }
)
SPAN_SCOPE = "span"  # span(…): one span meets every condition inside


@dataclass(frozen=True)
class Where:
    """A checked expression: ``sql`` is one condition over the trace alias ``t`` (span-level parts
    are ``EXISTS`` subqueries over ``ai_spans s``); ``fields`` the canonical fields it reads, at
    either level (the analyses plan by them: one that reads no cost prices only what it shows)."""

    text: str
    sql: str
    fields: frozenset[str] = frozenset()


@cache
def _dialect() -> Any:
    """DuckDB's dialect, with a prefix ``NOT`` marked: sqlglot parses ``NOT x IS NULL`` and ``x IS
    NOT NULL`` to the same tree, and only the first negates at the trace level."""
    from sqlglot import TokenType, exp
    from sqlglot.dialects.duckdb import DuckDB

    def prefix_not(parser: Any) -> exp.Expr:
        node: exp.Expr = parser.expression(exp.Not(this=parser._parse_equality()))
        node.meta["prefix_not"] = True
        return node

    base: Any = DuckDB.Parser

    class WhereParser(base):  # type: ignore[misc]
        UNARY_PARSERS: ClassVar = {**base.UNARY_PARSERS, TokenType.NOT: prefix_not}

    class WhereDialect(DuckDB):
        Parser = WhereParser

    return WhereDialect


def parse_where(text: str) -> Where:
    import sqlglot
    from sqlglot import exp

    if not text.strip():
        raise UsageError("--where is empty")
    try:
        tree = sqlglot.parse_one(text, read=_dialect())
    except sqlglot.errors.SqlglotError as err:
        raise UsageError(f"--where {text!r}: not a valid expression ({_first_line(err)})") from None
    except RecursionError:
        raise UsageError(f"--where {text!r}: nested too deeply") from None
    if tree is None:
        raise UsageError("--where is empty")
    try:
        _check(text, tree)
        rendered = _render(text, tree)
        sql = rendered.sql(dialect="duckdb", comments=False)
    except RecursionError:
        raise UsageError(f"--where {text!r}: nested too deeply") from None
    fields = frozenset(c.name.lower() for c in tree.find_all(exp.Column))
    return Where(text, sql, fields)


def _check(text: str, tree: exp.Expr) -> None:
    """Refuse anything but a filter: every node is an allowed operator, literal, known field,
    ``attr['key']``/``resource['key']``, allowed function or ``span(…)`` holding a condition."""
    from sqlglot import exp

    allowed = (
        exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
        exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Neg, exp.Add, exp.Sub, exp.Mul,
        exp.Div, exp.Mod, exp.Literal, exp.Boolean, exp.Null, exp.Column, exp.Identifier,
        exp.Bracket, exp.Tuple, exp.DPipe, exp.Array,
    )  # fmt: skip
    for node in tree.walk():
        if node.error_messages():  # e.g. `@` parses to ABS() with its argument missing
            raise UsageError(f"--where {text!r}: not a valid expression")
        if isinstance(node, exp.Column):
            if isinstance(node.parent, exp.Bracket) and node.parent.this is node:
                continue  # attr['…'] base, checked with the bracket
            table, name = node.table.lower(), node.name.lower()
            if not (
                (table == "span" and name in SPAN_FIELDS)
                or (table == "trace" and name in TRACE_FIELDS)
                or (table == "" and name in TRACE_FIELDS | SPAN_FIELDS)
            ):
                raise UsageError(
                    f"--where {text!r}: unknown field {node.sql()}",
                    hint="fields: "
                    + ", ".join(sorted(TRACE_FIELDS | SPAN_FIELDS))
                    + ", attr['key'], resource['key'], span(…)",
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
        elif isinstance(node, exp.Is) and not isinstance(node.expression, exp.Null | exp.Boolean):
            raise UsageError(f"--where {text!r}: IS takes NULL, TRUE or FALSE")
        elif _is_span_scope(node):
            if len(node.expressions) != 1 or any(
                _is_span_scope(inner) for inner in node.expressions[0].walk()
            ):
                raise UsageError(
                    f"--where {text!r}: span(…) takes one condition, and no span(…) inside it",
                    hint="span(tool_name = 'a' and status = 'error'): one span meets both",
                )
        elif isinstance(node, allowed):
            continue
        elif isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name not in FUNCTIONS:
                raise UsageError(
                    f"--where {text!r}: function {name}() is not allowed",
                    hint="allowed: " + ", ".join(sorted(FUNCTIONS)) + "; span(…) for one span",
                )
        else:
            raise UsageError(
                f"--where {text!r}: {node.key.upper()} is not allowed in a filter expression"
            )


def _is_span_scope(node: exp.Expr) -> bool:
    from sqlglot import exp

    return isinstance(node, exp.Anonymous) and node.name.lower() == SPAN_SCOPE


def _render(text: str, tree: exp.Expr) -> exp.Expr:
    """The tree over the trace alias ``t``: the boolean connectives stay at the trace level, and
    each comparison (or ``span(…)``) that reads a span field becomes "some span has it"."""
    from sqlglot import exp

    def qualify(node: exp.Expr, span_first: bool) -> exp.Expr:
        if isinstance(node, exp.Bracket) and isinstance(node.this, exp.Column):
            node = node.copy()
            node.set("this", exp.column(MAP_FIELDS[node.this.name.lower()], table="s"))
            return node
        if isinstance(node, exp.Column):
            table, name = node.table.lower(), node.name.lower()
            span_level = table == "span" or (
                table == "" and name in SPAN_FIELDS and (span_first or name not in TRACE_FIELDS)
            )
            return exp.column(name, table="s" if span_level else "t")
        return node

    def span_part(node: exp.Expr) -> exp.Expr | None:
        """The span-level condition ``node`` asks some span to meet (a comparison that reads a
        span field, or ``span(…)``), qualified; None when ``node`` is not one."""
        node = _unparen(node)
        if _is_span_scope(node):
            inner: exp.Expr = node.expressions[0].transform(lambda n: qualify(n, True))
            return inner
        if _is_connective(node) or isinstance(node, exp.Boolean):
            return None
        if any(_is_span_scope(n) for n in node.walk()):
            raise UsageError(
                f"--where {text!r}: span(…) is a condition of its own; combine it with and/or/not",
            )
        qualified = node.transform(lambda n: qualify(n, False))
        if not any(c.table == "s" for c in qualified.find_all(exp.Column)):
            return None
        if any(_is_connective(n) for n in node.walk()):
            # and/or/not under another operator (`(a and b) is true`, coalesce(a or b, …)) would
            # be read for one span, not for the trace: say so instead of guessing.
            raise UsageError(
                f"--where {text!r}: and/or/not inside {node.key.upper()} cannot be read per trace",
                hint="write the and/or/not outside it, or span(…) for one span meeting it all",
            )
        return qualified

    def some_span(conditions: list[exp.Expr]) -> exp.Expr:
        cond = (
            exp.or_(*(exp.paren(c) for c in conditions)) if len(conditions) > 1 else conditions[0]
        )
        select = exp.select("1").from_(exp.to_table("ai_spans").as_("s"))
        same_trace = exp.column("trace_id", table="s").eq(exp.column("trace_id", table="t"))
        return exp.Exists(this=select.where(same_trace).where(exp.paren(cond)))

    def walk(node: exp.Expr) -> exp.Expr:
        node = _unparen(node)
        if isinstance(node, exp.And | exp.Or):
            operands = _flatten(node)
            merged: list[exp.Expr] = []  # span conditions one EXISTS can hold
            rest: list[exp.Expr] = []
            for operand in operands:
                if isinstance(node, exp.Or):
                    # EXISTS(a) OR EXISTS(b) is EXISTS(a OR b): one pass over the spans.
                    part = span_part(operand)
                else:
                    # NOT EXISTS(a) AND NOT EXISTS(b) is NOT EXISTS(a OR b).
                    inner = _unparen(operand)
                    part = span_part(inner.this) if _is_prefix_not(inner) else None
                if part is None:
                    rest.append(walk(operand))
                else:
                    merged.append(part)
            if merged:
                exists = some_span(merged)
                rest.append(exists if isinstance(node, exp.Or) else exp.not_(exists))
            parts = [exp.paren(p) if _is_connective(p) else p for p in rest]
            return exp.or_(*parts) if isinstance(node, exp.Or) else exp.and_(*parts)
        if _is_prefix_not(node):
            return exp.not_(exp.paren(walk(node.this)))
        part = span_part(node)
        if part is not None:
            return some_span([part])
        return node.transform(lambda n: qualify(n, False))

    return walk(tree)


def _is_prefix_not(node: exp.Expr) -> bool:
    from sqlglot import exp

    return isinstance(node, exp.Not) and bool(node.meta.get("prefix_not"))


def _is_connective(node: exp.Expr) -> bool:
    """and/or and a prefix not: the operators that combine conditions at the trace level."""
    from sqlglot import exp

    return isinstance(node, exp.And | exp.Or) or _is_prefix_not(node)


def _unparen(node: exp.Expr) -> exp.Expr:
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _flatten(node: exp.Expr) -> list[exp.Expr]:
    """The operands of a chain of one connective (``a or b or (c or d)``), without recursion: a
    thousand ``or``s are one list, not a thousand nested calls."""
    kind, stack, out = type(node), [node], []
    while stack:
        item = _unparen(stack.pop())
        if type(item) is kind:
            stack.extend([item.expression, item.this])
        else:
            out.append(item)
    return out


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:160]
