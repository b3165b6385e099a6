"""Writing a result to stdout in the asked format: table, JSON, JSON Lines, CSV or Markdown.

Data goes to stdout; nothing else does. JSON values follow the contract in DESIGN.md: snake_case
keys, times ISO-8601 UTC, durations in ms (``present.format.jsonable``). The terminal table is
``present.tables.rows_table``, Markdown tables and cells ``present.format``'s, all made inert.
What a command shows beyond rows (a replay, a scan's incidents, a diff) is built by
``aiobs.present``; this module only writes it out.

Must not import duckdb, polars, pyarrow, sqlglot, textual or httpx at module level.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from aiobs.cli.context import OutputFormat, Settings
from aiobs.present.format import cell_text, jsonable, markdown_table


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
        from aiobs.present.tables import rows_table

        out.print(rows_table(columns, rows, out.width, title=title))


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


def note_empty(s: Settings, fmt: OutputFormat, rows: Sequence[Any], what: str) -> None:
    """On a terminal table, say that nothing matched (stderr; stdout stays empty for scripts)."""
    if not rows and fmt == OutputFormat.table and not s.quiet:
        s.err.print(f"no {what} match (times are UTC; --since is relative to now)")
