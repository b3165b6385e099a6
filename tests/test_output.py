"""Output a person can read and a script can trust: numbers in one set of units, tables that
fit the terminal by column priority (never dropping the key), piped output neither padded nor
cut, and multi-table results (``stats``, ``diff``) whole in every row format."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aiobs.present.tables import KEY, Col, fit_columns, rows_table, time_layout, wrap_words
from aiobs.units import duration, money, num, pct, plural
from conftest import Cli

WEEK = "2026-11-08T00:00:00Z..2026-11-15T00:00:00Z"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.00668705, "0.67%"), (0.125, "12.5%"), (1.0, "100%"), (7.42, "742%"), (0.0, "0%"),
        (0.00012, "0.012%"), (-0.0000001, "~0%"), (-0.0236, "-2.36%"), (None, "-"),
    ],
)  # fmt: skip
def test_rates_read_as_percentages_with_the_precision_they_need(value: Any, text: str) -> None:
    assert pct(value) == text


def test_a_change_rounded_to_nothing_has_no_sign() -> None:
    assert pct(-0.0004, 1) == "0.0%" and pct(0.0004, 0, sign=True) == "0%"
    assert pct(0.12, 0, sign=True) == "+12%" and pct(-0.12, 0, sign=True) == "-12%"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0023, "$0.0023"), (0.002986, "$0.0030"), (0.5, "$0.50"), (14.736, "$14.74"),
        (1204.4, "$1,204"), (0.0, "$0"), (-0.00024, "-$0.00024"), (None, "-"),
    ],
)  # fmt: skip
def test_costs_are_rounded_to_what_matters(value: Any, text: str) -> None:
    assert money(value) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (412, "412 ms"), (2463.8, "2.46 s"), (12_345, "12.3 s"), (5.4 * 60_000, "5.4 min"),
        (326.5 * 60_000, "5.4 h"), (19 * 3_600_000, "19 h"), (47 * 60_000, "47 min"), (3.2 * 86_400_000, "3.2 d"),
    ],
)  # fmt: skip
def test_durations_use_the_largest_unit_that_reads(ms: float, text: str) -> None:
    assert duration(ms) == text


def test_one_thousands_separator_rule_and_plurals() -> None:
    assert [num(v) for v in (1234.5, 123.4, 12.345, -0.0001)] == ["1,234", "123", "12.3", "-0.0001"]
    assert num(-0.00001, 1) == "-1e-05" and num(-0.0, 3) == "0"
    assert [plural(1, "trace"), plural(2348, "span"), plural(0, "incident")] == [
        "1 trace",
        "2,348 spans",
        "0 incidents",
    ]


def test_times_show_the_part_that_differs() -> None:
    same_day = [datetime(2026, 12, 3, 9, 5, 1), datetime(2026, 12, 3, 23, 0, 0)]
    assert time_layout(same_day) == ("%H:%M:%S", "2026-12-03")
    assert time_layout([*same_day, datetime(2026, 12, 4)])[0] == "%m-%d %H:%M:%S"
    assert time_layout([*same_day, datetime(2025, 12, 4)])[0] == "%Y-%m-%d %H:%M:%S"


def test_narrow_tables_leave_out_the_lowest_priority_columns_never_the_key() -> None:
    cols = [Col("id", KEY), Col("a", 1), Col("wide", 5), Col("b", 2), Col("note", 3, wrap=True)]
    natural = [32, 10, 30, 6, 60]
    shown, widths = fit_columns(cols, natural, 200)
    assert shown == [0, 1, 2, 3, 4] and widths == natural
    # 80 columns: the key, a, b, then the free text at what is left; "wide" (5) is left out.
    shown, widths = fit_columns(cols, natural, 80)
    assert shown == [0, 1, 3, 4] and sum(widths) + 2 * 3 == 80 and widths[:3] == [32, 10, 6]
    # 30 columns: only the key, whole, however narrow the terminal.
    shown, widths = fit_columns(cols, natural, 30)
    assert shown == [0] and widths == [32]
    assert fit_columns(cols, natural, None) == ([0, 1, 2, 3, 4], natural)


def test_the_free_text_column_wraps_instead_of_being_cut() -> None:
    from rich.console import Console

    reason = "the payments API answered 503 Service Unavailable after 2.1 s on every retry"
    table = rows_table(
        [Col("file", KEY), Col("reason", 1, "text", wrap=True)],
        [{"file": "day-1.jsonl", "reason": reason}],
        50,
    )
    out = io.StringIO()
    Console(file=out, width=50, no_color=True).print(table)
    text = out.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 50
    assert len(text.splitlines()) > 3  # header, rule, and the reason over several lines
    assert all(word in text.split() for word in reason.split())


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("model=claude-sonnet-4-5-20250929", 26, ["model=", "claude-sonnet-4-5-20250929"]),
        ("http.server.request.duration:mean", 19, ["http.server.", "request.", "duration:mean"]),
        ("prompt_version=v7, model=gpt-4.1", 20, ["prompt_version=v7,", "model=gpt-4.1"]),
        ("a tool failed after 2.1 s", 12, ["a tool", "failed after", "2.1 s"]),
        ("x" * 30, 12, ["x" * 12, "x" * 12, "x" * 6]),
        ("", 8, [""]),
    ],
)  # fmt: skip
def test_a_long_word_breaks_after_its_punctuation(text: str, width: int, lines: list[str]) -> None:
    assert wrap_words(text, width).split("\n") == lines


def test_spare_width_goes_where_most_cells_wrap_and_extras_never_force_a_wrap() -> None:
    # A scan's anomaly table: one long metric name, many long segments, a minor onset column.
    cols = [Col("metric", KEY, wrap=True), Col("segment", 1, wrap=True), Col("value", 1),
            Col("onset", 3)]  # fmt: skip
    natural, lengths = [33, 32, 8, 11], [[16, 16, 33], [32, 32, 32, 5], [8, 8, 8], [11, 11, 11]]
    shown, widths = fit_columns(cols, natural, 78, natural, lengths)
    # The segments (three cells wrapping) get their whole width first, the metric what is left;
    # the onset would make both wrap, so it is left out.
    assert shown == [0, 1, 2] and widths == [33, 32, 8]
    shown, widths = fit_columns(cols, natural, 100, natural, lengths)
    assert shown == [0, 1, 2, 3] and widths == natural
    shown, widths = fit_columns(cols, natural, 50, natural, lengths)
    # Too narrow for every word: the long words break (at 16) so the value still shows.
    assert shown == [0, 1, 2] and widths[2] == 8 and sum(widths) + 2 * 2 <= 50


def _golden_cli(demo: tuple[Path, dict[str, Any]]) -> Cli:
    return Cli(demo[0])


def test_piped_tables_are_neither_padded_nor_cut(demo: tuple[Path, dict[str, Any]]) -> None:
    cli = _golden_cli(demo)
    for args in (["stats"], ["traces", "-n", "5"], ["segment", "--by", "prompt_version"]):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines and not [line for line in lines if line != line.rstrip()], args
        assert "…" not in result.stdout and "more column" not in result.stdout, args
    header = cli("traces", "-n", "5").stdout.splitlines()[0].split()
    assert header[:4] == ["trace_id", "start_time", "status", "duration_ms"]
    assert {"models", "user_id", "session_id", "cost_usd"} <= set(header)


@pytest.mark.parametrize("width", [80, 160])
def test_on_a_terminal_every_line_fits(demo: tuple[Path, dict[str, Any]], width: int) -> None:
    cli = _golden_cli(demo)
    for args in (["stats"], ["scan", "--since", WEEK], ["sessions", "-n", "5"]):
        text = cli.on_terminal(*args, columns=width)
        assert max(len(line) for line in text.splitlines()) <= width, args
    scan = cli.on_terminal("scan", "--since", WEEK, columns=80)
    # The anomaly's segment is whole (it was cut to "prompt_version…"), in its unit.
    assert "prompt_version=v7" in scan and "%" in scan


def test_scan_tables_show_each_anomaly_once_with_its_observed_value(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    cli = _golden_cli(demo)
    found = cli.json("scan", "--since", WEEK)
    pairs = [
        (a["metric"], json.dumps(a["segment"], sort_keys=True))
        for inc in found["incidents"]
        for a in inc["anomalies"]
    ]
    assert len(pairs) > len(set(pairs))  # the week has a series two detectors found
    report = cli("scan", "--since", WEEK, "-f", "markdown").stdout
    for block in report.split("\n## ")[1:]:
        rows = [line.split(" | ") for line in block.splitlines() if line.startswith("| ")][1:]
        shown = [(r[0], r[1]) for r in rows]
        assert shown and len(shown) == len(set(shown)), block[:200]
    # An anomaly of another service (infra moving with the incident) is named by its service.
    others = {
        a["segment"]["service"]
        for inc in found["incidents"]
        for a in inc["anomalies"]
        if a["segment"].get("service") != inc["segment"].get("service")
    }
    named = set(re.findall(r"\| service=([\w.-]+)", report))
    assert named and named <= others
    text = cli.on_terminal("scan", "--since", WEEK, columns=80)
    headers = [line for line in text.splitlines() if line.strip().startswith("anomaly ")]
    assert headers and all({"segment", "expected", "observed"} <= set(h.split()) for h in headers)


def test_stats_csv_is_one_table_with_a_section_column(demo: tuple[Path, dict[str, Any]]) -> None:
    cli = _golden_cli(demo)
    rows = list(csv.DictReader(io.StringIO(cli("stats", "-f", "csv").stdout)))
    sections = {r["section"] for r in rows}
    assert sections == {
        "signals", "services", "models", "step_kinds", "coverage", "conventions", "ingests",
    }  # fmt: skip
    spans = next(r for r in rows if r["section"] == "signals" and r["signal"] == "spans")
    assert int(spans["count"]) == cli.json("stats")["signals"][0]["count"]
    lines = [json.loads(line) for line in cli("stats", "-f", "jsonl").stdout.splitlines()]
    assert {r["section"] for r in lines} == sections and len(lines) == len(rows)


def test_diff_row_formats_carry_the_sides_metrics_and_factors(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    cli = _golden_cli(demo)
    args = ["diff", "--baseline", "2026-11-11T19:58:00Z..2026-11-12T15:05:00Z",
            "--target", "2026-11-12T15:05:00Z..2026-11-13T10:12:00Z", "--top", "3"]  # fmt: skip
    whole = cli.json(*args)
    lines = [json.loads(line) for line in cli(*args, "-f", "jsonl").stdout.splitlines()]
    by = {s: [r for r in lines if r["section"] == s] for s in ("sides", "metrics", "factors")}
    assert [r["traces"] for r in by["sides"]] == [
        whole["baseline"]["traces"],
        whole["target"]["traces"],
    ]
    assert [{k: v for k, v in r.items() if k != "section"} for r in by["metrics"]] == whole[
        "metrics"
    ]
    assert [{k: v for k, v in r.items() if k != "section"} for r in by["factors"]] == whole[
        "factors"
    ]
    table = list(csv.DictReader(io.StringIO(cli(*args, "-f", "csv").stdout)))
    assert len(table) == len(lines)
    factor = next(r for r in table if r["section"] == "factors")
    assert factor["field"] == whole["factors"][0]["field"]
    assert json.loads(factor["examples"]) == whole["factors"][0]["examples"]


def _all_options() -> set[str]:
    from typer.main import get_command

    from aiobs.cli.main import app

    def commands(group: Any) -> list[Any]:  # a group's commands, and its groups' (clickhouse ddl)
        found = list(getattr(group, "commands", {}).values())
        return [*found, *(c for sub in found for c in commands(sub))]

    root = get_command(app)
    params = [*root.params, *(p for c in commands(root) for p in c.params)]
    return {"--help"} | {o for p in params for o in (*p.opts, *p.secondary_opts)}


def test_every_option_a_message_names_exists() -> None:
    """A hint that names ``--full`` must be one a user can type: every ``--option`` in the
    program's strings (messages, hints, help) is an option of some command."""
    import ast

    options = _all_options()
    src = Path(__file__).resolve().parents[1] / "src" / "aiobs"
    named: dict[str, str] = {}
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for line in node.value.splitlines():
                    if "bench/" in line:  # a measurement's command line, not aiobs's
                        continue
                    for m in re.finditer(r"(?<![\w-])--[a-z][a-z0-9-]+", line):
                        named.setdefault(m.group(0), str(path.relative_to(src)))
    assert len(named) > 20
    assert {o: f for o, f in named.items() if o not in options} == {}


def _format_choices(command: str) -> list[str]:
    from typer.main import get_command

    from aiobs.cli.main import app

    params = get_command(app).commands[command].params  # type: ignore[attr-defined]
    (fmt,) = [p for p in params if "--format" in p.opts]
    return list(fmt.type.choices)


def _parse(fmt: str, text: str) -> Any:
    if fmt == "json":
        return json.loads(text)
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return text


def test_every_read_command_takes_every_format_it_lists(demo: tuple[Path, dict[str, Any]]) -> None:
    """Each read command, in each format its --format lists: exit 0, output that parses, and
    the row formats carry what the JSON has (the same sections or rows)."""
    cli = _golden_cli(demo)
    failed = cli.query(
        "select trace_id from ai_traces where status = 'error' order by trace_id limit 1"
    )[0]["trace_id"]
    ok = cli.query("select trace_id from ai_traces where status = 'ok' order by trace_id limit 1")[
        0
    ]["trace_id"]
    commands = {
        "traces": ["traces", "-n", "3"],
        "sessions": ["sessions", "-n", "3"],
        "segment": ["segment", "--by", "model"],
        "stats": ["stats"],
        "scan": ["scan", "--since", WEEK],
        "replay": ["replay", failed],
        "diff-traces": ["diff-traces", ok, failed],
        "describe": ["describe", failed],
        "query": ["query", "select count(*) as n from ai_traces"],
        "diff": ["diff", "--baseline", "2026-11-11T19:58:00Z..2026-11-12T15:05:00Z",
                 "--target", "2026-11-12T15:05:00Z..2026-11-13T10:12:00Z", "--top", "2"],
    }  # fmt: skip
    for name, args in commands.items():
        outputs = {}
        for fmt in _format_choices(name):
            result = cli(*args, "-f", fmt)
            assert result.exit_code == 0, (name, fmt, result.output)
            assert result.stdout.strip(), (name, fmt)
            outputs[fmt] = _parse(fmt, result.stdout)
        assert "json" in outputs, name
        if "jsonl" in outputs and "csv" in outputs:
            assert len(outputs["jsonl"]) == len(outputs["csv"]), name
        if "jsonl" in outputs and isinstance(outputs["json"], dict):
            sections = {r["section"] for r in outputs["jsonl"]}
            records = {
                k
                for k, v in outputs["json"].items()
                if isinstance(v, list) and v and isinstance(v[0], dict)
            }
            assert records <= sections | {"traces", "steps"}, (name, records - sections)
    assert _format_choices("demo") == ["table", "json"]
    assert _format_choices("describe") == ["text", "json"]


def test_export_out_dash_is_stdout(demo: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """``--out -`` writes to stdout (as ``ingest -`` reads stdin): no file named ``-``, and the
    JSON Lines go back in through ``ingest -``."""
    import os

    cli = _golden_cli(demo)
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        dumped = cli("export", "--to", "otlp-json", "--out", "-", "-n", "3")
        report = cli("export", "--to", "markdown", "--out", "-", "-n", "3")
        parquet = cli("export", "--to", "parquet", "--out", "-")
    finally:
        os.chdir(here)
    assert dumped.exit_code == 0 and report.exit_code == 0, dumped.output + report.output
    assert not (tmp_path / "-").exists()
    assert "3 traces → stdout" in dumped.stderr and report.stdout.startswith("# Incident report")
    assert parquet.exit_code == 2 and "--out -" in parquet.stderr
    again = Cli(tmp_path / "again.duckdb")
    assert again("ingest", "-", input=dumped.stdout_bytes).exit_code == 0
    # -n keeps the newest traces, with or without a filter.
    newest = sorted(r["trace_id"] for r in cli.json("traces", "-n", "3"))
    got = again.query("select trace_id from ai_traces order by trace_id")
    assert [r["trace_id"] for r in got] == newest
