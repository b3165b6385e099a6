"""Rendering plain result objects as table, JSON, JSON Lines, CSV or Markdown.

Data goes to stdout; nothing else does. JSON values follow the contract in DESIGN.md: snake_case
keys, times ISO-8601 UTC, durations in ms. Table and Markdown cells pass through ``safe.inert``.

Must not import duckdb, polars, pyarrow, sqlglot, textual or httpx at module level.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from aiobs.cli.context import OutputFormat, Settings
from aiobs.cli.safe import inert


def jsonable(value: Any) -> Any:
    """Convert a DuckDB/Python value to what the JSON contract promises."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            from datetime import UTC

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


def csv_text(value: Any) -> str:
    """A CSV cell: the value whole, for programs (no thousands separators, no rounding)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    return cell_text(value)


def render_rows(
    settings: Settings,
    fmt: OutputFormat,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
) -> None:
    """Render a list of records in the requested format on stdout."""
    out = settings.out
    if fmt == OutputFormat.json:
        out.file.write(json_text([dict(r) for r in rows]) + "\n")
    elif fmt == OutputFormat.jsonl:
        for r in rows:
            out.file.write(json_text(dict(r)) + "\n")
    elif fmt == OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([csv_text(r.get(c)) for c in columns])
        out.file.write(buf.getvalue())
    elif fmt == OutputFormat.markdown:
        out.file.write(markdown_table(columns, rows, title=title))
    else:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, show_lines=False, header_style="bold")
        # One line per row: long cells are cut with an ellipsis (use -f json/csv for whole values).
        for c in columns:
            table.add_column(
                Text(inert(c)),
                no_wrap=True,
                overflow="ellipsis",
                min_width=min(len(c), 10),
                max_width=48,
            )
        for r in rows:
            table.add_row(*(Text(inert(cell_text(r.get(c)))) for c in columns))
        out.print(table)


def md_cell(value: Any) -> str:
    """One value as inline Markdown: inert, pipes and newlines escaped."""
    return inert(cell_text(value)).replace("|", "\\|").replace("\n", " ")


def markdown_table(
    columns: Sequence[str], rows: Sequence[Mapping[str, Any]], *, title: str | None = None
) -> str:
    lines = []
    if title:
        lines += [f"### {inert(title)}", ""]
    lines.append("| " + " | ".join(md_cell(c) for c in columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for r in rows:
        lines.append("| " + " | ".join(md_cell(r.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


# JSON escapes C0 controls itself; C1 controls (U+009B is a one-character CSI) and bidi overrides
# are valid unescaped in JSON strings, so they are escaped here before reaching a terminal.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def json_text(obj: Any, *, indent: int | None = None) -> str:
    text = json.dumps(jsonable(obj), ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def render_json(settings: Settings, obj: Any) -> None:
    settings.out.file.write(json_text(obj, indent=2) + "\n")


def render_jsonl(settings: Settings, rows: Sequence[Any]) -> None:
    for row in rows:
        settings.out.file.write(json_text(row) + "\n")
