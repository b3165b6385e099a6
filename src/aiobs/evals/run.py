"""``aiobs eval``: run the built-in evaluators over the LLM steps a filter selects and store each
verdict as an OTel evaluation event — a log record named ``gen_ai.evaluation.result`` with
``gen_ai.evaluation.name``, ``…score.value``, ``…score.label`` and ``…explanation``, linked to
the step's trace and span — exactly as imported results are, so segment, diff, scan, replay and
export read them without knowing who computed them.

The steps are read a trace at a time in one ordered pass over the LLM, retrieval and tool
spans (``load_answers``), so an answer is judged with the documents retrieved before it and the
tool results since the model's previous call. Storing is idempotent: a verdict of the same
evaluator version on the same span is already there and adds nothing; a new version replaces
its old results (``store_verdicts``). Our records carry the scope ``aiobs.eval`` and
``aiobs.evaluator.version``; imported results are never touched.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiobs.evals.builtin import (
    Answer,
    Document,
    Evaluator,
    ToolResult,
    Verdict,
    evaluate,
    prepare,
)

if TYPE_CHECKING:
    from aiobs.analysis.filters import TraceFilter
    from aiobs.backend import Backend
    from aiobs.evals.judge import Judge

SCOPE = "aiobs.eval"
EVENT = "gen_ai.evaluation.result"
BATCH = 50_000  # verdicts an INSERT (1M: 15.2 s in the 20k batches before parallel inserts)

_JSON_OUTPUT = frozenset({"json", "json_object", "json_schema"})


def _wants_json(attrs: Mapping[str, str]) -> bool:
    for key in (
        "gen_ai.output.type",
        "gen_ai.request.response_format",
        "gen_ai.openai.request.response_format",
    ):
        value = (attrs.get(key) or "").strip().lower()
        if value in _JSON_OUTPUT or value.startswith('{"type": "json') or '"json_schema"' in value:
            return True
    return False


_FORMAT_KEYS = ("gen_ai.request.response_format", "gen_ai.openai.request.response_format")


def _schema(attrs: Mapping[str, str]) -> Any:
    """The JSON schema a response format asked for: OpenAI's ``{"type": "json_schema",
    "json_schema": {"schema": …}}`` as recorded, or in OpenInference's invocation parameters;
    None when none was."""
    import json

    for key in (*_FORMAT_KEYS, "llm.invocation_parameters"):
        raw = attrs.get(key)
        if not raw or "schema" not in raw:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if key == "llm.invocation_parameters" and isinstance(value, dict):
            value = value.get("response_format")
        if isinstance(value, dict) and isinstance(value.get("json_schema"), dict):
            value = value["json_schema"].get("schema")
        elif isinstance(value, dict) and value.get("type") == "json_schema":
            value = value.get("schema")
        if isinstance(value, dict) and ("properties" in value or "type" in value):
            return value
    return None


def _text(messages: Sequence[Any], role: str | None = None) -> str:
    parts = [m.content for m in messages if role is None or m.role == role]
    return "\n".join(p for p in parts if p)


def _result_text(value: Any) -> str:
    import json

    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _error_payload(value: Any) -> bool:
    """A tool result that says it failed: ``{"error": …}``, ``{"ok": false}``, ``{"status": "error"}``."""
    if isinstance(value, dict):
        if value.get("error") or value.get("ok") is False or value.get("success") is False:
            return True
        return str(value.get("status", "")).lower() in ("error", "failed", "failure")
    return isinstance(value, str) and value.lower().startswith(("error:", "error -", "exception:"))


CHUNK_TRACES = 10_000  # traces whose spans are read (and sorted) in one query
SKEW = timedelta(minutes=5)  # how early a span may start before its trace (clock skew)


def _chunks(store: Backend, filt: TraceFilter) -> list[tuple[datetime, datetime, datetime]]:
    """The selected traces' time span cut into windows of about CHUNK_TRACES traces each, so
    each read sorts a window's spans, not the store's (1M spans in one ORDER BY held 1.5 GB):
    (first start, end of the window, the latest a span of a trace starting in it can start)."""
    where, params = filt.sql()
    table = "ai_traces" if filt.reads_cost else "aiobs_trace_facts"
    row = store.one(
        "SELECT min(start_time), max(start_time), count(*), max(duration_ms)"
        f" FROM {table} t WHERE {where}",
        params,
    )
    if not row or not row[2]:
        return []
    lo, hi, n, longest = row
    parts = max(1, -(-int(n) // CHUNK_TRACES))
    step = (hi - lo) / parts
    edges = [lo + step * i for i in range(parts)] + [hi + timedelta(microseconds=1)]
    # A span starts inside its trace (a trace's times are its spans' first start and last end),
    # so no later than its window's end plus the longest trace: bounding the span scan by that
    # lets the time index prune it (half a day of demo-x6 read in 0.14 s, 0.64-1.24 s without).
    reach = timedelta(milliseconds=float(longest or 0)) + SKEW
    return [(a, b, b + reach) for a, b in itertools.pairwise(edges)]


def _spans_sql(filt: TraceFilter) -> tuple[str, list[Any]]:
    """The LLM, retrieval and tool spans of the selected traces that start in a window (the
    last four parameters: the window, and the times its traces' spans start between), a trace's
    spans together and in time order."""
    where, params = filt.sql()
    table = "ai_traces" if filt.reads_cost else "aiobs_trace_facts"
    return (
        f"""SELECT s.trace_id, s.span_id, s.step_kind, s.status, s.finish_reason, s.error_message,
  s.tool_name, epoch_ns(s.end_time), s.service_name, s.model, to_json(s.attributes)::VARCHAR
FROM ai_spans s
WHERE s.trace_id IN (
    SELECT t.trace_id FROM {table} t WHERE {where} AND t.start_time >= ? AND t.start_time < ?)
  AND s.start_time >= ? AND s.start_time <= ? AND s.step_kind IN ('llm', 'retrieval', 'rerank', 'tool')
ORDER BY s.trace_id, s.start_time, s.span_id""",
        list(params),
    )


def _spans(store: Backend, filt: TraceFilter) -> Iterator[tuple[Any, ...]]:
    sql, params = _spans_sql(filt)
    for lo, hi, last_start in _chunks(store, filt):
        bounds = [lo, hi, lo - SKEW, last_start]
        for batch in store.batches(sql, [*params, *bounds], size=4096):
            yield from batch


def load_answers(store: Backend, filt: TraceFilter) -> Iterator[Answer]:
    """The LLM answers of the traces ``filt`` selects, each with its context, in trace order."""
    return answers_of(_spans(store, filt))


def answers_of(rows: Iterable[tuple[Any, ...]]) -> Iterator[Answer]:
    """The answers in span rows as ``_spans_sql`` selects them (whole traces, in order)."""
    import orjson  # the attributes are DuckDB's to_json: always valid JSON

    from aiobs.semantic import content as c

    trace = None
    documents: list[Document] = []
    retrieved = False
    tools: list[ToolResult] = []
    for row in rows:
        (
            trace_id,
            span_id,
            kind,
            status,
            finish,
            error,
            tool_name,
            end,
            service,
            model,
            attributes,
        ) = row
        if trace_id != trace:
            trace, documents, retrieved, tools = trace_id, [], False, []
        attrs = orjson.loads(attributes) if attributes else {}
        if kind in ("retrieval", "rerank"):
            retrieved = True
            found = c.documents(attrs)
            if found:  # a rerank's documents replace the retrieval's they reorder
                documents = [Document(d.id, d.score, d.content) for d in found]
        elif kind == "tool":
            call = c.tool_call(attrs)
            result = call["result"]
            failed = status == "error" or _error_payload(result)
            text = _result_text(result) or (error or "")
            tools.append(ToolResult(tool_name or call["name"], failed, text, error))
        else:
            inputs, outputs = c.messages(attrs)
            schema = _schema(attrs)
            calls = sum(len(m.tool_calls) for m in outputs)
            yield Answer(
                trace_id=trace_id,
                span_id=span_id,
                text=_text(outputs, "assistant") or _text(outputs),
                time=end,
                service_name=service,
                finish_reason=finish,
                user_text=next(
                    (m.content for m in reversed(inputs) if m.role == "user" and m.content), ""
                ),
                documents=tuple(documents),
                retrieved=retrieved,
                tools=tuple(tools),
                wants_json=schema is not None or _wants_json(attrs),
                schema=schema,
                tool_calls=calls,
                model=model,
                inputs=tuple(inputs),
                outputs=tuple(outputs),
            )
            tools = []  # the next answer follows the tool calls this one asked for


EXAMPLES = 5


@dataclass
class VerdictColumns:
    """Verdicts with what storing one needs (its answer's step, time and service), as columns:
    lists of plain values pickle cheaply between processes and become an Arrow table as is."""

    time: list[int | None] = field(default_factory=list)  # ns since the epoch
    trace_id: list[str] = field(default_factory=list)
    span_id: list[str] = field(default_factory=list)
    service: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    version: list[str] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    score: list[str | None] = field(default_factory=list)  # as text, as OTel attributes are
    explanation: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.name)

    def add(self, answer: Answer, v: Verdict) -> None:
        self.time.append(answer.time)
        self.trace_id.append(answer.trace_id)
        self.span_id.append(answer.span_id)
        self.service.append(answer.service_name or "")
        self.name.append(v.name)
        self.version.append(v.version)
        self.label.append(v.label)
        self.score.append(None if v.score is None else repr(float(v.score)))
        self.explanation.append(v.explanation)

    def extend(self, other: VerdictColumns) -> None:
        for key, values in vars(other).items():
            getattr(self, key).extend(values)


@dataclass
class Tally:
    """Verdicts on a run of answers: per evaluator how many it judged and failed, and its first
    failures; with ``columns``, the verdicts themselves, to store."""

    answers: int = 0
    judged: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    columns: VerdictColumns | None = None

    def add(self, answer: Answer, v: Verdict) -> None:
        self.judged[v.name] = self.judged.get(v.name, 0) + 1
        if v.label == "fail":
            self.failed[v.name] = self.failed.get(v.name, 0) + 1
            examples = self.examples.setdefault(v.name, [])
            if len(examples) < EXAMPLES:
                examples.append(
                    {"trace_id": answer.trace_id, "span_id": answer.span_id,
                     "explanation": v.explanation}
                )  # fmt: skip
        if self.columns is not None:
            self.columns.add(answer, v)

    def merge(self, other: Tally) -> None:
        """Add ``other``'s, which came after this one's answers."""
        self.answers += other.answers
        for name, n in other.judged.items():
            self.judged[name] = self.judged.get(name, 0) + n
        for name, n in other.failed.items():
            self.failed[name] = self.failed.get(name, 0) + n
        for name, found in other.examples.items():
            examples = self.examples.setdefault(name, [])
            examples += found[: EXAMPLES - len(examples)]
        if self.columns is not None and other.columns is not None:
            self.columns.extend(other.columns)


@dataclass
class EvalSummary:
    """What ``run`` did: per evaluator, the answers judged and failed, a few failed examples."""

    answers: int = 0
    seconds: float = 0.0
    written: int = 0
    replaced: int = 0
    workers: int = 1
    evaluators: dict[str, dict[str, Any]] = field(default_factory=dict)


PREPARE_ANSWERS = 1000  # answers prepared together in one process (see builtin.prepare)
UNIT_ROWS = 2000  # span rows (whole traces) a worker judges per task
PARALLEL_FROM = 10_000  # traces; at 4k two workers gained nothing (1.14 vs 1.11 s), at 16k 1.45x


def workers_for(store: Backend, filt: TraceFilter, requested: int | None) -> int:
    """How many processes judge: ``requested``, else one per core when the selection is big
    enough to repay starting them (about 0.3 s each)."""
    import os

    if requested is not None:
        return max(1, requested)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not cores or cores < 2:
        return 1
    where, params = filt.sql()
    table = "ai_traces" if filt.reads_cost else "aiobs_trace_facts"
    row = store.one(f"SELECT count(*) FROM {table} t WHERE {where}", params)
    return min(cores, 8) if row and int(row[0]) >= PARALLEL_FROM else 1


def _batched(items: Iterable[Answer], size: int) -> Iterator[list[Answer]]:
    """``items`` in lists of ``size`` (itertools.batched is Python 3.12's)."""
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _units(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    """Rows cut into tasks of about UNIT_ROWS, never inside a trace."""
    unit: list[tuple[Any, ...]] = []
    for row in rows:
        if len(unit) >= UNIT_ROWS and row[0] != unit[-1][0]:
            yield unit
            unit = []
        unit.append(row)
    if unit:
        yield unit


_WORKER: tuple[Sequence[Evaluator], bool] = ((), False)


def _start_worker(evaluators: Sequence[Evaluator], keep: bool) -> None:
    global _WORKER
    _WORKER = (evaluators, keep)


def _judge_unit(rows: list[tuple[Any, ...]]) -> Tally:
    """In a worker process: every verdict on the answers in ``rows``."""
    evaluators, keep = _WORKER
    tally = Tally(columns=VerdictColumns() if keep else None)
    answers = list(answers_of(rows))
    prepare(answers, evaluators)
    for answer in answers:
        tally.answers += 1
        for v in evaluate(answer, evaluators):
            tally.add(answer, v)
    return tally


def _in_workers(
    rows: Iterable[tuple[Any, ...]], evaluators: Sequence[Evaluator], keep: bool, workers: int
) -> Iterator[Tally]:
    """``_judge_unit`` over ``rows`` in ``workers`` processes, results in row order. At most
    two tasks per worker are in flight, so the store is read only as fast as it is judged."""
    import multiprocessing
    from collections import deque

    # spawn, not fork: the parent runs DuckDB's threads, and a forked child may inherit a lock
    # one of them held. (A script calling run(workers=2) needs the usual __main__ guard.)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, _start_worker, (tuple(evaluators), keep)) as pool:
        pending: deque[Any] = deque()
        for unit in _units(rows):
            pending.append(pool.apply_async(_judge_unit, (unit,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def run(
    store: Backend,
    filt: TraceFilter,
    evaluators: Sequence[Evaluator],
    *,
    write: Any = None,
    judge: Judge | None = None,
    workers: int = 1,
) -> EvalSummary:
    """Judge every answer ``filt`` selects with ``evaluators`` (and ``judge``'s dimensions);
    ``write(columns)`` stores a batch of ``VerdictColumns`` (``store_verdicts`` on a writable
    store), None to only count. ``workers`` > 1 judges in that many processes (not with a
    judge: it waits on the network, not the CPU, and needs the whole answers)."""
    started = time.perf_counter()
    entries = [(e.name, e.version, e.what) for e in evaluators]
    if judge is not None:
        from aiobs.evals.judge import RUBRICS, judge_name

        entries += [(judge_name(d), judge.version, RUBRICS[d][0]) for d in judge.dimensions]
    summary = EvalSummary()
    keep = write is not None  # --dry-run keeps no verdicts: 200k answers held 600 MB
    tally = Tally(columns=VerdictColumns() if keep else None)
    waiting: list[Answer] = []  # answers for the judge, sent a batch at a time

    def flush(at_least: int) -> None:
        if tally.columns is not None and len(tally.columns) >= at_least:
            w, r = write(tally.columns)
            summary.written, summary.replaced = summary.written + w, summary.replaced + r
            tally.columns = VerdictColumns()

    def send_to_judge() -> None:
        if judge is not None and waiting:
            for answer, v in judge.judge(waiting):
                tally.add(answer, v)
            waiting.clear()

    if judge is None and workers > 1:
        summary.workers = workers
        for part in _in_workers(_spans(store, filt), evaluators, keep, workers):
            tally.merge(part)
            flush(BATCH)
    else:
        for batch in _batched(load_answers(store, filt), PREPARE_ANSWERS):
            prepare(batch, evaluators)
            for answer in batch:
                tally.answers += 1
                for v in evaluate(answer, evaluators):
                    tally.add(answer, v)
                if judge is not None:
                    waiting.append(answer)
                    if len(waiting) >= judge.config.concurrency * 8:
                        send_to_judge()
                flush(BATCH)
        send_to_judge()
    flush(1)
    summary.answers = tally.answers
    for name, version, what in entries:
        judged, failed = tally.judged.get(name, 0), tally.failed.get(name, 0)
        summary.evaluators[name] = {
            "version": version,
            "what": what,
            "judged": judged,
            "failed": failed,
            "examples": tally.examples.get(name, []),
            "fail_rate": failed / judged if judged else None,
        }
    summary.seconds = time.perf_counter() - started
    return summary
