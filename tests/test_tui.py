"""The triage TUI on the demo week: the real app (Textual's Pilot) over the real store, asserting on
what the screens hold once their workers are done — never sleeping for them — and on what a
person sees (snapshots, and the real ``aiobs tui`` in tmux)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

NOW = "2026-11-15T00:00:00Z"  # the demo week's end: the TUI's windows count back from it


@pytest.fixture
def store(demo: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from aiobs.backend.duckdb import open_store

    monkeypatch.setenv("AIOBS_NOW", NOW)
    with open_store(demo[0], read_only=True) as backend:
        yield backend


def run(
    app: Any, steps: Callable[[Any], Awaitable[None]], size: tuple[int, int] = (160, 48)
) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await steps(pilot)

    asyncio.run(main())


async def settle(pilot: Any) -> None:
    """Wait until no worker runs and every message they posted is handled (a worker's answer
    may start another: a count asks for the first page)."""
    for _ in range(50):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            await pilot.pause()
            if not any(w.is_running for w in pilot.app.workers):
                return
    raise AssertionError("the workers did not settle")


async def press(pilot: Any, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def text_of(renderable: Any, width: int = 100) -> str:
    """What a renderable shows, as plain text."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_tool_json_is_highlighted_and_inert() -> None:
    """Arguments and results from telemetry, escape sequences and markup in them, are shown
    as text: JSON escapes C0 controls, C1 ones and bidi overrides become visible escapes."""
    import re

    from rich.console import Console

    from aiobs.present.replay import tool_json

    hostile = '{"q": "\u001b]0;owned\u0007[bold red]x[/]\u009b2J\u202e", "n": [1, {"ok": true}]}'
    step = {"status": "error", "tool": {"arguments": hostile, "result": "not JSON \u001b[2J"}}
    console = Console(width=60, force_terminal=True, color_system="truecolor", file=io.StringIO())
    for part in tool_json(step):  # type: ignore[arg-type]
        console.print(part)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert re.findall(r"\x1b(?!\[[0-9;]*m)", out) == []  # only colours, nothing else
    assert "\x9b" not in out and "\u202e" not in out
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert '"q": "\\u001b]0;owned\\u0007[bold red]x[/]\\x9b2J\\u202e"' in plain
    assert re.search(r'\n +"ok": true', plain)  # indented, one key a line
    assert "not JSON \\x1b[2J" in plain
    assert "\x1b[" in out  # highlighted: there are colours


def cli_json(demo: tuple[Path, dict[str, Any]], *args: str) -> Any:
    """The CLI's answer, from its own process (the test holds the store open in this one)."""
    import json

    out = subprocess.run(
        [sys.executable, "-m", "aiobs", "--db", str(demo[0]), *args, "-f", "json"],
        capture_output=True, text=True, check=True, env={**os.environ, "AIOBS_NOW": NOW},
    )  # fmt: skip
    return json.loads(out.stdout)


def test_the_traces_table_counts_and_pages_what_the_cli_lists(
    store: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.screens import TracesScreen
    from aiobs.tui.widgets import TraceTable

    newest = cli_json(demo, "traces", "-n", "150")
    (slowest,) = cli_json(demo, "traces", "--sort", "-duration_ms", "-n", "1")
    (fastest,) = cli_json(demo, "traces", "--sort", "duration_ms", "-n", "1")
    total = cli_json(demo, "query", "select count(*) n from ai_traces")[0]["n"]
    errors = cli_json(demo, "query", "select count(*) n from ai_traces where status = 'error'")[0][
        "n"
    ]

    async def steps(pilot: Any) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, TracesScreen)
        table = screen.query_one(TraceTable)
        assert table.pages.total == total and table.pages.loaded  # only what shows is fetched
        assert len(table.pages.loaded) < (total // 100) / 2
        assert table.current is not None and table.current["trace_id"] == newest[0]["trace_id"]
        # A page down and more: the rows of the second page are the CLI's 101st onwards.
        await press(pilot, "end")
        assert table.cursor == total - 1 and table.current is not None
        await press(pilot, "home", *["pagedown"] * 3)
        assert table.current is not None
        assert table.current["trace_id"] == newest[table.cursor]["trace_id"]
        await press(pilot, "e")
        assert table.pages.total == errors and table.current["status"] == "error"
        await press(pilot, "e")
        assert table.pages.total == total
        # o: a list of the columns; the second sorts the slowest first, O reverses it.
        await press(pilot, "o", "down", "enter")
        assert pilot.app.screen.query_.sort == "-duration_ms"
        assert table.current is not None and table.current["trace_id"] == slowest["trace_id"]
        await press(pilot, "O")
        assert table.current is not None and table.current["trace_id"] == fastest["trace_id"]

    run(TriageApp(store, Start(traces=True)), steps)


def test_the_filter_bar_applies_a_where_condition_and_says_what_is_wrong(
    store: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.widgets import FilterBar, TraceTable

    condition = "span(tool_name = 'lookup_charge_v1' and status = 'error')"
    expected = cli_json(demo, "query", "select count(*) n from ai_traces")[0]["n"]
    matching = len(cli_json(demo, "traces", "--where", condition, "-n", "100000"))
    assert 0 < matching < expected

    async def steps(pilot: Any) -> None:
        table = pilot.app.screen.query_one(TraceTable)
        bar = pilot.app.screen.query_one(FilterBar)
        await press(pilot, "slash")
        assert bar.has_focus
        bar.value = condition
        await press(pilot, "enter")
        assert table.pages.total == matching and table.has_focus
        assert bar.history == [condition]
        # A condition that cannot be read is said in a notification; the rows stay.
        await press(pilot, "slash")
        bar.value = "status = "
        await press(pilot, "enter")
        notes = [n.message for n in pilot.app._notifications]
        assert any("status = " in n for n in notes), notes
        assert table.pages.total == matching
        assert not any("Traceback" in n or "sqlglot" in n for n in notes)
        # Up recalls the condition applied before.
        bar.value = ""
        await press(pilot, "up")
        assert bar.value == condition

    run(TriageApp(store, Start(traces=True)), steps)


def test_enter_replays_a_failed_trace_and_the_keys_walk_its_steps(
    store: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    import re

    from textual.widgets import Static

    from aiobs.analysis.replay import METRIC_BASELINE, METRIC_BUCKETS, METRIC_WINDOW
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.screens import TraceScreen, TracesScreen

    async def steps(pilot: Any) -> None:
        await press(pilot, "e", "enter")
        screen = pilot.app.screen
        assert isinstance(screen, TraceScreen) and screen.replay is not None
        replay = screen.replay
        assert replay["trace"]["status"] == "error"
        assert screen.steps.option_count == len(replay["steps"])
        failed = [s["span_id"] for s in replay["steps"][1:] if s["status"] == "error"]
        await press(pilot, "x")
        assert screen.step is not None and screen.step["span_id"] == failed[0]
        await press(pilot, "x")  # again: the next failed step
        assert screen.step is not None and screen.step["span_id"] == failed[1 % len(failed)]
        child = screen.step
        await press(pilot, "p")
        assert screen.step is not None and screen.step["span_id"] == child["parent_span_id"]
        await press(pilot, "w")
        slowest = max(replay["steps"][1:], key=lambda s: s["duration_ms"])
        assert screen.step is not None and screen.step["span_id"] == slowest["span_id"]
        # A tool call's arguments and result as indented JSON, one key a line.
        calls = [i for i, s in enumerate(replay["steps"]) if (s.get("tool") or {}).get("arguments")]
        assert calls
        screen.steps.highlighted = calls[0]
        await settle(pilot)
        shown = text_of(screen.query_one("#step", Static).content)
        arguments = replay["steps"][calls[0]]["tool"]["arguments"]
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        assert isinstance(parsed, dict) and parsed
        assert all(re.search(rf'\n +"{key}": ', shown) for key in parsed), shown
        await pilot.press("c", "J")  # a page of the pane just switched to (after its layout)
        await settle(pilot)
        assert screen.pane == "context"
        pane = screen.query_one("#context-scroll")
        assert pane.max_scroll_y > 2
        assert pane.scroll_y == min(pane.size.height - 2, pane.max_scroll_y)
        await press(pilot, "K")
        assert pane.scroll_y == 0
        # The context metrics with their sparklines: each bucket the mean of its points.
        assert screen.series, "no metric series read"
        (service, name, attributes), values = sorted(screen.series.items())[0]
        bucket = next(i for i, v in enumerate(values) if v is not None)
        lo = replay["trace"]["start_time"] - METRIC_BASELINE
        width = (replay["trace"]["end_time"] + METRIC_WINDOW - lo) / METRIC_BUCKETS
        (mean,) = store.one(
            "SELECT avg(v) FROM (SELECT ServiceName, MetricName, Attributes, TimeUnix, Value AS v"
            " FROM otel_metrics_gauge UNION ALL SELECT ServiceName, MetricName, Attributes,"
            " TimeUnix, Sum / Count FROM otel_metrics_histogram)"
            " WHERE ServiceName = ? AND MetricName = ?"
            " AND to_json(Attributes)::VARCHAR = to_json(?::MAP(VARCHAR, VARCHAR))::VARCHAR"
            " AND TimeUnix >= ? AND TimeUnix < ?",
            [service, name, json.loads(attributes), lo + bucket * width, lo + (bucket + 1) * width],
        )
        assert mean == pytest.approx(values[bucket])
        context = text_of(screen.query_one("#context", Static).content)
        assert any(mark in context for mark in "▁▂▃▄▅▆▇█")
        await press(pilot, "w")  # a jump to a step shows the step again
        assert screen.pane == "step"
        await press(pilot, "escape")
        assert isinstance(pilot.app.screen, TracesScreen)

    run(TriageApp(store, Start(traces=True)), steps)


def test_the_scan_screen_lists_the_cli_scan_incidents_and_opens_their_examples(
    store: Any, demo: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.screens import ScanScreen, TraceScreen, TracesScreen
    from aiobs.tui.widgets import TraceTable

    monkeypatch.setenv("AIOBS_NOW", NOW)
    expected = cli_json(demo, "scan", "--since", "7d")

    async def steps(pilot: Any) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, ScanScreen) and screen.result is not None
        assert [i["id"] for i in screen.result["incidents"]] == [
            i["id"] for i in expected["incidents"]
        ]
        assert screen.query_one("#incidents").option_count == len(expected["incidents"])
        await press(pilot, "enter")
        examples = pilot.app.screen
        assert isinstance(examples, TracesScreen)
        first = expected["incidents"][0]["examples"]
        assert examples.query_one(TraceTable).pages.total == len(first)
        await press(pilot, "enter")
        assert isinstance(pilot.app.screen, TraceScreen)
        assert pilot.app.screen.trace_id in first
        await press(pilot, "escape", "escape")
        assert isinstance(pilot.app.screen, ScanScreen)

    run(TriageApp(store, Start(traces=True, scan="7d")), steps)


def test_the_session_screen_tells_the_conversation_turn_by_turn(
    store: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.screens import SessionScreen, TraceScreen

    (row,) = cli_json(
        demo,
        "query",
        "select session_id from ai_traces where session_id is not null group by 1"
        " having count(*) >= 3 order by min(start_time), 1 limit 1",
    )
    expected = cli_json(demo, "replay", "--session", row["session_id"], "--no-context")

    async def steps(pilot: Any) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, SessionScreen) and screen.session is not None
        turns = screen.query_one("#turns")
        assert turns.option_count == len(expected["traces"]) >= 3
        assert [r["trace"]["trace_id"] for r in screen.session["traces"]] == [
            r["trace"]["trace_id"] for r in expected["traces"]
        ]
        await press(pilot, "down", "enter")
        assert isinstance(pilot.app.screen, TraceScreen)
        assert pilot.app.screen.trace_id == expected["traces"][1]["trace"]["trace_id"]

    run(TriageApp(store, Start(session=row["session_id"])), steps)


def test_a_marked_trace_is_compared_with_another(store: Any) -> None:
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.screens import DiffScreen
    from aiobs.tui.widgets import TraceTable

    async def steps(pilot: Any) -> None:
        table = pilot.app.screen.query_one(TraceTable)
        first = table.current["trace_id"]
        await press(pilot, "D")  # nothing marked: said, no screen
        assert not isinstance(pilot.app.screen, DiffScreen)
        await press(pilot, "m", "down", "D")
        screen = pilot.app.screen
        assert isinstance(screen, DiffScreen) and (screen.a, screen.b) == (
            first,
            table.current["trace_id"],
        )
        assert screen.result is not None
        assert (screen.result["a"]["trace_id"], screen.result["b"]["trace_id"]) == (
            screen.a,
            screen.b,
        )
        assert screen.result["steps"]

    run(TriageApp(store, Start(traces=True)), steps)


def test_the_suggested_values_are_the_commonest_of_each_field(store: Any) -> None:
    """Read from the materialised span facts: the same values, in the same order, as the
    ai_spans view gives."""
    from aiobs.tui.data import SUGGESTED_VALUES, VALUES_PER_FIELD, field_values

    assert store.capabilities.materialised
    values = field_values(store)
    for name in SUGGESTED_VALUES:
        rows = store.rows(
            f"SELECT {name}, count(*) FROM ai_spans WHERE {name} IS NOT NULL"
            " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
            [VALUES_PER_FIELD],
        )
        assert values[name] == [str(r[0]) for r in rows] and values[name], name


def test_the_sessions_toggle_lists_what_the_cli_sessions_lists(
    store: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.data import TraceQuery
    from aiobs.tui.screens import SessionScreen, TracesScreen
    from aiobs.tui.widgets import TraceTable

    sessions = cli_json(demo, "sessions", "--since", "3d", "--status", "error", "-n", "100000")
    assert len(sessions) > 200  # more than two pages

    async def steps(pilot: Any) -> None:
        table = pilot.app.screen.query_one(TraceTable)
        traces = table.pages.total
        await press(pilot, "v")
        assert table.key == "session_id" and table.pages.total == len(sessions)
        assert table.current is not None
        assert table.current["session_id"] == sessions[0]["session_id"]
        await press(pilot, *["pagedown"] * 5, "down")  # the third page: the offsets agree
        assert table.cursor > 200 and table.current is not None
        row = sessions[table.cursor]
        assert (table.current["session_id"], table.current["traces"]) == (
            row["session_id"],
            row["traces"],
        )
        await press(pilot, "enter")
        assert isinstance(pilot.app.screen, SessionScreen)
        assert pilot.app.screen.session_id == sessions[table.cursor]["session_id"]
        await press(pilot, "escape", "v")
        assert isinstance(pilot.app.screen, TracesScreen)
        assert table.key == "trace_id" and table.pages.total == traces

    query = TraceQuery(since="3d", errors_only=True)
    run(TriageApp(store, Start(traces=True, query=query)), steps)


def test_the_segments_screen_groups_as_segment_does_and_opens_a_groups_traces(
    store: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    from aiobs.tui.analyses import SegmentsScreen
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.data import TraceQuery
    from aiobs.tui.screens import TracesScreen
    from aiobs.tui.widgets import FilterBar, TraceTable

    def groups(*args: str) -> list[tuple[Any, ...]]:
        rows = cli_json(demo, "segment", "--since", "24h", "--service", "support-chat", *args)
        return [(r.get("model"), r.get("tool_name"), r["traces"], r["error_rate"]) for r in rows]

    def shown(screen: SegmentsScreen) -> list[tuple[Any, ...]]:
        return [
            (r.get("model"), r.get("tool_name"), r["traces"], r["error_rate"]) for r in screen.rows
        ]

    by_model = groups("--by", "model")
    by_error = groups("--by", "model", "--sort", "-error_rate")
    by_tool = groups("--by", "tool_name", "--sort", "-error_rate")
    assert by_model != by_error and len(by_model) >= 3
    assert any(t is None for _, t, _, _ in by_tool)  # the traces that call no tool

    async def steps(pilot: Any) -> None:
        await press(pilot, "B")
        screen = pilot.app.screen
        assert isinstance(screen, SegmentsScreen) and shown(screen) == by_model
        await press(pilot, "o")  # sorted by the next metric: the error rate
        assert screen.sort == "-error_rate" and shown(screen) == by_error
        await press(pilot, "b")
        bar = screen.query_one(FilterBar)
        assert bar.has_focus
        bar.value = "tool_name"
        await press(pilot, "enter")
        assert screen.by == "tool_name" and shown(screen) == by_tool
        # Each group's traces, as the group counted them: with a tool, and with none.
        for at, (_, tool, traces, _) in enumerate(by_tool):
            if at > 2 and tool is not None:
                continue
            screen.query_one("#groups").highlighted = at
            await press(pilot, "enter")
            listed = pilot.app.screen
            assert isinstance(listed, TracesScreen)
            assert listed.query_one(TraceTable).pages.total == traces, (tool, listed.query_)
            await press(pilot, "escape")

    query = TraceQuery(since="24h", services=("support-chat",))
    run(TriageApp(store, Start(traces=True, query=query)), steps)


def test_the_diff_screen_compares_two_windows_as_diff_does(
    store: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    from aiobs.tui.analyses import PeriodDiffScreen
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.screens import TracesScreen
    from aiobs.tui.widgets import FilterBar, TraceTable

    def verdicts(result: Any) -> tuple[Any, Any]:
        metrics = [(m["name"], m["regression"], m["significant"]) for m in result["metrics"]]
        factors = [(f["field"], f["value"], f["examples"]) for f in result["factors"]]
        return metrics, factors

    windows = cli_json(demo, "diff", "--baseline", "48h..24h", "--target", "24h..")
    versions = cli_json(
        demo, "diff", "--baseline", "prompt_version = 'v7'",
        "--target", "prompt_version = 'v8'",
    )  # fmt: skip
    assert windows["factors"] and any(m["significant"] for m in versions["metrics"])

    async def steps(pilot: Any) -> None:
        await press(pilot, "C")
        screen = pilot.app.screen
        assert isinstance(screen, PeriodDiffScreen) and screen.sides == ("48h..24h", "24h..")
        assert screen.result is not None and verdicts(screen.result) == verdicts(windows)
        # Enter on the metrics goes to the factors; on a factor, its examples from both sides.
        await press(pilot, "enter", "enter")
        listed = pilot.app.screen
        factor = windows["factors"][0]
        examples = {*factor["examples"]["target"], *factor["examples"]["baseline"]}
        assert isinstance(listed, TracesScreen)
        assert listed.query_one(TraceTable).pages.total == len(examples)
        await press(pilot, "escape")
        # Two filters instead of two windows: typed into the sides.
        for key, value in (("b", "prompt_version = 'v7'"), ("t", "prompt_version = 'v8'")):
            await press(pilot, key)
            bar = screen.focused
            assert isinstance(bar, FilterBar)
            bar.value = value
            await press(pilot, "enter")
        assert screen.sides == ("prompt_version = 'v7'", "prompt_version = 'v8'")
        assert screen.result is not None and verdicts(screen.result) == verdicts(versions)
        # A side that selects nothing: said where the result was, the old result not shown
        # as the new one.
        await press(pilot, "b")
        screen.query_one("#baseline", FilterBar).value = "prompt_version = 'v0'"
        await press(pilot, "enter")
        assert "the baseline selects no traces" in str(screen.query_one("#title").render())

    run(TriageApp(store, Start(traces=True)), steps)


def test_g_compares_a_failed_trace_with_one_of_its_workflow_that_went_well(
    store: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.data import TraceQuery
    from aiobs.tui.screens import DiffScreen, TraceScreen

    async def steps(pilot: Any) -> None:
        await press(pilot, "enter")
        screen = pilot.app.screen
        assert isinstance(screen, TraceScreen) and screen.replay is not None
        failed = screen.replay
        await press(pilot, "g")
        diff = pilot.app.screen
        assert isinstance(diff, DiffScreen) and diff.a == failed["trace"]["trace_id"]
        good = cli_json(demo, "replay", diff.b)
        assert good["trace"]["status"] == "ok"
        assert not [s for s in good["steps"] if s["status"] == "error"]
        for key in ("service_name", "root_name"):
            assert good["trace"][key] == failed["trace"][key]
        # The journey it is compared with calls the failed one's tools where one does.
        tools = {s["tool_name"] for s in failed["steps"] if s.get("tool_name")}
        assert tools & {s["tool_name"] for s in good["steps"] if s.get("tool_name")}
        assert diff.result is not None and diff.result["b"]["trace_id"] == diff.b

    # A refund that failed: its lookup and the refund itself went well in other journeys.
    query = TraceQuery(base="span(tool_name = 'payments_refund' and status = 'error')")
    run(TriageApp(store, Start(traces=True, query=query)), steps)


def test_a_superseded_reader_is_interrupted(store: Any) -> None:
    """A worker's query stops when a newer one of its group starts: the old handle is
    interrupted (DuckDB's interrupt), and its error is not reported. The newer one starts once
    DuckDB reports the old query running (its progress), not after a guessed sleep: an
    interrupt before the query begins has nothing to stop."""
    import threading

    from aiobs.backend import QueryError
    from aiobs.tui.app import TriageApp

    app, node, handles, caught = TriageApp(store), object(), [], []

    def long() -> None:
        try:
            with app.reading(node, "pages") as reader:  # type: ignore[arg-type]
                reader.con.execute("SET enable_progress_bar = true")  # type: ignore[attr-defined]
                reader.con.execute("SET enable_progress_bar_print = false")  # type: ignore[attr-defined]
                handles.append(reader)
                reader.one("SELECT count(*) FROM range(100000000000) a")
        except QueryError as exc:
            caught.append(exc)

    worker = threading.Thread(target=long)
    worker.start()
    deadline = time.monotonic() + 10
    while not (handles and handles[0].con.query_progress() >= 0):
        assert time.monotonic() < deadline, "the long query never started"
        time.sleep(0.005)  # polling DuckDB's progress: nothing to wait on instead
    with app.reading(node, "pages") as newer:  # type: ignore[arg-type]
        assert newer.one("SELECT 42") == (42,)
    worker.join(20)
    assert not worker.is_alive(), "the superseded query ran on"
    assert caught and "interrupt" in caught[0].message.lower()


def test_a_remapped_key_runs_the_binding_it_names(store: Any) -> None:
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.widgets import TraceTable

    async def steps(pilot: Any) -> None:
        table = pilot.app.screen.query_one(TraceTable)
        total = table.pages.total
        await press(pilot, "E")
        assert table.pages.total is not None and table.pages.total < total

    run(TriageApp(store, Start(traces=True), keymap={"traces.errors": "E"}), steps)


def test_tui_on_a_missing_store_is_exit_3_without_textual(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "aiobs",
            "--db",
            str(tmp_path / "none.duckdb"),
            "tui",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 3, out.stderr[-2000:]
    assert "textual" not in out.stderr.split("aiobs:")[0].replace("-X importtime", "")


def test_tui_on_an_unknown_trace_or_session_is_exit_4(demo: tuple[Path, dict[str, Any]]) -> None:
    for args in (["ffffffffffffffffffffffffffffffff"], ["fffff"], ["--session", "no-such"]):
        out = subprocess.run(
            [sys.executable, "-m", "aiobs", "--db", str(demo[0]), "tui", *args],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        assert out.returncode == 4, (args, out.stderr)
        assert "no trace" in out.stderr or "no session" in out.stderr


# -- what a person sees -----------------------------------------------------------------------


SCREENS = [
    ("overview", []), ("traces", []), ("trace", ["e", "enter", "x"]), ("scan", []),
    ("sessions", ["v"]), ("session", ["v", "enter"]), ("segments", ["B"]), ("compare", ["C"]),
    ("diff-traces", ["e", "m", "down", "D"]),
]  # fmt: skip
SIZES = {"80x24": (80, 24), "160x48": (160, 48)}
# Every screen at both sizes; the help panel, the palette and the light theme where the fit is
# tightest or the most colours show.
SNAPSHOTS = [(name, keys, size) for name, keys in SCREENS for size in SIZES] + [
    ("help", ["question_mark"], "80x24"),
    ("palette", ["ctrl+p"], "80x24"),
    ("light", ["ctrl+t"], "160x48"),
    ("light-trace", ["ctrl+t", "e", "enter", "x"], "160x48"),
]


@pytest.mark.parametrize("screen, keys, size", SNAPSHOTS, ids=[f"{n}-{s}" for n, _, s in SNAPSHOTS])
def test_snapshots(snap_compare: Any, store: Any, screen: str, keys: list[str], size: str) -> None:
    from aiobs.tui.app import Start, TriageApp
    from aiobs.tui.data import TraceQuery

    # Each opens where the screen is (the overview and the scan each run a scan: ~3 s).
    start = {
        "overview": Start(),
        "scan": Start(traces=True, scan="7d"),
        "segments": Start(traces=True, query=TraceQuery(since="7d")),
        "compare": Start(traces=True, query=TraceQuery(since="24h")),
    }.get(screen, Start(traces=True))

    async def run_before(pilot: Any) -> None:
        from textual.widgets import Input

        await settle(pilot)
        for key in keys:
            await press(pilot, key)
        # A focused input's cursor blinks every half second: shown steady, the picture does not
        # depend on when it is taken (the palette's flickered on a loaded machine).
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(TriageApp(store, start), terminal_size=SIZES[size], run_before=run_before)


def test_the_overview_lists_each_service_against_the_period_before(
    store: Any, demo: tuple[Path, dict[str, Any]]
) -> None:
    from aiobs.tui.app import TriageApp
    from aiobs.tui.screens import OverviewScreen, TracesScreen
    from aiobs.tui.widgets import TraceTable

    week = cli_json(
        demo, "segment", "--by", "service_name", "--since", "2026-11-08T00:00Z..2026-11-15T00:00Z"
    )
    before = cli_json(
        demo, "segment", "--by", "service_name", "--since", "2026-11-01T00:00Z..2026-11-08T00:00Z"
    )

    async def steps(pilot: Any) -> None:
        await press(pilot, "3")  # the last week
        screen = pilot.app.screen
        assert isinstance(screen, OverviewScreen) and screen.result is not None
        shown = {e["service"]: e for e in screen.result["services"]}
        assert {r["service_name"]: r["traces"] for r in week} == {
            k: e["now"]["traces"] for k, e in shown.items()
        }
        for r in before:
            assert shown[r["service_name"]]["before"]["traces"] == r["traces"]
        # Every figure as segment computes it, the window's and the period's before.
        for rows, side in ((week, "now"), (before, "before")):
            for r in rows:
                for key in ("error_rate", "p95_ms", "tokens_per_trace", "cost_usd"):
                    assert shown[r["service_name"]][side][key] == pytest.approx(r[key]), key
                got = shown[r["service_name"]][side]["eval_fail_rate"]
                assert got == pytest.approx(r["eval_fail_rate"]) or got is r["eval_fail_rate"]
        first = screen.result["services"][0]
        assert sum(v or 0 for v in first["series"]["traces"]) == first["now"]["traces"]
        assert screen.scanned is not None
        await press(pilot, "enter")
        traces = pilot.app.screen
        assert isinstance(traces, TracesScreen)
        assert traces.query_one(TraceTable).pages.total == first["now"]["traces"]
        await press(pilot, "escape", "tab", "enter")
        if screen.scanned["incidents"]:
            assert isinstance(pilot.app.screen, TracesScreen)
            assert pilot.app.screen.query_.base is not None

    run(TriageApp(store), steps)


TMUX = shutil.which("tmux")


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_the_real_tui_reaches_a_failed_trace_with_keys_alone(
    demo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    session = f"aiobs-test-{os.getpid()}"
    env = f"AIOBS_NOW={NOW} AIOBS_CONFIG={tmp_path / 'none.toml'} TERM=xterm-256color"
    command = f"{env} {sys.executable} -m aiobs --db {demo[0]} tui"
    subprocess.run(
        [TMUX, "new-session", "-d", "-s", session, "-x", "120", "-y", "36", command], check=True
    )

    def screen() -> str:
        return subprocess.run(
            [TMUX, "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout

    def wait_for(text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = screen()
            if text in shown:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never showed:\n{screen()}")

    try:
        wait_for("Overview · the last 24h")
        subprocess.run([TMUX, "send-keys", "-t", session, "T"], check=True)
        wait_for("traces · sorted by")
        subprocess.run([TMUX, "send-keys", "-t", session, "e"], check=True)
        wait_for("errors only")
        subprocess.run([TMUX, "send-keys", "-t", session, "Enter"], check=True)
        shown = wait_for("failed at")
        assert "ERROR" in shown
        subprocess.run([TMUX, "send-keys", "-t", session, "x"], check=True)
        subprocess.run([TMUX, "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = subprocess.run([TMUX, "has-session", "-t", session], capture_output=True)
            if alive.returncode != 0:  # q ended aiobs, and with it the session
                break
            time.sleep(0.1)
        assert (
            subprocess.run([TMUX, "has-session", "-t", session], capture_output=True).returncode
            != 0
        )
    finally:
        subprocess.run([TMUX, "kill-session", "-t", session], capture_output=True)


def test_every_binding_has_an_id_the_readme_lists() -> None:
    import re

    from textual.binding import Binding

    from aiobs.tui import analyses, app, screens, widgets

    ids = set()
    for module in (analyses, app, screens, widgets):
        for obj in vars(module).values():
            if isinstance(obj, type) and obj.__module__ == module.__name__:
                for binding in obj.__dict__.get("BINDINGS", []):
                    assert isinstance(binding, Binding) and binding.id, (obj, binding)
                    ids.add(binding.id)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The triage TUI")[1].split("\n## ")[0]
    listed = set(re.findall(r"`([a-z]+\.[a-z_]+)`", section))
    assert ids == listed, (ids - listed, listed - ids)


def test_the_config_remaps_keys_by_binding_id() -> None:
    from aiobs.cli.tui_cmd import _keymap
    from aiobs.errors import UsageError

    assert _keymap({"tui": {"keys": {"traces.errors": "E"}}}) == {"traces.errors": "E"}
    assert _keymap({}) == {}
    with pytest.raises(UsageError, match=r"\[tui.keys\]"):
        _keymap({"tui": {"keys": {"traces.errors": 5}}})


def test_an_overview_of_an_empty_window_says_where_the_traces_are(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiobs.tui.app import TriageApp
    from aiobs.tui.screens import OverviewScreen

    monkeypatch.setenv("AIOBS_NOW", "2027-06-01T00:00:00Z")  # long after the demo week

    async def steps(pilot: Any) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, OverviewScreen) and screen.result is not None
        assert screen.result["services"] == []
        said = str(screen.query_one("#services-header").render())
        assert "no traces in the last 24h" in said and "2026-11-" in said

    run(TriageApp(store), steps)
