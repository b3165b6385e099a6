"""The TUI's screens: Traces (the virtual table, filter bar and quick filters), Trace (the
replay: waterfall, step detail, context), Scan (incidents, their examples), Diff (two traces
side by side) and the pickers. Each screen asks the store only in workers
(``@work(thread=True, exclusive=True, group=…)``) that post a message back; the App renders
errors in one place (``TriageApp.failed``).

Must not import the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import (
    ContentSwitcher,
    OptionList,
    Static,
)
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from aiobs.present.format import spark
from aiobs.present.safe import inert
from aiobs.tui import data
from aiobs.tui.widgets import FilterBar, KeyHints, TraceTable

if TYPE_CHECKING:
    from aiobs.analysis.results import (
        Incident,
        Replay,
        ReplayStep,
        Scan,
        SessionReplay,
        TraceDiff,
    )
    from aiobs.tui.app import TriageApp


PREFETCH_DELAY = 0.15  # seconds the cursor rests on a trace before its replay is read ahead


class Base(Screen[None]):
    """What every screen shares: the app it belongs to, typed."""

    @property
    def triage(self) -> TriageApp:
        return self.app  # type: ignore[return-value]

    def cancelled(self) -> bool:
        return get_current_worker().is_cancelled


# -- Traces -----------------------------------------------------------------------------------


class TracesScreen(Base):
    """Every trace the query selects, newest first, in a table that fetches only what shows."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", tooltip="Type a --where condition",
                id="traces.filter"),
        Binding("e", "errors", "Errors", tooltip="Only traces that failed", id="traces.errors"),
        Binding("l", "slow", "Slow", tooltip="Only the slowest 5% (at least the p95)",
                show=False, id="traces.slow"),
        Binding("M", "pick('model')", "Model", tooltip="Only traces calling a model",
                show=False, id="traces.model"),
        Binding("P", "pick('prompt_version')", "Prompt", tooltip="Only one prompt version",
                show=False, id="traces.prompt"),
        Binding("1,2,3,4", "window", "Window", show=False,
                tooltip="The last hour, day, week or 30 days", id="traces.window"),
        Binding("0", "clear", "Clear", tooltip="Clear the quick filters and the filter bar",
                show=False, id="traces.clear"),
        Binding("o", "sort", "Sort", tooltip="Sort by a column (a list to pick from)",
                id="traces.sort"),
        Binding("O", "reverse", "Reverse", show=False, tooltip="Reverse the sort",
                id="traces.reverse"),
        Binding("m", "mark", "Mark", tooltip="Mark this trace to compare another with it",
                id="traces.mark"),
        Binding("D", "diff", "Diff", tooltip="Compare the marked trace with this one",
                id="traces.diff"),
        Binding("v", "sessions", "Sessions", tooltip="Between the traces and their sessions",
                id="traces.sessions"),
    ]  # fmt: skip

    SORTS = ("-start_time", "-duration_ms", "-cost_usd", "-input_tokens", "-output_tokens",
             "-llm_calls", "-tool_calls", "service_name", "root_name", "status", "user_id",
             "session_id", "trace_id")  # fmt: skip
    SESSION_SORTS = ("-start_time", "-duration_ms", "-traces", "-errors", "-cost_usd",
                     "-thumbs_down", "-retries", "-abandoned", "csat", "user_id",
                     "session_id")  # fmt: skip

    @dataclass
    class Counted(Message):
        generation: int
        total: int

    @dataclass
    class PageLoaded(Message):
        generation: int
        index: int
        rows: list[Any]

    @dataclass
    class PagesDropped(Message):
        """Pages a fetch did not deliver (a newer one superseded it)."""

        generation: int
        pages: list[int]

    @dataclass
    class Threshold(Message):
        slow_ms: float | None

    @dataclass
    class Prefetched(Message):
        replay: Replay

    @dataclass
    class Values(Message):
        values: dict[str, list[str]]

    def __init__(self, query: data.TraceQuery, title: str = "Traces") -> None:
        super().__init__()
        self.query_ = query
        self.title_ = title
        self._prefetch_timer: Timer | None = None
        self._values_asked = False  # the filter bar's suggested values, read after the first rows

    def compose(self) -> ComposeResult:
        from aiobs.analysis.where import SPAN_FIELDS, TRACE_FIELDS

        yield Static(self.title_, id="title", classes="title")
        yield FilterBar(
            sorted(TRACE_FIELDS | SPAN_FIELDS),
            placeholder="/ filter: a --where condition, e.g. status = 'error' and model = 'gpt-4.1'",
            id="filter",
        )
        yield TraceTable(id="traces")
        yield Static("", id="status", classes="status")
        yield KeyHints(("⏎", "Replay"))

    @property
    def table(self) -> TraceTable:
        return self.query_one(TraceTable)

    def on_mount(self) -> None:
        self.table.focus()
        self._show_mode()
        self.reload()

    def _show_mode(self) -> None:
        from aiobs.present.tables import SESSION_TABLE, TRACE_TABLE

        if self.query_.sessions:
            self.table.show(SESSION_TABLE, "session_id")
            self.query_one(KeyHints).show(("⏎", "Session"))
        else:
            self.table.show(TRACE_TABLE, "trace_id")
            self.query_one(KeyHints).show(("⏎", "Replay"))

    # -- the query ----------------------------------------------------------------------------

    def reload(self) -> None:
        """Start over with the current query: count its traces and fetch the first page."""
        try:
            self.query_.filter()
        except Exception as exc:  # a bad condition: said, and the old rows stay
            self.triage.failed(exc)
            return
        generation = self.table.reset()
        self.table.marked = self.triage.marked
        self.show_status(None)
        self.count(generation, self.query_)

    def show_status(self, total: int | None) -> None:
        from aiobs.units import plural

        what = "session" if self.query_.sessions else "trace"
        counted = "counting…" if total is None else plural(total, what)
        listening = ""
        if self.triage.collector is not None:  # aiobs tui --listen
            host, port = self.triage.collector.address
            listening = f" · receiving OTLP/HTTP on http://{host}:{port}"
        self.query_one("#status", Static).update(
            Text(f"{counted} · {inert(self.query_.describe())}{listening}")
        )

    def apply(self, **changes: Any) -> None:
        self.query_ = self.query_.but(**changes)
        self.reload()

    def count(self, generation: int, query: data.TraceQuery) -> None:
        self.triage.ask(
            self, "count", lambda r: data.count(r, query), lambda n: self.Counted(generation, n)
        )

    @work(thread=True, exclusive=True, group="pages", exit_on_error=False)
    def fetch(self, generation: int, query: data.TraceQuery, pages: list[int]) -> None:
        """The pages, one message each; those a newer fetch cut short are given back, so they
        are asked for again when they show."""
        left = list(pages)
        try:
            with self.triage.reading(self, "pages") as reader:
                while left and not self.cancelled():
                    rows = data.page(reader, query, left[0])
                    self.post_message(self.PageLoaded(generation, left.pop(0), list(rows)))
        finally:
            if left:
                self.post_message(self.PagesDropped(generation, left))

    def load_values(self) -> None:
        self.triage.ask(self, "values", data.field_values, self.Values)

    def find_threshold(self, query: data.TraceQuery) -> None:
        self.triage.ask(self, "slow", lambda r: data.slow_threshold(r, query), self.Threshold)

    def on_traces_screen_counted(self, message: Counted) -> None:
        self.table.set_total(message.generation, message.total)
        if message.generation == self.table.pages.generation:
            self.show_status(message.total)
            self.table.want_visible()

    def on_traces_screen_page_loaded(self, message: PageLoaded) -> None:
        self.table.add_page(message.generation, message.index, message.rows)
        if (
            not self._values_asked
        ):  # after the first rows: the suggestions' scan must not delay them
            self._values_asked = True
            self.load_values()

    def on_traces_screen_values(self, message: Values) -> None:
        self.query_one(FilterBar).where_suggester.values = message.values

    def on_traces_screen_threshold(self, message: Threshold) -> None:
        if message.slow_ms is None:
            self.notify("no traces to measure", severity="warning")
            return
        self.apply(slow_ms=message.slow_ms)

    @on(TraceTable.PagesWanted)
    def _pages_wanted(self, message: TraceTable.PagesWanted) -> None:
        self.fetch(self.table.pages.generation, self.query_, sorted(message.pages))

    def on_traces_screen_pages_dropped(self, message: PagesDropped) -> None:
        self.table.give_back(message.generation, message.pages)

    @on(TraceTable.Opened)
    def _open(self, message: TraceTable.Opened) -> None:
        if self.query_.sessions:
            self.triage.push_screen(SessionScreen(message.row_id))
        else:
            self.triage.open_trace(message.row_id)

    @on(TraceTable.Highlighted)
    def _highlighted(self, message: TraceTable.Highlighted) -> None:
        # The trace under a resting cursor is read ahead, so Enter paints its replay at once;
        # moving on within PREFETCH_DELAY reads nothing.
        if self._prefetch_timer is not None:
            self._prefetch_timer.stop()
        row = message.row
        if self.query_.sessions:
            return
        if row is not None and row["trace_id"] not in self.triage.replays:
            trace_id = row["trace_id"]
            self._prefetch_timer = self.set_timer(PREFETCH_DELAY, lambda: self.prefetch(trace_id))

    def prefetch(self, trace_id: str) -> None:
        self.triage.ask(self, "prefetch", lambda r: data.replay(r, trace_id), self.Prefetched)

    def on_traces_screen_prefetched(self, message: Prefetched) -> None:
        self.triage.keep_replay(message.replay)

    # -- the filter bar -----------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one(FilterBar).focus()

    @on(FilterBar.Submitted)
    def _filter(self, message: FilterBar.Submitted) -> None:
        bar = self.query_one(FilterBar)
        condition = message.value.strip() or None
        try:
            self.query_.but(where=condition).filter()
        except Exception as exc:
            self.triage.failed(exc)
            return
        bar.remember(condition or "")
        self.apply(where=condition)
        self.table.focus()

    @on(FilterBar.Left)
    def _left(self) -> None:
        self.table.focus()

    # -- quick filters ------------------------------------------------------------------------

    def action_errors(self) -> None:
        self.apply(errors_only=not self.query_.errors_only)

    def action_slow(self) -> None:
        if self.query_.slow_ms is not None:
            self.apply(slow_ms=None)
        else:
            self.find_threshold(self.query_)

    def action_window(self) -> None:
        key = self.triage.last_key
        self.apply(since=data.WINDOWS.get(key))

    def action_clear(self) -> None:
        self.apply(where=None, since=None, errors_only=False, slow_ms=None, models=(),
                   prompt_versions=())  # fmt: skip
        self.query_one(FilterBar).value = ""

    def action_pick(self, name: str) -> None:
        def chosen(value: str | None) -> None:
            if value is not None:  # "" is (any): the filter is cleared
                self.apply(**{f"{name}s": (value,) if value else ()})

        self.triage.push_screen(PickScreen(name), chosen)

    def action_sort(self) -> None:
        """Pick the column to sort by (each in the order that puts the notable first: the
        newest, the slowest, the dearest); O reverses it."""
        sorts = self.SESSION_SORTS if self.query_.sessions else self.SORTS
        now = self.query_.sort.lstrip("-")
        choices = [
            (s, f"{'● ' if s.lstrip('-') == now else '  '}{s.lstrip('-')}"
                + (" (highest first)" if s.startswith("-") else ""))
            for s in sorts
        ]  # fmt: skip

        def chosen(value: str | None) -> None:
            if value:
                self.apply(sort=value)

        self.triage.push_screen(PickScreen("sort", choices, "sort by:"), chosen)

    def action_sessions(self) -> None:
        """The sessions of the traces listed (totals over all their traces), or back; the
        filters stay, the order starts over (the two listings sort by different columns)."""
        self.query_ = self.query_.but(sessions=not self.query_.sessions, sort="-start_time")
        self._show_mode()
        self.reload()

    def action_reverse(self) -> None:
        s = self.query_.sort
        self.apply(sort=s[1:] if s.startswith("-") else f"-{s}")

    # -- compare ------------------------------------------------------------------------------

    def action_mark(self) -> None:
        row = self.table.current
        if self.query_.sessions:
            self.notify("mark a trace, not a session: v lists the traces", severity="warning")
        elif row is not None:
            self.triage.mark(row["trace_id"])
            self.table.marked = row["trace_id"]
            self.table.refresh()

    def action_diff(self) -> None:
        row = self.table.current
        if self.query_.sessions:
            self.notify("compare traces, not sessions: v lists the traces", severity="warning")
        elif row is not None:
            self.triage.compare(row["trace_id"])


class PickScreen(ModalScreen[str | None]):
    """A list to pick from: a field's values with their trace counts (Enter keeps traces with
    that one), or the given ``choices`` (the columns to sort by)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Cancel", id="pick.cancel"),
    ]

    @dataclass
    class Loaded(Message):
        values: list[tuple[str, int]]

    def __init__(
        self, name: str, choices: list[tuple[str, str]] | None = None, title: str | None = None
    ) -> None:
        super().__init__()
        self.field_name = name
        self.choices = choices  # (id, label): nothing to read
        self.title_ = title or f"keep the traces with {name}:"

    def compose(self) -> ComposeResult:
        yield Static(self.title_, classes="title")
        yield OptionList(markup=False, id="values")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if self.choices is not None:
            options.add_options([Option(Text(label), id=i) for i, label in self.choices])
            options.highlighted = 0
        else:
            self.load()

    def load(self) -> None:
        app: TriageApp = self.app  # type: ignore[assignment]
        app.ask(self, "pick", lambda r: data.distinct(r, self.field_name), self.Loaded)

    def on_pick_screen_loaded(self, message: Loaded) -> None:
        options = self.query_one(OptionList)
        options.add_option(Option(Text("(any)"), id=""))
        for value, n in message.values:
            options.add_option(Option(Text.assemble(inert(value), (f"  {n:,}", "dim")), id=value))

    @on(OptionList.OptionSelected)
    def _chosen(self, message: OptionList.OptionSelected) -> None:
        self.dismiss(message.option.id or "")

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


# -- Trace ------------------------------------------------------------------------------------


class TraceScreen(Base):
    """A trace replayed: its steps as a waterfall on one time axis, beside the highlighted
    step's detail, with the trace's context (logs, the user's events, metrics, changes)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "first_error", "First error", tooltip="The first failed step; again: the next",
                id="trace.first_error"),
        Binding("w", "slowest", "Slowest", tooltip="Jump to the slowest step", id="trace.slowest"),
        Binding("p", "parent", "Parent", tooltip="Jump to the step's parent", show=False, id="trace.parent"),
        Binding("n", "same_operation", "Next same", tooltip="The next step of the same operation",
                show=False, id="trace.next_same"),
        Binding("c", "context", "Context", tooltip="The trace's logs, user events, metrics",
                id="trace.context"),
        Binding("J,ctrl+d", "scroll_pane(1)", "Scroll pane", show=False,
                tooltip="Scroll the step or context pane down", id="trace.pane_down"),
        Binding("K,ctrl+u", "scroll_pane(-1)", "Scroll pane up", show=False,
                tooltip="Scroll the step or context pane up", id="trace.pane_up"),
        Binding("a", "raw", "Attributes", tooltip="The step's raw attributes", show=False, id="trace.raw"),
        Binding("y", "copy", "Copy id", tooltip="Copy the trace id", show=False, id="trace.copy"),
        Binding("S", "session", "Session", tooltip="The conversation this trace is a turn of",
                show=False, id="trace.session"),
        Binding("m", "mark", "Mark", tooltip="Mark this trace to compare another with it",
                id="trace.mark"),
        Binding("D", "diff", "Diff", tooltip="Compare the marked trace with this one",
                id="trace.diff"),
        Binding("g", "good_twin", "Good one",
                tooltip="Compare with a trace of the same workflow that went well", id="trace.good"),
    ]  # fmt: skip

    @dataclass
    class Loaded(Message):
        replay: Replay

    @dataclass
    class Twin(Message):
        """The trace that went well to compare this one with (None: there is none)."""

        trace_id: str
        twin: str | None

    @dataclass
    class Series(Message):
        """The context metrics' values over the hour before the trace, for their sparklines."""

        trace_id: str
        series: dict[tuple[str, str, str], list[float | None]]

    def __init__(self, trace_id: str) -> None:
        super().__init__()
        self.trace_id = trace_id
        self.replay: Replay | None = None
        self.series: dict[tuple[str, str, str], list[float | None]] = {}
        self.show_raw = False

    def compose(self) -> ComposeResult:
        yield Static(Text(f"loading {self.trace_id}…", style="dim"), id="header")
        with Horizontal(id="body"):
            yield OptionList(markup=False, id="steps")
            # Two panes and a one-line tab bar: a TabbedContent's widgets cost ~100 ms of
            # layout each time a trace opens (bench/tui.py).
            with Vertical(id="tabs"):
                yield Static(self._tab_bar("step"), id="tab-bar")
                with ContentSwitcher(initial="step-scroll", id="panes"):
                    with VerticalScroll(id="step-scroll"):
                        yield Static("", id="step")
                    with VerticalScroll(id="context-scroll"):
                        yield Static("", id="context")
        yield KeyHints()

    @property
    def steps(self) -> OptionList:
        return self.query_one("#steps", OptionList)

    def on_mount(self) -> None:
        self.steps.focus()
        cached = self.triage.replays.get(self.trace_id)
        if cached is not None:  # read while the cursor rested on it (TracesScreen.prefetch)
            self.post_message(self.Loaded(cached))
        else:
            self.load(self.trace_id)

    def load(self, trace_id: str) -> None:
        self.triage.ask(self, "replay", lambda r: data.replay(r, trace_id), self.Loaded)

    def on_trace_screen_loaded(self, message: Loaded) -> None:
        from aiobs.present.replay import critical_path_line, header

        self.triage.keep_replay(message.replay)

        replay = self.replay = message.replay
        trace, steps = replay["trace"], replay["steps"]
        self.trace_id = trace["trace_id"]
        self.query_one("#header", Static).update(
            Group(header(trace), critical_path_line(trace, steps))
        )
        self.fill_steps()
        self.show_context()
        if steps:
            self.steps.highlighted = 0
        context = replay.get("context")
        if context and context["metrics"]:  # their sparklines, read after the replay is on screen
            trace_id = trace["trace_id"]
            self.triage.ask(
                self,
                "series",
                lambda r: data.metric_series(r, replay),
                lambda found: self.Series(trace_id, found),
            )

    def show_context(self) -> None:
        from aiobs.present.replay import context_renderables

        if self.replay is None:
            return
        context = list(
            context_renderables(self.replay.get("context") or {}, full=True, series=self.series)
        )
        self.query_one("#context", Static).update(
            Group(*context)
            if context
            else Text("no logs, user events, metrics or changes around this trace", style="dim")
        )

    def on_trace_screen_series(self, message: Series) -> None:
        if message.trace_id == self.trace_id:
            self.series = message.series
            self.show_context()

    def fill_steps(self) -> None:
        """The waterfall, one line a step as wide as the pane (again when it is resized)."""
        from aiobs.present.replay import waterfall_row

        if self.replay is None:
            return
        options, at = self.steps, self.steps.highlighted
        width = max(options.scrollable_content_region.width - 3, 20)
        options.clear_options()
        total = self.replay["trace"]["duration_ms"]
        options.add_options(
            [Option(waterfall_row(s, total, width), id=s["span_id"]) for s in self.replay["steps"]]
        )
        if at is not None:
            options.highlighted = at

    def on_resize(self) -> None:
        # A short terminal keeps the waterfall in view: the header gives up its last lines.
        self.query_one("#header").styles.max_height = 4 if self.size.height < 32 else 8
        self.call_after_refresh(self.fill_steps)

    @property
    def step(self) -> ReplayStep | None:
        if self.replay is None or self.steps.highlighted is None:
            return None
        return self.replay["steps"][self.steps.highlighted]

    @on(OptionList.OptionHighlighted, "#steps")
    def _step_highlighted(self) -> None:
        self.show_step()

    def show_step(self) -> None:
        from aiobs.present.replay import detail_lines, evaluations_by_span, step_title, tool_json

        step = self.step
        if step is None or self.replay is None:
            return
        lines: list[Any] = [step_title(step), Text("")]
        judged = evaluations_by_span(self.replay).get(step["span_id"], ())
        lines += list(detail_lines(step, True, tools=False, evaluations=judged))
        lines += list(tool_json(step))
        if self.show_raw:
            lines.append(Text(""))
            lines.append(Text("attributes", style="bold underline"))
            for k, v in sorted((step.get("attributes") or {}).items()):
                lines.append(Text.assemble((inert(k), "cyan"), " = ", inert(str(v))))
        self.query_one("#step", Static).update(Group(*lines))

    def _goto(self, index: int | None) -> None:
        if index is not None:
            self.steps.highlighted = index
            self._show_pane("step")

    def action_first_error(self) -> None:
        """The first failed step under the root, then (pressed again) the next one: the tool
        call that failed, then the request under it that answered 503."""
        if self.replay is None:
            return
        steps = self.replay["steps"]
        # The root repeats its child's error: a failure of its own only when nothing under it failed.
        found = [i for i, s in enumerate(steps) if s["status"] == "error" and i > 0] or [
            i for i, s in enumerate(steps) if s["status"] == "error"
        ]
        if not found:
            self.notify("no step failed in this trace")
            return
        at = self.steps.highlighted
        later = [i for i in found if at is not None and i > at and at in found]
        self._goto(later[0] if later else found[0])

    def action_slowest(self) -> None:
        if self.replay and len(self.replay["steps"]) > 1:
            steps = self.replay["steps"]
            self._goto(max(range(1, len(steps)), key=lambda i: steps[i]["duration_ms"]))

    def action_parent(self) -> None:
        step = self.step
        if self.replay and step and step.get("parent_span_id"):
            ids = [s["span_id"] for s in self.replay["steps"]]
            if step["parent_span_id"] in ids:
                self._goto(ids.index(step["parent_span_id"]))

    def action_same_operation(self) -> None:
        step, at = self.step, self.steps.highlighted
        if self.replay and step and at is not None:
            steps = self.replay["steps"]
            later = [i for i in range(at + 1, len(steps)) if steps[i]["name"] == step["name"]]
            earlier = [i for i in range(at) if steps[i]["name"] == step["name"]]
            if later or earlier:
                self._goto((later or earlier)[0])

    def action_context(self) -> None:
        self._show_pane("step" if self.pane == "context" else "context")

    @property
    def pane(self) -> str:
        """The pane beside the waterfall: ``step`` or ``context``."""
        current = self.query_one(ContentSwitcher).current or "step-scroll"
        return current.removesuffix("-scroll")

    def action_scroll_pane(self, direction: int) -> None:
        pane = self.query_one(f"#{self.pane}-scroll", VerticalScroll)

        def scroll() -> None:
            pane.scroll_relative(y=direction * max(pane.size.height - 2, 1), animate=False)

        # After the next refresh: a pane just switched to (c, then J) has no height yet.
        self.call_after_refresh(scroll)

    def _show_pane(self, pane: str) -> None:
        self.query_one(ContentSwitcher).current = f"{pane}-scroll"
        self.query_one("#tab-bar", Static).update(self._tab_bar(pane))

    @staticmethod
    def _tab_bar(pane: str) -> Text:
        return Text.assemble(
            *(
                (f" {name.title()} ", "bold reverse" if name == pane else "dim")
                for name in ("step", "context")
            ),
            ("   c switches", "dim"),
        )

    def action_raw(self) -> None:
        self.show_raw = not self.show_raw
        self.show_step()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.trace_id)
        self.notify(f"copied {self.trace_id}")

    def action_session(self) -> None:
        session = self.replay["trace"].get("session_id") if self.replay else None
        if not session:
            self.notify("this trace has no session", severity="warning")
            return
        self.triage.push_screen(SessionScreen(session))

    def action_mark(self) -> None:
        self.triage.mark(self.trace_id)

    def action_diff(self) -> None:
        self.triage.compare(self.trace_id)

    def action_good_twin(self) -> None:
        replay = self.replay
        if replay is None:
            return
        trace_id = self.trace_id
        self.notify("looking for a trace of this workflow that went well…", timeout=2)
        self.triage.ask(
            self,
            "twin",
            lambda r: data.good_twin(r, replay),
            lambda twin: self.Twin(trace_id, twin),
        )

    def on_trace_screen_twin(self, message: Twin) -> None:
        if message.trace_id != self.trace_id:
            return
        if message.twin is None:
            self.notify("no trace of this workflow went well", severity="warning")
            return
        self.triage.push_screen(DiffScreen(message.trace_id, message.twin))


# -- Session ----------------------------------------------------------------------------------


class SessionScreen(Base):
    """A conversation as a chat, turn by turn: the user's message, the answer, and what the
    user did after it (retry, rephrase, thumbs, abandonment, CSAT); Enter replays a turn."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "replay", "Replay the turn", tooltip="The turn's trace, step by step",
                id="session.replay"),
    ]  # fmt: skip

    @dataclass
    class Loaded(Message):
        session: SessionReplay

    def __init__(self, session_id: str) -> None:
        super().__init__()
        self.session_id = session_id
        self.session: SessionReplay | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(f"loading session {self.session_id}…", style="dim"), classes="title")
        yield OptionList(markup=False, id="turns")
        yield KeyHints()

    def on_mount(self) -> None:
        self.query_one("#turns", OptionList).focus()
        self.load()

    def load(self) -> None:
        self.triage.ask(self, "session", lambda r: data.session(r, self.session_id), self.Loaded)

    def on_session_screen_loaded(self, message: Loaded) -> None:
        from aiobs.present.replay import session_turns
        from aiobs.units import duration, plural

        session = self.session = message.session
        info = session["session"]
        span = (info["end_time"] - info["start_time"]).total_seconds() * 1000
        self.query_one(".title", Static).update(
            Text(
                f"Session {inert(info['session_id'])} · user {inert(str(info['user_id'] or '-'))}"
                f" · {plural(info['traces'], 'turn')} over {duration(span)}",
                style="bold",
            )
        )
        turns = self.query_one("#turns", OptionList)
        turns.clear_options()
        for turn, replay in zip(session_turns(session), session["traces"], strict=True):
            turns.add_option(Option(turn, id=replay["trace"]["trace_id"]))
        if session["traces"]:
            turns.highlighted = 0

    @on(OptionList.OptionSelected, "#turns")
    def _selected(self) -> None:
        self.action_replay()

    def action_replay(self) -> None:
        turns = self.query_one("#turns", OptionList)
        if self.session and turns.highlighted is not None:
            replay = self.session["traces"][turns.highlighted]
            self.triage.keep_replay(replay)
            self.triage.open_trace(replay["trace"]["trace_id"])


# -- Overview ---------------------------------------------------------------------------------


def change(now: float | None, before: float | None, *, points: bool = False) -> Text:
    """``now`` against ``before``: a relative change, or for a rate its difference in points;
    red when it grew by a fifth or more (every overview figure is worse up)."""
    from aiobs.units import pct

    if now is None or before is None:
        return Text("new" if before is None and now is not None else "", style="dim")
    if points:
        diff = (now - before) * 100
        worse = diff >= 1
        return Text(f"{diff:+.1f} pt", style="red" if worse else "dim")
    if before == 0:
        return Text("new" if now else "", style="dim")
    rel = now / before - 1
    return Text(pct(rel, 0, sign=True), style="red" if rel >= 0.2 else "dim")


# (heading, width without its sparkline, which sparkline: 1 first, 2 on a wide terminal only).
OVERVIEW_COLUMNS = (
    ("service", 16, 0), ("traffic", 12, 1), ("error rate", 15, 1), ("p95", 14, 1),
    ("tokens", 17, 2), ("cost", 12, 2), ("eval fail", 15, 2),
)  # fmt: skip


def spark_widths(width: int) -> list[int]:
    """Each overview column's sparkline: every figure's, 8 buckets each, on a wide terminal;
    on a narrower one only traffic's, errors' and p95's, shorter still on 80 columns, so the
    figures after them fit."""
    if width >= 150:
        return [8 if rank else 0 for _, _, rank in OVERVIEW_COLUMNS]
    n = 8 if width >= 100 else 5
    return [n if rank == 1 else 0 for _, _, rank in OVERVIEW_COLUMNS]


def shrink(values: list[float | None], n: int) -> list[float | None]:
    """``values`` in ``n`` buckets, each the mean of the known values it covers."""
    if len(values) <= n:
        return values
    out: list[float | None] = []
    for i in range(n):
        part = [
            v for v in values[i * len(values) // n : (i + 1) * len(values) // n] if v is not None
        ]
        out.append(sum(part) / len(part) if part else None)
    return out


def overview_row(entry: dict[str, Any], width: int) -> Text:
    """A service's line: each figure with its sparkline and its change against the period
    before, the sparklines shorter and then columns left out from the right when the line is
    narrower than all of them."""
    from aiobs.units import duration, money, num, pct

    now, before, series = entry["now"], entry["before"] or {}, entry["series"]
    sparks = spark_widths(width)

    def line(key: str, column: int) -> str:
        n = sparks[column]
        return spark(shrink(series.get(key, []), n)) + " " if n else ""

    cells = [
        Text(inert(entry["service"]), style="bold"),
        Text.assemble(
            (line("traces", 1), "cyan"), f"{num(now['traces'])} ",
            change(now["traces"], before.get("traces")),
        ),
        Text.assemble(
            (line("error_rate", 2), "red"), f"{pct(now['error_rate'])} ",
            change(now["error_rate"], before.get("error_rate"), points=True),
        ),
        Text.assemble(
            (line("p95_ms", 3), "yellow"), f"{duration(now['p95_ms'])} ",
            change(now["p95_ms"], before.get("p95_ms")),
        ),
        Text.assemble(
            (line("tokens_per_trace", 4), "magenta"), f"{num(now['tokens_per_trace'])}/trace ",
            change(now["tokens_per_trace"], before.get("tokens_per_trace")),
        ),
        Text.assemble(
            (line("cost_usd", 5), "green"), f"{money(now['cost_usd'])} ",
            change(now["cost_usd"], before.get("cost_usd")),
        ),
        Text.assemble(
            (line("eval_fail_rate", 6), "red"),
            pct(now["eval_fail_rate"]) if now.get("eval_fail_rate") is not None else "-", " ",
            change(now.get("eval_fail_rate"), before.get("eval_fail_rate"), points=True),
        ),
    ]  # fmt: skip
    out, used = Text(), 0
    for cell, (_, w, _), n in zip(cells, OVERVIEW_COLUMNS, sparks, strict=True):
        w += n
        if used + w > width and used:
            break
        cell.truncate(w - 1, overflow="ellipsis", pad=True)
        out.append_text(cell)
        out.append(" ")
        used += w
    return out


def overview_header(width: int) -> Text:
    line, used = Text("  ", style="bold"), 0  # under the list's border and padding
    for (name, w, _), n in zip(OVERVIEW_COLUMNS, spark_widths(width), strict=True):
        w += n
        if used + w > width and used:
            break
        line.append(name.ljust(w))
        used += w
    return line


class OverviewScreen(Base):
    """The landing screen: per service, traffic, error rate, p95 latency, tokens, cost and the
    evaluation fail rate over the window, each with its sparkline and its change against the
    period before, and the scan's open incidents; Enter drills into the traces."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "drill", "Traces", tooltip="The highlighted service's (or incident's) traces",
                id="overview.drill"),
        Binding("tab", "switch", "Services/incidents", show=False,
                tooltip="Between the services and the incidents", id="overview.switch"),
        Binding("1,2,3,4", "window", "Window", show=False,
                tooltip="The last hour, day, week or 30 days", id="overview.window"),
    ]  # fmt: skip

    @dataclass
    class Summarised(Message):
        since: str
        result: dict[str, Any]

    @dataclass
    class Scanned(Message):
        since: str
        result: Scan

    def __init__(self, since: str = "24h") -> None:
        super().__init__()
        self.since = since
        self.result: dict[str, Any] | None = None
        self.scanned: Scan | None = None

    def compose(self) -> ComposeResult:
        yield Static(
            Text(f"Overview · the last {self.since}…", style="dim"), id="title", classes="title"
        )
        yield Static("", id="services-header")
        yield OptionList(markup=False, id="services")
        yield Static(Text("incidents (scanning…)", style="bold"), id="incidents-title")
        yield OptionList(markup=False, id="overview-incidents")
        yield KeyHints()

    def on_mount(self) -> None:
        self.query_one("#services", OptionList).focus()
        self.refresh_all()

    def refresh_all(self) -> None:
        self.summarise(self.since)
        self.run_scan(self.since)

    def summarise(self, since: str) -> None:
        self.triage.ask(
            self, "overview", lambda r: data.overview(r, since), lambda o: self.Summarised(since, o)
        )

    def run_scan(self, since: str) -> None:
        self.triage.ask(
            self, "scan", lambda r: data.scan(r, since), lambda found: self.Scanned(since, found)
        )

    def on_overview_screen_summarised(self, message: Summarised) -> None:
        if message.since != self.since:
            return
        self.result = message.result
        r = message.result
        self.query_one("#title", Static).update(
            Text(
                f"Overview · the last {self.since} ({r['since']:%m-%d %H:%M} .. {r['until']:%m-%d %H:%M} UTC)"
                " · changes against the period before",
                style="bold",
            )
        )
        options = self.query_one("#services", OptionList)
        width = max(options.scrollable_content_region.width - 3, 20)
        if r["services"]:
            self.query_one("#services-header", Static).update(overview_header(width))
        elif r["store_last"] is None:
            self.query_one("#services-header", Static).update(
                Text("  the store holds no traces: aiobs ingest FILE, or aiobs demo", style="dim")
            )
        else:  # old data (an export, a conformance file): say where it is
            self.query_one("#services-header", Static).update(
                Text(
                    f"  no traces in the last {self.since}; the store's run from"
                    f" {r['store_first']:%Y-%m-%d %H:%M} to {r['store_last']:%Y-%m-%d %H:%M} UTC"
                    " — 4 for 30 days, T for every trace",
                    style="dim",
                )
            )
        at = options.highlighted
        options.clear_options()
        options.add_options(
            [Option(overview_row(e, width), id=e["service"]) for e in r["services"]]
        )
        if r["services"]:
            options.highlighted = at if at is not None and at < len(r["services"]) else 0

    def on_overview_screen_scanned(self, message: Scanned) -> None:
        from aiobs.units import plural

        if message.since != self.since:
            return
        self.scanned = message.result
        incidents = message.result["incidents"]
        self.query_one("#incidents-title", Static).update(
            Text(
                f"incidents · {plural(len(incidents), 'incident')} (Tab, then Enter: examples)",
                style="bold",
            )
        )
        options = self.query_one("#overview-incidents", OptionList)
        options.clear_options()
        width = max(options.scrollable_content_region.width - 3, 20)
        for inc in incidents:
            row = incident_row(inc, summary=True)
            row.truncate(width, overflow="ellipsis")
            options.add_option(Option(row, id=inc["id"]))
        if incidents:
            options.highlighted = 0

    def action_switch(self) -> None:
        services = self.query_one("#services", OptionList)
        incidents = self.query_one("#overview-incidents", OptionList)
        (incidents if services.has_focus else services).focus()

    def action_drill(self) -> None:
        services = self.query_one("#services", OptionList)
        incidents = self.query_one("#overview-incidents", OptionList)
        if incidents.has_focus and self.scanned and incidents.highlighted is not None:
            inc = self.scanned["incidents"][incidents.highlighted]
            self.triage.push_screen(
                TracesScreen(
                    data.TraceQuery(base=data.examples_condition(inc["examples"])),
                    f"Examples of {inc['id']}",
                )
            )
        elif self.result and services.highlighted is not None:
            service = self.result["services"][services.highlighted]["service"]
            # The overview's own window, both ends: its counts and the traces listed agree.
            window = f"{self.result['since']:%Y-%m-%dT%H:%M:%S}Z..{self.result['until']:%Y-%m-%dT%H:%M:%S}Z"
            self.triage.push_screen(
                TracesScreen(
                    data.TraceQuery(services=(service,), since=window), f"Traces of {service}"
                )
            )

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self.action_drill()

    def action_window(self) -> None:
        self.since = data.WINDOWS.get(self.triage.last_key, "24h")
        self.query_one("#title", Static).update(
            Text(f"Overview · the last {self.since}…", style="dim")
        )
        self.query_one("#incidents-title", Static).update(
            Text("incidents (scanning…)", style="bold")
        )
        self.refresh_all()


# -- Scan -------------------------------------------------------------------------------------


class ScanScreen(Base):
    """The anomaly scan of the last day: incidents, most severe first, beside the highlighted
    one's insight, anomalies and likely causes; Enter lists its example traces."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "examples", "Examples", tooltip="The incident's example traces",
                id="scan.examples"),
        Binding("1,2,3,4", "window", "Window", show=False,
                tooltip="Scan the last hour, day, week or 30 days", id="scan.window"),
    ]  # fmt: skip

    @dataclass
    class Scanned(Message):
        result: Scan

    def __init__(self, since: str = "24h") -> None:
        super().__init__()
        self.since = since
        self.result: Scan | None = None

    def compose(self) -> ComposeResult:
        yield Static(
            Text(f"scanning the last {self.since}…", style="dim"), id="title", classes="title"
        )
        with Horizontal(id="body"):
            yield OptionList(markup=False, id="incidents")
            with VerticalScroll(id="incident-scroll"):
                yield Static("", id="incident")
        yield KeyHints()

    def on_mount(self) -> None:
        self.query_one("#incidents", OptionList).focus()
        self.run_scan(self.since)

    def run_scan(self, since: str) -> None:
        self.triage.ask(self, "scan", lambda r: data.scan(r, since), self.Scanned)

    def on_scan_screen_scanned(self, message: Scanned) -> None:
        from aiobs.units import plural

        r = self.result = message.result
        w = r["window"]
        self.query_one("#title", Static).update(
            Text(
                f"Scan · the last {self.since} ({w['since']:%m-%d %H:%M} .. {w['until']:%m-%d %H:%M} UTC)"
                f" · {plural(len(r['incidents']), 'incident')} · {r['series_scanned']:,} series"
                " · 1-4: the last hour, day, week, 30 days",
            )
        )
        options = self.query_one("#incidents", OptionList)
        options.clear_options()
        width = max(options.scrollable_content_region.width - 3, 20)
        for inc in r["incidents"]:
            row = incident_row(inc)
            row.truncate(width, overflow="ellipsis")  # one line an incident
            options.add_option(Option(row, id=inc["id"]))
        if r["incidents"]:
            options.highlighted = 0
        else:
            self.query_one("#incident", Static).update(Text("no incidents", style="green"))

    @property
    def incident(self) -> Incident | None:
        options = self.query_one("#incidents", OptionList)
        if self.result is None or options.highlighted is None:
            return None
        return self.result["incidents"][options.highlighted]

    @on(OptionList.OptionHighlighted, "#incidents")
    def _highlighted(self) -> None:
        from aiobs.present.scan import incident_renderables

        inc = self.incident
        if inc is not None:
            self.query_one("#incident", Static).update(Group(*incident_renderables(inc)))

    @on(OptionList.OptionSelected, "#incidents")
    def _selected(self) -> None:
        self.action_examples()

    def action_examples(self) -> None:
        inc = self.incident
        if inc is None or not inc["examples"]:
            return
        self.triage.push_screen(
            TracesScreen(
                data.TraceQuery(base=data.examples_condition(inc["examples"])),
                f"Examples of {inc['id']}",
            )
        )

    def action_window(self) -> None:
        self.since = data.WINDOWS.get(self.triage.last_key, "24h")
        self.query_one("#title", Static).update(
            Text(f"scanning the last {self.since}…", style="dim")
        )
        self.run_scan(self.since)


SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def incident_row(inc: Incident, *, summary: bool = False) -> Text:
    """An incident in a list: the severity as a coloured mark (so what moved and where fits),
    the title, since when, and with ``summary`` the insight after it."""
    return Text.assemble(
        ("● ", SEVERITY_STYLE.get(inc["severity"], "")),
        inert(incident_title(inc)),
        (f"  {inc['severity']} since {inc['start']:%m-%d %H:%M}", "dim"),
        ("  " + inert(inc["summary"]) if summary else "", "dim"),
    )


def incident_title(inc: Incident) -> str:
    """An incident in a line: what moved, where (``P95 latency · support-chat · model
    gpt-4.1``)."""
    from aiobs.analysis.incidents import label

    where = [f"{k} {v}" for k, v in inc["segment"].items() if k != "service"]
    what = label(inc["symptom"])
    return " · ".join([what[:1].upper() + what[1:], inc["segment"].get("service", ""), *where])


# -- Diff -------------------------------------------------------------------------------------


class DiffScreen(Base):
    """Two traces side by side: the aligned steps and what differs (``diff-traces``)."""

    @dataclass
    class Compared(Message):
        result: TraceDiff

    def __init__(self, a: str, b: str) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.result: TraceDiff | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(f"comparing {self.a} with {self.b}…", style="dim"), classes="title")
        with VerticalScroll(id="diff-scroll"):
            yield Static("", id="diff")
        yield KeyHints()

    def on_mount(self) -> None:
        self.query_one("#diff-scroll").focus()
        self.compare()

    def compare(self) -> None:
        self.triage.ask(self, "diff", lambda r: data.diff(r, self.a, self.b), self.Compared)

    def on_diff_screen_compared(self, message: Compared) -> None:
        from aiobs.present.difftraces import renderables

        self.result = message.result
        self.query_one(".title", Static).update(
            Text(f"A {self.a} compared with B {self.b}", style="bold")
        )
        self.query_one("#diff", Static).update(Group(*renderables(message.result)))
