"""Langfuse trace exports (``{"trace": …, "observations": […]}``) → OTLP-shaped documents.

Langfuse keeps each observation's original OTel attributes (stringified) under
``metadata.attributes``, with ``resourceAttributes`` and ``scope`` beside them; the keys it lifted into
``input``/``output`` are removed. We restore the original attributes, put the lifted content and
Langfuse's own derived values (usage, cost, level, prompt, trace user/session) under the ``langfuse.*``
attribute names Langfuse itself reads, and let the semantic layer map them like any other span.

Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from aiobs.ingest.values import RecordError, iso_to_ns


def _json_obj(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _kv(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"key": str(k), "value": {"stringValue": _text(v)}}
        for k, v in attrs.items()
        if v is not None and v != "" and v != {} and v != []
    ]


def _hex_span_id(value: Any) -> str:
    text = str(value or "")
    if len(text) == 16 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text
    # Langfuse-native observation ids are UUIDs or arbitrary strings: derive a stable 8-byte id.
    import hashlib

    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _hex_trace_id(value: Any) -> str:
    text = str(value or "").replace("-", "")
    if len(text) == 32 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text
    import hashlib

    return hashlib.blake2b(str(value).encode(), digest_size=16).hexdigest()


def langfuse_to_otlp(
    doc: dict[str, Any], on_reject: Callable[[str, Any], None] | None = None
) -> dict[str, Any]:
    """The export as one OTLP traces document. A bad observation is passed to ``on_reject``
    (reason, observation) and left out; the rest of the trace still lands."""
    trace = doc.get("trace") or {}
    observations = doc.get("observations")
    if not isinstance(trace, dict) or not isinstance(observations, list):
        raise RecordError("expected {trace: {...}, observations: [...]}")
    first = observations[0] if observations and isinstance(observations[0], dict) else {}
    trace_id = _hex_trace_id(trace.get("id") or first.get("traceId") or "")
    trace_attrs = {
        "langfuse.trace.name": trace.get("name"),
        "langfuse.user.id": trace.get("userId"),
        "langfuse.session.id": trace.get("sessionId"),
        "langfuse.environment": trace.get("environment"),
        "langfuse.release": trace.get("release"),
        "langfuse.version": trace.get("version"),
        "langfuse.trace.tags": trace.get("tags") or None,
    }
    resource_spans = []
    for obs in observations:
        try:
            resource_spans.append(_observation(obs, trace_id, trace_attrs))
        except (RecordError, TypeError, ValueError, AttributeError) as exc:
            if on_reject is None:
                raise RecordError(str(exc)) from exc
            on_reject(str(exc), obs)
    out: dict[str, Any] = {"resourceSpans": resource_spans}
    scores = _scores(trace.get("scores"), trace_id, _root_span(observations), on_reject)
    if scores:
        out["resourceLogs"] = [
            {"resource": {"attributes": []}, "scopeLogs": [{"scope": {"name": "langfuse"},
                                                            "logRecords": scores}]}
        ]  # fmt: skip
    return out


def _root_span(observations: list[Any]) -> str:
    """The span id of the trace's first observation without a parent: where a trace-level score
    lands (replay shows it on the root step; ``eval.NAME`` in --where reads it there)."""
    roots = [
        o for o in observations
        if isinstance(o, dict) and not o.get("parentObservationId") and o.get("startTime")
    ]  # fmt: skip
    return _hex_span_id(min(roots, key=lambda o: str(o["startTime"]))["id"]) if roots else ""


def _scores(
    scores: Any, trace_id: str, root: str, on_reject: Callable[[str, Any], None] | None
) -> list[dict[str, Any]]:
    """Langfuse scores as OTel evaluation events (log records named
    ``gen_ai.evaluation.result``), linked to the observation they score, else the root span. A
    numeric score keeps its value and has no label (Langfuse's own scales differ: toxicity 0 is
    good, correctness 1 is); a categorical or boolean one has its value as the label."""
    records = []
    for score in scores if isinstance(scores, list) else []:
        if not isinstance(score, dict) or not score.get("name"):
            if on_reject is not None:
                on_reject("a score without a name", score)
            continue
        when = score.get("timestamp") or score.get("createdAt")
        try:
            time_ns = iso_to_ns(str(when)) if when else 0
        except (RecordError, ValueError) as exc:
            if on_reject is not None:
                on_reject(f"score {score.get('name')!r}: {exc}", score)
            continue
        kind = str(score.get("dataType") or "NUMERIC").upper()
        value = score.get("value")
        label = score.get("stringValue") if kind != "NUMERIC" else None
        attrs: dict[str, Any] = {
            "gen_ai.evaluation.name": score["name"],
            "gen_ai.evaluation.explanation": score.get("comment"),
            "langfuse.score.id": score.get("id"),
            "langfuse.score.source": score.get("source"),
            "langfuse.score.data_type": kind,
        }
        if label not in (None, ""):
            attrs["gen_ai.evaluation.score.label"] = str(label).lower()
        kv = _kv(attrs)
        if isinstance(value, int | float) and not isinstance(value, bool):
            kv.append({"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": value}})
        observation = score.get("observationId")
        records.append(
            {
                "timeUnixNano": time_ns,
                "eventName": "gen_ai.evaluation.result",
                "traceId": trace_id,
                "spanId": _hex_span_id(observation) if observation else root,
                "body": {"stringValue": str(score.get("comment") or "")},
                "attributes": kv,
            }
        )
    return records


def _observation(obs: Any, trace_id: str, trace_attrs: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(obs, dict):
        raise RecordError("observation is not an object")
    meta = _json_obj(obs.get("metadata"))
    attrs: dict[str, Any] = dict(_json_obj(meta.get("attributes")))
    if not attrs:
        # Created with Langfuse's own SDK, not OpenTelemetry: Langfuse's fields are all there is.
        # (For OTel-derived observations they are Langfuse's reading of the attributes we keep,
        # e.g. it calls Vercel's wrapper span a generation; we read the attributes ourselves.)
        kind = str(obs.get("type") or "").lower()
        attrs["langfuse.observation.type"] = kind or None
        attrs["langfuse.observation.model.name"] = obs.get("model")
        if kind == "tool":
            attrs["gen_ai.tool.name"] = obs.get("name")
    usage = obs.get("usageDetails") or None
    cost = obs.get("costDetails") or None
    attrs.update(
        {
            "langfuse.observation.input": obs.get("input"),
            "langfuse.observation.output": obs.get("output"),
            "langfuse.observation.level": obs.get("level"),
            "langfuse.observation.status_message": obs.get("statusMessage"),
            "langfuse.observation.usage_details": usage,
            "langfuse.observation.cost_details": cost,
            "langfuse.observation.prompt.name": obs.get("promptName"),
            "langfuse.observation.prompt.version": obs.get("promptVersion"),
            "langfuse.observation.completion_start_time": obs.get("completionStartTime"),
            **{k: v for k, v in trace_attrs.items() if k not in attrs},
        }
    )
    start = obs.get("startTime")
    if not start:
        raise RecordError(f"observation {obs.get('id')!r} has no startTime")
    start_ns = iso_to_ns(str(start))
    if obs.get("completionStartTime") and "gen_ai.response.time_to_first_chunk" not in attrs:
        first_chunk = iso_to_ns(str(obs["completionStartTime"])) - start_ns
        if first_chunk >= 0:
            attrs["gen_ai.response.time_to_first_chunk"] = first_chunk / 1e9
    end_ns = iso_to_ns(str(obs["endTime"])) if obs.get("endTime") else start_ns
    level = str(obs.get("level") or "").upper()
    scope = _json_obj(meta.get("scope"))
    resource = _json_obj(meta.get("resourceAttributes"))
    span = {
        "traceId": _hex_trace_id(obs.get("traceId") or trace_id),
        "spanId": _hex_span_id(obs.get("id")),
        "parentSpanId": (
            _hex_span_id(obs["parentObservationId"]) if obs.get("parentObservationId") else ""
        ),
        "name": obs.get("name") or "",
        "kind": 1,
        "startTimeUnixNano": start_ns,
        "endTimeUnixNano": end_ns,
        "attributes": _kv(attrs),
        "status": {
            "code": 2 if level == "ERROR" else 0,
            "message": obs.get("statusMessage") or "",
        },
    }
    return {
        "resource": {"attributes": _kv(resource)},
        "scopeSpans": [
            {
                "scope": {
                    "name": scope.get("name") or "",
                    "version": scope.get("version") or "",
                },
                "spans": [span],
            }
        ],
    }
