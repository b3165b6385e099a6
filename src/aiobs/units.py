"""Numbers as a person reads them, one rule for every surface: durations in the largest unit that
reads, percentages with the precision they need, dollars to what matters, thousands separators
from 1,000, plurals. The CLI, the TUI and the analyses' one-line insights all use these, so a
figure reads the same in a table, a summary and a JSON ``summary`` string.

Imports only the standard library (the analyses import it; it must not reach the presentation).
"""

from __future__ import annotations

import math
from typing import Any


def duration(ms: float | None) -> str:
    """A duration in the largest unit that reads: ``412 ms``, ``2.46 s``, ``12.3 s``,
    ``5.4 min``, ``47 min``, ``5.4 h``, ``19 h``, ``3.2 d``; ``-`` when unknown."""
    if ms is None:
        return "-"
    a = abs(ms)
    if a < 1000:
        return f"{ms:.0f} ms"
    if a < 10_000:
        return f"{ms / 1000:.2f} s"
    if a < 60_000:
        return f"{ms / 1000:.1f} s"
    if a < 600_000:
        return f"{ms / 60_000:.1f} min"
    if a < 3_600_000:
        return f"{ms / 60_000:.0f} min"
    if a < 36_000_000:
        return f"{ms / 3_600_000:.1f} h"
    if a < 172_800_000:
        return f"{ms / 3_600_000:.0f} h"
    return f"{ms / 86_400_000:.1f} d"


def money(value: float | None) -> str:
    """US dollars to what matters: cents from a dollar (``$14.74``, ``$1,204``), two significant
    digits below (``$0.50``, ``$0.0023``), ``$0`` for nothing; ``-`` unknown."""
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    a = abs(value)
    if a == 0:
        return "$0"
    if a >= 1000:
        return f"{sign}${a:,.0f}"
    if a >= 1:
        return f"{sign}${a:.2f}"
    decimals = max(2, 1 - math.floor(math.log10(a)))
    return f"{sign}${a:.{decimals}f}"


def pct(v: float | None, decimals: int | None = None, *, sign: bool = False) -> str:
    """A share, rate or relative change (1 = 100%) as a percentage with the precision it needs:
    ``0%``, ``~0%`` (under 0.001%), ``0.012%``, ``0.67%``, ``12.5%``, ``742%`` (``decimals`` fixes it; ``+12%`` with
    ``sign``); never ``-0.0%``; ``-`` unknown."""
    if v is None:
        return "-"
    x = v * 100
    if decimals is None:
        a = abs(x)
        if a == 0:
            decimals = 0
        elif a < 0.001:
            return "~0%"  # under a thousandth of a percent: nothing a person acts on
        elif a < 0.1:
            decimals = min(6, 1 - math.floor(math.log10(a)))
        elif a < 10:
            decimals = 2
        elif a < 100:
            decimals = 1
        else:
            decimals = 0
    text = f"{x:{'+' if sign else ''}.{decimals}f}"
    if float(text) == 0:  # rounded to nothing: no sign ("-0.0%" reads as a fall)
        text = text.lstrip("+-")
    return text + "%"


def num(v: Any, digits: int = 3) -> str:
    """A measured figure: whole with thousands separators from 1,000 (one rule everywhere), whole
    from 100, else ``digits`` significant digits; ``-`` unknown."""
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    text = f"{v:.{digits}g}"
    return text.lstrip("-") if float(text) == 0 else text


def plural(n: int, noun: str, plural_noun: str | None = None) -> str:
    """``1 trace``, ``2,348 traces``, ``0 incidents`` (``plural_noun`` when adding an s is
    wrong: ``1 reply`` / ``3 replies``)."""
    return f"{n:,} {noun if n == 1 else plural_noun or noun + 's'}"
