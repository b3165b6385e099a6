"""`aiobs query` (read-only guard, formats) and `aiobs stats` on the committed fixture journey."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from aiobs.analysis.query import check_read_only
from aiobs.errors import UsageError
from conftest import Cli

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "support-agent.otlp.jsonl"


@pytest.fixture
def loaded(cli):  # type: ignore[no-untyped-def]
    result = cli("ingest", str(FIXTURE), "-f", "json")
    assert result.exit_code == 0, result.output
    return cli


@pytest.mark.parametrize(
    "sql",
    [
        "insert into otel_traces select * from otel_traces",
        "delete from otel_logs",
        "drop table otel_logs",
        "create table x as select 1",
        "copy (select 1) to '/tmp/x.csv'",
        "attach '/tmp/other.duckdb' as o",
        "install httpfs",
        "set memory_limit = '1GB'",
        "pragma database_list",
        "select 1; select 2",
        "",
        "selec 1",
    ],
)
def test_query_refuses_everything_but_one_read(loaded, sql: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError):
        check_read_only(sql)
    result = loaded("query", sql)
    assert result.exit_code == 2
    assert "aiobs: error:" in result.stderr


@pytest.mark.parametrize(
    "sql",
    [
        "select 1",
        "with t as (select 1 as a) select a from t",
        "select 1 union all select 2",
        "select count(*) from ai_spans;",
    ],
)
def test_query_allows_reads(sql: str) -> None:
    assert check_read_only(sql)


def test_query_formats_agree(loaded) -> None:  # type: ignore[no-untyped-def]
    sql = "select step_kind, count(*) as n from ai_spans group by 1 order by 1"
    as_json = loaded.query(sql)
    expected = {
        "agent": 1,
        "handoff": 1,
        "llm": 3,
        "retrieval": 1,
        "tool": 1,
    }
    assert {r["step_kind"]: r["n"] for r in as_json} == expected
    jsonl = loaded("query", sql, "-f", "jsonl").stdout.strip().splitlines()
    assert [json.loads(x) for x in jsonl] == as_json
    rows = list(csv.DictReader(io.StringIO(loaded("query", sql, "-f", "csv").stdout)))
    assert {r["step_kind"]: int(r["n"]) for r in rows} == expected
    md = loaded("query", sql, "-f", "markdown").stdout
    assert md.splitlines()[0] == "| step_kind | n |"
    assert "| llm | 3 |" in md
    table = loaded("query", sql).stdout
    assert "handoff" in table and "retrieval" in table


def test_ai_traces_of_the_fixture_journey(loaded) -> None:  # type: ignore[no-untyped-def]
    rows = loaded.query(
        "select * exclude (start_time, end_time) from ai_traces order by trace_id desc"
    )
    failed = rows[0]
    assert failed["trace_id"] == "7f3a9c2e5b8d4f10a1c3e5f7092b4d6e"
    assert failed["root_name"] == "invoke_agent support-agent"
    assert failed["status"] == "error" and failed["error_count"] == 1
    assert failed["span_count"] == 6 and failed["llm_calls"] == 2 and failed["tool_calls"] == 1
    assert failed["input_tokens"] == 1840 + 1990 and failed["output_tokens"] == 64 + 88
    # gpt-4.1 list price: $2 in / $8 out per 1M tokens.
    assert failed["cost_usd"] == pytest.approx((3830 * 2.0 + 152 * 8.0) / 1e6)
    assert failed["duration_ms"] == 6400.0
    assert failed["session_id"] == "sess-42" and failed["user_id"] == "u123"
    assert failed["prompt_versions"] == ["v7"]
    assert failed["service_name"] == "support-chat" and failed["service_version"] == "2.3.0"
    other = rows[1]
    assert other["models"] == ["claude-sonnet-4-5"] and other["prompt_versions"] == []


def test_tool_error_fields(loaded) -> None:  # type: ignore[no-untyped-def]
    (tool,) = loaded.query("select * from ai_spans where step_kind = 'tool'")
    assert tool["tool_name"] == "payments_refund"
    assert tool["status"] == "error" and tool["error_type"] == "503"
    assert tool["error_message"].startswith("payments-api returned 503")
    assert tool["duration_ms"] == 2100.0


def test_config_prices_override_shipped(loaded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "config.toml").write_text('[prices."gpt-4.1"]\ninput = 1.0\noutput = 0.0\n')
    (row,) = loaded.query("select cost_usd from ai_traces where llm_calls = 2")
    assert row["cost_usd"] == pytest.approx(3830 * 1.0 / 1e6)


def test_config_prices_with_odd_names_and_bad_numbers(loaded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A quote in a model name is data, not SQL; a price that is not a finite, non-negative number
    # is a config error (exit 2), not a crash or a NaN cost.
    config = tmp_path / "config.toml"
    config.write_text('[prices."o\'brien-7b"]\ninput = 2.0\noutput = 4.0\n')
    assert loaded.json("query", "select count(*) as n from ai_traces")[0]["n"] == 2
    for bad in ("inf", "nan", "-1.0"):
        config.write_text(f'[prices."gpt-4.1"]\ninput = {bad}\noutput = 1.0\n')
        result = loaded("traces")
        assert result.exit_code == 2 and "finite" in result.stderr, (bad, result.stderr)


def test_stats_reports_coverage(loaded) -> None:  # type: ignore[no-untyped-def]
    stats = loaded.json("stats")
    signals = {s["signal"]: s["count"] for s in stats["signals"]}
    assert signals["spans"] == 7 and signals["traces"] == 2 and signals["log_records"] == 3
    assert signals["metric_points (gauge)"] == 5 and signals["metric_points (histogram)"] == 1
    assert signals["events (log records with an event name)"] == 2
    coverage = {f["field"]: f for f in stats["coverage"]["fields"]}
    assert stats["coverage"]["llm_steps"] == 3
    assert coverage["model"]["share"] == 1.0
    assert coverage["prompt_version"]["steps"] == 2
    assert coverage["message_content"]["steps"] == 3
    conventions = {c["convention"]: c["spans"] for c in stats["coverage"]["conventions"]}
    assert conventions == {"otel-genai": 6, "openinference": 1}
    for fmt in ("table", "markdown", "csv", "jsonl"):
        assert loaded("stats", "-f", fmt).exit_code == 0


def test_json_keeps_nanoseconds(loaded) -> None:  # type: ignore[no-untyped-def]
    (row,) = loaded.query(
        "select TIMESTAMP_NS '2025-11-16 14:02:00.123456789' as t, epoch_ns(t) as ns"
    )
    assert row["t"] == "2025-11-16T14:02:00.123456789Z"
    assert row["ns"] == 1_763_301_720_123_456_789


@pytest.mark.parametrize(
    "sql",
    [
        "select content from read_text('/etc/hostname')",
        "select * from glob('/*')",
        "select * from read_csv('pyproject.toml')",
    ],
)
def test_query_cannot_reach_outside_the_store(loaded, sql: str) -> None:  # type: ignore[no-untyped-def]
    result = loaded("query", sql)
    assert result.exit_code == 2
    assert "disabled" in result.stderr


def test_query_renders_zoned_timestamps_as_utc(loaded) -> None:  # type: ignore[no-untyped-def]
    (row,) = loaded.query("select TIMESTAMPTZ '2025-11-16 16:02:00+02:00' as t")
    assert row["t"] == "2025-11-16T14:02:00.000000Z"


def test_hostile_column_names_are_inert(loaded) -> None:  # type: ignore[no-untyped-def]
    name = "\x1b]0;pwned\x07\x1b[31mred[bold]x"
    sql = 'select 1 as "' + name + '"'
    for fmt in ("table", "markdown"):
        out = loaded("query", sql, "-f", fmt).stdout
        assert "\x1b" not in out and "\x07" not in out
        assert "\\x1b]0;pwned\\x07" in out
        assert "[bold]x" in out  # shown literally, not taken as Rich markup


def test_closed_pipe_is_not_an_error(db: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    ingest = subprocess.run(
        [sys.executable, "-m", "aiobs", "--db", str(db), "-q", "ingest", str(FIXTURE)],
        capture_output=True,
    )
    assert ingest.returncode == 0
    script = (
        f"{sys.executable} -m aiobs --db {db} query "
        "'select * from range(200000)' -f jsonl | head -1; echo rc=${PIPESTATUS[0]}"
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines()[-1] == "rc=0", out.stderr


def _priced(cli, tmp_path: Path, spans: list[tuple[str, dict[str, object]]]) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from conftest import otlp_span, traces_doc

    doc = traces_doc(
        *(
            otlp_span(span_id=f"{i + 1:016x}", name=name, attrs=attrs)
            for i, (name, attrs) in enumerate(spans)
        )
    )
    path = tmp_path / "priced.json"
    path.write_text(json.dumps(doc))
    assert cli("ingest", str(path)).exit_code == 0
    return {r["name"]: r["cost_usd"] for r in cli.query("select name, cost_usd from ai_spans")}


def test_price_lookup_exact_then_normalised(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def call(model: str, tokens: bool = True) -> dict[str, object]:
        attrs: dict[str, object] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
        if tokens:
            attrs |= {"gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 0}
        return attrs

    costs = _priced(
        cli,
        tmp_path,
        [
            ("dated", call("gpt-4o-2024-08-06")),
            ("prefixed", call("openai/gpt-4o-mini")),
            ("mistral", call("mistral-large-2411")),
            ("embedding", call("text-embedding-3-small")),
            ("unknown", call("my-own-model")),
            ("no tokens", call("gpt-4o", tokens=False)),
        ],
    )
    assert costs["dated"] == pytest.approx(2.5)  # gpt-4o input, $ per 1M
    assert costs["prefixed"] == pytest.approx(0.15)
    assert costs["mistral"] == pytest.approx(2.0)
    assert costs["embedding"] == pytest.approx(0.02)
    assert costs["unknown"] is None
    assert costs["no tokens"] is None  # no usage: unknown cost, not $0


def test_model_key_matches_the_sql_normalisation(cli) -> None:  # type: ignore[no-untyped-def]
    from aiobs.semantic.prices import MODEL_KEY_PATTERN, model_key

    names = [
        "gpt-4o-2024-08-06",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "models/gemini-2.5-flash",
        "mistral-large-2411",
        "claude-sonnet-4-5@20250929",
        "text-embedding-004",
    ]
    con = __import__("duckdb").connect()
    for name in names:
        (sql,) = con.execute(
            "select regexp_replace(lower(trim(?)), ?, '', 'g')", [name, MODEL_KEY_PATTERN]
        ).fetchone()
        assert sql == model_key(name), name


def test_langfuse_native_export_keeps_its_fields(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An export from Langfuse's own SDK has no OTel attributes: type, model, timing carry it."""
    doc = {
        "trace": {"id": "t-1", "name": "support", "userId": "u9", "sessionId": "s9"},
        "observations": [
            {
                "id": "o-1",
                "traceId": "t-1",
                "type": "GENERATION",
                "name": "answer",
                "model": "gpt-4o",
                "startTime": "2025-11-16T14:02:00.000Z",
                "completionStartTime": "2025-11-16T14:02:00.350Z",
                "endTime": "2025-11-16T14:02:01.000Z",
                "usageDetails": {"input": 1000, "output": 100},
                "metadata": "{}",
            },
            {
                "id": "o-2",
                "traceId": "t-1",
                "parentObservationId": "o-1",
                "type": "TOOL",
                "name": "lookup_order",
                "startTime": "2025-11-16T14:02:00.100Z",
                "endTime": "2025-11-16T14:02:00.200Z",
            },
        ],
    }
    path = tmp_path / "native.trace.json"
    path.write_text(json.dumps(doc))
    assert cli("ingest", str(path), "--strict").exit_code == 0
    rows = {r["name"]: r for r in cli.query("select * from ai_spans")}
    gen, tool = rows["answer"], rows["lookup_order"]
    assert (gen["step_kind"], gen["model"], gen["input_tokens"], gen["output_tokens"]) == (
        "llm",
        "gpt-4o",
        1000,
        100,
    )
    assert gen["ttft_ms"] == pytest.approx(350.0)
    assert gen["cost_usd"] == pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6)
    assert (gen["session_id"], gen["user_id"]) == ("s9", "u9")
    assert (tool["step_kind"], tool["tool_name"]) == ("tool", "lookup_order")
    assert tool["parent_span_id"] == gen["span_id"]


def test_view_columns_are_the_documented_contract(loaded) -> None:  # type: ignore[no-untyped-def]
    from aiobs.semantic.views import AI_SPANS_COLUMNS, AI_TRACES_COLUMNS

    for view, expected in (("ai_spans", AI_SPANS_COLUMNS), ("ai_traces", AI_TRACES_COLUMNS)):
        rows = loaded.query(f"select column_name from (describe {view})")
        assert tuple(r["column_name"] for r in rows) == expected
        readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
        for column in expected:
            assert column in readme, column


def _stats_by_definition(cli: Any) -> dict[str, Any]:
    """The sections of `aiobs stats` computed the plain way, straight from ai_spans and the
    attribute maps: what the command's faster SQL must equal."""
    from aiobs.analysis.stats import _CONTENT_KEYS
    from aiobs.semantic.fields import CONVENTIONS

    content = " OR ".join(f"attributes['{k}'] IS NOT NULL" for k in _CONTENT_KEYS)
    (cov,) = cli.query(
        "SELECT count(*) AS n, count(model) AS model, count(input_tokens) AS input_tokens,"
        " count(output_tokens) AS output_tokens, count(cost_usd) AS cost_usd,"
        " count(prompt_version) AS prompt_version, count(session_id) AS session_id,"
        f" count(user_id) AS user_id, count_if({content}) AS message_content"
        " FROM ai_spans WHERE step_kind = 'llm'"
    )
    cases = ", ".join(
        "count_if(len(list_filter(map_keys(SpanAttributes), lambda k: "
        + " OR ".join(f"starts_with(k, '{p}')" for p in prefixes)
        + f')) > 0) AS "{name}"'
        for name, prefixes in CONVENTIONS
    )
    (conv,) = cli.query(f"SELECT {cases} FROM otel_traces")
    n = cov.pop("n")
    return {
        "services": cli.query(
            "SELECT service_name, service_version, count(*) AS spans,"
            " count(DISTINCT trace_id) AS traces FROM ai_spans GROUP BY ALL"
            " ORDER BY spans DESC, service_name, service_version"
        ),
        "models": cli.query(
            "SELECT provider, model, count(*) AS calls, sum(input_tokens) AS input_tokens,"
            " sum(output_tokens) AS output_tokens, round(fsum(cost_usd), 6) AS cost_usd"
            " FROM ai_spans WHERE step_kind IN ('llm', 'embedding')"
            " GROUP BY ALL ORDER BY calls DESC, provider, model"
        ),
        "step_kinds": cli.query(
            "SELECT step_kind, count(*) AS spans FROM ai_spans GROUP BY ALL"
            " ORDER BY spans DESC, step_kind"
        ),
        "coverage": {
            "llm_steps": n,
            "fields": [
                {"field": f, "steps": v, "share": round(v / n, 4) if n else None}
                for f, v in cov.items()
            ],
            "conventions": [{"convention": c, "spans": v} for c, v in conv.items() if v],
        },
    }


@pytest.mark.parametrize("store", ["corpus", "demo"])
def test_stats_equals_its_definition(store: str, request: pytest.FixtureRequest) -> None:
    """Every convention (the corpus) and a week of traffic (the demo): the coverage, conventions,
    services, models and step kinds `stats` reports are what ai_spans and the maps say."""
    cli = request.getfixturevalue("corpus")[0] if store == "corpus" else None
    if cli is None:
        cli = Cli(request.getfixturevalue("demo")[0])
    got = cli.json("stats")
    want = _stats_by_definition(cli)
    assert {k: got[k] for k in want} == want
    assert len(want["coverage"]["conventions"]) >= (5 if store == "corpus" else 1)
    assert want["coverage"]["fields"][-1]["steps"] > 0  # message content was seen


def test_stats_of_an_empty_store(cli: Cli) -> None:
    """A store with nothing in it yet (a blank file) reports zeros, not a crash."""
    import duckdb

    duckdb.connect(str(cli.db)).close()
    stats = cli.json("stats")
    assert {s["signal"]: s["count"] for s in stats["signals"]}["spans"] == 0
    assert stats["coverage"]["llm_steps"] == 0 and stats["coverage"]["conventions"] == []
    assert {f["steps"] for f in stats["coverage"]["fields"]} == {0}
    assert stats["models"] == [] and stats["services"] == [] and stats["step_kinds"] == []
    assert cli("stats").exit_code == 0
