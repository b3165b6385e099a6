"""``aiobs export --to dataset``: the selected LLM steps as JSON Lines, one answer a line with
what it was given and what it said — input messages, output messages, the documents retrieved
before it, the tool results it followed, its evaluation results (built-in and imported) — and
its trace: the start of an offline evaluation set made of production failures.

Must not import typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiobs.evals.run import EVENT, load_answers
from aiobs.semantic.signals import FAILED_LABELS

if TYPE_CHECKING:
    from aiobs.analysis.filters import TraceFilter
    from aiobs.backend import Backend

_EPOCH = datetime(1970, 1, 1)  # an answer's time is ns since it; the store's times are naive UTC


def _evaluations(store: Backend, filt: TraceFilter) -> dict[str, list[dict[str, Any]]]:
    """Each LLM step's evaluation results (span id → results), on the selected traces."""
    where, params = filt.sql()
    table = "ai_traces" if filt.reads_cost else "aiobs_trace_facts"
    out: dict[str, list[dict[str, Any]]] = {}
    for span, name, label, score, why, source in store.rows(
        f"""SELECT SpanId, LogAttributes['gen_ai.evaluation.name'],
  LogAttributes['gen_ai.evaluation.score.label'],
  TRY_CAST(LogAttributes['gen_ai.evaluation.score.value'] AS DOUBLE),
  LogAttributes['gen_ai.evaluation.explanation'], ScopeName
FROM otel_logs
WHERE EventName = '{EVENT}' AND SpanId <> ''
  AND TraceId IN (SELECT t.trace_id FROM {table} t WHERE {where})""",
        params,
    ):
        out.setdefault(span, []).append(
            {"name": name, "label": label, "score": score, "explanation": why, "by": source}
        )
    return out


def dataset_rows(
    store: Backend, filt: TraceFilter, evaluation: str | None = None, label: str = "fail"
) -> Iterator[dict[str, Any]]:
    """The answers of the traces ``filt`` selects (with ``evaluation``, only those it gave
    ``label``: ``fail`` also matches failed/false), each as one dataset record."""
    results = _evaluations(store, filt)
    wanted = {label.lower()} | (set(FAILED_LABELS) if label.lower() in FAILED_LABELS else set())
    for a in load_answers(store, filt):
        evals = results.get(a.span_id, [])
        if evaluation is not None and not any(
            e["name"] == evaluation and (e["label"] or "").lower() in wanted for e in evals
        ):
            continue
        yield {
            "trace_id": a.trace_id,
            "span_id": a.span_id,
            "time": None if a.time is None else _EPOCH + timedelta(microseconds=a.time // 1000),
            "service_name": a.service_name,
            "model": a.model,
            "input": [m.to_json() for m in a.inputs],
            "output": [m.to_json() for m in a.outputs],
            "finish_reason": a.finish_reason,
            "retrieved": [
                {"id": d.id, "score": d.score, "content": d.content} for d in a.documents
            ],
            "tool_results": [
                {"name": t.name, "failed": t.failed, "result": t.result, "error": t.error}
                for t in a.tools
            ],
            "evaluations": evals,
        }
