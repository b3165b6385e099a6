"""Values every decoder shares: the record error, OTLP's enum names, the timestamp window and ISO
timestamps as Unix nanoseconds.

The general decoder (``otlp``), the converters it hands foreign documents to (``jaeger``,
``langfuse``), the vectorised path (``fastpath``) and the pipeline all read these; they live here,
below all of them, so the converters need not import the decoder that imports them.

Must not import any other ``aiobs`` module, nor duckdb, pyarrow, typer, rich or textual: it is the
bottom of the ingest import graph.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Timestamps outside this window are refused as absurd (clock bugs, seconds-vs-nanoseconds mixups).
MIN_TS_NS = 946_684_800 * 10**9  # 2000-01-01
MAX_TS_NS = 4_102_444_800 * 10**9  # 2100-01-01
# How far up a parent chain the cycle check walks before it stops looking.
MAX_PARENT_WALK = 10_000

SPAN_KINDS = {
    0: "SPAN_KIND_UNSPECIFIED",
    1: "SPAN_KIND_INTERNAL",
    2: "SPAN_KIND_SERVER",
    3: "SPAN_KIND_CLIENT",
    4: "SPAN_KIND_PRODUCER",
    5: "SPAN_KIND_CONSUMER",
}
STATUS_CODES = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}


class RecordError(ValueError):
    """One record is unusable; the message says why."""


def iso_to_ns(text: str) -> int:
    """ISO-8601 (``2025-11-17T14:55:18.786Z``, any offset, up to ns digits) → Unix ns."""
    raw = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    frac_ns = 0
    if "." in raw:
        head, rest = raw.split(".", 1)
        digits = ""
        for ch in rest:
            if ch.isdigit():
                digits += ch
            else:
                break
        tail = rest[len(digits) :]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        raw = head + tail
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise RecordError(f"bad ISO timestamp {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 10**9 + frac_ns
