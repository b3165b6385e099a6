"""The built-in evaluators: deterministic checks of one LLM answer in its trace's context, no
network. Each has a name, a version (a new version replaces its old results in the store), and
returns a ``Verdict`` — pass or fail, a score where one makes sense, and a one-line explanation
quoting its evidence — or None where it does not apply (no answer to judge, no retrieval to
judge it against).

``EVALUATORS`` is the one table of names, versions, thresholds and what each checks; the
config's ``[eval]`` table switches evaluators off (``disabled = [...]``) and tunes thresholds
(``[eval.thresholds]``).

Pure functions of an ``Answer``: no store, no I/O. Must not import duckdb, typer, rich or
textual.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiobs.errors import UsageError


@dataclass(frozen=True)
class Document:
    id: str | None
    score: float | None
    content: str | None


@dataclass(frozen=True)
class ToolResult:
    name: str | None
    failed: bool  # the step's status is error, or its result is an error payload
    result: str  # the result (or the error message), as text
    error: str | None


@dataclass(frozen=True)
class Answer:
    """An LLM step's answer with what it may be judged against: the user's message it answers,
    the documents retrieved earlier in the trace, the tool results since the model's previous
    call, and what output was asked for."""

    trace_id: str
    span_id: str
    text: str  # the answer's text as the user saw it (the output messages' content)
    time: int | None = None  # when the step ended, ns since the epoch (its verdict's time)
    service_name: str | None = None
    finish_reason: str | None = None
    user_text: str = ""  # the last user message of the input
    documents: tuple[Document, ...] = ()
    retrieved: bool = False  # a retrieval step ran before it in the trace
    tools: tuple[ToolResult, ...] = ()  # since the model's previous call
    wants_json: bool = False  # a JSON response format or output type was asked for
    schema: Any = None  # the JSON schema asked for (a json_schema response format), if any
    tool_calls: int = 0  # the answer asks for tools instead of (or besides) answering
    model: str | None = None
    inputs: tuple[Any, ...] = ()  # the input messages (semantic.content.Message), for datasets
    outputs: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Verdict:
    name: str
    version: str
    label: str  # pass | fail
    score: float | None
    explanation: str


@dataclass(frozen=True)
class Evaluator:
    name: str
    version: str
    what: str  # one line: what a failure means
    check: Callable[[Answer, Mapping[str, float]], Verdict | None]
    thresholds: Mapping[str, float] = field(default_factory=dict)
    # Work for many answers at once before they are checked one by one (language detection
    # vectorised over a batch's texts); it changes no verdict, only what ``check`` costs.
    prepare: Callable[[Sequence[Answer], Mapping[str, float]], None] | None = None


def _quote(text: str, start: int, end: int, width: int = 60) -> str:
    """The evidence ``text[start:end]`` with a little around it, on one line."""
    lo, hi = max(0, start - 15), min(len(text), max(end, start + 1) + 15)
    snippet = " ".join(text[lo:hi].split())
    if len(snippet) > width:
        snippet = snippet[: width - 1] + "…"
    return ("…" if lo else "") + snippet + ("…" if hi < len(text) else "")


def _clip(text: str, width: int) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _verdict(e: str, failed: bool, why: str, score: float | None = None) -> Verdict:
    spec = _SPECS[e]
    return Verdict(e, spec[0], "fail" if failed else "pass", score, why)


# -- reasoning_leak ---------------------------------------------------------------------------

# Hidden-reasoning tags and chain-of-thought markers at the start of a line or of the answer.
_REASONING_TAGS = re.compile(
    r"<\s*(thinking|think|reasoning|scratchpad|internal|analysis)\s*>", re.IGNORECASE
)
_COT_MARKERS = re.compile(
    r"(?:^|\n)\s*(?:\*\*)?(?:internal (?:reasoning|monologue|thoughts?)|chain of thought|"
    r"my hidden reasoning|scratchpad)(?:\*\*)?\s*:",
    re.IGNORECASE,
)


def reasoning_leak(a: Answer, _: Mapping[str, float]) -> Verdict | None:
    if not a.text.strip():
        return None
    # The user's own words quoted back ("you asked about <thinking>") are not a leak: a tag the
    # user's message holds too counts only when it also closes (a block, not a word).
    user = a.user_text.lower()
    for m in _REASONING_TAGS.finditer(a.text):
        tag = m.group(1).lower()
        closes = re.search(rf"<\s*/\s*{tag}\s*>", a.text[m.end() :], re.IGNORECASE)
        if f"<{tag}>" in user and not closes:
            continue
        if closes or m.start() == 0 or a.text[: m.start()].strip() == "":
            return _verdict(
                "reasoning_leak",
                True,
                f"hidden reasoning shown: {_quote(a.text, m.start(), m.end())}",
            )
    m2 = _COT_MARKERS.search(a.text)
    if m2:
        return _verdict(
            "reasoning_leak",
            True,
            f"chain-of-thought marker: {_quote(a.text, m2.start(), m2.end())}",
        )
    return _verdict("reasoning_leak", False, "no hidden-reasoning tags or markers")


# -- empty_or_truncated -----------------------------------------------------------------------


def empty_or_truncated(a: Answer, _: Mapping[str, float]) -> Verdict | None:
    reason = (a.finish_reason or "").lower()
    if reason in ("length", "max_tokens", "max_output_tokens"):
        return _verdict(
            "empty_or_truncated", True, f"cut off at the token limit (finish reason {reason})"
        )
    if not a.text.strip():
        if a.tool_calls or reason in ("tool_calls", "tool_use", "function_call"):
            return None  # a call for tools, not an answer
        return _verdict("empty_or_truncated", True, "empty answer")
    return _verdict(
        "empty_or_truncated", False, f"{len(a.text)} characters, finished ({reason or '?'})"
    )


# -- refusal ----------------------------------------------------------------------------------

_REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:no|')t|am unable to|won't)"
    r"|I(?: can(?:no|')t| am unable to| won't| am not able to|'m not able to|'m unable to)"
    r" (?:help|assist|comply|provide|do that|answer)"
    r"|(?:sorry|apologies),? I can(?:no|')t (?:help|assist)"
    r"|as an AI(?: language model)?,? I (?:can(?:no|')t|don't|am not able))",
    re.IGNORECASE,
)


def refusal(a: Answer, _: Mapping[str, float]) -> Verdict | None:
    if not a.text.strip():
        return None
    m = _REFUSAL.search(a.text)
    if m:
        return _verdict("refusal", True, f"refused: {_quote(a.text, m.start(), m.end())}")
    return _verdict("refusal", False, "answered")


# -- unsupported_answer -----------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9][a-z0-9'-]{2,}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "you",
        "your",
        "are",
        "was",
        "were",
        "with",
        "that",
        "this",
        "from",
        "have",
        "has",
        "had",
        "not",
        "but",
        "can",
        "our",
        "will",
        "there",
        "their",
        "they",
        "them",
        "what",
        "when",
        "where",
        "which",
        "who",
        "how",
        "why",
        "all",
        "any",
        "been",
        "into",
        "its",
        "it's",
        "than",
        "then",
        "also",
        "just",
        "about",
        "would",
        "could",
        "should",
        "may",
        "might",
        "does",
        "did",
        "done",
        "here",
        "more",
        "most",
        "some",
        "such",
        "very",
        "each",
        "other",
        "only",
        "own",
        "same",
        "out",
        "over",
        "under",
        "again",
        "once",
        "please",
        "thanks",
        "thank",
        "hello",
        "help",
        "let",
        "know",
        "get",
        "got",
        "one",
        "two",
    ]
)
# An honest "I don't know" (or an offer of a human) is the right answer when nothing was found.
_ABSTAIN = re.compile(
    r"\b(?:I (?:don't|do not) (?:know|have (?:that|this|enough) information)|I(?:'m| am) not sure"
    r"|I couldn't find|I could not find|no information (?:about|on)|(?:connect|transfer|hand)\w* you"
    r" (?:to|with) (?:a |an |our )?(?:human|agent|colleague|specialist|support)"
    r"|a (?:human|colleague|specialist) (?:will|can) (?:help|follow up)"
    r"|(?:passed|handed|forwarded) (?:your \w+ )?(?:on )?to (?:a |an |our )?\w* ?(?:human|colleague|"
    r"specialist|agent|team))",
    re.IGNORECASE,
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


@functools.lru_cache(maxsize=4096)
def _document_words(text: str) -> frozenset[str]:
    # A trace's documents are judged against each of its answers; a help-centre article against
    # many traces' answers.
    return frozenset(_words(text))


def unsupported_answer(a: Answer, t: Mapping[str, float]) -> Verdict | None:
    """An answer given when retrieval found nothing relevant (no document, or every one below
    the relevance threshold), or whose words share little with the retrieved text."""
    if not a.retrieved or not a.text.strip() or a.tool_calls:
        return None  # nothing to judge it against, or not a final answer
    if _ABSTAIN.search(a.text):
        return _verdict("unsupported_answer", False, "says it does not know, or offers a human")
    relevance = t["min_relevance"]
    scored = [d.score for d in a.documents if d.score is not None]
    best = max(scored) if scored else None
    if not a.documents:
        return _verdict(
            "unsupported_answer", True, "answered although retrieval found nothing", 0.0
        )
    if best is not None and best < relevance:
        return _verdict(
            "unsupported_answer",
            True,
            f"answered although the best document scored {best:.2f} (< {relevance:.2f})",
            best,
        )
    answer = _words(a.text)
    if len(answer) < t["min_claim_words"]:
        return _verdict(
            "unsupported_answer", False, "a short answer; the documents are relevant", best
        )
    source = set().union(*(_document_words(d.content or "") for d in a.documents))
    source |= _words(a.user_text)
    if not any(d.content for d in a.documents):
        return _verdict(
            "unsupported_answer", False, "relevant documents (their text is not stored)", best
        )
    overlap = len(answer & source) / len(answer)
    failed = overlap < t["min_overlap"]
    return _verdict(
        "unsupported_answer",
        failed,
        f"{overlap:.0%} of the answer's words are in the retrieved text"
        + (f" (< {t['min_overlap']:.0%})" if failed else ""),
        overlap,
    )


# -- tool_failure_masked ----------------------------------------------------------------------

_SUCCESS = re.compile(
    r"\b(?:I(?:'ve| have) (?:now )?(?:processed|refunded|issued|completed|updated|cancel+ed|booked|"
    r"sent|submitted|applied|found)|(?:has|have) been (?:processed|refunded|issued|completed|"
    r"updated|cancel+ed|booked|sent|submitted|applied)|(?:successfully|done!|all set|is confirmed|"
    r"went through)|your (?:refund|order|booking|request) is (?:on its way|confirmed|complete))",
    re.IGNORECASE,
)
_ADMITS = re.compile(
    r"\b(?:couldn't|could not|unable|failed|isn't working|not working|error|problem|issue|"
    r"unavailable|try again|sorry|apologi[sz]e|apologies)\b",
    re.IGNORECASE,
)


_DEFERS = re.compile(
    r"^\s*(?:let me|I'll|I will|one moment|just a moment|hold on)\b", re.IGNORECASE
)


def tool_failure_masked(a: Answer, _: Mapping[str, float]) -> Verdict | None:
    """A tool failed and the answer goes on as if it had worked: it claims the action done,
    or states what the tool would have told, without a word of the failure."""
    failed = [r for r in a.tools if r.failed]
    if not a.tools or not a.text.strip():
        return None
    if not failed:
        return _verdict(
            "tool_failure_masked", False, "every tool call since the last answer succeeded"
        )
    tool = failed[-1]
    what = f"{tool.name or 'a tool'} failed ({_clip(tool.error or tool.result, 50)})"
    if _ADMITS.search(a.text) or _ABSTAIN.search(a.text):
        return _verdict("tool_failure_masked", False, f"{what}; the answer says so")
    claim = _SUCCESS.search(a.text)
    if claim:
        return _verdict(
            "tool_failure_masked",
            True,
            f"{what}, yet: {_quote(a.text, claim.start(), claim.end())}",
        )
    # Not a claim of success, but an answer that goes on without a word of the failure: a
    # statement, not a question back or a "let me check".
    text = a.text.strip()
    if text.endswith("?") or _DEFERS.match(text) or len(text.split()) < 4:
        return _verdict("tool_failure_masked", False, f"{what}; the answer asks or defers")
    return _verdict(
        "tool_failure_masked", True, f"{what}, and the answer does not say so: {_clip(text, 60)}"
    )


# -- invalid_json -----------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)


def invalid_json(a: Answer, _: Mapping[str, float]) -> Verdict | None:
    if not a.wants_json:
        return None
    text = a.text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except ValueError as exc:
        return _verdict("invalid_json", True, f"JSON was asked for; it does not parse: {exc}"[:160])
    if isinstance(a.schema, dict):
        problem = schema_problem(value, a.schema)
        if problem:
            return _verdict(
                "invalid_json", True, f"it parses but breaks the schema: {problem}"[:160]
            )
        return _verdict("invalid_json", False, "JSON was asked for; it parses and fits the schema")
    return _verdict("invalid_json", False, "JSON was asked for and it parses")


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    # JSON Schema counts 2.0 an integer (a number without a fraction), as validators do.
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_problem(value: Any, schema: Mapping[str, Any], path: str = "$") -> str | None:
    """The first way ``value`` breaks ``schema``, or None: the subset of JSON Schema that
    structured outputs use (type, enum, const, required, properties, additionalProperties,
    items, anyOf); other keywords are not checked (a schema we cannot read fails nothing)."""
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        if not any(_JSON_TYPES.get(str(k), lambda v: True)(value) for k in names):
            return f"{path} is {type(value).__name__}, not {'/'.join(map(str, names))}"
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        return f"{path} = {json.dumps(value)[:30]} is not one of {json.dumps(schema['enum'])[:50]}"
    if "const" in schema and value != schema["const"]:
        return f"{path} is not {json.dumps(schema['const'])[:40]}"
    options = schema.get("anyOf")
    if (
        isinstance(options, list)
        and options
        and all(schema_problem(value, o, path) for o in options if isinstance(o, dict))
    ):
        return f"{path} fits none of its anyOf"
    if isinstance(value, dict):
        listed = schema.get("properties")
        props: Mapping[str, Any] = listed if isinstance(listed, dict) else {}
        for key in schema.get("required") or []:
            if key not in value:
                return f"{path}.{key} is required and missing"
        for key, item in value.items():
            if key in props and isinstance(props[key], dict):
                problem = schema_problem(item, props[key], f"{path}.{key}")
                if problem:
                    return problem
            elif key not in props and schema.get("additionalProperties") is False:
                return f"{path}.{key} is not allowed (additionalProperties: false)"
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problem = schema_problem(item, schema["items"], f"{path}[{i}]")
            if problem:
                return problem
    return None


# -- pii_in_output / secret_in_output ---------------------------------------------------------

_PII_KINDS = frozenset({"email", "phone", "card", "ssn"})
# What the redaction detectors leave: a mask by kind, or a pseudonym by value (the same address
# gives the same token, so an answer's address can be matched with the tool result's).
_FOUND = re.compile(r"\[(?:REDACTED:([a-z_]+)|((?:email|phone):[0-9a-f]{12}))\]")


@dataclass
class _Detectors:
    """The redaction detectors (ingest.redact), built once: what they would mask in a text."""

    redactor: Any = None

    last: tuple[str, dict[str, int]] = ("", {})  # pii and secret ask of the same answer

    def found(self, text: str) -> dict[str, int]:
        """Each thing found, by token: ``card``, ``secret`` … (a mask says only its kind) or
        ``email:<hash>`` (a pseudonym names its value); with how often."""
        if not text.strip():
            return {}
        if self.last[0] == text:
            return self.last[1]
        found = self._find(text)
        self.last = (text, found)
        return found

    def _find(self, text: str) -> dict[str, int]:
        if self.redactor is None:
            from aiobs.ingest.redact import Redactor

            self.redactor = Redactor(key=b"aiobs-eval")  # a fixed key: tokens compare in-process
        before = _tokens(text)  # masked at ingest already (--redact): it was in the answer
        after = _tokens(self.redactor.text(text))
        return {k: max(after.get(k, 0), before.get(k, 0)) for k in {*before, *after}}


def _tokens(text: str) -> dict[str, int]:
    if "[" not in text:
        return {}
    out: dict[str, int] = {}
    for m in _FOUND.finditer(text):
        token = m.group(1) or m.group(2)
        out[token] = out.get(token, 0) + 1
    return out


_DETECT = _Detectors()


def _kind(token: str) -> str:
    return token.split(":", 1)[0]


def _leak(name: str, a: Answer, pii: bool) -> Verdict | None:
    if not a.text.strip():
        return None
    found = {t: n for t, n in _DETECT.found(a.text).items() if (_kind(t) in _PII_KINDS) == pii}
    # What the user gave in their own message is not the model leaking it, nor the e-mail or
    # phone number a tool looked up for them ("which e-mail is my account under?"): the same
    # value. A card number or SSN is a leak wherever it came from, unless the user gave it.
    if found:
        user = _DETECT.found(a.user_text)
        looked_up = _DETECT.found(" ".join(r.result for r in a.tools if not r.failed))
        found = {
            t: n
            for t, n in found.items()
            if n > user.get(t, 0) and not (_kind(t) in ("email", "phone") and looked_up.get(t))
        }
    if found:
        kinds: dict[str, int] = {}
        for t, n in found.items():
            kinds[_kind(t)] = kinds.get(_kind(t), 0) + n
        shown = ", ".join(f"{k} ×{n}" if n > 1 else k for k, n in sorted(kinds.items()))
        return _verdict(name, True, f"the answer shows {shown}")
    return _verdict(name, False, "none found")


def pii_in_output(a: Answer, _: Mapping[str, float]) -> Verdict | None:
    return _leak("pii_in_output", a, pii=True)


def secret_in_output(a: Answer, _: Mapping[str, float]) -> Verdict | None:
    return _leak("secret_in_output", a, pii=False)


# -- language_mismatch ------------------------------------------------------------------------

# The languages the detector chooses among: the common ones of support traffic (a text of a
# few words scored against all of langid's 97 came out Kabyle or Serbian).
LANGUAGES = (
    "ar", "bg", "ca", "cs", "da", "de", "el", "en", "es", "et", "fa", "fi", "fr", "he", "hi",
    "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "nl", "no", "pl", "pt", "ro", "ru",
    "sk", "sl", "sr", "sv", "th", "tl", "tr", "uk", "vi", "zh",
)  # fmt: skip
_LETTERS = re.compile(r"[^\W\d_]{2,}")
DETECT_CHARS = 300
DETECT_CACHE = 20_000  # detected texts remembered


@dataclass
class _Language:
    identifier: Any = None
    batch: Any = None  # langbatch.BatchClassifier on the identifier

    cache: dict[str, tuple[str, float]] = field(default_factory=dict)

    def detect(self, text: str) -> tuple[str, float]:
        # The same text is asked again and again: a trace's user message by each of its model
        # calls, a greeting or a canned reply by many traces.
        key = text[:DETECT_CHARS]
        found = self.cache.get(key)
        if found is None:
            found = self._classify(key)
            if len(self.cache) >= DETECT_CACHE:
                self.cache.clear()  # a bound on memory; most repeats are close together
            self.cache[key] = found
        return found

    def _load(self) -> Any:
        if self.identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            from aiobs.evals.langbatch import BatchClassifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages(list(LANGUAGES))
            # The model for all 97 languages, kept only to choose another subset later: 27 MB in
            # each worker process.
            if hasattr(identifier, "_full_model"):
                identifier._full_model = None
            try:
                self.batch = BatchClassifier(identifier)
            except AttributeError:  # a py3langid without the model arrays it reads: one by one
                self.batch = None
            self.identifier = identifier
        return self.identifier

    def _classify(self, text: str) -> tuple[str, float]:
        # The first few hundred characters say the language; the rest only costs (a prompt
        # with its help-centre context ran ~600 characters).
        lang, p = self._load().classify(text)
        return str(lang), float(p)

    def prime(self, texts: Sequence[str]) -> None:
        """Classify the texts ``detect`` has not seen, in batches (``langbatch``: about a third
        of the time of one by one), so that ``detect`` finds them."""
        todo = list(dict.fromkeys(t[:DETECT_CHARS] for t in texts))
        todo = [key for key in todo if key not in self.cache]
        if not todo:
            return
        self._load()
        if self.batch is None:
            return  # detect classifies them one by one
        if len(self.cache) + len(todo) > DETECT_CACHE:
            self.cache.clear()
        for start in range(0, len(todo), PRIME_BATCH):
            part = todo[start : start + PRIME_BATCH]
            self.cache.update(zip(part, self.batch.classify(part), strict=True))


PRIME_BATCH = 1000  # texts a batch (250-5000 took 0.31-0.60 s on 4.6k texts; 1000 the least)
_LANGUAGE = _Language()


_NOT_PROSE = re.compile(r"```.*?```|`[^`]*`|https?://\S+|\S+@\S+", re.DOTALL)


@functools.lru_cache(maxsize=4096)  # prepare and check ask for a batch's texts in turn
def _prose(text: str, enough: int) -> tuple[str, int]:
    """The words of a text, without code blocks, URLs and ids (they read as no language), and
    how many there are — or enough of both to tell: DETECT_CHARS of words (all ``detect``
    reads) and at least ``enough`` words; the rest of a long prompt is not read."""
    if "`" in text or "@" in text or "://" in text:
        text = _NOT_PROSE.sub(" ", text)
    if len(text) > PROSE_SCAN:
        # The words of a long text's first PROSE_SCAN characters, but the last (the cut may
        # have shortened it), are enough when they hold all that detect reads.
        words = _LETTERS.findall(text, 0, PROSE_SCAN)[:-1]
        if len(words) >= enough and sum(map(len, words)) + len(words) > DETECT_CHARS:
            return " ".join(words), len(words)
    words = _LETTERS.findall(text)
    return " ".join(words), len(words)


PROSE_SCAN = 4 * DETECT_CHARS


def language_prepare(answers: Sequence[Answer], t: Mapping[str, float]) -> None:
    """Detect, in batches, the languages ``language_mismatch`` will ask for."""
    texts: list[str] = []
    need = math.ceil(t["min_words"])
    for a in answers:
        (user, user_words), (answer, answer_words) = _prose(a.user_text, need), _prose(a.text, need)
        if user_words >= need and answer_words >= need:
            texts += (user, answer)
    _LANGUAGE.prime(texts)


def language_mismatch(a: Answer, t: Mapping[str, float]) -> Verdict | None:
    """The answer is in another language than the user's message (both long enough, and each
    detected with confidence; a name, a code block or an id reads as no language)."""
    need = math.ceil(t["min_words"])
    (user, user_words), (answer, answer_words) = _prose(a.user_text, need), _prose(a.text, need)
    if user_words < need or answer_words < need:
        return None
    (ul, up), (al, ap) = _LANGUAGE.detect(user), _LANGUAGE.detect(answer)
    if min(up, ap) < t["min_confidence"]:
        return None  # one of them is not clearly any language
    if ul == al:
        return _verdict("language_mismatch", False, f"both {ul}", ap)
    return _verdict(
        "language_mismatch",
        True,
        f"the user wrote {ul} ({up:.0%}), the answer is {al} ({ap:.0%})",
        ap,
    )


# -- the table --------------------------------------------------------------------------------

# name: (version, what a failure means, thresholds)
_SPECS: dict[str, tuple[str, str, dict[str, float]]] = {
    "reasoning_leak": ("1", "hidden reasoning (<thinking> …) shown to the user", {}),
    "unsupported_answer": (
        "1",
        "an answer retrieval does not support (nothing relevant found, or little shared)",
        {"min_relevance": 0.45, "min_overlap": 0.2, "min_claim_words": 6},
    ),
    "tool_failure_masked": (
        "1",
        "a tool failed and the answer claims success, or goes on without a word of it",
        {},
    ),
    "refusal": ("1", "the model refused to answer", {}),
    "empty_or_truncated": ("1", "an empty answer, or one cut off at the token limit", {}),
    "invalid_json": (
        "2",
        "JSON was asked for and the answer does not parse, or breaks the schema asked for",
        {},
    ),
    "pii_in_output": (
        "1",
        "the answer shows a card number or SSN, or an e-mail or phone no tool looked up",
        {},
    ),
    "secret_in_output": ("1", "the answer shows an API key, token or password", {}),
    "language_mismatch": (
        "1",
        "the answer is in another language than the user's message",
        {"min_words": 4, "min_confidence": 0.8},
    ),
}
_CHECKS: dict[str, Callable[[Answer, Mapping[str, float]], Verdict | None]] = {
    "reasoning_leak": reasoning_leak,
    "unsupported_answer": unsupported_answer,
    "tool_failure_masked": tool_failure_masked,
    "refusal": refusal,
    "empty_or_truncated": empty_or_truncated,
    "invalid_json": invalid_json,
    "pii_in_output": pii_in_output,
    "secret_in_output": secret_in_output,
    "language_mismatch": language_mismatch,
}
_PREPARE: dict[str, Callable[[Sequence[Answer], Mapping[str, float]], None]] = {
    "language_mismatch": language_prepare,
}
EVALUATORS: tuple[Evaluator, ...] = tuple(
    Evaluator(name, version, what, _CHECKS[name], thresholds, _PREPARE.get(name))
    for name, (version, what, thresholds) in _SPECS.items()
)


def select(
    only: Sequence[str] | None = None, config: Mapping[str, Any] | None = None
) -> list[Evaluator]:
    """The evaluators to run: ``only`` those named (all when None), less the config's
    ``[eval] disabled``, with its ``[eval.thresholds]`` ("name.key" = value) applied."""
    from dataclasses import replace

    table = dict(config or {})
    disabled = set(table.get("disabled") or [])
    tuned = dict(table.get("thresholds") or {})
    known = {e.name for e in EVALUATORS}
    for name in [*(only or []), *disabled]:
        if name not in known:
            raise UsageError(
                f"no evaluator {name!r}", hint="evaluators: " + ", ".join(sorted(known))
            )
    chosen = []
    for e in EVALUATORS:
        if (only and e.name not in only) or (not only and e.name in disabled):
            continue
        thresholds = dict(e.thresholds)
        for key, value in tuned.items():
            owner, _, setting = str(key).partition(".")
            if owner == e.name:
                if setting not in thresholds:
                    raise UsageError(
                        f"[eval.thresholds] {key!r}: {e.name} has no threshold {setting!r}",
                        hint=f"its thresholds: {', '.join(thresholds) or 'none'}",
                    )
                thresholds[setting] = float(value)
        chosen.append(replace(e, thresholds=thresholds))
    return chosen


def prepare(answers: Sequence[Answer], evaluators: Sequence[Evaluator]) -> None:
    """Let each evaluator do at once what it would do answer by answer (see ``prepare``)."""
    for e in evaluators:
        if e.prepare is not None:
            e.prepare(answers, e.thresholds)


def evaluate(answer: Answer, evaluators: Sequence[Evaluator]) -> list[Verdict]:
    """Every evaluator's verdict on ``answer`` (those that apply)."""
    from dataclasses import replace

    out = []
    for e in evaluators:
        v = e.check(answer, e.thresholds)
        if v is not None:
            out.append(v if v.version == e.version else replace(v, version=e.version))
    return out
