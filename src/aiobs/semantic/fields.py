"""Canonical AI fields, each defined once, rendered to SQL (for the views) and to Python (for content).

Real telemetry speaks several dialects at once (OTel GenAI current and legacy, OpenInference,
OpenLLMetry/Traceloop, Langfuse, Vercel ``ai.*``). Each canonical field is an ordered list of source
attributes and a transform, written in the tiny expression language below. ``to_sql`` renders an
expression for DuckDB (or ClickHouse) over an ``otel_traces`` row; ``evaluate`` computes the same
value in Python from a span dict. Tests check that the three agree. Precedence follows Langfuse's tested mapper (FORMATS.md §5).

Empty strings count as missing everywhere (ClickHouse returns ``''`` for a missing map key, DuckDB
NULL: both become NULL here).

Must not import duckdb, polars, typer, rich or textual.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# --------------------------------------------------------------------------------------------- IR


class Expr:
    """A canonical-field expression. Subclasses are frozen dataclasses."""


@dataclass(frozen=True)
class Attr(Expr):
    """A span (or resource) attribute, ``''`` treated as missing."""

    key: str
    scope: Literal["span", "resource"] = "span"


@dataclass(frozen=True)
class Column(Expr):
    """A raw ``otel_traces`` column (string-valued), ``''`` treated as missing."""

    name: str


@dataclass(frozen=True)
class EventAttr(Expr):
    """Attribute ``key`` of the first span event named ``event`` (e.g. ``exception``)."""

    event: str
    key: str


@dataclass(frozen=True)
class JsonPath(Expr):
    """A scalar inside a JSON-encoded value, e.g. Langfuse's ``usage_details`` → ``input``."""

    inner: Expr
    path: str  # dotted keys, no wildcards


@dataclass(frozen=True)
class First(Expr):
    """The first option that is present (after the field's type cast)."""

    options: tuple[Expr, ...]


@dataclass(frozen=True)
class Lookup(Expr):
    """Map the (lower-cased) value through a table; unmapped values are missing."""

    inner: Expr
    table: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Present(Expr):
    """``value`` when ``inner`` is present, else missing."""

    inner: Expr
    value: str


@dataclass(frozen=True)
class When(Expr):
    """``then`` when ``test`` (lower-cased) equals ``equals``, else missing — for attributes whose
    meaning depends on another, like OpenLLMetry's ``traceloop.entity.name`` on a tool span."""

    test: Expr
    equals: str
    then: Expr


@dataclass(frozen=True)
class KindGate(Expr):
    """``then`` when ``test`` (lower-cased; missing counts as ``''``) is one of ``kinds``, else
    missing; with ``negate``, when it is none of them. Applied outside the field's type cast, so
    ``then`` keeps its own precedence (a ``First`` still falls through to its next option)."""

    test: Expr
    kinds: tuple[str, ...]
    then: Expr
    negate: bool = False


@dataclass(frozen=True)
class NamePrefix(Expr):
    """``value`` when the span name starts with ``prefix`` (case-insensitive)."""

    prefix: str
    value: str


@dataclass(frozen=True)
class Lower(Expr):
    inner: Expr


@dataclass(frozen=True)
class Length(Expr):
    """Length of the text in characters (code points), as a number."""

    inner: Expr


@dataclass(frozen=True)
class Token(Expr):
    """Lower-cased with ``-`` as ``_``: one spelling for enum-like values (Vercel's ``tool-calls``
    is everyone else's ``tool_calls``)."""

    inner: Expr


@dataclass(frozen=True)
class Const(Expr):
    value: str


FieldType = Literal["VARCHAR", "BIGINT", "DOUBLE"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    expr: Expr
    doc: str


# ------------------------------------------------------------------------------------ definitions

STEP_KINDS = (
    "llm",
    "embedding",
    "retrieval",
    "rerank",
    "tool",
    "agent",
    "chain",
    "guardrail",
    "evaluator",
    "handoff",
    "http",
    "db",
    "other",
)

# Model attribute precedence (Langfuse's order, then OpenInference's embedding model).
MODEL_KEYS = (
    "langfuse.observation.model.name",
    "gen_ai.response.model",
    "ai.model.id",
    "gen_ai.request.model",
    "llm.response.model",
    "llm.model_name",
    "llm.request.model_name",
    "llm.response.model_name",
    "model",
    "embedding.model_name",
)


def _attrs(*keys: str) -> tuple[Expr, ...]:
    return tuple(Attr(k) for k in keys)


def _table(**pairs: str) -> tuple[tuple[str, str], ...]:
    return tuple((k.replace("__", "."), v) for k, v in pairs.items())


_LANGFUSE_TYPE = (
    ("generation", "llm"),
    ("embedding", "embedding"),
    ("agent", "agent"),
    ("tool", "tool"),
    ("chain", "chain"),
    ("retriever", "retrieval"),
    ("guardrail", "guardrail"),
    ("evaluator", "evaluator"),
    ("event", "other"),
)
_OPENINFERENCE_KIND = (
    ("llm", "llm"),
    ("embedding", "embedding"),
    ("chain", "chain"),
    ("retriever", "retrieval"),
    ("reranker", "rerank"),
    ("tool", "tool"),
    ("agent", "agent"),
    ("guardrail", "guardrail"),
    ("evaluator", "evaluator"),
    ("prompt", "chain"),
)
_GENAI_OPERATION = (
    ("chat", "llm"),
    ("text_completion", "llm"),
    ("completion", "llm"),
    ("generate_content", "llm"),
    ("generate", "llm"),
    ("embeddings", "embedding"),
    ("embedding", "embedding"),
    ("retrieval", "retrieval"),
    ("search_memory", "retrieval"),
    ("rerank", "rerank"),
    ("execute_tool", "tool"),
    ("invoke_agent", "agent"),
    ("create_agent", "agent"),
    ("plan", "agent"),
    ("invoke_workflow", "chain"),
    ("handoff", "handoff"),
    ("apply_guardrail", "guardrail"),
    ("evaluate", "evaluator"),
)
# Vercel AI SDK: the outer ai.generateText/streamText spans wrap the real provider calls
# (``….doGenerate``/``….doStream``) and tool calls, and repeat the callee's usage — classing them as
# llm would count every call and token twice.
_VERCEL_OPERATION = (
    ("ai.generatetext.dogenerate", "llm"),
    ("ai.streamtext.dostream", "llm"),
    ("ai.generateobject.dogenerate", "llm"),
    ("ai.streamobject.dostream", "llm"),
    ("ai.generatetext", "agent"),
    ("ai.streamtext", "agent"),
    ("ai.generateobject", "agent"),
    ("ai.streamobject", "agent"),
    ("ai.embed.doembed", "embedding"),
    ("ai.embedmany.doembed", "embedding"),
    ("ai.embed", "chain"),
    ("ai.embedmany", "chain"),
    ("ai.toolcall", "tool"),
)
_TRACELOOP_KIND = (
    ("workflow", "chain"),
    ("task", "chain"),
    ("agent", "agent"),
    ("tool", "tool"),
)
_LLM_REQUEST_TYPE = (
    ("chat", "llm"),
    ("completion", "llm"),
    ("embedding", "embedding"),
    ("rerank", "rerank"),
)

STEP_KIND = Field(
    "step_kind",
    "VARCHAR",
    First(
        (
            Lookup(Attr("langfuse.observation.type"), _LANGFUSE_TYPE),
            Lookup(Attr("openinference.span.kind"), _OPENINFERENCE_KIND),
            Lookup(Attr("gen_ai.operation.name"), _GENAI_OPERATION),
            Lookup(Attr("ai.operationId"), _VERCEL_OPERATION),
            Lookup(Attr("traceloop.span.kind"), _TRACELOOP_KIND),
            Lookup(Attr("llm.request.type"), _LLM_REQUEST_TYPE),
            Present(Attr("gen_ai.tool.name"), "tool"),
            Present(Attr("gen_ai.tool.call.id"), "tool"),
            *(Present(Attr(k), "llm") for k in MODEL_KEYS),
            NamePrefix("handoff", "handoff"),
            # An agent run that names its agent but no operation (pydantic-ai's ``agent run``).
            Present(Attr("gen_ai.agent.name"), "agent"),
            Present(Attr("db.system.name"), "db"),
            Present(Attr("db.system"), "db"),
            Present(Attr("http.request.method"), "http"),
            Present(Attr("http.method"), "http"),
            Const("other"),
        )
    ),
    "What the step is: " + " | ".join(STEP_KINDS) + ".",
)

# Steps that wrap others (agent runs, chains, Vercel's ai.generateText): the usage and cost they
# carry is their run's total, already counted on their model calls, so it is reported apart
# (``reported_*``) rather than as the step's own.
ROLLUP_KINDS = ("agent", "chain")


def _own(expr: Expr) -> Expr:
    """``expr`` on every step but the roll-up ones."""
    return KindGate(STEP_KIND.expr, ROLLUP_KINDS, expr, negate=True)


def _reported(expr: Expr) -> Expr:
    """``expr`` on the roll-up steps only."""
    return KindGate(STEP_KIND.expr, ROLLUP_KINDS, expr)


INPUT_TOKENS = First(
    (
        *_attrs(
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.token_count.prompt",
            "ai.usage.inputTokens",
            "ai.usage.promptTokens",
        ),
        JsonPath(Attr("langfuse.observation.usage_details"), "input"),
    )
)
OUTPUT_TOKENS = First(
    (
        *_attrs(
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.token_count.completion",
            "ai.usage.outputTokens",
            "ai.usage.completionTokens",
        ),
        JsonPath(Attr("langfuse.observation.usage_details"), "output"),
    )
)
RECORDED_COST = First(
    (
        Attr("gen_ai.usage.cost"),
        Attr("llm.cost.total"),
        JsonPath(Attr("langfuse.observation.cost_details"), "total"),
    )
)

FIELDS: tuple[Field, ...] = (
    Field(
        "service_version",
        "VARCHAR",
        First(
            (
                Attr("service.version", "resource"),
                Attr("langfuse.release"),
                Attr("langfuse.version"),
            )
        ),
        "service.version of the emitting service (Langfuse release as a fallback).",
    ),
    Field(
        "environment",
        "VARCHAR",
        First(
            (
                Attr("deployment.environment.name", "resource"),
                Attr("deployment.environment", "resource"),
                Attr("langfuse.environment"),
                Attr("deployment.environment.name"),
            )
        ),
        "Deployment environment.",
    ),
    STEP_KIND,
    Field(
        "error_type",
        "VARCHAR",
        First((Attr("error.type"), EventAttr("exception", "exception.type"))),
        "error.type, else the first exception event's exception.type.",
    ),
    Field(
        "error_message",
        "VARCHAR",
        First(
            (
                Column("StatusMessage"),
                EventAttr("exception", "exception.message"),
                Attr("langfuse.observation.status_message"),
            )
        ),
        "Status message, else the first exception event's message.",
    ),
    Field(
        "provider",
        "VARCHAR",
        Lower(
            First(
                # OpenInference's llm.provider outranks the legacy gen_ai.system: frameworks that
                # emit both put their own name in gen_ai.system (Google ADK writes
                # ``gcp.vertex.agent`` beside ``llm.provider=google`` on its Gemini calls).
                _attrs(
                    "gen_ai.provider.name",
                    "llm.provider",
                    "gen_ai.system",
                    "llm.system",
                    "ai.model.provider",
                )
            )
        ),
        "Model provider (lower-cased), e.g. openai, anthropic, gcp.gemini.",
    ),
    Field("model", "VARCHAR", First(_attrs(*MODEL_KEYS)), "Model name (response model first)."),
    Field(
        "input_tokens",
        "BIGINT",
        _own(INPUT_TOKENS),
        "Input tokens of this step (including cached), never rolled up: none on agent and chain"
        " steps, whose usage is their run's total (reported_input_tokens).",
    ),
    Field(
        "output_tokens",
        "BIGINT",
        _own(OUTPUT_TOKENS),
        "Output tokens of this step (including reasoning), never rolled up (none on agent and"
        " chain steps: reported_output_tokens).",
    ),
    Field(
        "cache_read_tokens",
        "BIGINT",
        _own(
            First(
                _attrs(
                    "gen_ai.usage.cache_read.input_tokens",
                    "gen_ai.usage.cache_read_input_tokens",
                    "llm.token_count.prompt_details.cache_read",
                    "ai.usage.cachedInputTokens",
                )
            )
        ),
        "Input tokens served from the provider's prompt cache.",
    ),
    Field(
        "reasoning_tokens",
        "BIGINT",
        _own(
            First(
                _attrs(
                    "gen_ai.usage.reasoning.output_tokens",
                    "gen_ai.usage.reasoning_tokens",
                    "llm.token_count.completion_details.reasoning",
                    "ai.usage.reasoningTokens",
                )
            )
        ),
        "Output tokens spent on hidden reasoning.",
    ),
    Field(
        "recorded_cost_usd",
        "DOUBLE",
        _own(RECORDED_COST),
        "Cost recorded in the telemetry (wins over the computed cost); none on agent and chain"
        " steps (reported_cost_usd).",
    ),
    Field(
        "reported_input_tokens",
        "BIGINT",
        _reported(INPUT_TOKENS),
        "Input tokens an agent or chain step reports for its whole run (its model calls' and"
        " sub-agents' usage, as the framework counted it): shown, never summed.",
    ),
    Field(
        "reported_output_tokens",
        "BIGINT",
        _reported(OUTPUT_TOKENS),
        "Output tokens an agent or chain step reports for its whole run.",
    ),
    Field(
        "reported_cost_usd",
        "DOUBLE",
        _reported(RECORDED_COST),
        "Cost an agent or chain step states for its run; a trace's cost when none of its model"
        " calls has one (ai_traces.cost_usd).",
    ),
    Field(
        "ttft_ms_raw",
        "DOUBLE",
        First(
            (Attr("gen_ai.response.time_to_first_chunk"), Attr("gen_ai.server.time_to_first_token"))
        ),
        "Time to first token in seconds as recorded (converted to ms in the view).",
    ),
    Field(
        "prompt_name",
        "VARCHAR",
        First(
            _attrs(
                "langfuse.observation.prompt.name",
                "langfuse.prompt.name",
                "gen_ai.prompt.name",
                "traceloop.prompt.key",
                "prompt.id",
            )
        ),
        "Name of the managed prompt this step used.",
    ),
    Field(
        "prompt_version",
        "VARCHAR",
        First(
            _attrs(
                "langfuse.observation.prompt.version",
                "langfuse.prompt.version",
                "gen_ai.prompt.version",
                "llm.prompt_template.version",
                "traceloop.prompt.version",
            )
        ),
        "Version of the managed prompt.",
    ),
    Field(
        "agent_name",
        "VARCHAR",
        First(_attrs("gen_ai.agent.name", "agent.name", "graph.node.name")),
        "Agent that ran this step.",
    ),
    Field(
        "tool_name",
        "VARCHAR",
        First(
            (
                *_attrs("gen_ai.tool.name", "tool.name", "ai.toolCall.name"),
                When(Attr("traceloop.span.kind"), "tool", Attr("traceloop.entity.name")),
            )
        ),
        "Tool invoked by this step.",
    ),
    Field(
        "session_id",
        "VARCHAR",
        First(
            _attrs(
                "langfuse.session.id",
                "session.id",
                "gen_ai.conversation.id",
                "traceloop.association.properties.session_id",
                "ai.telemetry.metadata.sessionId",
            )
        ),
        "Session / conversation id.",
    ),
    Field(
        "user_id",
        "VARCHAR",
        First(
            _attrs(
                "langfuse.user.id",
                "user.id",
                "enduser.id",
                "traceloop.association.properties.user_id",
                "ai.telemetry.metadata.userId",
            )
        ),
        "End user id.",
    ),
    Field(
        "finish_reason",
        "VARCHAR",
        Token(
            First(
                (
                    JsonPath(Attr("gen_ai.response.finish_reasons"), "0"),
                    Attr("gen_ai.response.finish_reasons"),
                    Attr("llm.finish_reason"),
                    Attr("gen_ai.completion.0.finish_reason"),
                    Attr("ai.response.finishReason"),
                )
            )
        ),
        "Why generation stopped (first choice).",
    ),
    Field(
        "output_chars",
        "BIGINT",
        Length(
            First(
                _attrs(
                    "gen_ai.output.messages",
                    "llm.output_messages.0.message.content",
                    "gen_ai.completion.0.content",
                    "ai.response.text",
                    "langfuse.observation.output",
                    "output.value",
                )
            )
        ),
        "Size of the step's output as recorded (the answer text, or its JSON message form).",
    ),
    Field(
        "retrieval_top_score",
        "DOUBLE",
        First(
            (
                JsonPath(Attr("gen_ai.retrieval.documents"), "0.score"),
                Attr("retrieval.documents.0.document.score"),
            )
        ),
        "Score of the first-ranked retrieved document.",
    ),
)

FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

# Which attribute prefixes identify a convention (for `aiobs stats` coverage).
CONVENTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("otel-genai", ("gen_ai.",)),
    (
        "openinference",
        (
            "openinference.",
            "llm.model_name",
            "llm.token_count.",
            "llm.input_messages",
            "llm.output_messages",
            "llm.invocation_parameters",
            "llm.provider",
            "llm.system",
            "retrieval.documents",
            "input.value",
        ),
    ),
    ("openllmetry", ("traceloop.", "llm.request.type", "llm.usage.", "llm.is_streaming")),
    ("langfuse", ("langfuse.",)),
    ("vercel-ai", ("ai.",)),
)

# ------------------------------------------------------------------------------------------ SQL


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


Dialect = Literal["duckdb", "clickhouse"]


def to_sql(
    expr: Expr,
    cast: FieldType = "VARCHAR",
    dialect: Dialect = "duckdb",
    known: Mapping[Expr, str] | None = None,
) -> str:
    """Render ``expr`` as an expression over an ``otel_traces`` row, cast to ``cast``: for DuckDB
    (the store) or ClickHouse (the collector exporter's tables, for ``--backend``). ``known``:
    expressions the row already holds computed, by column name (a ``KindGate``'s test, which
    would otherwise be computed again for every gated field)."""
    if isinstance(expr, First):
        return "coalesce(" + ", ".join(to_sql(o, cast, dialect, known) for o in expr.options) + ")"
    if isinstance(expr, KindGate):
        lower = "lowerUTF8" if dialect == "clickhouse" else "lower"
        kinds = ", ".join(_q(k) for k in expr.kinds)
        column = (known or {}).get(expr.test)
        tested = column if column is not None else _sql_raw(expr.test, dialect)
        test = f"coalesce({lower}({tested}), '') IN ({kinds})"
        then = to_sql(expr.then, cast, dialect, known)
        if expr.negate:
            return f"(CASE WHEN {test} THEN NULL ELSE {then} END)"
        return f"(CASE WHEN {test} THEN {then} END)"
    raw = _sql_raw(expr, dialect)
    if cast == "VARCHAR":
        return raw
    if dialect == "clickhouse":
        # DuckDB's cast trims blanks (ClickHouse's does not) and takes a double to the nearest
        # integer, halves to even (as round() does; a plain toInt64 truncates).
        number = f"toFloat64OrNull(trimBoth({raw}))"
        if cast == "BIGINT":
            return f"accurateCastOrNull(round({number}), 'Int64')"
        return number
    if cast == "BIGINT":
        return f"TRY_CAST(TRY_CAST({raw} AS DOUBLE) AS BIGINT)"
    return f"TRY_CAST({raw} AS DOUBLE)"


def _sql_raw(expr: Expr, dialect: Dialect = "duckdb") -> str:
    ch = dialect == "clickhouse"
    # Text functions: ClickHouse's plain lower/length work on bytes, DuckDB's on characters.
    lower = "lowerUTF8" if ch else "lower"
    nullif = "nullIf" if ch else "nullif"

    def raw(inner: Expr) -> str:
        return _sql_raw(inner, dialect)

    if isinstance(expr, Attr):
        col = "SpanAttributes" if expr.scope == "span" else "ResourceAttributes"
        return f"{nullif}(\"{col}\"[{_q(expr.key)}], '')"
    if isinstance(expr, Column):
        return f"{nullif}(\"{expr.name}\", '')"
    if isinstance(expr, EventAttr):
        # A missing event: list_position is NULL in DuckDB; indexOf is 0 in ClickHouse, whose
        # element 0 is an empty map. Either way the value is missing.
        pos = (
            f'indexOf("Events.Name", {_q(expr.event)})'
            if ch
            else f'list_position("Events.Name", {_q(expr.event)})'
        )
        return f"{nullif}(\"Events.Attributes\"[{pos}][{_q(expr.key)}], '')"
    if isinstance(expr, JsonPath):
        if ch:
            # Array positions count from 1; a string comes unquoted, anything else as its JSON
            # text, JSON null as NULL (json_extract_string's behaviour).
            keys = ", ".join(
                str(int(p) + 1) if p.isdigit() else _q(p) for p in expr.path.split(".")
            )
            doc = raw(expr.inner)
            kind = f"JSONType({doc}, {keys})"
            return (
                f"multiIf({kind} = 'String', nullIf(JSONExtractString({doc}, {keys}), ''),"
                f" {kind} = 'Null', NULL, nullIf(JSONExtractRaw({doc}, {keys}), ''))"
            )
        path = "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in expr.path.split("."))
        return f"nullif(try(json_extract_string({raw(expr.inner)}, {_q(path)})), '')"
    if isinstance(expr, First | KindGate):
        return to_sql(expr, "VARCHAR", dialect)
    if isinstance(expr, Lookup):
        whens = " ".join(f"WHEN {_q(k)} THEN {_q(v)}" for k, v in expr.table)
        return f"(CASE {lower}({raw(expr.inner)}) {whens} END)"
    if isinstance(expr, Present):
        return f"(CASE WHEN {raw(expr.inner)} IS NOT NULL THEN {_q(expr.value)} END)"
    if isinstance(expr, When):
        return (
            f"(CASE WHEN {lower}({raw(expr.test)}) = {_q(expr.equals)} THEN {raw(expr.then)} END)"
        )
    if isinstance(expr, NamePrefix):
        starts = "startsWith" if ch else "starts_with"
        return (
            f'(CASE WHEN {starts}({lower}("SpanName"), {_q(expr.prefix.lower())})'
            f" THEN {_q(expr.value)} END)"
        )
    if isinstance(expr, Lower):
        return f"{lower}({raw(expr.inner)})"
    if isinstance(expr, Length):
        if ch:
            return f"toString(lengthUTF8({raw(expr.inner)}))"
        return f"CAST(length({raw(expr.inner)}) AS VARCHAR)"
    if isinstance(expr, Token):
        replace = "replaceAll" if ch else "replace"
        return f"{replace}({lower}({raw(expr.inner)}), '-', '_')"
    if isinstance(expr, Const):
        return _q(expr.value)
    raise TypeError(f"unknown expression {expr!r}")


# --------------------------------------------------------------------------------------- Python

SpanRow = Mapping[str, Any]


def _present(value: Any) -> Any:
    return None if value is None or value == "" else value


def _cast(value: Any, cast: FieldType) -> Any:
    """Python twin of ``TRY_CAST(TRY_CAST(x AS DOUBLE) AS BIGINT)`` / ``TRY_CAST(x AS DOUBLE)``:
    ASCII numbers only, round half to even, NULL outside BIGINT's range (checked against DuckDB)."""
    if value is None or cast == "VARCHAR":
        return value
    if isinstance(value, str) and not value.isascii():
        return None  # float() reads other scripts' digits; DuckDB does not
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if cast == "DOUBLE":
        return number
    if math.isnan(number) or math.isinf(number):
        return None
    rounded = round(number)
    return rounded if -(2**63) <= rounded < 2**63 else None


def evaluate(expr: Expr, span: SpanRow, cast: FieldType = "VARCHAR") -> Any:
    """Compute ``expr`` on a span given as a dict of ``otel_traces`` columns (same as ``to_sql``)."""
    if isinstance(expr, First):
        for option in expr.options:
            value = evaluate(option, span, cast)
            if value is not None:
                return value
        return None
    if isinstance(expr, KindGate):
        test = _eval_raw(expr.test, span)
        hit = ("" if test is None else str(test).lower()) in expr.kinds
        return evaluate(expr.then, span, cast) if hit != expr.negate else None
    return _cast(_eval_raw(expr, span), cast)


def _first_key_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def _json_path(text: str, path: str) -> Any:
    """Python twin of ``json_extract_string``: numeric parts index arrays only, and with duplicate
    keys the first one wins."""
    try:
        value: Any = json.loads(text, object_pairs_hook=_first_key_wins)
    except (ValueError, TypeError):
        return None
    for part in path.split("."):
        if part.isdigit():
            if isinstance(value, list) and int(part) < len(value):
                value = value[int(part)]
            else:
                return None
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    if value is None or isinstance(value, dict | list):
        return None if value is None else json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _eval_raw(expr: Expr, span: SpanRow) -> Any:
    if isinstance(expr, Attr):
        col = "SpanAttributes" if expr.scope == "span" else "ResourceAttributes"
        return _present((span.get(col) or {}).get(expr.key))
    if isinstance(expr, Column):
        return _present(span.get(expr.name))
    if isinstance(expr, EventAttr):
        names: Sequence[str] = span.get("Events.Name") or ()
        attrs: Sequence[Mapping[str, str]] = span.get("Events.Attributes") or ()
        for name, event_attrs in zip(names, attrs, strict=False):
            if name == expr.event:
                return _present((event_attrs or {}).get(expr.key))
        return None
    if isinstance(expr, JsonPath):
        inner = _eval_raw(expr.inner, span)
        return None if inner is None else _present(_json_path(inner, expr.path))
    if isinstance(expr, First | KindGate):
        return evaluate(expr, span, "VARCHAR")
    if isinstance(expr, Lookup):
        inner = _eval_raw(expr.inner, span)
        if inner is None:
            return None
        return dict(expr.table).get(str(inner).lower())
    if isinstance(expr, Present):
        return expr.value if _eval_raw(expr.inner, span) is not None else None
    if isinstance(expr, When):
        test = _eval_raw(expr.test, span)
        return (
            _eval_raw(expr.then, span)
            if test is not None and str(test).lower() == expr.equals
            else None
        )
    if isinstance(expr, NamePrefix):
        name = span.get("SpanName") or ""
        return expr.value if name.lower().startswith(expr.prefix.lower()) else None
    if isinstance(expr, Lower):
        inner = _eval_raw(expr.inner, span)
        return None if inner is None else str(inner).lower()
    if isinstance(expr, Length):
        inner = _eval_raw(expr.inner, span)
        return None if inner is None else str(len(str(inner)))
    if isinstance(expr, Token):
        inner = _eval_raw(expr.inner, span)
        return None if inner is None else str(inner).lower().replace("-", "_")
    if isinstance(expr, Const):
        return expr.value
    raise TypeError(f"unknown expression {expr!r}")


def canonical(span: SpanRow) -> dict[str, Any]:
    """Every canonical field of one span, computed in Python."""
    return {f.name: evaluate(f.expr, span, f.type) for f in FIELDS}
