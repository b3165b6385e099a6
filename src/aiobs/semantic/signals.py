"""User signals: which OTel events (log records with an event name) mean what, defined once.

Browsers and apps name their analytics events differently; each signal lists the event names (and
attribute values) that count as it. ``signal_sql`` renders a per-session aggregate over
``otel_logs``; browse, replay and diff share it.

Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

# signal -> SQL condition over an otel_logs row
SIGNALS: dict[str, str] = {
    "thumbs_down": (
        "(EventName IN ('user.feedback', 'feedback', 'chat.feedback')"
        " AND (lower(LogAttributes['feedback.rating']) IN ('thumbs_down', 'down', 'negative', '-1')"
        " OR Body LIKE '%thumbs_down%'))"
    ),
    "thumbs_up": (
        "(EventName IN ('user.feedback', 'feedback', 'chat.feedback')"
        " AND (lower(LogAttributes['feedback.rating']) IN ('thumbs_up', 'up', 'positive', '1')"
        " OR Body LIKE '%thumbs_up%'))"
    ),
    "retry": "(EventName IN ('chat.retry', 'chat.regenerate', 'message.regenerate'))",
    "rephrase": "(EventName IN ('chat.rephrase'))",
    "abandoned": "(EventName IN ('session.abandoned', 'chat.abandoned'))",
    "resolved": "(EventName IN ('chat.resolved', 'session.resolved'))",
    "csat": "(EventName IN ('chat.csat', 'csat', 'survey.csat'))",
}
# Evaluation labels that mean the answer failed (ours say "fail"; importers use the others).
FAILED_LABELS = ("fail", "failed", "false")
# ... as a condition over an otel_logs row (an evaluation event)
EVAL_FAILED = (
    "lower(LogAttributes['gen_ai.evaluation.score.label']) IN ("
    + ", ".join(f"'{label}'" for label in FAILED_LABELS)
    + ")"
)
CSAT_VALUE = "TRY_CAST(coalesce(LogAttributes['csat.score'], LogAttributes['score']) AS DOUBLE)"
SESSION_KEY = "LogAttributes['session.id']"


def session_signals_sql(sessions: str | None = None) -> str:
    """One row per session id: counts of each signal and the mean CSAT (only for the session ids
    the subquery ``sessions`` gives, when given)."""
    counts = ",\n  ".join(
        f"count(*) FILTER (WHERE {cond}) AS {name}" for name, cond in SIGNALS.items()
    )
    only = f" AND {SESSION_KEY} IN ({sessions})" if sessions else ""
    return f"""
SELECT {SESSION_KEY} AS session_id,
  {counts},
  avg({CSAT_VALUE}) FILTER (WHERE {SIGNALS["csat"]}) AS csat_score
FROM otel_logs
WHERE EventName <> '' AND {SESSION_KEY} IS NOT NULL AND {SESSION_KEY} <> ''{only}
GROUP BY 1
"""
