"""The guided tour printed after ``aiobs demo``: commands to try, with ids and times from the built store.

Every command is printed exactly as it must be typed (``--db`` included when the store is not the
default), and a test runs each one. Commands only use what aiobs has today; the SQL steps show
what the commands do not cover yet.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiobs.demo.world import HOUR_NS, NS

if TYPE_CHECKING:
    from aiobs.backend import Backend


@dataclass(frozen=True)
class TourStep:
    title: str
    why: str
    args: tuple[str, ...]  # after ``aiobs [--db …]``

    def command(self, prefix: tuple[str, ...]) -> str:
        return " ".join(shell_quote(a) for a in ("aiobs", *prefix, *self.args))


def shell_quote(arg: str) -> str:
    """Quote for a POSIX shell the way a person would: SQL goes in double quotes, so its single
    quotes stay readable; anything double quotes cannot hold safely gets shlex's single quotes."""
    if re.fullmatch(r"[\w@%+=:,./-]+", arg):
        return arg
    if not re.search(r'["$`\\!]', arg):
        return f'"{arg}"'
    return shlex.quote(arg)


def _one(store: Backend, sql: str, params: list[Any] | None = None) -> Any:
    row = store.one(sql, params or [])
    return row[0] if row else None


def _iso_minute(t_ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t_ns // NS, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso_z(t_ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t_ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ns(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * NS


JOURNEY_KEY = "demo.journey"  # aiobs_meta: the tour's failed journey, for the README's quickstart


def journey(store: Backend) -> str | None:
    """The journey the tour tells: a customer's billing question whose payment lookup fails on
    the deprecated tool; the model apologises and hands off to billing, the customer gives a
    thumbs-down."""
    found = _one(
        store,
        """
        SELECT t.trace_id FROM ai_traces t
        WHERE t.status = 'error' AND t.service_name = 'support-chat'
          AND EXISTS (SELECT 1 FROM ai_spans s WHERE s.trace_id = t.trace_id
                      AND s.step_kind = 'handoff')
          AND EXISTS (SELECT 1 FROM ai_spans s WHERE s.trace_id = t.trace_id
                      AND s.attributes['acme.intent'] IN
                          ('billing_question', 'refund_status', 'refund_duplicate_charge'))
          AND EXISTS (SELECT 1 FROM otel_logs l WHERE l.TraceId = t.trace_id
                      AND l.EventName = 'user.feedback'
                      AND l.LogAttributes['feedback.rating'] = 'thumbs_down')
        ORDER BY (SELECT count(*) FROM ai_spans s WHERE s.trace_id = t.trace_id
                  AND s.tool_name = 'lookup_charge_v1') DESC, t.start_time, t.trace_id
        LIMIT 1
        """,
    )
    return str(found) if found else None


def tour(store: Backend, manifest: dict[str, Any]) -> list[TourStep]:
    """Tour steps for the demo store ``store`` (its ai_spans/ai_traces views)."""
    incidents = {i["id"]: i for i in manifest.get("incidents", [])}
    steps = [
        TourStep(
            "What is in the store",
            "signals, services, models, step kinds and how well the LLM steps are instrumented",
            ("stats",),
        )
    ]
    if manifest.get("start") and manifest.get("end"):
        steps.append(
            TourStep(
                "What broke this week, and why",
                "the anomaly scan: incidents with their onset, likely cause (deployments, config "
                "changes, new models and tools), the users they hurt, and a journey to replay",
                ("scan", "--since", f"{manifest['start']}..{manifest['end']}"),
            )
        )

    failed = journey(store)
    if failed:
        steps.append(
            TourStep(
                "A failed journey, step by step",
                "a customer's payment question: the tool call fails, the model apologises and hands "
                "off to a human, the customer gives a thumbs-down — with the logs, user events, "
                "metrics and deployment around it",
                ("replay", failed[:12]),
            )
        )
        steps.append(
            TourStep(
                "The same journey in a paragraph",
                "a summary within a token budget, for a ticket or a coding agent",
                ("describe", failed[:12], "--max-tokens", "400"),
            )
        )
    deprecated = incidents.get("deprecated-tool-503")
    if deprecated is not None:
        steps.append(
            TourStep(
                "Every journey that hit the deprecated tool",
                "traces whose steps include lookup_charge_v1, slowest first",
                (
                    "traces",
                    "--since",
                    f"{deprecated['start']}..{deprecated['end']}",
                    "--where",
                    "tool_name = 'lookup_charge_v1'",
                    "--sort",
                    "-duration_ms",
                    "-n",
                    "10",
                ),
            )
        )
    steps.append(
        TourStep(
            "Unhappy conversations",
            "sessions with the most thumbs-down, with retries, abandonment and CSAT",
            ("sessions", "--status", "error", "--sort", "-thumbs_down", "-n", "10"),
        )
    )
    steps.append(
        TourStep(
            "Prompt versions compared",
            "error rate, latency, tool errors, handoffs and user signals of support-chat under each "
            "system-prompt version" + (" (v7 is the bad one)" if deprecated is not None else ""),
            ("segment", "--by", "prompt_version", "--service", "support-chat"),
        )
    )
    if deprecated is not None and deprecated.get("end"):
        start, end = _ns(deprecated["start"]), _ns(deprecated["end"])
        before = _iso_z(start - (end - start))
        steps.append(
            TourStep(
                "What changed, and why",
                "the hours before the 2.4.0 deployment against the hours after: which metrics "
                "regressed significantly, and which values explain it",
                (
                    "diff",
                    "--baseline",
                    f"{before}..{deprecated['start']}",
                    "--target",
                    f"{deprecated['start']}..{deprecated['end']}",
                    "--where",
                    "service_name = 'support-chat'",
                    "--top",
                    "8",
                ),
            )
        )
    steps.append(
        TourStep(
            "Tokens per conversation, by release and workflow",
            "order-assistant's tokens and cost per trace before and after 1.9.0",
            ("segment", "--by", "service_version,workflow", "--service", "order-assistant"),
        )
    )
    rebuild = incidents.get("vector-index-rebuild")
    if rebuild is not None:
        lo = _iso_minute(_ns(rebuild["start"]) - HOUR_NS)
        hi = _iso_minute(_ns(rebuild["end"]) + HOUR_NS)
        steps.append(
            TourStep(
                "Vector-DB latency around a deployment",
                "p95 query latency in 10-minute buckets, with the retrieval spans beside it",
                (
                    "query",
                    "select time_bucket(interval 10 minute, TimeUnix) as t, "
                    "round(max(Value)) as vectordb_p95_ms, "
                    "(select round(avg(duration_ms)) from ai_spans where step_kind = 'retrieval' "
                    "and time_bucket(interval 10 minute, start_time) = t) as retrieval_avg_ms "
                    "from otel_metrics_gauge where MetricName = 'vectordb.query.duration' "
                    f"and TimeUnix between '{lo}' and '{hi}' group by 1 order by 1",
                ),
            )
        )
    steps.append(
        TourStep(
            "Answers that show hidden reasoning, by model",
            "LLM answers whose text contains a <thinking> block",
            (
                "query",
                "select model, count(*) as answers, "
                "count_if(attributes['gen_ai.output.messages'] like '%<thinking>%') as leaked "
                "from ai_spans where step_kind = 'llm' and service_name = 'support-chat' "
                "and finish_reason = 'stop' group by 1 order by 1",
            ),
        )
    )
    steps.append(
        TourStep(
            "What users did, day by day",
            "sessions, thumbs-down, retries and abandonment from the browser events",
            (
                "query",
                "select date_trunc('day', Timestamp) as day, "
                "count_if(EventName = 'chat.opened') as sessions, "
                "count_if(EventName = 'user.feedback' "
                "and LogAttributes['feedback.rating'] = 'thumbs_down') as thumbs_down, "
                "count_if(EventName = 'chat.retry') as retries, "
                "count_if(EventName = 'session.abandoned') as abandoned "
                "from otel_logs where ServiceName = 'acme-web' group by 1 order by 1",
            ),
        )
    )
    steps.append(
        TourStep(
            "Deployments and config changes",
            "the change events a good investigation lines incidents up against",
            (
                "query",
                "select Timestamp, ServiceName, EventName, Body from otel_logs "
                "where EventName in ('deployment', 'config.change') order by Timestamp",
            ),
        )
    )
    return steps
