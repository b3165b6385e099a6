"""Conformance: the files other projects wrote (``../shared/conformance/external``) read right.

Expected values were read off each file by hand (and with independent parsers: Python ``json``,
``opentelemetry-proto`` for the protobuf files), attribute by attribute, as in test_conformance.py;
``SOURCES.md`` beside the files states the same facts. Long texts (prompts, completions) are read
from the file at test time rather than copied here. The corpus is never copied into the repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli
from test_conformance import ai_spans, ai_trace, by_span_id, ingest, span, trace


@pytest.fixture
def external(conformance: Path) -> Path:
    return conformance / "external"


def _attrs_of(path: Path, span_id: str) -> dict[str, Any]:
    """The attributes of one span of an OTLP/JSON file, as plain values (read with ``json``)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                if s["spanId"] == span_id:
                    return {a["key"]: next(iter(a["value"].values())) for a in s["attributes"]}
    raise KeyError(span_id)


def counts(cli: Cli, column: str, table: str) -> list[tuple[Any, int]]:
    """(value, rows) of ``column`` in ``table``, by value."""
    rows = cli.query(f"SELECT {column} AS v, count(*) AS n FROM {table} GROUP BY 1 ORDER BY 1")
    return [(r["v"], r["n"]) for r in rows]


def _stored_span(cli: Cli, span_id: str) -> dict[str, Any]:
    (row,) = cli.query(
        'SELECT SpanAttributes, "Events.Name", "Events.Attributes", "Events.Timestamp"'
        f" FROM otel_traces WHERE SpanId = '{span_id}'"
    )
    return row


def _messages(cli: Cli, span_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """content.messages() of a stored span, as JSON objects."""
    from aiobs.semantic import content

    row = _stored_span(cli, span_id)
    events = [
        content.Event(name, 0, dict(attrs or {}))
        for name, attrs in zip(row["Events.Name"], row["Events.Attributes"], strict=True)
    ]
    inputs, outputs = content.messages(row["SpanAttributes"], events)
    return [m.to_json() for m in inputs], [m.to_json() for m in outputs]


# ------------------------------------------------------ jaeger-ui's GenAI agent fixture (OTLP)

AGENT_TRACE = "a1b2c3d4e5f60718a1b2c3d4e5f60718"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def test_jaeger_ui_genai_agent_legacy_semconv(cli: Cli, external: Path) -> None:
    path = external / "jaegerui-genai-agent.otlp.json"
    summary = ingest(cli, path)
    assert (summary["spans"], summary["log_records"], summary["metric_points"]) == (8, 0, 0)
    root = "1111111111111111"
    chat = {"provider": "huggingface", "model": LLAMA}  # gen_ai.system; response = request model
    expected = [
        span(root, None, "diagnose", "other"),  # only agent.* / incident.* attributes
        span(
            "2222222222222222",
            root,
            f"chat {LLAMA}",
            "llm",
            input_tokens=312,
            output_tokens=128,
            **chat,
        ),
        span(
            "3333333333333333",
            "2222222222222222",
            "rag_retrieve kubernetes_ops_runbooks",
            "db",  # db.system=vector, no GenAI retrieval attributes
        ),
        span(
            "4444444444444444",
            root,
            "execute_tool get_pod_metrics",
            "tool",
            tool_name="get_pod_metrics",
        ),
        span(
            "5555555555555555",
            root,
            f"chat {LLAMA}",
            "llm",
            input_tokens=589,
            output_tokens=94,
            **chat,
        ),
        span(
            "6666666666666666",
            root,
            "execute_tool scale_deployment",
            "tool",
            tool_name="scale_deployment",
        ),
        span("7777777777777777", root, "GET /healthz", "http"),  # http.method
        # The third call has only gen_ai.request.model (no response model).
        span(
            "8888888888888888",
            root,
            f"chat {LLAMA}",
            "llm",
            input_tokens=201,
            output_tokens=67,
            **chat,
        ),
    ]
    assert by_span_id(ai_spans(cli, AGENT_TRACE)) == expected
    assert cli.query(
        f"SELECT DISTINCT service_name, service_version FROM ai_spans WHERE trace_id = '{AGENT_TRACE}'"
    ) == [{"service_name": "incident-response-agent", "service_version": "0.1.0"}]
    assert ai_trace(cli, AGENT_TRACE) == trace(
        root_name="diagnose",
        span_count=8,
        llm_calls=3,
        tool_calls=2,
        input_tokens=312 + 589 + 201,
        output_tokens=128 + 94 + 67,
        models=[LLAMA],
    )
    # No cost in the file: priced from the shipped table (llama-3.1-8b-instruct, $0.10/M each way).
    (cost,) = cli.query(f"SELECT cost_usd FROM ai_traces WHERE trace_id = '{AGENT_TRACE}'")
    assert cost["cost_usd"] == pytest.approx((1102 + 289) * 0.1 / 1e6)
    # intValue written as JSON numbers: stored as the exporter writes ints.
    assert _stored_span(cli, root)["SpanAttributes"]["agent.step"] == "1"


def test_plain_string_prompt_and_completion_are_messages(cli: Cli, external: Path) -> None:
    path = external / "jaegerui-genai-agent.otlp.json"
    ingest(cli, path)
    for span_id in ("2222222222222222", "5555555555555555", "8888888888888888"):
        attrs = _attrs_of(path, span_id)
        inputs, outputs = _messages(cli, span_id)
        assert inputs == [{"role": "user", "content": attrs["gen_ai.prompt"]}]
        assert outputs == [{"role": "assistant", "content": attrs["gen_ai.completion"]}]
    # The third call's prompt, read off the file.
    inputs, _ = _messages(cli, "8888888888888888")
    assert (
        inputs[0]["content"] == "Summarise the incident response taken so far in 3 bullet points."
    )
    # Replay shows them (content.messages is what it renders for an LLM step).
    result = cli("replay", AGENT_TRACE, "-f", "json")
    assert result.exit_code == 0, result.output
    assert "Summarise the incident response taken so far in 3 bullet points." in result.stdout
    assert "Runaway goroutine or thread pool saturation" in result.stdout  # first completion


def test_non_standard_tool_input_output_are_the_tool_call(cli: Cli, external: Path) -> None:
    from aiobs.semantic import content

    ingest(cli, external / "jaegerui-genai-agent.otlp.json")
    attrs = _stored_span(cli, "4444444444444444")["SpanAttributes"]
    assert content.tool_call(attrs) == {
        "name": "get_pod_metrics",
        "call_id": "call-d7e8f9",
        "arguments": {"pod": "api-deployment-7f9d8b", "namespace": "production", "window": "10m"},
        "result": {
            "cpu_p50": 0.12,
            "cpu_p95": 0.98,
            "cpu_p99": 0.99,
            "memory_rss_mb": 512,
            "open_fds": 1847,
            "goroutines": 18432,
        },
    }


# ------------------------------------------------------------- Jaeger API v3 GetTrace envelope

HOTROD_TRACE = "2ea75461946a7dd10f2c15ab36a076cb"


def test_jaeger_api_v3_response_is_unwrapped(cli: Cli, external: Path, tmp_path: Path) -> None:
    path = external / "jaegerui-apiv3-gettrace.json"
    summary = ingest(cli, path)
    assert (summary["spans"], summary["rejected"]) == (40, 0)
    assert counts(cli, "ServiceName", "otel_traces") == [
        ("customer", 1),
        ("driver", 1),
        ("frontend", 13),
        ("mysql", 1),
        ("redis-manual", 14),
        ("route", 10),
    ]
    errors = cli.query(
        'SELECT ServiceName, SpanName, StatusCode, StatusMessage, "Events.Name" AS events'
        " FROM otel_traces WHERE StatusCode = 'STATUS_CODE_ERROR'"
    )
    assert len(errors) == 3
    assert all(
        e
        == {
            "ServiceName": "redis-manual",
            "SpanName": "GetDriver",
            "StatusCode": "STATUS_CODE_ERROR",
            "StatusMessage": "An error occurred",
            "events": ["exception", "redis timeout"],
        }
        for e in errors
    )
    assert ai_trace(cli, HOTROD_TRACE) == trace(
        root_name="GET /dispatch",
        status="error",
        error_count=3,
        span_count=40,
        llm_calls=0,
        tool_calls=0,
        models=[],
    )
    # The same rows as the OTLP document inside the envelope, ingested bare.
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(json.loads(path.read_text())["result"]), encoding="utf-8")
    other = Cli(tmp_path / "bare.duckdb")
    ingest(other, bare)
    dump = (
        "SELECT * EXCLUDE (Timestamp), epoch_ns(Timestamp) AS ts FROM otel_traces ORDER BY SpanId"
    )
    assert cli.query(dump) == other.query(dump)


@pytest.mark.parametrize(
    "answer",
    [
        '{"error": {"grpcCode": 5, "httpCode": 404, "message": "trace not found"}}',  # v3
        '{"data": null, "total": 0, "limit": 0, "offset": 0,'
        ' "errors": [{"code": 404, "msg": "trace not found"}]}',  # v1
    ],
)
def test_jaeger_api_error_answer_is_refused_clearly(cli: Cli, tmp_path: Path, answer: str) -> None:
    path = tmp_path / "err.json"
    path.write_text(answer + "\n")
    result = cli("ingest", "-f", "json", str(path))
    assert result.exit_code == 2, result.output
    assert cli.query("SELECT reason FROM aiobs_rejects") == [
        {"reason": "Jaeger API error answer: trace not found"}
    ]


# ------------------------------------------------------------------------- Jaeger JSON model

JAEGER_TRACE = "4a1b2c3d4e5f60718293a4b5c6d7e8f9"


def test_jaeger_json_model_is_read(cli: Cli, external: Path) -> None:
    # SOURCES.md expected a clear refusal; issue 15 (newer) asks for it to be read.
    summary = ingest(cli, external / "jaegerui-genai.jaeger.json")
    assert (summary["spans"], summary["rejected"]) == (57, 0)
    # One service a process (10), spans per service counted off processID.
    assert counts(cli, "ServiceName", "otel_traces") == [
        ("api-edge", 1),
        ("auth-service", 7),
        ("coding-agent", 19),
        ("graphql-gateway", 2),
        ("k8s-api", 3),
        ("mcp-gateway", 7),
        ("metrics-backend", 6),
        ("summarizer-agent", 3),
        ("trace-store", 6),
        ("vector-store", 3),
    ]
    # span.kind tags: 30 server, 19 client, 8 internal; taken out of the attributes.
    assert counts(cli, "SpanKind", "otel_traces") == [
        ("SPAN_KIND_CLIENT", 19),
        ("SPAN_KIND_INTERNAL", 8),
        ("SPAN_KIND_SERVER", 30),
    ]
    assert cli.query(
        "SELECT count(*) AS n FROM otel_traces WHERE contains(map_keys(SpanAttributes), 'span.kind')"
        " OR contains(map_keys(SpanAttributes), 'error')"
    ) == [{"n": 0}]
    # gen_ai.operation.name: 7 execute_tool, 5 chat, 3 retrieval, 2 invoke_agent.
    assert cli.query(
        "SELECT step_kind, count(*) AS n, sum(input_tokens) AS i, sum(output_tokens) AS o,"
        " sum(cache_read_tokens) AS c FROM ai_spans WHERE step_kind IN"
        " ('tool', 'llm', 'retrieval', 'agent') GROUP BY 1 ORDER BY 1"
    ) == [
        {"step_kind": "agent", "n": 2, "i": None, "o": None, "c": None},
        # 4 calls of model-a 1840/260 (cache 920), 1 of model-b 920/140 (cache 460)
        {"step_kind": "llm", "n": 5, "i": 4 * 1840 + 920, "o": 4 * 260 + 140, "c": 4 * 920 + 460},
        {"step_kind": "retrieval", "n": 3, "i": None, "o": None, "c": None},
        {"step_kind": "tool", "n": 7, "i": None, "o": None, "c": None},
    ]
    # The only error: error=true on k8s-api GET /api/v1/pods (span 0x11).
    assert cli.query("SELECT span_id, name, service_name FROM ai_spans WHERE status = 'error'") == [
        {"span_id": "0000000000000011", "name": "GET /api/v1/pods", "service_name": "k8s-api"}
    ]
    # One span in full: times in microseconds, parent from its CHILD_OF reference, typed tags.
    (chat,) = cli.query(
        "SELECT TraceId, ParentSpanId, SpanName, SpanKind, ServiceName, ResourceAttributes,"
        " epoch_ns(Timestamp) AS start_ns, Duration, StatusCode,"
        " SpanAttributes['gen_ai.usage.input_tokens'] AS tokens,"
        " SpanAttributes['gen_ai.request.model'] AS model, \"Links.SpanId\" AS links"
        " FROM otel_traces WHERE SpanId = '0000000000000005'"
    )
    assert chat == {
        "TraceId": JAEGER_TRACE,
        "ParentSpanId": "0000000000000004",
        "SpanName": "chat model-a",
        "SpanKind": "SPAN_KIND_CLIENT",
        "ServiceName": "coding-agent",
        "ResourceAttributes": {"service.name": "coding-agent"},
        "start_ns": 1770000000005000 * 1000,  # "startTime": 1770000000005000 µs
        "Duration": 1_800_000_000,  # "duration": 1800000 µs
        "StatusCode": "STATUS_CODE_UNSET",
        "tokens": "1840",  # int64 tag
        "model": "model-a",
        "links": [],
    }
    (root,) = cli.query(
        "SELECT SpanId, ParentSpanId, epoch_ns(Timestamp) AS start_ns, Duration FROM otel_traces"
        " WHERE ParentSpanId = ''"
    )
    assert root == {
        "SpanId": "0000000000000001",
        "ParentSpanId": "",
        "start_ns": 1770000000001000 * 1000,  # "startTime": 1770000000001000 µs
        "Duration": 44_000_000 * 1000,
    }
    assert ai_trace(cli, JAEGER_TRACE) == trace(
        root_name="POST /api/graphql",
        status="error",
        error_count=1,
        span_count=57,
        llm_calls=5,
        tool_calls=7,
        input_tokens=8280,
        output_tokens=1180,
        models=["model-a", "model-b"],
    )
    inputs, outputs = _messages(cli, "0000000000000036")
    assert [m["role"] for m in inputs] == ["system", "user"]  # system_instructions, input
    assert outputs[0]["role"] == "assistant"


def test_jaeger_ui_download_and_api_v1_forms(cli: Cli, external: Path, tmp_path: Path) -> None:
    """``{"data": [trace]}`` (the UI's download, /api/traces answers) and one trace a line read
    into the same rows as the bare trace."""
    trace_doc = json.loads((external / "jaegerui-genai.jaeger.json").read_text())
    forms = {
        "bare.json": json.dumps(trace_doc),
        "download.json": json.dumps({"data": [trace_doc]}),
        "api-v1.json": json.dumps(
            {"data": [trace_doc], "total": 0, "limit": 0, "offset": 0, "errors": None}
        ),
        "lines.jsonl": json.dumps(trace_doc) + "\n" + json.dumps({"data": [trace_doc]}) + "\n",
    }
    dumps = []
    for name, text in forms.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        store = Cli(tmp_path / f"{name}.duckdb")
        summary = ingest(store, tmp_path / name)
        assert summary["spans"] == 57, name
        dumps.append(
            store.query(
                "SELECT * EXCLUDE (Timestamp), epoch_ns(Timestamp) AS ts FROM otel_traces"
                " ORDER BY SpanId"
            )
        )
    assert all(d == dumps[0] for d in dumps)


def test_jaeger_model_details(cli: Cli, tmp_path: Path) -> None:
    """What the UI file does not show: process tags, logs, FOLLOWS_FROM, otel.* tags, short ids."""
    doc = {
        "data": [
            {
                "traceID": "abc123",  # a 64-bit id with its leading zeros dropped
                "spans": [
                    {
                        "traceID": "abc123",
                        "spanID": "1",
                        "operationName": "root",
                        "references": [],
                        "startTime": 1770000000000000,
                        "duration": 5000,
                        "tags": [
                            {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                            {"key": "otel.status_description", "type": "string", "value": "boom"},
                            {"key": "otel.scope.name", "type": "string", "value": "lib"},
                            {"key": "otel.scope.version", "type": "string", "value": "1.2"},
                            {"key": "ratio", "type": "float64", "value": 0.5},
                            {"key": "ok", "type": "bool", "value": False},
                        ],
                        "logs": [
                            {
                                "timestamp": 1770000000001000,
                                "fields": [
                                    {"key": "event", "type": "string", "value": "exception"},
                                    {"key": "exception.message", "type": "string", "value": "x"},
                                ],
                            }
                        ],
                        "processID": "p1",
                    },
                    {
                        "traceID": "abc123",
                        "spanID": "2",
                        "operationName": "child",
                        "references": [
                            {"refType": "FOLLOWS_FROM", "traceID": "ff", "spanID": "9"},
                            {"refType": "CHILD_OF", "traceID": "abc123", "spanID": "1"},
                        ],
                        "startTime": 1770000000002000,
                        "duration": 1000,
                        "tags": [],
                        "process": {"serviceName": "inline", "tags": []},
                    },
                ],
                "processes": {
                    "p1": {
                        "serviceName": "svc",
                        "tags": [{"key": "host.name", "type": "string", "value": "h1"}],
                    }
                },
            }
        ]
    }
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    ingest(cli, path)
    rows = cli.query(
        "SELECT TraceId, SpanId, ParentSpanId, ServiceName, ResourceAttributes, ScopeName,"
        ' ScopeVersion, SpanAttributes, StatusCode, StatusMessage, "Events.Name" AS ev,'
        ' "Events.Attributes" AS ev_attrs, epoch_ns("Events.Timestamp"[1]) AS ev_ns,'
        ' "Links.TraceId" AS lt, "Links.SpanId" AS ls FROM otel_traces ORDER BY SpanId'
    )
    trace_id = "0000000000000000000000000abc123".rjust(32, "0")
    assert rows == [
        {
            "TraceId": trace_id,
            "SpanId": "0000000000000001",
            "ParentSpanId": "",
            "ServiceName": "svc",
            "ResourceAttributes": {"service.name": "svc", "host.name": "h1"},
            "ScopeName": "lib",
            "ScopeVersion": "1.2",
            "SpanAttributes": {"ratio": "0.5", "ok": "false"},
            "StatusCode": "STATUS_CODE_ERROR",
            "StatusMessage": "boom",
            "ev": ["exception"],
            "ev_attrs": [{"exception.message": "x"}],
            "ev_ns": 1770000000001000 * 1000,
            "lt": [],
            "ls": [],
        },
        {
            "TraceId": trace_id,
            "SpanId": "0000000000000002",
            "ParentSpanId": "0000000000000001",
            "ServiceName": "inline",
            "ResourceAttributes": {"service.name": "inline"},
            "ScopeName": "",
            "ScopeVersion": "",
            "SpanAttributes": {},
            "StatusCode": "STATUS_CODE_UNSET",
            "StatusMessage": "",
            "ev": [],
            "ev_attrs": [],
            "ev_ns": None,
            "lt": ["ff".rjust(32, "0")],
            "ls": ["0000000000000009"],
        },
    ]


def test_jaeger_bad_span_is_refused_and_the_rest_lands(cli: Cli, tmp_path: Path) -> None:
    doc = {
        "traceID": "00000000000000000000000000000abc",
        "spans": [
            {
                "traceID": "abc",
                "spanID": "1",
                "operationName": "a",
                "startTime": 1770000000000000,
                "duration": 1,
                "processID": "p1",
            },
            {
                "traceID": "abc",
                "spanID": "zz",
                "operationName": "b",
                "startTime": 1770000000000000,
                "duration": 1,
                "processID": "p1",
            },
            {
                "traceID": "abc",
                "spanID": "3",
                "operationName": "c",
                "startTime": 1770000000000000,
                "duration": 1,
                "processID": "nope",
            },
        ],
        "processes": {"p1": {"serviceName": "svc"}},
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = cli("ingest", "-f", "json", str(path))
    assert result.exit_code == 5, result.output
    summary = json.loads(result.stdout)
    assert (summary["spans"], summary["rejected"]) == (1, 2)
    reasons = sorted(r["reason"] for r in cli.query("SELECT reason FROM aiobs_rejects"))
    assert reasons == [
        "Jaeger span: span 0000000000000003: process 'nope' is not in processes",
        "Jaeger span: spanID 'zz' is not a hex id",
    ]


# ------------------------------------------------------------------ otlp2jaeger: a repeated span


def test_repeated_span_is_one_span(cli: Cli, external: Path) -> None:
    result = cli("ingest", "-f", "json", str(external / "jaegerui-otlp2jaeger-dup.otlp.json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["spans"], summary["duplicates"], summary["rejected"]) == (1, 1, 0)
    assert ai_spans(cli, "83a9efd15c1c98a977e0711cc93ee28b") == [
        # parent 909541b92cf05311 is not in the file
        span("e127af99e3b3e074", "909541b92cf05311", "okey-dokey-0", "other")
    ]
    assert cli.query(
        "SELECT ServiceName, SpanKind, ScopeName, Duration, SpanAttributes FROM otel_traces"
    ) == [
        {
            "ServiceName": "telemetrygen",
            "SpanKind": "SPAN_KIND_SERVER",
            "ScopeName": "telemetrygen",
            "Duration": 1706678909209835000 - 1706678909209712000,
            "SpanAttributes": {"net.peer.ip": "1.2.3.4", "peer.service": "telemetrygen-client"},
        }
    ]


# ------------------------------------------------------------------------------- otlp2parquet

TRACE_DUMP = (
    "SELECT * EXCLUDE (Timestamp), epoch_ns(Timestamp) AS ts FROM otel_traces ORDER BY SpanId"
)


def test_otlp2parquet_traces_protobuf(cli: Cli, external: Path) -> None:
    summary = ingest(cli, external / "otlp2parquet-traces.pb")
    assert (summary["spans"], summary["log_records"], summary["metric_points"]) == (19, 0, 0)
    assert cli.query(
        "SELECT count(DISTINCT TraceId) AS traces, count_if(ParentSpanId = '') AS roots,"
        ' sum(len("Events.Name")) AS events,'
        " count_if(StatusCode = 'STATUS_CODE_ERROR') AS errors, sum(Duration) AS duration"
        " FROM otel_traces"
    ) == [{"traces": 19, "roots": 6, "events": 6, "errors": 0, "duration": 4_834_000_000}]
    assert counts(cli, "ServiceName", "otel_traces") == [
        ("analytics-service", 2),
        ("api-gateway", 3),
        ("cart", 2),
        ("frontend-proxy", 1),
        ("kafka", 3),
        ("payment-service", 2),
        ("product-catalog", 5),
        ("recommendation", 1),
    ]
    assert counts(cli, "SpanKind", "otel_traces") == [
        ("SPAN_KIND_CLIENT", 6),
        ("SPAN_KIND_INTERNAL", 10),
        ("SPAN_KIND_SERVER", 3),
    ]
    assert cli.query(
        'SELECT e, count(*) AS n FROM (SELECT unnest("Events.Name") AS e FROM otel_traces)'
        " GROUP BY 1 ORDER BY 1"
    ) == [{"e": "checkpoint", "n": 2}, {"e": "processing", "n": 1}, {"e": "validation", "n": 3}]
    (first,) = cli.query(
        "SELECT TraceId, ParentSpanId, SpanName, SpanKind, ServiceName, ScopeName,"
        " epoch_ns(Timestamp) AS start_ns, Duration, SpanAttributes['rpc.system'] AS rpc,"
        " SpanAttributes['rpc.grpc.status_code'] AS grpc FROM otel_traces"
        " WHERE SpanId = '5a69fc178ba8f837'"
    )
    assert first == {
        "TraceId": "69842a979911036cf3e822086ecaa007",
        "ParentSpanId": "44e61d9ab30fcb06",
        "SpanName": "product-catalog.execute",
        "SpanKind": "SPAN_KIND_INTERNAL",
        "ServiceName": "product-catalog",
        "ScopeName": "product-catalog",
        "start_ns": 1760738064624180000,
        "Duration": 1760738064991180000 - 1760738064624180000,
        "rpc": "grpc",
        "grpc": "0",
    }
    # Not GenAI: nothing AI about it.
    assert cli.query(
        "SELECT count(model) AS m, count(input_tokens) AS t, count(*) AS n FROM ai_spans"
    ) == [{"m": 0, "t": 0, "n": 19}]


def test_otlp2parquet_traces_json_lines_are_the_protobuf_spans(
    cli: Cli, external: Path, tmp_path: Path
) -> None:
    """Base64 ids and enum names: the JSON Lines file holds the same 19 spans as traces.pb."""
    summary = ingest(cli, external / "otlp2parquet-traces.otlp.jsonl")
    assert summary["spans"] == 19
    proto = Cli(tmp_path / "proto.duckdb")
    ingest(proto, external / "otlp2parquet-traces.pb")
    assert cli.query(TRACE_DUMP) == proto.query(TRACE_DUMP)
    again = ingest(cli, external / "otlp2parquet-traces.pb")
    assert (again["spans"], again["duplicates"]) == (0, 19)


def test_otlp2parquet_logs_protobuf(cli: Cli, external: Path) -> None:
    summary = ingest(cli, external / "otlp2parquet-logs.pb")
    assert (summary["spans"], summary["log_records"], summary["metric_points"]) == (0, 81, 0)
    assert cli.query(
        "SELECT count_if(TraceId <> '') AS with_trace, count(DISTINCT nullif(TraceId, '')) AS traces,"
        " count_if(SeverityNumber = 9 AND SeverityText = 'INFO') AS info FROM otel_logs"
    ) == [{"with_trace": 31, "traces": 31, "info": 81}]
    assert counts(cli, "ServiceName", "otel_logs") == [
        ("cart", 17),
        ("frontend-proxy", 12),
        ("kafka", 15),
        ("load-generator", 14),
        ("product-catalog", 15),
        ("recommendation", 8),
    ]
    (first,) = cli.query(
        "SELECT ServiceName, Body, TraceId, SpanId, LogAttributes['app.product.id'] AS product"
        " FROM otel_logs WHERE epoch_ns(Timestamp) = 1760741572254301000"
    )
    assert first == {
        "ServiceName": "product-catalog",
        "Body": "Product Found",
        "TraceId": "a71f3d1a6d2d3cadb3669cbd50e165e4",
        "SpanId": "34249d8b829f4116",
        "product": "HQTGWGPNH4",
    }


def test_otlp2parquet_metrics_enum_names_no_start_times(cli: Cli, external: Path) -> None:
    summary = ingest(cli, external / "otlp2parquet-metrics-mixed.otlp.jsonl")
    assert (summary["spans"], summary["log_records"], summary["metric_points"]) == (0, 0, 3)
    ts = 1705327800000000000
    assert cli.query(
        "SELECT ServiceName, MetricName, MetricUnit, Value, Attributes,"
        " epoch_ns(TimeUnix) AS t, epoch_ns(StartTimeUnix) AS s FROM otel_metrics_gauge"
    ) == [
        {
            "ServiceName": "multi-service",
            "MetricName": "system.cpu.utilization",
            "MetricUnit": "1",
            "Value": 0.42,
            "Attributes": {"cpu": "0"},
            "t": ts,
            "s": 0,
        }
    ]
    assert cli.query(
        "SELECT MetricName, Value, AggregationTemporality, IsMonotonic, Attributes"
        " FROM otel_metrics_sum"
    ) == [
        {
            "MetricName": "system.network.io",
            "Value": 123456789.0,
            "AggregationTemporality": 2,  # AGGREGATION_TEMPORALITY_CUMULATIVE
            "IsMonotonic": True,
            "Attributes": {"direction": "transmit"},
        }
    ]
    assert cli.query(
        "SELECT MetricName, MetricUnit, Count, Sum, BucketCounts, ExplicitBounds, Min, Max,"
        " AggregationTemporality FROM otel_metrics_histogram"
    ) == [
        {
            "MetricName": "http.server.request.duration",
            "MetricUnit": "ms",
            "Count": 100,
            "Sum": 5000.0,
            "BucketCounts": [10, 30, 40, 15, 5],
            "ExplicitBounds": [10.0, 50.0, 100.0, 500.0],
            "Min": 5.0,
            "Max": 1000.0,
            "AggregationTemporality": 2,
        }
    ]


# ------------------------------------------------------------------- Langfuse: pydantic-ai tools

PYDANTIC_TRACE = "7a38edd8123db47ad8dcb8aa4c5e3926"


def test_langfuse_pydantic_ai_agent_runs(cli: Cli, external: Path) -> None:
    summary = ingest(cli, external / "langfuse-pydantic-ai-tools.trace.json")
    assert summary["spans"] == 12
    root, run1, run2, evaluator, tools = (
        "00d3f40ee8e3b716",
        "5b5c52d029f28206",
        "49ae06cbfa06611f",
        "227eb5c856efa3d3",
        "93d5543f7340c2e6",
    )
    gpt = {"provider": "openai", "model": "gpt-4o-mini-2024-07-18"}  # gen_ai.response.model

    def agent(span_id: str, name: str, reported: tuple[int, int]) -> dict[str, Any]:
        # gen_ai.agent.name and the run's gen_ai.usage.* totals, no operation name.
        row = span(span_id, root, f"{name} run", "agent", agent_name=name, cost_usd=None)
        return {**row, "reported_input_tokens": reported[0], "reported_output_tokens": reported[1]}

    def chat(span_id: str, parent: str, tokens: tuple[int, int], cost: float, finish: str) -> Any:
        row = span(span_id, parent, "chat gpt-4o-mini", "llm", input_tokens=tokens[0],
                   output_tokens=tokens[1], finish_reason=finish, agent_name=None,
                   cost_usd=cost, **gpt)  # fmt: skip
        return {**row, "reported_input_tokens": None, "reported_output_tokens": None}

    def plain(span_id: str, parent: str | None, name: str, kind: str, **kw: Any) -> Any:
        row = span(span_id, parent, name, kind, agent_name=None, cost_usd=None, **kw)
        return {**row, "reported_input_tokens": None, "reported_output_tokens": None}

    expected = [
        plain(root, None, "run_joke_generator", "other"),  # Langfuse SPAN, no attributes
        agent(run1, "joke_agent", (682, 126)),  # its two calls: 265 + 417, 73 + 53
        agent(run2, "joke_agent", (502, 14)),
        agent(evaluator, "evaluator_agent", (131, 69)),
        # costDetails.total of each GENERATION
        chat("be64c23f44dd98be", run1, (265, 73), 8.355e-05, "tool_call"),
        chat("00d2804abb764b1b", run1, (417, 53), 9.435e-05, "stop"),
        chat("8976b072313c51f2", run2, (502, 14), 8.37e-05, "stop"),
        chat("eb0cc14cf7943ad5", evaluator, (131, 69), 6.1049999e-05, "tool_call"),
        plain(tools, run1, "running 3 tools", "other"),
        *(
            plain(sid, tools, f"running tool: {tool}", "tool", tool_name=tool)
            for sid, tool in [
                ("02d7769b76595f0b", "get_dad_joke_suggestion"),
                ("199eff9980ea8b99", "get_one_liner_suggestion"),
                ("99ec63d0b5ecdbf5", "get_pun_suggestion"),
            ]
        ),
    ]
    extra = ("agent_name", "cost_usd", "reported_input_tokens", "reported_output_tokens")
    assert by_span_id(ai_spans(cli, PYDANTIC_TRACE, extra)) == by_span_id(expected)
    # Sums over ai_spans are the model calls' (2630 when the runs' totals were counted too).
    assert cli.query(
        "SELECT sum(input_tokens) AS i, sum(output_tokens) AS o, sum(reported_input_tokens) AS ri"
        f" FROM ai_spans WHERE trace_id = '{PYDANTIC_TRACE}'"
    ) == [{"i": 1315, "o": 209, "ri": 682 + 502 + 131}]
    assert ai_trace(cli, PYDANTIC_TRACE) == trace(
        root_name="run_joke_generator",
        span_count=12,
        llm_calls=4,
        tool_calls=3,
        input_tokens=1315,
        output_tokens=209,
        models=["gpt-4o-mini-2024-07-18"],
    )
    (cost,) = cli.query(f"SELECT cost_usd FROM ai_traces WHERE trace_id = '{PYDANTIC_TRACE}'")
    # 3.2265e-4 (SOURCES.md, rounded): the four costDetails.total, one written 6.1049999e-05.
    assert cost["cost_usd"] == pytest.approx(8.355e-05 + 9.435e-05 + 8.37e-05 + 6.1049999e-05)
    assert round(cost["cost_usd"], 9) == 3.2265e-4


def test_parallel_tool_results_keep_their_ids(cli: Cli, external: Path) -> None:
    ingest(cli, external / "langfuse-pydantic-ai-tools.trace.json")
    inputs, _ = _messages(cli, "00d2804abb764b1b")  # the 2nd chat
    results = [m for m in inputs if m.get("tool_call_id")]
    assert results == [
        {
            "role": "user",  # as written: the tool_call_response parts sit in a user message
            "content": "Pun idea: Play on words related to 'programming' - think about"
            " homophones or double meanings",
            "tool_call_id": "call_X0OSgjUukT5inyEQvuZQnHrk",
            "name": "get_pun_suggestion",
        },
        {
            "role": "user",
            "content": "Dad joke idea: Use a classic setup-punchline format about 'programming'"
            " with a groan-worthy twist",
            "tool_call_id": "call_WxZcCvSDhGT4RJHlcU01k10x",
            "name": "get_dad_joke_suggestion",
        },
        {
            "role": "user",
            "content": "One-liner idea: Make a quick, witty observation about 'programming' in a"
            " single sentence",
            "tool_call_id": "call_aRaObiWKKt6GzgDkkUl3bu1Q",
            "name": "get_one_liner_suggestion",
        },
    ]
    assert [m["role"] for m in inputs] == ["system", "user", "assistant", "user", "user", "user"]
    calls = inputs[2]["tool_calls"]
    assert [c["id"] for c in calls] == [r["tool_call_id"] for r in results]


def test_agent_run_output_is_its_step_output(cli: Cli, external: Path) -> None:
    from aiobs.semantic import content

    ingest(cli, external / "langfuse-pydantic-ai-tools.trace.json")
    attrs = _stored_span(cli, "227eb5c856efa3d3")["SpanAttributes"]
    assert content.step_input_output(attrs)["output"]["quality"] == "good"  # final_result JSON


# ---------------------------------------------------------------------------- Langfuse: Koog

KOOG_TRACE = "dff173a675b759ce1b70e522b27d6846"


def test_langfuse_koog_agent(cli: Cli, external: Path) -> None:
    summary = ingest(cli, external / "langfuse-koog.trace.json")
    assert summary["spans"] == 11
    agent, run = "1b7200380e3316e7", "bb189bc3771ff83d"
    conversation = "6f8d2449-33ed-4c7c-82e7-5410e34ee4e6"
    call_llm, execute, send = "6a0770019fe7c2b4", "5555afb6655e4d44", "6021df46275ad2d8"
    on_run = {"session_id": conversation}  # gen_ai.conversation.id on the run and its nodes
    gpt = {"provider": "openai", "model": "gpt-4o", **on_run}
    expected = [
        # gen_ai.operation.name create_agent / invoke_agent
        span(
            agent,
            None,
            f"agent.{'f9f77d1a-437f-4ba6-890e-b592a50cbd21'}",
            "agent",
            provider="openai",
            model="gpt-4o",
        ),
        span(run, agent, f"run.{conversation}", "agent", provider="openai", **on_run),
        span("890e9114a4449257", run, "node.__start__", "other", **on_run),
        span(call_llm, run, "node.nodeCallLLM", "other", **on_run),
        span(
            "042f9350c3729147",
            call_llm,
            "llm.chat",
            "llm",
            input_tokens=47,
            output_tokens=106,
            finish_reason="tool_calls",
            **gpt,
        ),
        span(execute, run, "node.nodeExecuteTool", "other", **on_run),
        span("33188493784a060d", execute, "tool.ByeTool", "tool", tool_name="ByeTool"),
        span("66f269083a2fff81", execute, "tool.HelloTool", "tool", tool_name="HelloTool"),
        span(send, run, "node.nodeSendToolResult", "other", **on_run),
        span(
            "e44e72cf2d221781",
            send,
            "llm.chat",
            "llm",
            input_tokens=168,
            output_tokens=19,
            finish_reason="stop",
            **gpt,
        ),
        span("7578374e12a7faa5", run, "node.__finish__", "other", **on_run),
    ]
    assert by_span_id(ai_spans(cli, KOOG_TRACE)) == by_span_id(expected)
    assert cli.query(
        f"SELECT DISTINCT service_name, service_version FROM ai_spans WHERE trace_id = '{KOOG_TRACE}'"
    ) == [{"service_name": "ai.koog", "service_version": "0.3.0"}]
    assert ai_trace(cli, KOOG_TRACE) == trace(
        root_name="agent.f9f77d1a-437f-4ba6-890e-b592a50cbd21",
        span_count=11,
        llm_calls=2,
        tool_calls=2,
        input_tokens=215,
        output_tokens=125,
        models=["gpt-4o"],
        session_id=conversation,
    )
    (cost,) = cli.query(f"SELECT cost_usd FROM ai_traces WHERE trace_id = '{KOOG_TRACE}'")
    assert cost["cost_usd"] == pytest.approx(0.0017875, rel=1e-9)  # 0.0011775 + 0.00061
    inputs, outputs = _messages(cli, "e44e72cf2d221781")  # indexed gen_ai.prompt.N.*
    assert [m["role"] for m in inputs] == ["system", "user", "tool", "tool", "tool", "tool"]
    # Koog writes the assistant's tool calls as a message's content (OpenAI JSON, role "tool"):
    # read as the calls they are, each with its id, name and arguments.
    assert [(m.get("tool_calls"), m["content"]) for m in inputs[2:]] == [
        ([{"id": "call_n2HaWg9KFP0BZDqXv6G4b3nJ", "name": "HelloTool",
           "arguments": {"name": "Bob"}}], ""),
        (None, "Hello my darling Bob!"),
        ([{"id": "call_dOeEHJDI0liHrCdFWTpkTsuO", "name": "ByeTool",
           "arguments": {"name": "Bob"}}], ""),
        (None, "Bye my dear Bob!"),
    ]  # fmt: skip
    _, first_outputs = _messages(cli, "042f9350c3729147")
    assert [c["name"] for m in first_outputs for c in m["tool_calls"]] == ["HelloTool", "ByeTool"]
    assert outputs == [
        {"role": "assistant", "content": "Hello my darling Bob! And, bye my dear Bob!"}
    ]


# -------------------------------------------------------------------------------- every file


def test_every_external_file_ingests_cleanly(cli: Cli, external: Path) -> None:
    files = sorted(p for p in external.iterdir() if p.name != "SOURCES.md")
    assert len(files) == 10
    summary = ingest(cli, *files)
    # 8 + 40 + 57 + 1 (+1 duplicate) + 11 + 12 + 19 (+19 duplicates: the .pb's twin) spans.
    assert (summary["spans"], summary["log_records"], summary["metric_points"]) == (148, 81, 3)
    assert summary["duplicates"] == 1 + 19
    # What each file was read as (aiobs_ingests.format).
    assert {Path(f["source"]).name: f["format"] for f in summary["per_file"]} == {
        "jaegerui-apiv3-gettrace.json": "jaeger api v3",
        "jaegerui-genai-agent.otlp.json": "otlp-json",
        "jaegerui-genai.jaeger.json": "jaeger json",
        "jaegerui-otlp2jaeger-dup.otlp.json": "otlp-json",
        "langfuse-koog.trace.json": "langfuse export",
        "langfuse-pydantic-ai-tools.trace.json": "langfuse export",
        "otlp2parquet-logs.pb": "otlp-protobuf",  # one bare ExportLogsServiceRequest
        "otlp2parquet-metrics-mixed.otlp.jsonl": "otlp-json",  # one line: one document
        "otlp2parquet-traces.otlp.jsonl": "otlp-json-lines",
        "otlp2parquet-traces.pb": "otlp-protobuf",
    }
    assert cli.query("SELECT count(*) AS n FROM ai_spans") == [{"n": 148}]
