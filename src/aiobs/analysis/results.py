"""The JSON contracts of the read commands, as TypedDicts: what scripts may rely on.

Each TypedDict names exactly the keys of a result as the analysis returns it and ``-f json``
prints it (``NotRequired`` keys appear only in some results: a step's content by its kind, a
cause's details by its kind). Values are typed as the analysis returns them, before
``present.format.jsonable`` writes them (times are ``datetime``, printed as ISO-8601 UTC).
tests/test_results.py checks every command's real JSON output against these key sets and the
README's documented keys against them.

Which analysis function returns which (annotating them is the analysis modules' part):

- ``browse.list_traces`` → ``list[TraceRow]``; ``browse.list_sessions`` → ``list[SessionRow]``
- ``replay.load_trace`` → ``Replay``; ``replay.load_session`` → ``SessionReplay``
- ``segment.segment`` → ``(names, list[SegmentRow])``, each row also keyed by the group names
- ``diff.diff`` → ``Diff``; ``difftraces.diff_traces`` → ``TraceDiff``
- ``scan.scan`` → ``Scan`` (``Incident`` from ``incidents``); ``stats.store_stats`` → ``Stats``
- ``report.incident_report`` → ``Report``

Imports only the standard library (and nothing at run time beyond ``typing``).
"""

# No ``from __future__ import annotations``: Python 3.11 sees ``NotRequired`` in a TypedDict only
# in evaluated annotations (``__optional_keys__``, which tests/test_results.py checks).
from datetime import datetime
from typing import Any, NotRequired, TypedDict

# --- traces and sessions (``traces -f json``, ``sessions -f json``) ------------------------------


class TraceRow(TypedDict):
    """One ``ai_traces`` row (``semantic.views.AI_TRACES_COLUMNS``)."""

    trace_id: str
    start_time: datetime
    end_time: datetime
    duration_ms: float
    service_name: str
    service_version: str | None
    root_name: str | None
    status: str
    error_count: int
    span_count: int
    llm_calls: int
    tool_calls: int
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    models: list[str] | None
    prompt_versions: list[str] | None
    session_id: str | None
    user_id: str | None


class SessionRow(TypedDict):
    """One conversation (``browse.SESSION_COLUMNS``) with the user signals of its events."""

    session_id: str
    user_id: str | None
    start_time: datetime
    end_time: datetime
    duration_ms: float
    traces: int
    errors: int
    services: list[str] | None
    models: list[str] | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    thumbs_down: int
    retries: int
    rephrases: int
    abandoned: bool
    resolved: bool | None
    csat: float | None


# --- replay (``replay -f json``, ``replay --session -f json``, ``replay -f jsonl``) --------------


class FirstError(TypedDict):
    span_id: str
    offset_ms: float
    kind: str
    name: str
    error_type: str | None
    error_message: str | None


class ReplayTrace(TraceRow):
    """The replayed trace: its ``ai_traces`` row and where it failed, its critical path."""

    environment: str | None
    first_error: FirstError | None
    critical_path: list[str]
    root_span_id: str | None


class ToolCall(TypedDict):
    id: str | None
    name: str | None
    arguments: Any


class Message(TypedDict):
    role: str
    content: Any
    finish_reason: NotRequired[str | None]
    tool_call_id: NotRequired[str | None]
    tool_calls: NotRequired[list[ToolCall]]


class StepEvent(TypedDict):
    name: str
    offset_ms: float
    attributes: dict[str, Any]


class ToolInfo(TypedDict):
    name: str | None
    call_id: str | None
    arguments: Any
    result: Any


class Document(TypedDict):
    id: str | None
    score: float | None
    content: str | None


class Retrieval(TypedDict):
    query: str | None
    documents: list[Document]


class Handoff(TypedDict):
    target: str | None
    queue: str | None
    reason: str | None
    ticket: str | None


class Http(TypedDict):
    method: str | None
    target: str | None
    server: str | None
    status_code: Any


class Db(TypedDict):
    system: str | None
    operation: str | None
    collection: str | None
    query: str | None
    server: str | None


class Guardrail(TypedDict):
    name: str | None
    decision: str | None
    categories: Any


class StepIO(TypedDict):
    input: Any
    output: Any


class ReplayStep(TypedDict):
    """One step of a replay: the span's canonical fields, then its content by kind."""

    span_id: str
    parent_span_id: str | None
    depth: int
    kind: str
    name: str
    service_name: str
    service_version: str | None
    offset_ms: float
    duration_ms: float
    status: str
    error_type: str | None
    error_message: str | None
    on_critical_path: bool
    agent_name: str | None
    provider: str | None
    model: str | None
    prompt_name: str | None
    prompt_version: str | None
    tool_name: str | None
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    ttft_ms: float | None
    reported_input_tokens: int | None
    reported_output_tokens: int | None
    reported_cost_usd: float | None
    events: list[StepEvent]
    attributes: dict[str, Any]
    resource_attributes: dict[str, Any]
    # By kind: model calls (and agent runs that record their conversation) have messages and
    # output, and new_from/continues (the messages an earlier call already showed).
    messages: NotRequired[list[Message]]
    output: NotRequired[list[Message]]
    new_from: NotRequired[int]
    continues: NotRequired[str | None]
    tool: NotRequired[ToolInfo]
    retrieval: NotRequired[Retrieval]
    handoff: NotRequired[Handoff]
    http: NotRequired[Http]
    db: NotRequired[Db]
    guardrail: NotRequired[Guardrail]
    io: NotRequired[StepIO]


class LogRecord(TypedDict):
    time: datetime
    offset_ms: float
    severity: str | None
    service_name: str | None
    event_name: str | None
    body: str | None
    span_id: str | None
    attributes: dict[str, Any]


class SessionEvent(TypedDict):
    time: datetime
    offset_ms: float
    when: str
    name: str
    body: str | None
    trace_id: str | None
    attributes: dict[str, Any]


class Evaluation(TypedDict):
    time: datetime
    name: str | None
    score: float | None
    label: str | None
    explanation: str | None
    span_id: str | None


class ContextMetric(TypedDict):
    name: str
    service_name: str
    unit: str | None
    attributes: dict[str, Any]
    around: float | None
    peak: float | None
    baseline: float | None
    ratio: float | None


class Change(TypedDict):
    time: datetime
    kind: str | None
    service_name: str | None
    version: str | None
    description: str | None
    minutes_before: float


class ReplayContext(TypedDict):
    """What happened around a trace (a session's context has no logs and evaluations)."""

    logs: NotRequired[list[LogRecord]]
    session_events: list[SessionEvent]
    evaluations: NotRequired[list[Evaluation]]
    metrics: list[ContextMetric]
    changes: list[Change]


class Replay(TypedDict):
    """``load_trace``: the trace, its steps, and (unless ``--no-context``) its context."""

    trace: ReplayTrace
    steps: list[ReplayStep]
    context: NotRequired[ReplayContext]


class SessionInfo(TypedDict):
    session_id: str
    user_id: str | None
    traces: int
    start_time: datetime
    end_time: datetime


class SessionReplay(TypedDict):
    """``load_session``: the session, each trace's replay, and the session's context."""

    session: SessionInfo
    traces: list[Replay]
    context: NotRequired[ReplayContext]


# --- segment (``segment -f json``) ---------------------------------------------------------------


class SegmentRow(TypedDict):
    """A group's metrics (``segment.METRICS``) and its traces per bucket; the row is also keyed
    by each ``--by`` name (``model``, ``prompt_version``, ``attr['k']`` …) and by each
    evaluation's ``eval.<name>_fail_rate``, which no TypedDict can list."""

    traces: int
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    tokens_per_trace: float | None
    cost_usd: float | None
    cost_per_trace: float | None
    llm_calls_per_trace: float | None
    tool_calls_per_trace: float | None
    tool_error_rate: float | None
    handoff_rate: float | None
    thumbs_down_rate: float | None
    retry_rate: float | None
    rephrase_rate: float | None
    abandonment_rate: float | None
    csat: float | None
    response_chars: float | None
    retrieval_top_score: float | None
    eval_score: float | None
    eval_fail_rate: float | None
    sparkline: list[int]


# --- diff (``diff -f json``) ---------------------------------------------------------------------


class DiffSide(TypedDict):
    """A side of the comparison: a window (with its ends) or a filter, and its traces."""

    kind: str
    text: str
    traces: int
    since: NotRequired[datetime]
    until: NotRequired[datetime]


class DiffMetric(TypedDict):
    name: str
    baseline: float | None
    target: float | None
    baseline_n: int
    target_n: int
    delta: float | None
    rel_change: float | None
    ci: list[float] | None
    p_value: float | None
    q_value: float | None
    significant: bool
    regression: bool
    higher_is_worse: bool | None


class FactorExamples(TypedDict):
    baseline: list[str]
    target: list[str]


class DiffFactor(TypedDict):
    field: str
    value: str
    kind: str
    baseline_share: float
    target_share: float
    lift: float | None
    baseline_value: float | None
    target_value: float | None
    rate: float
    mix: float
    surprise: float
    explained: float | None
    score: float
    examples: FactorExamples


class Diff(TypedDict):
    baseline: DiffSide
    target: DiffSide
    primary_metric: str | None
    design_effect: float
    metrics: list[DiffMetric]
    factors: list[DiffFactor]


# --- diff-traces (``diff-traces -f json``) -------------------------------------------------------


class TraceSummary(TypedDict):
    """A ``TraceRow``'s ``difftraces.SUMMARY_FIELDS``, each side of ``diff-traces``."""

    trace_id: str
    start_time: datetime
    duration_ms: float
    service_name: str
    service_version: str | None
    status: str
    span_count: int
    llm_calls: int
    tool_calls: int
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    models: list[str] | None
    prompt_versions: list[str] | None
    session_id: str | None
    user_id: str | None


class AlignedSide(TypedDict):
    span_id: str
    kind: str
    name: str
    offset_ms: float
    duration_ms: float
    status: str
    model: str | None
    tool_name: str | None
    input_tokens: int | None
    output_tokens: int | None


class FieldChange(TypedDict):
    field: str
    a: Any
    b: Any


class AlignedStep(TypedDict):
    op: str  # same, changed, added (only in B), removed (only in A)
    kind: str
    name: str
    a: AlignedSide | None
    b: AlignedSide | None
    changes: list[FieldChange]


class AlignSummary(TypedDict):
    same: int
    changed: int
    added: int
    removed: int


class TraceDiff(TypedDict):
    a: TraceSummary
    b: TraceSummary
    summary: AlignSummary
    steps: list[AlignedStep]


# --- scan (``scan -f json``) ---------------------------------------------------------------------


class ScanWindow(TypedDict):
    since: datetime
    until: datetime
    history_since: datetime
    bucket_minutes: float


class Anomaly(TypedDict):
    metric: str
    layer: str  # ai or infra
    segment: dict[str, str]
    observed: float
    expected: float
    change: float
    direction: str
    score: float
    onset: datetime
    end: datetime | None
    kind: str  # shift, spike, new-segment, outlier
    traces: int


class LikelyCause(TypedDict):
    """A cause; what it names beyond its description depends on its ``kind``: a deployment's
    ``id``, ``service`` and ``time``; a factor's ``field`` and ``value``; a condition's
    ``field`` and ``threshold``; co-moving infra's ``service``."""

    kind: str
    confidence: float
    description: str
    evidence: list[str]
    id: NotRequired[str]
    service: NotRequired[str]
    time: NotRequired[datetime]
    field: NotRequired[str]
    value: NotRequired[str]
    threshold: NotRequired[float]


class ImpactSignal(TypedDict):
    during: float | None
    normal: float | None
    ratio: float | None
    events: int


class Impact(TypedDict):
    traces: int
    sessions: int
    users: int
    signals: dict[str, ImpactSignal]
    extra_cost_usd: float | None


class Incident(TypedDict):
    id: str
    severity: str  # info, warning, critical
    start: datetime
    end: datetime | None
    ongoing: bool
    duration_minutes: float | None
    segment: dict[str, str]
    symptom: str
    summary: str
    anomalies: list[Anomaly]
    likely_causes: list[LikelyCause]
    impact: Impact
    examples: list[str]


class Scan(TypedDict):
    window: ScanWindow
    series_scanned: int
    anomalies_found: int
    incidents: list[Incident]


# --- stats (``stats -f json``) -------------------------------------------------------------------


class SignalCount(TypedDict):
    """Rows of a signal table; ``first``/``last`` where the table has a time."""

    signal: str
    count: int
    first: NotRequired[datetime | None]
    last: NotRequired[datetime | None]


class ServiceCount(TypedDict):
    service_name: str
    service_version: str | None
    spans: int
    traces: int


class ModelUsage(TypedDict):
    provider: str | None
    model: str | None
    calls: int
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


class StepKindCount(TypedDict):
    step_kind: str
    spans: int


class FieldCoverage(TypedDict):
    field: str
    share: float
    steps: int


class ConventionCount(TypedDict):
    convention: str
    spans: int


class Coverage(TypedDict):
    llm_steps: int
    fields: list[FieldCoverage]
    conventions: list[ConventionCount]


class IngestCounts(TypedDict):
    files: int
    rejected: int
    redacted_files: int


class Stats(TypedDict):
    store: str
    schema_version: int
    signals: list[SignalCount]
    services: list[ServiceCount]
    models: list[ModelUsage]
    step_kinds: list[StepKindCount]
    coverage: Coverage
    # None where the engine keeps no record of ingested files (Capabilities.ingest_log).
    ingests: IngestCounts | None


# --- the export report (``export --to markdown``; data, not JSON) ---------------------------------


class Report(TypedDict):
    selected: int
    traces: list[TraceRow]
    failed: int
    detailed: list[Replay]
