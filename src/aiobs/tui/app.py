"""``aiobs tui``: the triage app. It holds the store the CLI opened, hands each worker its own
handle (``reading``: a superseded worker's query is interrupted), renders every error in one
place (``failed``: a notification with its hint, never a traceback), keeps the trace marked for
comparison, and maps the ``[tui.keys]`` config table onto the bindings' ids.

Must not import the CLI.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.events import Key
from textual.message import Message
from textual.screen import Screen
from textual.worker import get_current_worker

from aiobs.tui import data
from aiobs.tui.screens import (
    DiffScreen,
    OverviewScreen,
    ScanScreen,
    SessionScreen,
    TraceScreen,
    TracesScreen,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from aiobs.analysis.results import Replay
    from aiobs.backend import Backend
    from aiobs.ingest.collect import Collector


T = TypeVar("T")
KEPT_REPLAYS = 32  # replays kept in memory (a few MB): back and forth between traces is instant


@dataclass(frozen=True)
class Start:
    """Where the app opens: the overview, or the traces a filter selects, with a trace, a
    session's traces or the scan over it (``aiobs tui [TRACE] [--session S] [--scan] [--since …]
    [--where …]``)."""

    trace: str | None = None
    session: str | None = None
    scan: str | None = None  # open the scan of this window (24h, 7d …)
    query: data.TraceQuery = field(default_factory=data.TraceQuery)
    traces: bool = False  # open on the traces (the command line selected some), not the overview


class TriageApp(App[None]):
    """Find, replay, compare and scan traces with the keyboard."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "aiobs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", tooltip="Leave aiobs", id="app.quit"),
        Binding("escape", "back", "Back", tooltip="The screen before", id="app.back"),
        Binding("question_mark,f1", "help", "Help", tooltip="Every key of this screen",
                id="app.help"),
        Binding("T", "traces", "Traces", tooltip="Every trace", id="app.traces"),
        Binding("H", "overview", "Overview", show=False, tooltip="Per service, and the incidents",
                id="app.overview"),
        Binding("s", "scan", "Scan", tooltip="The anomaly scan of the last day", id="app.scan"),
        Binding("B", "segments", "Segments", show=False,
                tooltip="The traces grouped by model, prompt version, tool …", id="app.segments"),
        Binding("C", "compare_periods", "Compare", show=False,
                tooltip="Diff two windows or filters: what changed, and why", id="app.diff"),
        Binding("ctrl+t", "toggle_dark", "Light/dark", show=False,
                tooltip="Switch between the light and the dark theme", id="app.theme"),
    ]  # fmt: skip

    def __init__(
        self,
        store: Backend,
        start: Start = Start(),
        keymap: Mapping[str, str] | None = None,
        collector: Collector | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        # ``aiobs tui --listen``: an OTLP receiver writing into this store while it is read.
        self.collector = collector
        self.start = start
        self.marked: str | None = None
        # Replays read lately (opened, or read ahead under the cursor), newest last.
        self.replays: dict[str, Replay] = {}
        self.last_key = ""
        self._readers: dict[tuple[int, str], Backend] = {}
        self._lock = threading.Lock()
        if keymap:
            self.set_keymap(dict(keymap))

    def on_mount(self) -> None:
        if self.collector is not None:
            self.collector.on_merge = lambda _: self.call_from_thread(self.arrived)
            self.collector.start()
            host, port = self.collector.address
            self.sub_title = f"receiving OTLP/HTTP on http://{host}:{port}"
        start = self.start
        # The overview lands, unless the command line selected traces (a filter or a window).
        if start.traces:
            self.push_screen(TracesScreen(start.query))
        else:
            self.push_screen(OverviewScreen())
        if start.session:
            self.push_screen(SessionScreen(start.session))
        if start.scan:
            self.push_screen(ScanScreen(start.scan))
        if start.trace:
            self.push_screen(TraceScreen(start.trace))

    def arrived(self) -> None:
        """Telemetry received (``--listen``) is in the store: the trace list shows it."""
        from aiobs.tui.screens import TracesScreen

        if isinstance(self.screen, TracesScreen):
            self.screen.reload()

    def on_key(self, event: Key) -> None:
        # The quick filters bound to several keys (1-4) read which one was pressed.
        self.last_key = event.character or event.key

    # -- the store ----------------------------------------------------------------------------

    @contextmanager
    def reading(self, node: DOMNode, group: str) -> Iterator[Backend]:
        """A store handle for this worker: the one before it in ``group`` on ``node`` is
        interrupted (its query stops at once), and an error is reported unless this handle was
        superseded meanwhile (then the error is the interruption)."""
        key = (id(node), group)
        with self._lock:
            old = self._readers.get(key)
            if old is not None:
                old.interrupt()
            reader = self.store.reader()
            self._readers[key] = reader
        try:
            yield reader
        except Exception as exc:
            with self._lock:
                superseded = self._readers.get(key) is not reader
            # An interrupted query of a superseded worker is no one's error.
            if not superseded and self.is_running:
                self.call_from_thread(self.failed, exc)
            raise
        finally:
            with self._lock:
                if self._readers.get(key) is reader:
                    del self._readers[key]
            reader.close()

    def ask(
        self,
        node: DOMNode,
        group: str,
        read: Callable[[Backend], T],
        answer: Callable[[T], Message],
    ) -> None:
        """``read`` the store in an exclusive thread worker of ``node``'s ``group`` (a newer
        one supersedes it and interrupts its query) and post ``answer(result)`` to ``node``,
        unless superseded meanwhile; an error is ``failed``'s."""

        def work() -> None:
            with self.reading(node, group) as reader:
                result = read(reader)
            if not get_current_worker().is_cancelled:
                node.post_message(answer(result))

        node.run_worker(work, group=group, exclusive=True, thread=True, exit_on_error=False)

    def failed(self, exc: BaseException) -> None:
        """Every error the app meets, said once as a notification (with its hint)."""
        from aiobs.errors import AiobsError

        if isinstance(exc, AiobsError):
            text = exc.message + (f"\n{exc.hint}" if exc.hint else "")
        else:
            text = f"{type(exc).__name__}: {exc}"
        self.notify(text, title="aiobs", severity="error", timeout=8, markup=False)

    # -- navigation ---------------------------------------------------------------------------

    def keep_replay(self, replay: Replay) -> None:
        trace_id = replay["trace"]["trace_id"]
        self.replays.pop(trace_id, None)
        self.replays[trace_id] = replay
        while len(self.replays) > KEPT_REPLAYS:
            self.replays.pop(next(iter(self.replays)))

    def open_trace(self, trace_id: str) -> None:
        self.push_screen(TraceScreen(trace_id))

    def mark(self, trace_id: str) -> None:
        self.marked = trace_id
        self.notify(f"marked {trace_id}: press D on another trace to compare")

    def compare(self, trace_id: str) -> None:
        if self.marked is None:
            self.notify("mark a trace first (m), then press D on another", severity="warning")
        elif self.marked == trace_id:
            self.notify("this is the marked trace: press D on another one", severity="warning")
        else:
            self.push_screen(DiffScreen(self.marked, trace_id))

    async def action_back(self) -> None:
        if len(self.screen_stack) > 2:  # the default screen and the first one stay
            self.pop_screen()

    def action_traces(self) -> None:
        self.push_screen(TracesScreen(data.TraceQuery()))

    def action_overview(self) -> None:
        self.push_screen(OverviewScreen())

    def action_scan(self) -> None:
        self.push_screen(ScanScreen())

    def _current_query(self) -> data.TraceQuery:
        """The traces the screen shows (a traces screen's filters), else the last day's."""
        if isinstance(self.screen, TracesScreen):
            return self.screen.query_.but(sessions=False, sort="-start_time")
        return data.TraceQuery(since="24h")

    def action_segments(self) -> None:
        from aiobs.tui.analyses import SegmentsScreen

        self.push_screen(SegmentsScreen(self._current_query()))

    def action_compare_periods(self) -> None:
        from aiobs.tui.analyses import PeriodDiffScreen

        query = self._current_query()
        self.push_screen(PeriodDiffScreen(query, *data.default_sides(query.since)))

    def action_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Traces", "Every trace in the store", self.action_traces)
        yield SystemCommand("Scan", "The anomaly scan of the last day", self.action_scan)
        yield SystemCommand(
            "Segments", "The traces grouped by model, prompt version, tool …", self.action_segments
        )
        yield SystemCommand(
            "Compare periods",
            "Diff two windows or filters: what changed, and why",
            self.action_compare_periods,
        )
        # The focused screen's own actions, by their binding's description.
        for binding in getattr(screen, "BINDINGS", []):
            if isinstance(binding, Binding) and binding.description:
                action = binding.action

                def run(action: str = action, screen: Screen[Any] = screen) -> None:
                    self.call_next(self.run_action, action, screen)

                yield SystemCommand(binding.description, binding.tooltip or action, run)
