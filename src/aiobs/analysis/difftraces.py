"""``diff-traces``: two journeys aligned step by step — what one did that the other did not.

Steps are aligned by (kind, name, tool) in causal order with a longest-common-subsequence match
(difflib), so an added retry or a different tool shows as an inserted or removed step, and matched
steps list what differs: status, error, model, prompt version, tokens, duration, tool arguments
and results, output text.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from aiobs.analysis.results import Replay, TraceDiff

SUMMARY_FIELDS = (
    "trace_id", "service_name", "service_version", "status", "duration_ms", "span_count",
    "llm_calls", "tool_calls", "input_tokens", "output_tokens", "cost_usd", "models",
    "prompt_versions", "session_id", "user_id", "start_time",
)  # fmt: skip
COMPARED = (
    "status",
    "error_type",
    "error_message",
    "model",
    "prompt_version",
    "finish_reason",
    "input_tokens",
    "output_tokens",
)
DURATION_CHANGE = 0.5  # a matched step's duration differs when it changed by half or more


def _key(step: Mapping[str, Any]) -> tuple[str, str, str]:
    # Model calls align by kind alone (their names carry the model, which is then a change, not a
    # different step); everything else by name and tool.
    if step["kind"] in ("llm", "embedding", "rerank"):
        return (step["kind"], "", "")
    return (step["kind"], step["name"], step.get("tool_name") or "")


def _output_text(step: Mapping[str, Any]) -> str | None:
    out = step.get("output") or []
    text = " ".join(m.get("content") or "" for m in out).strip()
    calls = [
        f"{c.get('name')}({json.dumps(c.get('arguments'), sort_keys=True)})"
        for m in out
        for c in m.get("tool_calls", [])
    ]
    joined = " ".join([text, *calls]).strip()
    return joined or None


def _changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    changes = [{"field": f, "a": a.get(f), "b": b.get(f)} for f in COMPARED if a.get(f) != b.get(f)]
    da, db = a["duration_ms"], b["duration_ms"]
    if max(da, db) > 0 and abs(db - da) / max(da, db, 1e-9) >= DURATION_CHANGE:
        changes.append({"field": "duration_ms", "a": da, "b": db})
    ta, tb = a.get("tool") or {}, b.get("tool") or {}
    for part in ("arguments", "result"):
        if ta.get(part) != tb.get(part):
            changes.append({"field": f"tool.{part}", "a": ta.get(part), "b": tb.get(part)})
    oa, ob = _output_text(a), _output_text(b)
    if oa != ob:
        changes.append({"field": "output", "a": oa, "b": ob})
    return changes


def _brief(step: Mapping[str, Any]) -> dict[str, Any]:
    keep = (
        "span_id",
        "kind",
        "name",
        "tool_name",
        "offset_ms",
        "duration_ms",
        "status",
        "model",
        "input_tokens",
        "output_tokens",
    )
    return {k: step.get(k) for k in keep}


def diff_traces(a: Replay, b: Replay) -> TraceDiff:
    """Align the steps of two replays (``analysis.replay.load_trace`` results)."""
    sa, sb = a["steps"], b["steps"]
    matcher = difflib.SequenceMatcher(
        a=[_key(s) for s in sa], b=[_key(s) for s in sb], autojunk=False
    )
    rows: list[dict[str, Any]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for x, y in zip(sa[i1:i2], sb[j1:j2], strict=True):
                changes = _changes(x, y)
                rows.append({"op": "changed" if changes else "same", "kind": x["kind"], "name": x["name"],
                             "a": _brief(x), "b": _brief(y), "changes": changes})  # fmt: skip
            continue
        for x in sa[i1:i2]:
            rows.append(
                {
                    "op": "removed",
                    "kind": x["kind"],
                    "name": x["name"],
                    "a": _brief(x),
                    "b": None,
                    "changes": [],
                }
            )
        for y in sb[j1:j2]:
            rows.append(
                {
                    "op": "added",
                    "kind": y["kind"],
                    "name": y["name"],
                    "a": None,
                    "b": _brief(y),
                    "changes": [],
                }
            )
    counts = {
        op: sum(r["op"] == op for r in rows) for op in ("same", "changed", "added", "removed")
    }
    return cast(
        "TraceDiff",
        {
            "a": {k: a["trace"].get(k) for k in SUMMARY_FIELDS},
            "b": {k: b["trace"].get(k) for k in SUMMARY_FIELDS},
            "summary": counts,
            "steps": rows,
        },
    )
