"""One copy of each value formatter the renderings share: durations, offsets, money, percentages,
counts, times, table and Markdown cells, clipped content and token figures.

Plain strings in, plain strings out: the CLI's table/Markdown output and every renderer in
``aiobs.present`` use these, so a figure reads the same wherever it is shown. Every string that
came from telemetry is made inert (``safe.inert``) by the formatters that show it.

Imports only the standard library and ``aiobs.present.safe`` (``cli/render.py`` loads it for
every table, and ``aiobs --help`` must stay light).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from aiobs.present.safe import inert
from aiobs.units import duration as duration
from aiobs.units import money as money
from aiobs.units import num as num
from aiobs.units import pct as pct
from aiobs.units import plural as plural

TRUNCATE = 400  # characters of content shown before it is cut (``--full`` shows it all)


# --- times and durations ------------------------------------------------------------------------


def offset(ms: float) -> str:
    """An offset from a trace's start: ``+1.272 s``; from a minute in the largest unit that
    reads: ``+2.5 min``, ``+5.4 h``."""
    sign = "-" if ms < 0 else "+"
    ms = abs(ms)
    if ms >= 60_000:
        return sign + duration(ms)
    return f"{sign}{ms / 1000:.3f} s"


def when(ts: Any) -> str:
    """A moment to the second, UTC: ``2026-11-12 16:00:52Z`` (anything else as it is)."""
    if isinstance(ts, datetime):
        return ts.strftime("%Y-%m-%d %H:%M:%S") + "Z"
    return str(ts)


def minute(ts: datetime) -> str:
    """A moment to the minute, without a zone: ``2026-11-12 16:00`` (the caller says UTC)."""
    return f"{ts:%Y-%m-%d %H:%M}"


# --- figures ------------------------------------------------------------------------------------------


def token_totals(row: Mapping[str, Any]) -> str | None:
    """``1,234 in / 56 out``: only the sides that were recorded (a recorded 0 shows; no
    recorded tokens, None)."""
    sides = [
        f"{row[key]:,} {label}"
        for key, label in (("input_tokens", "in"), ("output_tokens", "out"))
        if row.get(key) is not None
    ]
    return " / ".join(sides) or None


def step_tokens(step: Mapping[str, Any]) -> str | None:
    """``562→6 tok``; ``8 tok in`` or ``6 tok out`` when one side was not recorded (an
    embedding has no output); None when neither was."""
    given, taken = step.get("input_tokens"), step.get("output_tokens")
    if given is None and taken is None:
        return None
    if taken is None:
        return f"{given:,} tok in"
    if given is None:
        return f"{taken:,} tok out"
    return f"{given:,}→{taken:,} tok"


# --- content --------------------------------------------------------------------------------------


def clip(value: Any, full: bool, limit: int = TRUNCATE) -> str:
    """Content (a string, or JSON of anything else) made inert, newlines kept, and cut after
    ``limit`` characters with a note of what was left out unless ``full``."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = inert(text, keep_newlines=True)
    if full or len(text) <= limit:
        return text
    return text[:limit] + f"… (+{len(text) - limit:,} chars; --full shows all)"


# --- values as the JSON contract, table and Markdown cells -----------------------------------------


def jsonable(value: Any) -> Any:
    """Convert a DuckDB/Python value to what the JSON contract promises (DESIGN.md): times
    ISO-8601 UTC with a ``Z``, decimals as floats, non-finite floats as null, bytes as hex."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds") + "Z"
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes | bytearray):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return str(value)


def cell_text(value: Any) -> str:
    """A value in a table cell: floats rounded to what a person reads (``1,234.5``, ``12.35``,
    ``0.00123``), times as in JSON, lists and maps as JSON."""
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        if abs(value) >= 1:
            return f"{value:.3f}".rstrip("0").rstrip(".")
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return str(jsonable(value))
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(jsonable(value), ensure_ascii=False)
    return str(value)


def md_cell(value: Any) -> str:
    """One value as inline Markdown: inert, pipes and newlines escaped."""
    return inert(cell_text(value)).replace("|", "\\|").replace("\n", " ")


SPARK_MARKS = "▁▂▃▄▅▆▇█"


def spark(values: Sequence[float | None]) -> str:
    """A series as a sparkline from its lowest to its highest value (a gap where a bucket has
    no value; a flat line when all are equal)."""
    known = [v for v in values if v is not None]
    top, low = (max(known), min(known)) if known else (0.0, 0.0)
    if top == low:
        return "".join(" " if v is None else SPARK_MARKS[3] for v in values)
    return "".join(
        " " if v is None else SPARK_MARKS[int((v - low) / (top - low) * 7 + 0.5)] for v in values
    )
