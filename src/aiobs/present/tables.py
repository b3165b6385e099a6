"""What the row commands show on a terminal or in Markdown: each command's columns by priority
and kind, rows as a terminal table that fits the width there is (the lowest-priority columns
left out first, the key ones never, the one free-text column wrapped rather than cut), a
segment's counts as a sparkline, and the sections of ``stats``.

A column's *kind* says how its cells read to a person: durations in the largest unit that reads,
rates as percentages, costs to two significant digits, counts with thousands separators, times
showing the part that differs between the rows. JSON and CSV keep the raw values (``cli/render``).

Pure functions of the analysis results (rows are copied, never changed); ``cli/render.py``
writes them in the asked format.

Imports only the standard library and ``present.format``/``present.safe`` at module level
(``traces``/``sessions`` load it before their query); rich only when a table is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiobs.present.format import cell_text, duration, md_cell, money, num, pct
from aiobs.present.safe import inert

if TYPE_CHECKING:
    from rich.table import Table

    from aiobs.analysis.results import Stats

KEY = 0  # the row's key: never left out, never cut (a trace id must stay copyable)


@dataclass(frozen=True, slots=True)
class Col:
    """A table column: ``key`` in the rows; ``priority`` (``KEY`` is never left out; on a narrow
    terminal the highest number is left out first); ``kind`` how its
    cells read (``auto``: by the key's name and the value's type, see ``kind_of``); ``wrap`` for
    the one free-text column, which wraps instead of pushing others out."""

    key: str
    priority: int = 5
    kind: str = "auto"
    wrap: bool = False
    styles: tuple[tuple[str, str], ...] = ()  # (cell text, Rich style) on a terminal


Columns = Sequence["Col | str"]

TRACE_TABLE = (
    Col("trace_id", KEY, "id"), Col("start_time", 1), Col("status", 1), Col("duration_ms", 1),
    Col("service_name", 2), Col("root_name", 4), Col("llm_calls", 5), Col("tool_calls", 5),
    Col("input_tokens", 3), Col("output_tokens", 4), Col("cost_usd", 3), Col("models", 6),
    Col("user_id", 7), Col("session_id", 8),
)  # fmt: skip
SESSION_TABLE = (
    Col("session_id", KEY, "id"), Col("start_time", 1), Col("traces", 1), Col("errors", 1),
    Col("duration_ms", 2), Col("user_id", 3), Col("cost_usd", 3), Col("thumbs_down", 2),
    Col("retries", 4), Col("abandoned", 4), Col("resolved", 5), Col("csat", 5),
    Col("models", 6),
)  # fmt: skip
# Segment metrics in the order shown, with the priority each keeps on a narrow terminal.
SEGMENT_METRIC_PRIORITY = {
    "traces": 1, "error_rate": 1, "p50_ms": 3, "p95_ms": 2, "p99_ms": 6, "ttft_p50_ms": 7,
    "tokens_per_trace": 2, "cost_usd": 5, "cost_per_trace": 3, "llm_calls_per_trace": 6,
    "tool_calls_per_trace": 6, "tool_error_rate": 3, "handoff_rate": 3, "thumbs_down_rate": 4,
    "retry_rate": 6, "rephrase_rate": 7, "abandonment_rate": 4, "csat": 6, "response_chars": 8,
    "retrieval_top_score": 7, "eval_score": 7, "eval_fail_rate": 5, "sparkline": 2,
}  # fmt: skip

_TIME_KEYS = frozenset({"start_time", "end_time", "first", "last", "time", "timestamp"})
_COUNT_SUFFIXES = ("_tokens", "_calls", "_count", "_chars")


def kind_of(key: str) -> str:
    """How a column reads, from its name: ``*_ms`` durations, ``*_rate`` and ``share`` rates,
    ``cost*`` money, the time columns times, ids as they are, counts; else by the value's type."""
    if key.endswith("_ms"):
        return "duration"
    if key.endswith("_rate") or key in ("share", "baseline_share", "target_share"):
        return "rate"
    if key.startswith("cost"):
        return "money"
    if key in _TIME_KEYS:
        return "time"
    if key.endswith("_id") or key == "id":
        return "id"
    if key.endswith(_COUNT_SUFFIXES) or key in ("traces", "spans", "calls", "steps", "count"):
        return "count"
    return "auto"


def as_col(c: Col | str, *, infer: bool = True) -> Col:
    col = c if isinstance(c, Col) else Col(c)
    if col.kind == "auto" and infer:
        return Col(col.key, col.priority, kind_of(col.key), col.wrap, col.styles)
    return col


def time_layout(values: Sequence[Any]) -> tuple[str, str | None]:
    """The strftime layout that shows what differs between ``values`` (datetimes, UTC): the time
    of day when they share a date (and that date, for the caption), else the month and day too,
    or the whole date when the years differ."""
    moments = [v for v in values if isinstance(v, datetime)]
    if not moments:
        return "%Y-%m-%d %H:%M:%S", None
    dates = {m.date() for m in moments}
    if len(dates) == 1:
        return "%H:%M:%S", f"{next(iter(dates)):%Y-%m-%d}"
    if len({m.year for m in moments}) == 1:
        return "%m-%d %H:%M:%S", None
    return "%Y-%m-%d %H:%M:%S", None


def display(value: Any, kind: str, layout: str = "%Y-%m-%d %H:%M:%S") -> str:
    """One cell as a person reads it (before ``inert``); ``-``-free: an unknown value is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "duration" and isinstance(value, int | float):
        return duration(value)
    if kind == "rate" and isinstance(value, int | float):
        return pct(value)
    if kind == "money" and isinstance(value, int | float):
        return money(value)
    if kind == "time" and isinstance(value, datetime):
        return value.strftime(layout)
    if kind in ("count", "auto") and isinstance(value, int):
        return f"{value:,}"
    if kind in ("count", "auto") and isinstance(value, float):
        return num(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return cell_text(value)


def table_cells(
    columns: Sequence[Col], rows: Sequence[Mapping[str, Any]]
) -> tuple[list[list[str]], list[str]]:
    """Each row's cells as shown, made inert, and the caption's notes (a shared date)."""
    # One layout for every time column, so a row's start and end (or first and last) read alike.
    times = [c.key for c in columns if c.kind == "time"]
    layout, shared = time_layout([r.get(k) for r in rows for k in times])
    notes = []
    if shared:
        notes.append(f"{'times' if len(times) > 1 else times[0]} on {shared} UTC")
    cells = [[inert(display(r.get(c.key), c.kind, layout)) for c in columns] for r in rows]
    return cells, notes


def _numeric(kind: str, cells: Sequence[str]) -> bool:
    if kind in ("duration", "rate", "money", "count", "figure"):
        return True
    return kind == "auto" and all(
        not c or c.lstrip("-$<").replace(",", "").replace(".", "", 1).rstrip("%").isdigit()
        for c in cells
    )


SEP = 2  # the two spaces between columns
LONG_WORD = 16  # a word longer than this may break inside in a wrapped column
BREAK_AFTER = "=./:_-,"  # where a long word breaks first
WRAP_FOR = 2  # the free text wraps to make room for the columns of this priority and lower numbers
ROOMY = 32  # the free text's width beside the extras (lower priorities), when it is that long


def wrap_words(text: str, width: int) -> str:
    """``text`` wrapped to ``width`` at spaces; a word wider than ``width`` breaks after its
    punctuation (``http.server.request.`` | ``duration:mean``), else at ``width``. Rich wraps
    only at spaces and folds a long word at any character."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        while len(word) > width:
            cuts = [n + 1 for n, c in enumerate(word[:width]) if c in BREAK_AFTER]
            # The first break that leaves the rest on one line keeps a name whole (``model=`` |
            # ``claude-sonnet-4-5-20250929``); else the last that fits.
            whole = [n for n in cuts if len(word) - n <= width]
            cut = whole[0] if whole else cuts[-1] if cuts else width
            if line and len(line) + 1 + cut <= width:
                lines.append(f"{line} {word[:cut]}")
            else:
                if line:
                    lines.append(line)
                lines.append(word[:cut])
            line, word = "", word[cut:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line = f"{line} {word}"
        else:
            lines.append(line)
            line = word
    if line or not lines:
        lines.append(line)
    return "\n".join(lines)


def fit_columns(
    columns: Sequence[Col],
    natural: Sequence[int],
    width: int | None,
    minimum: Sequence[int] | None = None,
    lengths: Sequence[Sequence[int]] | None = None,
) -> tuple[list[int], list[int]]:
    """Which columns a table ``width`` wide shows (indices, in order) and each one's width.

    Every column gets its natural width when it fits. Otherwise the key columns are shown and
    then the others in order of priority as long as each still fits (so the lowest-priority ones
    are left out; ``KEY`` columns never), the free-text columns (``wrap``) counting at their
    narrowest for the main columns (priority up to ``WRAP_FOR``) and at ``ROOMY`` for the
    extras; what is left over widens the free text, first where most cells still wrap. Only
    when the key columns alone do not fit are the others cut. ``minimum`` is each column's
    longest word, below which a wrapped column does not go (but for words over ``LONG_WORD``);
    ``lengths`` each column's cells' lengths."""
    shown = list(range(len(columns)))
    if width is None:
        return shown, list(natural)

    def narrowest(i: int) -> int:
        if not columns[i].wrap:
            return natural[i]
        # A wrapped column is never narrower than its longest word (``minimum``), so words wrap
        # whole ("prompt_version=v7" is not split after "prompt_versi"); only a word longer than
        # LONG_WORD (a metric or model name) may break inside, after its punctuation.
        longest = min(minimum[i] if minimum else 0, LONG_WORD)
        return min(natural[i], max(12, len(columns[i].key), longest))

    def roomy(i: int) -> int:
        return min(natural[i], max(narrowest(i), ROOMY)) if columns[i].wrap else natural[i]

    def total(idx: Sequence[int], size: Callable[[int], int] = narrowest) -> int:
        return sum(size(i) for i in idx) + SEP * max(len(idx) - 1, 0)

    # The key columns, then each other column in order of priority (the leftmost of equals
    # first) when it still fits: a narrow low-priority column may fill what a wide one leaves.
    # The free text wraps to make room for the command's main columns, not for the extras (a
    # two-line row to show an onset's minute is worse than the minute left to -f json).
    chosen = [i for i in shown if columns[i].priority == KEY]
    for i in sorted(
        (i for i in shown if columns[i].priority != KEY), key=lambda i: (columns[i].priority, i)
    ):
        size = narrowest if columns[i].priority <= WRAP_FOR or columns[i].wrap else roomy
        if total(sorted([*chosen, i]), size) <= width:
            chosen.append(i)
    shown = sorted(chosen)
    widths = [narrowest(i) for i in shown]
    spare = width - total(shown)
    # What is left widens the free text where it saves most: the column with the most cells
    # still wrapping grows to the next cell's length (or by what is left).
    while spare > 0:
        wrapping = [
            (sum(1 for n_ in (lengths[i] if lengths else [natural[i]]) if n_ > widths[n]), n, i)
            for n, i in enumerate(shown)
            if columns[i].wrap and widths[n] < natural[i]
        ]
        if not wrapping:
            break
        _, n, i = max(wrapping, key=lambda t: (t[0], -t[1]))
        longer = [n_ for n_ in (lengths[i] if lengths else [natural[i]]) if n_ > widths[n]]
        grow = min(spare, min(longer) - widths[n])
        widths[n] += grow
        spare -= grow
    if spare < 0:  # even the key columns do not fit: cut the others, widest first
        for n in sorted(
            (n for n, i in enumerate(shown) if columns[i].priority != KEY),
            key=lambda n: -widths[n],
        ):
            take = min(-spare, widths[n] - 4)
            widths[n] -= take
            spare += take
            if spare >= 0:
                break
    return shown, widths


def rows_table(
    columns: Columns,
    rows: Sequence[Mapping[str, Any]],
    width: int | None,
    *,
    title: str | None = None,
    infer: bool = True,
    rule: bool = True,
    name_hidden: bool = True,
) -> Table:
    """Rows as a table at most ``width`` wide (``None``: as wide as the rows need, for a pipe),
    one line a row but for the free-text column; the columns left out are named in the caption.
    ``infer`` reads each column's kind from its name; ``rule`` draws a line under the header
    (else the header is dim, for a table inside a block of text); ``name_hidden`` names the
    columns left out in the caption."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cols = [as_col(c, infer=infer) for c in columns]
    cells, notes = table_cells(cols, rows)
    headers = [inert(c.key) for c in cols]
    natural = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    longest = [
        max((len(w) for row in cells for w in row[i].split()), default=0) for i in range(len(cols))
    ]
    lengths = [[len(row[i]) for row in cells] for i in range(len(cols))]
    shown, widths = fit_columns(cols, natural, width, longest, lengths)
    hidden = [cols[i].key for i in range(len(cols)) if i not in shown]
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD if rule else None,
        show_edge=False,
        pad_edge=False,
        # With the box's divider two spaces between columns (SEP); without a box, two of padding.
        padding=(0, 1, 0, 0) if rule else (0, 1),
        header_style="bold" if rule else "dim",
        title_justify="left",
        title_style="bold",
    )
    caption = list(notes)
    if hidden and name_hidden:
        caption.append(
            f"{len(hidden)} more column{'s' if len(hidden) > 1 else ''}: "
            + ", ".join(hidden)
            + " (a wider terminal, or -f json / csv)"
        )
    if caption:
        table.caption = "; ".join(caption)
        table.caption_justify = "left"
    for i, w in zip(shown, widths, strict=True):
        c = cols[i]
        right = _numeric(c.kind, [row[i] for row in cells])
        table.add_column(
            Text(headers[i]),
            justify="right" if right else "left",
            no_wrap=not c.wrap,
            overflow="fold" if c.wrap else "ellipsis",
            width=w,
        )
    styles = [dict(cols[i].styles) for i in shown]
    wrapped = {n: w for n, (i, w) in enumerate(zip(shown, widths, strict=True)) if cols[i].wrap}
    for row in cells:
        table.add_row(
            *(
                Text(
                    wrap_words(row[i], wrapped[n]) if n in wrapped else row[i],
                    style=st.get(row[i], ""),
                )
                for n, (i, st) in enumerate(zip(shown, styles, strict=True))
            )
        )
    return table


class FittedTable:
    """``rows_table`` laid out when printed, for the width the console offers there (a table
    inside an indented block, a TUI pane): the same columns, priorities and kinds."""

    def __init__(
        self,
        columns: Columns,
        rows: Sequence[Mapping[str, Any]],
        *,
        title: str | None = None,
        rule: bool = True,
        name_hidden: bool = True,
    ) -> None:
        self.columns, self.rows, self.title = columns, rows, title
        self.rule, self.name_hidden = rule, name_hidden

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield rows_table(
            self.columns,
            self.rows,
            options.max_width,
            title=self.title,
            rule=self.rule,
            name_hidden=self.name_hidden,
        )


def markdown_table(
    columns: Columns,
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    infer: bool = True,
) -> str:
    """Rows as a Markdown table (under a ``###`` title when given), every column, cells as on
    the terminal."""
    cols = [as_col(c, infer=infer) for c in columns]
    cells, notes = table_cells(cols, rows)
    lines = []
    if title:
        lines += [f"### {inert(title)}", ""]
    lines.append("| " + " | ".join(md_cell(c.key) for c in cols) + " |")
    lines.append("|" + "|".join("---:" if _numeric(c.kind, [r[i] for r in cells]) else "---"
                                for i, c in enumerate(cols)) + "|")  # fmt: skip
    for row in cells:
        lines.append("| " + " | ".join(md_cell(v) for v in row) + " |")
    if notes:
        lines += ["", "; ".join(notes)]
    return "\n".join(lines) + "\n"


def segment_columns(names: Sequence[str], rows: Sequence[Mapping[str, Any]] = ()) -> list[Col]:
    """A segment's columns: the group's fields (the key), then every metric by priority, then
    each evaluation's fail rate (``eval.<name>_fail_rate``) the rows carry."""
    from aiobs.analysis.segment import evaluation_columns

    evaluations = evaluation_columns(rows)
    return [
        *(Col(n, KEY, "text") for n in names),
        *(Col(m, p) for m, p in SEGMENT_METRIC_PRIORITY.items()),
        *(Col(e, SEGMENT_METRIC_PRIORITY["eval_fail_rate"] + 1) for e in evaluations),
    ]


def segment_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A segment's rows with the counts drawn as a sparkline (for a table or Markdown)."""
    from aiobs.analysis.segment import sparkline

    return [{**row, "sparkline": sparkline(row["sparkline"])} for row in rows]


STATS_TITLES = {
    "step_kinds": "step kinds",
    "coverage": "coverage of LLM steps",
    "conventions": "conventions seen",
}


def stats_sections(result: Stats) -> list[tuple[str, list[Col | str], Sequence[Mapping[str, Any]]]]:
    """``stats`` as named tables: (name, columns, rows) of signals, services, models, step
    kinds, LLM-step coverage, conventions and ingests; a name is the JSON's key (a section of
    ``-f csv|jsonl``), its title on a terminal ``STATS_TITLES``'."""
    ingests = [result["ingests"]] if result["ingests"] is not None else []
    return [
        ("signals", [Col("signal", KEY, "text"), "count", "first", "last"], result["signals"]),
        (
            "services",
            [Col("service_name", KEY), "service_version", "spans", "traces"],
            result["services"],
        ),
        (
            "models",
            # The model names its provider; what it cost matters more on a narrow terminal.
            [
                *(Col("provider", 6), Col("model", KEY), Col("calls", 1)),
                *(Col("input_tokens", 3), Col("output_tokens", 3), Col("cost_usd", 2)),
            ],
            result["models"],
        ),
        ("step_kinds", [Col("step_kind", KEY), "spans"], result["step_kinds"]),
        (
            "coverage",
            [Col("field", KEY), "share", "steps"],
            result["coverage"]["fields"],
        ),
        ("conventions", [Col("convention", KEY), "spans"], result["coverage"]["conventions"]),
        ("ingests", ["files", "rejected", "redacted_files"], ingests),
    ]
