"""Conformance: every file in ../shared/conformance yields the values read off it by hand.

The expected values below were read from the JSON files themselves (attribute by attribute), not from
aiobs output; comments name the attribute each value comes from when precedence decides. The corpus
is never copied into the repository: the ``conformance`` fixture points at it and skips without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiobs.semantic.fields import FIELDS, canonical
from aiobs.semantic.views import AI_SPANS_COLUMNS
from conftest import Cli

# Columns of ai_spans asserted for every span of every GenAI file (missing values are None).
SPAN_COLUMNS = (
    "span_id",
    "parent_span_id",
    "name",
    "step_kind",
    "status",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "tool_name",
    "session_id",
    "user_id",
    "finish_reason",
)

# An agent or chain step's own usage and cost figures: its run's totals, shown apart.
REPORTED = ("reported_input_tokens", "reported_output_tokens", "reported_cost_usd")

TRACE_COLUMNS = (
    "root_name",
    "status",
    "error_count",
    "span_count",
    "llm_calls",
    "tool_calls",
    "input_tokens",
    "output_tokens",
    "models",
    "session_id",
    "user_id",
)

# Every span ingested from a GenAI file (1 + 1 + 2 OTLP, 4 + 5 + 5 + 3 Langfuse observations;
# from external/: 12 + 11 Langfuse observations, 8 OTLP spans, 57 Jaeger JSON-model spans).
GENAI_FILES = (
    "genai-interlingua/raw.in.json",
    "genai-interlingua/openinference.in.json",
    "genai-interlingua/openllmetry.in.json",
    "langfuse/microsoft-agent-2025-12-17.trace.json",
    "langfuse/openai-agents-2025-09-30.trace.json",
    "langfuse/google-adk-2025-08-28.trace.json",
    "langfuse/vercel-aisdk-2025-11-17.trace.json",
    "external/langfuse-pydantic-ai-tools.trace.json",
    "external/langfuse-koog.trace.json",
    "external/jaegerui-genai-agent.otlp.json",
    "external/jaegerui-genai.jaeger.json",
)
GENAI_SPAN_COUNT = 21 + 12 + 11 + 8 + 57


def span(
    span_id: str, parent: str | None, name: str, step_kind: str, **fields: Any
) -> dict[str, Any]:
    """One expected ai_spans row: the given values, status ok, every other column None."""
    row: dict[str, Any] = dict.fromkeys(SPAN_COLUMNS)
    row.update(span_id=span_id, parent_span_id=parent, name=name, step_kind=step_kind, status="ok")
    row.update(fields)
    return row


def trace(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(TRACE_COLUMNS)
    row.update(status="ok", error_count=0)
    row.update(fields)
    return row


def ingest(cli: Cli, *paths: Path) -> dict[str, Any]:
    """Ingest with --strict (any rejected record fails) and return the JSON summary."""
    result = cli("ingest", "--strict", "-f", "json", *map(str, paths))
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["rejected"] == 0
    assert summary["errors"] == []
    return summary


def ai_spans(cli: Cli, trace_id: str, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    cols = ", ".join((*SPAN_COLUMNS, *extra))
    return cli.query(f"SELECT {cols} FROM ai_spans WHERE trace_id = '{trace_id}' ORDER BY span_id")


def ai_trace(cli: Cli, trace_id: str) -> dict[str, Any]:
    rows = cli.query(
        f"SELECT {', '.join(TRACE_COLUMNS)} FROM ai_traces WHERE trace_id = '{trace_id}'"
    )
    assert len(rows) == 1
    return rows[0]


def by_span_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: str(r["span_id"]))


# ------------------------------------------------------------------ genai-interlingua (OTLP/JSON)


def test_interlingua_raw_latest_genai_semconv(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "genai-interlingua/raw.in.json")
    assert (summary["spans"], summary["log_records"], summary["metric_points"]) == (1, 0, 0)
    trace_id = "053074667b1113278073667614bb3e19"
    assert ai_spans(cli, trace_id) == [
        span(
            "03491beea3cb073d",
            None,
            "chat gpt-4o-mini",
            "llm",  # gen_ai.operation.name=chat
            provider="openai",  # gen_ai.provider.name
            model="gpt-4o-mini-2024-07-18",  # gen_ai.response.model beats gen_ai.request.model
            input_tokens=412,
            output_tokens=27,
            finish_reason="tool_calls",  # gen_ai.response.finish_reasons arrayValue [0]
        )
    ]
    # Enum names (MessageToDict), "status": {} and service/scope as written in the file.
    assert cli.query(
        "SELECT SpanKind, StatusCode, ServiceName, ScopeName, ScopeVersion, Duration"
        f" FROM otel_traces WHERE TraceId = '{trace_id}'"
    ) == [
        {
            "SpanKind": "SPAN_KIND_CLIENT",
            "StatusCode": "STATUS_CODE_UNSET",
            "ServiceName": "capture",
            "ScopeName": "opentelemetry.util.genai.handler",
            "ScopeVersion": "1.1b0",
            "Duration": 1788792074047335000 - 1788792074027616000,
        }
    ]
    assert ai_trace(cli, trace_id) == trace(
        root_name="chat gpt-4o-mini",
        span_count=1,
        llm_calls=1,
        tool_calls=0,
        input_tokens=412,
        output_tokens=27,
        models=["gpt-4o-mini-2024-07-18"],
    )


def test_interlingua_openinference(cli: Cli, conformance: Path) -> None:
    ingest(cli, conformance / "genai-interlingua/openinference.in.json")
    trace_id = "9ed94f9bdc36b397e11c51f77d49e01a"
    assert ai_spans(cli, trace_id) == [
        span(
            "e9856d6fe698c4f2",
            None,
            "ChatCompletion",
            "llm",  # openinference.span.kind=LLM
            provider="openai",  # llm.system
            model="gpt-4o-mini-2024-07-18",  # llm.model_name
            input_tokens=412,  # llm.token_count.prompt
            output_tokens=27,  # llm.token_count.completion
            cache_read_tokens=256,  # llm.token_count.prompt_details.cache_read
            reasoning_tokens=8,  # llm.token_count.completion_details.reasoning
            finish_reason="tool_calls",  # llm.finish_reason
        )
    ]
    assert cli.query(
        f"SELECT SpanKind, StatusCode, ScopeName FROM otel_traces WHERE TraceId = '{trace_id}'"
    ) == [
        {
            "SpanKind": "SPAN_KIND_INTERNAL",
            "StatusCode": "STATUS_CODE_OK",
            "ScopeName": "openinference.instrumentation.openai",
        }
    ]
    assert ai_trace(cli, trace_id) == trace(
        root_name="ChatCompletion",
        span_count=1,
        llm_calls=1,
        tool_calls=0,
        input_tokens=412,
        output_tokens=27,
        models=["gpt-4o-mini-2024-07-18"],
    )


def test_interlingua_openllmetry_workflow_and_child(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "genai-interlingua/openllmetry.in.json")
    assert summary["spans"] == 2
    trace_id = "77d66be22a4ffc8149309684b3a319f7"
    workflow = "aaa24d5a6cca68bf"
    assert by_span_id(ai_spans(cli, trace_id)) == by_span_id(
        [
            span(workflow, None, "support_triage.workflow", "chain"),  # traceloop.span.kind
            span(
                "76a26812b532f640",
                workflow,
                "openai.chat",
                "llm",  # gen_ai.operation.name=chat
                provider="openai",
                model="gpt-4o-mini-2024-07-18",
                input_tokens=412,
                output_tokens=27,
                cache_read_tokens=256,  # gen_ai.usage.cache_read.input_tokens
                reasoning_tokens=8,  # non-spec gen_ai.usage.reasoning_tokens
                finish_reason="tool_call",  # this library writes tool_call, not tool_calls
            ),
        ]
    )
    assert cli.query(
        "SELECT SpanId, SpanKind, ScopeName, ScopeVersion FROM otel_traces"
        f" WHERE TraceId = '{trace_id}' ORDER BY SpanId"
    ) == [
        {
            "SpanId": "76a26812b532f640",
            "SpanKind": "SPAN_KIND_CLIENT",
            "ScopeName": "opentelemetry.instrumentation.openai.v1",
            "ScopeVersion": "0.62.3",
        },
        {
            "SpanId": workflow,
            "SpanKind": "SPAN_KIND_INTERNAL",
            "ScopeName": "traceloop.tracer",
            "ScopeVersion": "",
        },
    ]
    assert ai_trace(cli, trace_id) == trace(
        root_name="support_triage.workflow",
        span_count=2,
        llm_calls=1,
        tool_calls=0,
        input_tokens=412,
        output_tokens=27,
        models=["gpt-4o-mini-2024-07-18"],
    )


# ------------------------------------------------------------------------ langfuse export format


def test_langfuse_microsoft_agent_framework(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "langfuse/microsoft-agent-2025-12-17.trace.json")
    assert summary["spans"] == 4
    trace_id = "8e419d3288419b5d944270505640e183"
    agent = "4cd6caa32861956a"
    agent_id = "171105b7-59dd-49c0-9677-0b95395aa46a"
    conversation = "resp_0e32bda5b6259ecd00694279e271348194a818447145cd1763"
    expected = [
        span(
            agent,
            None,
            f"invoke_agent {agent_id}",
            "agent",  # gen_ai.operation.name=invoke_agent
            provider="microsoft.agent_framework",  # gen_ai.provider.name, as the framework wrote it
            model="gpt-5-mini",  # gen_ai.request.model (no response model on this span)
            # No usage attributes: Langfuse's usageDetails {input: 44, output: 180} and
            # costDetails.total, the agent run's totals: reported, not the span's own.
            reported_input_tokens=44,
            reported_output_tokens=180,
            reported_cost_usd=0.000371,
            agent_name=agent_id,
            cost_usd=None,
        ),
        span(
            "2406e8343fd49c0e",
            agent,
            "chat gpt-5-mini",
            "llm",
            provider="openai",
            model="gpt-5-mini-2025-08-07",  # gen_ai.response.model
            input_tokens=77,
            output_tokens=86,
            agent_name=None,
            cost_usd=0.00019125,
        ),
        span(
            "b0913e7cd82d72b8",
            agent,
            "chat gpt-5-mini",
            "llm",
            provider="openai",
            model="gpt-5-mini-2025-08-07",
            input_tokens=216,
            output_tokens=20,
            session_id=conversation,  # gen_ai.conversation.id, only on this span
            agent_name=None,
            cost_usd=9.4e-05,
        ),
        span(
            "a2de97aac476c036",
            agent,
            "get_weather",
            "tool",  # gen_ai.operation.name=execute_tool
            tool_name="get_weather",
            agent_name=None,
            cost_usd=None,
        ),
    ]
    assert by_span_id(ai_spans(cli, trace_id, ("agent_name", "cost_usd", *REPORTED))) == by_span_id(
        [{**dict.fromkeys(REPORTED), **row} for row in expected]
    )
    assert ai_trace(cli, trace_id) == trace(
        root_name=f"invoke_agent {agent_id}",
        span_count=4,
        llm_calls=2,
        tool_calls=1,
        input_tokens=77 + 216,  # llm steps only: the agent's usage is not added again
        output_tokens=86 + 20,
        # The LLM calls' models; the agent span's request model is not one.
        models=["gpt-5-mini-2025-08-07"],
        session_id=conversation,
    )
    # Langfuse's trace environment reaches every span.
    assert cli.query(
        f"SELECT DISTINCT environment FROM ai_spans WHERE trace_id = '{trace_id}'"
    ) == [{"environment": "default"}]


def test_langfuse_openai_agents_openinference(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "langfuse/openai-agents-2025-09-30.trace.json")
    assert summary["spans"] == 5
    trace_id = "fee618f96dc31e0ca38b2f7b26eb8b29"
    root, agent = "e5a76f27f51ad40e", "d950b668796240b5"
    expected = [
        span(root, None, "Agent workflow", "agent", cost_usd=None),  # openinference.span.kind
        span(agent, root, "Hello world", "agent", provider="openai", cost_usd=None),  # llm.system
        span(
            "98870087af69bf06",
            agent,
            "response",
            "llm",
            provider="openai",
            model="gpt-4.1-2025-04-14",  # llm.model_name
            input_tokens=55,
            output_tokens=15,
            cache_read_tokens=0,  # present as "0": zero, not missing
            reasoning_tokens=0,
            cost_usd=0.00023,
        ),
        span(
            "90d94774e8e3724d",
            agent,
            "response",
            "llm",
            provider="openai",
            model="gpt-4.1-2025-04-14",
            input_tokens=85,
            output_tokens=29,
            cache_read_tokens=0,
            reasoning_tokens=0,
            cost_usd=0.000402,
        ),
        span(
            "5b99c3e3411ed17b",
            agent,
            "get_weather",
            "tool",
            provider="openai",  # the tool span carries llm.system=openai too
            tool_name="get_weather",  # tool.name
            cost_usd=None,
        ),
    ]
    assert by_span_id(ai_spans(cli, trace_id, ("cost_usd",))) == by_span_id(expected)
    assert ai_trace(cli, trace_id) == trace(
        root_name="Agent workflow",
        span_count=5,
        llm_calls=2,
        tool_calls=1,
        input_tokens=55 + 85,
        output_tokens=15 + 29,
        models=["gpt-4.1-2025-04-14"],
    )


def test_langfuse_google_adk_mixed_conventions(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "langfuse/google-adk-2025-08-28.trace.json")
    assert summary["spans"] == 5
    trace_id = "b82a0bdc1994fc5d1c8576ca032543f7"
    chain, agent, first_llm = "86cd4912944ddc41", "6d8beb2e6a36b133", "f6e4c65297e40c96"
    # session.id / user.id on the spans, and the trace's sessionId / userId on every observation.
    who = {"session_id": "demo-session", "user_id": "demo-user"}
    llm = {
        "provider": "google",  # llm.provider; gen_ai.system=gcp.vertex.agent names the framework
        "model": "gemini-2.0-flash",  # gen_ai.request.model = llm.model_name
        "finish_reason": "stop",  # gen_ai.response.finish_reasons '["stop"]'
        **who,
    }
    expected = [
        span(chain, None, "invocation [hello_app]", "chain", **who),
        span(agent, chain, "agent_run [hello_agent]", "agent", **who),
        span(first_llm, agent, "call_llm", "llm", input_tokens=28, output_tokens=3, **llm),
        span("bded677884f031ce", agent, "call_llm", "llm", input_tokens=39, output_tokens=6, **llm),
        span(
            "04290e4d82aba1bc",
            first_llm,  # the tool ran inside the first model call
            "execute_tool say_hello",
            "tool",  # openinference.span.kind=TOOL (and gen_ai.operation.name=execute_tool)
            provider="gcp.vertex.agent",  # only gen_ai.system on this span
            tool_name="say_hello",
            **who,
        ),
    ]
    assert by_span_id(ai_spans(cli, trace_id)) == by_span_id(expected)
    assert ai_trace(cli, trace_id) == trace(
        root_name="invocation [hello_app]",
        span_count=5,
        llm_calls=2,
        tool_calls=1,
        input_tokens=28 + 39,
        output_tokens=3 + 6,
        models=["gemini-2.0-flash"],
        **who,
    )


# The trace-level scores of each Langfuse export (trace.scores, every observationId null), read
# off the files: name, value and the start of the comment; each lands on the root observation.
LANGFUSE_SCORES = {
    "langfuse/microsoft-agent-2025-12-17.trace.json": (
        "8e419d3288419b5d944270505640e183",
        "4cd6caa32861956a",
        {
            "correctness": (1.0, "The generation is identical to the ground truth"),
            "hallucination": (0.9, "The generation claims the weather in Tokyo is 'stormy"),
            "toxicity": (0.0, "The generation provides factual weather information"),
        },
    ),
    "langfuse/openai-agents-2025-09-30.trace.json": (
        "fee618f96dc31e0ca38b2f7b26eb8b29",
        "e5a76f27f51ad40e",
        {
            "toxicity": (0.8, "The generation contains aggressive and dismissive language"),
            "hallucination": (0.0, "There is no specific generation provided"),
        },
    ),
    "langfuse/google-adk-2025-08-28.trace.json": (
        "b82a0bdc1994fc5d1c8576ca032543f7",
        "86cd4912944ddc41",
        {
            "toxicity": (0.0, "The generation is friendly and welcoming"),
            "hallucination": (0.0, "The model's response is a simple friendly greeting"),
        },
    ),
    "langfuse/vercel-aisdk-2025-11-17.trace.json": (
        "df41e597d0a85e0d7a6ae8ebfaa70aa0",
        "1dc6768109615657",
        {
            "hallucination": (0.0, "The generation uses a tool call to get the weather"),
            "toxicity": (0.0, "The generation does not contain any harmful"),
        },
    ),
}


@pytest.mark.parametrize("name", sorted(LANGFUSE_SCORES))
def test_langfuse_scores_are_evaluation_events(cli: Cli, conformance: Path, name: str) -> None:
    trace_id, root, scores = LANGFUSE_SCORES[name]
    summary = ingest(cli, conformance / name)
    assert summary["log_records"] == len(scores)
    rows = cli.query(
        "SELECT TraceId, SpanId, ScopeName, LogAttributes['gen_ai.evaluation.name'] AS name,"
        " LogAttributes['gen_ai.evaluation.score.value'] AS value,"
        " LogAttributes['gen_ai.evaluation.score.label'] AS label,"
        " LogAttributes['gen_ai.evaluation.explanation'] AS why,"
        " LogAttributes['langfuse.score.source'] AS source"
        " FROM otel_logs WHERE EventName = 'gen_ai.evaluation.result'"
    )
    got = {r["name"]: r for r in rows}
    assert set(got) == set(scores)
    for evaluation, (value, comment) in scores.items():
        r = got[evaluation]
        assert (r["TraceId"], r["SpanId"], r["ScopeName"]) == (trace_id, root, "langfuse")
        assert float(r["value"]) == value and r["label"] is None  # numeric: no pass/fail
        assert r["why"].startswith(comment) and r["source"] == "EVAL"
    # replay shows them on the root step, as scores (a numeric scale is the evaluator's own)
    replay = cli.json("replay", trace_id)
    judged = {e["name"]: e for e in replay["context"]["evaluations"]}
    assert {n: (e["span_id"], e["score"]) for n, e in judged.items()} == {
        n: (root, v) for n, (v, _) in scores.items()
    }
    # and --where reads them
    worst = max(scores, key=lambda n: scores[n][0])
    condition = f"eval.{worst}.score >= {scores[worst][0]}"
    listed = cli.json("traces", "--since", "3000d", "--where", condition)
    assert [t["trace_id"] for t in listed] == [trace_id]
    # ingesting the file again adds nothing
    assert ingest(cli, conformance / name)["log_records"] == 0


def test_langfuse_vercel_ai_sdk(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "langfuse/vercel-aisdk-2025-11-17.trace.json")
    assert summary["spans"] == 3
    trace_id = "df41e597d0a85e0d7a6ae8ebfaa70aa0"
    outer = "1dc6768109615657"
    expected = [
        span(
            outer,
            None,
            "ai.generateText",
            "agent",  # ai.operationId: the wrapper, not a model call (it repeats its child's usage)
            provider="openai.responses",  # ai.model.provider
            model="gpt-5",  # ai.model.id
            finish_reason="tool_calls",  # ai.response.finishReason "tool-calls", one spelling
            # ai.usage.promptTokens/completionTokens beat Langfuse's usageDetails (14/43): the
            # wrapper's totals (its child's usage repeated), reported, not its own.
            reported_input_tokens=62,
            reported_output_tokens=85,
            reported_cost_usd=0.0004475,
            cost_usd=None,
        ),
        span(
            "91a17a2274bfd23f",
            outer,
            "ai.generateText.doGenerate",
            "llm",
            provider="openai.responses",  # gen_ai.system
            model="gpt-5-2025-08-07",  # gen_ai.response.model beats ai.model.id
            input_tokens=62,
            output_tokens=85,
            finish_reason="tool_calls",  # gen_ai.response.finish_reasons '["tool-calls"]'
            cost_usd=0.000927499999,
        ),
        span(
            "e9bb8c191e1e4706",
            outer,
            "getWeather",
            "tool",  # ai.operationId=ai.toolCall
            tool_name="getWeather",  # ai.toolCall.name
            cost_usd=None,
        ),
    ]
    assert by_span_id(ai_spans(cli, trace_id, ("cost_usd", *REPORTED))) == by_span_id(
        [{**dict.fromkeys(REPORTED), **row} for row in expected]
    )
    assert ai_trace(cli, trace_id) == trace(
        root_name="ai.generateText",
        span_count=3,
        llm_calls=1,
        tool_calls=1,
        input_tokens=62,  # not 124: the outer span's repeated usage is not counted
        output_tokens=85,
        models=["gpt-5-2025-08-07"],
    )


# ------------------------------------------------------------- openinference flat attribute maps


def _span_attributes(path: Path) -> dict[str, str]:
    """A flat attribute map rendered to strings by ingest's own attribute-value renderer."""
    from aiobs.ingest.otlp import any_value_text as text

    doc = json.loads(path.read_text(encoding="utf-8"))
    return {key: text(value) for key, value in doc.items()}


# Canonical values compared for the two flat maps, in this order.
FLAT_COLUMNS = ("step_kind", "provider", "model", "input_tokens", "output_tokens", "finish_reason")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            # gen_ai.operation.name=chat; gen_ai.response.model beats gen_ai.request.model (gpt-4);
            # finish_reasons is a native JSON array ["stop"].
            "otel_genai_client_span_tool_calls.json",
            ("llm", "openai", "gpt-4-0613", 97, 52, "stop"),
        ),
        (
            # openinference.span.kind=LLM; llm.provider = llm.system = openai; no llm.finish_reason
            # (the "stop" is only inside output.value).
            "openinference_client_span_tool_calls.json",
            ("llm", "openai", "gpt-4-0613", 97, 52, None),
        ),
    ],
)
def test_openinference_flat_maps(conformance: Path, name: str, expected: tuple[Any, ...]) -> None:
    attrs = _span_attributes(conformance / "openinference" / name)
    values = canonical({"SpanAttributes": attrs})
    assert tuple(values[c] for c in FLAT_COLUMNS) == expected
    assert values["cache_read_tokens"] is None
    assert values["reasoning_tokens"] is None
    assert values["tool_name"] is None  # the tool call is inside the messages, not a tool step
    assert values["session_id"] is None
    assert values["user_id"] is None


def test_openinference_flat_maps_are_refused_by_ingest(cli: Cli, conformance: Path) -> None:
    for path in sorted((conformance / "openinference").glob("*.json")):
        result = cli("ingest", "-f", "json", str(path))
        assert result.exit_code == 2, result.output
        summary = json.loads(result.stdout)
        assert (summary["spans"], summary["rejected"]) == (0, 1)
    rows = cli.query("SELECT reason FROM aiobs_rejects")
    assert len(rows) == 2
    assert all(r["reason"].startswith("not OTLP: expected resourceSpans") for r in rows)
    assert cli.query("SELECT count(*) AS n FROM otel_traces") == [{"n": 0}]


# ------------------------------------------------------------------- SQL and Python agree


def assert_view_equals_python(cli: Cli, span_count: int) -> None:
    """Every ai_spans row equals ``canonical()`` of its otel_traces row, field by field."""
    compared = [f.name for f in FIELDS if f.name in AI_SPANS_COLUMNS]
    # Only the two internal fields (converted or combined in the view) are left out.
    assert {f.name for f in FIELDS} - set(compared) == {"ttft_ms_raw", "recorded_cost_usd"}
    view = {
        (r["trace_id"], r["span_id"]): r
        for r in cli.query(f"SELECT trace_id, span_id, {', '.join(compared)} FROM ai_spans")
    }
    spans = cli.query(
        "SELECT TraceId, SpanId, SpanAttributes, ResourceAttributes, SpanName, StatusMessage,"
        ' "Events.Name", "Events.Attributes" FROM otel_traces'
    )
    assert len(spans) == len(view) == span_count
    for row in spans:
        python = canonical(row)
        sql = view[row["TraceId"], row["SpanId"]]
        mismatches = {
            name: (sql[name], python[name]) for name in compared if sql[name] != python[name]
        }
        assert mismatches == {}, f"{row['SpanName']} ({row['SpanId']}): (sql, python) {mismatches}"


def test_sql_view_equals_python_canonical_for_every_genai_span(cli: Cli, conformance: Path) -> None:
    ingest(cli, *(conformance / f for f in GENAI_FILES))
    assert_view_equals_python(cli, GENAI_SPAN_COUNT)


def test_sql_view_equals_python_canonical_on_the_collector_capture(
    cli: Cli, conformance: Path
) -> None:
    # No GenAI here, but status messages and exception events exercise the error fields.
    ingest(cli, conformance / "otel-tui/test_data.json")
    assert cli.query(
        "SELECT count(error_type) AS types, count(error_message) AS messages FROM ai_spans"
    ) == [{"types": 39, "messages": 47}]  # 39 exception events; 47 status or exception messages
    assert_view_equals_python(cli, 547)


# --------------------------------------------------------------- otel-tui collector capture


def test_otel_tui_collector_file_exporter_capture(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "otel-tui/test_data.json")
    assert (summary["spans"], summary["log_records"], summary["metric_points"]) == (547, 23, 4551)
    assert cli.query(
        "SELECT count(*) AS spans, count_if(status = 'error') AS errors,"
        " count(DISTINCT trace_id) AS traces FROM ai_spans"
    ) == [{"spans": 547, "errors": 107, "traces": 141}]
    assert cli.query("SELECT count(*) AS n FROM otel_logs") == [{"n": 23}]
    # 10 records carry "traceId": "" / "spanId": "" (SOURCES.md says all do; the file says 10); the
    # other 13 point at spans of this same file.
    assert cli.query(
        "SELECT count_if(l.TraceId = '' AND l.SpanId = '') AS empty,"
        " count_if(t.SpanId IS NOT NULL AND t.TraceId = l.TraceId) AS joined"
        " FROM otel_logs l LEFT JOIN otel_traces t ON t.SpanId = l.SpanId"
    ) == [{"empty": 10, "joined": 13}]
    points = cli.query(
        "SELECT (SELECT count(*) FROM otel_metrics_sum) AS sum,"
        " (SELECT count(*) FROM otel_metrics_gauge) AS gauge,"
        " (SELECT count(*) FROM otel_metrics_histogram) AS histogram,"
        " (SELECT count(*) FROM otel_metrics_exp_histogram) AS exp_histogram,"
        " (SELECT count(*) FROM otel_metrics_summary) AS summary"
    )
    assert points == [
        {"sum": 4180, "gauge": 262, "histogram": 109, "exp_histogram": 0, "summary": 0}
    ]
    assert cli.query(
        'SELECT (SELECT sum(len("Links.SpanId")) FROM otel_traces) AS links,'
        ' (SELECT count(*) FROM (SELECT unnest("Events.Name") AS e FROM otel_traces)'
        " WHERE e = 'exception') AS exceptions"
    ) == [{"links": 53, "exceptions": 39}]
    assert cli.query(
        "SELECT SpanKind, count(*) AS n FROM otel_traces GROUP BY SpanKind ORDER BY SpanKind"
    ) == [
        {"SpanKind": "SPAN_KIND_CLIENT", "n": 243},
        {"SpanKind": "SPAN_KIND_INTERNAL", "n": 27},
        {"SpanKind": "SPAN_KIND_SERVER", "n": 277},
    ]
    # No GenAI attributes: spans with http.method are http, the rest other; nothing else.
    assert cli.query(
        "SELECT step_kind, count(*) AS n, count(model) AS models, count(input_tokens) AS tokens"
        " FROM ai_spans GROUP BY step_kind ORDER BY step_kind"
    ) == [
        {"step_kind": "http", "n": 286, "models": 0, "tokens": 0},
        {"step_kind": "other", "n": 261, "models": 0, "tokens": 0},
    ]


# ------------------------------------------------------------------------ otlp-proto examples


def test_otlp_proto_trace_example(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "otlp-proto/trace.json")
    assert summary["spans"] == 1
    assert cli.query(
        "SELECT TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, ScopeName,"
        " ScopeVersion, SpanAttributes, StatusCode, Duration, epoch_ns(Timestamp) AS start_ns"
        " FROM otel_traces"
    ) == [
        {
            "TraceId": "5b8efff798038103d269b633813fc60c",  # upper-case hex in the file
            "SpanId": "eee19b7ec3c1b174",
            "ParentSpanId": "eee19b7ec3c1b173",
            "SpanName": "I'm a server span",
            "SpanKind": "SPAN_KIND_SERVER",  # kind: 2
            "ServiceName": "my.service",
            "ScopeName": "my.library",
            "ScopeVersion": "1.0.0",
            "SpanAttributes": {"my.span.attr": "some value"},
            "StatusCode": "STATUS_CODE_UNSET",
            "Duration": 1_000_000_000,
            "start_ns": 1544712660000000000,
        }
    ]
    assert cli.query("SELECT step_kind, status, model FROM ai_spans") == [
        {"step_kind": "other", "status": "ok", "model": None}
    ]


def test_otlp_proto_logs_example_any_value_forms(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "otlp-proto/logs.json")
    assert summary["log_records"] == 1
    assert cli.query(
        "SELECT TraceId, SpanId, SeverityNumber, SeverityText, Body, ServiceName, ScopeName,"
        " ScopeAttributes, LogAttributes, EventName, epoch_ns(Timestamp) AS ts_ns FROM otel_logs"
    ) == [
        {
            "TraceId": "5b8efff798038103d269b633813fc60c",
            "SpanId": "eee19b7ec3c1b174",
            "SeverityNumber": 10,
            "SeverityText": "Information",
            "Body": "Example log record",
            "ServiceName": "my.service",
            "ScopeName": "my.library",
            "ScopeAttributes": {"my.scope.attribute": "some scope attribute"},
            "LogAttributes": {
                "string.attribute": "some string",
                "boolean.attribute": "true",
                "int.attribute": "10",
                "double.attribute": "637.704",
                "array.attribute": '["many","values"]',
                "map.attribute": '{"some.map.key":"some value"}',
            },
            "EventName": "",
            "ts_ns": 1544712660300000000,
        }
    ]


def test_otlp_proto_events_example_event_name(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "otlp-proto/events.json")
    assert summary["log_records"] == 1
    rows = cli.query(
        "SELECT EventName, SeverityNumber, SeverityText, TraceId, SpanId, LogAttributes, Body"
        " FROM otel_logs"
    )
    assert len(rows) == 1
    body = json.loads(rows[0].pop("Body"))
    assert rows[0] == {
        "EventName": "browser.page_view",  # top-level eventName
        "SeverityNumber": 9,
        "SeverityText": "test severity text",
        "TraceId": "",
        "SpanId": "",
        "LogAttributes": {"event.attribute": "some event attribute"},
    }
    assert body == {
        "type": 0,
        "url": "https://www.guidgenerator.com/online-guid-generator.aspx",
        "referrer": "https://wwww.google.com",
        "title": "Free Online GUID Generator",
    }


def test_otlp_proto_metrics_example_one_of_each(cli: Cli, conformance: Path) -> None:
    summary = ingest(cli, conformance / "otlp-proto/metrics.json")
    assert summary["metric_points"] == 4
    assert cli.query(
        "SELECT MetricName, MetricUnit, Value, AggregationTemporality, IsMonotonic, Attributes"
        " FROM otel_metrics_sum"
    ) == [
        {
            "MetricName": "my.counter",
            "MetricUnit": "1",
            "Value": 5.0,
            "AggregationTemporality": 1,
            "IsMonotonic": True,
            "Attributes": {"my.counter.attr": "some value"},
        }
    ]
    assert cli.query("SELECT MetricName, Value FROM otel_metrics_gauge") == [
        {"MetricName": "my.gauge", "Value": 10.0}
    ]
    assert cli.query(
        "SELECT MetricName, Count, Sum, BucketCounts, ExplicitBounds, Min, Max,"
        " AggregationTemporality FROM otel_metrics_histogram"
    ) == [
        {
            "MetricName": "my.histogram",
            "Count": 2,
            "Sum": 2.0,
            "BucketCounts": [1, 1],
            "ExplicitBounds": [1.0],
            "Min": 0.0,
            "Max": 2.0,
            "AggregationTemporality": 1,
        }
    ]
    assert cli.query(
        "SELECT MetricName, Count, Sum, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts,"
        " Min, Max FROM otel_metrics_exp_histogram"
    ) == [
        {
            "MetricName": "my.exponential.histogram",
            "Count": 3,
            "Sum": 10.0,
            "Scale": 0,
            "ZeroCount": 1,
            "PositiveOffset": 1,
            "PositiveBucketCounts": [0, 2],
            "Min": 0.0,
            "Max": 5.0,
        }
    ]
    assert cli.query("SELECT count(*) AS n FROM otel_metrics_summary") == [{"n": 0}]
