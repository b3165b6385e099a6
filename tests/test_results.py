"""The JSON contracts (``aiobs.analysis.results``) against the commands' real ``-f json`` output.

Every object of every command's JSON on the demo store has exactly its TypedDict's keys: all the
required ones, no key the TypedDict does not name, nested objects checked the same way; and each
key a TypedDict declares is seen in some output (a declared key nothing prints is a stale
contract). The keys the README documents for each command are among the TypedDict's.
"""

from __future__ import annotations

import re
import types
import typing
from collections import defaultdict
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from aiobs.analysis import results as r
from conftest import REPO, Cli

WEEK = "2026-11-08T00:00:00Z..2026-11-15T00:00:00Z"
BEFORE = "2026-11-11T19:58:00Z..2026-11-12T15:05:00Z"
AFTER = "2026-11-12T15:05:00Z..2026-11-13T10:12:00Z"


class Checker:
    """Walks a JSON value along a type, recording each TypedDict's keys as they are met."""

    def __init__(self) -> None:
        self.seen: dict[type, set[str]] = defaultdict(set)
        self.problems: list[str] = []

    def check(self, value: Any, tp: Any, where: str) -> None:
        if is_typeddict(tp):
            self._typeddict(value, tp, where)
            return
        origin, args = get_origin(tp), get_args(tp)
        if origin in (typing.Union, types.UnionType):
            if value is None:
                return
            arms = [a for a in args if a is not type(None)]
            shaped = [a for a in arms if is_typeddict(a) or get_origin(a) in (list, dict)]
            for arm in shaped:
                self.check(value, arm, where)
            return
        if origin is list and isinstance(value, list):
            for i, item in enumerate(value):
                self.check(item, args[0], f"{where}[{i}]")
        elif origin is dict and isinstance(value, dict):
            for k, item in value.items():
                self.check(item, args[1], f"{where}.{k}")

    def _typeddict(
        self, value: Any, tp: Any, where: str, extra: frozenset[str] = frozenset()
    ) -> None:
        if not isinstance(value, dict):
            self.problems.append(f"{where}: {tp.__name__} expected, got {type(value).__name__}")
            return
        keys = set(value) - extra
        required, optional = set(tp.__required_keys__), set(tp.__optional_keys__)
        if missing := required - keys:
            self.problems.append(f"{where}: {tp.__name__} lacks {sorted(missing)}")
        if unknown := keys - required - optional:
            self.problems.append(f"{where}: {tp.__name__} does not name {sorted(unknown)}")
        self.seen[tp] |= keys
        hints = get_type_hints(tp)
        for key in keys & set(hints):
            self.check(value[key], hints[key], f"{where}.{key}")

    def check_row(self, value: Any, tp: Any, where: str, groups: frozenset[str]) -> None:
        """A row keyed by ``groups`` besides its TypedDict's keys (a segment row)."""
        self._typeddict(value, tp, where, groups)


@pytest.fixture(scope="module")
def checked(demo: tuple[Path, dict[str, Any]]) -> Checker:
    """Every read command's JSON on the demo store, checked against its TypedDict."""
    db, _ = demo
    cli = Cli(db)
    checker = Checker()

    def ids(sql: str) -> list[str]:
        return [str(row["id"]) for row in cli.query(sql)]

    traces = ids(
        "(select trace_id id from ai_traces where status = 'error' order by start_time, trace_id"
        " limit 3) union all (select trace_id from ai_traces where status = 'ok' order by"
        " tool_calls desc, start_time, trace_id limit 3)"
    )
    traces += ids(
        "select distinct t.trace_id id from ai_traces t join ai_spans s using (trace_id)"
        " where s.step_kind in ('retrieval', 'handoff', 'guardrail', 'db', 'http', 'agent')"
        " order by 1 limit 6"
    )
    sessions = ids(
        "select session_id id from ai_traces where session_id is not null group by 1"
        " having count(*) >= 2 order by count(*) desc, 1 limit 2"
    )
    checker.check(cli.json("traces", "--since", WEEK, "-n", "200"), list[r.TraceRow], "traces")
    checker.check(
        cli.json("sessions", "--since", WEEK, "-n", "200"), list[r.SessionRow], "sessions"
    )
    for trace in traces:
        checker.check(cli.json("replay", trace), r.Replay, f"replay {trace}")
    checker.check(cli.json("replay", traces[0], "--no-context"), r.Replay, "replay --no-context")
    for session in sessions:
        checker.check(
            cli.json("replay", "--session", session), r.SessionReplay, f"replay --session {session}"
        )
    for by in ("model", "prompt_version", "service_version,workflow", "tool_name"):
        for i, row in enumerate(cli.json("segment", "--by", by)):
            # keyed, besides, by each evaluation's fail rate (a rate, or None where none judged)
            evaluations = {k for k in row if k.startswith("eval.") and k.endswith("_fail_rate")}
            assert all(row[k] is None or 0 <= row[k] <= 1 for k in evaluations)
            checker.check_row(
                row, r.SegmentRow, f"segment --by {by}[{i}]", frozenset(by.split(",")) | evaluations
            )
    checker.check(
        cli.json("diff", "--baseline", BEFORE, "--target", AFTER), r.Diff, "diff (windows)"
    )
    checker.check(
        cli.json(
            "diff", "--baseline", "prompt_version = 'v6'", "--target", "prompt_version = 'v7'"
        ),
        r.Diff,
        "diff (filters)",
    )
    checker.check(cli.json("diff-traces", traces[3], traces[0]), r.TraceDiff, "diff-traces")
    checker.check(cli.json("diff-traces", traces[0], traces[1]), r.TraceDiff, "diff-traces")
    checker.check(cli.json("scan", "--since", WEEK), r.Scan, "scan")
    checker.check(cli.json("scan", "--since", WEEK, "--by", "workflow,model"), r.Scan, "scan --by")
    checker.check(cli.json("stats"), r.Stats, "stats")
    return checker


def test_every_json_object_has_exactly_its_typeddicts_keys(checked: Checker) -> None:
    assert checked.problems == []


def test_every_declared_key_is_printed(checked: Checker) -> None:
    """A key no output has is a contract nothing keeps (or one the demo store cannot show)."""
    unseen = {
        tp.__name__: sorted(set(tp.__required_keys__ | tp.__optional_keys__) - keys)
        for tp, keys in checked.seen.items()
    }
    assert {name: keys for name, keys in unseen.items() if keys} == {}


def test_every_contract_is_checked(checked: Checker) -> None:
    """Each TypedDict of results.py that a command prints was met in the outputs above."""
    printed = {
        v
        for v in vars(r).values()
        if is_typeddict(v) and v.__module__ == r.__name__ and v is not r.Report
    }
    assert {tp.__name__ for tp in printed - set(checked.seen)} == set()


# The keys the README names for each command's JSON, as it names them (`key`).
DOCUMENTED: list[tuple[Any, list[str]]] = [
    (r.SessionRow, ["thumbs_down", "retries", "rephrases", "abandoned", "resolved", "csat"]),
    (r.SegmentRow, [
        "cost_usd", "cost_per_trace", "llm_calls_per_trace", "tool_calls_per_trace",
        "tool_error_rate", "handoff_rate", "response_chars", "retrieval_top_score", "eval_score",
        "eval_fail_rate", "thumbs_down_rate", "retry_rate", "rephrase_rate", "abandonment_rate",
        "csat", "sparkline",
    ]),
    (r.Diff, ["baseline", "target", "primary_metric", "design_effect", "metrics", "factors"]),
    (r.DiffMetric, [
        "name", "baseline", "target", "delta", "rel_change", "ci", "p_value", "q_value",
        "significant", "regression",
    ]),
    (r.DiffFactor, [
        "field", "value", "baseline_share", "target_share", "lift", "score", "kind", "examples",
    ]),
    (r.Incident, ["severity", "summary", "anomalies", "likely_causes", "impact", "examples"]),
    (r.Anomaly, ["metric", "segment", "observed", "expected", "score", "onset", "end", "kind"]),
    (r.LikelyCause, ["confidence"]),
    (r.Impact, ["traces", "sessions", "users", "signals", "extra_cost_usd"]),
    (r.Scan, ["window", "series_scanned"]),
    (r.Replay, ["trace", "steps", "context"]),
    (r.ReplayTrace, ["environment", "first_error", "critical_path", "root_span_id"]),
    (r.ReplayStep, [
        "span_id", "parent_span_id", "depth", "kind", "name", "service_name", "offset_ms",
        "duration_ms", "status", "error_type", "error_message", "on_critical_path", "events",
        "messages", "output", "tool", "retrieval", "handoff", "http", "db", "guardrail", "io",
        "reported_input_tokens", "reported_output_tokens", "reported_cost_usd", "attributes",
        "new_from", "continues",
    ]),
    (r.ReplayContext, ["logs", "session_events", "evaluations", "metrics", "changes"]),
    (r.SessionReplay, ["session", "traces", "context"]),
]  # fmt: skip


@pytest.mark.parametrize("tp, keys", DOCUMENTED, ids=[tp.__name__ for tp, _ in DOCUMENTED])
def test_the_readmes_documented_keys_are_in_the_contract(tp: Any, keys: list[str]) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z_]+)`", readme))
    assert [k for k in keys if k not in named] == [], "the README no longer names these"
    assert [k for k in keys if k not in tp.__required_keys__ | tp.__optional_keys__] == []
