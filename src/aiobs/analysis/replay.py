"""Replay: one AI journey (a trace, or every trace of a session) as plain data, step by step.

``load_trace`` returns a dict with the JSON contract of ``aiobs replay -f json``:

- ``trace``: the ``ai_traces`` row plus environment, total duration, the first error (where it
  failed) and the critical path;
- ``steps``: every span in causal and time order (depth-first from the root, children by start
  time), each with kind, name, offset and duration, status and error, the canonical LLM fields, and
  the content normalised across conventions (messages, tool call, retrieval documents, handoff,
  http, db, guardrail) by ``aiobs.semantic.content``;
- ``context``: the trace's logs, the user's session events around it, online evaluations, infra
  metrics of the services involved (at the time vs the hour before), and deployments/config changes
  or first-seen service versions in the preceding hours.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aiobs.errors import NotFoundError, UsageError
from aiobs.semantic import content as c

if TYPE_CHECKING:
    from aiobs.analysis.results import Replay, ReplayStep, SessionReplay
    from aiobs.backend import Backend

# How far around a trace the cross-layer context looks.
SESSION_WINDOW = timedelta(minutes=30)
METRIC_WINDOW = timedelta(minutes=10)
METRIC_BASELINE = timedelta(hours=1)
CHANGES_WINDOW = timedelta(hours=6)
_SLACK = timedelta(seconds=1)
MAX_CANDIDATES = 10
T = TypeVar("T")


def resolve_trace_id(store: Backend, given: str) -> str:
    """A full trace id from a unique prefix (like git). Exit 4 if none matches, 2 if several do;
    a whole id is returned unchecked (``load_trace`` refuses an unknown one, exit 4)."""
    prefix = given.strip().lower()
    if not prefix or any(ch not in "0123456789abcdef" for ch in prefix):
        raise UsageError(f"{given!r} is not a trace id (hex digits, or a unique prefix of one)")
    # One row a trace (aiobs_traces) instead of one a span: a tenth of the rows to scan, 4 ms
    # less a lookup on 974k spans.
    table, column = (
        ("aiobs_traces", "trace_id")
        if store.capabilities.materialised
        else ("otel_traces", "TraceId")
    )
    if len(prefix) == 32:
        # A whole id is the answer as it stands: ``load_trace``, which every caller runs next,
        # says when it is not in the store. Asking here first scanned every trace id once more
        # (17 ms of a replay on 10M spans).
        return prefix
    candidates = store.rows(
        f"SELECT DISTINCT {column} FROM {table} WHERE starts_with({column}, ?) ORDER BY 1 LIMIT ?",
        [prefix, MAX_CANDIDATES + 1],
    )
    if not candidates:
        raise NotFoundError(f"no trace id starts with {prefix}")
    if len(candidates) > 1:
        shown = ", ".join(r[0] for r in candidates[:MAX_CANDIDATES])
        more = " …" if len(candidates) > MAX_CANDIDATES else ""
        raise UsageError(
            f"trace id prefix {prefix} is ambiguous: {shown}{more}",
            hint="give more characters of the id",
        )
    return str(candidates[0][0])


def _float(text: str | None) -> float | None:
    """``TRY_CAST(text AS DOUBLE)``: None for missing or unparsable values."""
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _ms(a: datetime, b: datetime) -> float:
    return round((b - a).total_seconds() * 1000, 3)


_STEP_COLUMNS = (
    "span_id, parent_span_id, service_name, service_version, name, step_kind, start_time, end_time,"
    " duration_ms, status, error_type, error_message, provider, model, input_tokens, output_tokens,"
    " cache_read_tokens, reasoning_tokens, cost_usd, reported_input_tokens,"
    " reported_output_tokens, reported_cost_usd, ttft_ms, prompt_name, prompt_version,"
    " agent_name, tool_name, finish_reason, session_id, user_id, attributes, resource_attributes"
)


def _order(spans: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Depth-first from the roots, children by start time; spans whose parent is missing are roots."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        parent = s["parent_span_id"] if s["parent_span_id"] in ids else None
        children[parent].append(s)
    for kids in children.values():
        kids.sort(key=lambda s: (s["start_time"], s["span_id"]))
    out: list[tuple[dict[str, Any], int]] = []
    stack = [(s, 0) for s in reversed(children[None])]
    seen: set[str] = set()
    while stack:
        span, depth = stack.pop()
        if span["span_id"] in seen:
            continue
        seen.add(span["span_id"])
        out.append((span, depth))
        stack.extend((k, depth + 1) for k in reversed(children.get(span["span_id"], [])))
    # Anything unreachable (a parent cycle that ingest did not break) still shows, at the end.
    out += [
        (s, 0) for s in sorted(spans, key=lambda s: s["start_time"]) if s["span_id"] not in seen
    ]
    return out


def critical_path(spans: list[dict[str, Any]]) -> list[str]:
    """Span ids on the critical path: from the root, the child that finished last, then the one
    that finished last before that child started, and so on, recursively."""
    by_id = {s["span_id"]: s for s in spans}
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        if s["parent_span_id"] in by_id:
            children[s["parent_span_id"]].append(s)
    roots = [s for s in spans if s["parent_span_id"] not in by_id]
    if not roots:
        return []
    root = max(roots, key=lambda s: (s["end_time"] - s["start_time"], s["span_id"]))
    path: list[str] = []

    def walk(span: dict[str, Any], depth: int) -> None:
        path.append(span["span_id"])
        if depth > 200:
            return
        kids = sorted(children.get(span["span_id"], []), key=lambda k: k["end_time"], reverse=True)
        limit = span["end_time"]
        chosen = []
        for kid in kids:
            if kid["end_time"] <= limit:
                chosen.append(kid)
                limit = kid["start_time"]
        for kid in reversed(chosen):
            walk(kid, depth + 1)

    walk(root, 0)
    return path


def _events(store: Backend, trace_id: str, bounds: list[datetime]) -> dict[str, list[c.Event]]:
    rows = store.rows(
        'SELECT SpanId, "Events.Timestamp", "Events.Name", "Events.Attributes" FROM otel_traces'
        ' WHERE TraceId = ? AND "Timestamp" BETWEEN ? AND ? AND len("Events.Name") > 0',
        [trace_id, *bounds],
    )
    out: dict[str, list[c.Event]] = {}
    for span_id, times, names, attrs in rows:
        out[span_id] = [
            c.Event(str(n), int(t.timestamp() * 1e9) if t else 0, dict(a or {}))
            for t, n, a in zip(times, names, attrs, strict=False)
        ]
    return out


def _content(step: dict[str, Any], attrs: dict[str, str], events: list[c.Event]) -> dict[str, Any]:
    kind = step["step_kind"]
    out: dict[str, Any] = {}
    if kind in ("llm", "embedding"):
        inputs, outputs = c.messages(attrs, events)
        out["messages"] = [m.to_json() for m in inputs]
        out["output"] = [m.to_json() for m in outputs]
    if kind == "tool" or step.get("tool_name"):
        out["tool"] = c.tool_call(attrs)
    if kind in ("retrieval", "rerank"):
        out["retrieval"] = c.retrieval(attrs)
    if kind == "handoff":
        out["handoff"] = c.handoff(attrs, step["name"])
    if kind == "http":
        out["http"] = c.http(attrs)
    if kind == "db":
        out["db"] = c.db(attrs)
    if kind == "guardrail":
        out["guardrail"] = c.guardrail(attrs)
    if kind in ("agent", "chain", "other", "evaluator"):
        io = c.step_input_output(attrs)
        if io["input"] is not None or io["output"] is not None:
            out["io"] = io
        if _carries_messages(attrs, events, io):
            # An agent run's own conversation (OTel GenAI ``gen_ai.input.messages`` /
            # ``output.messages`` on an ``invoke_agent`` span, or a message list as its input and
            # output): the user's question and the final answer, shown as messages.
            inputs, outputs = c.messages(attrs, events)
            if inputs or outputs:
                out["messages"] = [m.to_json() for m in inputs]
                out["output"] = [m.to_json() for m in outputs]
    return out


_GENAI_MESSAGE_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages")


def is_message_list(value: Any) -> bool:
    """A parsed value that is a list of chat messages (dicts with a role)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m for m in value)
    )


def _carries_messages(attrs: dict[str, str], events: list[c.Event], io: dict[str, Any]) -> bool:
    """Whether a non-model step records a conversation (not just a value that ``c.messages``
    would wrap as a "user" message, as a parser's input)."""
    if any(k in attrs for k in _GENAI_MESSAGE_KEYS):
        return True
    if any(
        e.name == "gen_ai.client.inference.operation.details"
        and any(k in e.attributes for k in _GENAI_MESSAGE_KEYS)
        for e in events
    ):
        return True
    return is_message_list(io["input"]) or is_message_list(io["output"])


# How many earlier model calls a call's input is compared with (the most recent ones).
HISTORY_CALLS = 32
MessageKey = tuple[str, str, tuple[tuple[str, str], ...], str]


def _arguments_key(value: Any) -> str:
    """Tool-call arguments as one canonical string: a JSON string and the object it encodes
    compare equal (a call's output has one, the next call's input often the other)."""
    if isinstance(value, str):
        parsed = c.parse_json(value)
        if parsed is None or isinstance(parsed, str):
            return " ".join(value.split())
        value = parsed
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _message_key(m: Mapping[str, Any]) -> MessageKey:
    """What makes two messages the same message: role, text (whitespace aside), tool calls by
    name and arguments, the call a result answers. Not call ids of requests, names or finish
    reasons, which one side records and the other not."""
    return (
        str(m.get("role")),
        " ".join(str(m.get("content") or "").split()),
        tuple(
            (str(call.get("name")), _arguments_key(call.get("arguments")))
            for call in m.get("tool_calls") or []
        ),
        str(m.get("tool_call_id") or ""),
    )


def mark_new_messages(steps: Iterable[ReplayStep]) -> None:
    """Give each model call ``new_from``: how many of its first input messages an earlier call
    of the journey already showed, and ``continues``: that call's span id (0 and None when the
    whole input is new).

    The earlier messages are the longest common prefix of the call's input with an earlier
    call's input followed by its output: a conversation that grew shares all of it and only its
    new turns remain; one that rewrote a turn (a context block dropped from an old question, a
    sliding window) shares the turns before it, and everything from the rewrite on is shown. Of
    the last ``HISTORY_CALLS`` calls the one sharing the most is taken (the latest on a tie), so
    interleaved agents each continue their own conversation."""
    history: list[tuple[str, list[MessageKey]]] = []
    for step in steps:
        if step["kind"] not in ("llm", "embedding") or "messages" not in step:
            continue
        keys = [_message_key(m) for m in step["messages"]]
        best, source = 0, None
        for span_id, seen in history[-HISTORY_CALLS:]:
            shared = 0
            for a, b in zip(keys, seen, strict=False):
                if a != b:
                    break
                shared += 1
            if shared and shared >= best:
                best, source = shared, span_id
        step["new_from"] = best
        step["continues"] = source
        history.append((step["span_id"], keys + [_message_key(m) for m in step.get("output", [])]))


def load_trace(store: Backend, trace_id: str, *, context: bool = True) -> Replay:
    """The replay of one trace (``trace_id`` must be a full id; see ``resolve_trace_id``)."""
    from aiobs.semantic.views import AI_TRACES_COLUMNS, trace_cost_usd

    # The trace's row without the cost (pricing every trace's usage cost 12 ms of a replay); the
    # cost is ai_traces' own rule applied to the spans read below (its model calls' cost, else
    # the outermost cost its agent and chain runs state: views.trace_cost_usd).
    found = store.records("SELECT * FROM aiobs_trace_facts WHERE trace_id = ?", [trace_id])
    if not found:
        raise NotFoundError(f"no trace {trace_id} in the store")
    (trace,) = found
    start: datetime = trace["start_time"]
    # The context that needs only the trace's times and session (its logs, the session's events,
    # recent changes) is read on a second connection while this one reads the spans: on 974k
    # spans, with DuckDB's buffers cold, that takes ~25 ms off a replay's ~70 ms of queries.
    timed = _in_background(_context_on_reader, store.reader(), dict(trace)) if context else None
    # Every span starts inside its trace (a second either side for rounding): the bounds let
    # DuckDB skip the row groups of other times, ~5 ms a query on 974k spans.
    bounds = [start - _SLACK, trace["end_time"] + _SLACK]
    spans = store.records(
        f"SELECT {_STEP_COLUMNS} FROM ai_spans WHERE trace_id = ? AND start_time BETWEEN ? AND ?",
        [trace_id, *bounds],
    )
    events = _events(store, trace_id, bounds)
    trace["cost_usd"] = trace_cost_usd(spans)
    trace = {c: trace[c] for c in AI_TRACES_COLUMNS}
    path = critical_path(spans)
    on_path = set(path)
    steps: list[ReplayStep] = []
    for span, depth in _order(spans):
        attrs = dict(span.pop("attributes") or {})
        resource = span.pop("resource_attributes") or {}
        span_events = events.get(span["span_id"], [])
        step = {
            "span_id": span["span_id"],
            "parent_span_id": span["parent_span_id"],
            "depth": depth,
            "kind": span["step_kind"],
            "name": span["name"],
            "service_name": span["service_name"],
            "service_version": span["service_version"],
            "offset_ms": _ms(start, span["start_time"]),
            "duration_ms": span["duration_ms"],
            "status": span["status"],
            "error_type": span["error_type"],
            "error_message": span["error_message"],
            "on_critical_path": span["span_id"] in on_path,
            "provider": span["provider"],
            "model": span["model"],
            "input_tokens": span["input_tokens"],
            "output_tokens": span["output_tokens"],
            "cache_read_tokens": span["cache_read_tokens"],
            "reasoning_tokens": span["reasoning_tokens"],
            "cost_usd": span["cost_usd"],
            # An agent or chain run's own figures: its run's totals, not the step's own usage.
            "reported_input_tokens": span["reported_input_tokens"],
            "reported_output_tokens": span["reported_output_tokens"],
            "reported_cost_usd": span["reported_cost_usd"],
            "ttft_ms": span["ttft_ms"],
            "finish_reason": span["finish_reason"],
            "prompt_name": span["prompt_name"],
            "prompt_version": span["prompt_version"],
            "agent_name": span["agent_name"],
            "tool_name": span["tool_name"],
            "events": [
                {
                    "name": e.name,
                    "offset_ms": round((e.time_ns - int(start.timestamp() * 1e9)) / 1e6, 3),
                    "attributes": e.attributes,
                }
                for e in span_events
            ],
            **_content(span, attrs, span_events),
            "attributes": attrs,
            "resource_attributes": dict(resource),
        }
        # Built from the span's row and its content (values typed Any): results.ReplayStep's
        # keys, as tests/test_results.py checks on real output.
        steps.append(cast("ReplayStep", step))
    mark_new_messages(steps)
    first_error = next(
        (
            s
            for s in sorted(steps, key=lambda s: (s["offset_ms"] + s["duration_ms"], s["depth"]))
            if s["status"] == "error" and s["depth"] > 0
        ),
        next((s for s in steps if s["status"] == "error"), None),
    )
    root = steps[0]
    summary = {
        **trace,
        "environment": next(
            (
                s["resource_attributes"].get("deployment.environment.name")
                for s in steps
                if s["resource_attributes"].get("deployment.environment.name")
            ),
            None,
        ),
        "first_error": None
        if first_error is None
        else {
            "span_id": first_error["span_id"],
            "name": first_error["name"],
            "kind": first_error["kind"],
            "offset_ms": first_error["offset_ms"],
            "error_type": first_error["error_type"],
            "error_message": first_error["error_message"],
        },
        "critical_path": path,
        "root_span_id": root["span_id"],
    }
    result = {"trace": summary, "steps": steps}
    if timed is not None:
        result["context"] = load_context(store, summary, steps, timed())
    return cast("Replay", result)


def _in_background(work: Callable[..., T], *args: Any) -> Callable[[], T]:
    """Start ``work(*args)`` in a thread; the returned function waits for its result (or raises
    its error)."""
    import threading

    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(work(*args))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="aiobs-replay-context", daemon=True)
    thread.start()

    def result() -> T:
        thread.join()
        if errors:
            raise errors[0]
        return out[0]

    return result


def load_context(
    store: Backend,
    trace: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    timed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The trace's cross-layer context: ``timed`` (``_context_by_time``, if already read) and the
    metrics and versions of the services its steps touched."""
    if timed is None:
        timed = _context_by_time(store, trace)
    start: datetime = trace["start_time"]
    end: datetime = trace["end_time"]
    services, peers = _touched(steps)
    return {
        "logs": timed["logs"],
        "session_events": timed["session_events"],
        "evaluations": timed["evaluations"],
        "metrics": _metrics(store, [*services, *peers], start, end),
        "changes": _changes(store, services, start, timed["changes"]),
    }


def _touched(steps: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """(the services of ``steps``, the other servers their HTTP and DB calls reached)."""
    steps = list(steps)
    services = sorted({s["service_name"] for s in steps if s["service_name"]})
    peers = sorted(
        {
            (s.get("http") or s.get("db") or {}).get("server", "").split(".")[0]
            for s in steps
            if (s.get("http") or s.get("db") or {}).get("server")
        }
        - set(services)
    )
    return services, peers


def _session_events(
    store: Backend, session_id: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The session's user events from ``SESSION_WINDOW`` before ``start`` to as long after
    ``end``, with their offset from ``start`` and whether they came before, during or after."""
    events = store.records(
        "SELECT Timestamp AS time, EventName AS name, TraceId AS trace_id,"
        " LogAttributes AS attributes, Body AS body FROM otel_logs"
        " WHERE EventName NOT IN ('', 'gen_ai.evaluation.result') AND LogAttributes['session.id'] = ?"
        " AND Timestamp BETWEEN ? AND ? ORDER BY Timestamp",
        [session_id, start - SESSION_WINDOW, end + SESSION_WINDOW],
    )
    for ev in events:
        ev["offset_ms"] = _ms(start, ev["time"])
        ev["attributes"] = {
            k: v for k, v in (ev["attributes"] or {}).items() if k not in ("session.id",)
        }
        ev["when"] = (
            "before" if ev["time"] < start else ("during" if ev["time"] <= end else "after")
        )
    return events


def _context_on_reader(reader: Backend, trace: Mapping[str, Any]) -> dict[str, Any]:
    """``_context_by_time`` on a reader of its own (a worker thread's), closed after."""
    with reader:
        return _context_by_time(reader, trace)


def _context_by_time(store: Backend, trace: Mapping[str, Any]) -> dict[str, Any]:
    """What the context needs only the trace's id, times and session for: its logs and
    evaluation results, the session's user events around it, recent change events."""
    start: datetime = trace["start_time"]
    end: datetime = trace["end_time"]
    trace_id = trace["trace_id"]
    # The trace's logs and its evaluation results in one pass over otel_logs (two cost 5 ms more),
    # over the times its records were written (aiobs_trace_log_times): the time bounds let DuckDB
    # skip other times' row groups; by trace id alone every record's id was read (the read on
    # 6.7M log records: 81 -> 9 ms).
    # The bounds travel as integer nanoseconds: a Python datetime would cut them to microseconds
    # and lose a record written in the last one.
    columns = (
        "SELECT Timestamp AS time, ServiceName AS service_name, SeverityText AS severity,"
        " EventName AS event_name, Body AS body, SpanId AS span_id,"
        " LogAttributes AS attributes FROM otel_logs WHERE TraceId = ?"
    )
    rows: list[dict[str, Any]] = []
    if store.capabilities.log_time_index:
        found = store.one(
            "SELECT epoch_ns(min(first_time)), epoch_ns(max(last_time))"
            " FROM aiobs_trace_log_times WHERE trace_id = ?",
            [trace_id],
        )
        if found and found[0] is not None:
            rows = store.records(
                f"{columns} AND Timestamp BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?)"
                " ORDER BY Timestamp",
                [trace_id, found[0], found[1]],
            )
    else:  # no index of the times: every record's trace id is read
        rows = store.records(f"{columns} ORDER BY Timestamp", [trace_id])
    logs = []
    evaluations = []
    for log in rows:
        attrs = dict(log["attributes"] or {})
        if log["event_name"] == "gen_ai.evaluation.result":
            evaluations.append(
                {
                    "time": log["time"],
                    "span_id": log["span_id"],
                    "name": attrs.get("gen_ai.evaluation.name"),
                    "score": _float(attrs.get("gen_ai.evaluation.score.value")),
                    "label": attrs.get("gen_ai.evaluation.score.label"),
                    "explanation": attrs.get("gen_ai.evaluation.explanation"),
                }
            )
        else:
            log["offset_ms"] = _ms(start, log["time"])
            log["attributes"] = attrs
            logs.append(log)
    session_events: list[dict[str, Any]] = []
    if trace.get("session_id"):
        session_events = _session_events(store, trace["session_id"], start, end)
    changes = change_events(store, start - CHANGES_WINDOW, start, inclusive=True)
    return {
        "logs": logs,
        "session_events": session_events,
        "evaluations": evaluations,
        "changes": changes,
    }


def _metrics(
    store: Backend, services: list[str], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Gauges and means of histograms for ``services`` around the trace vs the hour before."""
    if not services:
        return []
    rows = store.records(
        """
        WITH points AS (
          SELECT ServiceName, MetricName, MetricUnit, Attributes, TimeUnix, Value FROM otel_metrics_gauge
          WHERE ServiceName IN (SELECT unnest(?)) AND TimeUnix BETWEEN ? AND ?
          UNION ALL
          SELECT ServiceName, MetricName, MetricUnit, Attributes, TimeUnix, Sum / nullif(Count, 0)
          FROM otel_metrics_histogram
          WHERE ServiceName IN (SELECT unnest(?)) AND TimeUnix BETWEEN ? AND ?)
        SELECT ServiceName AS service_name, MetricName AS name, any_value(MetricUnit) AS unit,
               Attributes AS attributes,
               median(Value) FILTER (WHERE TimeUnix < ?) AS baseline,
               avg(Value) FILTER (WHERE TimeUnix >= ?) AS around,
               max(Value) FILTER (WHERE TimeUnix >= ?) AS peak
        FROM points GROUP BY ServiceName, MetricName, Attributes
        HAVING count(*) FILTER (WHERE TimeUnix >= ?) > 0
        ORDER BY 1, 2, CAST(Attributes AS VARCHAR)
        """,
        [
            services,
            start - METRIC_BASELINE,
            end + METRIC_WINDOW,
            services,
            start - METRIC_BASELINE,
            end + METRIC_WINDOW,
            start - METRIC_WINDOW,
            start - METRIC_WINDOW,
            start - METRIC_WINDOW,
            start - METRIC_WINDOW,
        ],
    )
    for r in rows:
        r["attributes"] = dict(r["attributes"] or {})
        base, around = r["baseline"], r["around"]
        r["ratio"] = round(around / base, 2) if base and around is not None else None
    return rows


METRIC_BUCKETS = 24  # points of a context metric's series (the TUI's sparklines)


def metric_series(
    store: Backend, trace: Mapping[str, Any], metrics: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str, str], list[float | None]]:
    """For the context ``metrics`` of a trace (``load_context``'s), each one's values over the
    hour before it to just after it, in METRIC_BUCKETS buckets (the mean of each; None where a
    bucket has no point): keyed by (service, metric name, attributes as JSON). Read apart from
    the replay, so a replay costs no more for a series only the TUI draws."""
    services = sorted({m["service_name"] for m in metrics})
    if not services:
        return {}
    lo: datetime = trace["start_time"] - METRIC_BASELINE
    hi: datetime = trace["end_time"] + METRIC_WINDOW
    width_ns = max(int((hi - lo).total_seconds() * 1e9), 1)
    rows = store.rows(
        f"""
        WITH points AS (
          SELECT ServiceName, MetricName, Attributes, TimeUnix, Value FROM otel_metrics_gauge
          WHERE ServiceName IN (SELECT unnest(?)) AND TimeUnix BETWEEN ? AND ?
          UNION ALL
          SELECT ServiceName, MetricName, Attributes, TimeUnix, Sum / nullif(Count, 0)
          FROM otel_metrics_histogram
          WHERE ServiceName IN (SELECT unnest(?)) AND TimeUnix BETWEEN ? AND ?)
        SELECT ServiceName, MetricName, Attributes,
          least({METRIC_BUCKETS - 1}, floor((epoch_ns(TimeUnix) - epoch_ns(?::TIMESTAMP))
            / {width_ns} * {METRIC_BUCKETS}))::INT AS bucket,
          avg(Value)
        FROM points GROUP BY 1, 2, 3, 4
        """,
        [services, lo, hi, services, lo, hi, lo],
    )
    wanted = {metric_key(m["service_name"], m["name"], m["attributes"]) for m in metrics}
    series: dict[tuple[str, str, str], list[float | None]] = {}
    for service, name, attributes, bucket, value in rows:
        key = metric_key(service, name, dict(attributes or {}))
        if key in wanted:
            series.setdefault(key, [None] * METRIC_BUCKETS)[bucket] = value
    return series


def metric_key(service: str, name: str, attributes: Mapping[str, Any]) -> tuple[str, str, str]:
    """A context metric's key in ``metric_series``: its service, name and attributes."""
    return service, name, json.dumps(dict(sorted(attributes.items())), default=str)


def change_events(
    store: Backend, since: Any, until: Any, *, inclusive: bool = False
) -> list[dict[str, Any]]:
    """Deployment and config-change events from the logs in ``[since, until)`` (both ends with
    ``inclusive``), oldest first: time, service_name, kind (the event name), version, id
    (deployment id or config key), description (the log body — untrusted text)."""
    upper = "<=" if inclusive else "<"
    return store.records(
        "SELECT Timestamp AS time, ServiceName AS service_name, EventName AS kind,"
        " coalesce(nullif(LogAttributes['service.version'], ''), ResourceAttributes['service.version']) AS version,"
        " coalesce(LogAttributes['deployment.id'], LogAttributes['config.key']) AS id,"
        " Body AS description FROM otel_logs"
        " WHERE (EventName IN ('deployment', 'config.change') OR map_contains(LogAttributes, 'deployment.id'))"
        f" AND Timestamp >= ? AND Timestamp {upper} ? ORDER BY Timestamp",
        [since, until],
    )


def _versions_first_seen(
    store: Backend, services: list[str], lo: datetime, hi: datetime
) -> list[dict[str, Any]]:
    """The versions of ``services`` whose first span in the store starts in [lo, hi]: the
    versions seen in the window, less those seen before it. Both reads are bounded, so the
    time index prunes them (the earlier ``min(start_time)`` over every trace of the services
    aggregated the whole store: 0.46 of replay's 1.7 s on a 1M-span ClickHouse table); the
    second stops at the first earlier span of each version, which an old version has at once."""
    seen = store.records(
        "SELECT min(start_time) AS time, service_name, service_version AS version"
        " FROM aiobs_span_facts"
        " WHERE service_name IN (SELECT unnest(?)) AND start_time BETWEEN ? AND ?"
        " AND service_version IS NOT NULL AND service_version <> '' GROUP BY 2, 3 ORDER BY 1, 2, 3",
        [services, lo, hi],
    )
    if not seen:
        return []
    checks = " UNION ALL ".join(
        "SELECT * FROM (SELECT service_name, service_version FROM aiobs_span_facts"
        " WHERE service_name = ? AND service_version = ? AND start_time < ? LIMIT 1)"
        for _ in seen
    )
    older = {
        (r[0], r[1])
        for r in store.rows(
            checks, [v for row in seen for v in (row["service_name"], row["version"], lo)]
        )
    }
    return [r for r in seen if (r["service_name"], r["version"]) not in older]


def _changes(
    store: Backend,
    services: list[str],
    start: datetime,
    events: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Deployment/config ``events`` in the preceding hours (any service), and service versions of
    the trace's services first seen in that window (for stores without deployment events): a
    version's first span in the store starts in it."""
    for e in events:
        e.pop("id")
    if services:
        first_seen = _versions_first_seen(store, services, start - CHANGES_WINDOW, start)
        known = {(e["service_name"], e["version"]) for e in events}
        for row in first_seen:
            if (row["service_name"], row["version"]) not in known and row["version"]:
                events.append(
                    {
                        **row,
                        "kind": "version first seen",
                        "description": f"{row['service_name']} {row['version']} first seen",
                    }
                )
    for e in events:
        e["minutes_before"] = round((start - e["time"]).total_seconds() / 60, 1)
    return sorted(events, key=lambda e: e["time"])


def load_session(store: Backend, session_id: str, *, context: bool = True) -> SessionReplay:
    """Every trace of a session, in order, as one journey."""
    ids = [
        r[0]
        for r in store.rows(
            "SELECT trace_id FROM aiobs_trace_facts WHERE session_id = ? ORDER BY start_time, trace_id",
            [session_id],
        )
    ]
    if not ids:
        raise NotFoundError(f"no session {session_id} in the store")
    traces = [load_trace(store, t, context=context) for t in ids]
    # One journey: a turn's model call that repeats the conversation so far shows only its new
    # messages, whichever trace the earlier ones were in.
    mark_new_messages(s for t in traces for s in t["steps"])
    info = {
        "session_id": session_id,
        "user_id": next((t["trace"]["user_id"] for t in traces if t["trace"]["user_id"]), None),
        "traces": len(traces),
        "start_time": traces[0]["trace"]["start_time"],
        "end_time": max(t["trace"]["end_time"] for t in traces),
    }
    result: dict[str, Any] = {"session": info, "traces": traces}
    if context:
        result["context"] = session_context(store, info, [s for t in traces for s in t["steps"]])
    return cast("SessionReplay", result)


def session_context(
    store: Backend, session: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The context of a whole session, once: its user events from ``SESSION_WINDOW`` before the
    first trace to as long after the last (offsets from the session's start), metrics of every
    service its traces touched over the session vs the hour before, and the changes in the
    hours before it. (Each trace's ``context`` keeps its own window, for scripts.)"""
    start: datetime = session["start_time"]
    end: datetime = session["end_time"]
    services, peers = _touched(steps)
    return {
        "session_events": _session_events(store, session["session_id"], start, end),
        "metrics": _metrics(store, [*services, *peers], start, end),
        "changes": _changes(
            store,
            services,
            start,
            change_events(store, start - CHANGES_WINDOW, start, inclusive=True),
        ),
    }
