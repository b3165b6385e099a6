"""The TUI's own widgets: the virtual traces table (only the visible rows are fetched, a page at
a time, so a million traces scroll without being loaded), the waterfall of a trace's steps, and
the filter bar with completion and history.

Must not import the CLI; store access happens in the screens' workers, never here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.suggester import Suggester
from textual.widgets import Input, Static

from aiobs.present.safe import inert
from aiobs.present.tables import TRACE_TABLE, Col, as_col, display, fit_columns
from aiobs.tui.data import PAGE, Pages, Row

# Each column's width when its rows are not all known (a virtual table cannot measure them).
EXPECTED_WIDTH = {
    "trace_id": 32, "start_time": 14, "status": 6, "duration_ms": 9, "service_name": 16,
    "root_name": 24, "llm_calls": 9, "tool_calls": 10, "input_tokens": 12, "output_tokens": 13,
    "cost_usd": 9, "models": 26, "user_id": 14, "session_id": 18, "traces": 6, "errors": 6,
    "thumbs_down": 11, "retries": 7, "abandoned": 9, "resolved": 8, "csat": 5,
}  # fmt: skip
TIME_LAYOUT = "%m-%d %H:%M:%S"


class TraceTable(ScrollView, can_focus=True):
    """Traces as a table over ``Pages``: ``render_line`` draws the header and the visible
    rows; a row not yet fetched shows as ``…`` and its page is asked for (``PagesWanted``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "move(1)", "Down", show=False, id="table.down"),
        Binding("up,k", "move(-1)", "Up", show=False, id="table.up"),
        Binding("pagedown,space", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("home,g", "jump(0)", "First", show=False, id="table.first"),
        Binding("end,G", "jump(-1)", "Last", show=False, id="table.last"),
        Binding("enter", "open", "Replay", tooltip="Replay the trace under the cursor",
                id="table.open"),
    ]  # fmt: skip

    cursor: reactive[int] = reactive(0)

    @dataclass
    class PagesWanted(Message):
        """Visible rows are not fetched: the screen fetches these pages in a worker."""

        table: TraceTable
        pages: set[int]

    @dataclass
    class Opened(Message):
        """Enter on a row: replay this trace (or open this session): the row's ``key``."""

        row_id: str

    @dataclass
    class Highlighted(Message):
        """The cursor moved to a row (its trace, once fetched)."""

        index: int
        row: Row | None

    def __init__(
        self, columns: Sequence[Col | str] = TRACE_TABLE, key: str = "trace_id", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.columns = [as_col(c) for c in columns]
        self.key = key  # the column that names a row (Opened's row_id)
        self.pages = Pages()
        self.marked: str | None = None  # a trace marked for diff-traces (shown with ◆)
        self.open_pending = False  # Enter came before the cursor's row

    # -- data ---------------------------------------------------------------------------------

    def reset(self) -> int:
        """Forget every row (a new query); the generation the next pages must carry."""
        generation = self.pages.reset()
        self.open_pending = False
        self.cursor = 0
        self.scroll_to(y=0, animate=False)
        self._resize()
        self.refresh()
        return generation

    def set_total(self, generation: int, total: int) -> None:
        if generation == self.pages.generation:
            self.pages.total = total
            self.cursor = min(self.cursor, max(total - 1, 0))
            self._resize()
            self.refresh()

    def show(self, columns: Sequence[Col | str], key: str) -> None:
        """Show other columns, rows named by ``key`` (traces or sessions); reset() follows."""
        self.columns = [as_col(c) for c in columns]
        self.key = key

    def add_page(self, generation: int, index: int, rows: Sequence[Row]) -> None:
        if self.pages.add(generation, index, rows):
            self.refresh()
            if index == self.cursor // PAGE:
                self.post_message(self.Highlighted(self.cursor, self.current))
                if self.open_pending and self.current is not None:
                    self.open_pending = False
                    self.post_message(self.Opened(self.current[self.key]))

    @property
    def current(self) -> Row | None:
        return self.pages.row(self.cursor)

    @property
    def body_height(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _resize(self) -> None:
        self.virtual_size = Size(self.size.width, (self.pages.total or 0) + 1)

    def on_resize(self) -> None:
        self._resize()

    # -- rendering ----------------------------------------------------------------------------

    def _layout(self, width: int) -> tuple[list[int], list[int]]:
        natural = [max(len(c.key), EXPECTED_WIDTH.get(c.key, 12)) for c in self.columns]
        return fit_columns(self.columns, natural, max(width - 2, 10))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        shown, widths = self._layout(width)
        if y == 0:
            text = "  " + "  ".join(
                self.columns[i].key.ljust(w)[:w] for i, w in zip(shown, widths, strict=True)
            )
            return Strip([Segment(text.ljust(width)[:width], Style(bold=True, underline=True))])
        index = int(self.scroll_offset.y) + y - 1
        total = self.pages.total
        if total is None or index >= total:
            if total == 0 and y == 1:
                what = "sessions" if self.key == "session_id" else "traces"
                return Strip([Segment(f"  no {what} match".ljust(width), Style(dim=True))])
            return Strip.blank(width, Style())
        row = self.pages.row(index)
        if row is None:
            self.want_visible()
            cells = ["…".ljust(w) for w in widths]
            style = Style(dim=True)
        else:
            cells = []
            for i, w in zip(shown, widths, strict=True):
                col = self.columns[i]
                text = inert(display(row.get(col.key), col.kind, TIME_LAYOUT))
                text = text if len(text) <= w else text[: max(w - 1, 0)] + "…"
                numeric = col.kind in ("duration", "rate", "money", "count", "figure")
                cells.append(text.rjust(w) if numeric else text.ljust(w))
            failed = row.get("status") == "error" or bool(row.get("errors"))
            style = Style(color="red") if failed else Style()
        marked = self.marked is not None and row is not None and row.get("trace_id") == self.marked
        mark = "◆ " if marked else "  "
        line = (mark + "  ".join(cells)).ljust(width)[:width]
        if index == self.cursor:
            style = style + Style(reverse=True)
        return Strip([Segment(line, style)])

    def want_visible(self) -> None:
        """Ask for the pages on screen that are neither loaded nor asked for, and the page after
        them, so a page down does not wait (``PagesWanted``, once per page)."""
        if self.pages.total is None:
            return
        rows = self.visible_rows()
        missing = self.pages.missing([*rows, rows.stop + PAGE - 1])
        if missing:
            # Asked once: the answer, or the fetch giving the pages back (give_back), clears it.
            self.pages.asked |= missing
            self.post_message(self.PagesWanted(self, missing))

    def give_back(self, generation: int, pages: list[int]) -> None:
        """Pages a superseded fetch did not deliver: asked for again when they show."""
        if generation == self.pages.generation:
            self.pages.asked -= set(pages)
            self.refresh()

    def visible_rows(self) -> range:
        top = int(self.scroll_offset.y)
        return range(top, top + self.body_height)

    # -- movement -----------------------------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        top = int(self.scroll_offset.y)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + self.body_height:
            self.scroll_to(y=new - self.body_height + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(new, self.current))

    def action_move(self, delta: int) -> None:
        total = self.pages.total or 0
        if total:
            self.cursor = min(max(self.cursor + delta, 0), total - 1)

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self.body_height)

    def action_jump(self, where: int) -> None:
        total = self.pages.total or 0
        if total:
            self.cursor = total - 1 if where < 0 else 0

    def action_open(self) -> None:
        row = self.current
        if row is not None:
            self.post_message(self.Opened(row[self.key]))
        else:  # pressed before the row arrived: opened when it does
            self.open_pending = True


_LAST_WORD = re.compile(r"([A-Za-z_][\w.]*)$")
_VALUE_AFTER = re.compile(r"([A-Za-z_][\w.]*)\s*(=|!=|<>|in\s*\(|like)\s*'([^']*)$", re.I)


class WhereSuggester(Suggester):
    """Completes the ``--where`` condition being typed: a field name from its first letters,
    a value in quotes after ``field = '``."""

    def __init__(self, fields: Sequence[str]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.fields = sorted(fields)
        self.values: dict[str, list[str]] = {}

    async def get_suggestion(self, value: str) -> str | None:
        quoted = _VALUE_AFTER.search(value)
        if quoted:
            name, _, typed = quoted.groups()
            for candidate in self.values.get(name, []):
                if candidate.startswith(typed) and candidate != typed:
                    return value + candidate[len(typed) :] + "'"
            return None
        if value.count("'") % 2:
            return None  # inside a string: no field names
        word = _LAST_WORD.search(value)
        if not word:
            return None
        typed = word.group(1)
        for name in self.fields:
            if name.startswith(typed) and name != typed:
                return value + name[len(typed) :]
        return None


class FilterBar(Input):
    """The ``--where`` condition of the traces table; Enter applies it, up and down recall
    the conditions applied before, Escape goes back to the table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Earlier filter", show=False, id="filter.earlier"),
        Binding("down", "history(1)", "Later filter", show=False, id="filter.later"),
        Binding("escape", "leave", "Back to the table", show=False, id="filter.leave"),
    ]

    @dataclass
    class Left(Message):
        """Escape in the filter bar: focus the table again."""

    def __init__(self, fields: Sequence[str], **kwargs: Any) -> None:
        self.where_suggester = WhereSuggester(fields)
        super().__init__(suggester=self.where_suggester, **kwargs)
        self.history: list[str] = []
        self._at: int | None = None

    def remember(self, condition: str) -> None:
        if condition and (not self.history or self.history[-1] != condition):
            self.history.append(condition)
        self._at = None

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        at = len(self.history) if self._at is None else self._at
        at = min(max(at + step, 0), len(self.history))
        self._at = at
        self.value = self.history[at] if at < len(self.history) else ""
        self.cursor_position = len(self.value)

    def action_leave(self) -> None:
        self.post_message(self.Left())


class KeyHints(Static):
    """The screen's main keys in one line (those its bindings show), then the app's: a Footer's
    widgets cost ~90 ms of layout each time a screen opened (bench/tui.py)."""

    DEFAULT_CSS = """
    KeyHints {
        height: 1;
        dock: bottom;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    """

    def __init__(self, *first: tuple[str, str]) -> None:
        super().__init__()
        self.first = list(first)  # (key, what) shown before the screen's own: a widget's Enter

    def on_mount(self) -> None:
        self.show()

    def show(self, *first: tuple[str, str]) -> None:
        """Say the keys again (with other ``first`` ones: the table lists sessions now)."""
        from dataclasses import replace

        from rich.text import Text

        if first:
            self.first = list(first)
        screen_bindings = list(getattr(self.screen, "BINDINGS", []))
        app_bindings = list(getattr(self.app, "BINDINGS", []))
        parts = list(self.first)
        for binding in [*screen_bindings, *app_bindings]:
            if isinstance(binding, Binding) and binding.show and binding.description:
                # The first of its keys, as Textual shows it (? for question_mark).
                shown = replace(binding, key=binding.key.split(",")[0])
                key = binding.key_display or self.app.get_key_display(shown)
                parts.append((key, binding.description))
        text = Text()
        for key, description in parts:
            text.append(f"{key} ", style="bold")
            text.append(f"{description}  ")
        text.truncate(max(self.app.size.width - 2, 10), overflow="ellipsis")
        self.update(text)
