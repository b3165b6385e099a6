"""The TUI's headless core: what a screen asks of the store, as plain functions and values the
workers call on their own store handle (``Backend.reader()``), and the traces table's page cache.

The screens hold a ``TraceQuery`` (the filter a person built with the filter bar and the quick
filters) and ask for its count and its pages; nothing here knows Textual, so the same calls are
testable and benchmarkable without a terminal.

Must not import textual, typer or the CLI; rich only through ``aiobs.present``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiobs.analysis.filters import TraceFilter
    from aiobs.analysis.results import (
        Diff,
        Replay,
        Scan,
        SegmentRow,
        SessionReplay,
        SessionRow,
        TraceDiff,
        TraceRow,
    )
    from aiobs.backend import Backend

Row = Mapping[str, Any]  # a trace's row (TraceRow) or, listing sessions, a session's (SessionRow)
PAGE = 100  # rows a page fetch reads: a screenful or two of a tall terminal
# The time windows of the quick filters (keys 1-4; 0 clears).
WINDOWS = {"1": "1h", "2": "24h", "3": "7d", "4": "30d"}
# Fields whose values the filter bar suggests (read once, in a worker).
SUGGESTED_VALUES = ("service_name", "status", "model", "prompt_version", "tool_name", "step_kind")
VALUES_PER_FIELD = 50


@dataclass(frozen=True)
class TraceQuery:
    """The traces a screen lists: the ``--where`` text and the quick filters, the sort.

    ``base`` is the condition the screen was opened with (``aiobs tui --where``, an incident's
    examples, a session); the filter bar's condition is and-ed with it."""

    base: str | None = None
    where: str | None = None
    since: str | None = None
    until: str | None = None
    errors_only: bool = False
    slow_ms: float | None = None  # the quick "slow" filter: at least this long (the p95)
    models: tuple[str, ...] = ()  # a model's traces (a prefix finds its dated versions)
    prompt_versions: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    session: str | None = None
    sort: str = "-start_time"
    sessions: bool = False  # list the sessions these traces belong to, not the traces

    def condition(self) -> str | None:
        """The whole ``--where`` condition (base and filter bar), or None."""
        parts = [f"({p})" for p in (self.base, self.where) if p and p.strip()]
        return " and ".join(parts) or None

    def filter(self) -> TraceFilter:
        """The ``TraceFilter`` the analyses take (a bad condition raises ``UsageError``)."""
        from aiobs.analysis.filters import TraceFilter

        return TraceFilter.from_options(
            since=self.since,
            until=self.until,
            services=list(self.services) or None,
            models=list(self.models) or None,
            prompt_versions=list(self.prompt_versions) or None,
            status="error" if self.errors_only else None,
            min_duration=f"{self.slow_ms:.0f}ms" if self.slow_ms is not None else None,
            session=self.session,
            where=self.condition(),
        )

    def describe(self, *, with_sort: bool = True) -> str:
        """The filters in force, in a line (the status bar); then the order."""
        parts = []
        if self.base:
            parts.append(self.base)
        if self.where:
            parts.append(f"where {self.where}")
        if self.since:
            parts.append(f"since {self.since}")
        if self.errors_only:
            parts.append("errors only")
        if self.slow_ms is not None:
            from aiobs.units import duration

            parts.append(f"slow (≥ {duration(self.slow_ms)})")
        for name, values in (
            ("service", self.services),
            ("model", self.models),
            ("prompt_version", self.prompt_versions),
            ("session", (self.session,) if self.session else ()),
        ):
            if values:
                parts.append(f"{name} {', '.join(values)}")
        if with_sort:
            parts.append(f"sorted by {self.sort}")
        if self.sessions:
            parts.insert(0, "sessions of the traces")
        return " · ".join(parts)

    def but(self, **changes: Any) -> TraceQuery:
        return replace(self, **changes)


def count(reader: Backend, query: TraceQuery) -> int:
    """How many traces (or, with ``query.sessions``, sessions) the query lists."""
    from aiobs.analysis.browse import count_sessions, count_traces

    return (count_sessions if query.sessions else count_traces)(reader, query.filter())


def page(reader: Backend, query: TraceQuery, index: int) -> list[TraceRow] | list[SessionRow]:
    """Page ``index`` (``PAGE`` rows) of the query's traces (or sessions) in its order."""
    from aiobs.analysis.browse import list_sessions, list_traces

    listing = list_sessions if query.sessions else list_traces
    return listing(reader, query.filter(), sort=query.sort, limit=PAGE, offset=index * PAGE)


def slow_threshold(reader: Backend, query: TraceQuery) -> float | None:
    """The p95 duration of the query's traces (what the quick "slow" filter keeps above)."""
    filt = query.but(slow_ms=None).filter()
    where, params = filt.sql()
    row = reader.one(
        f"SELECT quantile_cont(duration_ms, 0.95) FROM aiobs_trace_facts t WHERE {where}", params
    )
    return float(row[0]) if row and row[0] is not None else None


def field_values(reader: Backend) -> dict[str, list[str]]:
    """The commonest values of the fields the filter bar suggests: from the materialised span
    facts where the store has them (10M spans: 0.13 s and 106 MB, where ai_spans took 7.4 s
    and 1.8 GB)."""
    spans = "aiobs_span_facts" if reader.capabilities.materialised else "ai_spans"
    out: dict[str, list[str]] = {}
    for name in SUGGESTED_VALUES:
        rows = reader.rows(
            f"SELECT {name} AS v, count(*) AS n FROM {spans} WHERE {name} IS NOT NULL"
            " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
            [VALUES_PER_FIELD],
        )
        out[name] = [str(r[0]) for r in rows]
    return out


def distinct(reader: Backend, name: str) -> list[tuple[str, int]]:
    """A field's values with their trace counts, commonest first (the model and prompt
    version pickers)."""
    column = {"model": "models", "prompt_version": "prompt_versions"}.get(name, name)
    listed = column in ("models", "prompt_versions")
    source = (
        f"(SELECT unnest({column}) AS v FROM aiobs_trace_facts)"
        if listed
        else f"(SELECT {column} AS v FROM aiobs_trace_facts)"
    )
    rows = reader.rows(
        f"SELECT v, count(*) FROM {source} WHERE v IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    return [(str(r[0]), int(r[1])) for r in rows]


def replay(reader: Backend, trace_id: str, *, context: bool = True) -> Replay:
    from aiobs.analysis.replay import load_trace, resolve_trace_id

    return load_trace(reader, resolve_trace_id(reader, trace_id), context=context)


def metric_series(
    reader: Backend, replay: Replay
) -> dict[tuple[str, str, str], list[float | None]]:
    """The replay's context metrics over the hour before the trace (the Context sparklines)."""
    from aiobs.analysis.replay import metric_series as series

    context = replay.get("context")
    return series(reader, replay["trace"], context["metrics"] if context else [])


def good_twin(reader: Backend, replay: Replay) -> str | None:
    """A trace to compare this one with: of the same service and workflow, that went well
    (no step failed), calling as many of the same tools as can be (or, sharing none, some
    tool), nearest in time (within a day, else any time); None when there is none."""
    trace = replay["trace"]
    # [""] for none: an empty list parameter has no element type to cast.
    tools = sorted({str(s["tool_name"]) for s in replay["steps"] if s.get("tool_name")}) or [""]
    spans = "aiobs_span_facts" if reader.capabilities.materialised else "ai_spans"
    for within in ("AND t.start_time BETWEEN ?::TIMESTAMP - INTERVAL 1 DAY"
                   " AND ?::TIMESTAMP + INTERVAL 1 DAY", ""):  # fmt: skip
        window = [trace["start_time"], trace["start_time"]] if within else []
        row = reader.one(
            f"""WITH candidates AS (
  SELECT t.trace_id, t.start_time FROM aiobs_trace_facts t
  WHERE t.service_name = ? AND t.root_name IS NOT DISTINCT FROM ? AND t.status = 'ok'
    AND t.trace_id <> ? {within}
    AND NOT EXISTS (SELECT 1 FROM {spans} e WHERE e.trace_id = t.trace_id AND e.status = 'error'))
SELECT c.trace_id, count(DISTINCT s.tool_name) FILTER (WHERE s.tool_name IN (SELECT unnest(?)))
    AS shared, count(s.tool_name) > 0 AS calls_tools
FROM candidates c LEFT JOIN {spans} s ON s.trace_id = c.trace_id AND s.tool_name IS NOT NULL
GROUP BY c.trace_id, c.start_time
ORDER BY shared DESC, calls_tools DESC, abs(epoch_ns(c.start_time) - epoch_ns(?::TIMESTAMP)),
  c.trace_id
LIMIT 1""",
            [trace["service_name"], trace["root_name"], trace["trace_id"], *window, tools,
             trace["start_time"]],
        )  # fmt: skip
        if row is not None:
            return str(row[0])
    return None


def session(reader: Backend, session_id: str) -> SessionReplay:
    from aiobs.analysis.replay import load_session

    return load_session(reader, session_id)


def diff(reader: Backend, a: str, b: str) -> TraceDiff:
    from aiobs.analysis.difftraces import diff_traces

    return diff_traces(replay(reader, a, context=False), replay(reader, b, context=False))


def scan(reader: Backend, since: str | None = None) -> Scan:
    from aiobs.analysis.filters import TraceFilter
    from aiobs.analysis.scan import scan as run_scan

    return run_scan(reader, TraceFilter.from_options(since=since))


OVERVIEW_BUCKETS = 16  # points of each overview sparkline
# The overview's figures, as segment computes them (segment._AGGREGATES), per trace row.
OVERVIEW_FIGURES = """count(*) AS traces,
  avg((status = 'error')::INT) AS error_rate,
  quantile_cont(duration_ms, 0.95) AS p95_ms,
  avg(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens_per_trace,
  sum(cost_usd) AS cost_usd,
  avg(eval_failed::INT) AS eval_fail_rate"""
OVERVIEW_SERIES = ("traces", "error_rate", "p95_ms", "tokens_per_trace", "cost_usd",
                   "eval_fail_rate")  # fmt: skip


def overview(reader: Backend, since: str = "24h") -> dict[str, Any]:
    """Per service, for the window ``since`` back from now and the period as long before it:
    the figures of both (traffic, error rate, p95, tokens per trace, cost, evaluation fail
    rate, as ``segment`` computes them) and, over the window, each one's series in
    OVERVIEW_BUCKETS buckets — in one pass over the two periods' traces (grouping sets)."""
    from datetime import timedelta

    from aiobs.analysis.browse import where_records
    from aiobs.analysis.filters import TraceFilter
    from aiobs.analysis.segment import trace_metrics_sql
    from aiobs.analysis.timewindow import parse_window, utcnow

    start, end = parse_window(since, None)
    end = end or utcnow()
    if start is None:
        start = end - timedelta(hours=24)
    before = start - (end - start)
    filt = TraceFilter(since=before, until=end)
    where, params = filt.sql()
    metrics = trace_metrics_sql(where, pick_first=reader.capabilities.materialised)
    width_ns = max(int((end - start).total_seconds() * 1e9), 1)
    rows = where_records(
        reader,
        f"""WITH m AS ({metrics}),
p AS (
  SELECT m.*, m.start_time >= ?::TIMESTAMP AS in_window,
    least({OVERVIEW_BUCKETS - 1}, floor((epoch_ns(m.start_time) - epoch_ns(?::TIMESTAMP))
      / {width_ns} * {OVERVIEW_BUCKETS}))::INT AS bucket
  FROM m)
SELECT service_name, in_window, CASE WHEN grouping(bucket) = 0 THEN bucket END AS bucket,
  {OVERVIEW_FIGURES}
FROM p GROUP BY GROUPING SETS ((service_name, in_window), (service_name, in_window, bucket))""",
        [*params, start, start],
        filt.where,
    )
    now: dict[str, dict[str, Any]] = {}
    then: dict[str, dict[str, Any]] = {}
    series: dict[str, dict[str, list[float | None]]] = {}
    for r in rows:
        service = r["service_name"]
        figures = {k: r[k] for k in OVERVIEW_SERIES}
        if r["bucket"] is None:
            (now if r["in_window"] else then)[service] = figures
        elif r["in_window"]:
            s = series.setdefault(service, {k: [None] * OVERVIEW_BUCKETS for k in OVERVIEW_SERIES})
            for k in OVERVIEW_SERIES:
                s[k][r["bucket"]] = figures[k]
    first, last = reader.one("SELECT min(start_time), max(start_time) FROM aiobs_trace_facts") or (
        None,
        None,
    )
    ordered = sorted(now, key=lambda k: (-now[k]["traces"], k))  # as segment's -traces
    return {
        "since": start,
        "until": end,
        "store_first": first,
        "store_last": last,
        "services": [
            {
                "service": service,
                "now": now[service],
                "before": then.get(service),
                "series": series.get(service, {}),
            }
            for service in ordered
        ],
    }


def examples_condition(trace_ids: Iterable[str]) -> str:
    """The condition that lists exactly these traces (an incident's examples)."""
    quoted = ", ".join("'" + t.replace("'", "''") + "'" for t in trace_ids)
    return f"trace_id in ({quoted})"


@dataclass
class Pages:
    """The traces table's rows as pages fetched on demand: which are loaded, which are wanted.
    ``generation`` changes with the query, so a page that arrives for an old query is dropped."""

    total: int | None = None
    generation: int = 0
    loaded: dict[int, Sequence[Row]] = field(default_factory=dict)
    asked: set[int] = field(default_factory=set)

    def reset(self) -> int:
        self.generation += 1
        self.total = None
        self.loaded.clear()
        self.asked.clear()
        return self.generation

    def row(self, i: int) -> Row | None:
        rows = self.loaded.get(i // PAGE)
        return rows[i % PAGE] if rows is not None and i % PAGE < len(rows) else None

    def missing(self, rows: Sequence[int]) -> set[int]:
        """The pages holding ``rows`` that are neither loaded nor asked for."""
        wanted = {i // PAGE for i in rows if self.total is None or i < self.total}
        return {p for p in wanted if p not in self.loaded and p not in self.asked}

    def add(self, generation: int, index: int, rows: Sequence[Row]) -> bool:
        if generation != self.generation:
            return False
        self.loaded[index] = rows
        self.asked.discard(index)
        return True


def segments(
    reader: Backend, query: TraceQuery, by: str, sort: str | None = None
) -> tuple[list[str], list[SegmentRow]]:
    """The Segments screen: the query's traces grouped by ``by`` (``segment --by``), the
    metrics and the traces per time bucket of each group."""
    from aiobs.analysis.segment import segment

    return segment(reader, query.filter(), by, sort=sort, limit=SEGMENT_GROUPS)


SEGMENT_GROUPS = 200  # groups the Segments screen lists (segment --limit)
# A segment field as the ``--where`` language names it, where the two differ.
WHERE_NAME = {"workflow": "root_name", "models": "model", "prompt_versions": "prompt_version"}


def group_condition(names: Sequence[str], row: Mapping[str, Any]) -> str:
    """The ``--where`` condition that keeps a group's traces: each field equal to the group's
    value (a group without one: the traces with no such value)."""
    parts = []
    for name in names:
        field_ = WHERE_NAME.get(name, name)
        value = row.get(name)
        if value is None:
            parts.append(f"not ({field_} is not null)")
        elif isinstance(value, bool | int | float):
            parts.append(f"{field_} = {str(value).lower() if isinstance(value, bool) else value}")
        else:
            parts.append(f"{field_} = '" + str(value).replace("'", "''") + "'")
    return " and ".join(parts)


def period_diff(reader: Backend, query: TraceQuery, baseline: str, target: str) -> Diff:
    """The Diff screen: ``diff --baseline … --target …`` over the query's traces."""
    from aiobs.analysis.diff import diff as run_diff

    return run_diff(reader, query.filter(), baseline, target)


def default_sides(since: str | None) -> tuple[str, str]:
    """The Diff screen's first comparison: the window before against the window ``since``
    (``2h``, ``7d`` …) back from now; the last day against the day before without one."""
    from aiobs.analysis.timewindow import parse_window, utcnow

    hours = 24.0
    if since and ".." not in since:
        try:
            start, _ = parse_window(since, None)
        except Exception:  # said by the traces screen already; compare the last day
            start = None
        if start is not None:
            hours = max((utcnow() - start).total_seconds() / 3600, 1 / 60)
    text = f"{hours:g}h"
    return f"{2 * hours:g}h..{text}", f"{text}.."
