"""Content of one step, normalised across conventions: messages, tool calls, documents, handoffs.

The SQL side of the semantic layer (``fields.py``) gives scalar fields for every span; this module
reads the bulky, nested content that is only worth parsing when one trace is rendered (replay,
describe, export). Sources, in order of preference:

- messages: OTel GenAI current (``gen_ai.input.messages``/``output.messages``/``system_instructions``,
  on the span or on a ``gen_ai.client.inference.operation.details`` event), GenAI v1.27–1.36 message
  events (``gen_ai.user.message`` … ``gen_ai.choice``), the oldest ``gen_ai.content.prompt``/
  ``completion`` events, OpenLLMetry's indexed ``gen_ai.prompt.N.*``/``gen_ai.completion.N.*``,
  OpenInference's ``llm.input_messages.N.*``/``llm.output_messages.N.*``, the Vercel AI SDK's
  ``ai.prompt.messages``/``ai.response.*``, Langfuse's observation input/output;
- tool calls: ``gen_ai.tool.call.*``, OpenInference ``input.value``/``output.value``, Vercel
  ``ai.toolCall.*``, Traceloop ``traceloop.entity.input/output``, Langfuse input/output;
- retrieval: ``gen_ai.retrieval.*``, OpenInference ``retrieval.documents.N.document.*``, Langfuse.

Every function takes plain dicts and never raises on malformed content: telemetry is untrusted, so
unparseable JSON is shown as the text it is.

Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

Attrs = Mapping[str, str]


@dataclass
class ToolCallRef:
    id: str | None
    name: str | None
    arguments: Any


@dataclass
class Message:
    role: str
    content: str = ""
    tool_calls: list[ToolCallRef] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    finish_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: v for k, v in out.items() if v not in (None, [], "") or k in ("role", "content")}


@dataclass
class Document:
    id: str | None
    score: float | None
    content: str | None


@dataclass
class Event:
    name: str
    time_ns: int
    attributes: dict[str, str]


# --- helpers -------------------------------------------------------------------------------------


def parse_json(text: Any) -> Any:
    """``text`` decoded as JSON if it is a JSON object or array, else unchanged (scalars stay the
    text they were: ``"86.40"`` must not become ``86.4``)."""
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return text
    import orjson  # a third of the time judging an answer was json.loads of its messages

    try:
        return orjson.loads(stripped)
    except ValueError:
        pass
    try:  # what orjson refuses and json takes: NaN, integers past 64 bits, lone surrogates
        return json.loads(stripped)
    except ValueError:
        return text


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@functools.cache
def _indexed_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + r"\.(\d+)\.(.+)$")


def _indexed(attrs: Attrs, prefix: str) -> dict[int, dict[str, str]]:
    """``prefix.N.rest`` keys grouped by N: {N: {rest: value}}."""
    pattern = _indexed_pattern(prefix)
    out: dict[int, dict[str, str]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        m = pattern.match(key)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return dict(sorted(out.items()))


_INDEXED_KEY = re.compile(r"(.+?)\.(\d+)\.(.+)$")
Index = dict[str, dict[int, dict[str, str]]]


def _index(attrs: Attrs) -> Index:
    """Every ``prefix.N.rest`` key of a span in one pass, by prefix (split at the first
    numeric segment): {prefix: {N: {rest: value}}}, each prefix's groups in index order. What
    ``_indexed`` gives for each prefix, for the price of one scan of the keys instead of one
    per convention tried (a span has ~26 keys; messages tried up to eight prefixes)."""
    out: Index = {}
    for key, value in attrs.items():
        m = _INDEXED_KEY.match(key)
        if m:
            out.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})[m.group(3)] = value
    return {prefix: dict(sorted(groups.items())) for prefix, groups in out.items()}


def _first(attrs: Attrs, *keys: str) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if value not in (None, ""):
            return value
    return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --- messages ------------------------------------------------------------------------------------------


def _genai_parts(parts: Any) -> tuple[str, list[ToolCallRef], str | None]:
    """OTel GenAI message parts -> (text, tool calls, tool_call_id of a tool response)."""
    if isinstance(parts, str):
        return parts, [], None
    texts: list[str] = []
    calls: list[ToolCallRef] = []
    response_id = None
    for part in parts if isinstance(parts, list) else [parts]:
        if not isinstance(part, dict):
            texts.append(as_text(part))
            continue
        kind = part.get("type")
        if kind == "tool_call":
            calls.append(ToolCallRef(part.get("id"), part.get("name"), part.get("arguments")))
        elif kind == "tool_call_response":
            response_id = part.get("id")
            texts.append(as_text(part.get("response", part.get("result"))))
        elif kind == "reasoning":
            texts.append(f"[reasoning] {as_text(part.get('content'))}")
        elif kind in ("blob", "file", "uri"):
            what = part.get("mime_type") or part.get("modality") or kind
            ref = part.get("uri") or part.get("file_id") or ""
            texts.append(f"[{kind} {what}{' ' + ref if ref else ''}]")
        else:
            texts.append(as_text(part.get("content", part.get("text", part))))
    return "\n".join(t for t in texts if t), calls, response_id


def _genai_messages(value: Any) -> list[Message]:
    data = parse_json(value)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return [Message("unknown", as_text(data))] if data else []
    out = []
    for m in data:
        if not isinstance(m, dict):
            out.append(Message("unknown", as_text(m)))
            continue
        role = str(m.get("role") or "unknown")
        parts = m.get("parts")
        listed: list[Any] = parts if isinstance(parts, list) else []
        responses = [
            p for p in listed if isinstance(p, dict) and p.get("type") == "tool_call_response"
        ]
        if len(responses) > 1:
            # Parallel tool results in one message: one message each, so every result keeps
            # its call id (and the tool's name when the part gives it).
            rest = [p for p in listed if not any(p is r for r in responses)]
            text, calls, _ = _genai_parts(rest)
            if text or calls:
                out.append(Message(role, text, calls, None, m.get("name")))
            for part in responses:
                text, _, response_id = _genai_parts([part])
                out.append(Message(role, text, [], response_id, part.get("name") or m.get("name")))
            continue
        if "parts" in m:
            text, calls, response_id = _genai_parts(parts)
        else:  # {role, content, tool_calls} (older events, Langfuse, OpenAI-style)
            text, calls, response_id = _openai_style(m)
        out.append(
            Message(
                role,
                text,
                calls,
                m.get("tool_call_id") or response_id,
                m.get("name"),
                m.get("finish_reason"),
            )
        )
    return out


def _openai_style(m: dict[str, Any]) -> tuple[str, list[ToolCallRef], str | None]:
    """``{role, content, tool_calls}`` messages; content as a string or a list of parts
    (``text``, Vercel/Anthropic ``tool-call``/``tool_use``, ``tool-result``)."""
    content = m.get("content")
    texts: list[str] = []
    calls: list[ToolCallRef] = []
    response_id = None
    for part in content if isinstance(content, list) else [content]:
        if not isinstance(part, dict):
            texts.append(as_text(part))
        elif part.get("type") in ("tool-call", "tool_call", "tool_use"):
            calls.append(
                ToolCallRef(
                    part.get("toolCallId") or part.get("id"),
                    part.get("toolName") or part.get("name"),
                    parse_json(part.get("args", part.get("input", part.get("arguments")))),
                )
            )
        elif part.get("type") in ("tool-result", "tool_result"):
            response_id = part.get("toolCallId") or part.get("tool_use_id")
            texts.append(as_text(part.get("result", part.get("output", part.get("content")))))
        else:
            texts.append(as_text(part.get("text", part.get("content", part))))
    for tc in m.get("tool_calls") or []:
        if isinstance(tc, dict):
            fn: dict[str, Any] = tc["function"] if isinstance(tc.get("function"), dict) else {}
            calls.append(
                ToolCallRef(
                    tc.get("id"),
                    tc.get("name") or fn.get("name"),
                    parse_json(tc.get("arguments", fn.get("arguments"))),
                )
            )
    return "\n".join(t for t in texts if t), calls, response_id


def _system_instructions(value: Any) -> list[Message]:
    data = parse_json(value)
    text, _, _ = _genai_parts(data if isinstance(data, list) else [data])
    return [Message("system", text)] if text else []


def _indexed_messages(groups: dict[int, dict[str, str]], role_default: str) -> list[Message]:
    """OpenLLMetry ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``."""
    out = []
    for _, g in groups.items():
        calls = [
            ToolCallRef(tc.get("id"), tc.get("name"), parse_json(tc.get("arguments")))
            for _, tc in _indexed(g, "tool_calls").items()
        ]
        text = g.get("content", "")
        if not calls:
            # JetBrains Koog writes a message's tool calls as its content, OpenAI-style JSON:
            # [{"id", "type": "function", "function": {"name", "arguments"}}].
            calls = _function_calls(text)
            text = "" if calls else text
        out.append(
            Message(
                g.get("role") or role_default,
                text,
                calls,
                g.get("tool_call_id"),
                None,
                g.get("finish_reason"),
            )
        )
    return out


def _function_calls(text: str) -> list[ToolCallRef]:
    """``text`` as OpenAI-style tool calls if it is exactly a JSON list of them, else none."""
    data = parse_json(text)
    if not isinstance(data, list) or not data:
        return []
    if not all(isinstance(c, dict) and isinstance(c.get("function"), dict) for c in data):
        return []
    return [
        ToolCallRef(
            c.get("id"), c["function"].get("name"), parse_json(c["function"].get("arguments"))
        )
        for c in data
    ]


def _openinference_messages(groups: dict[int, dict[str, str]]) -> list[Message]:
    out = []
    for g in groups.values():
        text = g.get("message.content", "")
        if not text:
            parts = _indexed(g, "message.contents")
            text = "\n".join(p.get("message_content.text", "") for p in parts.values())
        calls = [
            ToolCallRef(
                tc.get("tool_call.id"),
                tc.get("tool_call.function.name"),
                parse_json(tc.get("tool_call.function.arguments")),
            )
            for tc in _indexed(g, "message.tool_calls").values()
        ]
        out.append(
            Message(
                g.get("message.role", "unknown"),
                text,
                calls,
                g.get("message.tool_call_id"),
                g.get("message.name"),
            )
        )
    return out


_GENAI_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def messages(attrs: Attrs, events: Sequence[Event] = ()) -> tuple[list[Message], list[Message]]:
    """(input messages incl. system, output messages) of an LLM step, from whichever convention
    the span uses."""
    details = next(
        (e.attributes for e in events if e.name == "gen_ai.client.inference.operation.details"), {}
    )
    source = (
        attrs if "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs else details
    )
    if "gen_ai.input.messages" in source or "gen_ai.output.messages" in source:
        inputs = (
            _system_instructions(source.get("gen_ai.system_instructions"))
            if source.get("gen_ai.system_instructions")
            else []
        )
        inputs += _genai_messages(source.get("gen_ai.input.messages"))
        return inputs, _genai_messages(source.get("gen_ai.output.messages"))

    event_inputs: list[Message] = []
    event_outputs: list[Message] = []
    for e in events:
        if e.name in _GENAI_EVENT_ROLES:
            body = parse_json(
                e.attributes.get("gen_ai.event.content") or e.attributes.get("content")
            )
            m = body if isinstance(body, dict) else {"content": body}
            text, calls, _ = _openai_style(m)
            event_inputs.append(
                Message(
                    _GENAI_EVENT_ROLES[e.name], text, calls, m.get("id") or e.attributes.get("id")
                )
            )
        elif e.name == "gen_ai.choice":
            body = parse_json(
                e.attributes.get("gen_ai.event.content") or e.attributes.get("message")
            )
            m = body.get("message", body) if isinstance(body, dict) else {"content": body}
            text, calls, _ = _openai_style(m if isinstance(m, dict) else {"content": m})
            finish = body.get("finish_reason") if isinstance(body, dict) else None
            event_outputs.append(
                Message(
                    "assistant",
                    text,
                    calls,
                    None,
                    None,
                    finish or e.attributes.get("finish_reason"),
                )
            )
        elif e.name == "gen_ai.content.prompt":
            event_inputs += _genai_messages(e.attributes.get("gen_ai.prompt"))
        elif e.name == "gen_ai.content.completion":
            event_outputs += _genai_messages(e.attributes.get("gen_ai.completion"))
    if event_inputs or event_outputs:
        return event_inputs, event_outputs

    index = _index(attrs)
    prompt_groups = index.get("gen_ai.prompt", {})
    completion_groups = index.get("gen_ai.completion", {})
    if prompt_groups or completion_groups:
        return (
            _indexed_messages(prompt_groups, "user"),
            _indexed_messages(completion_groups, "assistant"),
        )
    if attrs.get("gen_ai.prompt") or attrs.get("gen_ai.completion"):
        # Older OTel GenAI: the prompt and completion as plain span attributes (what the oldest
        # events carried), a string or a JSON list of messages.
        return (
            _plain_side(attrs.get("gen_ai.prompt"), "user"),
            _plain_side(attrs.get("gen_ai.completion"), "assistant"),
        )
    if "llm.input_messages" in index or "llm.output_messages" in index:
        return (
            _openinference_messages(index.get("llm.input_messages", {})),
            _openinference_messages(index.get("llm.output_messages", {})),
        )
    if "llm.prompts" in index:
        prompts = [Message("user", g.get("prompt.text", "")) for g in index["llm.prompts"].values()]
        choices = [
            Message("assistant", g.get("completion.text", ""))
            for g in index.get("llm.choices", {}).values()
        ]
        return prompts, choices
    if (
        "ai.prompt.messages" in attrs
        or "ai.response.text" in attrs
        or "ai.response.toolCalls" in attrs
    ):
        inputs = (
            _genai_messages(attrs.get("ai.prompt.messages"))
            if attrs.get("ai.prompt.messages")
            else []
        )
        calls = parse_json(attrs.get("ai.response.toolCalls"))
        refs = [
            ToolCallRef(
                c.get("toolCallId"), c.get("toolName"), parse_json(c.get("args", c.get("input")))
            )
            for c in (calls if isinstance(calls, list) else [])
            if isinstance(c, dict)
        ]
        text = attrs.get("ai.response.text", "")
        outputs = (
            [Message("assistant", text, refs, None, None, attrs.get("ai.response.finishReason"))]
            if text or refs
            else []
        )
        return inputs, outputs
    if "langfuse.observation.input" in attrs or "langfuse.observation.output" in attrs:
        return _langfuse_side(attrs.get("langfuse.observation.input"), "user"), _langfuse_side(
            attrs.get("langfuse.observation.output"), "assistant"
        )
    if "input.value" in attrs or "output.value" in attrs:
        return _langfuse_side(attrs.get("input.value"), "user"), _langfuse_side(
            attrs.get("output.value"), "assistant"
        )
    return [], []


def _plain_side(value: Any, role: str) -> list[Message]:
    """A plain ``gen_ai.prompt``/``gen_ai.completion`` value: JSON messages when it parses as
    such, else one ``role`` message with the text."""
    if value in (None, ""):
        return []
    data = parse_json(value)
    if isinstance(data, list) and data and all(isinstance(m, dict) and "role" in m for m in data):
        return _genai_messages(data)
    return [Message(role, as_text(value))]


def _langfuse_side(value: Any, role: str) -> list[Message]:
    data = parse_json(value)
    if data in (None, ""):
        return []
    if isinstance(data, list) and all(isinstance(m, dict) and "role" in m for m in data):
        return _genai_messages(data)
    if isinstance(data, dict) and "role" in data:
        return _genai_messages([data])
    if isinstance(data, dict) and "tool_calls" in data:
        text, calls, _ = _openai_style(
            {"content": data.get("content"), "tool_calls": data["tool_calls"]}
        )
        return [Message(role, text, calls)]
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        return _genai_messages(data["messages"])
    return [Message(role, as_text(data))]


# --- tools, retrieval, handoffs ---------------------------------------------------------------------------


def tool_call(attrs: Attrs) -> dict[str, Any]:
    """{name, call_id, arguments, result} of a tool step (values parsed from JSON when they are)."""
    return {
        "name": _first(
            attrs, "gen_ai.tool.name", "tool.name", "ai.toolCall.name", "traceloop.entity.name"
        ),
        "call_id": _first(
            attrs, "gen_ai.tool.call.id", "tool.id", "ai.toolCall.id", "tool_call.id"
        ),
        "arguments": parse_json(
            _first(
                attrs,
                "gen_ai.tool.call.arguments",
                "gen_ai.tool.input",
                "ai.toolCall.args",
                "ai.toolCall.input",
                "tool.parameters_value",
                "input.value",
                "traceloop.entity.input",
                "langfuse.observation.input",
            )
        ),
        "result": parse_json(
            _first(
                attrs,
                "gen_ai.tool.call.result",
                "gen_ai.tool.output",
                "ai.toolCall.result",
                "ai.toolCall.output",
                "output.value",
                "traceloop.entity.output",
                "langfuse.observation.output",
            )
        ),
    }


def _doc(d: Any) -> Document:
    if not isinstance(d, dict):
        return Document(None, None, as_text(d))
    content = d.get("content", d.get("text", d.get("snippet", d.get("page_content"))))
    return Document(
        as_text(d.get("id", d.get("document_id")))
        if d.get("id", d.get("document_id")) is not None
        else None,
        _float(d.get("score", d.get("relevance_score"))),
        None if content is None else as_text(content),
    )


def retrieval(attrs: Attrs) -> dict[str, Any]:
    """{query, documents: [{id, score, content}]} of a retrieval (or rerank) step."""
    query = _first(
        attrs,
        "gen_ai.retrieval.query.text",
        "input.value",
        "reranker.query",
        "langfuse.observation.input",
    )
    return {"query": query, "documents": [asdict(d) for d in documents(attrs)]}


def documents(attrs: Attrs) -> list[Document]:
    """The documents a retrieval (or rerank) step found, in its order."""
    docs: list[Document] = []
    raw = attrs.get("gen_ai.retrieval.documents")
    if raw:
        data = parse_json(raw)
        docs = [_doc(d) for d in (data if isinstance(data, list) else [data])]
    if not docs:
        for prefix in ("retrieval.documents", "reranker.output_documents"):
            for g in _indexed(attrs, prefix).values():
                docs.append(
                    Document(
                        g.get("document.id"),
                        _float(g.get("document.score")),
                        g.get("document.content"),
                    )
                )
            if docs:
                break
    if not docs and attrs.get("langfuse.observation.output"):
        data = parse_json(attrs["langfuse.observation.output"])
        if isinstance(data, list):
            docs = [_doc(d) for d in data]
        elif isinstance(data, dict) and isinstance(data.get("documents"), list):
            docs = [_doc(d) for d in data["documents"]]
    return docs


def handoff(attrs: Attrs, name: str) -> dict[str, Any]:
    target = _first(attrs, "handoff.target", "handoff.to", "to_agent", "gen_ai.agent.name")
    if target is None and name.lower().startswith("handoff"):
        target = name.split(None, 1)[1] if " " in name else None
    return {
        "target": target,
        "queue": _first(attrs, "handoff.queue"),
        "reason": _first(attrs, "handoff.reason"),
        "ticket": _first(attrs, "handoff.ticket.id"),
    }


def http(attrs: Attrs) -> dict[str, Any]:
    return {
        "method": _first(attrs, "http.request.method", "http.method"),
        "target": _first(attrs, "url.full", "http.url", "http.route", "url.path", "http.target"),
        "status_code": _first(attrs, "http.response.status_code", "http.status_code"),
        "server": _first(attrs, "server.address", "net.peer.name"),
    }


def db(attrs: Attrs) -> dict[str, Any]:
    return {
        "system": _first(attrs, "db.system.name", "db.system"),
        "operation": _first(attrs, "db.operation.name", "db.operation"),
        "collection": _first(attrs, "db.collection.name", "db.qdrant.search.collection_name"),
        "query": _first(attrs, "db.query.text", "db.statement"),
        "server": _first(attrs, "server.address"),
    }


def guardrail(attrs: Attrs) -> dict[str, Any]:
    return {
        "name": _first(attrs, "guardrail.name", "gen_ai.guardrail.name"),
        "decision": _first(attrs, "guardrail.decision", "gen_ai.guardrail.decision"),
        "categories": _first(attrs, "guardrail.categories"),
    }


def step_input_output(attrs: Attrs) -> dict[str, Any]:
    """Generic input/output of agent and chain steps."""
    return {
        "input": parse_json(
            _first(
                attrs,
                "input.value",
                "traceloop.entity.input",
                "langfuse.observation.input",
                "ai.prompt",
            )
        ),
        "output": parse_json(
            _first(
                attrs,
                "output.value",
                "traceloop.entity.output",
                "langfuse.observation.output",
                "ai.response.text",
                "final_result",  # pydantic-ai's agent run
            )
        ),
    }
