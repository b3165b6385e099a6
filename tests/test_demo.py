"""The demo world: built through the real CLI and ingest, every planted incident visible in plain SQL.

One demo store (a week at a quarter of the default traffic) is built per test session; the ground-
truth manifest it records drives the incident checks, so later analysis tests can rely on it.
"""

from __future__ import annotations

import gzip
import json
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aiobs.demo.conventions import RENDERINGS
from conftest import DEMO_END as END
from conftest import DEMO_SCALE as SCALE
from conftest import REPO, Cli


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("clean")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOBS_CONFIG", str(base / "config.toml"))
        db = base / "clean.duckdb"
        result = Cli(db)("demo", "--scale", SCALE, "--end", END, "--no-incidents", "-f", "json")
        assert result.exit_code == 0, result.output
        yield db


def sql(db: Path, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from aiobs.backend.duckdb import open_store

    with open_store(db) as store:
        return store.con.execute(query, params or []).fetchall()


def one(db: Path, query: str, params: list[Any] | None = None) -> Any:
    return sql(db, query, params)[0][0]


def incident(summary: dict[str, Any], incident_id: str) -> dict[str, Any]:
    found = [i for i in summary["manifest"]["incidents"] if i["id"] == incident_id]
    assert found, f"manifest has no incident {incident_id}"
    return found[0]


def ts(iso: str | None) -> datetime:
    assert iso is not None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).replace(tzinfo=None)


# --- the store holds the world -------------------------------------------------------------------


def test_demo_store_holds_all_four_layers(demo: tuple[Path, dict[str, Any]]) -> None:
    db, summary = demo
    assert summary["traces"] > 2000 and summary["spans"] > 20000
    days = one(db, "SELECT date_diff('hour', min(start_time), max(start_time)) FROM ai_traces")
    assert days >= 7 * 24 - 2  # a week of data
    # User behaviour: browser events with session ids, several linked to traces.
    events = dict(
        sql(
            db,
            "SELECT EventName, count(*) FROM otel_logs WHERE ServiceName = 'acme-web' GROUP BY 1",
        )
    )
    for name in (
        "browser.page_view",
        "browser.web_vitals",
        "chat.opened",
        "chat.message_sent",
        "chat.response_shown",
        "user.feedback",
        "chat.retry",
        "chat.rephrase",
        "chat.resolved",
        "session.abandoned",
        "chat.csat",
    ):
        assert events.get(name, 0) > 0, f"no {name} events"
    linked = one(
        db,
        "SELECT count(*) FROM otel_logs l JOIN ai_traces t ON l.TraceId = t.trace_id "
        "WHERE l.EventName = 'chat.response_shown' AND l.LogAttributes['session.id'] = t.session_id",
    )
    assert linked == events["chat.response_shown"]
    started = one(
        db,
        "SELECT count(*) FROM otel_logs l JOIN ai_traces t ON l.TraceId = t.trace_id "
        "WHERE l.EventName = 'chat.message_sent' AND l.Timestamp < t.start_time",
    )
    assert started == events["chat.message_sent"]  # the message that started each trace
    # Application layer: levelled logs with trace context, HTTP spans, deployments.
    levels = dict(
        sql(
            db,
            "SELECT SeverityText, count(*) FROM otel_logs WHERE EventName = '' AND TraceId <> '' "
            "GROUP BY 1",
        )
    )
    assert {"INFO", "WARN", "ERROR"} <= set(levels)
    assert one(db, "SELECT count(*) FROM otel_logs WHERE EventName = 'deployment'") >= 6
    # Infrastructure layer: gauges, sums and histograms from several services.
    for table, metric in (
        ("otel_metrics_gauge", "system.cpu.utilization"),
        ("otel_metrics_gauge", "gpu.utilization"),
        ("otel_metrics_gauge", "vectordb.query.duration"),
        ("otel_metrics_gauge", "handoff.queue.depth"),
        ("otel_metrics_sum", "system.memory.usage"),
        ("otel_metrics_histogram", "http.server.request.duration"),
    ):
        assert one(db, f"SELECT count(*) FROM {table} WHERE MetricName = ?", [metric]) > 0, metric


def test_demo_store_has_the_variety_analysis_needs(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    kinds = {r[0] for r in sql(db, "SELECT DISTINCT step_kind FROM ai_spans")}
    assert {"agent", "llm", "embedding", "retrieval", "rerank", "tool", "guardrail"} <= kinds
    assert {"handoff", "http", "db", "chain"} <= kinds
    assert one(db, "SELECT count(*) FROM ai_spans WHERE step_kind = 'handoff'") > 20
    assert one(db, "SELECT count(*) FROM ai_traces WHERE status = 'error'") > 20
    providers = {
        r[0] for r in sql(db, "SELECT DISTINCT provider FROM ai_spans WHERE step_kind = 'llm'")
    }
    assert providers == {"openai", "anthropic", "google"}
    prompts = {
        r[0]
        for r in sql(
            db, "SELECT DISTINCT prompt_version FROM ai_spans WHERE prompt_version IS NOT NULL"
        )
    }
    assert {"v5", "v6", "v7", "v8", "3"} <= prompts
    versions = sql(
        db,
        "SELECT service_name, count(DISTINCT service_version) FROM ai_spans "
        "GROUP BY 1 HAVING count(DISTINCT service_version) >= 2 ORDER BY 1",
    )
    assert [v[0] for v in versions] == ["order-assistant", "payments-api", "support-chat"]
    # Two instrumentation conventions, as real systems have.
    conventions = sql(
        db,
        "SELECT service_name, bool_or(map_contains(attributes, 'gen_ai.operation.name')),"
        " bool_or(map_contains(attributes, 'openinference.span.kind')) FROM ai_spans"
        " WHERE service_name IN ('support-chat', 'order-assistant') GROUP BY 1 ORDER BY 1",
    )
    assert conventions == [("order-assistant", False, True), ("support-chat", True, False)]
    # Costs are computed for every LLM step (all demo models are in the price table).
    assert (
        one(db, "SELECT count(*) FROM ai_spans WHERE step_kind = 'llm' AND cost_usd IS NULL") == 0
    )
    # Realistic shape: more traffic mid-afternoon than at night, on weekdays than weekends.
    by_hour = dict(sql(db, "SELECT hour(start_time), count(*) FROM ai_traces GROUP BY 1"))
    assert by_hour[15] > 3 * by_hour[3]


def test_manifest_is_recorded_and_matches_the_generator(demo: tuple[Path, dict[str, Any]]) -> None:
    from aiobs.demo.world import WorldConfig, plan_world

    db, summary = demo
    stored = json.loads(one(db, "SELECT value FROM aiobs_meta WHERE key = 'demo.manifest'"))
    config = WorldConfig(seed=7, days=7, scale=float(SCALE), end=datetime(2026, 11, 15, tzinfo=UTC))
    assert stored == summary["manifest"] == plan_world(config).manifest()
    assert {i["id"] for i in stored["incidents"]} == {
        "deprecated-tool-503",
        "retry-loop-tokens",
        "vector-index-rebuild",
        "reasoning-leak",
        "unsupported-answers",
    }
    for inc in stored["incidents"]:
        assert inc["start"] and inc["cause"] and inc["affected"] and inc["effect"]
        assert inc["end"] is None or ts(inc["end"]) > ts(inc["start"])
    # Each change that triggers an incident is a deployment/config event in the logs at that time.
    for inc in stored["incidents"]:
        if inc["trigger"]:
            at = stored["changes"][inc["trigger"]]["at"]
            found = one(
                db,
                "SELECT count(*) FROM otel_logs WHERE EventName IN ('deployment', 'config.change')"
                " AND Timestamp = ?::TIMESTAMP",
                [ts(at)],
            )
            assert found == 1, inc["id"]


# --- each planted incident is really in the data ------------------------------------------------


def test_deprecated_tool_incident(demo: tuple[Path, dict[str, Any]]) -> None:
    db, summary = demo
    inc = incident(summary, "deprecated-tool-503")
    start, end = ts(inc["start"]), ts(inc["end"])
    share_sql = (
        "SELECT avg(CASE WHEN EXISTS (SELECT 1 FROM ai_spans s WHERE s.trace_id = t.trace_id"
        " AND s.tool_name = 'lookup_charge_v1') THEN 1.0 ELSE 0.0 END), count(*)"
        " FROM ai_traces t WHERE t.service_name = 'support-chat'"
        " AND t.start_time >= ? AND t.start_time < ?"
    )
    share, n = sql(db, share_sql, [start, end])[0]
    assert n > 100 and 0.3 <= share <= 0.5, (share, n)
    # Never outside the incident.
    outside = one(
        db,
        "SELECT count(*) FROM ai_spans WHERE tool_name = 'lookup_charge_v1'"
        " AND (start_time < ? OR start_time >= ? + INTERVAL 1 MINUTE)",
        [start, end],
    )
    assert outside == 0
    # Every call fails with a 503 from payments-api after ~2 s, and is under prompt v7 / 2.4.0.
    calls = sql(
        db,
        "SELECT status, error_type, service_version, round(median(duration_ms)), count(*)"
        " FROM ai_spans WHERE tool_name = 'lookup_charge_v1' GROUP BY ALL",
    )
    assert len(calls) == 1
    status, error_type, version, median_ms, _ = calls[0]
    assert (status, error_type, version) == ("error", "503", "2.4.0")
    assert 1700 <= median_ms <= 2300
    assert (
        one(
            db,
            "SELECT count(*) FROM ai_spans WHERE service_name = 'payments-api'"
            " AND attributes['http.route'] = '/v1/charges/{id}' AND status = 'error'",
        )
        >= n * 0.3
    )
    # Abandonment ~3x and thumbs-down up: sessions of support-chat in the window vs the same span
    # of time before the deployment.
    rates = """
        WITH s AS (
          SELECT session_id, min(start_time) AS first FROM ai_traces
          WHERE service_name = 'support-chat' GROUP BY 1)
        SELECT avg(CASE WHEN EXISTS (SELECT 1 FROM otel_logs l WHERE l.EventName = 'session.abandoned'
                    AND l.LogAttributes['session.id'] = s.session_id) THEN 1.0 ELSE 0.0 END),
               avg(CASE WHEN EXISTS (SELECT 1 FROM otel_logs l WHERE l.EventName = 'user.feedback'
                    AND l.LogAttributes['feedback.rating'] = 'thumbs_down'
                    AND l.LogAttributes['session.id'] = s.session_id) THEN 1.0 ELSE 0.0 END)
        FROM s WHERE first >= ? AND first < ?"""
    before = sql(db, rates, [start - (end - start), start])[0]
    during = sql(db, rates, [start, end])[0]
    assert during[0] >= 2.2 * before[0], (before, during)
    assert during[1] >= 1.5 * before[1], (before, during)


def test_retry_loop_incident(demo: tuple[Path, dict[str, Any]]) -> None:
    db, summary = demo
    inc = incident(summary, "retry-loop-tokens")
    assert inc["end"] is None
    start = ts(inc["start"])
    per_version = {
        (root, version): (tokens, cost, n)
        for root, version, tokens, cost, n in sql(
            db,
            "SELECT root_name, service_version, avg(input_tokens + output_tokens), avg(cost_usd),"
            " count(*) FROM ai_traces WHERE service_name = 'order-assistant' GROUP BY 1, 2",
        )
    }
    before, after = per_version[("order_status", "1.8.2")], per_version[("order_status", "1.9.0")]
    assert 6 <= after[0] / before[0] <= 11, (before, after)
    assert 6 <= after[1] / before[1] <= 11
    # Only that workflow.
    other_before = per_version[("change_delivery", "1.8.2")]
    other_after = per_version[("change_delivery", "1.9.0")]
    assert 0.8 <= other_after[0] / other_before[0] <= 1.25
    # The loop is on one error type: OutputParserException, retried up to 12 times after 1.9.0.
    loops = sql(
        db,
        "SELECT t.service_version, max(n), count(*) FROM (SELECT trace_id, count(*) AS n FROM"
        " ai_spans WHERE error_type = 'OutputParserException' GROUP BY 1) e"
        " JOIN ai_traces t USING (trace_id) GROUP BY 1 ORDER BY 1",
    )
    assert [(v, m) for v, m, _ in loops] == [("1.8.2", 1), ("1.9.0", 12)]
    assert (
        one(
            db,
            "SELECT count(DISTINCT error_type) FROM ai_spans WHERE service_name = 'order-assistant'",
        )
        == 2
    )
    # No better resolution: share of order-assistant sessions the user marked resolved.
    resolved = """
        WITH s AS (SELECT session_id, min(start_time) AS first FROM ai_traces
                   WHERE service_name = 'order-assistant' AND root_name = 'order_status' GROUP BY 1)
        SELECT avg(CASE WHEN EXISTS (SELECT 1 FROM otel_logs l WHERE l.EventName = 'chat.resolved'
                   AND l.LogAttributes['session.id'] = s.session_id) THEN 1.0 ELSE 0.0 END)
        FROM s WHERE (first >= ?) = ?"""
    assert one(db, resolved, [start, True]) <= one(db, resolved, [start, False]) + 0.05


def test_vector_index_rebuild_incident(demo: tuple[Path, dict[str, Any]]) -> None:
    db, summary = demo
    inc = incident(summary, "vector-index-rebuild")
    start, end = ts(inc["start"]), ts(inc["end"])
    hour = end - start
    metric = (
        "SELECT avg(Value) FROM otel_metrics_gauge WHERE MetricName = 'vectordb.query.duration'"
        " AND TimeUnix > ? AND TimeUnix <= ?"
    )
    assert one(db, metric, [start, end]) >= 5 * one(db, metric, [start - hour, start])
    assert one(db, metric, [end + hour, end + 2 * hour]) < 2 * one(
        db, metric, [start - hour, start]
    )
    retrieval = (
        "SELECT avg(duration_ms) FROM ai_spans WHERE step_kind = 'retrieval'"
        " AND start_time >= ? AND start_time < ?"
    )
    assert one(db, retrieval, [start, end]) >= 4 * one(db, retrieval, [start - hour, start])
    answer = (
        "SELECT median(duration_ms) FROM ai_traces WHERE service_name = 'support-chat'"
        " AND start_time >= ? AND start_time < ?"
    )
    assert one(db, answer, [start, end]) > one(db, answer, [start - hour, start])
    assert (
        one(
            db,
            "SELECT count(*) FROM otel_logs WHERE ServiceName = 'kb-indexer' AND Body LIKE '%rebuild started%'",
        )
        == 1
    )


def test_reasoning_leak_incident(demo: tuple[Path, dict[str, Any]]) -> None:
    db, summary = demo
    inc = incident(summary, "reasoning-leak")
    start = ts(inc["start"])
    leaks = sql(
        db,
        "SELECT model, avg(CASE WHEN attributes['gen_ai.output.messages'] LIKE '%<thinking>%'"
        " THEN 1.0 ELSE 0.0 END), count(*) FROM ai_spans WHERE step_kind = 'llm'"
        " AND finish_reason = 'stop' AND service_name = 'support-chat' GROUP BY 1",
    )
    by_model = {m: (share, n) for m, share, n in leaks}
    share, n = by_model.pop("claude-sonnet-4-5-20250929")
    assert n > 50 and 0.25 <= share <= 0.45
    assert all(s == 0 for s, _ in by_model.values())
    assert (
        one(
            db,
            "SELECT min(start_time) FROM ai_spans WHERE attributes['gen_ai.output.messages'] LIKE '%<thinking>%'",
        )
        >= start
    )
    # The user sees it: the response event's length includes the leaked block.
    assert (
        one(
            db,
            "SELECT count(*) FROM otel_logs WHERE EventName = 'chat.response_shown'"
            " AND TraceId IN (SELECT trace_id FROM ai_spans"
            " WHERE attributes['gen_ai.output.messages'] LIKE '%<thinking>%')",
        )
        > 0
    )


def test_unsupported_answers_incident(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    # Traces whose best retrieved page scored below 0.45, by model: handoff or not, and the
    # groundedness evaluation of the answer.
    rows = sql(
        db,
        """
        WITH low AS (
          SELECT trace_id FROM ai_spans WHERE step_kind = 'retrieval'
            AND (SELECT max(x.score) FROM (SELECT unnest(from_json(attributes['gen_ai.retrieval.documents'],
                 '[{"score": "DOUBLE"}]')) AS x)) < 0.45),
        per AS (
          SELECT t.trace_id, any_value(s.model) FILTER (WHERE s.step_kind = 'llm') AS model,
                 bool_or(s.step_kind = 'handoff') AS handoff
          FROM ai_spans s JOIN low t USING (trace_id) GROUP BY 1)
        SELECT model, avg(handoff::INT), count(*),
               (SELECT avg(l.LogAttributes['gen_ai.evaluation.score.value']::DOUBLE)
                FROM otel_logs l WHERE l.EventName = 'gen_ai.evaluation.result'
                  AND l.TraceId IN (SELECT trace_id FROM per p2 WHERE p2.model = per.model))
        FROM per GROUP BY model ORDER BY model
        """,
    )
    by_model = {m: (handoff, n, score) for m, handoff, n, score in rows}
    gpt = by_model.pop("gpt-4.1-2025-04-14")
    assert gpt[1] > 50 and gpt[0] < 0.15 and gpt[2] < 0.35, gpt
    for model, (handoff, n, score) in by_model.items():
        assert handoff > 0.8 and score > 0.8, (model, handoff, n, score)


# --- the clean baseline ----------------------------------------------------------------------------


def test_clean_world_is_the_same_world_without_the_incidents(
    demo: tuple[Path, dict[str, Any]], clean: Path
) -> None:
    db, _ = demo
    # Same sessions, users and intents: only the incidents' effects differ.
    sessions = "SELECT count(*), count(DISTINCT LogAttributes['session.id']) FROM otel_logs WHERE EventName = 'chat.opened'"
    assert sql(clean, sessions) == sql(db, sessions)
    manifest = json.loads(one(clean, "SELECT value FROM aiobs_meta WHERE key = 'demo.manifest'"))
    assert manifest["incidents_enabled"] is False and manifest["incidents"] == []
    # The same changes ship (a harmless deployment is what false-alarm tests need) ...
    assert one(clean, "SELECT count(*) FROM otel_logs WHERE EventName = 'deployment'") == one(
        db, "SELECT count(*) FROM otel_logs WHERE EventName = 'deployment'"
    )
    # ... but nothing breaks.
    assert one(clean, "SELECT count(*) FROM ai_spans WHERE tool_name = 'lookup_charge_v1'") == 0
    assert (
        one(
            clean,
            "SELECT count(*) FROM ai_spans WHERE attributes['gen_ai.output.messages'] LIKE '%<thinking>%'",
        )
        == 0
    )
    assert (
        one(
            clean,
            "SELECT max(n) FROM (SELECT count(*) AS n FROM ai_spans WHERE error_type = 'OutputParserException' GROUP BY trace_id)",
        )
        == 1
    )
    vectordb = "SELECT max(Value) / median(Value) FROM otel_metrics_gauge WHERE MetricName = 'vectordb.query.duration'"
    assert one(clean, vectordb) < 4 < one(db, vectordb)
    assert (
        one(
            clean,
            "SELECT count(*) FROM otel_logs WHERE EventName = 'gen_ai.evaluation.result'"
            " AND LogAttributes['gen_ai.evaluation.score.label'] = 'fail'",
        )
        == 0
    )


# --- determinism, files, fixtures ----------------------------------------------------------------------


def test_generation_is_deterministic_and_days_are_independent() -> None:
    from aiobs.demo.generate import World
    from aiobs.demo.world import WorldConfig, plan_world

    config = WorldConfig(days=3, scale=0.05, end=datetime(2026, 11, 15, tzinfo=UTC))
    first = [lines for _, lines in World(plan_world(config)).days()]
    # A fresh world generating only day 2 gives the same bytes as the sequential run.
    assert World(plan_world(config)).day(2) == first[2]
    assert [lines for _, lines in World(plan_world(config)).days()] == first
    other_seed = WorldConfig(seed=8, days=3, scale=0.05, end=config.end)
    assert World(plan_world(other_seed)).day(0) != first[0]


def test_fixture_sample_is_reproduced_byte_for_byte(tmp_path: Path) -> None:
    from aiobs.demo.build import write_files
    from aiobs.demo.world import WorldConfig

    committed = REPO / "fixtures" / "demo"
    config = json.loads((committed / "manifest.json").read_text())
    world = WorldConfig(
        seed=config["seed"],
        days=config["days"],
        scale=config["scale"],
        end=datetime.fromisoformat(config["end"].replace("Z", "+00:00")),
    )
    files = write_files(world, tmp_path)
    assert (tmp_path / "manifest.json").read_bytes() == (committed / "manifest.json").read_bytes()
    gz = sorted(committed.glob("*.otlp.jsonl.gz"))
    assert [p.name for p in gz] == [f.name + ".gz" for f in files]
    for fresh, old in zip(files, gz, strict=True):
        assert fresh.read_bytes() == gzip.decompress(old.read_bytes()), fresh.name


def test_fixture_sample_ingests_cleanly(cli: Cli) -> None:
    result = cli("ingest", str(REPO / "fixtures" / "demo"), "-f", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rejected"] == 0 and summary["spans"] > 1000
    traces = cli.query("select count(*) as n from ai_traces")[0]["n"]
    assert 200 <= traces <= 800  # "a few hundred traces"


def test_out_writes_the_telemetry_and_it_ingests_to_the_same_store(
    cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "raw"
    built = cli(
        "demo", "--days", "1", "--scale", "0.05", "--end", END, "--out", str(out), "-f", "json"
    )
    assert built.exit_code == 0, built.output
    summary = json.loads(built.stdout)
    files = sorted(out.glob("*.otlp.jsonl"))
    assert len(files) == 1 and [str(f) for f in files] == summary["files"]
    assert json.loads((out / "manifest.json").read_text()) == summary["manifest"]
    again = Cli(tmp_path / "other.duckdb")("ingest", str(out), "-f", "json")
    assert again.exit_code == 0, again.output
    ingested = json.loads(again.stdout)
    assert (ingested["spans"], ingested["log_records"], ingested["metric_points"]) == (
        summary["spans"],
        summary["log_records"],
        summary["metric_points"],
    )


# --- the command -----------------------------------------------------------------------------------


def test_every_tour_command_runs_as_printed(demo: tuple[Path, dict[str, Any]]) -> None:
    from typer.testing import CliRunner

    from aiobs.cli.main import app

    db, summary = demo
    tour = summary["tour"]
    assert len(tour) >= 6
    for step in tour:
        argv = shlex.split(step["command"])
        assert argv[:3] == ["aiobs", "--db", str(db)], step["command"]
        result = CliRunner().invoke(app, argv[1:])
        assert result.exit_code == 0, (step["command"], result.output)
        assert len(result.stdout.strip().splitlines()) >= 3, step["command"]
    failed = next(s for s in tour if s["title"].startswith("A failed journey"))
    prefix = shlex.split(failed["command"])[-1]
    assert shlex.split(failed["command"])[-2] == "replay"
    steps = sql(
        db,
        "SELECT step_kind, status, tool_name FROM ai_spans WHERE starts_with(trace_id, ?)",
        [prefix],
    )
    assert ("tool", "error", "lookup_charge_v1") in steps and any(s[0] == "handoff" for s in steps)


def test_tour_omits_db_for_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from aiobs.cli.main import app

    monkeypatch.setenv("AIOBS_DB", str(tmp_path / "env.duckdb"))
    result = CliRunner().invoke(app, ["demo", "--days", "1", "--scale", "0.05", "--end", END])
    assert result.exit_code == 0, result.output
    assert "aiobs stats" in result.stdout and "--db" not in result.stdout
    assert "incidents planted" in result.stdout


def test_demo_never_overwrites_a_users_store(cli: Cli, write_jsonl: Any) -> None:
    from conftest import otlp_span, traces_doc

    assert cli("ingest", str(write_jsonl("mine.jsonl", traces_doc(otlp_span())))).exit_code == 0
    refused = cli("demo", "--days", "1", "--scale", "0.05", "--end", END)
    assert refused.exit_code == 2
    assert "already holds telemetry" in refused.stderr and "--force" in refused.stderr
    assert cli.query("select count(*) as n from otel_traces") == [{"n": 1}]
    forced = cli("demo", "--days", "1", "--scale", "0.05", "--end", END, "--force", "-f", "json")
    assert forced.exit_code == 0, forced.output
    # A demo store is rebuilt in place without --force.
    rebuilt = cli(
        "demo", "--days", "1", "--scale", "0.05", "--end", "2026-11-16T00:00Z", "-f", "json"
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    assert cli.query("select min(start_time) >= '2026-11-15' as ok from ai_traces") == [
        {"ok": True}
    ]
    assert not list(cli.db.parent.glob(".*building*"))


def test_demo_options_are_validated(cli: Cli) -> None:
    for args in (["--days", "0"], ["--scale", "0"], ["--end", "yesterday"], ["-f", "csv"]):
        result = cli("demo", *args)
        assert result.exit_code == 2, (args, result.output)
    assert not cli.db.exists()


def test_a_store_held_by_a_writer_is_not_replaced(cli: Cli) -> None:
    import subprocess
    import sys

    built = cli("demo", "--days", "1", "--scale", "0.05", "--end", END)
    assert built.exit_code == 0, built.output
    # Another process holds the write lock until we close its stdin.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(cli.db)!r}); print('held', flush=True);"
            " sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = cli("demo", "--days", "1", "--scale", "0.05", "--end", END)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    assert result.exit_code == 3, result.output
    assert str(cli.db) in result.stderr
    assert cli("stats").exit_code == 0  # the old demo store is intact


# --- one journey in every convention ------------------------------------------------------------------


def test_convention_files_are_reproduced_byte_for_byte() -> None:
    from aiobs.demo.conventions import render_all

    committed = REPO / "fixtures" / "conventions"
    rendered = render_all()
    assert sorted(p.name for p in committed.iterdir()) == sorted(rendered)
    for name, data in rendered.items():
        assert (committed / name).read_bytes() == data, name


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_every_convention_reads_as_the_same_journey(cli: Cli, name: str) -> None:
    from aiobs.demo.conventions import J

    result = cli("ingest", str(REPO / "fixtures" / "conventions" / name), "--strict")
    assert result.exit_code == 0, result.output
    llm = cli.query(
        "select model, input_tokens, output_tokens, finish_reason, prompt_version from ai_spans"
        " where step_kind = 'llm' order by start_time"
    )
    assert [(r["model"], r["input_tokens"], r["output_tokens"]) for r in llm] == [
        (call.response_model, call.input_tokens, call.output_tokens) for call in (J.first, J.final)
    ]
    if name != "langfuse.trace.json":  # a Langfuse export carries no finish reason
        assert [r["finish_reason"] for r in llm] == ["tool_calls", "stop"]
    if name != "vercel-ai.otlp.json":  # the AI SDK has no notion of a managed prompt
        assert {r["prompt_version"] for r in llm} == {J.prompt_version}
    tools = cli.query("select tool_name from ai_spans where step_kind = 'tool' order by start_time")
    assert [r["tool_name"] for r in tools] == [t.name for t in J.tools]
    (trace,) = cli.query(
        "select trace_id, session_id, user_id, llm_calls, tool_calls, input_tokens, output_tokens,"
        " models, span_count from ai_traces"
    )
    assert trace == {
        "trace_id": J.trace_id,
        "session_id": J.session,
        "user_id": J.user,
        "llm_calls": 2,
        "tool_calls": 2,
        "input_tokens": J.first.input_tokens + J.final.input_tokens,
        "output_tokens": J.first.output_tokens + J.final.output_tokens,
        "models": [J.first.response_model],
        "span_count": 6,
    }
    kinds = [
        r["step_kind"] for r in cli.query("select step_kind from ai_spans order by start_time")
    ]
    root, retrieval = kinds[0], kinds[1]
    assert root in ("agent", "chain")
    # Retrieval is a step kind of its own where the convention has one; OpenLLMetry instruments
    # the vector DB call instead, and the AI SDK app's own span has no convention at all.
    assert retrieval == {"openllmetry.otlp.json": "db", "vercel-ai.otlp.json": "other"}.get(
        name, "retrieval"
    )


def test_every_generated_conversation_keeps_to_one_intent(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    """The question, the tools, the answer and the handoff queue belong to one intent: only a
    request about a charge reaches the payments tool (the deprecated one under v7), and a
    handoff goes to its intent's queue, or to billing when the payments API failed."""
    from aiobs.demo import catalogue as cat

    db, _ = demo
    cli = Cli(db)
    rows = cli.query(
        "SELECT a.attributes['acme.intent'] AS intent,"
        " bool_or(s.tool_name IN ('lookup_charge', 'lookup_charge_v1')) AS payments,"
        " bool_or(s.tool_name IN ('lookup_charge', 'lookup_charge_v1', 'payments_refund')"
        "   AND s.status = 'error') AS payments_failed,"
        " list(DISTINCT s.attributes['handoff.queue'])"
        "   FILTER (WHERE s.step_kind = 'handoff') AS queues,"
        " list(DISTINCT s.tool_name) FILTER (WHERE s.tool_name IS NOT NULL) AS tools"
        " FROM ai_spans a JOIN ai_spans s USING (trace_id)"
        " WHERE a.attributes['acme.intent'] IS NOT NULL AND a.service_name = 'support-chat'"
        " GROUP BY a.trace_id, 1"
    )
    by_name = {i.name: i for i in cat.INTENTS}
    assert len(rows) > 500 and {r["intent"] for r in rows} <= set(by_name)
    for row in rows:
        intent = by_name[row["intent"]]
        if row["payments"]:
            assert intent.name in cat.PAYMENT_INTENTS, row
        allowed = set(intent.tools) | (
            {"lookup_charge_v1"} if intent.name in cat.PAYMENT_INTENTS else set()
        )
        assert set(row["tools"] or ()) <= allowed, row
        want = "billing-tier1" if row["payments_failed"] else cat.HANDOFF_QUEUES[intent.name]
        assert set(row["queues"] or ()) <= {want}, row
    assert any(r["payments_failed"] for r in rows)  # the incident is still there
