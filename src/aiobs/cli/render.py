"""Writing a result to stdout in the asked format: table, JSON, JSON Lines, CSV or Markdown.

Data goes to stdout; nothing else does. JSON values follow the contract in DESIGN.md: snake_case
keys, times ISO-8601 UTC, durations in ms (``present.format.jsonable``). Table and Markdown cells
are ``present.format`` cells, made inert. What a command shows beyond rows (a replay, a scan's
incidents, a diff) is built by ``aiobs.present``; this module only writes it out.

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
from aiobs.present.safe import inert


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

        cells = [[inert(cell_text(r.get(c))) for c in columns] for r in rows]
        widths = column_widths([inert(c) for c in columns], cells, out.width)
        hidden = columns[len(widths) :]
        table = Table(title=title, show_lines=False, header_style="bold")
        if hidden:
            table.caption = (
                f"{len(hidden)} more column{'s' if len(hidden) > 1 else ''}: "
                + ", ".join(hidden)
                + " (a wider terminal, or -f json / csv)"
            )
        # One line per row: long cells are cut with an ellipsis (use -f json/csv for whole
        # values), except the first column, the row's key (a trace id must stay copyable).
        for c, width in zip(columns, widths, strict=False):
            table.add_column(Text(inert(c)), no_wrap=True, overflow="ellipsis", width=width)
        for row in cells:
            table.add_row(*(Text(text) for text in row[: len(widths)]))
        out.print(table)


MAX_CELL = 48  # widest a table cell grows before it is cut with an ellipsis
MIN_CELL = 10  # narrowest a cut column gets before columns are left out instead


def column_widths(columns: Sequence[str], cells: Sequence[Sequence[str]], width: int) -> list[int]:
    """Each shown column's width, for a table at most ``width`` wide: the first column whole,
    the others cut to one common cap (at least MIN_CELL), and columns left out from the right
    when even that does not fit. Rich's own layout squeezed every column, down to none, and cut
    the ids people copy into `aiobs replay`."""
    natural = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    natural[1:] = [min(w, MAX_CELL) for w in natural[1:]]

    def total(ws: Sequence[int]) -> int:
        return 1 + sum(w + 3 for w in ws)  # a rule and two spaces of padding per column

    shown = len(columns)
    while shown > 1 and total([natural[0], *(min(w, MIN_CELL) for w in natural[1:shown])]) > width:
        shown -= 1
    ws = natural[:shown]
    cap = max(ws[1:], default=0)
    while cap > MIN_CELL and total([ws[0], *(min(w, cap) for w in ws[1:])]) > width:
        cap -= 1
    return [ws[0], *(min(w, cap) for w in ws[1:])]


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
