"""``describe``: one trace as a compact plain-text summary within a token budget.

For a ticket or a coding agent: what was asked, what happened (the steps that matter), where it
failed, how it ended, what the user did next, and what changed around it. Built from the replay
data; sections are added in priority order and long text is cut so the whole fits the budget
(tokens counted as characters / 4, the usual rule of thumb for English and JSON).

A rendering of a replay like the others in ``present``, in plain text for a reader that is a
model or a ticket: its cuts and token figures are its own (whitespace collapsed, no thousands
separators), its durations ``format.duration``. Must not import typer, rich or textual.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiobs.present.format import duration, money

CHARS_PER_TOKEN = 4
IMPORTANT_KINDS = ("llm", "tool", "retrieval", "handoff", "guardrail", "agent", "chain", "rerank")


def _cut(text: Any, limit: int) -> str:
    s = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: max(0, limit - 1)] + "…"


def _secs(ms: float | None) -> str:
    return "?" if ms is None else duration(ms)


def _tokens(s: Mapping[str, Any]) -> str | None:
    """``562→6 tok``, ``?`` for a side not recorded; None when neither was."""
    given, taken = s.get("input_tokens"), s.get("output_tokens")
    if given is None and taken is None:
        return None
    return f"{'?' if given is None else given}→{'?' if taken is None else taken} tok"


def _step_line(s: Mapping[str, Any], width: int) -> str:
    head = f"+{s['offset_ms'] / 1000:.2f}s {s['kind']} {s['name']}"
    bits = []
    if s["kind"] == "llm":
        bits.append(", ".join(x for x in (s.get("model") or "?", _tokens(s)) if x))
        calls = [c for m in s.get("output", []) for c in m.get("tool_calls", [])]
        if calls:
            bits.append(
                "calls " + ", ".join(f"{c['name']}({_cut(c.get('arguments'), 60)})" for c in calls)
            )
        elif s.get("output"):
            bits.append("answers " + _cut(s["output"][-1].get("content", ""), width))
    elif s.get("tool"):
        t = s["tool"]
        bits.append(f"args {_cut(t.get('arguments'), 80)}")
        if t.get("result") is not None:
            bits.append(f"→ {_cut(t['result'], 100)}")
    elif s.get("retrieval"):
        docs = s["retrieval"]["documents"]
        if docs:
            top = max(docs, key=lambda d: d.get("score") or 0)
            bits.append(f"{len(docs)} docs, top {top.get('id')} ({top.get('score')})")
    elif s.get("handoff"):
        h = s["handoff"]
        bits.append(
            f"to {h.get('target') or 'human'}, queue {h.get('queue')}, reason {h.get('reason')}"
        )
    if s["status"] == "error":
        bits.append(
            "ERROR "
            + _cut(" ".join(x for x in (s.get("error_type"), s.get("error_message")) if x), 120)
        )
    bits.append(_secs(s["duration_ms"]))
    return head + ": " + "; ".join(b for b in bits if b)


def describe(replay: Mapping[str, Any], max_tokens: int = 800) -> str:
    budget = max(40, max_tokens) * CHARS_PER_TOKEN
    t, steps, ctx = replay["trace"], replay["steps"], replay.get("context") or {}
    service = " ".join(x for x in (t["service_name"], t.get("service_version")) if x)
    if t.get("environment"):
        service += f" ({t['environment']})"
    usage = [
        f"{t[key]:,} {side}"
        for key, side in (("input_tokens", "in"), ("output_tokens", "out"))
        if t.get(key) is not None
    ]
    spent = [" / ".join(usage) + " tokens"] if usage else []
    if t.get("cost_usd") is not None:
        spent.append(money(t["cost_usd"]))
    lines: list[str] = [
        f"Trace {t['trace_id']} — {service}, {t['start_time']:%Y-%m-%d %H:%M:%S}Z,"
        f" {_secs(t['duration_ms'])}, {t['status'].upper()}.",
        f"User {t.get('user_id') or '?'}, session {t.get('session_id') or '?'};"
        f" models {', '.join(t.get('models') or []) or '-'}; prompt {', '.join(t.get('prompt_versions') or []) or '-'}"
        + "".join(f"; {x}" for x in spent)
        + ".",
    ]
    llms = [s for s in steps if s["kind"] == "llm"]
    # What the user asked: the journey's first conversation (an agent run's own messages come
    # before its model calls in step order).
    asked = next(
        (
            m["content"]
            for s in steps
            if s["kind"] == "llm" or s["kind"] in ("agent", "chain")
            for m in reversed(s.get("messages", []))
            if m["role"] == "user" and m.get("content")
        ),
        None,
    )
    if asked is None:
        root_io = steps[0].get("io") or {}
        asked = root_io.get("input")
    lines.append("Asked: " + (_cut(asked, 240) if asked else "(no user message recorded)"))
    err = t.get("first_error")
    if err:
        lines.append(
            f"Failed at +{err['offset_ms'] / 1000:.2f}s in {err['kind']} {err['name']}: "
            + _cut(" ".join(x for x in (err.get("error_type"), err.get("error_message")) if x), 200)
        )
    answer = next(
        (
            m.get("content")
            for s in reversed(llms)
            for m in reversed(s.get("output", []))
            if m.get("content")
        ),
        None,
    )
    if answer:
        lines.append("Answer: " + _cut(answer, 240))
    handoff = next((s["handoff"] for s in steps if s.get("handoff")), None)
    if handoff:
        lines.append(
            f"Handed off to {handoff.get('target') or 'a human'} (queue {handoff.get('queue')}): {handoff.get('reason')}."
        )
    after = [e for e in ctx.get("session_events", []) if e.get("when") == "after"]
    if after:

        def ev(e: dict[str, Any]) -> str:
            extra = e["attributes"].get("feedback.rating") or e["attributes"].get("csat.score")
            return f"{e['name']}{'=' + extra if extra else ''} (+{e['offset_ms'] / 1000:.0f}s)"

        lines.append("User next: " + ", ".join(ev(e) for e in after[:8]) + ".")
    changes = ctx.get("changes") or []
    if changes:
        lines.append(
            "Changes before: "
            + "; ".join(
                f"{_cut(c.get('description') or c.get('kind'), 100)} ({duration(c['minutes_before'] * 60_000)} before)"
                for c in changes[-3:]
            )
            + "."
        )
    errors = [
        log for log in ctx.get("logs", []) if (log.get("severity") or "") in ("ERROR", "FATAL")
    ]
    if errors:
        lines.append(
            f"Error logs ({len(errors)}): "
            + "; ".join(_cut(f"{e['service_name']}: {e['body']}", 140) for e in errors[:3])
        )
    # Steps fill what the budget leaves after the summary lines (error logs go last, if room).
    errors_line = lines.pop() if errors else None
    used = sum(len(x) + 1 for x in lines) + 40

    # Which steps: tools and handoffs first, then model calls, retrieval and failed steps (their
    # HTTP/DB children last), then the rest; shown in time order.
    def rank(s: dict[str, Any]) -> int:
        if s["kind"] in ("tool", "handoff"):
            return 0
        if s["kind"] in ("llm", "retrieval") or (
            s["status"] == "error" and s["kind"] not in ("http", "db")
        ):
            return 1
        return 2

    candidates = [s for s in steps if s["kind"] in IMPORTANT_KINDS or s["status"] == "error"]
    picked: list[tuple[float, str]] = []
    for s in sorted(candidates, key=lambda s: (rank(s), s["offset_ms"])):
        line = _step_line(s, 160)
        if used + len(line) + 3 > budget:
            continue
        picked.append((s["offset_ms"], "  " + line))
        used += len(line) + 3
    shown = [line for _, line in sorted(picked, key=lambda p: p[0])]
    if errors_line and used + len(errors_line) + 1 <= budget:
        lines.append(errors_line)
    head = f"Steps ({len(shown)} of {len(steps)}; the rest: aiobs replay {t['trace_id'][:12]}):"
    fixed = 4 if err else 3
    out = "\n".join([*lines[:fixed], head, *shown, *lines[fixed:]])
    if len(out) > budget:
        out = out[: budget - 1] + "…"
    return out + "\n"
