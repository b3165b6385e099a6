"""``aiobs replay``: the demo's incident journeys, every convention's content, hostile content,
trace-id prefixes, sessions — through the real CLI on real stores."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aiobs.demo.conventions import RENDERINGS
from conftest import REPO, Cli, WriteFn, otlp_span, traces_doc


def _one(db: Path, sql: str, params: list[Any] | None = None) -> Any:
    from aiobs.backend.duckdb import open_store

    with open_store(db) as store:
        row = store.con.execute(sql, params or []).fetchone()
    assert row is not None, sql
    return row[0]


def _incident_trace(db: Path, summary: dict[str, Any]) -> str:
    """A deprecated-tool journey: the tool failed, the customer was handed off and gave a thumbs-down."""
    inc = next(i for i in summary["manifest"]["incidents"] if i["id"] == "deprecated-tool-503")
    return str(
        _one(
            db,
            """
            SELECT t.trace_id FROM ai_traces t
            WHERE t.start_time >= ?::TIMESTAMP AND t.start_time < ?::TIMESTAMP
              AND EXISTS (SELECT 1 FROM ai_spans s WHERE s.trace_id = t.trace_id AND s.tool_name = 'lookup_charge_v1')
              AND EXISTS (SELECT 1 FROM ai_spans s WHERE s.trace_id = t.trace_id AND s.step_kind = 'handoff')
              AND EXISTS (SELECT 1 FROM otel_logs l WHERE l.TraceId = t.trace_id AND l.EventName = 'user.feedback')
            ORDER BY t.start_time LIMIT 1
            """,
            [inc["start"].rstrip("Z"), inc["end"].rstrip("Z")],
        )
    )


def test_incident_journey_replays_with_every_element(demo: tuple[Path, dict[str, Any]]) -> None:
    db, summary = demo
    cli = Cli(db)
    trace_id = _incident_trace(db, summary)
    data = cli.json("replay", trace_id[:10])
    trace = data["trace"]
    assert trace["trace_id"] == trace_id
    assert trace["service_name"] == "support-chat" and trace["service_version"] == "2.4.0"
    assert trace["environment"] == "prod" and trace["status"] == "error"
    assert trace["user_id"].startswith("u") and trace["session_id"].startswith("sess-")
    assert trace["prompt_versions"] == ["v7"] and trace["models"]
    assert trace["input_tokens"] > 0 and trace["cost_usd"] > 0
    assert trace["first_error"]["error_type"] == "503"
    assert trace["critical_path"][0] == trace["root_span_id"]
    assert trace["start_time"].endswith("Z")

    steps = data["steps"]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for s in steps:
        by_kind.setdefault(s["kind"], []).append(s)
    assert steps[0]["depth"] == 0 and all(s["depth"] >= 1 for s in steps[1:])
    assert [s["offset_ms"] for s in steps if s["depth"] == 1] == sorted(
        s["offset_ms"] for s in steps if s["depth"] == 1
    )
    llm = by_kind["llm"][0]
    assert llm["model"] and llm["input_tokens"] > 0 and llm["ttft_ms"] > 0
    assert llm["prompt_version"] == "v7" and llm["finish_reason"] == "tool_calls"
    roles = [m["role"] for m in llm["messages"]]
    assert roles[0] == "system" and "user" in roles
    calls = [c for m in llm["output"] for c in m.get("tool_calls", [])]
    assert calls and calls[0]["name"] == "lookup_charge_v1" and "order_id" in calls[0]["arguments"]
    retrieval = by_kind["retrieval"][0]["retrieval"]
    assert retrieval["query"] and len(retrieval["documents"]) == 4
    assert all(
        d["id"].startswith("kb-") and d["score"] is not None and d["content"]
        for d in retrieval["documents"]
    )
    tool = by_kind["tool"][0]
    assert tool["status"] == "error" and tool["tool"]["name"] == "lookup_charge_v1"
    assert (
        tool["tool"]["arguments"]["order_id"].startswith("A-") and "503" in tool["tool"]["result"]
    )
    handoff = by_kind["handoff"][0]["handoff"]
    assert (
        handoff["target"] == "human"
        and handoff["queue"].startswith("billing")
        and "503" in handoff["reason"]
    )
    assert any(s["http"]["status_code"] == "503" for s in by_kind["http"])
    final = by_kind["llm"][-1]
    assert any(
        m["role"] == "tool" and "503" in m["content"] for m in final["messages"]
    )  # how the model read the error
    assert "colleague" in final["output"][0]["content"]

    ctx = data["context"]
    assert any(
        log["severity"] == "ERROR" and log["service_name"] == "payments-api" for log in ctx["logs"]
    )
    names = [e["name"] for e in ctx["session_events"]]
    assert "chat.message_sent" in names and "user.feedback" in names
    sent = [
        e
        for e in ctx["session_events"]
        if e["name"] == "chat.message_sent" and e["trace_id"] == trace_id
    ]
    assert sent and sent[0]["when"] == "before"
    assert any(m["name"] == "system.cpu.utilization" for m in ctx["metrics"])
    assert any(ch["kind"] == "deployment" and "2.4.0" in ch["description"] for ch in ctx["changes"])

    text = cli("replay", trace_id)
    assert text.exit_code == 0, text.output
    for needle in (
        trace_id,
        "support-chat@2.4.0",
        "failed at",
        "critical path",
        "lookup_charge_v1",
        "503",
        "queue billing",
        "kb-",
        "system:",
        "user session",
        "changes in the preceding",
    ):
        assert needle in text.stdout, needle
    md = cli("replay", trace_id, "-f", "markdown")
    assert md.exit_code == 0
    for needle in (
        "# Trace",
        "## Where it failed",
        "## Steps",
        "## Step details",
        "## Context",
        "lookup_charge_v1",
    ):
        assert needle in md.stdout, needle
    lines = [json.loads(x) for x in cli("replay", trace_id, "-f", "jsonl").stdout.splitlines()]
    step_lines = [x for x in lines if x["section"] == "steps"]
    assert len(step_lines) == len(steps) and all(x["trace_id"] == trace_id for x in step_lines)
    assert [x["section"] for x in lines[:1]] == ["trace"] and lines[0]["trace_id"] == trace_id


def test_other_incidents_are_visible_in_replay(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    cli = Cli(db)
    leaked = _one(
        db,
        "SELECT trace_id FROM ai_spans WHERE attributes['gen_ai.output.messages'] LIKE '%<thinking>%' ORDER BY start_time LIMIT 1",
    )
    assert "<thinking>" in cli("replay", leaked).stdout
    looped = _one(
        db,
        "SELECT trace_id FROM ai_spans WHERE error_type = 'OutputParserException' GROUP BY 1 HAVING count(*) = 12 LIMIT 1",
    )
    data = cli.json("replay", looped)
    assert sum(s["kind"] == "llm" for s in data["steps"]) == 13
    assert all(
        s["events"][0]["attributes"]["exception.type"] == "OutputParserException"
        for s in data["steps"]
        if s["error_type"]
    )
    assert data["steps"][1]["messages"][0]["role"] == "system"  # OpenInference messages read


def test_evaluation_results_are_in_the_context_not_the_logs(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    db, _ = demo
    trace = _one(
        db,
        "SELECT TraceId FROM otel_logs WHERE EventName = 'gen_ai.evaluation.result'"
        " AND TraceId <> '' ORDER BY Timestamp LIMIT 1",
    )
    expected = _one(
        db,
        "SELECT list(TRY_CAST(LogAttributes['gen_ai.evaluation.score.value'] AS DOUBLE)"
        " ORDER BY Timestamp) FROM otel_logs"
        " WHERE TraceId = ? AND EventName = 'gen_ai.evaluation.result'",
        [trace],
    )
    logs = _one(
        db,
        "SELECT count(*) FROM otel_logs WHERE TraceId = ? AND EventName <> 'gen_ai.evaluation.result'",
        [trace],
    )
    context = Cli(db).json("replay", trace)["context"]
    assert [e["score"] for e in context["evaluations"]] == expected
    assert all(e["name"] for e in context["evaluations"])
    assert len(context["logs"]) == logs
    assert all(log["event_name"] != "gen_ai.evaluation.result" for log in context["logs"])


def test_the_replayed_cost_is_the_trace_tables_cost(demo: tuple[Path, dict[str, Any]]) -> None:
    """Replay sums its spans' model-call costs instead of pricing through ai_traces: the same
    figure (a trace without model calls has none: see test_trace_id_prefixes)."""
    import math

    db, _ = demo
    rows = _one(
        db,
        "SELECT list((trace_id, cost_usd) ORDER BY trace_id) FROM"
        " (SELECT trace_id, cost_usd FROM ai_traces WHERE cost_usd > 0 ORDER BY trace_id LIMIT 5)",
    )
    assert len(rows) == 5
    cli = Cli(db)
    for row in rows:
        trace_id, cost = row.values() if isinstance(row, dict) else row
        replayed = cli.json("replay", trace_id, "--no-context")["trace"]["cost_usd"]
        assert math.isclose(replayed, cost, rel_tol=1e-9), (trace_id, replayed, cost)


def test_replay_reads_on_a_narrow_terminal(
    demo: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns: nothing runs past the edge, each step stays one line, and its details
    wrap under it (indented), never back at column 0 where they would read as a new block."""
    db, summary = demo
    trace = _incident_trace(db, summary)
    monkeypatch.setenv("COLUMNS", "80")
    lines = Cli(db)("replay", trace).stdout.splitlines()
    steps_start = next(i for i, line in enumerate(lines) if line.startswith("   +0.000 s"))
    body = [line for line in lines[steps_start:] if line.strip()]
    assert max(len(line) for line in lines) <= 80
    steps = [line for line in body if re.match(r"^ +\+\d+\.\d{3} s ", line) and "█" in line]
    assert len(steps) >= 5
    # Between the first and the last step, every line is a step or one of its indented details.
    first, last = body.index(steps[0]), body.index(steps[-1])
    assert all(line in steps or line.startswith(" " * 12) for line in body[first:last])
    # Details sit under the bar (column 12 and deeper), not under the step names at column 47.
    details = [line for line in body if line not in steps and line.startswith(" " * 12)]
    assert details and min(len(d) - len(d.lstrip(" ")) for d in details) < 47


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_each_conventions_content_replays(cli: Cli, name: str) -> None:
    from aiobs.demo.conventions import J

    assert cli("ingest", str(REPO / "fixtures" / "conventions" / name)).exit_code == 0
    data = cli.json("replay", J.trace_id[:8], "--no-context")
    llms = [s for s in data["steps"] if s["kind"] == "llm"]
    assert len(llms) == 2
    first, final = llms
    assert any(J.question in m["content"] for m in first["messages"] if m["role"] == "user"), first[
        "messages"
    ]
    asked = [(c["name"], c["arguments"]) for m in first["output"] for c in m.get("tool_calls", [])]
    if name != "langfuse.trace.json" or asked:
        assert asked == [(t.name, t.arguments) for t in J.tools]
    assert J.answer in " ".join(m["content"] for m in final["output"])
    tools = [s["tool"] for s in data["steps"] if s["kind"] == "tool"]
    assert [(t["name"], t["arguments"], t["result"]) for t in tools] == [
        (t.name, t.arguments, t.result) for t in J.tools
    ]
    docs = [s for s in data["steps"] if s["kind"] == "retrieval"]
    if name in ("otel-genai.otlp.json", "openinference.otlp.json", "langfuse.trace.json"):
        assert [(d["id"], d["score"]) for d in docs[0]["retrieval"]["documents"]] == list(J.docs)
    assert "Trace" in cli("replay", J.trace_id, "-f", "markdown").stdout


HOSTILE = (
    "\x1b]0;pwned\x07\x1b[2J\x1b[31mred[bold magenta]markup[/]\x9b31m\u202eevil\u202c\x00\x07 end"
)


def test_hostile_content_is_inert_in_every_format(cli: Cli, write_jsonl: WriteFn) -> None:
    huge = "A" * 300_000
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": HOSTILE,
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": HOSTILE}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": huge}]}]
        ),
        "user.id": HOSTILE,
    }
    span = otlp_span(name=f"chat {HOSTILE}", attrs=attrs, status={"code": 2, "message": HOSTILE})
    assert cli("ingest", str(write_jsonl("hostile.jsonl", traces_doc(span)))).exit_code == 0
    for color in ("always", "never"):
        for fmt in ("table", "markdown", "json", "jsonl"):
            result = cli.runner.invoke(
                __import__("aiobs.cli.main", fromlist=["app"]).app,
                [
                    "--db",
                    str(cli.db),
                    "--color",
                    color,
                    "replay",
                    "0af7651916cd43dd8448eb211c80319c",
                    "-f",
                    fmt,
                ],
            )
            assert result.exit_code == 0, result.output
            out = result.stdout
            # Rich's own styling may use ESC with --color always; the content's sequences may not.
            for raw in ("\x1b]0;pwned", "\x1b[2J", "\x1b[31mred", "\x9b", "\u202e", "\x00", "\x07"):
                assert raw not in out, (color, fmt, repr(raw))
            if fmt in ("table", "markdown"):
                assert "[bold magenta]markup[/]" in out  # markup shown, not obeyed
                assert "\\x1b]0;pwned" in out
                assert len(out) < 100_000  # the huge answer is truncated
            else:
                assert "\\u001b]0;pwned" in out or "\\u001b" in out
    full = cli("replay", "0af7651916cd43dd8448eb211c80319c", "--full")
    assert full.exit_code == 0 and full.stdout.count("A") >= 300_000  # --full: all of it


def test_binary_ish_and_malformed_content_does_not_crash(cli: Cli, write_jsonl: WriteFn) -> None:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "blob", "mime_type": "image/png", "content": "iVBORw0K"}]}, 42, "x"]',
        "gen_ai.output.messages": "{not json",
        "gen_ai.retrieval.documents": "[1, {}, null]",
    }
    span = otlp_span(attrs=attrs)
    tool = otlp_span(
        span_id="b7ad6b7169203332",
        parent="b7ad6b7169203331",
        name="execute_tool x",
        attrs={
            "gen_ai.tool.name": "x",
            "gen_ai.tool.call.arguments": "\x00\x01{",
            "gen_ai.operation.name": "execute_tool",
        },
    )
    assert cli("ingest", str(write_jsonl("odd.jsonl", traces_doc(span, tool)))).exit_code == 0
    for fmt in ("table", "markdown", "json"):
        result = cli("replay", "0af76519", "-f", fmt)
        assert result.exit_code == 0, result.output
    data = cli.json("replay", "0af76519")
    llm = data["steps"][0]
    assert llm["messages"][0]["content"] == "[blob image/png]"
    assert llm["output"][0]["content"] == "{not json"


def test_trace_id_prefixes(cli: Cli, write_jsonl: WriteFn) -> None:
    a = otlp_span(trace_id="abc12300000000000000000000000001", span_id="0000000000000001")
    b = otlp_span(trace_id="abc12400000000000000000000000002", span_id="0000000000000002")
    assert cli("ingest", str(write_jsonl("ab.jsonl", traces_doc(a, b)))).exit_code == 0
    assert cli.json("replay", "abc123")["trace"]["trace_id"] == "abc12300000000000000000000000001"
    assert cli.json("replay", "ABC124")["trace"]["trace_id"] == "abc12400000000000000000000000002"
    no_model_calls = cli.json("replay", "abc123")["trace"]
    assert no_model_calls["cost_usd"] is None and no_model_calls["llm_calls"] == 0
    assert cli.json("traces")[0]["cost_usd"] is None  # as in ai_traces
    ambiguous = cli("replay", "abc12")
    assert ambiguous.exit_code == 2
    assert (
        "ambiguous" in ambiguous.stderr and "abc12300000000000000000000000001" in ambiguous.stderr
    )
    assert "abc12400000000000000000000000002" in ambiguous.stderr
    unknown = cli("replay", "ffff")
    assert unknown.exit_code == 4 and "no trace id starts with ffff" in unknown.stderr
    for args in (("replay", "f" * 32), ("describe", "F" * 32), ("diff-traces", "f" * 32, "f" * 32)):
        whole = cli(*args)
        assert whole.exit_code == 4 and f"no trace {'f' * 32} in the store" in whole.stderr, args
    assert cli("replay", "not-hex").exit_code == 2
    assert cli("replay").exit_code == 2  # neither a trace nor --session
    assert cli("replay", "abc123", "--session", "s").exit_code == 2
    assert cli("replay", "--session", "nope").exit_code == 4


def test_session_replay(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    cli = Cli(db)
    session = _one(
        db, "SELECT session_id FROM ai_traces GROUP BY 1 HAVING count(*) >= 3 ORDER BY 1 LIMIT 1"
    )
    data = cli.json("replay", "--session", session)
    assert (
        data["session"]["session_id"] == session
        and data["session"]["traces"] == len(data["traces"]) >= 3
    )
    starts = [t["trace"]["start_time"] for t in data["traces"]]
    assert starts == sorted(starts)
    assert {t["trace"]["session_id"] for t in data["traces"]} == {session}
    text = cli("replay", "--session", session)
    assert text.exit_code == 0
    assert f"trace {len(starts)} of {len(starts)}" in text.stdout and session in text.stdout
    md = cli("replay", "--session", session, "-f", "markdown").stdout
    assert md.startswith(f"# Session `{session}`") and md.count("# Trace `") == len(starts)


def test_step_mode_without_a_terminal_prints_everything(demo: tuple[Path, dict[str, Any]]) -> None:
    db, summary = demo
    trace_id = _incident_trace(db, summary)
    stepped = Cli(db)("replay", trace_id, "--step")
    assert stepped.exit_code == 0
    plain = Cli(db)("replay", trace_id)
    assert re.sub(r"\s+", " ", stepped.stdout) == re.sub(r"\s+", " ", plain.stdout)


def test_diff_traces_aligns_a_good_and_a_bad_journey(demo: tuple[Path, dict[str, Any]]) -> None:
    db, summary = demo
    cli = Cli(db)
    bad = _incident_trace(db, summary)
    good = _one(
        db,
        "SELECT trace_id FROM ai_traces WHERE service_name = 'support-chat' AND status = 'ok'"
        " AND prompt_versions = ['v6'] AND tool_calls = 1 ORDER BY trace_id LIMIT 1",
    )
    r = cli.json("diff-traces", good[:12], bad[:12])
    assert r["a"]["trace_id"] == good and r["b"]["trace_id"] == bad
    ops = {(s["op"], s["kind"], s["name"]) for s in r["steps"]}
    assert any(
        op == "added" and kind == "tool" and "lookup_charge_v1" in name for op, kind, name in ops
    )
    assert ("added", "handoff", "handoff human-support") in ops
    assert any(op == "removed" and kind == "tool" for op, kind, _ in ops)
    llm = next(s for s in r["steps"] if s["kind"] == "llm" and s["op"] == "changed")
    fields = {c["field"] for c in llm["changes"]}
    assert "prompt_version" in fields and "output" in fields
    assert r["summary"]["added"] >= 3 and sum(r["summary"].values()) == len(r["steps"])
    same = cli.json("diff-traces", bad, bad)
    assert {s["op"] for s in same["steps"]} == {"same"}
    text = cli("diff-traces", good, bad)
    assert text.exit_code == 0 and "only in B" in text.stdout and "lookup_charge_v1" in text.stdout
    assert cli("diff-traces", good, "ffffffff").exit_code == 4


def test_a_service_version_first_seen_before_the_trace_is_a_change(
    cli: Cli, write_jsonl: WriteFn
) -> None:
    """A version of a service the trace touched whose first span in the store starts in the
    hours before it is a change in its context (roots or not); one seen earlier is not."""
    hour = 3_600 * 10**9
    t0 = 1_763_000_000 * 10**9

    def resource(service: str, version: str, *spans: dict[str, Any]) -> dict[str, Any]:
        attrs = {"service.name": service, "service.version": version}
        return {
            "resource": {
                "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]
            },
            "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
        }

    def trace(n: int, at: int, shop: str, payments: str | None = None) -> list[dict[str, Any]]:
        trace_id = f"{n:032x}"
        out = [resource("shop", shop, otlp_span(trace_id, f"{n:015x}1", start=at))]
        if payments:
            child = otlp_span(trace_id, f"{n:015x}2", f"{n:015x}1", start=at + 1000)
            out.append(resource("payments", payments, child))
        return out

    docs = [
        {"resourceSpans": trace(1, t0 - 10 * hour, "v1", "p6")},  # long before: old versions
        {"resourceSpans": trace(2, t0 - 2 * hour, "v1", "p6")},  # seen again in the window
        {"resourceSpans": trace(3, t0 - hour, "v2", "p7")},  # new in the window
        {"resourceSpans": trace(4, t0, "v2", "p7")},  # the trace replayed
    ]
    assert cli("ingest", str(write_jsonl("versions.jsonl", *docs))).exit_code == 0
    changes = cli.json("replay", f"{4:032x}")["context"]["changes"]
    seen = [(c["kind"], c["service_name"], c["version"], c["minutes_before"]) for c in changes]
    assert seen == [
        ("version first seen", "shop", "v2", 60.0),
        ("version first seen", "payments", "p7", 60.0),
    ]
