"""The TUI's analysis screens beside Scan: Segments (the traces grouped by fields, each group's
metrics with a sparkline of its traffic) and Diff (two windows or filters: the metric deltas and
the factors that explain them). Both run the CLI's analysis functions (``segment``, ``diff``)
in workers; Enter on a group or a factor lists its traces, Enter on a trace replays it.

Must not import the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from aiobs.present.format import spark
from aiobs.present.safe import inert
from aiobs.tui import data
from aiobs.tui.screens import Base, TracesScreen, shrink
from aiobs.tui.widgets import FilterBar, KeyHints

if TYPE_CHECKING:
    from aiobs.analysis.results import Diff, SegmentRow


def fit_line(cells: Sequence[tuple[Text, int, bool]], width: int) -> Text:
    """Cells (text, width, right-aligned) side by side, cut or padded to their widths; the
    cells that do not fit in ``width`` are left out from the right (the first always shows)."""
    line, used = Text(), 0
    for text, w, right in cells:
        if used + w > width and used:
            break
        cell = text.copy()
        cell.truncate(w - 1, overflow="ellipsis")
        if right:
            cell.pad_left(w - 1 - cell.cell_len)
        else:
            cell.pad_right(w - 1 - cell.cell_len)
        line.append_text(cell)
        line.append(" ")
        used += w
    return line


# -- Segments ---------------------------------------------------------------------------------

# (metric, heading, width) of a group's line after its name and sparkline, by importance.
SEGMENT_FIGURES = (
    ("traces", "traces", 9), ("error_rate", "errors", 8), ("p95_ms", "p95", 9),
    ("tokens_per_trace", "tokens/tr", 10), ("cost_per_trace", "cost/tr", 10),
    ("tool_error_rate", "tool err", 9), ("thumbs_down_rate", "thumbs↓", 9),
    ("eval_fail_rate", "eval fail", 10), ("p50_ms", "p50", 9), ("llm_calls_per_trace", "llm/tr", 8),
)  # fmt: skip
SEGMENT_SORTS = tuple(f"-{m}" for m, _, _ in SEGMENT_FIGURES)
SPARK_WIDTH = 24  # a group's traffic over the window, in buckets (segment's own count)


def spark_cells(width: int) -> int:
    """A group's sparkline: all of segment's buckets when there is room, half on 80 columns."""
    return SPARK_WIDTH if width >= 120 else SPARK_WIDTH // 2


def group_label(names: Sequence[str], row: SegmentRow | dict[str, Any]) -> str:
    values = [row.get(n) for n in names]
    return " · ".join("(none)" if v is None else str(v) for v in values)


def segment_line(names: Sequence[str], row: SegmentRow, label_width: int, width: int) -> Text:
    """A group's line: its values, its traces per bucket as a sparkline, then its metrics."""
    from aiobs.present.diff import metric_value

    counts: list[float | None] = [c or None for c in row["sparkline"]]
    n = spark_cells(width)
    failed = bool(row["error_rate"]) and (row["error_rate"] or 0) >= 0.05
    cells: list[tuple[Text, int, bool]] = [
        (Text(inert(group_label(names, row)), style="bold red" if failed else "bold"),
         label_width, False),
        (Text(spark(shrink(counts, n)), style="cyan"), n + 1, False),
    ]  # fmt: skip
    for metric, _, w in SEGMENT_FIGURES:
        value = row.get(metric)
        text = (
            f"{value:,}"
            if metric == "traces" and value is not None
            else metric_value(value, metric)
        )
        cells.append((Text(text), w, True))
    return fit_line(cells, width)


def segment_header(names: Sequence[str], label_width: int, width: int) -> Text:
    cells = [
        (Text(", ".join(names)), label_width, False),
        (Text("traffic over the window"), spark_cells(width) + 1, False),
        *((Text(heading), w, True) for _, heading, w in SEGMENT_FIGURES),
    ]
    line = Text("  ")  # under the list's padding
    line.append_text(fit_line(cells, width))
    line.stylize("bold")
    return line


class SegmentsScreen(Base):
    """The traces grouped by one or more fields (``segment --by``): a line a group with its
    traffic as a sparkline and its metrics; Enter lists the group's traces."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "traces", "Traces", tooltip="The highlighted group's traces",
                id="segments.traces"),
        Binding("b", "by", "Group by", tooltip="Type the fields to group by (model, tool_name …)",
                id="segments.by"),
        Binding("o", "sort", "Sort", tooltip="Sort by the next metric", id="segments.sort"),
        Binding("O", "reverse", "Reverse", show=False, tooltip="Reverse the sort",
                id="segments.reverse"),
        Binding("1,2,3,4", "window", "Window", show=False,
                tooltip="The last hour, day, week or 30 days", id="segments.window"),
    ]  # fmt: skip

    @dataclass
    class Grouped(Message):
        query: data.TraceQuery
        by: str
        sort: str
        names: list[str]
        rows: list[SegmentRow]

    def __init__(self, query: data.TraceQuery, by: str = "model") -> None:
        super().__init__()
        self.query_ = query
        self.by = by
        self.sort = SEGMENT_SORTS[0]
        self.names: list[str] = []
        self.rows: list[SegmentRow] = []

    def compose(self) -> ComposeResult:
        from aiobs.analysis.segment import LIST_DIMS, SPAN_DIMS, TRACE_DIMS

        yield Static(Text("Segments…", style="dim"), id="title", classes="title")
        with Horizontal(classes="field-row"):
            yield Static(Text("group by ", style="bold"), classes="label")
            yield FilterBar(
                sorted({*TRACE_DIMS, *LIST_DIMS, *SPAN_DIMS}),
                value=self.by,
                placeholder="the fields to group by, e.g. model, prompt_version or attr['key']",
                id="by",
                compact=True,
            )
        yield Static("", id="groups-header")
        yield OptionList(markup=False, id="groups")
        yield Static("", id="status", classes="status")
        yield KeyHints()

    def on_mount(self) -> None:
        self.query_one("#groups", OptionList).focus()
        self.group()

    def group(self) -> None:
        query, by, sort = self.query_, self.by, self.sort
        self.query_one("#status", Static).update(
            Text(f"grouping by {by}… · {inert(query.describe())}", style="dim")
        )
        self.triage.ask(
            self,
            "segment",
            lambda r: data.segments(r, query, by, sort),
            lambda found: self.Grouped(query, by, sort, *found),
        )

    def on_segments_screen_grouped(self, message: Grouped) -> None:
        from aiobs.units import plural

        if (message.query, message.by, message.sort) != (self.query_, self.by, self.sort):
            return  # an answer to a question since replaced
        self.names, self.rows = message.names, message.rows
        self.query_one("#title", Static).update(
            Text(
                f"Segments by {message.by} · {plural(len(self.rows), 'group')}"
                f" · sorted by {self.sort}",
                style="bold",
            )
        )
        self.query_one("#status", Static).update(
            Text(inert(self.query_.but(sort=self.sort).describe()) + " · Enter: the group's traces")
        )
        self.fill()

    def fill(self) -> None:
        options = self.query_one("#groups", OptionList)
        width = max(options.scrollable_content_region.width - 3, 20)
        labels = [len(group_label(self.names, r)) for r in self.rows]
        label_width = min(max([*labels, len(", ".join(self.names)), 8]) + 2, max(width // 3, 12))
        self.query_one("#groups-header", Static).update(
            segment_header(self.names, label_width, width)
        )
        at = options.highlighted
        options.clear_options()
        options.add_options(
            [Option(segment_line(self.names, r, label_width, width)) for r in self.rows]
        )
        if self.rows:
            options.highlighted = at if at is not None and at < len(self.rows) else 0

    def on_resize(self) -> None:
        self.call_after_refresh(self.fill)

    @on(FilterBar.Submitted, "#by")
    def _by(self, message: FilterBar.Submitted) -> None:
        from aiobs.analysis.segment import parse_dimensions

        by = message.value.strip()
        try:
            parse_dimensions(by)
        except Exception as exc:
            self.triage.failed(exc)
            return
        self.query_one(FilterBar).remember(by)
        self.by = by
        self.query_one("#groups", OptionList).focus()
        self.group()

    @on(FilterBar.Left)
    def _left(self) -> None:
        self.query_one("#groups", OptionList).focus()

    def action_by(self) -> None:
        self.query_one(FilterBar).focus()

    def action_sort(self) -> None:
        names = [s.lstrip("-") for s in SEGMENT_SORTS]
        now = self.sort.lstrip("-")
        self.sort = (
            SEGMENT_SORTS[(names.index(now) + 1) % len(names)] if now in names else "-traces"
        )
        self.group()

    def action_reverse(self) -> None:
        self.sort = self.sort[1:] if self.sort.startswith("-") else f"-{self.sort}"
        self.group()

    def action_window(self) -> None:
        self.query_ = self.query_.but(since=data.WINDOWS.get(self.triage.last_key), until=None)
        self.group()

    @on(OptionList.OptionSelected, "#groups")
    def _selected(self) -> None:
        self.action_traces()

    def action_traces(self) -> None:
        options = self.query_one("#groups", OptionList)
        if options.highlighted is None or not self.rows:
            return
        row = self.rows[options.highlighted]
        condition = data.group_condition(self.names, row)
        base = " and ".join(f"({c})" for c in (self.query_.condition(), condition) if c)
        self.triage.push_screen(
            TracesScreen(
                self.query_.but(base=base, where=None, sort="-start_time", sessions=False),
                f"Traces of {inert(condition)}",
            )
        )


# -- Diff of two windows or filters -------------------------------------------------------------

# (key of present.diff.metric_rows, width, right-aligned)
METRIC_CELLS = (
    ("metric", 20, False), ("baseline", 10, True), ("target", 10, True), ("change", 18, True),
    ("", 12, False), ("q", 8, True), ("95% CI of Δ", 24, True),
)  # fmt: skip
FACTOR_CELLS = (
    ("field", 16, False), ("value", 0, False), ("baseline", 9, True), ("target", 9, True),
    ("lift", 8, True), ("explains", 9, True), ("kind", 8, False),
)  # fmt: skip
FACTOR_VALUE_WIDTH = (14, 40)  # the value takes what the other columns leave, within these


class PeriodDiffScreen(Base):
    """Two windows or filters compared (``diff --baseline … --target …``): the metric deltas
    with their intervals and q-values, regressions first in red, and the factors that explain
    the change; Enter on a factor lists its example traces from both sides."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "examples", "Examples", tooltip="The factor's example traces",
                id="diff.examples"),
        Binding("b", "edit('baseline')", "Baseline", tooltip="Type the baseline window or filter",
                id="diff.baseline"),
        Binding("t", "edit('target')", "Target", tooltip="Type the target window or filter",
                id="diff.target"),
        Binding("tab", "switch", "Metrics/factors", show=False,
                tooltip="Between the metrics and the factors", id="diff.switch"),
        Binding("1,2,3,4,0", "window", "Window", show=False,
                tooltip="Filter sides within the last hour, day, week, 30 days; 0: all time",
                id="diff.window"),
    ]  # fmt: skip

    @dataclass
    class Compared(Message):
        sides: tuple[str, str]
        query: data.TraceQuery
        result: Diff | None
        error: str | None = None  # why there is no diff (a side selects no traces …)

    def __init__(self, query: data.TraceQuery, baseline: str, target: str) -> None:
        super().__init__()
        self.query_ = query
        self.sides = (baseline, target)
        self.result: Diff | None = None

    def compose(self) -> ComposeResult:
        from aiobs.analysis.where import SPAN_FIELDS, TRACE_FIELDS

        fields = sorted(TRACE_FIELDS | SPAN_FIELDS)
        yield Static(Text("Diff…", style="dim"), id="title", classes="title")
        for side, value in zip(("baseline", "target"), self.sides, strict=True):
            with Horizontal(classes="field-row"):
                yield Static(Text(f"{side:9}", style="bold"), classes="label")
                yield FilterBar(
                    fields,
                    value=value,
                    placeholder="a window (48h..24h, 2026-11-14T00:00Z..) or a --where condition",
                    id=side,
                    compact=True,
                )
        yield Static("", id="sides")
        yield Static("", id="metrics-header")
        yield OptionList(markup=False, id="metrics")
        yield Static("", id="factors-title")
        yield OptionList(markup=False, id="factors")
        yield KeyHints()

    def on_mount(self) -> None:
        self.query_one("#metrics", OptionList).focus()
        self.compare()

    def compare(self) -> None:
        from aiobs.errors import AiobsError

        query, (baseline, target) = self.query_, self.sides
        self.query_one("#title", Static).update(Text("Diff · comparing…", style="dim"))

        def read(reader: Any) -> PeriodDiffScreen.Compared:
            try:
                return self.Compared(
                    (baseline, target), query, data.period_diff(reader, query, baseline, target)
                )
            except AiobsError as exc:  # said in the title, where the result would be
                return self.Compared((baseline, target), query, None, exc.message)

        self.triage.ask(self, "diff", read, lambda message: message)

    def on_period_diff_screen_compared(self, message: Compared) -> None:
        from aiobs.present.diff import metric_rows
        from aiobs.units import plural

        if (message.sides, message.query) != (self.sides, self.query_):
            return
        if message.result is None:
            self.query_one("#title", Static).update(
                Text.assemble(("Diff · ", "bold"), (message.error or "", "red"), self._within())
            )
            return
        r = self.result = message.result
        regressions = [m["name"] for m in r["metrics"] if m["regression"]]
        verdict = (
            Text(f"{plural(len(regressions), 'regression')}: {', '.join(regressions)}", "bold red")
            if regressions
            else Text("no regression", "green")
        )
        self.query_one("#title", Static).update(
            Text.assemble(("Diff · ", "bold"), verdict, (self._within(), "dim"))
        )
        self.query_one("#sides", Static).update(
            Text(
                f"{plural(r['baseline']['traces'], 'trace')} in the baseline,"
                f" {plural(r['target']['traces'], 'trace')} in the target"
                " · b, t: edit a side, Enter: compare",
                style="dim",
            )
        )
        metrics = self.query_one("#metrics", OptionList)
        width = max(metrics.scrollable_content_region.width - 3, 20)
        rows = metric_rows(r)
        # Regressions first, then what changed significantly, then the rest, as diff orders.
        rank = {"REGRESSION": 0, "significant": 1}
        rows.sort(key=lambda row: rank.get(row[""], 2))
        header = [(Text(k, "bold"), w, right) for k, w, right in METRIC_CELLS]
        self.query_one("#metrics-header", Static).update(
            Text("  ").append_text(fit_line(header, width))
        )
        metrics.clear_options()
        for row in rows:
            style = {"REGRESSION": "red", "significant": "yellow"}.get(row[""], "")
            cells = [(Text(inert(row[k]), style), w, right) for k, w, right in METRIC_CELLS]
            metrics.add_option(Option(fit_line(cells, width)))
        if rows:
            metrics.highlighted = 0
        self.fill_factors()

    def _within(self) -> str:
        """The traces both sides are taken from, beyond their own window or filter (a side
        that is a window sets its own)."""
        from aiobs.analysis.diff import parse_side

        try:
            filters = any(parse_side("baseline", s).where is not None for s in self.sides)
        except Exception:
            filters = True
        query = self.query_ if filters else self.query_.but(since=None, until=None)
        within = query.describe(with_sort=False)
        return f" · both sides {inert(within)}" if within else ""

    def action_window(self) -> None:
        self.query_ = self.query_.but(since=data.WINDOWS.get(self.triage.last_key), until=None)
        self.compare()

    def fill_factors(self) -> None:
        from aiobs.present.diff import factor_rows

        r = self.result
        if r is None:
            return
        factors = self.query_one("#factors", OptionList)
        width = max(factors.scrollable_content_region.width - 3, 20)
        self.query_one("#factors-title", Static).update(
            Text.assemble(
                ("what explains it", "bold"),
                f" ({r['primary_metric'] or 'no regression'}) · Tab, then Enter: a factor's traces",
            )
        )
        factors.clear_options()
        others = sum(w for _, w, _ in FACTOR_CELLS)
        low, high = FACTOR_VALUE_WIDTH
        value_width = min(max(width - others, low), high)
        for row in factor_rows(r):
            cells = [(Text(inert(row[k])), w or value_width, right) for k, w, right in FACTOR_CELLS]
            factors.add_option(Option(fit_line(cells, width)))
        if r["factors"]:
            factors.highlighted = 0

    @on(FilterBar.Submitted)
    def _side(self, message: FilterBar.Submitted) -> None:
        from aiobs.analysis.diff import parse_side

        baseline = self.query_one("#baseline", FilterBar).value.strip()
        target = self.query_one("#target", FilterBar).value.strip()
        try:
            parse_side("baseline", baseline)
            parse_side("target", target)
        except Exception as exc:
            self.triage.failed(exc)
            return
        if isinstance(message.input, FilterBar):
            message.input.remember(message.value.strip())
        self.sides = (baseline, target)
        self.query_one("#metrics", OptionList).focus()
        self.compare()

    @on(FilterBar.Left)
    def _left(self) -> None:
        self.query_one("#metrics", OptionList).focus()

    def action_edit(self, side: str) -> None:
        self.query_one(f"#{side}", FilterBar).focus()

    def action_switch(self) -> None:
        metrics = self.query_one("#metrics", OptionList)
        factors = self.query_one("#factors", OptionList)
        (factors if metrics.has_focus else metrics).focus()

    @on(OptionList.OptionSelected, "#factors")
    def _selected(self) -> None:
        self.action_examples()

    @on(OptionList.OptionSelected, "#metrics")
    def _metric_selected(self) -> None:
        self.query_one("#factors", OptionList).focus()  # to what explains the change

    def action_examples(self) -> None:
        factors = self.query_one("#factors", OptionList)
        if self.result is None or not self.result["factors"]:
            return
        if not factors.has_focus:
            factors.focus()  # Enter on the metrics: to the factors that explain them
            return
        if factors.highlighted is None:
            return
        f = self.result["factors"][factors.highlighted]
        examples = [*f["examples"]["target"], *f["examples"]["baseline"]]
        if not examples:
            self.notify("this factor has no example traces", severity="warning")
            return
        self.triage.push_screen(
            TracesScreen(
                data.TraceQuery(base=data.examples_condition(examples)),
                f"Examples of {inert(f['field'])} = {inert(str(f['value']))}, from both sides",
            )
        )
