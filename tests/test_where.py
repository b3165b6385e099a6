"""What a ``--where`` condition means: a span-field comparison holds when some span of the trace
meets it, ``and``/``or``/``not`` combine at the trace level, ``span(…)`` asks for one span.

The property test generates conditions over trace fields, span fields and ``attr[…]``, evaluates
them by brute force in Python over the committed demo fixture (SQL's three-valued logic written
out by hand), and compares with the traces the real query selects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, Cli, examples

FIXTURE = REPO / "fixtures" / "demo"
# The committed sample's own window (two days).
WINDOW = "2026-11-13T00:00Z..2026-11-15T00:00Z"
BOTH = "tool_name = 'lookup_charge_v1' and step_kind = 'handoff'"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The committed two-day demo sample, ingested by the real CLI."""
    base = tmp_path_factory.mktemp("where-sample")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOBS_CONFIG", str(base / "config.toml"))
        mp.delenv("AIOBS_DB", raising=False)
        db = base / "sample.duckdb"
        assert Cli(db)("ingest", str(FIXTURE)).exit_code == 0
        yield db


TRACE_COLUMNS = ("status", "duration_ms", "service_name", "llm_calls", "input_tokens", "root_name")
SPAN_COLUMNS = (
    "service_name",
    "step_kind",
    "tool_name",
    "model",
    "prompt_version",
    "status",
    "duration_ms",
    "error_type",
    "agent_name",
    "input_tokens",
)
ATTR_KEYS = ("gen_ai.tool.name", "gen_ai.request.model", "gen_ai.operation.name", "retry.attempt")


@dataclass(repr=False)
class World:
    """Every trace of the sample with its spans, as plain Python values."""

    traces: dict[str, dict[str, Any]]
    spans: dict[str, list[dict[str, Any]]]

    def __repr__(self) -> str:  # hypothesis prints the fixtures of a failing example
        return f"World({len(self.traces)} traces)"

    def values(self, level: str, name: str) -> list[Any]:
        if level == "trace":
            rows: list[dict[str, Any]] = list(self.traces.values())
        else:
            rows = [s for ss in self.spans.values() for s in ss]
        if name.startswith("attr:"):
            key = name[5:]
            return sorted({r["attributes"].get(key) for r in rows} - {None})
        return sorted({r[name] for r in rows} - {None})


@pytest.fixture(scope="module")
def world(sample: Path) -> World:
    from aiobs.backend.duckdb import open_store

    with open_store(sample) as store:
        con = store.con
        traces = {
            row[0]: dict(zip(TRACE_COLUMNS, row[1:], strict=True))
            for row in con.execute(
                f"SELECT trace_id, {', '.join(TRACE_COLUMNS)} FROM ai_traces"
            ).fetchall()
        }
        spans: dict[str, list[dict[str, Any]]] = {t: [] for t in traces}
        for row in con.execute(
            f"SELECT trace_id, {', '.join(SPAN_COLUMNS)}, attributes FROM ai_spans"
        ).fetchall():
            span = dict(zip(SPAN_COLUMNS, row[1:-1], strict=True))
            span["attributes"] = dict(row[-1] or {})
            spans[row[0]].append(span)
    assert len(traces) == 375 and sum(map(len, spans.values())) == 3636  # the sample as committed
    return World(traces, spans)


# --- a brute-force evaluator of SQL's three-valued logic ------------------------------------

Scope = tuple[dict[str, Any], dict[str, Any] | None]  # (the trace, the span being tested or None)
Truth = bool | None


@dataclass(frozen=True)
class Field:
    """A field as written: ``name`` (trace-first outside span(), span-first inside), ``span.x``,
    ``trace.x`` or ``attr['key']``."""

    text: str
    name: str
    pinned: str | None  # "trace" | "span" | None (resolved by where it stands)

    def reads_span(self, inside_span: bool) -> bool:
        if self.pinned:
            return self.pinned == "span"
        return self.name.startswith("attr:") or (
            self.name in SPAN_COLUMNS and (inside_span or self.name not in TRACE_COLUMNS)
        )

    def value(self, scope: Scope, inside_span: bool) -> Any:
        trace, span = scope
        if not self.reads_span(inside_span):
            return trace[self.name]
        assert span is not None
        if self.name.startswith("attr:"):
            return span["attributes"].get(self.name[5:])
        return span[self.name]


def _like(value: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _not(x: Truth) -> Truth:
    return None if x is None else not x


def _and(a: Truth, b: Truth) -> Truth:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a: Truth, b: Truth) -> Truth:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


@dataclass(frozen=True)
class Cmp:
    """One comparison: ``field op operand`` (operand a literal, a tuple for IN/BETWEEN, or a
    trace field times a factor)."""

    field: Field
    op: str
    operand: Any

    def sql(self) -> str:
        f, op, v = self.field.text, self.op, self.operand
        if op in ("IS NULL", "IS NOT NULL"):
            return f"{f} {op}"
        if op in ("IN", "NOT IN"):
            return f"{f} {op} ({', '.join(_lit(x) for x in v)})"
        if op in ("BETWEEN", "NOT BETWEEN"):
            return f"{f} {op} {_lit(v[0])} AND {_lit(v[1])}"
        if isinstance(v, Ratio):
            return f"{f} {op} {v.field.text} * {v.factor}"
        return f"{f} {op} {_lit(v)}"

    def reads_span(self, inside_span: bool) -> bool:
        return self.field.reads_span(inside_span) or (
            isinstance(self.operand, Ratio) and self.operand.field.reads_span(inside_span)
        )

    def truth(self, scope: Scope, inside_span: bool) -> Truth:
        x = self.field.value(scope, inside_span)
        op, v = self.op, self.operand
        if op == "IS NULL":
            return x is None
        if op == "IS NOT NULL":
            return x is not None
        if isinstance(v, Ratio):
            base = v.field.value(scope, inside_span)
            v = None if base is None else base * v.factor
        if x is None or v is None:
            return None
        result: bool
        if op in ("IN", "NOT IN"):
            result = x in v
        elif op in ("BETWEEN", "NOT BETWEEN"):
            result = v[0] <= x <= v[1]
        elif op in ("LIKE", "NOT LIKE"):
            result = _like(x, v)
        else:
            result = {
                "=": x == v,
                "<>": x != v,
                "<": x < v,
                ">": x > v,
                "<=": x <= v,
                ">=": x >= v,
            }[op]
        return not result if op.startswith("NOT ") else result

    def trace_truth(self, trace: dict[str, Any], spans: list[dict[str, Any]]) -> Truth:
        if not self.reads_span(False):
            return self.truth((trace, None), False)
        # Some span of the trace meets it: EXISTS is true or false, never unknown.
        return any(self.truth((trace, s), False) is True for s in spans)


@dataclass(frozen=True)
class Ratio:
    field: Field
    factor: float


@dataclass(frozen=True)
class Node:
    """``and``/``or``/``not`` over conditions, or ``span(…)`` over span-level conditions."""

    kind: str  # and | or | not | span
    parts: tuple[Any, ...]

    def sql(self) -> str:
        if self.kind == "not":
            return f"NOT ({self.parts[0].sql()})"
        if self.kind == "span":
            return f"span({self.parts[0].sql()})"
        return f" {self.kind.upper()} ".join(f"({p.sql()})" for p in self.parts)

    def truth(self, scope: Scope, inside_span: bool) -> Truth:
        """Inside span(): one span's truth."""
        values = [p.truth(scope, inside_span) for p in self.parts]
        return _combine(self.kind, values)

    def trace_truth(self, trace: dict[str, Any], spans: list[dict[str, Any]]) -> Truth:
        if self.kind == "span":
            return any(self.parts[0].truth((trace, s), True) is True for s in spans)
        return _combine(self.kind, [p.trace_truth(trace, spans) for p in self.parts])


def _combine(kind: str, values: list[Truth]) -> Truth:
    if kind == "not":
        return _not(values[0])
    out = values[0]
    for v in values[1:]:
        out = _and(out, v) if kind == "and" else _or(out, v)
    return out


def _lit(v: Any) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def brute_force(world: World, condition: Any) -> set[str]:
    return {
        tid
        for tid, trace in world.traces.items()
        if condition.trace_truth(trace, world.spans[tid]) is True
    }


# --- the generator -----------------------------------------------------------------------------


def _fields() -> list[Field]:
    fields = [Field(c, c, None) for c in TRACE_COLUMNS]
    fields += [Field(f"trace.{c}", c, "trace") for c in ("status", "duration_ms", "input_tokens")]
    fields += [Field(c, c, None) for c in SPAN_COLUMNS if c not in TRACE_COLUMNS]
    fields += [Field(f"span.{c}", c, "span") for c in ("status", "duration_ms", "input_tokens")]
    fields += [Field(f"attr['{k}']", f"attr:{k}", None) for k in ATTR_KEYS]
    return fields


FIELDS = _fields()
NUMERIC = {"duration_ms", "llm_calls", "input_tokens"}


def comparisons(world: World, inside_span: bool) -> st.SearchStrategy[Cmp]:
    @st.composite
    def build(draw: Callable[..., Any]) -> Cmp:
        field = draw(st.sampled_from(FIELDS))
        level = "span" if field.reads_span(inside_span) else "trace"
        seen = world.values(level, field.name)
        if draw(st.integers(0, 9)) == 0 or not seen:
            return Cmp(field, draw(st.sampled_from(["IS NULL", "IS NOT NULL"])), None)
        if field.name in NUMERIC:
            qs = [seen[min(len(seen) - 1, int(q * len(seen)))] for q in (0.1, 0.5, 0.9, 0.99)]
            op = draw(st.sampled_from(["=", "<>", "<", ">", "<=", ">=", "BETWEEN", "NOT BETWEEN"]))
            if op.endswith("BETWEEN"):
                lo, hi = sorted(draw(st.sampled_from(qs)) for _ in range(2))
                return Cmp(field, op, (lo, hi))
            if field.name == "duration_ms" and draw(st.booleans()):
                other = draw(
                    st.sampled_from(
                        [Field("duration_ms", "duration_ms", None)]
                        if inside_span
                        else [Field("trace.duration_ms", "duration_ms", "trace")]
                    )
                )
                return Cmp(field, op, Ratio(other, draw(st.sampled_from([0.1, 0.5, 0.9]))))
            value = draw(st.sampled_from([*qs, seen[0]]))
            return Cmp(field, op, float(value) if isinstance(value, float) else int(value))
        strings = [*seen, "nope"]
        op = draw(st.sampled_from(["=", "<>", "IN", "NOT IN", "LIKE", "NOT LIKE"]))
        if op.endswith("IN"):
            return Cmp(field, op, tuple(draw(st.lists(st.sampled_from(strings), min_size=1))))
        if op.endswith("LIKE"):
            value = str(draw(st.sampled_from(strings)))
            cut = draw(st.integers(0, len(value)))
            pattern = draw(st.sampled_from([value[:cut] + "%", "%" + value[cut:], value]))
            return Cmp(field, op, pattern)
        return Cmp(field, op, draw(st.sampled_from(strings)))

    return build()


def conditions(world: World) -> st.SearchStrategy[Any]:
    def combine(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.builds(lambda a, b: Node("and", (a, b)), inner, inner),
            st.builds(lambda a, b: Node("or", (a, b)), inner, inner),
            st.builds(lambda a: Node("not", (a,)), inner),
        )

    one_span = st.recursive(comparisons(world, True), combine, max_leaves=3)
    leaf = st.one_of(
        comparisons(world, False),
        comparisons(world, False),
        one_span.map(lambda c: Node("span", (c,))),
    )
    return st.recursive(leaf, combine, max_leaves=5)


@pytest.fixture(scope="module")
def sample_store(sample: Path) -> Iterator[Any]:
    """The sample, opened once for the generated conditions (opening is a third of a query)."""
    from aiobs.backend.duckdb import open_store

    with open_store(sample) as store:
        yield store


def selected(store: Any, text: str) -> set[str]:
    """The traces the real query selects (the listing of ``aiobs traces``, unlimited)."""
    from aiobs.analysis.browse import list_traces
    from aiobs.analysis.filters import TraceFilter
    from aiobs.analysis.where import parse_where

    rows = list_traces(store, TraceFilter(where=parse_where(text)), limit=1_000_000)
    return {r["trace_id"] for r in rows}


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_conditions_select_what_brute_force_selects(
    sample_store: Any, world: World, data: st.DataObject
) -> None:
    condition = data.draw(conditions(world))
    text = condition.sql()
    want = brute_force(world, condition)
    assert selected(sample_store, text) == want, text


def test_brute_force_matches_hand_counts(world: World) -> None:
    """The evaluator itself, on counts read off the sample with plain SQL below."""
    v1 = Cmp(Field("tool_name", "tool_name", None), "=", "lookup_charge_v1")
    handoff = Cmp(Field("step_kind", "step_kind", None), "=", "handoff")
    failed = Cmp(Field("status", "status", None), "=", "error")
    assert len(brute_force(world, Node("and", (v1, handoff)))) == 10
    assert len(brute_force(world, Node("span", (Node("and", (v1, handoff)),)))) == 0
    assert len(brute_force(world, Node("span", (Node("and", (v1, failed)),)))) == 10


# --- the cases, through every command that selects traces ----------------------------


def _sql(db: Path, sql: str) -> list[tuple[Any, ...]]:
    from aiobs.backend.duckdb import open_store

    with open_store(db) as store:
        rows: list[tuple[Any, ...]] = store.con.execute(sql).fetchall()
        return rows


def test_span_conditions_combine_at_the_trace_level(sample: Path) -> None:
    cli = Cli(sample)
    both = {r["trace_id"] for r in cli.json("traces", "--where", BOTH, "-n", "100000")}
    (want,) = _sql(
        sample,
        "SELECT count(*) FROM ai_traces t"
        " WHERE t.trace_id IN (SELECT trace_id FROM ai_spans WHERE tool_name = 'lookup_charge_v1')"
        " AND t.trace_id IN (SELECT trace_id FROM ai_spans WHERE step_kind = 'handoff')",
    )[0]
    assert len(both) == want == 10
    # The prompt version is on the LLM span, the tool on the tool span: both hold in the trace,
    # as --prompt-version says.
    mixed = cli.json(
        "traces", "--where", "tool_name = 'lookup_charge' and prompt_version = 'v6'", "-n", "1000"
    )
    option = cli.json(
        "traces", "--prompt-version", "v6", "--where", "tool_name = 'lookup_charge'", "-n", "1000"
    )
    assert {r["trace_id"] for r in mixed} == {r["trace_id"] for r in option}
    assert len(mixed) == 55
    # One span that meets both: no span both calls a tool and hands off.
    assert cli.json("traces", "--where", f"span({BOTH})", "-n", "1000") == []
    failed = cli.json(
        "traces", "--where", "span(tool_name = 'lookup_charge_v1' and status = 'error')"
    )
    assert failed and all(r["status"] == "error" for r in failed)
    # `not` negates at the trace level: no span calls the tool.
    (total,) = _sql(sample, "SELECT count(*) FROM ai_traces")[0]
    v1 = cli.json("traces", "--where", "tool_name = 'lookup_charge_v1'", "-n", "100000")
    without = cli.json("traces", "--where", "not tool_name = 'lookup_charge_v1'", "-n", "100000")
    assert len(v1) + len(without) == total
    assert not {r["trace_id"] for r in v1} & {r["trace_id"] for r in without}
    # A negated comparison stays one comparison: some span calls a tool other than these.
    (other,) = _sql(
        sample,
        "SELECT count(DISTINCT trace_id) FROM ai_spans WHERE tool_name IS NOT NULL"
        " AND tool_name NOT IN ('lookup_charge_v1', 'lookup_charge')",
    )[0]
    not_in = cli.json(
        "traces",
        "--where",
        "tool_name not in ('lookup_charge_v1', 'lookup_charge')",
        "-n",
        "100000",
    )
    assert len(not_in) == other > 0


def test_every_command_that_selects_traces_reads_it_the_same_way(
    sample: Path, tmp_path: Path
) -> None:
    cli = Cli(sample)
    traces = cli.json("traces", "--where", BOTH, "-n", "1000")
    ids = {r["trace_id"] for r in traces}
    assert len(ids) == 10
    sessions = cli.json("sessions", "--where", BOTH, "-n", "1000")
    assert {s["session_id"] for s in sessions} == {r["session_id"] for r in traces} - {None}
    groups = cli.json("segment", "--by", "service_name", "--where", BOTH)
    assert sum(g["traces"] for g in groups) == 10
    diff = cli.json("diff", "--baseline", "not tool_name = 'lookup_charge_v1'", "--target", BOTH)
    assert (diff["baseline"]["traces"], diff["target"]["traces"]) == (375 - 10, 10)
    out = tmp_path / "both.jsonl"
    assert cli("export", "--where", BOTH, "--to", "otlp-json", "--out", str(out)).exit_code == 0
    exported = {
        span["traceId"]
        for line in out.read_text().splitlines()
        for rs in json.loads(line).get("resourceSpans", [])
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    }
    assert exported == ids
    scan = cli.json("scan", "--since", WINDOW, "--where", BOTH)
    assert scan["series_scanned"] > 0  # today's reading selected no trace, so nothing was scanned


def test_the_help_and_readme_say_which_is_which() -> None:
    result = Cli(Path("unused.duckdb"))("traces", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "some span" in text and "span(" in text
    readme = (REPO / "README.md").read_text()
    assert "span(tool_name = 'lookup_charge_v1' and status = 'error')" in readme


@pytest.mark.parametrize(
    "expr",
    [
        "span(span(tool_name = 'a'))",
        "span(tool_name = 'a') = true",
        "span()",
        "span(tool_name = 'a', step_kind = 'tool')",
    ],
)
def test_span_form_refuses_what_it_cannot_mean(sample: Path, expr: str) -> None:
    result = Cli(sample)("traces", "--where", expr)
    assert result.exit_code == 2, (expr, result.output)
    assert "span(" in result.stderr


@pytest.mark.parametrize(
    "expr",
    [
        "(tool_name = 'lookup_charge' and step_kind = 'handoff') IS TRUE",
        "coalesce(tool_name = 'lookup_charge' and step_kind = 'handoff', false)",
        "(not tool_name = 'lookup_charge') is true",
        "(tool_name = 'lookup_charge' or model = 'gpt-4.1') is not true",
    ],
)
def test_and_or_not_inside_another_operator_is_refused_not_read_per_span(
    sample: Path, expr: str
) -> None:
    """Under IS TRUE or a function, and/or/not would be read for one span; refuse, don't guess."""
    result = Cli(sample)("traces", "--where", expr)
    assert result.exit_code == 2, (expr, result.output)
    assert "cannot be read per trace" in result.stderr
    # Without span fields the same shape is a plain trace condition.
    assert (
        Cli(sample)("traces", "--where", "(status = 'error' and llm_calls > 1) is true").exit_code
        == 0
    )


def test_long_chains_run_and_deep_nesting_is_a_usage_error(sample: Path) -> None:
    cli = Cli(sample)
    v1 = {r["trace_id"] for r in cli.json("traces", "--where", "tool_name = 'lookup_charge_v1'")}
    # A thousand or'd span comparisons are one pass over the spans (EXISTS(a) OR EXISTS(b) is
    # EXISTS(a OR b)), not a thousand subqueries or a recursion error.
    chain = " or ".join(["tool_name = 'lookup_charge_v1'"] * 999 + ["tool_name = 'nope'"])
    assert {r["trace_id"] for r in cli.json("traces", "--where", chain)} == v1
    nots = " and ".join(["not tool_name = 'nope'"] * 500 + ["not tool_name = 'lookup_charge_v1'"])
    assert len(cli.json("traces", "--where", nots, "-n", "1000")) == 375 - len(v1)
    for deep in ["(" * 80 + "status = 'error'" + ")" * 80, "not " * 200 + "status = 'error'"]:
        result = cli("traces", "--where", deep)
        assert result.exit_code == 2 and "nested too deeply" in result.stderr, result.output


def test_regexp_matches_is_allowed_as_documented(sample: Path) -> None:
    cli = Cli(sample)
    by_regexp = cli.json("traces", "--where", "regexp_matches(tool_name, '_v1$')")
    by_name = cli.json("traces", "--where", "tool_name = 'lookup_charge_v1'")
    assert {r["trace_id"] for r in by_regexp} == {r["trace_id"] for r in by_name} != set()


def test_a_condition_duckdb_cannot_evaluate_is_a_usage_error_in_export_and_scan(
    sample: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x.jsonl"
    result = Cli(sample)(
        "export", "--to", "otlp-json", "--out", str(out), "--where", "duration_ms > 'abc'"
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("aiobs: error: --where")
    scan = Cli(sample)("scan", "--since", WINDOW, "--where", "attr['x'] > 5")
    assert scan.exit_code == 2, scan.output
    assert scan.stderr.startswith("aiobs: error: --where")
