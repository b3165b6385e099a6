"""The ClickHouse dialect: canonical SQL (DuckDB's, as the analyses and the views write it) in
ClickHouse's SQL and semantics.

sqlglot translates most of it; ``to_clickhouse`` rewrites, bottom-up, what sqlglot leaves in
DuckDB's words or turns into something that means otherwise there (a cast that fails on blanks,
CHAR_LENGTH of a list, a sampled quantile where DuckDB's is exact, a missing map key read as ''
instead of NULL). ``SETTINGS`` make ClickHouse's aggregates, joins and aliases behave as DuckDB's;
a query must end with them.

The semantic views in this dialect are ``aiobs.semantic.clickhouse``'s (it calls this module);
tests/test_sql_dialects.py and tests/test_clickhouse.py run the translations in real ClickHouse
(chdb) and compare every value with DuckDB's.

Must not import any other aiobs package (but ``aiobs.config``'s cache directory), nor duckdb,
typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlglot import exp

# DuckDB functions sqlglot passes through unchanged, and their ClickHouse names.
_RENAMED = {
    "epoch_ns": "toUnixTimestamp64Nano",
    "epoch_us": "toUnixTimestamp64Micro",
    "make_timestamp_ns": "fromUnixTimestamp64Nano",
    "map_contains": "mapContains",
    # Both sum floats compensated (DuckDB's fsum: Kahan-Babuska), so the total does not depend
    # on the order the engine's threads add them in.
    "fsum": "sumKahan",
    # Another hash function than DuckDB's: what is grouped by a hash groups alike, but a sample
    # ordered by it picks other rows (the same number of them).
    "hash": "cityHash64",
    "to_microseconds": "toIntervalMicrosecond",
    # A map as a JSON object (eval reads span attributes so: json.loads beats converting maps).
    "to_json": "toJSONString",
}


def _ch(sql: str) -> exp.Expr:
    import sqlglot

    return sqlglot.parse_one(sql, read="clickhouse")


def _sql(node: exp.Expr) -> str:
    return str(node.sql(dialect="clickhouse"))


def _ordered_agg(agg: exp.Expr, where: exp.Expr | None) -> exp.Expr | None:
    """``list(x ORDER BY k)`` / ``string_agg(x, sep ORDER BY k)`` (ClickHouse aggregates take no
    ORDER BY): the (k, x) pairs gathered, sorted, and their x kept. None if ``agg`` is neither."""
    from sqlglot import exp

    if not isinstance(agg, exp.ArrayAgg | exp.GroupConcat) or not isinstance(agg.this, exp.Order):
        return None
    order = agg.this
    value = _sql(order.this)
    keys = [o for o in order.expressions if isinstance(o, exp.Ordered)]
    if len(keys) != 1 or keys[0].args.get("desc"):
        raise ValueError(f"ClickHouse shim: unsupported ORDER BY in {agg.sql()}")
    gather = "groupArray" if where is None else "groupArrayIf"
    cond = "" if where is None else f", {_sql(where.this)}"
    pairs = f"arraySort({gather}(({_sql(keys[0].this)}, {value}){cond}))"
    # groupArray skips NULL values; a pair is never NULL, so skip the NULL values by hand.
    values = f"arrayFilter(v -> v IS NOT NULL, arrayMap(p -> p.2, {pairs}))"
    if isinstance(agg, exp.GroupConcat):
        separator = agg.args.get("separator")
        sep = _sql(separator) if separator is not None else "','"
        return _ch(f"nullIf(arrayStringConcat({values}, {sep}), '')")
    return _ch(values)


def _timestamp_digits() -> dict[object, int]:
    from sqlglot import exp

    t = exp.DataType.Type
    return {
        t.TIMESTAMP: 6,
        t.TIMESTAMPNTZ: 6,
        t.TIMESTAMP_S: 6,
        t.TIMESTAMP_MS: 6,
        t.TIMESTAMP_NS: 9,
    }


def to_clickhouse(sql: str) -> str:
    """DuckDB SQL as the views and analytics write it, in ClickHouse's dialect.

    The rules cover what our SQL uses and sqlglot leaves in DuckDB's words or translates to
    something that means otherwise there (a cast that fails on blanks, CHAR_LENGTH of a list).
    A missing map key reads as NULL, as in DuckDB (ClickHouse answers ''); aggregates over no rows
    are NULL given ``SETTINGS`` from ``query_sql``."""
    import sqlglot

    return _sql(_translate(sqlglot.parse_one(sql, read="duckdb")))


def render_parts(sql: str, params: Sequence[Any]) -> tuple[list[tuple[str, str]], str]:
    """``to_clickhouse_parts`` of ``sql`` (canonical, ``?`` parameters) with its parameters bound.

    Strings, times and lists of strings are bound as stand-ins, the statement is translated in
    that form once (kept in ``translations``: a scan sends the same statement for many
    segments, and each command the same statements as the last; sqlglot took 1.5 of a scan's
    9 s and a quarter of a replay's second), and their ClickHouse literals are spliced in after:
    a list of 40k trace ids is never parsed by sqlglot (it took over a second a statement).
    Numbers, booleans and NULL are bound as they are (part of the statement's key).
    tests/test_sql_dialects.py runs every statement of the read commands through this."""
    from datetime import UTC, datetime

    from aiobs.sql import Raw

    # Per stand-in as the translation writes it: the literal spliced in for it.
    spliced: dict[str, str] = {}
    kinds: list[str] = []
    bound: list[Any] = []  # the parameters, stand-ins where they are spliced in after
    for i, value in enumerate(params):
        stand_in = f"aiobs-param-3c41-{i}"
        if isinstance(value, str):
            spliced[f"'{stand_in}'"] = _string(value)
            kinds.append("str")
            bound.append(Raw(f"'{stand_in}'"))
        elif isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            spliced[f"'{stand_in}'"] = _string(value.isoformat(sep=" "))
            kinds.append("time")
            bound.append(Raw(f"CAST('{stand_in}' AS TIMESTAMP)"))
        elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            spliced[f"['{stand_in}']"] = "[" + ", ".join(map(_string, value)) + "]"
            kinds.append("strings")
            bound.append(Raw(f"['{stand_in}']"))
        else:
            kinds.append(f"{type(value).__name__} {value!r}")
            bound.append(value)
    if any("aiobs-param-3c41-" in literal for literal in spliced.values()):
        return _bound_whole(sql, params)  # a value holding a stand-in
    key = "\x1f".join(("statement", sql, *kinds))
    found = translations.get(key)
    if found is None:
        found = _template(sql, bound, list(spliced))
        if found is None:
            return _bound_whole(sql, params)
        translations.put(key, found)
    parts, body = [(str(n), str(q)) for n, q in found[0]], str(found[1])
    for stand_in, literal in spliced.items():
        body = body.replace(stand_in, literal)
        parts = [(name, q.replace(stand_in, literal)) for name, q in parts]
    return parts, body


def _template(sql: str, bound: list[Any], stand_ins: list[str]) -> Any:
    """The statement translated with ``bound`` parameters (stand-ins among them) as JSON-able
    lists, or None when a stand-in is not found in the translation as the literal it was."""
    from aiobs.sql import bind_literals

    parts, body = to_clickhouse_parts(bind_literals(sql, bound))
    statements = [body, *(q for _, q in parts)]
    if not all(any(stand_in in q for q in statements) for stand_in in stand_ins):
        return None  # translated into something else than a literal
    return [[list(p) for p in parts], body]


def _bound_whole(sql: str, params: Sequence[Any]) -> tuple[list[tuple[str, str]], str]:
    from aiobs.sql import bind_literals

    return to_clickhouse_parts(bind_literals(sql, params))


class Translations:
    """Translated SQL by its key, in memory and in a SQLite file under the user cache directory
    (``AIOBS_CACHE_DIR`` moves it), so a command does not pay sqlglot (importing it included)
    for statements an earlier one translated. A key holds what the translation depends on
    besides the statement; every entry is also under this module's and sqlglot's own text, so a
    change to either starts afresh. The file is best effort: if it cannot be used, nothing is
    kept there."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.memory: dict[str, Any] = {}
        self.con: Any = None
        self.usable = True
        self.version = ""

    def _open(self) -> Any:
        if self.con is None and self.usable:
            try:
                import sqlite3

                from aiobs.config import cache_dir

                folder = cache_dir()
                folder.mkdir(parents=True, exist_ok=True)
                # Replay reads its context on a second thread: one connection, behind a lock.
                self.con = sqlite3.connect(
                    folder / "clickhouse-sql.sqlite", timeout=2, check_same_thread=False
                )
                self.con.execute(
                    "CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, value TEXT)"
                )
                self.version = _code_version()
            except Exception:  # a read-only home, a locked file…: translate every time
                self.usable = False
                self.con = None
        return self.con

    def get(self, key: str) -> Any:
        with self.lock:
            return self._get(key)

    def put(self, key: str, value: Any) -> None:
        with self.lock:
            self._put(key, value)

    def _get(self, key: str) -> Any:
        if key in self.memory:
            return self.memory[key]
        con = self._open()
        if con is None:
            return None
        import json

        try:
            row = con.execute(
                "SELECT value FROM translations WHERE key = ?", [self.version + key]
            ).fetchone()
        except Exception:
            return None
        if row is None:
            return None
        self.memory[key] = json.loads(row[0])
        return self.memory[key]

    def _put(self, key: str, value: Any) -> None:
        self.memory[key] = value
        con = self._open()
        if con is None:
            return
        import json

        try:
            with con:
                con.execute(
                    "INSERT OR REPLACE INTO translations VALUES (?, ?)",
                    [self.version + key, json.dumps(value)],
                )
        except Exception:
            pass


def _code_version() -> str:
    """What the translations depend on besides their keys: this module's and the semantic
    layer's ClickHouse module's source, and sqlglot's version (read from its files, without
    importing it)."""
    import importlib.util
    import zlib

    texts = [
        Path(__file__).read_bytes(),
        (Path(__file__).parents[1] / "semantic" / "clickhouse.py").read_bytes(),
    ]
    spec = importlib.util.find_spec("sqlglot")
    if spec is not None and spec.origin:
        version = Path(spec.origin).parent / "_version.py"
        texts.append(version.read_bytes() if version.exists() else spec.origin.encode())
    blob = b"\0".join(texts)
    return f"{zlib.crc32(blob):08x}{zlib.adler32(blob):08x}\x1f"


translations = Translations()


def _string(text: str) -> str:
    """A ClickHouse string literal (backslash escapes, as its parser reads them)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_clickhouse_parts(sql: str) -> tuple[list[tuple[str, str]], str]:
    """``to_clickhouse`` split for running: ClickHouse computes a common table expression again
    at every reference (segment's selected traces were computed ten times a query, each an
    aggregation of every span), so each one its query reads more than once is returned as (a
    temporary table's name, the query that fills it), inner ones first, and the statement reads
    that table instead. A part reads the expressions before it in its WITH, as the statement
    did; one that reads an expression of an outer query is left in place."""
    import sqlglot
    from sqlglot import exp

    tree = _translate(sqlglot.parse_one(sql, read="duckdb"))
    every_cte = {c.alias for c in tree.find_all(exp.CTE)}
    parts: list[tuple[str, str]] = []
    # Inner WITHs first (reversed pre-order): an outer part then reads the inner tables.
    withs = [w for w in tree.walk(bfs=False) if isinstance(w, exp.With)][::-1]
    for with_ in withs:
        ctes = list(with_.expressions)
        reads: dict[str, int] = {}
        owner = with_.parent
        assert owner is not None  # a WITH belongs to its query
        for table in owner.find_all(exp.Table):
            if not table.db:
                reads[table.name] = reads.get(table.name, 0) + 1
        for i, cte in enumerate(ctes):
            if reads.get(cte.alias, 0) < 2:
                continue
            part = exp.select("*").from_(cte.alias)
            part.set("with_", exp.With(expressions=[c.copy() for c in ctes[: i + 1]]))
            defined = {c.alias for c in part.find_all(exp.CTE)}
            if any(t.name in every_cte - defined for t in part.find_all(exp.Table) if not t.db):
                continue
            temp = f"aiobs_cte{len(parts)}_{cte.alias}"
            parts.append((temp, _sql(part)))
            cte.set("this", exp.select("*").from_(temp))
    return parts, _sql(tree)


def _translate(tree: exp.Expr) -> exp.Expr:
    from sqlglot import exp

    timestamps = _timestamp_digits()
    # Bottom-up, so a replaced node's children are already translated.
    for node in list(tree.walk(bfs=False))[::-1]:
        new: exp.Expr | None = None
        if isinstance(node, exp.Anonymous) and node.name.lower() in _RENAMED:
            node.set("this", _RENAMED[node.name.lower()])
        elif isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
            # DuckDB's any_value is read as any_value(x) IGNORE NULLS, which ClickHouse cannot
            # parse before a FILTER; its any skips NULLs anyway, as any_value does.
            new = exp.Anonymous(this="any", expressions=[node.this.this])
        elif isinstance(node, exp.LogicalOr):  # bool_or: ClickHouse has no LOGICAL_OR
            new = exp.Max(this=node.this)
        elif (
            isinstance(node, exp.Cast)
            and node.to.is_type("map")
            and isinstance(node.this, exp.Null)
        ):  # a Map is never NULL there; a lookup in the empty one reads NULL (below), as in a NULL one
            new = _ch(f"CAST(map() AS {node.to.sql(dialect='clickhouse')})")
        elif type(node) is exp.Cast and node.to.this in timestamps:
            # sqlglot writes DateTime, which drops the fraction; a time read without a zone is
            # in UTC, as the store's (ClickHouse would read it in the server's zone).
            digits = timestamps[node.to.this]
            new = _ch(f"CAST({_sql(node.this)} AS Nullable(DateTime64({digits}, 'UTC')))")
        elif isinstance(node, exp.CountIf):
            # DuckDB's count_if is NULL over no non-NULL condition, ClickHouse's countIf 0.
            cond = _sql(node.this)
            new = _ch(f"if(count({cond}) = 0, NULL, countIf({cond}))")
        elif isinstance(node, exp.MapKeys):  # map_keys: left as MAP_KEYS, unknown there
            new = exp.Anonymous(this="mapKeys", expressions=[node.this])
        elif isinstance(node, exp.ArrayOverlaps):  # list_has_any: written &&, unknown there
            new = exp.Anonymous(this="hasAny", expressions=[node.this, node.expression])
        elif isinstance(node, exp.ArraySort):  # list_sort: written ARRAY_SORT, unknown there
            new = exp.Anonymous(this="arraySort", expressions=[node.this])
        elif isinstance(node, exp.Lower):  # on characters, as DuckDB's
            new = exp.Anonymous(this="lowerUTF8", expressions=[node.this])
        elif isinstance(node, exp.Length):  # len() of a list in our SQL
            new = exp.Anonymous(this="length", expressions=[node.this])
        elif isinstance(node, exp.TryCast) and node.to.is_type("double"):
            new = _ch(f"toFloat64OrNull(trimBoth(toString({_sql(node.this)})))")
        elif isinstance(node, exp.PercentileCont):
            # DuckDB's quantile_cont interpolates exactly between order statistics.
            new = _ch(f"quantileExactInclusive({_sql(node.expression)})({_sql(node.this)})")
        elif isinstance(node, exp.RegexpReplace):
            modifiers = node.args.get("modifiers")
            every = modifiers is not None and "g" in modifiers.name
            fn = "replaceRegexpAll" if every else "replaceRegexpOne"
            new = exp.Anonymous(
                this=fn, expressions=[node.this, node.expression, node.args["replacement"]]
            )
        elif isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Distinct):
            new = exp.Anonymous(this="groupUniqArray", expressions=node.this.expressions)
        elif isinstance(node, exp.Bracket) and _is_map_lookup(node):
            column, key = _sql(node.this), _sql(node.expressions[0])
            new = _ch(f"if(mapContains({column}, {key}), {column}[{key}], NULL)")
        elif isinstance(node, exp.Filter):
            new = _ordered_agg(node.this, node.expression)
        elif isinstance(node.parent, exp.Filter):
            pass  # the Filter above rewrites an ordered aggregate with its condition
        else:
            new = _ordered_agg(node, None)
        if new is not None:
            node.replace(new)
            if node is tree:
                tree = new
    return tree


_MAP_COLUMNS = frozenset(
    ("spanattributes", "resourceattributes", "logattributes", "attributes", "resource_attributes")
)


def _is_map_lookup(node: exp.Bracket) -> bool:
    """``X['key']`` on one of the attribute maps (an array index is a number, not a string)."""
    from sqlglot import exp

    return (
        isinstance(node.this, exp.Column)
        and node.this.name.lower() in _MAP_COLUMNS
        and len(node.expressions) == 1
        and isinstance(node.expressions[0], exp.Literal)
        and node.expressions[0].is_string
    )


# ClickHouse lets a SELECT's aliases shadow its input's columns: `min(start_time) AS start_time`
# would turn every later start_time into an aggregate; prefer_column_name_to_alias reads the
# column names as columns, as DuckDB does. Its aggregates over no rows answer 0 or '' unless
# aggregate_functions_null_for_empty (DuckDB: NULL), and its outer joins fill the missing side
# with defaults unless join_use_nulls.
SETTINGS = (
    " SETTINGS prefer_column_name_to_alias = 1, aggregate_functions_null_for_empty = 1,"
    " join_use_nulls = 1"
)
