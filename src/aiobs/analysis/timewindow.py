"""Times on the command line: ``2h``/``30m``/``7d``/``1w`` ago, ISO times, ``A..B`` windows, durations.

All results are naive UTC datetimes, like the store's timestamps.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aiobs.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def utcnow() -> datetime:
    """Now, naive UTC: what ``2h`` (ago) counts back from. ``AIOBS_NOW`` (an ISO time) fixes it,
    so a runbook or a test reads a store as of that moment."""
    import os

    fixed = os.environ.get("AIOBS_NOW")
    if fixed:
        moment = datetime.fromisoformat(fixed.strip().replace("Z", "+00:00"))
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return datetime.now(UTC).replace(tzinfo=None)


def parse_time(text: str, *, option: str, now: datetime | None = None) -> datetime:
    """``2h`` (ago) or an ISO time (``2026-11-14T14:00Z``, ``2026-11-14``); naive UTC."""
    m = _RELATIVE.match(text)
    if m:
        return (now or utcnow()) - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: expected a relative time (30m, 2h, 7d) or an ISO time "
            "(2026-11-14T14:00Z)"
        ) from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def parse_window(
    since: str | None, until: str | None, *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """``--since``/``--until``; ``--since A..B`` gives both ends."""
    start = end = None
    if since and ".." in since:
        a, b = since.split("..", 1)
        if until:
            raise UsageError("--since A..B already sets the end; drop --until")
        start = parse_time(a, option="--since", now=now) if a.strip() else None
        end = parse_time(b, option="--since", now=now) if b.strip() else None
    else:
        start = parse_time(since, option="--since", now=now) if since else None
        end = parse_time(until, option="--until", now=now) if until else None
    if start and end and end <= start:
        raise UsageError("the window ends before it starts")
    return start, end


def parse_duration_ms(text: str, *, option: str) -> float:
    """``2s``, ``500ms``, ``1.5m``; a bare number is milliseconds."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"{option} {text!r}: expected a duration like 500ms, 2s or 1.5m")
    factor = {"ms": 1, None: 1, "s": 1000, "m": 60_000, "h": 3_600_000}[m.group(2)]
    return float(m.group(1)) * factor
