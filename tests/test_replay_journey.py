"""``aiobs replay`` shows the journey once: each model call's new messages only, an error once
a step, a session's context once, an agent run's own question and answer, and no figures that
were never recorded — on the demo's retry loop and sessions, conformance files and small OTLP
files, through the real CLI."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli, WriteFn, otlp_span, traces_doc
from test_replay import _one

STEP = re.compile(r"^ +[+-]\d+\.\d{3} s .*█")
RETRY = "Your previous answer was not valid JSON. Reply with JSON only."


def _retry_loop_trace(db: Path, summary: dict[str, Any]) -> str:
    """The retry-loop incident's journey with the most model calls (its first, on a tie)."""
    inc = next(i for i in summary["manifest"]["incidents"] if i["id"] == "retry-loop-tokens")
    return str(
        _one(
            db,
            "SELECT trace_id FROM ai_traces WHERE service_name = ? AND service_version = ?"
            " AND start_time >= ?::TIMESTAMP ORDER BY llm_calls DESC, start_time LIMIT 1",
            [
                inc["affected"]["service"],
                inc["affected"]["service_version"],
                inc["start"].rstrip("Z"),
            ],
        )
    )


def _blocks(text: str) -> list[list[str]]:
    """The replay's steps as [header line, its detail lines…] (up to the context)."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if STEP.match(line):
            blocks.append([line])
        elif blocks and line.startswith(" " * 12):
            blocks[-1].append(line)
        elif blocks and not line.strip():
            break
    return blocks


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def retry_loop(demo: tuple[Path, dict[str, Any]], wide: None) -> tuple[Cli, str, dict[str, Any]]:
    """(the demo's CLI, the retry-loop journey's trace id, its replay as JSON), at 200 columns."""
    db, summary = demo
    cli = Cli(db)
    trace_id = _retry_loop_trace(db, summary)
    return cli, trace_id, cli.json("replay", trace_id, "--no-context")


# --- 1. each model call shows what is new ------------------------------------------------------------


def test_the_retry_loop_shows_each_message_once(
    retry_loop: tuple[Cli, str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli, trace_id, data = retry_loop
    llms = [s for s in data["steps"] if s["kind"] == "llm"]
    assert len(llms) >= 8
    question = next(m["content"] for m in llms[0]["messages"] if m["role"] == "user")
    retries = sum(1 for s in llms if s["messages"][-1]["content"] == RETRY)
    assert retries == len(llms) - 2  # every call after the tool result re-asks

    # JSON keeps every call's whole input, and says where its new part starts: the first call
    # is new in full; each later one continues the call before it (its input and output).
    assert llms[0]["new_from"] == 0 and llms[0]["continues"] is None
    for before, call in itertools.pairwise(llms):
        assert call["continues"] == before["span_id"]
        assert call["messages"][0]["role"] == "system"
        assert call["new_from"] == len(before["messages"]) + (
            len(before["output"]) if before["output"][0].get("content") else 0
        )
    assert all(s["new_from"] == len(s["messages"]) - 1 for s in llms[2:])

    text = cli("replay", trace_id, "--no-context").stdout
    full = cli("replay", trace_id, "--no-context", "--full").stdout
    # The question once among the model calls (the workflow's own input shows it too), each
    # re-ask once, where it was asked; --full repeats the history at every call, as before.
    assert text.count(f"user: {question}") == 1
    assert text.count(f"user: {RETRY}") == retries
    assert full.count(f"user: {question}") == len(llms)
    assert full.count(f"user: {RETRY}") == sum(range(1, retries + 1))
    notes = re.findall(
        r"… (\d+) earlier messages as at (\+\d+\.\d{3} s) \(--full shows them\)", text
    )
    assert [int(n) for n, _ in notes] == [s["new_from"] for s in llms[1:]]
    offsets = [f"+{s['offset_ms'] / 1000:.3f} s" for s in llms]
    assert [at for _, at in notes] == offsets[:-1]
    assert "earlier message" not in full
    assert len(text.splitlines()) < len(full.splitlines()) / 2
    # On a narrow terminal too (where the history wrapped to ~650 lines).
    monkeypatch.setenv("COLUMNS", "80")
    narrow = cli("replay", trace_id, "--no-context").stdout.splitlines()
    assert max(len(line) for line in narrow) <= 80
    assert (
        len(narrow) < len(cli("replay", trace_id, "--no-context", "--full").stdout.splitlines()) / 2
    )
    notes_80 = [line for line in narrow if "earlier messages as at +" in line]
    assert len(notes_80) == len(llms) - 1 and all("(--full shows them)" in n for n in notes_80)

    md = cli("replay", trace_id, "--no-context", "-f", "markdown").stdout
    assert md.count(f"user: {RETRY}") == retries
    assert md.count("earlier messages as at +") == len(llms) - 1
    md_full = cli("replay", trace_id, "--no-context", "-f", "markdown", "--full").stdout
    assert md_full.count(f"user: {RETRY}") == sum(range(1, retries + 1))


def test_a_parser_error_is_shown_once_per_step(
    retry_loop: tuple[Cli, str, dict[str, Any]],
) -> None:
    cli, trace_id, data = retry_loop
    failed = [s for s in data["steps"] if s["status"] == "error" and s["kind"] == "chain"]
    assert len(failed) >= 8
    # The error is on the span and again as its exception event.
    assert all(
        any(e["name"] == "exception" for e in s["events"]) and s["error_message"] for s in failed
    )
    blocks = [b for b in _blocks(cli("replay", trace_id, "--no-context").stdout) if "ERROR" in b[0]]
    assert len(blocks) == len(failed)
    for block in blocks:
        said = [line for line in block[1:] if "OutputParserException" in line]
        assert len(said) == 1 and said[0].strip().startswith("✗"), block


def test_an_exception_that_says_something_else_still_shows(cli: Cli, write_jsonl: WriteFn) -> None:
    event = {
        "timeUnixNano": "1763000000000500000",
        "name": "exception",
        "attributes": [
            {"key": "exception.type", "value": {"stringValue": "TimeoutError"}},
            {"key": "exception.message", "value": {"stringValue": "upstream took 30 s"}},
        ],
    }
    same = {**event, "attributes": [
        {"key": "exception.type", "value": {"stringValue": "ValueError"}},
        {"key": "exception.message", "value": {"stringValue": "bad json"}},
    ]}  # fmt: skip
    span = otlp_span(
        name="parse",
        attrs={"error.type": "ValueError"},
        status={"code": 2, "message": "bad json"},
        events=[same, event, event],
    )
    assert cli("ingest", str(write_jsonl("t.jsonl", traces_doc(span)))).exit_code == 0
    text = cli("replay", "0af7651916cd", "--no-context").stdout
    (block,) = _blocks(text)
    assert sum("bad json" in line for line in block) == 1
    assert sum("TimeoutError: upstream took 30 s" in line for line in block) == 1


def _call(
    span_id: str, inputs: list[dict[str, Any]], output: list[dict[str, Any]]
) -> dict[str, Any]:
    return {"span_id": span_id, "kind": "llm", "messages": inputs, "output": output}


SYSTEM = {"role": "system", "content": "You are terse."}
ASK = {"role": "user", "content": "Where is my order?"}


def test_what_is_new_is_decided_by_the_longest_shared_history() -> None:
    from aiobs.analysis.replay import mark_new_messages

    call = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "name": "lookup", "arguments": '{"order": "A-1"}'}
    ]}  # fmt: skip
    # The next input has the same call with its arguments as an object, and spacing changed.
    replayed = {"role": "assistant", "content": "", "tool_calls": [
        {"name": "lookup", "arguments": {"order": "A-1"}}
    ]}  # fmt: skip
    result = {"role": "tool", "content": "shipped", "tool_call_id": "c1"}
    answer = {"role": "assistant", "content": "It  shipped.", "finish_reason": "stop"}
    other = {"role": "system", "content": "You grade answers."}
    steps = [
        _call("a", [SYSTEM, ASK], [call]),
        {"span_id": "t", "kind": "tool", "tool": {}},
        _call("b", [SYSTEM, ASK, replayed, result], [answer]),
        # Another agent's conversation: nothing in common.
        _call("g", [other, {"role": "user", "content": "Grade: It shipped."}], []),
        # The first agent again: continues its own conversation, not the grader's.
        _call(
            "c",
            [SYSTEM, ASK, call, result, {"role": "assistant", "content": "It shipped."}, ASK],
            [],
        ),
        # A rewritten history (the question dropped): only the system prompt is shared.
        _call("d", [SYSTEM, {"role": "user", "content": "Thanks"}], []),
        # The same input again: nothing new.
        _call("e", [SYSTEM, {"role": "user", "content": "Thanks"}], []),
    ]
    mark_new_messages(steps)
    got = {s["span_id"]: (s.get("new_from"), s.get("continues")) for s in steps}
    assert got == {
        "a": (0, None),
        "t": (None, None),
        "b": (3, "a"),
        "g": (0, None),
        "c": (5, "b"),
        "d": (1, "c"),
        "e": (2, "d"),
    }


# --- 2. a session's context once ------------------------------------------------------------------------


def _long_session(db: Path) -> str:
    return str(
        _one(
            db,
            "SELECT session_id FROM ai_traces WHERE service_name = 'support-chat'"
            " GROUP BY 1 HAVING count(*) >= 3 ORDER BY count(*) DESC, 1 LIMIT 1",
        )
    )


def test_a_session_shows_its_context_once(demo: tuple[Path, dict[str, Any]], wide: None) -> None:
    db, _ = demo
    cli = Cli(db)
    session = _long_session(db)
    data = cli.json("replay", "--session", session)
    traces = data["traces"]
    n = len(traces)
    assert n >= 3
    # JSON: each trace keeps its own context (a contract for scripts), and the session's is
    # there once, over the whole session.
    assert all(set(t["context"]) >= {"logs", "session_events", "metrics"} for t in traces)
    context = data["context"]
    events = context["session_events"]
    ids = {t["trace"]["trace_id"] for t in traces}
    assert {e["trace_id"] for e in events if e["trace_id"]} <= ids
    # It covers every trace's own window: each trace's events are among the session's.
    seen = {(e["time"], e["name"]) for e in events}
    assert all(
        {(e["time"], e["name"]) for e in t["context"]["session_events"]} <= seen for t in traces
    )
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    assert context["metrics"] and "changes" in context
    sent = [e for e in events if e["name"] == "chat.message_sent"]
    assert len(sent) >= n

    text = cli("replay", "--session", session).stdout
    assert text.count("user session (") == 1
    assert text.count("infrastructure during the session") == 1
    assert "infrastructure around the trace" not in text
    assert text.count("chat.message_sent") == len(sent)
    # The trace's own logs stay under each trace; the user's events say which trace they were.
    assert text.count("\nlogs\n") == sum(1 for t in traces if t["context"]["logs"])
    for i, t in enumerate(traces, 1):
        if any(e["trace_id"] == t["trace"]["trace_id"] for e in sent):
            assert re.search(rf"◆{i} +chat\.message_sent", text), i
    md = cli("replay", "--session", session, "-f", "markdown").stdout
    assert md.count("## Session context") == 1 and md.count("user session (") == 1
    assert md.count("chat.message_sent") == len(sent) and md.count("# Trace `") == n
    # One trace alone still shows the user's events around it.
    alone = cli("replay", traces[1]["trace"]["trace_id"]).stdout
    assert "user session (±30 min)" in alone and "infrastructure around the trace" in alone


def test_a_sessions_turns_show_only_their_new_messages(
    demo: tuple[Path, dict[str, Any]], wide: None
) -> None:
    db, _ = demo
    cli = Cli(db)
    session = _long_session(db)
    data = cli.json("replay", "--session", session, "--no-context")
    calls = [(i, s) for i, t in enumerate(data["traces"]) for s in t["steps"] if s["kind"] == "llm"]
    spans = {s["span_id"]: i for i, s in calls}
    later = [(i, s) for i, s in calls if i > 0]
    assert later and all(s["new_from"] > 0 for _, s in later)
    # Each turn's first call continues a call of an earlier turn (sharing at least the system
    # prompt and the first question with it).
    firsts = [next(s for j, s in calls if j == i) for i in sorted({i for i, _ in later})]
    assert firsts and all(spans[s["continues"]] < spans[s["span_id"]] for s in firsts)
    assert max(s["new_from"] for _, s in later) >= 3
    text = cli("replay", "--session", session, "--no-context").stdout
    first = next(m["content"] for m in calls[0][1]["messages"] if m["role"] == "system")[:60]
    assert text.count(f"system: {first}") == 1
    assert "earlier messages as at trace " in text
    # A trace alone starts its own journey: its first call shows the whole input.
    alone = cli("replay", data["traces"][-1]["trace"]["trace_id"], "--no-context").stdout
    assert alone.count(f"system: {first}") == 1 and "as at trace" not in alone


# --- 3. an agent run's own question and answer ------------------------------------------------------------


def _run(name: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """A root run span (3 s) whose children are ``_step``s."""
    return otlp_span(span_id="a" * 16, name=name, duration=3_000_000_000, attrs=attrs)


def _step(n: int, name: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """The run's ``n``-th child (from 1), 1 s apart."""
    return otlp_span(
        span_id=f"{n:x}" * 16,
        parent="a" * 16,
        name=name,
        start=1_763_000_000_100_000_000 + (n - 1) * 1_000_000_000,
        attrs=attrs,
    )


def _agent_trace(cli: Cli, write_jsonl: WriteFn) -> None:
    question, answer = "What's the weather in Tokyo?", "Stormy, 23 °C."
    root = _run(
        "invoke_agent weather",
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "weather",
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": question}]}]
            ),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]
            ),
        },
    )
    # The model call records no messages: the question is the agent's alone.
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    child = _step(1, "chat gpt-4o", {**chat, "gen_ai.usage.input_tokens": 20})
    parser = _step(
        2, "parse", {"input.value": "not a conversation", "openinference.span.kind": "CHAIN"}
    )
    doc = traces_doc(root, child, parser, service="weather-agent")
    assert cli("ingest", str(write_jsonl("agent.jsonl", doc))).exit_code == 0


def test_an_agent_roots_own_messages_start_the_journey(
    cli: Cli, write_jsonl: WriteFn, wide: None
) -> None:
    _agent_trace(cli, write_jsonl)
    data = cli.json("replay", "0af7651916cd", "--no-context")
    root, _, parser = data["steps"]
    assert root["kind"] == "agent"
    assert [(m["role"], m["content"]) for m in root["messages"]] == [
        ("system", "Be brief."),
        ("user", "What's the weather in Tokyo?"),
    ]
    assert [m["content"] for m in root["output"]] == ["Stormy, 23 °C."]
    # A chain's plain input is not dressed up as a user message.
    assert parser["kind"] == "chain" and "messages" not in parser
    assert parser["io"]["input"] == "not a conversation"

    (head, *body), *_ = _blocks(cli("replay", "0af7651916cd", "--no-context").stdout)
    assert "invoke_agent weather" in head
    assert [line.strip() for line in body] == [
        "system: Be brief.",
        "user: What's the weather in Tokyo?",
        "→ assistant: Stormy, 23 °C.",
    ]
    md = cli("replay", "0af7651916cd", "-f", "markdown").stdout
    assert "user: What's the weather in Tokyo?" in md and "→ assistant: Stormy, 23 °C." in md
    described = cli("describe", "0af7651916cd").stdout
    assert "Asked: What's the weather in Tokyo?" in described


def test_an_agent_root_in_a_conformance_file_shows_the_question(
    cli: Cli, conformance: Path, wide: None
) -> None:
    """Microsoft Agent Framework via Langfuse: the agent run's input and output are message
    lists; they read as the conversation, not as raw JSON."""
    path = conformance / "langfuse" / "microsoft-agent-2025-12-17.trace.json"
    assert cli("ingest", str(path)).exit_code == 0
    data = cli.json("replay", "8e419d3288", "--no-context")
    root = data["steps"][0]
    assert root["kind"] == "agent" and root["depth"] == 0
    assert ("user", "What's the weather in Tokyo?") in [
        (m["role"], m["content"]) for m in root["messages"]
    ]
    assert root["output"][-1]["content"].startswith("Current conditions in Tokyo")
    lines = [line.strip() for line in _blocks(cli("replay", "8e419d3288").stdout)[0][1:]]
    # The run's own usage figures, then its conversation, question first; not raw JSON.
    assert lines[0].startswith("run reports ")
    assert lines[1:3] == [
        "system: You are a helpful assistant.",
        "user: What's the weather in Tokyo?",
    ]
    # its answer, then the Langfuse scores of the trace, shown (not judged: numeric scales)
    assert lines[-2].startswith("→ assistant: Current conditions in Tokyo")
    assert lines[-1] == "· eval scored: correctness 1.00, hallucination 0.90, toxicity 0.00"
    assert not any(line.startswith(("in  [", "out [")) for line in lines)


# --- 4. no figures that were never recorded -------------------------------------------------------------


def test_unknown_environment_and_tokens_are_left_out(
    cli: Cli, write_jsonl: WriteFn, wide: None
) -> None:
    bare = otlp_span(name="handle", status={"code": 2})
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
    only_out = otlp_span(
        trace_id="1" * 32, name="chat m", attrs={**chat, "gen_ai.usage.output_tokens": 6}
    )
    zero = otlp_span(
        trace_id="2" * 32,
        name="chat m",
        attrs={**chat, "gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 0},
    )
    assert (
        cli("ingest", str(write_jsonl("t.jsonl", traces_doc(bare, only_out, zero)))).exit_code == 0
    )

    text = cli("replay", "0af7651916cd", "--no-context").stdout
    assert "tokens" not in text and " env " not in text and "()" not in text
    assert "failed at +0.000 s: other handle\n" in text  # no dangling " — " without an error
    md = cli("replay", "0af7651916cd", "-f", "markdown", "--no-context").stdout
    assert "()" not in md and "| service | svc@? |" in md and "| tokens | - |" in md
    assert "0 in" not in md and "|  |" not in md
    described = cli("describe", "0af7651916cd").stdout
    assert "0 in" not in described and "env ?" not in described and "()" not in described

    text = cli("replay", "1" * 32, "--no-context").stdout
    assert "tokens 6 out" in text and "6 tok out" in text and "0 in" not in text
    assert "m, ?→6 tok" in cli("describe", "1" * 32).stdout

    text = cli("replay", "2" * 32, "--no-context").stdout
    assert "tokens 0 in / 0 out" in text and "0→0 tok" in text
    assert "| tokens | 0 in / 0 out |" in cli("replay", "2" * 32, "-f", "markdown").stdout

    diff = cli("diff-traces", "0af7651916cd", "2" * 32).stdout
    assert "tokens -" in diff and "tokens 0 in / 0 out" in diff


def test_a_runs_reported_figures_show_and_a_stated_cost_is_the_traces(
    cli: Cli, write_jsonl: WriteFn, wide: None
) -> None:
    """A workflow states $0.05 and its run's usage; its only model call is unpriced: replay's
    cost is ai_traces' (the stated one), and the run's figures show on its step, apart."""
    chain = _run(
        "support.workflow",
        {
            "traceloop.span.kind": "workflow",
            "gen_ai.usage.cost": 0.05,
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 24,
        },
    )
    chat = _step(
        1,
        "chat in-house-model-7",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "in-house-model-7",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
        },
    )
    assert cli("ingest", str(write_jsonl("t.jsonl", traces_doc(chain, chat)))).exit_code == 0
    (row,) = cli.query("SELECT cost_usd, input_tokens FROM ai_traces")
    data = cli.json("replay", "0af7651916cd")
    assert data["trace"]["cost_usd"] == pytest.approx(row["cost_usd"]) == pytest.approx(0.05)
    root, call = data["steps"]
    assert (root["reported_input_tokens"], root["reported_output_tokens"]) == (120, 24)
    assert root["reported_cost_usd"] == pytest.approx(0.05) and root["cost_usd"] is None
    assert call["reported_cost_usd"] is None and call["input_tokens"] == 100
    text = cli("replay", "0af7651916cd").stdout
    assert "tokens 100 in / 20 out · cost $0.050" in text
    (_, *body), (_, *call_body) = _blocks(text)
    assert [line.strip() for line in body] == ["run reports 120→24 tok · cost $0.050"]
    assert not any("run reports" in line for line in call_body)
