"""One demo journey written in each GenAI instrumentation convention aiobs reads.

The same support-chat refund conversation — retrieval, a model call that asks for two tools, the two
tool calls, the answer — as OTel GenAI (current), OpenInference, OpenLLMetry/Traceloop, the Vercel AI
SDK, and a Langfuse trace export. ``fixtures/conventions/`` holds the output; a test checks that the
semantic layer reads the same canonical facts (step kinds, models, tokens, tools, session, user,
prompt version) from every one, which is the promise of the semantic layer.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiobs.demo import catalogue as cat
from aiobs.demo.generate import _attrs  # the generator's OTLP attribute encoding

MS = 1_000_000
START_NS = int(datetime(2026, 11, 12, 15, 42, 7, tzinfo=UTC).timestamp()) * 1_000_000_000


@dataclass(frozen=True)
class Call:
    model: str  # request model
    response_model: str
    input_tokens: int
    output_tokens: int
    finish: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Journey:
    """The facts every rendering carries."""

    trace_id: str = "5e1f0c3a9b7d4e2f8a6c1b3d5f7e9a0c"
    session: str = "sess-3f9a2c71d0e4"
    user: str = "u10042"
    prompt_name: str = "support-system"
    prompt_version: str = "v6"
    question: str = "I was charged twice for order A-1187, please refund one of them"
    answer: str = (
        "I found two settled charges of $86.40 for order A-1187. I've refunded the duplicate "
        "(re_4c1d9e0a2b); it will be back on your card within 5-10 business days."
    )
    docs: tuple[tuple[str, float], ...] = (
        ("kb-refunds-duplicate", 0.86),
        ("kb-refunds-101", 0.79),
        ("kb-billing-cards", 0.31),
    )
    first: Call = Call("gpt-4.1", "gpt-4.1-2025-04-14", 1432, 61, "tool_calls", 212, 1090)
    tools: tuple[ToolCall, ...] = (
        ToolCall(
            "call_7Qb2x",
            "lookup_charge",
            {"order_id": "A-1187"},
            {"charges": [{"id": "ch_1", "amount": "86.40"}, {"id": "ch_2", "amount": "86.40"}]},
            1093,
            1231,
        ),
        ToolCall(
            "call_9Kd4m",
            "payments_refund",
            {"order_id": "A-1187", "amount": 86.4, "reason": "duplicate"},
            {"refund_id": "re_4c1d9e0a2b", "status": "pending"},
            1234,
            1518,
        ),
    )
    final: Call = Call("gpt-4.1", "gpt-4.1-2025-04-14", 1618, 54, "stop", 1521, 2654)
    retrieval_ms: tuple[int, int] = (64, 118)
    end_ms: int = 2660

    def t(self, ms: int) -> str:
        return str(START_NS + ms * MS)

    def span_id(self, n: int) -> str:
        return f"{0xA1B2C3D4E5F60000 + n:016x}"

    def context(self) -> str:
        return "\n".join(f"[{d}] {cat.HELP_CENTRE_BY_ID[d][2]}" for d, _ in self.docs)


J = Journey()
SYSTEM = cat.SYSTEM_PROMPTS[J.prompt_version]


def _span(
    n: int,
    parent: int | None,
    name: str,
    start_ms: int,
    end_ms: int,
    attrs: dict[str, Any],
    kind: int = 1,
) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": J.trace_id,
        "spanId": J.span_id(n),
        "name": name,
        "kind": kind,
        "startTimeUnixNano": J.t(start_ms),
        "endTimeUnixNano": J.t(end_ms),
        "attributes": _attrs(attrs),
        "status": {},
    }
    if parent is not None:
        span["parentSpanId"] = J.span_id(parent)
    return span


def _otlp(service: str, scope: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": _attrs(
                        {
                            "service.name": service,
                            "service.version": "2.3.0",
                            "deployment.environment.name": "prod",
                        }
                    )
                },
                "scopeSpans": [{"scope": {"name": scope}, "spans": spans}],
            }
        ]
    }


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"))


# --- OTel GenAI (current: gen_ai.input.messages / output.messages as JSON) -------------------------


def otel_genai() -> dict[str, Any]:
    user = {
        "role": "user",
        "parts": [
            {"type": "text", "content": f"{J.question}\n\nHelp-centre context:\n{J.context()}"}
        ],
    }
    asks = {
        "role": "assistant",
        "parts": [
            {"type": "tool_call", "id": c.call_id, "name": c.name, "arguments": c.arguments}
            for c in J.tools
        ],
        "finish_reason": "tool_calls",
    }
    replies = [
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": c.call_id, "response": c.result}],
        }
        for c in J.tools
    ]
    answer = {
        "role": "assistant",
        "parts": [{"type": "text", "content": J.answer}],
        "finish_reason": "stop",
    }

    def chat(n: int, call: Call, inputs: list[Any], output: dict[str, Any]) -> dict[str, Any]:
        return _span(
            n,
            0,
            f"chat {call.model}",
            call.start_ms,
            call.end_ms,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": call.model,
                "gen_ai.response.model": call.response_model,
                "gen_ai.response.finish_reasons": [call.finish],
                "gen_ai.usage.input_tokens": call.input_tokens,
                "gen_ai.usage.output_tokens": call.output_tokens,
                "gen_ai.prompt.name": J.prompt_name,
                "gen_ai.prompt.version": J.prompt_version,
                "gen_ai.conversation.id": J.session,
                "gen_ai.system_instructions": _dumps([{"type": "text", "content": SYSTEM}]),
                "gen_ai.input.messages": _dumps(inputs),
                "gen_ai.output.messages": _dumps([output]),
            },
            kind=3,
        )

    spans = [
        _span(
            0,
            None,
            "invoke_agent support-agent",
            0,
            J.end_ms,
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "support-agent",
                "gen_ai.conversation.id": J.session,
                "user.id": J.user,
            },
            kind=2,
        ),
        _span(
            1,
            0,
            "retrieval help-center",
            *J.retrieval_ms,
            {
                "gen_ai.operation.name": "retrieval",
                "gen_ai.data_source.id": "help-center",
                "gen_ai.retrieval.query.text": J.question,
                "gen_ai.retrieval.documents": _dumps([{"id": d, "score": s} for d, s in J.docs]),
            },
        ),
        chat(2, J.first, [user], asks),
        *(
            _span(
                3 + i,
                0,
                f"execute_tool {c.name}",
                c.start_ms,
                c.end_ms,
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": c.name,
                    "gen_ai.tool.call.id": c.call_id,
                    "gen_ai.tool.call.arguments": _dumps(c.arguments),
                    "gen_ai.tool.call.result": _dumps(c.result),
                },
            )
            for i, c in enumerate(J.tools)
        ),
        chat(5, J.final, [user, asks, *replies], answer),
    ]
    return _otlp("support-chat", "opentelemetry.instrumentation.genai", spans)


# --- OpenInference (flattened llm.* / retrieval.* / tool.*) ----------------------------------------------


def openinference() -> dict[str, Any]:
    common = {"session.id": J.session, "user.id": J.user}

    def llm(
        n: int, call: Call, messages: list[tuple[str, str]], output: dict[str, Any]
    ) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "openinference.span.kind": "LLM",
            "llm.model_name": call.response_model,
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.invocation_parameters": _dumps({"model": call.model, "temperature": 0.2}),
            "llm.token_count.prompt": call.input_tokens,
            "llm.token_count.completion": call.output_tokens,
            "llm.token_count.total": call.input_tokens + call.output_tokens,
            "llm.prompt_template.version": J.prompt_version,
            "prompt.id": J.prompt_name,
            "llm.finish_reason": call.finish,
            **common,
        }
        for i, (role, content) in enumerate(messages):
            attrs[f"llm.input_messages.{i}.message.role"] = role
            attrs[f"llm.input_messages.{i}.message.content"] = content
        attrs.update(output)
        return _span(n, 0, "ChatCompletion", call.start_ms, call.end_ms, attrs, kind=3)

    asks: dict[str, Any] = {"llm.output_messages.0.message.role": "assistant"}
    for i, c in enumerate(J.tools):
        prefix = f"llm.output_messages.0.message.tool_calls.{i}.tool_call"
        asks[f"{prefix}.id"] = c.call_id
        asks[f"{prefix}.function.name"] = c.name
        asks[f"{prefix}.function.arguments"] = _dumps(c.arguments)
    docs: dict[str, Any] = {}
    for i, (doc, score) in enumerate(J.docs):
        docs[f"retrieval.documents.{i}.document.id"] = doc
        docs[f"retrieval.documents.{i}.document.score"] = score
        docs[f"retrieval.documents.{i}.document.content"] = cat.HELP_CENTRE_BY_ID[doc][2]
    first_in = [
        ("system", SYSTEM),
        ("user", f"{J.question}\n\nHelp-centre context:\n{J.context()}"),
    ]
    spans = [
        _span(
            0,
            None,
            "support-agent",
            0,
            J.end_ms,
            {
                "openinference.span.kind": "AGENT",
                "agent.name": "support-agent",
                "input.value": J.question,
                "output.value": J.answer,
                **common,
            },
            kind=2,
        ),
        _span(
            1,
            0,
            "retrieve",
            *J.retrieval_ms,
            {"openinference.span.kind": "RETRIEVER", "input.value": J.question, **docs, **common},
        ),
        llm(2, J.first, first_in, asks),
        *(
            _span(
                3 + i,
                0,
                c.name,
                c.start_ms,
                c.end_ms,
                {
                    "openinference.span.kind": "TOOL",
                    "tool.name": c.name,
                    "input.value": _dumps(c.arguments),
                    "output.value": _dumps(c.result),
                    **common,
                },
            )
            for i, c in enumerate(J.tools)
        ),
        llm(
            5,
            J.final,
            [*first_in, *(("tool", _dumps(c.result)) for c in J.tools)],
            {
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": J.answer,
            },
        ),
    ]
    return _otlp("support-chat", "openinference.instrumentation.openai", spans)


# --- OpenLLMetry / Traceloop (traceloop.*, indexed gen_ai.prompt.N / completion.N) ---------------------


def openllmetry() -> dict[str, Any]:
    assoc = {
        "traceloop.association.properties.session_id": J.session,
        "traceloop.association.properties.user_id": J.user,
    }

    def chat(
        n: int, call: Call, prompts: list[tuple[str, str]], completion: dict[str, Any]
    ) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "llm.request.type": "chat",
            "gen_ai.system": "OpenAI",
            "gen_ai.request.model": call.model,
            "gen_ai.response.model": call.response_model,
            "gen_ai.usage.prompt_tokens": call.input_tokens,
            "gen_ai.usage.completion_tokens": call.output_tokens,
            "llm.usage.total_tokens": call.input_tokens + call.output_tokens,
            "traceloop.prompt.key": J.prompt_name,
            "traceloop.prompt.version": J.prompt_version,
            **assoc,
        }
        for i, (role, content) in enumerate(prompts):
            attrs[f"gen_ai.prompt.{i}.role"] = role
            attrs[f"gen_ai.prompt.{i}.content"] = content
        attrs["gen_ai.completion.0.role"] = "assistant"
        attrs["gen_ai.completion.0.finish_reason"] = call.finish
        attrs.update(completion)
        return _span(n, 0, "openai.chat", call.start_ms, call.end_ms, attrs, kind=3)

    asks: dict[str, Any] = {}
    for i, c in enumerate(J.tools):
        asks[f"gen_ai.completion.0.tool_calls.{i}.id"] = c.call_id
        asks[f"gen_ai.completion.0.tool_calls.{i}.name"] = c.name
        asks[f"gen_ai.completion.0.tool_calls.{i}.arguments"] = _dumps(c.arguments)
    first_in = [
        ("system", SYSTEM),
        ("user", f"{J.question}\n\nHelp-centre context:\n{J.context()}"),
    ]
    spans = [
        _span(
            0,
            None,
            "support_agent.workflow",
            0,
            J.end_ms,
            {
                "traceloop.span.kind": "workflow",
                "traceloop.workflow.name": "support_agent",
                "traceloop.entity.name": "support_agent",
                "traceloop.entity.input": _dumps({"message": J.question}),
                "traceloop.entity.output": _dumps(J.answer),
                **assoc,
            },
            kind=2,
        ),
        _span(
            1,
            0,
            "qdrant.search",
            *J.retrieval_ms,
            {
                "db.system": "qdrant",
                "db.operation": "search",
                "db.qdrant.search.collection_name": "help_center",
                "db.vector.query.top_k": 3,
                **assoc,
            },
            kind=3,
        ),
        chat(2, J.first, first_in, asks),
        *(
            _span(
                3 + i,
                0,
                f"{c.name}.tool",
                c.start_ms,
                c.end_ms,
                {
                    "traceloop.span.kind": "tool",
                    "traceloop.entity.name": c.name,
                    "traceloop.entity.input": _dumps(c.arguments),
                    "traceloop.entity.output": _dumps(c.result),
                    "traceloop.workflow.name": "support_agent",
                    **assoc,
                },
            )
            for i, c in enumerate(J.tools)
        ),
        chat(
            5,
            J.final,
            [*first_in, *(("tool", _dumps(c.result)) for c in J.tools)],
            {"gen_ai.completion.0.content": J.answer},
        ),
    ]
    return _otlp("support-chat", "opentelemetry.instrumentation.openai.v1", spans)


# --- Vercel AI SDK (ai.generateText wrapping doGenerate calls and tool calls) -------------------------


def vercel_ai() -> dict[str, Any]:
    meta = {
        "ai.telemetry.functionId": "support-agent",
        "ai.telemetry.metadata.sessionId": J.session,
        "ai.telemetry.metadata.userId": J.user,
    }
    total_in = J.first.input_tokens + J.final.input_tokens
    total_out = J.first.output_tokens + J.final.output_tokens

    def do_generate(n: int, call: Call, extra: dict[str, Any]) -> dict[str, Any]:
        finish = "tool-calls" if call.finish == "tool_calls" else call.finish
        return _span(
            n,
            0,
            "ai.generateText.doGenerate",
            call.start_ms,
            call.end_ms,
            {
                "operation.name": "ai.generateText.doGenerate support-agent",
                "ai.operationId": "ai.generateText.doGenerate",
                "ai.model.provider": "openai.chat",
                "ai.model.id": call.model,
                "ai.response.model": call.response_model,
                "ai.response.finishReason": finish,
                "ai.usage.promptTokens": call.input_tokens,
                "ai.usage.completionTokens": call.output_tokens,
                "gen_ai.system": "openai.chat",
                "gen_ai.request.model": call.model,
                "gen_ai.response.model": call.response_model,
                "gen_ai.response.finish_reasons": [finish],
                "gen_ai.usage.input_tokens": call.input_tokens,
                "gen_ai.usage.output_tokens": call.output_tokens,
                **extra,
                **meta,
            },
            kind=3,
        )

    prompt = _dumps(
        [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"{J.question}\n\nHelp-centre context:\n{J.context()}"}
                ],
            },
        ]
    )
    spans = [
        _span(
            0,
            None,
            "ai.generateText",
            0,
            J.end_ms,
            {
                "operation.name": "ai.generateText support-agent",
                "ai.operationId": "ai.generateText",
                "ai.model.provider": "openai.chat",
                "ai.model.id": "gpt-4.1",
                "ai.prompt": _dumps({"system": SYSTEM, "prompt": J.question}),
                "ai.response.text": J.answer,
                "ai.response.finishReason": "stop",
                "ai.usage.promptTokens": total_in,
                "ai.usage.completionTokens": total_out,
                **meta,
            },
            kind=2,
        ),
        _span(
            1,
            0,
            "retrieve help-center",
            *J.retrieval_ms,
            {"app.retrieval.documents": _dumps([{"id": d, "score": s} for d, s in J.docs]), **meta},
        ),
        do_generate(
            2,
            J.first,
            {
                "ai.prompt.messages": prompt,
                "ai.response.toolCalls": _dumps(
                    [
                        {
                            "toolCallType": "function",
                            "toolCallId": c.call_id,
                            "toolName": c.name,
                            "args": _dumps(c.arguments),
                        }
                        for c in J.tools
                    ]
                ),
            },
        ),
        *(
            _span(
                3 + i,
                0,
                "ai.toolCall",
                c.start_ms,
                c.end_ms,
                {
                    "operation.name": "ai.toolCall support-agent",
                    "ai.operationId": "ai.toolCall",
                    "ai.toolCall.name": c.name,
                    "ai.toolCall.id": c.call_id,
                    "ai.toolCall.args": _dumps(c.arguments),
                    "ai.toolCall.result": _dumps(c.result),
                    **meta,
                },
            )
            for i, c in enumerate(J.tools)
        ),
        do_generate(5, J.final, {"ai.prompt.messages": prompt, "ai.response.text": J.answer}),
    ]
    return _otlp("support-chat", "ai", spans)


# --- Langfuse trace export (observations created with the Langfuse SDK) ---------------------------------


def langfuse_export() -> dict[str, Any]:
    def iso(ms: int) -> str:
        t = datetime.fromtimestamp((START_NS + ms * MS) / 1e9, UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

    def obs(
        n: int, parent: int | None, kind: str, name: str, start: int, end: int, **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": f"obs-{n:02d}",
            "traceId": J.trace_id,
            "parentObservationId": None if parent is None else f"obs-{parent:02d}",
            "type": kind,
            "name": name,
            "startTime": iso(start),
            "endTime": iso(end),
            "level": "DEFAULT",
            "statusMessage": None,
            "metadata": {},
            **extra,
        }

    def generation(n: int, call: Call, output: Any) -> dict[str, Any]:
        return obs(
            n,
            0,
            "GENERATION",
            "chat",
            call.start_ms,
            call.end_ms,
            model=call.response_model,
            modelParameters={"temperature": 0.2},
            usageDetails={
                "input": call.input_tokens,
                "output": call.output_tokens,
                "total": call.input_tokens + call.output_tokens,
            },
            promptName=J.prompt_name,
            promptVersion=J.prompt_version,
            input=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": J.question}],
            output=output,
        )

    return {
        "trace": {
            "id": J.trace_id,
            "name": "support-agent",
            "timestamp": iso(0),
            "userId": J.user,
            "sessionId": J.session,
            "release": "2.3.0",
            "environment": "prod",
            "input": J.question,
            "output": J.answer,
            "tags": ["support-chat"],
        },
        "observations": [
            obs(0, None, "AGENT", "support-agent", 0, J.end_ms, input=J.question, output=J.answer),
            obs(
                1,
                0,
                "RETRIEVER",
                "retrieve help-center",
                *J.retrieval_ms,
                input=J.question,
                output=[{"id": d, "score": s} for d, s in J.docs],
            ),
            generation(
                2,
                J.first,
                {
                    "tool_calls": [
                        {"id": c.call_id, "name": c.name, "arguments": c.arguments} for c in J.tools
                    ]
                },
            ),
            *(
                obs(
                    3 + i,
                    0,
                    "TOOL",
                    c.name,
                    c.start_ms,
                    c.end_ms,
                    input=c.arguments,
                    output=c.result,
                )
                for i, c in enumerate(J.tools)
            ),
            generation(5, J.final, J.answer),
        ],
    }


# file name -> renderer
RENDERINGS: dict[str, Callable[[], dict[str, Any]]] = {
    "otel-genai.otlp.json": otel_genai,
    "openinference.otlp.json": openinference,
    "openllmetry.otlp.json": openllmetry,
    "vercel-ai.otlp.json": vercel_ai,
    "langfuse.trace.json": langfuse_export,
}


def render_all() -> dict[str, bytes]:
    """File name -> bytes (pretty-printed JSON, as a person would commit it)."""
    return {name: (json.dumps(fn(), indent=1) + "\n").encode() for name, fn in RENDERINGS.items()}
