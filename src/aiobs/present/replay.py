"""A replay (``aiobs.analysis.replay``) as Rich renderables or a Markdown incident document: a
trace's header, its steps (one block each, the unit ``--step`` advances by) and the context
around it; a session's traces as one journey.

Pure functions of the replay: nothing here changes the dicts it is given (a cached replay may be
rendered from several threads). Every string that came from telemetry goes through ``inert`` and
into ``rich.text.Text`` objects (never markup strings), so escape sequences and Rich markup in
prompts are shown, not obeyed.

Must not import typer, textual, duckdb, polars, pyarrow or sqlglot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.padding import Padding
from rich.rule import Rule
from rich.text import Text

from aiobs.analysis.replay import is_message_list, metric_key
from aiobs.present.format import (
    clip,
    duration,
    md_cell,
    money,
    num,
    offset,
    plural,
    spark,
    step_tokens,
    token_totals,
    when,
)
from aiobs.present.safe import inert
from aiobs.semantic.signals import FAILED_LABELS

if TYPE_CHECKING:
    from aiobs.analysis.results import Message, Replay, ReplayStep, ReplayTrace, SessionReplay

BAR_WIDTH = 24
DETAIL_INDENT = 47  # offset (12) + bar (24) + duration (11): details start under the step name
NARROW_INDENT = 12  # on a narrow terminal: under the bar, after the offset column
WIDE = 110  # columns from which details align with the step names
KIND_STYLE = {
    "llm": "bold magenta",
    "tool": "bold cyan",
    "retrieval": "bold green",
    "rerank": "green",
    "embedding": "green",
    "agent": "bold",
    "handoff": "bold yellow",
    "guardrail": "blue",
    "http": "dim cyan",
    "db": "dim green",
}


def bar(step: ReplayStep, total_ms: float, cells: int = BAR_WIDTH) -> str:
    """The step on the trace's time axis, ``cells`` wide."""
    total = max(float(total_ms), 1e-6)
    start = max(0, min(cells - 1, int(float(step["offset_ms"]) / total * cells)))
    width = max(1, round(float(step["duration_ms"]) / total * cells))
    width = min(width, cells - start)
    return " " * start + "█" * width + " " * (cells - start - width)


KIND_ICON = {
    "agent": "●", "llm": "◆", "tool": "⚙", "retrieval": "⌕", "rerank": "↕", "embedding": "∴",
    "guardrail": "⛨", "handoff": "↪", "http": "⇄", "db": "▤", "chain": "∘",
}  # fmt: skip


def waterfall_row(step: ReplayStep, total_ms: float, width: int) -> Text:
    """A step in one line ``width`` wide (the TUI's waterfall): its bar on the trace's time
    axis, its duration, the kind's icon and name indented by depth, ERROR; cut at the edge."""
    cells = 24 if width >= 80 else 12 if width >= 40 else 6
    failed = step["status"] == "error"
    row = Text.assemble(
        (bar(step, total_ms, cells), "red" if failed else "yellow" if step["on_critical_path"] else "blue"),
        f" {duration(step['duration_ms']):>8} ",
        "  " * step["depth"],
        (KIND_ICON.get(step["kind"], "·") + " ", KIND_STYLE.get(step["kind"], "")),
        (inert(step["name"]), "bold" if step["depth"] == 0 else ""),
        ("  ERROR" if failed else "", "bold red"),
    )  # fmt: skip
    row.truncate(max(width, 1), overflow="ellipsis")
    return row


def step_title(step: ReplayStep) -> Text:
    """A step named for its detail pane: kind, name, ERROR, then when, how long and where."""
    failed = step["status"] == "error"
    return Text.assemble(
        (f"{step['kind']} ", KIND_STYLE.get(step["kind"], "")),
        (inert(step["name"]), "bold"),
        ("  ERROR" if failed else "", "bold red"),
        (
            f"  at {offset(step['offset_ms'])} for {duration(step['duration_ms'])}"
            f" in {inert(step['service_name'])}",
            "dim",
        ),
    )


def _kv_line(pairs: list[tuple[str, Any]]) -> str:
    return " · ".join(f"{k} {v}" if k else str(v) for k, v in pairs if v not in (None, "", [], "-"))


# --- text -------------------------------------------------------------------------------------------


def header(trace: ReplayTrace) -> RenderableType:
    status = trace["status"].upper()
    lines = [
        Text.assemble(
            ("trace ", "bold"),
            (trace["trace_id"], "bold"),
            "  ",
            (status, "bold red" if status == "ERROR" else "bold green"),
        ),
        Text(
            inert(
                _kv_line(
                    [
                        ("", f"{trace['service_name']}@{trace['service_version'] or '?'}"),
                        ("env", trace.get("environment")),
                        ("start", when(trace["start_time"])),
                        ("took", duration(trace["duration_ms"])),
                        ("steps", trace["span_count"]),
                    ]
                )
            )
        ),
        Text(
            inert(
                _kv_line(
                    [
                        ("user", trace.get("user_id")),
                        ("session", trace.get("session_id")),
                        ("models", ", ".join(trace.get("models") or [])),
                        ("prompt", ", ".join(trace.get("prompt_versions") or [])),
                        ("tokens", token_totals(trace)),
                        ("cost", money(trace.get("cost_usd"))),
                    ]
                )
            )
        ),
    ]
    err = trace.get("first_error")
    if err:
        said = " ".join(x for x in (err.get("error_type"), err.get("error_message")) if x)
        lines.append(
            Text.assemble(
                ("failed at ", "bold red"),
                inert(f"{offset(err['offset_ms'])}: {err['kind']} {err['name']}"),
                (" — " if said else ""),
                (inert(said), "red"),
            )
        )
    return Group(*lines)


def critical_path_line(trace: ReplayTrace, steps: list[ReplayStep]) -> Text:
    names = {s["span_id"]: s["name"] for s in steps}
    path = [names.get(sid, sid) for sid in trace.get("critical_path", [])]
    shown = path if len(path) <= 8 else [*path[:4], "…", *path[-3:]]
    return Text.assemble(("critical path ", "bold"), inert(" → ".join(shown)))


def step_lines(
    step: ReplayStep,
    total_ms: float,
    full: bool,
    where: dict[str, str] | None = None,
    service_changed: bool = False,
    evaluations: Sequence[Mapping[str, Any]] = (),
) -> Iterator[RenderableType]:
    """A step's header line and its details. ``service_changed``: the step runs in another
    service than the step before it, whose name the header then shows (under the root)."""
    yield _OneLine(step_header(step, total_ms, service_changed))
    for line in detail_lines(step, full, where, evaluations=evaluations):
        yield _Detail(line, len("  " * step["depth"]))


def step_header(step: ReplayStep, total_ms: float, service_changed: bool = False) -> Text:
    """A step's one line: offset, duration bar on the trace's time axis, duration, the kind
    and name indented by depth, ERROR, and the service when it changes (the TUI's waterfall
    row too)."""
    indent = "  " * step["depth"]
    status_style = "bold red" if step["status"] == "error" else "green"
    return Text.assemble(
        (f"{offset(step['offset_ms']):>11} ", "dim"),
        (
            bar(step, total_ms),
            "red"
            if step["status"] == "error"
            else ("yellow" if step["on_critical_path"] else "blue"),
        ),
        f" {duration(step['duration_ms']):>9} ",
        indent,
        (f"{step['kind']:<9}", KIND_STYLE.get(step["kind"], "")),
        " ",
        (inert(step["name"]), "bold" if step["depth"] == 0 else ""),
        "  ",
        (step["status"].upper() if step["status"] == "error" else "", status_style),
        (
            f"  {inert(step['service_name'])}" if step["depth"] and service_changed else "",
            "dim",
        ),
    )


class _OneLine:
    """A step's header: one line, cut with an ellipsis at the edge of a narrow terminal (Rich
    would wrap its end to column 0, among the next step's details)."""

    def __init__(self, line: Text) -> None:
        self.line = line

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        line = self.line.copy()
        line.truncate(options.max_width, overflow="ellipsis")
        yield line


class _Detail:
    """A step's detail line, kept under its step (not at column 0) when it wraps: under the step
    name on a wide terminal; on a narrow one (under WIDE columns) under the offset instead, where
    aligning with the name left messages and tool output ~30 columns to wrap in."""

    def __init__(self, line: Text, depth_indent: int) -> None:
        self.line = line
        self.depth_indent = depth_indent

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        base = DETAIL_INDENT if options.max_width >= WIDE else NARROW_INDENT
        yield Padding(self.line, (0, 0, 0, base + self.depth_indent + 2), expand=False)


def _words(text: Any) -> str:
    return " ".join(str(text or "").split())


def detail_lines(
    step: ReplayStep,
    full: bool,
    where: dict[str, str] | None = None,
    *,
    tools: bool = True,
    evaluations: Sequence[Mapping[str, Any]] = (),
) -> Iterator[Text]:
    """The lines under a step. ``where`` names earlier steps (span id → "+1.272 s") for the
    note that stands for the messages an LLM step repeats from an earlier call. Without
    ``tools``, a tool call's arguments and result are left to ``tool_json``. ``evaluations``:
    the results that judge this step (``evaluations_by_span``), failures first."""
    kind = step["kind"]
    error = " ".join(str(x) for x in (step.get("error_type"), step.get("error_message")) if x)
    # Each error once: the step's error, then exception events that say something else (an
    # exception event is usually the same error again, as type and message).
    said = {_words(error), _words(step.get("error_message"))} - {""}
    if step["status"] == "error" and error:
        yield Text("✗ " + clip(error, full), style="red")
    tokens = step_tokens(step)
    if kind in ("llm", "embedding") and (step.get("model") or tokens):
        yield Text(
            inert(
                _kv_line(
                    [
                        ("", step.get("model")),
                        ("", tokens),
                        (
                            "cost",
                            money(step.get("cost_usd"))
                            if step.get("cost_usd") is not None
                            else None,
                        ),
                        (
                            "ttft",
                            duration(step.get("ttft_ms"))
                            if step.get("ttft_ms") is not None
                            else None,
                        ),
                        ("finish", step.get("finish_reason")),
                        (
                            "prompt",
                            " ".join(
                                x
                                for x in (step.get("prompt_name"), step.get("prompt_version"))
                                if x
                            )
                            or None,
                        ),
                    ]
                )
            ),
            style="dim",
        )
    if kind not in ("llm", "embedding", "rerank"):
        run = step_tokens(
            {
                "input_tokens": step.get("reported_input_tokens"),
                "output_tokens": step.get("reported_output_tokens"),
            }
        )
        stated = step.get("reported_cost_usd")
        if run or stated is not None:
            # What the run reports for itself and its calls (the calls below count, not this).
            yield Text(
                inert(
                    _kv_line(
                        [
                            ("run reports", run),
                            ("cost", money(stated) if stated is not None else None),
                        ]
                    )
                ),
                style="dim",
            )
    shown = step.get("messages", [])
    skipped = 0 if full else min(int(step.get("new_from") or 0), len(shown))
    if skipped:
        source = (where or {}).get(step.get("continues") or "")
        yield Text(
            f"… {skipped} earlier message{'s' if skipped != 1 else ''}"
            + (f" as at {source}" if source else " as above")
            + f" (--full shows {'them' if skipped != 1 else 'it'})",
            style="dim",
        )
    for m in shown[skipped:]:
        yield from _message(m, full, "")
    for m in step.get("output", []):
        yield from _message(m, full, "→ ")
    tool = step.get("tool")
    if tool and tools:
        if tool.get("arguments") is not None:
            yield Text.assemble(("args ", "cyan"), clip(tool["arguments"], full))
        if tool.get("result") is not None:
            yield Text.assemble(
                ("result ", "red" if step["status"] == "error" else "cyan"),
                clip(tool["result"], full),
            )
    ret = step.get("retrieval")
    if ret:
        if ret.get("query"):
            yield Text.assemble(("query ", "green"), clip(ret["query"], full))
        for d in ret.get("documents", []):
            score = "   -" if d.get("score") is None else f"{d['score']:.2f}"
            yield Text.assemble(
                (f"{score} ", "green"),
                (inert(str(d.get("id") or "?")), "bold"),
                (f"  {clip(d['content'], full, 120)}" if d.get("content") else "", "dim"),
            )
    hand = step.get("handoff")
    if hand:
        yield Text(
            inert(
                _kv_line(
                    [
                        ("→", hand.get("target") or "human"),
                        ("queue", hand.get("queue")),
                        ("reason", hand.get("reason")),
                        ("ticket", hand.get("ticket")),
                    ]
                )
            ),
            style="yellow",
        )
    http = step.get("http")
    if http and http.get("target"):
        yield Text(
            inert(
                f"{http.get('method') or ''} {http['target']} → {http.get('status_code') or '?'}"
            ),
            style="dim",
        )
    db = step.get("db")
    if db and db.get("system"):
        yield Text(
            inert(
                _kv_line(
                    [("", db.get("system")), ("", db.get("operation")), ("", db.get("collection"))]
                )
            ),
            style="dim",
        )
        if db.get("query"):
            yield Text(clip(db["query"], full), style="dim")
    guard = step.get("guardrail")
    if guard and guard.get("decision"):
        yield Text(
            inert(
                _kv_line(
                    [
                        ("", guard.get("name")),
                        ("decision", guard.get("decision")),
                        ("", guard.get("categories")),
                    ]
                )
            ),
            style="blue",
        )
    io = step.get("io")
    as_messages = bool(step.get("messages") or step.get("output"))
    if io:
        # A side that is a message list was shown above as messages (an agent's conversation).
        for value, label in ((io.get("input"), "in  "), (io.get("output"), "out ")):
            if value is not None and not (as_messages and is_message_list(value)):
                yield Text.assemble((label, "dim"), clip(value, full, 200))
    for e in step.get("events", []):
        if e["name"] == "exception":
            a = e["attributes"]
            kind_, message = a.get("exception.type", "exception"), a.get("exception.message", "")
            text = f"{kind_}: {message}"
            if said & {_words(message), _words(f"{kind_} {message}"), _words(text)}:
                continue
            said |= {_words(message), _words(text)}
            yield Text("! " + clip(text, full), style="red")
    # Each failed evaluation on its own line with its evidence; the passed ones in one line.
    # A score without a label (Langfuse's numeric scores) is neither: its scale is the
    # evaluator's own (toxicity 0.8 is bad, correctness 0.8 good), so it is only shown.
    failed = FAILED_LABELS
    passed, scored = [], []
    for ev in sorted(evaluations, key=lambda v: str(v.get("name"))):
        score = "" if ev.get("score") is None else f" {ev['score']:.2f}"
        if ev.get("label") in (None, ""):
            scored.append(f"{ev.get('name')}{score}")
            continue
        if str(ev.get("label")).lower() not in failed:
            passed.append(f"{ev.get('name')}{score}")
            continue
        why = ev.get("explanation")
        yield Text.assemble(
            ("✗ ", "red"),
            (f"eval {inert(str(ev.get('name')))} {inert(str(ev.get('label')))}{score}", "red"),
            ("  " + clip(why, full, 160) if why else "", "dim"),
        )
    if passed:
        yield Text.assemble(("✓ ", "green"), (f"eval passed: {inert(', '.join(passed))}", "dim"))
    if scored:
        yield Text.assemble(("· ", "dim"), (f"eval scored: {inert(', '.join(scored))}", "dim"))


def evaluations_by_span(replay: Replay) -> dict[str, list[Mapping[str, Any]]]:
    """The trace's evaluation results by the step (span) each judges."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    context = replay.get("context")
    for e in (context.get("evaluations") or []) if context else []:
        if e.get("span_id"):
            out.setdefault(str(e["span_id"]), []).append(e)
    return out


def tool_json(step: ReplayStep) -> Iterator[RenderableType]:
    """A tool call's arguments and result, each under its label as indented, highlighted JSON
    (a string that is not JSON as it is): the TUI's step pane. The JSON text is made inert
    (JSON escapes C0 controls, ``inert`` the C1 ones and bidi overrides) before the
    highlighter styles spans of it; no markup is read."""
    from rich.highlighter import JSONHighlighter

    highlight = JSONHighlighter()
    tool = step.get("tool")
    if not tool:
        return
    for key, label in (("arguments", "args"), ("result", "result")):
        value: Any = tool.get(key)
        if value is None:
            continue
        failed = key == "result" and step["status"] == "error"
        yield Text(label, style="red" if failed else "cyan")
        if isinstance(value, str):
            try:
                value = json.loads(value, strict=False)  # control characters in strings too
            except ValueError:
                yield Padding(Text(inert(value, keep_newlines=True)), (0, 0, 0, 2))
                continue
        text = inert(json.dumps(value, indent=2, ensure_ascii=False), keep_newlines=True)
        yield Padding(highlight(Text(text)), (0, 0, 0, 2))


def _message(m: Message, full: bool, arrow: str) -> Iterator[Text]:
    role = m.get("role", "?")
    style = {"system": "dim", "user": "bold", "assistant": "magenta", "tool": "cyan"}.get(role, "")
    label = f"{arrow}{role}"
    if m.get("tool_call_id"):
        label += f" [{m['tool_call_id']}]"
    if m.get("content"):
        yield Text.assemble((inert(label) + ": ", style), clip(m["content"], full))
    for call in m.get("tool_calls", []):
        args = call.get("arguments")
        yield Text.assemble(
            (inert(label) + " ⇒ ", style),
            (inert(str(call.get("name"))), "bold cyan"),
            clip(
                f"({json.dumps(args, ensure_ascii=False) if not isinstance(args, str) else args})",
                full,
                200,
            ),
        )


def context_renderables(
    context: Mapping[str, Any],
    full: bool,
    traces: dict[str, int] | None = None,
    series: Mapping[tuple[str, str, str], Sequence[float | None]] | None = None,
) -> Iterator[RenderableType]:
    """A trace's context; with ``traces`` (trace id → its number in the session), a session's,
    whose user events are marked with the trace they belong to; with ``series``
    (``analysis.replay.metric_series``), each metric's sparkline over the hour before."""
    logs = context.get("logs") or []
    if logs:
        yield Text("logs", style="bold underline")
        for log in logs:
            if log.get("event_name"):
                continue
            sev = log.get("severity") or ""
            yield Text.assemble(
                (f"{offset(log['offset_ms']):>11} ", "dim"),
                (
                    f"{sev:<5} ",
                    "red" if sev in ("ERROR", "FATAL") else ("yellow" if sev == "WARN" else "dim"),
                ),
                (inert(log.get("service_name") or ""), "dim"),
                "  ",
                clip(log.get("body") or "", full, 300),
            )
    events = context.get("session_events") or []
    if events:
        yield Text(
            "user session (±30 min)"
            if traces is None
            else "user session (±30 min; offsets from trace 1's start; ◆N: in trace N)",
            style="bold underline",
        )
        for ev in events:
            attrs = ", ".join(f"{k}={v}" for k, v in ev["attributes"].items() if k != "user.id")
            if traces is None:
                marker = "◆" if ev.get("trace_id") else " "
            else:
                number = traces.get(ev.get("trace_id") or "")
                marker = f"{'◆' if ev.get('trace_id') else ' '}{number or '':<2}"
            name_style = (
                "bold red" if ev["name"] in ("session.abandoned",) or "thumbs_down" in attrs else ""
            )
            yield Text.assemble(
                (f"{offset(ev['offset_ms']):>11} ", "dim"),
                f"{marker} ",
                (inert(ev["name"]), name_style),
                ("  " + clip(attrs, full, 160) if attrs else "", "dim"),
            )
    evals = context.get("evaluations") or []
    if evals:
        yield Text("evaluations", style="bold underline")
        for e in evals:
            yield Text.assemble(
                f"  {inert(str(e.get('name')))} ",
                (
                    f"{e['score']:.2f} {e.get('label') or ''}"
                    if e.get("score") is not None
                    else str(e.get("label")),
                    "red" if e.get("label") == "fail" else "green",
                ),
                ("  " + clip(e.get("explanation") or "", full, 200), "dim"),
            )
    metrics = [
        m
        for m in context.get("metrics") or []
        if m.get("ratio") is not None or m.get("around") is not None
    ]
    notable = sorted(
        metrics,
        key=lambda m: (
            -abs((m["ratio"] or 1) - 1)
            if (m["ratio"] or 1) >= 1
            else -abs(1 / max(m["ratio"], 1e-9) - 1)
        ),
    )[:8]
    if notable:
        yield Text(
            f"infrastructure {'around the trace' if traces is None else 'during the session'}"
            " (vs the hour before)",
            style="bold underline",
        )
        for m in notable:
            attrs = ",".join(f"{v}" for v in m["attributes"].values())
            ratio = m.get("ratio")
            style = "bold red" if ratio is not None and (ratio >= 2 or ratio <= 0.5) else ""
            values = (series or {}).get(metric_key(m["service_name"], m["name"], m["attributes"]))
            yield Text.assemble(
                (f"  {spark(values)}" if values else "", style or "cyan"),
                f"  {inert(m['name'])}",
                (f"{{{inert(attrs)}}}" if attrs else "", "dim"),
                (f" ({inert(m['service_name'])})", "dim"),
                f"  {num(m.get('around'))}"
                + ("" if m.get("unit") in (None, "", "1") else f" {inert(m['unit'])}"),
                (
                    f"  typical {num(m.get('baseline'))}" if m.get("baseline") is not None else "",
                    "dim",
                ),
                (f"  ×{ratio}" if ratio is not None else "", style),
            )
    changes = context.get("changes") or []
    if changes:
        yield Text("changes in the preceding 6 h", style="bold underline")
        for ch in changes:
            yield Text.assemble(
                (f"  {duration(ch['minutes_before'] * 60_000):>9} before  ", "dim"),
                (inert(str(ch.get("kind"))), "yellow"),
                "  ",
                clip(
                    ch.get("description") or f"{ch.get('service_name')} {ch.get('version')}",
                    full,
                    200,
                ),
            )


# In a session, a trace's own context: the session's events, metrics and changes are shown once.
TRACE_ONLY_CONTEXT = ("logs", "evaluations")


def step_places(replay: Replay, prefix: str = "") -> dict[str, str]:
    """span id → where the step is shown (``+1.272 s``, after ``prefix``)."""
    return {s["span_id"]: f"{prefix}{offset(s['offset_ms'])}" for s in replay["steps"]}


def trace_context(replay: Replay, in_session: bool) -> Mapping[str, Any]:
    """The context to show under a trace: all of it alone, its logs and evaluations in a
    session."""
    context: Mapping[str, Any] = replay.get("context") or {}
    return {k: context.get(k) for k in TRACE_ONLY_CONTEXT} if in_session else context


def trace_blocks(
    replay: Replay,
    full: bool,
    earlier: dict[str, str] | None = None,
    in_session: bool = False,
) -> list[list[RenderableType]]:
    """The replay as blocks: the header, then one block per step (its line and details), then
    the cross-layer context — the unit ``--step`` advances by. ``earlier`` names the steps of
    the session's earlier traces; ``in_session`` leaves the session-wide context out."""
    trace, steps = replay["trace"], replay["steps"]
    where = {**(earlier or {}), **step_places(replay)}
    blocks: list[list[RenderableType]] = [
        [header(trace), critical_path_line(trace, steps), Text("")]
    ]
    prev_service = None
    judged = evaluations_by_span(replay)
    for step in steps:
        changed = step["service_name"] != prev_service
        prev_service = step["service_name"]
        blocks.append(
            list(
                step_lines(
                    step,
                    trace["duration_ms"],
                    full,
                    where,
                    changed,
                    judged.get(step["span_id"], ()),
                )
            )
        )
    context = list(context_renderables(trace_context(replay, in_session), full))
    if context:
        blocks.append([Text(""), *context])
    return blocks


def session_numbers(session: SessionReplay) -> dict[str, int]:
    """trace id → its number (from 1) in a loaded session."""
    return {r["trace"]["trace_id"]: i + 1 for i, r in enumerate(session["traces"])}


def session_title(session: SessionReplay) -> Text:
    """The line that names a loaded session, above its journeys."""
    info = session["session"]
    return Text.assemble(
        ("session ", "bold"),
        (inert(info["session_id"]), "bold"),
        inert(f" · user {info.get('user_id') or '-'} · {plural(info['traces'], 'trace')}"),
    )


def journeys(
    replays: list[Replay], full: bool, session: SessionReplay | None = None
) -> list[list[list[RenderableType]]]:
    """What ``aiobs replay`` shows (under ``session_title`` for a session), as journeys of
    blocks (``trace_blocks``): one trace's; or a loaded ``session``'s (``replays`` are its
    traces): each trace under a rule, with the steps of earlier traces named where it repeats
    them, then the session's user events, metrics and changes once, after its traces."""
    if session is None:
        return [trace_blocks(replays[0], full)]
    result: list[list[list[RenderableType]]] = []
    earlier: dict[str, str] = {}
    for i, r in enumerate(replays):
        blocks = trace_blocks(r, full, earlier, in_session=True)
        result.append([[Rule(f"trace {i + 1} of {len(replays)}"), *blocks[0]], *blocks[1:]])
        earlier |= step_places(r, f"trace {i + 1} ")
    context = list(
        context_renderables(session.get("context") or {}, full, session_numbers(session))
    )
    if context:
        result.append([[Rule("session"), *context]])
    return result


# --- markdown ---------------------------------------------------------------------------------------------


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``, so content cannot close it."""
    ticks = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        ticks = max(ticks, run)
    return "`" * max(3, ticks + 1)


def _block(text: str, full: bool) -> str:
    body = clip(text, full, 2000)
    fence = _fence(body)
    return f"{fence}\n{body}\n{fence}"


def markdown(
    replay: Replay,
    full: bool,
    earlier: dict[str, str] | None = None,
    in_session: bool = False,
) -> str:
    """One trace as a Markdown incident document (``earlier``, ``in_session``: as for
    ``trace_blocks``)."""
    trace, steps = replay["trace"], replay["steps"]
    where = {**(earlier or {}), **step_places(replay)}
    service = f"{md_cell(trace['service_name'])}@{md_cell(trace['service_version'] or '?')}"
    if trace.get("environment"):
        service += f" ({md_cell(trace['environment'])})"
    lines = [
        f"# Trace `{trace['trace_id']}` — {trace['status'].upper()}",
        "",
        "| | |",
        "|---|---|",
        f"| service | {service} |",
        f"| start | {when(trace['start_time'])} |",
        f"| duration | {duration(trace['duration_ms'])} |",
        f"| user / session | {md_cell(trace.get('user_id') or '-')} / {md_cell(trace.get('session_id') or '-')} |",
        f"| models | {md_cell(', '.join(trace.get('models') or []) or '-')} |",
        f"| prompt versions | {md_cell(', '.join(trace.get('prompt_versions') or []) or '-')} |",
        f"| tokens | {token_totals(trace) or '-'} |",
        f"| cost | {money(trace.get('cost_usd'))} |",
        f"| steps | {trace['span_count']} ({trace['llm_calls']} LLM calls, {trace['tool_calls']} tool calls) |",
        "",
    ]
    err = trace.get("first_error")
    if err:
        said = " ".join(x for x in (err.get("error_type"), err.get("error_message")) if x)
        lines += [
            "## Where it failed",
            "",
            f"At {offset(err['offset_ms'])}, **{md_cell(err['kind'])} `{md_cell(err['name'])}`**"
            + (f": {md_cell(said)}" if said else "."),
            "",
        ]
    names = {s["span_id"]: s["name"] for s in steps}
    lines += [
        "**Critical path:** "
        + " → ".join(f"`{md_cell(names.get(s, s))}`" for s in trace.get("critical_path", [])),
        "",
        "## Steps",
        "",
        "| offset | duration | step | name | status |",
        "|---:|---:|---|---|---|",
    ]
    for s in steps:
        name = ("&nbsp;&nbsp;" * s["depth"]) + f"`{md_cell(s['name'])}`"
        status = f"**{s['status'].upper()}**" if s["status"] == "error" else s["status"]
        lines.append(
            f"| {offset(s['offset_ms'])} | {duration(s['duration_ms'])} | {md_cell(s['kind'])} | {name} | {status} |"
        )
    lines += ["", "## Step details", ""]
    judged = evaluations_by_span(replay)
    for s in steps:
        details = [
            inert(t.plain, keep_newlines=True)
            for t in detail_lines(s, full, where, evaluations=judged.get(s["span_id"], ()))
        ]
        if not details:
            continue
        lines.append(f"### {offset(s['offset_ms'])} {md_cell(s['kind'])} `{md_cell(s['name'])}`")
        lines.append("")
        lines.append(_block("\n".join(details), full))
        lines.append("")
    lines += _context_section("## Context", trace_context(replay, in_session), full)
    return "\n".join(lines) + "\n"


def _context_section(
    title: str, context: Mapping[str, Any], full: bool, traces: dict[str, int] | None = None
) -> list[str]:
    sections = [
        (t.plain if isinstance(t, Text) else str(t))
        for t in context_renderables(context, full, traces)
    ]
    return [title, "", _block("\n".join(sections), True), ""] if sections else []


def session_markdown(session: SessionReplay, full: bool) -> str:
    """A session as one Markdown document: every trace, then the session's context once."""
    info, replays = session["session"], session["traces"]
    parts = [f"# Session `{md_cell(info['session_id'])}` — {plural(len(replays), 'trace')}\n\n"]
    earlier: dict[str, str] = {}
    for i, r in enumerate(replays):
        parts.append(markdown(r, full, earlier, in_session=True))
        earlier |= step_places(r, f"trace {i + 1} ")
    context = _context_section(
        "## Session context", session.get("context") or {}, full, session_numbers(session)
    )
    if context:
        parts.append("\n".join(context) + "\n")
    return "".join(parts)


# --- a session as a chat (the TUI's Session screen) --------------------------------------------------

EVENT_MARK = {
    "chat.retry": "↺ retried", "chat.rephrase": "✎ rephrased", "session.abandoned": "✗ abandoned",
    "user.feedback": "feedback", "chat.csat": "CSAT", "chat.resolved": "✓ resolved",
}  # fmt: skip


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # parts: [{"type": "text", "text": …}, …]
        return " ".join(
            str(p.get("text") or p.get("content") or "") if isinstance(p, dict) else str(p)
            for p in content
        )
    return "" if content is None else str(content)


def turn_words(replay: Replay) -> tuple[str, str]:
    """A turn's user message (the last the first model call was given) and the answer (the
    last model call's text), each in a line; empty when the trace carries no content."""
    llm = [s for s in replay["steps"] if s.get("messages") or s.get("output")]
    asked = next(
        (
            _text_of(m.get("content"))
            for m in reversed(llm[0].get("messages") or [])
            if m.get("role") == "user"
        ),
        "",
    ) if llm else ""  # fmt: skip
    answered = ""
    for step in reversed(llm):
        texts = [
            _text_of(m.get("content"))
            for m in step.get("output") or []
            if m.get("role") in ("assistant", None)
        ]
        texts = [t for t in texts if t.strip()]
        if texts:
            answered = texts[-1]
            break
    return " ".join(asked.split()), " ".join(answered.split())


TURN_CHARS = 300  # of a message in the chat view; the turn's replay has it whole


def _said(text: str, missing: str) -> Text | tuple[str, str]:
    if not text:
        return (missing, "dim")
    return Text(inert(text if len(text) <= TURN_CHARS else text[: TURN_CHARS - 1] + "…"))


def session_turns(session: SessionReplay) -> list[RenderableType]:
    """Each trace of a session as a chat turn: when, status and duration, the user's message,
    the answer (with the error when the turn failed), then what the user did after it (retry,
    rephrase, thumbs, abandonment, CSAT) — one renderable per turn, in order."""
    from rich.console import Group

    context: Mapping[str, Any] = session.get("context") or {}
    events = context.get("session_events") or []
    traces = session["traces"]
    starts = [r["trace"]["start_time"] for r in traces]
    turns: list[RenderableType] = []
    for i, r in enumerate(traces):
        trace = r["trace"]
        asked, answered = turn_words(r)
        failed = trace["status"] == "error"
        lines: list[RenderableType] = [
            Text.assemble(
                (f"turn {i + 1} ", "bold"),
                (f"{trace['start_time']:%H:%M:%S}  {duration(trace['duration_ms'])}  ", "dim"),
                ("ERROR" if failed else "ok", "bold red" if failed else "green"),
                (f"  {trace['trace_id']}", "dim"),
            ),
            Text.assemble(("  user  ", "bold cyan"), _said(asked, "(no message recorded)")),
            Text.assemble(("  agent ", "bold magenta"), _said(answered, "(no answer recorded)")),
        ]
        if failed and trace.get("error_message"):
            lines.append(Text("  ✗ " + inert(str(trace.get("error_message"))), style="red"))
        end = starts[i + 1] if i + 1 < len(traces) else None
        for ev in events:
            mine = ev.get("trace_id") == trace["trace_id"]
            after = ev["time"] >= trace["start_time"] and (end is None or ev["time"] < end)
            shown = ev["name"] in EVENT_MARK or "feedback" in ev["name"] or "csat" in ev["name"]
            if not shown or not (mine or (after and not ev.get("trace_id"))):
                continue
            attrs = ", ".join(f"{k}={v}" for k, v in ev["attributes"].items() if k != "user.id")
            bad = ev["name"] == "session.abandoned" or "thumbs_down" in attrs
            lines.append(
                Text.assemble(
                    ("    ↳ ", "dim"),
                    (EVENT_MARK.get(ev["name"], ev["name"]), "bold red" if bad else "yellow"),
                    (f"  {inert(attrs)}" if attrs else "", "dim"),
                )
            )
        turns.append(Group(*lines))
    return turns
