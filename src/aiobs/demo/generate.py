"""The demo world's generator: Acme Support's week as OTLP JSON Lines, deterministic for a seed.

What it writes, per UTC day, into one collector-file-exporter-style file (signals mixed line by line):
- user behaviour (service ``acme-web``): page views, Web Vitals, chat opened, message sent, response
  shown, thumbs up/down, retry, rephrase, resolved, abandonment, CSAT — log records with an event name,
  ``session.id``/``user.id``, and the trace id where a message started a trace;
- agent traces: ``support-chat`` in OTel GenAI conventions (agent, guardrail, embeddings, retrieval,
  rerank, chat, tools, handoff) and ``order-assistant`` in OpenInference conventions, with HTTP client
  spans to the tool backends and their server spans;
- application logs (INFO/WARN/ERROR with trace/span ids), deployment and config-change events, online
  evaluation results (``gen_ai.evaluation.result``);
- infrastructure metrics per minute: CPU and memory per service, model-gateway GPU, vector-DB query
  latency, handoff queue depth (gauges/sums), and payments-api request-duration histograms built
  from the generated server spans.

Randomness: every session draws from its own RNG, seeded from (seed, hour, index), and every decision
about a planted incident from a second per-session RNG that is consumed identically whether incidents
are on or off — so ``--no-incidents`` yields the same world with only the incidents' effects missing.

Must not import typer, rich or textual.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from aiobs.backend import gc_paused
from aiobs.demo import catalogue as cat
from aiobs.demo.world import (
    CLAUDE_AFTER,
    CLAUDE_BEFORE,
    DAY_NS,
    HOUR_NS,
    NS,
    SESSIONS_PER_DAY,
    WorldPlan,
)

MS = 1_000_000
MINUTE_NS = 60 * NS
# One OTLP line holds at most this many spans/records, like a collector batch processor.
BATCH = 400

SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 1, 2, 3
SEVERITY = {"INFO": 9, "WARN": 13, "ERROR": 17}

SUPPORT_SCOPE = ("opentelemetry.instrumentation.genai", "0.3b0")
ORDERS_SCOPE = ("openinference.instrumentation.llama_index", "4.3.1")
HTTP_CLIENT_SCOPE = ("opentelemetry.instrumentation.httpx", "0.54b0")
HTTP_SERVER_SCOPE = ("opentelemetry.instrumentation.fastapi", "0.54b0")
DB_SCOPE = ("opentelemetry.instrumentation.qdrant", "0.2.0")
WEB_SCOPE = ("acme.web.analytics", "2.4.0")
APP_LOG_SCOPE = ("acme.app", "")
INFRA_SCOPE = ("acme.infra", "1.0.0")

SDK_LANGUAGE = {"acme-web": "webjs"}


# --- OTLP value encoding -------------------------------------------------------------------------


def _value(v: Any) -> dict[str, Any]:
    # Exact type checks, most common first: this runs for every attribute of every record
    # (~40% of generation time with isinstance chains).
    t = type(v)
    if t is str:
        return {"stringValue": v}
    if t is int:
        return {"intValue": str(v)}
    if t is float:
        return {"doubleValue": v}
    if t is bool:
        return {"boolValue": v}
    if t is list or t is tuple:
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    return {"stringValue": str(v)}


def _attrs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in d.items() if v is not None]


def _json(v: Any) -> str:
    return orjson.dumps(v).decode()


# --- the output: batches of OTLP per resource, flushed as JSON lines -------------------------------


# Per signal: the OTLP envelope key, the scope-block key, the record-list key.
SIGNALS = {
    "spans": ("resourceSpans", "scopeSpans", "spans"),
    "logs": ("resourceLogs", "scopeLogs", "logRecords"),
    "metrics": ("resourceMetrics", "scopeMetrics", "metrics"),
}
BatchKey = tuple[str, str, str, str, str]  # signal, service, version, scope name, scope version


# Attribute values up to this long are rendered once per day and shared (see Emitter.attrs);
# longer ones (messages, documents, tool results) almost never repeat.
SHARED_VALUE_MAX_CHARS = 200


@dataclass
class Emitter:
    """Collects spans, log records and metrics per (resource, scope) and renders OTLP JSON lines."""

    lines: list[bytes] = field(default_factory=list)
    batches: dict[BatchKey, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    rendered: dict[tuple[str, str | int], orjson.Fragment] = field(default_factory=dict)

    def attrs(self, d: dict[str, Any]) -> list[Any]:
        """``_attrs(d)``, the same bytes once rendered, with each (key, string or int value) entry
        rendered to JSON once and shared: nine in ten of a day's entries repeat one seen before
        (operation names, models, session and user ids), and building and serialising them again
        was most of the attribute encoding's cost. Floats and bools are never shared: ``1 == 1.0
        == True`` and ``0.0 == -0.0``, so as keys they would collide."""
        out: list[Any] = []
        rendered = self.rendered
        for k, v in d.items():
            t = type(v)
            if (t is str and len(v) <= SHARED_VALUE_MAX_CHARS) or t is int:
                entry = rendered.get((k, v))
                if entry is None:
                    entry = orjson.Fragment(orjson.dumps({"key": k, "value": _value(v)}))
                    rendered[(k, v)] = entry
                out.append(entry)
            elif v is not None:
                out.append({"key": k, "value": _value(v)})
        return out

    def spans(self, spans: list[tuple[BatchKey, dict[str, Any]]]) -> None:
        for key, span in spans:
            self._add(key, span)

    def log(
        self, service: str, version: str, scope: tuple[str, str], record: dict[str, Any]
    ) -> None:
        self._add(("logs", service, version, scope[0], scope[1]), record)

    def metrics(self, service: str, version: str, metrics: list[dict[str, Any]]) -> None:
        self._render(("metrics", service, version, *INFRA_SCOPE), metrics)

    def _add(self, key: BatchKey, item: dict[str, Any]) -> None:
        batch = self.batches[key]
        batch.append(item)
        if len(batch) >= BATCH:
            self._render(key, self.batches.pop(key))

    def _render(self, key: BatchKey, items: list[dict[str, Any]]) -> None:
        signal, service, version, scope_name, scope_version = key
        envelope, block, records = SIGNALS[signal]
        scope = (
            {"name": scope_name, "version": scope_version}
            if scope_version
            else {"name": scope_name}
        )
        resource = {
            "attributes": _attrs(
                {
                    "service.name": service,
                    "service.namespace": "acme",
                    "service.version": version,
                    "deployment.environment.name": "prod",
                    "telemetry.sdk.language": SDK_LANGUAGE.get(service, "python"),
                    "cloud.region": "eu-west-1",
                }
            )
        }
        doc = {envelope: [{"resource": resource, block: [{"scope": scope, records: items}]}]}
        self.lines.append(orjson.dumps(doc))

    def take(self) -> list[bytes]:
        """Every line so far, with the open batches flushed."""
        for key in sorted(self.batches):
            self._render(key, self.batches.pop(key))
        out, self.lines = self.lines, []
        self.rendered.clear()  # a day's ids do not recur in the next
        return out


# --- shared helpers ----------------------------------------------------------------------------------


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _hex(rng: random.Random, bits: int) -> str:
    """``bits`` (a multiple of 8) random bits as zero-padded lower-case hex."""
    return rng.getrandbits(bits).to_bytes(bits // 8).hex()


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:  # normal approximation; exact enough for traffic counts and much cheaper
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _raw_shape(hour_of_day: int, weekday: int) -> float:
    diurnal = 0.25 + 1.5 * math.exp(-(((hour_of_day - 15) / 4.5) ** 2))
    weekly = 0.65 if weekday >= 5 else 1.14
    return diurnal * weekly


_SHAPE_MEAN = sum(_raw_shape(h, d) for h in range(24) for d in range(7)) / (24 * 7)


def traffic_shape(hour_of_day: int, weekday: int) -> float:
    """Relative traffic (mean 1 over a week): a diurnal curve peaking mid-afternoon UTC (Europe +
    US), quieter weekends."""
    return _raw_shape(hour_of_day, weekday) / _SHAPE_MEAN


# --- a trace under construction --------------------------------------------------------------------------


@dataclass
class Trace:
    trace_id: str
    rng: random.Random
    em: Emitter
    spans: list[tuple[BatchKey, dict[str, Any]]] = field(default_factory=list)

    def span_id(self) -> str:
        return _hex(self.rng, 64)

    def add(
        self,
        service: str,
        version: str,
        scope: tuple[str, str],
        *,
        span_id: str,
        parent: str,
        name: str,
        kind: int,
        start: int,
        end: int,
        attrs: dict[str, Any],
        error: str | None = None,
        events: list[dict[str, Any]] | None = None,
    ) -> None:
        span: dict[str, Any] = {
            "traceId": self.trace_id,
            "spanId": span_id,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": self.em.attrs(attrs),
        }
        if parent:
            span["parentSpanId"] = parent
        if events:
            span["events"] = events
        if error is not None:
            span["status"] = {"code": 2, "message": error}
        self.spans.append((("spans", service, version, scope[0], scope[1]), span))

    def emit(self) -> None:
        self.em.spans(self.spans)


def _exception_event(at: int, etype: str, message: str) -> dict[str, Any]:
    return {
        "timeUnixNano": str(at),
        "name": "exception",
        "attributes": _attrs({"exception.type": etype, "exception.message": message}),
    }


# Attribute values that are the same on every span of their kind, encoded once.
SYSTEM_INSTRUCTIONS = {
    version: _json([{"type": "text", "content": prompt}])
    for version, prompt in cat.SYSTEM_PROMPTS.items()
}
ORDERS_INVOCATION_PARAMETERS = _json({"temperature": 0.0, "response_mime_type": "application/json"})
ORDER_TOOL_PARAMETERS = _json({"type": "object", "properties": {"order_id": {"type": "string"}}})


# --- the world ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a user experienced from one trace (drives their next action)."""

    trace_id: str
    root_span: str
    end_ns: int
    answer: str
    failed: bool = False
    handoff: bool = False
    leaked: bool = False
    unsupported: bool = False
    duration_ms: float = 0.0


@dataclass
class Minutes:
    """Per-minute aggregates of generated spans, for the metrics that must agree with the traces."""

    http: dict[tuple[int, str, str, int], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    handoffs: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    retrieval_ms: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    traces: dict[int, int] = field(default_factory=lambda: defaultdict(int))


class World:
    def __init__(self, plan: WorldPlan) -> None:
        self.plan = plan
        self.cfg = plan.config
        self.em = Emitter()
        self.minutes = Minutes()
        self.users = [f"u{10000 + i}" for i in range(max(50, int(4000 * self.cfg.scale)))]
        self._intent_weights = [i.weight for i in cat.INTENTS]
        self._follow_ups = {
            svc: [i for i in cat.INTENTS if i.service == svc]
            for svc in ("support-chat", "order-assistant")
        }

    # -- entry point --

    def days(self) -> Iterator[tuple[int, list[bytes]]]:
        """Yield (day index, OTLP JSON lines) for each day of the world, in order."""
        for day in range(self.cfg.days):
            yield day, self.day(day)

    def day(self, day: int) -> list[bytes]:
        """The OTLP JSON lines of one day. Days are independent (sessions are seeded by their hour),
        so they can be generated in any order or in parallel with identical bytes."""
        day_start = self.cfg.start_ns + day * DAY_NS
        self.minutes = Minutes()
        # A day's records are dicts and lists kept until its lines are rendered, none in a cycle:
        # the collector's passes over them were a fifth of the generation time.
        with gc_paused():
            self._changes(day_start, day_start + DAY_NS)
            for hour in range(24):
                self._hour(day * 24 + hour)
            self._metrics(day_start)
            return self.em.take()

    def _changes(self, lo: int, hi: int) -> None:
        for change_id, ch in sorted(self.plan.changes.items(), key=lambda kv: kv[1].at_ns):
            if not lo <= ch.at_ns < hi:
                continue
            if ch.kind == "deployment":
                self.em.log(
                    ch.service,
                    ch.to_version,
                    ("acme.deploy", ""),
                    {
                        "timeUnixNano": str(ch.at_ns),
                        "observedTimeUnixNano": str(ch.at_ns),
                        "severityNumber": 9,
                        "severityText": "INFO",
                        "eventName": "deployment",
                        "body": {"stringValue": f"deployed {ch.description}"},
                        "attributes": _attrs(
                            {
                                "deployment.id": change_id,
                                "deployment.status": "succeeded",
                                "deployment.environment.name": "prod",
                                "service.version": ch.to_version,
                                "deployment.previous_version": ch.from_version,
                                "vcs.ref.head.revision": _stable_rev(change_id),
                                "gen_ai.prompt.version": ch.prompt_version,
                            }
                        ),
                    },
                )
            else:
                self.em.log(
                    ch.service,
                    ch.to_version,
                    ("acme.config", ""),
                    {
                        "timeUnixNano": str(ch.at_ns),
                        "observedTimeUnixNano": str(ch.at_ns),
                        "severityNumber": 9,
                        "severityText": "INFO",
                        "eventName": "config.change",
                        "body": {"stringValue": ch.description},
                        "attributes": _attrs(
                            {
                                "config.key": "model_ab.anthropic_arm",
                                "config.previous_value": CLAUDE_BEFORE,
                                "config.value": CLAUDE_AFTER,
                            }
                        ),
                    },
                )
        rebuild = self.plan.incident("vector-index-rebuild")
        if rebuild is not None and rebuild.end_ns is not None:
            for at, body in (
                (
                    rebuild.start_ns,
                    "help_center index rebuild started (full re-embed, 24 pages, 18,412 chunks)",
                ),
                (rebuild.end_ns, "help_center index rebuild finished; serving from new index"),
            ):
                if lo <= at < hi:
                    self._app_log("kb-indexer", at, "INFO", body, {"index.name": "help_center"})

    def _hour(self, hour_index: int) -> None:
        t0 = self.cfg.start_ns + hour_index * HOUR_NS
        seconds = t0 // NS
        hour_of_day = (seconds // 3600) % 24
        weekday = ((seconds // 86400) + 3) % 7  # 1970-01-01 was a Thursday
        lam = SESSIONS_PER_DAY / 24 * traffic_shape(hour_of_day, weekday) * self.cfg.scale
        hrng = random.Random(f"{self.cfg.seed}/hour/{hour_index}")
        n = _poisson(hrng, lam)
        starts = sorted(t0 + int(hrng.random() * HOUR_NS) for _ in range(n))
        for i, start in enumerate(starts):
            rng = random.Random(f"{self.cfg.seed}/session/{hour_index}/{i}")
            irng = random.Random(f"{self.cfg.seed}/incident/{hour_index}/{i}")
            self._session(rng, irng, start)

    # -- user behaviour --

    def _event(
        self,
        at: int,
        name: str,
        session: str,
        user: str,
        attrs: dict[str, Any] | None = None,
        trace: tuple[str, str] | None = None,
        body: str | None = None,
    ) -> None:
        record: dict[str, Any] = {
            "timeUnixNano": str(at),
            "observedTimeUnixNano": str(at + 40 * MS),
            "severityNumber": 9,
            "severityText": "INFO",
            "eventName": name,
            "attributes": self.em.attrs({"session.id": session, "user.id": user, **(attrs or {})}),
        }
        if body is not None:
            record["body"] = {"stringValue": body}
        if trace is not None:
            record["traceId"], record["spanId"] = trace
        self.em.log("acme-web", self.plan.version("acme-web", at), WEB_SCOPE, record)

    def _session(self, rng: random.Random, irng: random.Random, start: int) -> None:
        user = self.users[min(len(self.users) - 1, int(rng.paretovariate(1.2)) - 1)]
        session = f"sess-{_hex(rng, 48)}"
        intent = rng.choices(cat.INTENTS, self._intent_weights)[0]
        path = "/orders" if intent.service == "order-assistant" else "/help"
        self._event(start, "browser.page_view", session, user, {"url.path": path})
        self._event(
            start + int(rng.uniform(0.8, 3.0) * NS),
            "browser.web_vitals",
            session,
            user,
            {
                "web_vital.lcp_ms": round(_lognormal(rng, 1900, 0.35)),
                "web_vital.inp_ms": round(_lognormal(rng, 140, 0.5)),
                "web_vital.cls": round(abs(rng.gauss(0.04, 0.05)), 3),
            },
        )
        t = start + int(rng.uniform(5, 60) * NS)
        self._event(t, "chat.opened", session, user)
        slots = _slots(rng)
        message = rng.choice(intent.messages).format(**slots)
        history: list[tuple[str, str]] = []
        resolved = abandoned = handed_off = False
        for turn in range(4):
            t += int(rng.uniform(8, 45) * NS)
            # The browser learns the trace id when the chat API accepts the message.
            ids = (_hex(rng, 128), _hex(rng, 64))
            self._event(
                t,
                "chat.message_sent",
                session,
                user,
                {"chat.message.index": turn, "chat.message.length": len(message)},
                trace=ids,
            )
            out = self._trace(
                ids,
                rng,
                irng,
                t + int(rng.uniform(40, 160) * MS),
                intent,
                message,
                history,
                session,
                user,
                slots,
            )
            self._event(
                out.end_ns + int(rng.uniform(60, 200) * MS),
                "chat.response_shown",
                session,
                user,
                {
                    "chat.response.length": len(out.answer),
                    "chat.response.latency_ms": round(out.duration_ms),
                },
                trace=ids,
            )
            history.append((message, out.answer))
            t = out.end_ns + int(rng.uniform(4, 40) * NS)
            bad = out.failed or out.leaked or out.duration_ms > 12_000
            p_down = (
                0.04
                + 0.30 * out.failed
                + 0.25 * out.leaked
                + 0.10 * out.unsupported
                + 0.10 * (out.duration_ms > 12_000)
            )
            p_up = 0.05 if bad else (0.12 if out.handoff else 0.24)
            u = rng.random()
            if u < p_down:
                self._event(
                    t,
                    "user.feedback",
                    session,
                    user,
                    {"feedback.rating": "thumbs_down"},
                    trace=ids,
                )
            elif u < p_down + p_up:
                self._event(
                    t, "user.feedback", session, user, {"feedback.rating": "thumbs_up"}, trace=ids
                )
            # What the user does next.
            r = rng.random()
            follow_up = rng.choice(self._follow_ups[intent.service])
            if out.handoff:
                # Waiting for a human after a failure, many give up: that is abandonment too.
                handed_off = True
                abandoned = r < (0.5 if out.failed else 0.12)
                break
            if out.failed:
                cuts = (
                    0.48,
                    0.62,
                    0.74,
                    0.74,
                    0.80,
                )  # abandon, retry, rephrase, follow-up, resolved
            elif bad:
                cuts = (0.20, 0.35, 0.50, 0.55, 0.65)
            else:
                cuts = (0.04, 0.07, 0.17, 0.45, 0.85)
            if r < cuts[0]:
                abandoned = True
                break
            if r < cuts[1]:
                self._event(t, "chat.retry", session, user, trace=ids)
                continue
            if r < cuts[2]:
                message = rng.choice(intent.rephrases).format(**slots)
                self._event(t, "chat.rephrase", session, user, trace=ids)
                continue
            if r < cuts[3]:
                # A new question in the same conversation (same assistant, same customer).
                intent = follow_up
                message = "Thanks. " + rng.choice(intent.messages).format(**slots)
                continue
            if r < cuts[4]:
                resolved = True
            break
        end = t + int(rng.uniform(20, 120) * NS)
        if abandoned:
            self._event(
                end,
                "session.abandoned",
                session,
                user,
                {"session.resolved": False, "chat.turns": len(history)},
            )
        elif resolved:
            self._event(t + int(rng.uniform(1, 5) * NS), "chat.resolved", session, user)
        if not abandoned and rng.random() < 0.35:
            if resolved:
                score = rng.choice((4, 5, 5, 5))
            elif handed_off:
                score = rng.choice((2, 3, 3, 4))
            else:
                score = rng.choice((1, 2, 3, 3, 4))
            self._event(end, "chat.csat", session, user, {"csat.score": score})

    # -- traces --

    def _trace(
        self,
        ids: tuple[str, str],
        rng: random.Random,
        irng: random.Random,
        start: int,
        intent: cat.Intent,
        message: str,
        history: list[tuple[str, str]],
        session: str,
        user: str,
        slots: dict[str, str],
    ) -> Outcome:
        tr = Trace(ids[0], rng, self.em)
        if intent.service == "order-assistant":
            out = self._orders_trace(tr, ids[1], irng, start, intent, message, session, user, slots)
        else:
            out = self._support_trace(
                tr, ids[1], irng, start, intent, message, history, session, user, slots
            )
        tr.emit()
        self.minutes.traces[(start - self.cfg.start_ns) // MINUTE_NS] += 1
        return out

    def _http(
        self,
        tr: Trace,
        parent: str,
        tool: str,
        start: int,
        server_ms: float,
        status: int,
        ids: dict[str, str],
        caller: tuple[str, str],
    ) -> int:
        """An HTTP client span from the caller and the backend's server span; returns the end time."""
        backend, method, route, _ = cat.TOOLS[tool]
        path = route.format(**ids) if "{" in route else route
        client_id, server_id = tr.span_id(), tr.span_id()
        server_start = start + int(tr.rng.uniform(1.5, 4) * MS)
        server_end = server_start + int(server_ms * MS)
        end = server_end + int(tr.rng.uniform(1.5, 4) * MS)
        err = str(status) if status >= 500 else None
        bversion = self.plan.version(backend, start)
        tr.add(
            caller[0],
            caller[1],
            HTTP_CLIENT_SCOPE,
            span_id=client_id,
            parent=parent,
            name=f"{method} {route}",
            kind=SPAN_KIND_CLIENT,
            start=start,
            end=end,
            attrs={
                "http.request.method": method,
                "url.full": f"http://{backend}.internal{path}",
                "url.template": route,
                "server.address": f"{backend}.internal",
                "http.response.status_code": status,
                "error.type": err,
            },
            error="" if err else None,
        )
        tr.add(
            backend,
            bversion,
            HTTP_SERVER_SCOPE,
            span_id=server_id,
            parent=client_id,
            name=f"{method} {route}",
            kind=SPAN_KIND_SERVER,
            start=server_start,
            end=server_end,
            attrs={
                "http.request.method": method,
                "http.route": route,
                "url.path": path,
                "http.response.status_code": status,
                "error.type": err,
            },
            error="Service Unavailable" if status == 503 else ("" if err else None),
        )
        minute = (server_start - self.cfg.start_ns) // MINUTE_NS
        self.minutes.http[(minute, backend, route, status)].append(server_ms / 1000)
        if status >= 500:
            self._app_log(
                backend,
                server_end,
                "ERROR",
                f"{method} {route} -> {status}: "
                + (
                    "v1 charges endpoint is deprecated; request served from reduced pool timed out (pool 2/2 busy)"
                    if tool == "lookup_charge_v1"
                    else "upstream timeout"
                ),
                {"http.route": route, "http.response.status_code": status},
                trace=(tr.trace_id, server_id),
                version=bversion,
            )
        return end

    def _app_log(
        self,
        service: str,
        at: int,
        level: str,
        body: str,
        attrs: dict[str, Any] | None = None,
        trace: tuple[str, str] | None = None,
        version: str | None = None,
    ) -> None:
        record: dict[str, Any] = {
            "timeUnixNano": str(at),
            "observedTimeUnixNano": str(at + 2 * MS),
            "severityNumber": SEVERITY[level],
            "severityText": level,
            "body": {"stringValue": body},
            "attributes": self.em.attrs(attrs or {}),
        }
        if trace is not None:
            record["traceId"], record["spanId"] = trace
        self.em.log(service, version or self.plan.version(service, at), APP_LOG_SCOPE, record)

    def _support_trace(
        self,
        tr: Trace,
        root: str,
        irng: random.Random,
        start: int,
        intent: cat.Intent,
        message: str,
        history: list[tuple[str, str]],
        session: str,
        user: str,
        slots: dict[str, str],
    ) -> Outcome:
        rng, plan = tr.rng, self.plan
        service, version = "support-chat", plan.version("support-chat", start)
        me = (service, version)
        prompt_version = plan.prompt_version(start)
        system_prompt = cat.SYSTEM_PROMPTS[prompt_version]
        system_tokens = _tokens(system_prompt) + 380
        anthropic_arm = rng.random() < 0.3
        claude = CLAUDE_AFTER if plan.after("config-claude-sonnet-4-5", start) else CLAUDE_BEFORE
        model, provider = (claude, "anthropic") if anthropic_arm else ("gpt-4.1", "openai")
        response_model = {
            "gpt-4.1": "gpt-4.1-2025-04-14",
            CLAUDE_BEFORE: "claude-sonnet-4-20250514",
            CLAUDE_AFTER: "claude-sonnet-4-5-20250929",
        }[model]

        # Incident decisions: always drawn, so the clean world consumes the same randomness.
        deprecated_roll, deprecated_twice, leak_roll = irng.random(), irng.random(), irng.random()
        deprecated = plan.incident("deprecated-tool-503")
        # 0.88 of the payment requests (a third of support-chat's traffic): about the 40% of all
        # its traces the incident touched when any question could reach the payments tool.
        calls_deprecated = (
            deprecated is not None
            and deprecated.active(start)
            and intent.name in cat.PAYMENT_INTENTS
            and deprecated_roll < 0.88
        )
        leak = plan.incident("reasoning-leak")
        leaks = (
            leak is not None and leak.active(start) and model == CLAUDE_AFTER and leak_roll < 0.35
        )
        rebuild = plan.incident("vector-index-rebuild")
        slow_index = rebuild is not None and rebuild.active(start)
        unsupported_inc = plan.incident("unsupported-answers")

        t = start + int(rng.uniform(2, 6) * MS)

        # Input guardrail.
        g_end = t + int(_lognormal(rng, 35, 0.3) * MS)
        blocked = rng.random() < 0.004
        tr.add(
            *me,
            SUPPORT_SCOPE,
            span_id=tr.span_id(),
            parent=root,
            name="apply_guardrail input-moderation",
            kind=SPAN_KIND_INTERNAL,
            start=t,
            end=g_end,
            attrs={
                "gen_ai.operation.name": "apply_guardrail",
                "guardrail.name": "input-moderation",
                "guardrail.decision": "block" if blocked else "allow",
                "guardrail.categories": "prompt_injection" if blocked else None,
            },
        )
        t = g_end + int(rng.uniform(0.5, 2) * MS)

        # Embed the question, retrieve, rerank.
        e_end = t + int(_lognormal(rng, 55, 0.35) * MS)
        tr.add(
            *me,
            SUPPORT_SCOPE,
            span_id=tr.span_id(),
            parent=root,
            name="embeddings text-embedding-3-small",
            kind=SPAN_KIND_CLIENT,
            start=t,
            end=e_end,
            attrs={
                "gen_ai.operation.name": "embeddings",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "text-embedding-3-small",
                "gen_ai.usage.input_tokens": _tokens(message) + 2,
                "server.address": "model-gateway.internal",
            },
        )
        t = e_end + int(rng.uniform(0.5, 2) * MS)
        docs = self._retrieve(rng, intent)
        top = max((d[1] for d in docs), default=0.0)
        db_ms = _lognormal(rng, 38, 0.4) * (
            8.0 * (1 + abs(rng.gauss(0, 0.4))) if slow_index else 1.0
        )
        r_id, db_id = tr.span_id(), tr.span_id()
        db_start = t + int(rng.uniform(1, 3) * MS)
        db_end = db_start + int(db_ms * MS)
        r_end = db_end + int(rng.uniform(2, 6) * MS)
        tr.add(
            *me,
            SUPPORT_SCOPE,
            span_id=r_id,
            parent=root,
            name="retrieval help-center",
            kind=SPAN_KIND_INTERNAL,
            start=t,
            end=r_end,
            attrs={
                "gen_ai.operation.name": "retrieval",
                "gen_ai.data_source.id": "help-center",
                "gen_ai.retrieval.query.text": message,
                "gen_ai.retrieval.top_k": 4,
                "gen_ai.retrieval.documents": _json(
                    [
                        {"id": d[0], "score": d[1], "content": cat.HELP_CENTRE_BY_ID[d[0]][2][:160]}
                        for d in docs
                    ]
                ),
            },
        )
        tr.add(
            *me,
            DB_SCOPE,
            span_id=db_id,
            parent=r_id,
            name="query help_center",
            kind=SPAN_KIND_CLIENT,
            start=db_start,
            end=db_end,
            attrs={
                "db.system.name": "qdrant",
                "db.operation.name": "query",
                "db.collection.name": "help_center",
                "server.address": "vector-db.internal",
                "db.response.returned_rows": len(docs),
            },
        )
        self.minutes.retrieval_ms[(db_start - self.cfg.start_ns) // MINUTE_NS].append(db_ms)
        if db_ms > 1000:
            self._app_log(
                service,
                db_end,
                "WARN",
                f"slow vector search: {db_ms:.0f} ms (help_center)",
                {"db.collection.name": "help_center"},
                trace=(tr.trace_id, db_id),
                version=version,
            )
        t = r_end + int(rng.uniform(0.5, 2) * MS)
        rr_end = t + int(_lognormal(rng, 85, 0.3) * MS)
        tr.add(
            *me,
            SUPPORT_SCOPE,
            span_id=tr.span_id(),
            parent=root,
            name="rerank rerank-v3.5",
            kind=SPAN_KIND_CLIENT,
            start=t,
            end=rr_end,
            attrs={
                "gen_ai.operation.name": "rerank",
                "gen_ai.provider.name": "cohere",
                "gen_ai.request.model": "rerank-v3.5",
                "gen_ai.rerank.documents.count": len(docs),
                "server.address": "model-gateway.internal",
            },
        )
        t = rr_end + int(rng.uniform(0.5, 2) * MS)

        context = "\n".join(f"[{d[0]}] {cat.HELP_CENTRE_BY_ID[d[0]][2]}" for d in docs)
        messages: list[dict[str, Any]] = []
        for q, a in history:
            messages.append({"role": "user", "parts": [{"type": "text", "content": q}]})
            messages.append({"role": "assistant", "parts": [{"type": "text", "content": a}]})
        messages.append(
            {
                "role": "user",
                "parts": [
                    {"type": "text", "content": f"{message}\n\nHelp-centre context:\n{context}"}
                ],
            }
        )

        tools = list(intent.tools)
        if calls_deprecated:
            tools = ["lookup_charge_v1"] * (2 if deprecated_twice < 0.3 else 1) + [
                x for x in tools if x != "lookup_charge"
            ]
        failed = handoff = unsupported = False
        failure = ""
        failed_system = ""  # the API of the tool that failed (payments-api, calendar-api …)
        if blocked:
            answer = "Sorry, I can't help with that request."
            tools = []
        ids = {"id": slots["order"] if "order" in slots else slots["customer"]}
        call_no = 0
        llm_calls = 0

        def llm(t: int, output: list[dict[str, Any]], finish: str, out_text_len: int) -> int:
            nonlocal llm_calls
            llm_calls += 1
            in_tok = system_tokens + sum(_tokens(_json(m)) for m in messages)
            out_tok = max(8, out_text_len // 4 + rng.randint(0, 12))
            ttft = _lognormal(rng, 420 if provider == "openai" else 560, 0.35)
            dur = ttft + out_tok * (12 if provider == "openai" else 15) * math.exp(
                rng.gauss(0, 0.2)
            )
            if rng.random() < 0.02:  # provider-side slowness
                dur *= rng.uniform(2, 5)
            rate_limited = rng.random() < 0.004
            sid = tr.span_id()
            end = t + int(dur * MS)
            attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "gen_ai.response.model": response_model,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.max_tokens": 800,
                "gen_ai.response.id": f"resp_{_hex(rng, 64)}",
                "gen_ai.response.finish_reasons": [finish],
                "gen_ai.usage.input_tokens": in_tok,
                "gen_ai.usage.output_tokens": out_tok,
                "gen_ai.usage.cache_read.input_tokens": system_tokens if rng.random() < 0.6 else 0,
                "gen_ai.response.time_to_first_chunk": round(ttft / 1000, 4),
                "gen_ai.prompt.name": "support-system",
                "gen_ai.prompt.version": prompt_version,
                "gen_ai.system_instructions": SYSTEM_INSTRUCTIONS[prompt_version],
                "gen_ai.input.messages": _json(messages),
                "gen_ai.output.messages": _json(output),
                "gen_ai.conversation.id": session,
                "server.address": "api.openai.com" if provider == "openai" else "api.anthropic.com",
            }
            if rate_limited:
                # A 429 first, retried by the SDK inside the same span: visible as an exception event.
                attrs["gen_ai.request.retries"] = 1
                events = [
                    _exception_event(
                        t + int(ttft * MS / 3),
                        "RateLimitError",
                        "429 Too Many Requests: rate limit reached for requests",
                    )
                ]
            else:
                events = None
            tr.add(
                *me,
                SUPPORT_SCOPE,
                span_id=sid,
                parent=root,
                name=f"chat {model}",
                kind=SPAN_KIND_CLIENT,
                start=t,
                end=end,
                attrs=attrs,
                events=events,
            )
            return end

        tool_results: list[tuple[str, str, dict[str, Any], dict[str, Any] | str]] = []
        if tools:
            calls = []
            for name in tools:
                call_no += 1
                calls.append((f"call_{_hex(rng, 40)}", name, _tool_args(name, slots)))
            output = [
                {
                    "role": "assistant",
                    "parts": [
                        {"type": "tool_call", "id": cid, "name": n, "arguments": a}
                        for cid, n, a in calls
                    ],
                    "finish_reason": "tool_calls",
                }
            ]
            t = llm(t, output, "tool_calls", 40 * len(calls)) + int(rng.uniform(1, 4) * MS)
            messages.append(output[0])
            for cid, name, args in calls:
                tid = tr.span_id()
                backend_ms = _lognormal(rng, cat.TOOLS[name][3], 0.45)
                status = 200
                if name == "lookup_charge_v1":
                    backend_ms, status = rng.gauss(2000, 250), 503
                elif name == "crm_lookup_customer" and rng.random() < 0.03:
                    status = 404
                elif rng.random() < 0.006:
                    backend_ms, status = rng.uniform(5000, 8000), 504
                http_start = t + int(rng.uniform(0.5, 2) * MS)
                http_end = self._http(tr, tid, name, http_start, backend_ms, status, ids, me)
                tool_end = http_end + int(rng.uniform(0.5, 3) * MS)
                result: dict[str, Any] | str
                if status >= 500:
                    result = f"error: {cat.TOOLS[name][0]} returned {status}"
                    failed = True
                    failed_system = failed_system or cat.TOOLS[name][0]
                    failure = f"tool {name} failed: {cat.TOOLS[name][0]} {status}"
                    self._app_log(
                        service,
                        tool_end,
                        "ERROR",
                        failure,
                        {"gen_ai.tool.name": name, "http.response.status_code": status},
                        trace=(tr.trace_id, tid),
                        version=version,
                    )
                elif status == 404:
                    result = {"error": "customer not found"}
                else:
                    result = _tool_result(name, slots)
                tr.add(
                    *me,
                    SUPPORT_SCOPE,
                    span_id=tid,
                    parent=root,
                    name=f"execute_tool {name}",
                    kind=SPAN_KIND_INTERNAL,
                    start=t,
                    end=tool_end,
                    attrs={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": name,
                        "gen_ai.tool.type": "function",
                        "gen_ai.tool.description": cat.TOOL_DESCRIPTIONS[name],
                        "gen_ai.tool.call.id": cid,
                        "gen_ai.tool.call.arguments": _json(args),
                        "gen_ai.tool.call.result": result
                        if isinstance(result, str)
                        else _json(result),
                        "error.type": str(status) if status >= 500 else None,
                    },
                    error=f"{cat.TOOLS[name][0]} returned {status}" if status >= 500 else None,
                )
                messages.append(
                    {
                        "role": "tool",
                        "parts": [{"type": "tool_call_response", "id": cid, "response": result}],
                    }
                )
                tool_results.append((cid, name, args, result))
                t = tool_end + int(rng.uniform(1, 3) * MS)

        # The answer.
        low_relevance = top < 0.45
        if blocked:
            pass
        elif failed and failed_system == "payments-api":
            answer = "I'm sorry — I couldn't check your payment right now because our payments system isn't responding. I've passed your conversation to a colleague in billing who will follow up."
            handoff = True
        elif failed:
            what = cat.SYSTEM_NAMES.get(failed_system, "one of our systems")
            answer = f"I'm sorry — {what} isn't responding right now, so I couldn't finish this. I've passed your conversation to a colleague who will follow up."
            handoff = True
        elif low_relevance:
            if model == "gpt-4.1" and unsupported_inc is not None:
                answer = cat.UNSUPPORTED_ANSWERS[rng.randrange(len(cat.UNSUPPORTED_ANSWERS))]
                unsupported = True
            else:
                answer = cat.INTENTS[4].answer
                handoff = True
        else:
            page = cat.HELP_CENTRE_BY_ID[docs[0][0]]
            answer = intent.answer.format(**slots, page_hint=page[2])
        shown = answer
        if leaks:
            shown = cat.LEAKED_REASONING[rng.randrange(len(cat.LEAKED_REASONING))] + answer
        output = [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": shown}],
                "finish_reason": "stop",
            }
        ]
        t = llm(t, output, "stop", len(shown))
        final_llm_span = tr.spans[-1][1]["spanId"]

        # A failed payment lookup is handed to billing, as the answer tells the customer.
        payments_down = failed_system == "payments-api"
        queue = "billing-tier1" if payments_down else cat.HANDOFF_QUEUES[intent.name]
        if handoff:
            h_end = t + int(_lognormal(rng, 45, 0.3) * MS)
            reason = failure or "no relevant help-centre page"
            tr.add(
                *me,
                SUPPORT_SCOPE,
                span_id=tr.span_id(),
                parent=root,
                name="handoff human-support",
                kind=SPAN_KIND_INTERNAL,
                start=t,
                end=h_end,
                attrs={
                    "gen_ai.operation.name": "handoff",
                    "handoff.target": "human",
                    "handoff.queue": queue,
                    "handoff.reason": reason,
                    "handoff.ticket.id": f"T-{rng.randint(100000, 999999)}",
                },
            )
            self.minutes.handoffs[((t - self.cfg.start_ns) // MINUTE_NS, queue)] += 1
            self._app_log(
                service,
                h_end,
                "INFO",
                f"handed off to {queue}: {reason}",
                {"handoff.queue": queue},
                trace=(tr.trace_id, root),
                version=version,
            )
            t = h_end
        end = t + int(rng.uniform(1, 4) * MS)
        tr.add(
            *me,
            SUPPORT_SCOPE,
            span_id=root,
            parent="",
            name="invoke_agent support-agent",
            kind=SPAN_KIND_SERVER,
            start=start,
            end=end,
            attrs={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "support-agent",
                "gen_ai.agent.id": "agt-support-01",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "gen_ai.conversation.id": session,
                "session.id": session,
                "user.id": user,
                "acme.intent": intent.name,
                "http.route": "/api/chat",
            },
            error=failure or None,
        )
        dur_ms = (end - start) / MS
        self._app_log(
            service,
            end,
            "WARN" if failed else "INFO",
            f"agent run finished in {dur_ms:.0f} ms: intent={intent.name} llm_calls={llm_calls} tools={len(tool_results)} handoff={str(handoff).lower()}",
            {"acme.intent": intent.name},
            trace=(tr.trace_id, root),
            version=version,
        )

        # Online evaluation of half the answers (groundedness), a few seconds later.
        if rng.random() < 0.5 and not blocked:
            if unsupported:
                score = round(rng.uniform(0.03, 0.25), 2)
                why = "The answer makes claims that none of the retrieved pages support."
            elif handoff:
                score = round(rng.uniform(0.85, 1.0), 2)
                why = "The answer declines and hands off; nothing unsupported."
            else:
                score = round(min(1.0, rng.gauss(0.88, 0.06)), 2)
                why = "Claims are supported by the retrieved help-centre pages."
            at = end + int(rng.uniform(2, 9) * NS)
            self.em.log(
                "evaluator",
                self.plan.version("model-gateway", at),
                ("acme.evals", "1.2.0"),
                {
                    "timeUnixNano": str(at),
                    "observedTimeUnixNano": str(at),
                    "severityNumber": 9,
                    "severityText": "INFO",
                    "eventName": "gen_ai.evaluation.result",
                    "traceId": tr.trace_id,
                    "spanId": final_llm_span,
                    "attributes": _attrs(
                        {
                            "gen_ai.evaluation.name": "groundedness",
                            "gen_ai.evaluation.score.value": score,
                            "gen_ai.evaluation.score.label": "pass" if score >= 0.5 else "fail",
                            "gen_ai.evaluation.explanation": why,
                            "gen_ai.response.model": response_model,
                            "session.id": session,
                        }
                    ),
                },
            )
        return Outcome(
            tr.trace_id,
            root,
            end,
            shown,
            failed=failed,
            handoff=handoff,
            leaked=leaks,
            unsupported=unsupported,
            duration_ms=dur_ms,
        )

    def _retrieve(self, rng: random.Random, intent: cat.Intent) -> list[tuple[str, float]]:
        """Four help-centre pages with scores; relevant pages score high when the intent has any."""
        relevant = list(intent.pages)
        rng.shuffle(relevant)
        others = [p[0] for p in cat.HELP_CENTRE if p[0] not in intent.pages]
        picked: list[tuple[str, float]] = []
        if relevant and rng.random() < 0.96:
            for i, page in enumerate(relevant[:2]):
                picked.append((page, round(min(0.97, rng.gauss(0.8 - 0.08 * i, 0.06)), 3)))
        while len(picked) < 4:
            page = others[rng.randrange(len(others))]
            if all(page != p for p, _ in picked):
                picked.append((page, round(max(0.05, rng.gauss(0.3, 0.07)), 3)))
        picked.sort(key=lambda d: -d[1])
        return picked

    def _orders_trace(
        self,
        tr: Trace,
        root: str,
        irng: random.Random,
        start: int,
        intent: cat.Intent,
        message: str,
        session: str,
        user: str,
        slots: dict[str, str],
    ) -> Outcome:
        rng, plan = tr.rng, self.plan
        service, version = "order-assistant", plan.version("order-assistant", start)
        me = (service, version)
        loop_inc = plan.incident("retry-loop-tokens")
        loops = loop_inc is not None and loop_inc.active(start)
        irng.random()  # keep the incident stream aligned with support traces
        model = "gemini-2.5-flash"
        common = {"session.id": session, "user.id": user}
        t = start + int(rng.uniform(2, 6) * MS)
        multi_parcel = intent.workflow == "order_status" and rng.random() < 0.45
        llm_calls = 0
        input_messages: list[tuple[str, str]] = [("system", cat.ORDERS_PROMPT), ("user", message)]

        def llm(
            t: int, output: str, tool_call: tuple[str, dict[str, Any]] | None, extra_in: int = 0
        ) -> tuple[int, str]:
            nonlocal llm_calls
            llm_calls += 1
            sid = tr.span_id()
            in_tok = 520 + sum(_tokens(c) for _, c in input_messages) + extra_in
            out_tok = max(6, len(output) // 4 + rng.randint(0, 10))
            dur = _lognormal(rng, 380, 0.35) + out_tok * 6 * math.exp(rng.gauss(0, 0.2))
            end = t + int(dur * MS)
            attrs: dict[str, Any] = {
                "openinference.span.kind": "LLM",
                "llm.model_name": model,
                "llm.provider": "google",
                "llm.system": "vertexai",
                "llm.invocation_parameters": ORDERS_INVOCATION_PARAMETERS,
                "llm.prompt_template.version": "3",
                "prompt.id": "orders-system",
                "llm.token_count.prompt": in_tok,
                "llm.token_count.completion": out_tok,
                "llm.token_count.total": in_tok + out_tok,
                **common,
            }
            for i, (role, content) in enumerate(input_messages):
                attrs[f"llm.input_messages.{i}.message.role"] = role
                attrs[f"llm.input_messages.{i}.message.content"] = content
            attrs["llm.output_messages.0.message.role"] = "assistant"
            if tool_call is not None:
                attrs["llm.output_messages.0.message.tool_calls.0.tool_call.id"] = (
                    f"fc_{_hex(rng, 32)}"
                )
                attrs["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] = (
                    tool_call[0]
                )
                attrs["llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments"] = (
                    _json(tool_call[1])
                )
                attrs["llm.finish_reason"] = "tool_calls"
            else:
                attrs["llm.output_messages.0.message.content"] = output
                attrs["llm.finish_reason"] = "stop"
            attrs["output.value"] = output
            tr.add(
                *me,
                ORDERS_SCOPE,
                span_id=sid,
                parent=root,
                name="GoogleGenAI.chat",
                kind=SPAN_KIND_CLIENT,
                start=t,
                end=end,
                attrs=attrs,
            )
            return end, sid

        answer = ""
        handoff = False
        for name in intent.tools:
            args = _tool_args(name, slots)
            t, _ = llm(t, "", (name, args))
            t += int(rng.uniform(1, 3) * MS)
            tid = tr.span_id()
            status = 200 if rng.random() > 0.006 else 504
            backend_ms = (
                _lognormal(rng, cat.TOOLS[name][3], 0.45)
                if status == 200
                else rng.uniform(5000, 8000)
            )
            http_end = self._http(
                tr,
                tid,
                name,
                t + int(rng.uniform(0.5, 2) * MS),
                backend_ms,
                status,
                {"id": slots["order"]},
                me,
            )
            result = (
                _tool_result(name, slots, parcels=2 if multi_parcel else 1)
                if status == 200
                else {"error": f"orders-api returned {status}"}
            )
            tool_end = http_end + int(rng.uniform(0.5, 2) * MS)
            tr.add(
                *me,
                ORDERS_SCOPE,
                span_id=tid,
                parent=root,
                name=name,
                kind=SPAN_KIND_INTERNAL,
                start=t,
                end=tool_end,
                attrs={
                    "openinference.span.kind": "TOOL",
                    "tool.name": name,
                    "tool.description": cat.TOOL_DESCRIPTIONS[name],
                    "tool.parameters": ORDER_TOOL_PARAMETERS,
                    "input.value": _json(args),
                    "input.mime_type": "application/json",
                    "output.value": _json(result),
                    "output.mime_type": "application/json",
                    **common,
                },
                error=f"orders-api returned {status}" if status != 200 else None,
            )
            input_messages.append(("tool", _json(result)))
            t = tool_end + int(rng.uniform(1, 3) * MS)
            if status != 200:
                handoff = True
                break

        if not handoff:
            good = intent.answer.format(**slots)
            raw = (
                _json({"status": "shipped", "carrier": "DHL", "eta": slots["eta"]})
                if not multi_parcel
                else "Your order ships in two parcels: " + good
            )
            attempts = 0
            while True:
                t, _ = llm(t, raw, None, extra_in=attempts * 140)
                attempts += 1
                if not multi_parcel:
                    answer = good
                    break
                # Multi-parcel answers come back as prose, not the JSON the parser wants.
                p_id = tr.span_id()
                p_end = t + int(rng.uniform(0.3, 1.2) * MS)
                msg = f"Invalid json output: {raw[:60]}"
                tr.add(
                    *me,
                    ORDERS_SCOPE,
                    span_id=p_id,
                    parent=root,
                    name="OutputParser.parse",
                    kind=SPAN_KIND_INTERNAL,
                    start=t,
                    end=p_end,
                    attrs={"openinference.span.kind": "CHAIN", "input.value": raw, **common},
                    error=msg,
                    events=[_exception_event(p_end, "OutputParserException", msg)],
                )
                self._app_log(
                    service,
                    p_end,
                    "WARN",
                    f"OutputParserException: {msg} (attempt {attempts})",
                    {"exception.type": "OutputParserException", "acme.workflow": intent.workflow},
                    trace=(tr.trace_id, p_id),
                    version=version,
                )
                t = p_end + int(rng.uniform(1, 3) * MS)
                if not loops or attempts >= 12:
                    # 1.8.x exits after the first failure; 1.9.0 only gives up after 12 attempts.
                    answer = f"Order {slots['order']} ships in two parcels; the first is due {slots['eta']}. Tracking: {slots['tracking']}."
                    break
                input_messages.append(("assistant", raw))
                input_messages.append(
                    ("user", "Your previous answer was not valid JSON. Reply with JSON only.")
                )
        else:
            answer = "I couldn't reach the order system just now, so I've passed this to our orders team."
            h_end = t + int(_lognormal(rng, 40, 0.3) * MS)
            tr.add(
                *me,
                ORDERS_SCOPE,
                span_id=tr.span_id(),
                parent=root,
                name="handoff orders-team",
                kind=SPAN_KIND_INTERNAL,
                start=t,
                end=h_end,
                attrs={
                    "handoff.target": "human",
                    "handoff.queue": "orders",
                    "handoff.reason": "order system unavailable",
                    **common,
                },
            )
            self.minutes.handoffs[((t - self.cfg.start_ns) // MINUTE_NS, "orders")] += 1
            t = h_end
        end = t + int(rng.uniform(1, 4) * MS)
        tr.add(
            *me,
            ORDERS_SCOPE,
            span_id=root,
            parent="",
            name=intent.workflow,
            kind=SPAN_KIND_SERVER,
            start=start,
            end=end,
            attrs={
                "openinference.span.kind": "AGENT",
                "agent.name": "order-assistant",
                "input.value": message,
                "output.value": answer,
                "metadata": _json({"workflow": intent.workflow}),
                **common,
            },
            error=None,
        )
        dur_ms = (end - start) / MS
        self._app_log(
            service,
            end,
            "INFO",
            f"workflow {intent.workflow} finished in {dur_ms:.0f} ms: llm_calls={llm_calls}",
            {"acme.workflow": intent.workflow},
            trace=(tr.trace_id, root),
            version=version,
        )
        return Outcome(tr.trace_id, root, end, answer, handoff=handoff, duration_ms=dur_ms)

    # -- infrastructure metrics --

    def _metrics(self, day_start: int) -> None:
        rng = random.Random(f"{self.cfg.seed}/metrics/{day_start}")
        minutes = range(24 * 60)
        # Host metrics every 5 minutes (a typical scrape); the two series incidents move, every minute.
        every5 = range(4, 24 * 60, 5)
        base = (day_start - self.cfg.start_ns) // MINUTE_NS
        rebuild = self.plan.incident("vector-index-rebuild")

        def load(m: int) -> float:
            return sum(self.minutes.traces.get(base + m + k, 0) for k in (-2, -1, 0)) / 3

        peak = max((load(m) for m in minutes), default=1.0) or 1.0

        def gauge(
            name: str,
            unit: str,
            points: list[tuple[int, float]],
            attrs: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            a = _attrs(attrs or {})
            return {
                "name": name,
                "unit": unit,
                "gauge": {
                    "dataPoints": [
                        {"timeUnixNano": str(ts), "asDouble": v, **({"attributes": a} if a else {})}
                        for ts, v in points
                    ]
                },
            }

        def ts(m: int) -> int:
            return day_start + (m + 1) * MINUTE_NS

        for service in ("support-chat", "order-assistant", "vector-db", "model-gateway"):
            cpu = [
                (ts(m), round(min(0.98, 0.08 + 0.6 * load(m) / peak + rng.gauss(0, 0.02)), 4))
                for m in every5
            ]
            mem_base = {
                "support-chat": 1.4e9,
                "order-assistant": 0.9e9,
                "vector-db": 6.2e9,
                "model-gateway": 11.5e9,
            }[service]
            mem = [
                (ts(m), int(mem_base * (1 + 0.05 * load(m) / peak) + rng.gauss(0, 2e7)))
                for m in every5
            ]
            metrics = [
                gauge("system.cpu.utilization", "1", cpu),
                {
                    "name": "system.memory.usage",
                    "unit": "By",
                    "sum": {
                        "aggregationTemporality": 2,
                        "isMonotonic": False,
                        "dataPoints": [
                            {
                                "startTimeUnixNano": str(self.cfg.start_ns),
                                "timeUnixNano": str(t),
                                "asInt": str(v),
                            }
                            for t, v in mem
                        ],
                    },
                },
            ]
            if service == "model-gateway":
                metrics.append(
                    gauge(
                        "gpu.utilization",
                        "1",
                        [
                            (
                                ts(m),
                                round(
                                    min(1.0, 0.1 + 0.75 * load(m) / peak + rng.gauss(0, 0.03)), 4
                                ),
                            )
                            for m in minutes
                        ],
                        {"gpu.id": "0", "gpu.model": "L4"},
                    )
                )
            if service == "vector-db":
                points = []
                for m in minutes:
                    seen = self.minutes.retrieval_ms.get(base + m)
                    if seen:
                        value = sorted(seen)[min(len(seen) - 1, int(0.95 * len(seen)))]
                    else:
                        at = ts(m)
                        slow = rebuild is not None and rebuild.active(at)
                        value = _lognormal(rng, 36, 0.15) * (8.0 if slow else 1.0)
                    points.append((ts(m), round(value, 2)))
                metrics.append(
                    gauge(
                        "vectordb.query.duration",
                        "ms",
                        points,
                        {"db.collection.name": "help_center", "quantile": "p95"},
                    )
                )
            self.em.metrics(service, self.plan.version(service, ts(0)), metrics)

        queues = sorted(set(cat.HANDOFF_QUEUES.values()))
        depth_points: dict[str, list[tuple[int, float]]] = {q: [] for q in queues}
        depth = dict.fromkeys(queues, 0.0)
        for m in minutes:
            for q in queues:
                # Humans clear about one handoff per queue every 6 minutes.
                depth[q] = max(0.0, depth[q] + self.minutes.handoffs.get((base + m, q), 0) - 1 / 6)
                if m % 5 == 4:
                    depth_points[q].append((ts(m), float(round(depth[q]))))
        self.em.metrics(
            "support-chat",
            self.plan.version("support-chat", ts(0)),
            [
                gauge(
                    "handoff.queue.depth", "{conversation}", depth_points[q], {"handoff.queue": q}
                )
                for q in queues
            ],
        )

        bounds = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
        per_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (minute, backend, route, status), values in sorted(self.minutes.http.items()):
            if not base <= minute < base + 24 * 60:
                continue
            counts = [0] * (len(bounds) + 1)
            for v in values:
                counts[next((i for i, b in enumerate(bounds) if v <= b), len(bounds))] += 1
            per_service[backend].append(
                {
                    "startTimeUnixNano": str(ts(minute - base - 1)),
                    "timeUnixNano": str(ts(minute - base)),
                    "count": str(len(values)),
                    "sum": round(sum(values), 6),
                    "bucketCounts": [str(c) for c in counts],
                    "explicitBounds": bounds,
                    "min": round(min(values), 6),
                    "max": round(max(values), 6),
                    "attributes": _attrs(
                        {
                            "http.route": route,
                            "http.response.status_code": status,
                            "http.request.method": cat.TOOLS[
                                next(
                                    k
                                    for k, v in cat.TOOLS.items()
                                    if v[0] == backend and v[2] == route
                                )
                            ][1],
                        }
                    ),
                }
            )
        for backend in sorted(per_service):
            self.em.metrics(
                backend,
                self.plan.version(backend, ts(0)),
                [
                    {
                        "name": "http.server.request.duration",
                        "unit": "s",
                        "histogram": {
                            "aggregationTemporality": 1,
                            "dataPoints": per_service[backend],
                        },
                    }
                ],
            )


def _stable_rev(change_id: str) -> str:
    import hashlib

    return hashlib.sha1(change_id.encode()).hexdigest()[:12]


def _slots(rng: random.Random) -> dict[str, str]:
    day = rng.randint(1, 28)
    return {
        "order": f"A-{rng.randint(1000, 9999)}",
        "customer": f"C-{rng.randint(10000, 99999)}",
        "amount": f"{rng.randint(12, 480)}.{rng.randint(0, 99):02d}",
        "date": f"November {day}",
        "time": f"{rng.randint(9, 16)}:{rng.choice(('00', '30'))}",
        "eta": f"November {min(30, day + rng.randint(1, 4))}",
        "tracking": f"JD0146{rng.randint(10**9, 10**10 - 1)}",
        "refund": f"re_{rng.getrandbits(40):010x}",
        "email": f"customer{rng.randint(1, 9999)}@example.com",
    }


def _tool_args(name: str, slots: dict[str, str]) -> dict[str, Any]:
    if name in ("lookup_charge", "lookup_charge_v1"):
        return {"order_id": slots["order"]}
    if name == "payments_refund":
        return {"order_id": slots["order"], "amount": float(slots["amount"]), "reason": "duplicate"}
    if name == "crm_lookup_customer":
        return {"customer_id": slots["customer"]}
    if name == "calendar_find_slots":
        return {"date": slots["date"], "duration_minutes": 30}
    if name == "calendar_book":
        return {"date": slots["date"], "time": slots["time"], "customer_id": slots["customer"]}
    if name == "update_delivery_address":
        return {"order_id": slots["order"], "address": "office"}
    return {"order_id": slots["order"]}


def _tool_result(name: str, slots: dict[str, str], parcels: int = 1) -> dict[str, Any]:
    if name in ("lookup_charge", "lookup_charge_v1"):
        return {
            "charges": [
                {"id": "ch_1", "amount": slots["amount"], "status": "settled"},
                {"id": "ch_2", "amount": slots["amount"], "status": "settled"},
            ]
        }
    if name == "payments_refund":
        return {"refund_id": slots["refund"], "status": "pending"}
    if name == "crm_lookup_customer":
        return {"customer_id": slots["customer"], "email": slots["email"], "tier": "plus"}
    if name == "calendar_find_slots":
        return {"slots": [f"{slots['date']} {slots['time']}"]}
    if name == "calendar_book":
        return {"booking_id": f"bk_{slots['refund'][3:]}", "status": "confirmed"}
    if name == "update_delivery_address":
        return {"order_id": slots["order"], "status": "updated"}
    return {
        "order_id": slots["order"],
        "status": "shipped",
        "carrier": "DHL",
        "eta": slots["eta"],
        "parcels": parcels,
        "tracking": slots["tracking"],
    }


def generate(plan: WorldPlan, write: Callable[[int, list[bytes]], None]) -> None:
    """Generate the world day by day, handing each day's OTLP JSON lines to ``write``."""
    for day, lines in World(plan).days():
        write(day, lines)
