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
- ``eval.NAME`` is the label (``pass``/``fail``, or an imported evaluator's own) of the evaluation
  ``NAME`` on a span, ``eval.NAME.score`` its score: span fields like the others, so
  ``eval.unsupported_answer = 'fail'`` is a trace with an answer that evaluation failed, and
  ``span(model = 'gpt-4.1' and eval.tone.score < 3)`` one gpt-4.1 answer the judge scored low.
  A name that is not a plain word takes double quotes: ``eval."answer-relevance"``.
- ``span(…)`` asks for *one span* that meets everything inside at once: ``span(tool_name = 'a' and
  status = 'error')`` is a trace with a failed call of ``a``. Inside it, a name both levels have
  (``status``, ``duration_ms``, ``input_tokens`` …) is the span's; ``trace.x`` is the trace's.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
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
EVAL_SCOPE = "eval"  # eval.NAME (a span's evaluation label), eval.NAME.score (its score)
EVENT = "gen_ai.evaluation.result"
# The first words of statements: a condition that starts with one is a statement, not a condition.
STATEMENT_WORDS = frozenset(
    {
        "SELECT", "WITH", "FROM", "VALUES", "TABLE", "DESCRIBE", "SHOW", "SUMMARIZE", "INSERT",
        "UPDATE", "DELETE", "TRUNCATE", "MERGE", "CREATE", "DROP", "ALTER", "COMMENT",
        "CHECKPOINT", "VACUUM", "ANALYZE", "ATTACH", "DETACH", "USE", "COPY", "EXPORT", "IMPORT",
        "INSTALL", "LOAD", "SET", "RESET", "PRAGMA", "CALL", "EXPLAIN", "BEGIN", "COMMIT",
        "ROLLBACK", "PREPARE", "EXECUTE", "DEALLOCATE", "FORCE",
    }
)  # fmt: skip
EXAMPLE = "a condition is one expression, e.g. status = 'error' and duration_ms > 2000"
# How _render_error (cli/main.py) starts the two lines: the caret under the condition in the
# error line is indented by the difference.
ERROR_PREFIX, HINT_PREFIX = "aiobs: error: ", "aiobs: hint: "
EXCERPT = 100  # a longer condition is shown as a window around the spot


class ConditionError(UsageError):
    """A condition that cannot be read, in the words of the person who wrote it.

    The message names the option the condition came from and echoes it; the hint is a caret
    under the spot (aligned with the echo when both lines are printed under the CLI's
    ``aiobs: error:`` / ``aiobs: hint:`` prefixes) and what to do about it.
    ``position`` is the offset in ``condition`` (None when no one spot is to blame)."""

    def __init__(
        self,
        option: str,
        condition: str,
        problem: str,
        *,
        at: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.option, self.condition, self.problem = option, condition, problem
        if at is not None:
            at = max(0, min(at, len(condition)))  # past the end: under the closing quote
        self.position, self.fix = at, fix
        shown, column = _excerpt(condition, at)
        quote = "'" if '"' in shown and "'" not in shown else '"'
        message = f"{option} {quote}{_visible(shown)}{quote}: {problem}"
        hint = fix
        if column is not None:
            indent = len(ERROR_PREFIX) - len(HINT_PREFIX) + len(option) + 2 + column
            hint = " " * indent + "^" + (f" {fix}" if fix else "")
        super().__init__(message, hint=hint)


def _excerpt(text: str, at: int | None) -> tuple[str, int | None]:
    """The condition as shown (a window around ``at`` when it is long) and the display column
    of ``at`` in it (control characters count as their escapes, wide characters as two)."""
    end = len(text)
    start = 0
    if len(text) > EXCERPT:
        if at is not None and at > EXCERPT * 2 // 3:
            start = min(at - EXCERPT // 3, len(text) - EXCERPT + 1)
        end = min(len(text), start + EXCERPT)
    head = "…" if start > 0 else ""
    tail = "…" if end < len(text) else ""
    shown = head + text[start:end] + tail
    if at is None:
        return shown, None
    before = head + text[start : min(at, end)]
    column = _width(_visible(before))
    return shown, column


def _visible(text: str) -> str:
    """``text`` with control and format characters (newlines, ESC, bidi overrides) as escapes,
    the way the CLI shows untrusted text, so the caret can be placed by what is printed."""
    import unicodedata

    return "".join(
        (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
        else ch
        for ch in text
    )


def _width(text: str) -> int:
    import unicodedata

    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


@contextmanager
def quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs what it cannot parse ("… contains unsupported syntax. Falling back to parsing
    as a 'Command'"); Python's last-resort handler would print that on stderr. The caller says
    what went wrong in its own words instead."""
    log = logging.getLogger("sqlglot")
    before = log.disabled
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = before


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


def parse_where(text: str, *, option: str = "--where") -> Where:
    """The checked condition ``text``; a ``UsageError`` (exit 2) naming ``option`` (the flag the
    condition came from: ``--where``, ``--baseline``, ``--target`` …) and the spot otherwise."""
    import sqlglot
    from sqlglot import exp

    if not text.strip():
        raise UsageError(f"{option} is empty")
    _check_tokens(text, option)
    try:
        with quiet_sqlglot():
            tree = sqlglot.parse_one(text, read=_dialect())
    except sqlglot.errors.ParseError as err:
        raise _parse_problem(text, option, err) from None
    except sqlglot.errors.SqlglotError:
        raise ConditionError(option, text, "cannot be read as a condition", fix=EXAMPLE) from None
    except RecursionError:
        raise ConditionError(option, text, "nested too deeply") from None
    if tree is None:
        raise UsageError(f"{option} is empty")
    try:
        _check(text, tree, option)
        rendered = _render(text, tree, option)
        sql = rendered.sql(dialect="duckdb", comments=False)
    except RecursionError:
        raise ConditionError(option, text, "nested too deeply") from None
    fields = frozenset(c.name.lower() for c in tree.find_all(exp.Column))
    return Where(text, sql, fields)


def _check_tokens(text: str, option: str) -> None:
    """What the tokens alone show: an unclosed quote, a ``;``, unbalanced parentheses or
    brackets, a statement or a subquery."""
    from sqlglot import TokenType
    from sqlglot.errors import TokenError

    def fail(problem: str, at: int | None, fix: str | None = EXAMPLE) -> ConditionError:
        return ConditionError(option, text, problem, at=at, fix=fix)

    try:
        tokens = _dialect()().tokenize(text)
    except TokenError:
        quote = _unclosed_quote(text)
        if quote is not None:
            mark = text[quote]
            raise fail(
                f"the quote `{mark}` is never closed",
                quote,
                "a text value goes between single quotes, a quote inside it doubled: 'it''s'"
                if mark == "'"
                else "close it, or write a text value in single quotes: 'error'",
            ) from None
        if "/*" in text:
            raise fail("a /* comment is never closed", text.index("/*"), None) from None
        raise fail("cannot be read as a condition", None) from None
    if not tokens:
        raise UsageError(f"{option} is empty")
    first = tokens[0]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            rest = " and what follows it" if token is not tokens[-1] else ""
            raise fail("`;` ends a statement; a condition is one expression", token.start,
                       f"remove the `;`{rest}")  # fmt: skip
        if (
            token is first
            and token.text.upper() in STATEMENT_WORDS
            and (token.token_type != TokenType.STRING)
        ):
            raise fail(f"`{token.text}` starts a statement, not a condition", token.start)
        if token.token_type == TokenType.SELECT:
            raise fail(
                "a subquery is not allowed; a condition reads the fields of a trace and its spans",
                token.start,
                "span(…) asks for one span that meets several conditions",
            )
    pairs = {TokenType.R_PAREN: TokenType.L_PAREN, TokenType.R_BRACKET: TokenType.L_BRACKET}
    opened: list[Any] = []
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
            opened.append(token)
        elif token.token_type in pairs:
            if not opened or opened[-1].token_type != pairs[token.token_type]:
                want = "(" if token.token_type == TokenType.R_PAREN else "["
                raise fail(f"`{token.text}` closes no `{want}`", token.start,
                           f"remove it, or add the `{want}` it closes")  # fmt: skip
            opened.pop()
    if opened:
        close = ")" if opened[-1].token_type == TokenType.L_PAREN else "]"
        raise fail(f"`{opened[-1].text}` is never closed; a `{close}` is missing",
                   opened[-1].start, f"add the `{close}` where the group ends")  # fmt: skip


def _unclosed_quote(text: str) -> int | None:
    """The offset of a quote that is never closed (``''`` inside a string is a quote)."""
    open_at: int | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if open_at is None:
            if ch in "'\"":
                open_at = i
        elif ch == text[open_at]:
            if i + 1 < len(text) and text[i + 1] == ch:
                i += 1  # a doubled quote inside
            else:
                open_at = None
        i += 1
    return open_at


_MISSING = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>")
CONNECTIVES = {"And": "and", "Or": "or", "Not": "not"}


def _parse_problem(text: str, option: str, err: Exception) -> ConditionError:
    """sqlglot's complaint, in the words of the person who wrote the condition, at its spot."""
    errors = getattr(err, "errors", None) or [{}]
    info = errors[0]
    description = str(info.get("description") or _first_line(err))
    highlight = str(info.get("highlight") or "")
    at = _offset(text, info.get("line"), info.get("col"), highlight)
    ends = at is not None and not text[at + len(highlight) :].strip()
    end = at + len(highlight) + 1 if at is not None else None

    def problem(said: str, spot: int | None = at, fix: str | None = EXAMPLE) -> ConditionError:
        return ConditionError(option, text, said, at=spot, fix=fix)

    missing = _MISSING.match(description)
    if missing:
        arg, cls = missing.groups()
        if cls in CONNECTIVES:
            word = CONNECTIVES[cls]
            if arg == "this" and cls != "Not":
                found = re.search(rf"\b{word}\b", text, re.IGNORECASE)
                return problem(f"a condition is missing before `{word}`",
                               found.start() if found else at)  # fmt: skip
            if ends:
                return problem(f"the condition ends after `{highlight}`; a condition is missing",
                               end)  # fmt: skip
            return problem(f"a condition is missing after `{word}`")
        if cls == "Between":
            return problem("BETWEEN needs a low and a high value",
                           fix="e.g. duration_ms between 100 and 500")  # fmt: skip
        if arg == "this":
            first = text.split()[0] if text.split() else highlight
            return problem(f"a value is missing before `{first}`", _first_offset(text))
        if ends:
            return problem(f"the condition ends after `{highlight}`; a value is missing", end,
                           "e.g. status = 'error', duration_ms > 2000")  # fmt: skip
        return problem(f"a value is missing before `{highlight}`")
    if description.startswith("Expecting )"):
        return problem("a `)` is missing", fix=None)
    if description.startswith("Expected ]"):
        return problem("a `]` is missing", fix="attr['key'] reads a span attribute")
    if description.startswith("Invalid expression / Unexpected token") and highlight:
        return problem(f"`{highlight}` is out of place here",
                       fix=EXAMPLE + "; join several with and/or")  # fmt: skip
    return problem(description[:1].lower() + description[1:])


def _offset(text: str, line: Any, col: Any, highlight: str) -> int | None:
    """The offset of sqlglot's highlighted token: ``col`` is the 1-based column of its last
    character on ``line``."""
    if not isinstance(line, int) or not isinstance(col, int) or line < 1:
        return None
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    if line > len(starts):
        return None
    at = starts[line - 1] + col - max(len(highlight), 1)
    if highlight and text[at : at + len(highlight)].lower() != highlight.lower():
        found = text.lower().find(highlight.lower())
        return found if found >= 0 else None
    return max(0, min(at, len(text)))


def _first_offset(text: str) -> int:
    return len(text) - len(text.lstrip())


def _position(node: exp.Expr, text: str, word: str | None = None) -> int | None:
    """Where ``node`` starts in ``text``: the earliest position sqlglot kept on it or below it;
    else the first occurrence of ``word``."""
    starts: list[int] = [
        n.meta["start"] for n in node.walk() if isinstance(n.meta.get("start"), int)
    ]
    if starts:
        return min(starts)
    if word:
        found = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE)
        if found:
            return found.start()
    return None


def _check(text: str, tree: exp.Expr, option: str = "--where") -> None:
    """Refuse anything but a filter: every node is an allowed operator, literal, known field,
    ``attr['key']``/``resource['key']``, allowed function or ``span(…)`` holding a condition."""
    import difflib

    from sqlglot import exp

    def fail(problem: str, node: exp.Expr | None, fix: str | None = None, word: str = "") -> None:
        at = _position(node, text, word) if node is not None else None
        raise ConditionError(option, text, problem, at=at, fix=fix)

    def like(name: str, names: frozenset[str] | set[str]) -> str | None:
        close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.7)
        return close[0] if close else None

    all_fields = TRACE_FIELDS | SPAN_FIELDS
    fields_hint = "fields: " + ", ".join(sorted(all_fields)) + ", attr['key'], resource['key']"
    allowed = (
        exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
        exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Neg, exp.Add, exp.Sub, exp.Mul,
        exp.Div, exp.Mod, exp.Literal, exp.Boolean, exp.Null, exp.Column, exp.Identifier,
        exp.Bracket, exp.Tuple, exp.DPipe, exp.Array,
    )  # fmt: skip
    for node in tree.walk():
        if node.error_messages():  # e.g. `@` parses to ABS() with its argument missing
            fail("cannot be read as a condition", node, EXAMPLE)
        if isinstance(node, exp.Column):
            if isinstance(node.parent, exp.Bracket) and node.parent.this is node:
                continue  # attr['…'] base, checked with the bracket
            if _eval_field(node) is not None:
                continue
            if EVAL_SCOPE in (node.table.lower(), node.db.lower()):
                fail(
                    f"unknown field {node.sql()}",
                    node,
                    "an evaluation is eval.NAME (its label) or eval.NAME.score (its score)",
                )
            table, name = node.table.lower(), node.name.lower()
            if (
                (table == "span" and name in SPAN_FIELDS)
                or (table == "trace" and name in TRACE_FIELDS)
                or (table == "" and name in all_fields)
            ):
                continue
            ident = node.this
            if not table and isinstance(ident, exp.Identifier) and ident.quoted:
                fail(
                    f'unknown field "{node.name}"',
                    node,
                    f"double quotes name a field; a text value takes single quotes: '{node.name}'",
                )
            if table not in ("", "span", "trace"):
                fail(
                    f"unknown field {node.sql()}",
                    node,
                    "a field is written name, span.name or trace.name; " + fields_hint,
                )
            names = {"span": SPAN_FIELDS, "trace": TRACE_FIELDS}.get(table, all_fields)
            guess = like(name, names | (set() if table else set(MAP_FIELDS)))
            prefix = f"{table}." if table else ""
            fail(
                f"unknown field {node.sql()}",
                node,
                f"did you mean {prefix}{guess}?" if guess else fields_hint,
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
                fail(
                    "only attr['key'] and resource['key'] may be indexed",
                    node,
                    "the key is a text in single quotes: attr['gen_ai.request.model']",
                )
        elif isinstance(node, exp.Is) and not isinstance(node.expression, exp.Null | exp.Boolean):
            fail("IS takes NULL, TRUE or FALSE", node.expression, "compare a value with =")
        elif isinstance(node, exp.In) and not node.expressions and not node.args.get("query"):
            fail("IN needs a list of values", node, "e.g. tool_name in ('a', 'b')")
        elif _is_span_scope(node):
            if len(node.expressions) != 1 or any(
                _is_span_scope(inner) for inner in node.expressions[0].walk()
            ):
                fail(
                    "span(…) takes one condition, and no span(…) inside it",
                    node,
                    "span(tool_name = 'a' and status = 'error'): one span meets both",
                )
        elif isinstance(node, allowed):
            continue
        elif isinstance(node, exp.Query | exp.Subquery | exp.Exists):
            fail(
                "a subquery is not allowed; a condition reads the fields of a trace and its spans",
                node,
                "span(…) asks for one span that meets several conditions",
                word="select",
            )
        elif isinstance(node, exp.Cast | exp.TryCast):
            fail("a cast is not allowed in a condition", node, "compare the field with a value")
        elif isinstance(node, exp.Case | exp.If):
            fail("CASE is not allowed in a condition", node, "write it with and/or", word="case")
        elif isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name not in FUNCTIONS:
                guess = like(name, FUNCTIONS)
                fail(
                    f"function {name}() is not allowed",
                    node,
                    (f"did you mean {guess}()? " if guess else "")
                    + "allowed: "
                    + ", ".join(sorted(FUNCTIONS))
                    + "; span(…) for one span",
                    word=name,
                )
        elif isinstance(node, exp.Alias):
            alias = node.alias
            value = node.this.expression if isinstance(node.this, exp.Binary) else node.this
            number = isinstance(value, exp.Literal) and not value.is_string
            if alias.lower() in ("is", "not", "in", "like", "ilike", "between"):
                problem = f"the condition ends after `{alias}`; a value is missing"
                fix = "e.g. status is null, tool_name in ('a', 'b')"
            elif number and alias.lower() in ("ms", "s", "sec", "m", "min", "h", "us", "ns"):
                problem = f"`{alias}` after a number is not a unit here"
                fix = "duration_ms and ttft_ms are numbers of milliseconds: duration_ms > 2000"
            else:
                problem = f"`{alias}` follows a complete condition"
                fix = "join conditions with and/or; a text value takes single quotes"
            fail(problem, node.args.get("alias"), fix)
        elif isinstance(node, exp.Placeholder):
            fail("a parameter is not allowed in a condition", None, "write the value itself")
        elif isinstance(node, exp.Star):
            fail("`*` is not allowed in a condition", node, EXAMPLE)
        else:
            fail(f"{node.key.upper()} is not allowed in a condition", node, EXAMPLE)


def _eval_field(node: exp.Column) -> tuple[str, str] | None:
    """(evaluation name, "label" or "score") for ``eval.NAME`` / ``eval.NAME.score``."""
    if not node.db and node.table.lower() == EVAL_SCOPE and node.name:
        return node.name, "label"
    if node.db.lower() == EVAL_SCOPE and not node.catalog and node.name.lower() == "score":
        return node.table, "score"
    return None


def _eval_value(name: str, part: str) -> exp.Expr:
    """The evaluation ``name``'s label or score on the span ``s``: a subquery over its
    evaluation events (at most one per evaluator and span; an imported one and ours may both
    judge it, and then any one is read)."""
    import sqlglot

    attribute = "gen_ai.evaluation.score." + ("label" if part == "label" else "value")
    value = f"l.LogAttributes['{attribute}']"
    if part == "score":
        value = f"TRY_CAST({value} AS DOUBLE)"
    quoted = name.replace("'", "''")
    return sqlglot.parse_one(
        f"(SELECT any_value({value}) FROM otel_logs AS l WHERE l.EventName = '{EVENT}'"
        f" AND l.TraceId = s.trace_id AND l.SpanId = s.span_id"
        f" AND l.LogAttributes['gen_ai.evaluation.name'] = '{quoted}')",
        read="duckdb",
    )


def _is_span_scope(node: exp.Expr) -> bool:
    from sqlglot import exp

    return isinstance(node, exp.Anonymous) and node.name.lower() == SPAN_SCOPE


def _render(text: str, tree: exp.Expr, option: str = "--where") -> exp.Expr:
    """The tree over the trace alias ``t``: the boolean connectives stay at the trace level, and
    each comparison (or ``span(…)``) that reads a span field becomes "some span has it"."""
    from sqlglot import exp

    def qualify(node: exp.Expr, span_first: bool) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table in ("s", "t", "l"):
            return node  # rendered already (an evaluation's subquery)
        evaluation = _eval_field(node) if isinstance(node, exp.Column) else None
        if evaluation is not None:
            return _eval_value(*evaluation)
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
            scope = next(n for n in node.walk() if _is_span_scope(n))
            raise ConditionError(
                option,
                text,
                "span(…) is a condition of its own; combine it with and/or/not",
                at=_position(scope, text),
                fix="span(tool_name = 'a') and status = 'error'",
            )
        qualified = node.transform(lambda n: qualify(n, False))
        if not any(c.table == "s" for c in qualified.find_all(exp.Column)):
            return None
        if any(_is_connective(n) for n in node.walk()):
            # and/or/not under another operator (`(a and b) is true`, coalesce(a or b, …)) would
            # be read for one span, not for the trace: say so instead of guessing.
            raise ConditionError(
                option,
                text,
                f"and/or/not inside {node.key.upper()} cannot be read per trace",
                at=_position(node, text),
                fix="write the and/or/not outside it, or span(…) for one span meeting it all",
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
