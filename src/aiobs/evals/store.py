"""Writing evaluation verdicts into the store as OTel evaluation events (``otel_logs`` rows named
``gen_ai.evaluation.result``), idempotently: a verdict of the same evaluator version on the same
span is already there and adds nothing; one of another version replaces the old. Only rows of
the scope ``aiobs.eval`` are ever replaced.

Writes through the DuckDB store's own connection, as ingest does (the Backend protocol is
read-only by design). Must not import typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiobs.evals.run import EVENT, SCOPE

if TYPE_CHECKING:
    from aiobs.backend.duckdb import DuckDBBackend
    from aiobs.evals.builtin import Answer, Verdict

SCOPE_VERSION = "1"


def store_verdicts(
    store: DuckDBBackend, pairs: Sequence[tuple[Answer, Verdict]]
) -> tuple[int, int]:
    """Store the verdicts; (rows added, rows of an older evaluator version removed)."""
    import pyarrow as pa

    if not pairs:
        return 0, 0
    new = pa.table(
        {
            "time": pa.array([a.time for a, _ in pairs], pa.timestamp("ns")),
            "trace_id": [a.trace_id for a, _ in pairs],
            "span_id": [a.span_id for a, _ in pairs],
            "service": [a.service_name or "" for a, _ in pairs],
            "name": [v.name for _, v in pairs],
            "version": [v.version for _, v in pairs],
            "label": [v.label for _, v in pairs],
            "score": [None if v.score is None else repr(float(v.score)) for _, v in pairs],
            "explanation": [v.explanation for _, v in pairs],
        }
    )
    con: Any = store.con
    con.register("aiobs_new_verdicts", new)
    ours = f"l.ScopeName = '{SCOPE}' AND l.EventName = '{EVENT}'"
    try:
        con.execute("BEGIN TRANSACTION")
        removed = con.execute(
            f"""DELETE FROM otel_logs l USING aiobs_new_verdicts n
WHERE {ours} AND l.SpanId = n.span_id AND l.TraceId = n.trace_id
  AND l.LogAttributes['gen_ai.evaluation.name'] = n.name
  AND l.LogAttributes['aiobs.evaluator.version'] <> n.version"""
        ).fetchone()
        added = con.execute(
            f"""INSERT INTO otel_logs BY NAME
SELECT n.time AS Timestamp, n.time::TIMESTAMP AS TimestampTime, n.trace_id AS TraceId,
  n.span_id AS SpanId, 1 AS TraceFlags, 'INFO' AS SeverityText, 9 AS SeverityNumber,
  n.service AS ServiceName, n.explanation AS Body, '' AS ResourceSchemaUrl,
  map(['service.name'], [n.service]) AS ResourceAttributes, '' AS ScopeSchemaUrl,
  '{SCOPE}' AS ScopeName, '{SCOPE_VERSION}' AS ScopeVersion, map() AS ScopeAttributes,
  map_from_entries(list_filter([
      {{'key': 'gen_ai.evaluation.name', 'value': n.name}},
      {{'key': 'gen_ai.evaluation.score.label', 'value': n.label}},
      {{'key': 'gen_ai.evaluation.score.value', 'value': n.score}},
      {{'key': 'gen_ai.evaluation.explanation', 'value': n.explanation}},
      {{'key': 'aiobs.evaluator.version', 'value': n.version}}
    ], lambda e: e.value IS NOT NULL)) AS LogAttributes,
  '{EVENT}' AS EventName
FROM aiobs_new_verdicts n
WHERE NOT EXISTS (
  SELECT 1 FROM otel_logs l WHERE {ours} AND l.SpanId = n.span_id AND l.TraceId = n.trace_id
    AND l.LogAttributes['gen_ai.evaluation.name'] = n.name
    AND l.LogAttributes['aiobs.evaluator.version'] = n.version)"""
        ).fetchone()
        if added and added[0]:
            # Replay finds a trace's log records by time (aiobs_trace_log_times).
            con.execute(
                "INSERT INTO aiobs_trace_log_times SELECT trace_id, min(time), max(time)"
                " FROM aiobs_new_verdicts GROUP BY trace_id"
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("aiobs_new_verdicts")
    return (int(added[0]) if added else 0), (int(removed[0]) if removed else 0)
