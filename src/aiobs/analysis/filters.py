"""Which traces a command reads: the one trace filter every selecting command shares.

``TraceFilter`` is the typed selection behind traces, sessions, segment, diff, scan and export
(and the TUI's filter bar): a time window, services, models, prompt versions, status, a minimum
duration, a session, a user and a parsed ``--where``. It is built with keywords only, from parsed
values or, with ``TraceFilter.from_options``, from the text a person typed (``2h``, ``A..B``,
``500ms``, a ``--where`` condition). ``sql()`` renders it over ``ai_traces t``.

Must not import typer, rich, textual or the DuckDB engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiobs.analysis.where import Where
from aiobs.errors import UsageError
from aiobs.semantic.prices import MODEL_KEY_PATTERN

# How long a trace may last, for a backend that computes each trace from its spans at every
# read (ClickHouse on the exporter's tables): a window's traces are computed from the spans that
# start within this of the window, so the engine reads the window's partitions, not the whole
# table. A trace that lasts longer is seen in part there (the local store is exact).
# AIOBS_TRACE_REACH (a duration: 12h, 90m) sets another, for services with longer traces.
TRACE_REACH = timedelta(hours=6)


def trace_reach() -> timedelta:
    """``TRACE_REACH``, or what ``AIOBS_TRACE_REACH`` says (exit 2 when it is not a duration)."""
    import os

    text = os.environ.get("AIOBS_TRACE_REACH", "").strip()
    if not text:
        return TRACE_REACH
    from aiobs.analysis.timewindow import parse_duration_ms

    return timedelta(milliseconds=parse_duration_ms(text, option="AIOBS_TRACE_REACH"))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ns(t: datetime) -> int:
    """``t`` (UTC when naive, as the store's times are) in ns since the epoch, exactly."""
    aware = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1) * 1000


@dataclass(frozen=True, kw_only=True)
class TraceFilter:
    """A selection of traces; the empty filter selects every trace."""

    since: datetime | None = None
    until: datetime | None = None
    services: Sequence[str] = field(default_factory=list)
    models: Sequence[str] = field(default_factory=list)
    prompt_versions: Sequence[str] = field(default_factory=list)
    status: str | None = None
    min_duration_ms: float | None = None
    session: str | None = None
    user: str | None = None
    where: Where | None = None

    @classmethod
    def from_options(
        cls,
        *,
        since: str | None = None,
        until: str | None = None,
        services: Sequence[str] | None = None,
        models: Sequence[str] | None = None,
        prompt_versions: Sequence[str] | None = None,
        status: str | None = None,
        min_duration: str | None = None,
        session: str | None = None,
        user: str | None = None,
        where: str | None = None,
    ) -> TraceFilter:
        """The filter a person typed: ``--since 2h`` / ``A..B``, ``--min-duration 2s``, a
        ``--where`` condition (parsed and checked here: a bad one is exit 2 before the store is
        opened)."""
        from aiobs.analysis.timewindow import parse_duration_ms, parse_window
        from aiobs.analysis.where import parse_where

        start, end = parse_window(since, until)
        return cls(
            since=start,
            until=end,
            services=list(services or []),
            models=list(models or []),
            prompt_versions=list(prompt_versions or []),
            status=status.lower() if status else None,
            min_duration_ms=(
                parse_duration_ms(min_duration, option="--min-duration") if min_duration else None
            ),
            session=session,
            user=user,
            where=parse_where(where) if where is not None else None,
        )

    @property
    def is_empty(self) -> bool:
        """True when it selects every trace (export then copies the store whole)."""
        return self == TraceFilter()

    @property
    def reads_cost(self) -> bool:
        """True when the selection depends on a cost (``--where`` names ``cost_usd``): it must
        then price every trace, not only the ones it picked."""
        return self.where is not None and "cost_usd" in self.where.fields

    def replace(self, **changes: Any) -> TraceFilter:
        """A copy with some fields changed (a scan's history window, a diff side)."""
        return dataclasses.replace(self, **changes)

    def span_bounds(self) -> tuple[datetime | None, datetime | None]:
        """Between which times the spans of the traces this window selects start, when no
        trace lasts longer than ``trace_reach()``: (since - reach, until + reach), None where the
        window is open. Exact for such traces: one that starts in the window has all its spans
        inside the bounds, and one that starts before it has a span between the lower bound and
        the window's start (else it would last longer than the reach)."""
        reach = trace_reach()
        return (
            None if self.since is None else self.since - reach,
            None if self.until is None else self.until + reach,
        )

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause over ``ai_traces t`` and its parameters."""
        conds: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            conds.append("t.start_time >= ?")
            params.append(self.since)
        if self.until is not None:
            conds.append("t.start_time < ?")
            params.append(self.until)
        if self.services:
            conds.append("t.service_name IN (SELECT unnest(?))")
            params.append(list(self.services))
        if self.models:
            # A model matches by name or by its dated/prefixed variants: --model gpt-4.1 finds
            # gpt-4.1-2025-04-14 (not gpt-4.1-mini).
            def key(col: str) -> str:
                return f"regexp_replace(lower(trim({col})), '{MODEL_KEY_PATTERN}', '', 'g')"

            # List functions, not a join of two unnests: ClickHouse has no UNNEST to join.
            conds.append(
                f"(list_has_any(t.models, ?) OR list_has_any(list_transform(t.models,"
                f" lambda m: {key('m')}), list_transform(?, lambda x: {key('x')})))"
            )
            params += [list(self.models), list(self.models)]
        if self.prompt_versions:
            conds.append("list_has_any(t.prompt_versions, ?)")
            params.append(list(self.prompt_versions))
        if self.status is not None:
            if self.status not in ("ok", "error"):
                raise UsageError(f"--status {self.status!r}: expected ok or error")
            conds.append("t.status = ?")
            params.append(self.status)
        if self.min_duration_ms is not None:
            conds.append("t.duration_ms >= ?")
            params.append(self.min_duration_ms)
        if self.session is not None:
            conds.append("t.session_id = ?")
            params.append(self.session)
        if self.user is not None:
            conds.append("t.user_id = ?")
            params.append(self.user)
        if self.where is not None:
            # Already over ``t``: its span-level parts are "some span of the trace" subqueries.
            conds.append(f"({self.where.sql})")
        return (" AND ".join(conds) or "TRUE"), params
