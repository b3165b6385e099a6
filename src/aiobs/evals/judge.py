"""LLM-as-judge: rubric evaluators (groundedness, helpfulness, tone, instruction following) that
ask an OpenAI-compatible chat-completions endpoint to score an answer 1-5 with a one-line
explanation. Opt-in (``aiobs eval --judge …``): it costs money and sends answers off the machine.

- The endpoint, model and key come from ``[judge]`` in the config or the environment
  (``AIOBS_JUDGE_BASE_URL`` / ``OPENAI_BASE_URL``, ``AIOBS_JUDGE_MODEL``,
  ``AIOBS_JUDGE_API_KEY`` / ``OPENAI_API_KEY``); the price per million tokens from the price
  table (or ``[judge] input_price`` / ``output_price``).
- ``sample`` keeps a fraction of the answers, chosen by a hash of the span id, so a rerun picks
  the same answers and finds them cached.
- Requests run ``concurrency`` at a time; connection errors, timeouts, 429 and 5xx are retried
  with exponential backoff (a ``Retry-After`` is honoured, up to ``MAX_WAIT_S``); 401/403/404
  stop judging at once (no retry can fix a key or a model name).
- ``budget`` (USD) stops judging before a request whose estimated cost would pass it; what a
  request cost is read from its ``usage``.
- Every answer is cached by a hash of the model, the rubric's version and the prompt, in a
  SQLite file under the user cache directory (``AIOBS_CACHE_DIR``): a rerun sends nothing and
  costs nothing. The cache is outside the store, so it serves read-only stores too.

Must not import typer, rich, textual or duckdb.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiobs.errors import AiobsError, UsageError
from aiobs.evals.builtin import Answer, Verdict

RUBRIC_VERSION = "1"
PASS_SCORE = 3  # a score below fails
TIMEOUT_S = 60.0
RETRIES = 4  # attempts per request
BACKOFF_S = 1.0  # first wait; doubles each retry
MAX_WAIT_S = 30.0  # the longest Retry-After honoured
CONCURRENCY = 4
GIVE_UP = 8  # answers in a row the endpoint fails (retries spent) before judging stops
DOC_CHARS = 1500  # of each retrieved document in a groundedness prompt
CONTEXT_CHARS = 6000  # of all of them

_SYSTEM = (
    "You are a strict evaluator of an AI assistant's answers in production. Judge only what you "
    'are asked. Reply with a JSON object only: {"score": <integer 1-5>, "explanation": '
    '"<one sentence that quotes the evidence>"}. 5 is best, 1 is worst.'
)

# dimension: (what a failure means, the rubric, whether it needs retrieved documents)
RUBRICS: dict[str, tuple[str, str, bool]] = {
    "groundedness": (
        "the judge found claims the retrieved documents do not support",
        "Groundedness: is every factual claim in the ANSWER supported by the DOCUMENTS? 5: all "
        "claims supported; 3: some minor unsupported detail; 1: the main claim is contradicted "
        "by or absent from the documents. Saying the documents do not cover the question is "
        "grounded.",
        True,
    ),
    "helpfulness": (
        "the judge found the answer does not help with the user's request",
        "Helpfulness: does the ANSWER address the USER's request directly and usefully? 5: "
        "resolves it or gives the right next step; 3: partly; 1: ignores or misreads it.",
        False,
    ),
    "tone": (
        "the judge found the tone off-brand (rude, cold, over-familiar, unprofessional)",
        "Tone and brand consistency for a customer-support assistant: is the ANSWER polite, "
        "calm, professional and warm without being over-familiar? 5: exemplary; 3: acceptable; "
        "1: rude, dismissive, sarcastic or inappropriate.",
        False,
    ),
    "instruction_following": (
        "the judge found the answer breaks the system prompt's instructions",
        "Instruction following: does the ANSWER follow the SYSTEM instructions (format, scope, "
        "language, what it must and must not do)? 5: fully; 3: minor deviation; 1: ignores or "
        "violates an explicit instruction.",
        False,
    ),
}


class JudgeError(AiobsError):
    """The judge endpoint refused us in a way no retry fixes (key, model, URL)."""


@dataclass(frozen=True)
class JudgeConfig:
    base_url: str
    model: str
    api_key: str | None
    input_price: float  # USD per million tokens
    output_price: float
    timeout: float = TIMEOUT_S
    retries: int = RETRIES
    backoff: float = BACKOFF_S
    concurrency: int = CONCURRENCY
    json_mode: bool = True  # send response_format json_object (some servers reject it)


def judge_config(
    table: Mapping[str, Any] | None,
    prices: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> JudgeConfig:
    """The judge's endpoint from ``[judge]`` in the config, else the environment."""
    env = os.environ if env is None else env
    t = dict(table or {})
    base = t.get("base_url") or env.get("AIOBS_JUDGE_BASE_URL") or env.get("OPENAI_BASE_URL")
    model = t.get("model") or env.get("AIOBS_JUDGE_MODEL")
    key = t.get("api_key") or env.get("AIOBS_JUDGE_API_KEY") or env.get("OPENAI_API_KEY")
    if not base or not model:
        raise UsageError(
            "--judge needs an OpenAI-compatible endpoint and a model",
            hint="set AIOBS_JUDGE_BASE_URL (e.g. https://api.openai.com/v1) and "
            "AIOBS_JUDGE_MODEL, and AIOBS_JUDGE_API_KEY; or [judge] base_url/model in the config",
        )
    input_price, output_price = t.get("input_price"), t.get("output_price")
    if input_price is None or output_price is None:
        from aiobs.semantic.prices import model_key

        known = dict(prices or {})
        price = known.get(str(model).lower()) or known.get(model_key(str(model)))
        input_price = price.input if price and input_price is None else (input_price or 0.0)
        output_price = price.output if price and output_price is None else (output_price or 0.0)
    try:
        return JudgeConfig(
            base_url=str(base).rstrip("/"),
            model=str(model),
            api_key=str(key) if key else None,
            input_price=float(input_price),
            output_price=float(output_price),
            timeout=float(t.get("timeout", TIMEOUT_S)),
            retries=max(1, int(t.get("retries", RETRIES))),
            backoff=float(t.get("backoff", BACKOFF_S)),
            concurrency=max(1, int(t.get("concurrency", CONCURRENCY))),
            json_mode=bool(t.get("json_mode", True)),
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"config [judge]: {exc}") from exc


def judge_name(dimension: str) -> str:
    """The evaluation name a dimension's verdicts are stored under: ``judge_groundedness``, apart
    from an imported evaluator's own ``groundedness``."""
    return f"judge_{dimension}"


def parse_dimensions(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(RUBRICS)
    for n in names:
        if n not in RUBRICS:
            raise UsageError(
                f"no judge dimension {n!r}", hint="dimensions: " + ", ".join(RUBRICS) + ", or all"
            )
    return names


def sampled(span_id: str, fraction: float) -> bool:
    """Whether a span is in the sample: by its id's hash, so a rerun samples the same spans."""
    if fraction >= 1:
        return True
    digest = hashlib.blake2b(span_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def _system_prompt(answer: Answer) -> str:
    return next(
        (m.content for m in answer.inputs if getattr(m, "role", None) == "system" and m.content),
        "",
    )


def prompt(dimension: str, answer: Answer) -> str | None:
    """The user message asking the judge about ``answer`` on ``dimension``; None where the
    dimension does not apply (no answer, no documents to ground it in, no system prompt)."""
    _, rubric, needs_documents = RUBRICS[dimension]
    if not answer.text.strip():
        return None
    parts = [rubric, ""]
    if dimension == "instruction_following":
        system = _system_prompt(answer)
        if not system:
            return None
        parts += ["SYSTEM:", system[:CONTEXT_CHARS], ""]
    if needs_documents:
        docs = [d.content for d in answer.documents if d.content]
        if not docs:
            return None
        budget, shown = CONTEXT_CHARS, []
        for i, doc in enumerate(docs, 1):
            piece = doc[: min(DOC_CHARS, budget)]
            if not piece:
                break
            shown.append(f"[{i}] {piece}")
            budget -= len(piece)
        parts += ["DOCUMENTS:", *shown, ""]
    if answer.user_text:
        parts += ["USER:", answer.user_text[:CONTEXT_CHARS], ""]
    parts += ["ANSWER:", answer.text[:CONTEXT_CHARS]]
    return "\n".join(parts)


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_reply(content: str) -> tuple[float, str]:
    """(score 1-5, explanation) from the judge's reply; ValueError when it is not that."""
    match = _OBJECT.search(content or "")
    if not match:
        raise ValueError("no JSON object in the reply")
    data = json.loads(match.group(0))
    if not isinstance(data, dict):
        raise ValueError("the reply is not a JSON object")
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 1 <= score <= 5:
        raise ValueError(f"score {score!r} is not a number from 1 to 5")
    return float(score), " ".join(str(data.get("explanation") or "").split())[:300]


def _seconds(value: str | None) -> float | None:
    """A Retry-After in seconds (the HTTP-date form is rare from APIs; it falls back to backoff)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def estimated_tokens(text: str) -> int:
    return len(text) // 4 + 50  # ~4 characters a token, plus the chat framing


class Cache:
    """Judge replies by content hash, in SQLite (one file, safe across processes)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS judge (key TEXT PRIMARY KEY, score REAL, explanation TEXT)"
        )
        self.lock = threading.Lock()

    def get(self, key: str) -> tuple[float, str] | None:
        with self.lock:
            row = self.con.execute(
                "SELECT score, explanation FROM judge WHERE key = ?", (key,)
            ).fetchone()
        return (float(row[0]), str(row[1])) if row else None

    def put(self, key: str, score: float, explanation: str) -> None:
        with self.lock:
            self.con.execute(
                "INSERT OR REPLACE INTO judge VALUES (?, ?, ?)", (key, score, explanation)
            )
            self.con.commit()

    def close(self) -> None:
        self.con.close()


def cache_path() -> Path:
    from aiobs.config import cache_dir

    return cache_dir() / "judge.sqlite"


@dataclass
class JudgeStats:
    requests: int = 0  # HTTP requests sent, retries included
    cached: int = 0  # answers judged from the cache
    judged: int = 0  # verdicts from the endpoint
    failed: int = 0  # answers the endpoint did not judge (malformed replies, retries spent)
    skipped_budget: int = 0  # answers not judged because the budget was reached
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    problems: dict[str, int] = field(default_factory=dict)  # what went wrong, how often


class Judge:
    """Judges answers on ``dimensions``, ``concurrency`` requests at a time."""

    def __init__(
        self,
        config: JudgeConfig,
        dimensions: Sequence[str],
        *,
        sample: float = 1.0,
        budget: float | None = None,
        cache: Cache | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        self.config, self.dimensions, self.sample, self.budget = config, dimensions, sample, budget
        self.cache = cache
        self.sleep = sleep
        self.stats = JudgeStats()
        self.version = f"judge{RUBRIC_VERSION}:{config.model}"
        self.exhausted = False
        self.lock = threading.Lock()
        self.reserved = 0.0  # estimated cost of the requests in flight
        self.failing = 0  # answers in a row the endpoint did not judge
        self.stopped: JudgeError | None = None  # why judging stopped: the answers queued skip
        headers = {"content-type": "application/json"}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        self.client = httpx.Client(timeout=config.timeout, headers=headers)
        self.pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="aiobs-judge")

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()
        if self.cache:
            self.cache.close()

    def _problem(self, what: str) -> None:
        with self.lock:
            self.stats.problems[what] = self.stats.problems.get(what, 0) + 1

    def _cost(self, tokens_in: float, tokens_out: float) -> float:
        c = self.config
        return (tokens_in * c.input_price + tokens_out * c.output_price) / 1e6

    def _reserve(self, text: str) -> float | None:
        """Reserve a request's estimated cost within the budget; None when it would pass it."""
        estimate = self._cost(estimated_tokens(_SYSTEM + text), 100)
        with self.lock:
            if self.exhausted:
                return None
            spent = self.stats.cost_usd + self.reserved
            if self.budget is not None and spent + estimate > self.budget:
                self.exhausted = True
                return None
            self.reserved += estimate
            return estimate

    def _post(self, text: str) -> tuple[float, str] | None:
        import httpx

        c = self.config
        body: dict[str, Any] = {
            "model": c.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": _SYSTEM},
                {"role": "user", "content": text},
            ],
        }
        if c.json_mode:
            body["response_format"] = {"type": "json_object"}
        problem = ""
        wait = 0.0
        for attempt in range(c.retries):
            if attempt:
                self.sleep(wait)
            wait = c.backoff * 2**attempt  # before the next attempt, unless told otherwise
            with self.lock:
                self.stats.requests += 1
            try:
                response = self.client.post(f"{c.base_url}/chat/completions", json=body)
            except httpx.TimeoutException:
                problem = "timeout"
                continue
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}"
                continue
            status = response.status_code
            if status in (401, 403, 404):
                raise JudgeError(
                    f"the judge endpoint answered HTTP {status} "
                    f"({response.text[:200].strip() or 'no body'})",
                    hint="check AIOBS_JUDGE_BASE_URL, AIOBS_JUDGE_MODEL and AIOBS_JUDGE_API_KEY",
                )
            if status == 429 or status >= 500:
                problem = f"HTTP {status}"
                after = _seconds(response.headers.get("retry-after"))
                if after is not None:
                    wait = min(MAX_WAIT_S, after)
                continue
            if status >= 300:
                self._problem(f"HTTP {status}")
                return None  # the request itself is refused; retrying sends it again
            try:
                data = response.json()
                content = data["choices"][0]["message"]["content"]
                usage = data.get("usage") or {}
                tokens_in = int(usage.get("prompt_tokens") or 0)
                tokens_out = int(usage.get("completion_tokens") or 0)
            except (ValueError, KeyError, IndexError, TypeError):
                problem = "malformed response"
                continue  # a proxy's hiccup; the next attempt may be whole
            with self.lock:
                self.stats.input_tokens += tokens_in
                self.stats.output_tokens += tokens_out
                self.stats.cost_usd += self._cost(tokens_in, tokens_out)
            try:
                return parse_reply(str(content))
            except ValueError:
                problem = "malformed judgement"
                continue
        self._problem(problem or "no reply")
        return None

    def _one(self, dimension: str, answer: Answer, text: str) -> Verdict | None:
        try:
            return self._judged(dimension, answer, text)
        except JudgeError as exc:
            with self.lock:
                self.stopped = self.stopped or exc
            raise

    def _judged(self, dimension: str, answer: Answer, text: str) -> Verdict | None:
        if self.stopped is not None:
            raise self.stopped
        key = hashlib.sha256(
            f"{self.config.model}\0{RUBRIC_VERSION}\0{dimension}\0{text}".encode()
        ).hexdigest()
        hit = self.cache.get(key) if self.cache else None
        if hit is not None:
            with self.lock:
                self.stats.cached += 1
            score, why = hit
        else:
            estimate = self._reserve(text)
            if estimate is None:
                with self.lock:
                    self.stats.skipped_budget += 1
                return None
            try:
                got = self._post(text)
            finally:
                with self.lock:
                    self.reserved -= estimate
            if got is None:
                with self.lock:
                    self.stats.failed += 1
                    self.failing += 1
                    failing = self.failing
                if failing >= max(GIVE_UP, self.config.concurrency):
                    # An endpoint that is down or refusing everything: say so now rather than
                    # spend every answer's retries on it (152 answers took 217 s to learn that).
                    why = ", ".join(f"{k} ×{n}" for k, n in self.stats.problems.items())
                    raise JudgeError(
                        f"the judge endpoint failed {failing} answers in a row ({why});"
                        " judging stopped",
                        hint=f"is {self.config.base_url} up? each answer was tried "
                        f"{self.config.retries} times",
                    )
                return None
            score, why = got
            with self.lock:
                self.stats.judged += 1
                self.failing = 0
            if self.cache:
                self.cache.put(key, score, why)
        label = "fail" if score < PASS_SCORE else "pass"
        return Verdict(judge_name(dimension), self.version, label, score, f"{score:g}/5: {why}")

    def judge(self, answers: Sequence[Answer]) -> list[tuple[Answer, Verdict]]:
        """Verdicts on the sampled answers, each dimension that applies; in input order."""
        jobs = []
        for a in answers:
            if not sampled(a.span_id, self.sample):
                continue
            for d in self.dimensions:
                text = prompt(d, a)
                if text is not None:
                    jobs.append((a, self.pool.submit(self._one, d, a, text)))
        out = []
        for a, future in jobs:
            v = future.result()  # a JudgeError stops here, after the batch in flight
            if v is not None:
                out.append((a, v))
        return out
