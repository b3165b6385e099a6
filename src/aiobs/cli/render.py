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
from aiobs.present.format import cell_text, jsonable
from aiobs.present.tables import Columns, markdown_table


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
    columns: Columns,
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    infer: bool = True,
) -> None:
    """Render a list of records in the requested format on stdout. ``columns`` are names or
    ``present.tables.Col`` (priority and kind, for the terminal table and Markdown); JSON and CSV
    carry the raw values of every column named."""
    keys = [c if isinstance(c, str) else c.key for c in columns]
    data = settings.data
    if fmt == OutputFormat.json:
        data.write(json_text([dict(r) for r in rows]) + "\n")
    elif fmt == OutputFormat.jsonl:
        for r in rows:
            data.write(json_text(dict(r)) + "\n")
    elif fmt == OutputFormat.csv:
        data.write(csv_rows(keys, rows))
    elif fmt == OutputFormat.markdown:
        data.write(markdown_table(columns, rows, title=title, infer=infer))
    else:
        render_table(settings, columns, rows, title=title, infer=infer)


def render_table(
    settings: Settings,
    columns: Columns,
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    infer: bool = True,
) -> None:
    """Rows as a terminal table as wide as the terminal; into a pipe, as wide as the rows need
    (nothing cut, no padding: the console strips trailing spaces there)."""
    from aiobs.present.tables import rows_table

    out = settings.out
    if settings.stdout_is_tty:
        out.print(rows_table(columns, rows, out.width, title=title, infer=infer))
        return
    # Rich caps a print at the console's width (COLUMNS or 200 into a pipe) and squeezes a wider
    # table to it; the table is as wide as its rows, so it gets all the room it asks for.
    saved, out.width = out.width, 1_000_000
    try:
        out.print(rows_table(columns, rows, None, title=title, infer=infer), crop=False)
    finally:
        out.width = saved


def csv_rows(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """A header and the rows as CSV, values whole."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([csv_text(r.get(c)) for c in columns])
    return buf.getvalue()


Section = tuple[str, Columns, Sequence[Mapping[str, Any]]]


def render_sections(
    settings: Settings,
    fmt: OutputFormat,
    sections: Sequence[Section],
    titles: Mapping[str, str] | None = None,
) -> None:
    """A result made of several tables (``stats``, ``diff``) in a row format, whole and
    parseable: JSON Lines and CSV give every row a leading ``section`` (CSV's header is the union
    of the sections' columns, in order of first use); Markdown and the terminal, tables titled
    by ``titles`` (or the section's name)."""
    if fmt in (OutputFormat.jsonl, OutputFormat.csv):
        rows = [
            {"section": title, **{k: row.get(k) for k in _keys(columns)}}
            for title, columns, section_rows in sections
            for row in section_rows
        ]
        if fmt == OutputFormat.jsonl:
            render_jsonl(settings, rows)
            return
        union = ["section"]
        for _, columns, _ in sections:
            union += [k for k in _keys(columns) if k not in union]
        settings.data.write(csv_rows(union, rows))
        return
    for name, columns, section_rows in sections:
        title = (titles or {}).get(name, name)
        render_rows(settings, fmt, columns, section_rows, title=title)
        if fmt == OutputFormat.markdown:
            settings.data.write("\n")


def sections_of(obj: Mapping[str, Any], name: str) -> list[Section]:
    """A nested result as the sections of the row formats, whole: its scalar fields (lists of
    plain values included) as a one-row section ``name``, each field holding a list of records
    as a section of its own, and each field holding a record the same way under its key."""

    def is_records(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)

    scalars = {k: v for k, v in obj.items() if not isinstance(v, Mapping) and not is_records(v)}
    out: list[Section] = [(name, list(scalars), [scalars])] if scalars else []
    for key, value in obj.items():
        if isinstance(value, Mapping):
            out += sections_of(value, key)
        elif is_records(value):
            columns: list[str] = []
            for row in value:
                columns += [k for k in row if k not in columns]
            out.append((key, columns, value))
    return out


def _keys(columns: Columns) -> list[str]:
    return [c if isinstance(c, str) else c.key for c in columns]


# JSON escapes C0 controls itself; C1 controls (U+009B is a one-character CSI) and bidi overrides
# are valid unescaped in JSON strings, so they are escaped here before reaching a terminal.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def json_text(obj: Any, *, indent: int | None = None) -> str:
    text = json.dumps(jsonable(obj), ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def render_json(settings: Settings, obj: Any) -> None:
    settings.data.write(json_text(obj, indent=2) + "\n")


def render_jsonl(settings: Settings, rows: Sequence[Any]) -> None:
    for row in rows:
        settings.data.write(json_text(row) + "\n")


def note_empty(
    s: Settings, fmt: OutputFormat, rows: Sequence[Any], what: str, *, since: str | None = None
) -> None:
    """On a terminal table, say that nothing matched (stderr; stdout stays empty for scripts),
    and, when ``--since`` was given as an age, that it counts back from now."""
    if not rows and fmt == OutputFormat.table and not s.quiet:
        relative = (
            since is not None
            and ".." not in since
            and since[:1].isdigit()
            and not (len(since) >= 10 and since[4:5] == "-")
        )
        hint = "; --since counts back from now" if relative else ""
        s.err.print(f"no {what} match (times are UTC{hint})")
