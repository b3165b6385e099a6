"""Mistakes in a condition or a query are told in the writer's words: what is wrong, where (a caret
under the spot, aligned with the echoed text), which option it came from, and what to do instead.
Never a parser's class name, a DuckDB binder error or a library's log line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiobs.analysis.query import check_read_only
from aiobs.analysis.where import parse_where
from aiobs.errors import UsageError
from conftest import Cli

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "support-agent.otlp.jsonl"
# What a reader must never see: the parser's internals.
LEAKS = ("<class", "sqlglot", "Expecting", "BLOCK", "Required keyword", "Binder", "Falling back")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("errors") / "store.duckdb")
    result = cli("ingest", str(FIXTURE))
    assert result.exit_code == 0, result.output
    return cli


def caret_points_at(stderr: str, option: str) -> str:
    """The text of the error line from the column the hint's caret marks."""
    error, hint = (line for line in stderr.splitlines() if line.startswith("aiobs: "))
    assert error.startswith(f"aiobs: error: {option} "), stderr
    column = hint.index("^")
    assert hint[len("aiobs: hint: ") : column].strip() == "", hint
    return error[column:]


@pytest.mark.parametrize(
    ("condition", "problem", "spot"),
    [
        ("status = ", "a value is missing", '"'),  # just past the end: the closing quote
        ("status =", "a value is missing", '"'),
        ("status = 'error';", "`;` ends a statement", ";"),
        ("status = 'error'; drop table x", "`;` ends a statement", "; drop"),
        ("status = 'error' and", "a condition is missing", '"'),
        ("stauts = 'error'", "unknown field stauts", "stauts"),
        ("(status = 'error'", "`(` is never closed", "(status"),
        ("status = 'error')", "`)` closes no `(`", ")"),
        ("status = 'err", "the quote `'` is never closed", "'err"),
        ('status = "error"', 'unknown field "error"', '"error"'),
        ("duration_ms > 2 s", "`s` after a number is not a unit", "s"),
        ("select 1", "`select` starts a statement", "select"),
        ("status = 'error' and model in (select 1)", "a subquery is not allowed", "select"),
        ("lenght(root_name) > 3", "function lenght() is not allowed", "lenght"),
        ("span(tool_name = 'a') = true", "span(…) is a condition of its own", "span("),
    ],
)
def test_a_condition_error_says_what_and_where(
    loaded: Cli, condition: str, problem: str, spot: str
) -> None:
    result = loaded("traces", "--where", condition)
    assert result.exit_code == 2, result.output
    assert problem in result.stderr, result.stderr
    assert not any(leak in result.stderr for leak in LEAKS), result.stderr
    assert caret_points_at(result.stderr, "--where").startswith(spot), result.stderr


def test_a_near_miss_names_the_field_or_function_meant() -> None:
    with pytest.raises(UsageError) as field:
        parse_where("stauts = 'error'")
    assert "did you mean status?" in (field.value.hint or "")
    with pytest.raises(UsageError) as function:
        parse_where("regexp_match(tool_name, 'x')")
    assert "did you mean regexp_matches()?" in (function.value.hint or "")


@pytest.mark.parametrize("side", ["--baseline", "--target"])
def test_a_bad_diff_side_is_reported_as_the_option_it_came_from(loaded: Cli, side: str) -> None:
    good = "model = 'gpt-4.1'"
    args = {"--baseline": good, "--target": good} | {side: "status ="}
    result = loaded("diff", *(x for kv in args.items() for x in kv))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"aiobs: error: {side} "), result.stderr
    assert "--where" not in result.stderr
    assert caret_points_at(result.stderr, side).startswith('":')  # just past the end


def test_the_caret_stays_under_the_spot_past_wide_and_control_characters(loaded: Cli) -> None:
    result = loaded("traces", "--where", "root_name = '会話\x1b' and stauts = 1")
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr  # shown as an escape, counted as printed
    error = next(line for line in result.stderr.splitlines() if line.startswith("aiobs: error"))
    hint = next(line for line in result.stderr.splitlines() if line.startswith("aiobs: hint"))
    # Each CJK character takes two columns on a terminal.
    printed = hint.index("^") - sum(1 for ch in error[: hint.index("^")] if ch in "会話")
    assert error[printed:].startswith("stauts"), (error, hint)


WORDS = [
    *"()[];'\"=<>!,.* \n\t@:$?", "status", "and", "or", "not", "in", "is", "null", "like",
    "between", "select", "span", "attr", "'x'", "1", "2.5", "duration_ms", "model", "case",
    "when", "cast",
]  # fmt: skip


@given(st.lists(st.sampled_from(WORDS), max_size=14))
@settings(max_examples=300, deadline=None)
def test_any_text_parses_or_is_refused_in_words(words: list[str]) -> None:
    text = " ".join(words)
    try:
        parse_where(text)
    except UsageError as exc:
        said = f"{exc.message}\n{exc.hint or ''}"
        assert not any(leak in said for leak in LEAKS), said


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("checkpoint", "CHECKPOINT writes to the store"),
        ("attach 'x.duckdb'", "ATTACH opens another database"),
        ("load httpfs", "cannot install or load extensions"),
        ("install httpfs", "cannot install or load extensions"),
        ("delete from otel_logs", "DELETE changes the store's rows"),
        ("drop table otel_logs", "DROP changes the store's schema"),
        ("copy ai_traces to 'x.csv'", "COPY reads or writes files"),
        ("select 1; select 2", "this text has 2 statements"),
        ("selec 1", "this statement starts with selec"),
        ("describe select * from read_csv('pyproject.toml')", "reading files is disabled"),
        ("summarize select * from read_text('/etc/hostname')", "reading files is disabled"),
    ],
)
def test_a_refused_query_says_plainly_what_and_why(loaded: Cli, sql: str, said: str) -> None:
    result = loaded("query", sql)
    assert result.exit_code == 2, result.output
    assert said in result.stderr, result.stderr
    assert "this is a" not in result.stderr and " a ATTACH" not in result.stderr
    assert not any(leak in result.stderr for leak in LEAKS), result.stderr


def test_selec_suggests_select() -> None:
    with pytest.raises(UsageError) as refused:
        check_read_only("selec 1")
    assert refused.value.hint == "did you mean SELECT?"


@pytest.mark.parametrize(
    ("sql", "first_column", "has"),
    [
        ("describe ai_traces", "column_name", "trace_id"),
        ("show tables", "name", "ai_spans"),
        ("summarize ai_traces", "column_name", "duration_ms"),
        ("from ai_traces select trace_id", "trace_id", None),
        ("show databases", "database_name", None),
    ],
)
def test_describe_show_and_summarize_are_reads(
    loaded: Cli, sql: str, first_column: str, has: str | None
) -> None:
    rows = loaded.json("query", sql)
    assert rows and next(iter(rows[0])) == first_column, rows[:1]
    if has is not None:
        assert any(has in row.values() for row in rows), rows


def test_limit_must_be_a_count(loaded: Cli) -> None:
    result = loaded("query", "select 1 as a", "--limit", "-1")
    assert result.exit_code == 2
    assert "--limit" in result.stderr and "Binder" not in result.stderr
    assert loaded.json("query", "select 1 as a union all select 2", "--limit", "1") == [{"a": 1}]
    columns_only = loaded("query", "select 1 as a", "--limit", "0", "-f", "csv")
    assert columns_only.exit_code == 0 and columns_only.stdout.strip() == "a"
