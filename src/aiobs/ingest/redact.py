"""Optional redaction of secrets and personal data at ingest (``aiobs ingest --redact``).

Prompts, completions, tool arguments, error messages and HTTP headers carry API keys, e-mail
addresses and card numbers. With redaction on, every batch is rewritten before it reaches the
store, so the file never holds them:

- **secrets** (API keys of the common providers, cloud and chat tokens, JWTs, bearer tokens,
  private key blocks) and **card numbers** (issuer prefix + Luhn) and **US SSNs** become
  ``[REDACTED:<kind>]``;
- **e-mail addresses and phone numbers** become a stable pseudonym, ``[email:<12 hex>]``: a keyed
  hash (HMAC-SHA256 with a random per-store key kept in ``aiobs_meta``), so the same customer
  is the same token across files and sessions and users still group, without the address. The
  key is in the store, so this is pseudonymisation, not anonymisation: whoever has the file can
  test a guessed address;
- the whole value of an attribute whose key names a credential (``…authorization``,
  ``…cookie``, ``…password``, ``…api_key``, ``…secret``, ``…access_token`` …) becomes
  ``[REDACTED:secret]``.

The config file's ``[redact]`` table adds ``patterns`` (name → regex, masked as
``[REDACTED:<name>]``) and ``keys`` (attribute keys whose values are always masked), and
``enabled = true`` makes it the default.

It applies to the attribute maps of every table (resource, scope, span, event, link, log and
metric attributes), span names, status messages and log bodies, and to rejects' excerpts; never
to ids, times or enums. Replacements hold no quote or backslash, and no pattern crosses one, so a
JSON-encoded attribute (``gen_ai.input.messages``) stays valid JSON.

The same rewrite serves both decoders, on the Arrow batch just before the insert: values are
screened in C++ (pyarrow's RE2, one pass over each column with every pattern's core) and only
the values that screen positive are rewritten in Python, whose patterns are the same cores with
word boundaries added — they match a subset of what the screen does, so nothing is missed.

Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiobs.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

# A match starts at a word start, or right after a JSON escape (``\n`` before a key in an encoded
# message). Python only: RE2 has no look-behind, and the screen needs none.
_START = r"(?:(?<![A-Za-z0-9_])|(?<=\\[nrt]))"
_NO_DIGIT_AFTER = r"(?![0-9])"


@dataclass(frozen=True)
class Detector:
    kind: str
    core: str  # RE2 and Python alike: the screen uses it as is
    action: str  # "mask" or "pseudonym"
    after: str = ""  # Python-only look-ahead that narrows the match
    # Where in a match the thing really is (start, end), or None: it is not one (e.g. Luhn).
    check: Callable[[str], tuple[int, int] | None] | None = None


_CARD_START = re.compile(r"(?:4|5[1-5]|2[2-7]|3[0-9]|6[045])[0-9]")


def _card(found: str) -> tuple[int, int] | None:
    """The longest run of whole digit groups in ``found`` that is a card number: the greedy
    match also takes a group written before or after one (``4111 1111 1111 1111 000``)."""
    starts = [
        i for i, c in enumerate(found) if c.isdigit() and (i == 0 or not found[i - 1].isdigit())
    ]
    ends = [
        i + 1
        for i, c in enumerate(found)
        if c.isdigit() and (i + 1 == len(found) or not found[i + 1].isdigit())
    ]
    best: tuple[int, int] | None = None
    for start in starts:
        for end in ends:
            if end <= start or (best is not None and end - start <= best[1] - best[0]):
                continue
            window = found[start:end]
            if _CARD_START.match(window) and _luhn(window):
                best = (start, end)
    return best


def _luhn(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _ssn(text: str) -> tuple[int, int] | None:
    area, group, serial = text.split("-")
    valid = area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
    return (0, len(text)) if valid else None


# Order matters where cores overlap: the first that matches at a position names the kind.
DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----"
        r"(?:[^\"]*?-----END [A-Z ]*PRIVATE KEY-----|(?:[A-Za-z0-9+/=\s]|\\[nrt])*)",
        "mask",
    ),
    Detector("jwt", r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", "mask"),
    Detector("anthropic_key", r"sk-ant-[A-Za-z0-9_-]{20,}", "mask"),
    Detector("openai_key", r"sk-[A-Za-z0-9_-]{20,}", "mask"),
    Detector("stripe_key", r"[rs]k_(?:live|test)_[A-Za-z0-9]{16,}", "mask"),
    Detector("aws_access_key", r"(?:AKIA|ASIA)[A-Z0-9]{16}", "mask"),
    Detector(
        "github_token", r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})", "mask"
    ),
    Detector("slack_token", r"xox[abposr]-[A-Za-z0-9-]{10,}", "mask"),
    Detector("google_api_key", r"AIza[A-Za-z0-9_-]{35}", "mask"),
    Detector("bearer_token", r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}", "mask"),
    Detector(
        "email",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        "pseudonym",
    ),
    Detector(
        "card",
        r"(?:4|5[1-5]|2[2-7]|3[0-9]|6[045])[0-9](?:[ -]?[0-9]){11,17}",
        "mask",
        after=_NO_DIGIT_AFTER,
        check=_card,
    ),
    Detector("ssn", r"[0-9]{3}-[0-9]{2}-[0-9]{4}", "mask", after=_NO_DIGIT_AFTER, check=_ssn),
    Detector(
        "phone",
        r"(?:\+[0-9]{1,3}[ .-]?\(?[0-9]{1,4}\)?(?:[ .-]?[0-9]{2,4}){2,4}"
        r"|\([0-9]{3}\) ?[0-9]{3}[ .-][0-9]{4}|[0-9]{3}[.-][0-9]{3}[.-][0-9]{4})",
        "pseudonym",
        after=_NO_DIGIT_AFTER,
    ),
)

# Keys whose values are credentials whatever they look like. Matched on the whole key, case
# aside: ``http.request.header.authorization``, ``db.password``, ``x-api-key``; not
# ``gen_ai.usage.input_tokens``.
SECRET_KEYS = (
    r"(?:^|[._-])(?:password|passwd|secret|client[_-]?secret|api[_-]?key|apikey|"
    r"access[_-]?token|refresh[_-]?token|auth[_-]?token|id[_-]?token|session[_-]?token|"
    r"private[_-]?key|authorization|proxy[_-]authorization|cookie|set[_-]cookie)$"
)

# Columns rewritten besides every attribute map (MAP and MAP[] columns).
TEXT_COLUMNS = frozenset({"SpanName", "StatusMessage", "Body"})


@dataclass
class Redactor:
    """Rewrites text and Arrow batches; ``key`` is the per-store pseudonym key."""

    key: bytes
    extra: dict[str, str] = field(default_factory=dict)
    extra_keys: Iterable[str] = ()

    def __post_init__(self) -> None:
        detectors = [*DETECTORS, *(Detector(k, p, "mask") for k, p in self.extra.items())]
        self._detectors = {f"d{i}": d for i, d in enumerate(detectors)}
        body = "|".join(f"(?P<{g}>{d.core}){d.after}" for g, d in self._detectors.items())
        self._python = re.compile(f"{_START}(?:{body})", re.ASCII)
        self.screen = "|".join(f"(?:{d.core})" for d in detectors)
        exact = "|".join(re.escape(k.lower()) for k in self.extra_keys)
        self.secret_keys = f"(?:{SECRET_KEYS})" + (f"|^(?:{exact})$" if exact else "")
        self._secret_key = re.compile(self.secret_keys, re.ASCII | re.IGNORECASE)

    # ------------------------------------------------------------------------------ text

    def text(self, value: str) -> str:
        return self._python.sub(self._replace, value)

    def value(self, key: str | None, value: str) -> str:
        """An attribute's value: all of it for a credential key, else what the patterns find."""
        if key is not None and value and self._secret_key.search(key):
            return "[REDACTED:secret]"
        return self.text(value)

    def _replace(self, m: re.Match[str]) -> str:
        group = m.lastgroup
        assert group is not None
        detector = self._detectors[group]
        found = m.group(group)
        if detector.check is not None:
            span = detector.check(found)
            if span is None:
                return found
            start, end = span
            return found[:start] + self._token(detector, found[start:end]) + found[end:]
        return self._token(detector, found)

    def _token(self, detector: Detector, found: str) -> str:
        if detector.action == "pseudonym":
            norm = found.lower() if detector.kind == "email" else re.sub(r"[^0-9+]", "", found)
            digest = hmac.new(self.key, norm.encode(), hashlib.sha256).hexdigest()[:12]
            return f"[{detector.kind}:{digest}]"
        return f"[REDACTED:{detector.kind}]"

    # ----------------------------------------------------------------------------- arrow

    def table(self, table: pa.Table) -> tuple[pa.Table, int]:
        """``table`` with its content columns rewritten, and how many values changed."""
        import pyarrow as pa

        changed = 0
        for i, name in enumerate(table.column_names):
            column = table.column(i)
            kind = _content_kind(name, column.type)
            if kind is None or column.num_chunks == 0:
                continue
            arr = column.combine_chunks()
            if kind == "text":
                new, n = self._strings(arr, None)
            elif kind == "map":
                new, n = self._map(arr)
            else:
                new, n = self._map_list(arr)
            if n:
                changed += n
                table = table.set_column(i, table.field(i), pa.chunked_array([new]))
        return table, changed

    def _strings(self, values: pa.Array, keys: pa.Array | None) -> tuple[pa.Array, int]:
        import pyarrow as pa
        import pyarrow.compute as pc

        hits = pc.fill_null(pc.match_substring_regex(values, self.screen), False)
        if keys is not None:
            named = pc.match_substring_regex(keys, self.secret_keys, ignore_case=True)
            hits = pc.or_(hits, pc.fill_null(pc.and_(named, pc.not_equal(values, "")), False))
        if not pc.any(hits, min_count=0).as_py():
            return values, 0
        where = pc.indices_nonzero(hits)
        old = values.take(where).to_pylist()
        names = keys.take(where).to_pylist() if keys is not None else [None] * len(old)
        new = [self.value(k, v) for k, v in zip(names, old, strict=True)]
        n = sum(a != b for a, b in zip(old, new, strict=True))
        if not n:
            return values, 0
        return pc.replace_with_mask(values, hits, pa.array(new, type=pa.string())), n

    def _map(self, maps: pa.Array) -> tuple[pa.Array, int]:
        """A list<{key, value}> column (a MAP once inserted)."""
        import pyarrow as pa

        entries = maps.flatten()
        if len(entries) == 0:
            return maps, 0
        keys, values = entries.field("key"), entries.field("value")
        new, n = self._strings(values, keys)
        if not n:
            return maps, 0
        rebuilt = pa.StructArray.from_arrays([keys, new], fields=list(entries.type))
        return _relist(maps, rebuilt), n

    def _map_list(self, lists: pa.Array) -> tuple[pa.Array, int]:
        """A list<list<{key, value}>> column (Events.Attributes, Links.Attributes, …)."""
        inner = lists.flatten()
        if len(inner) == 0:
            return lists, 0
        new, n = self._map(inner)
        return (_relist(lists, new), n) if n else (lists, 0)


def _relist(lists: pa.Array, values: pa.Array) -> pa.Array:
    """``lists`` with its (flattened) values replaced; nulls and lengths kept."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.fill_null(pc.list_value_length(lists), 0).cast(pa.int32())
    offsets = pa.concat_arrays(
        [pa.array([0], type=pa.int32()), pc.cumulative_sum(lengths).cast(pa.int32())]
    )
    mask = lists.is_null() if lists.null_count else None
    return pa.ListArray.from_arrays(offsets, values, type=lists.type, mask=mask)


def _content_kind(name: str, dtype: Any) -> str | None:
    import pyarrow as pa

    if name in TEXT_COLUMNS and pa.types.is_string(dtype):
        return "text"
    if not pa.types.is_list(dtype):
        return None
    inner = dtype.value_type
    if _is_entries(inner):
        return "map"
    if pa.types.is_list(inner) and _is_entries(inner.value_type):
        return "map_list"
    return None


def _is_entries(dtype: Any) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_struct(dtype)
        and [f.name for f in dtype] == ["key", "value"]
        and all(pa.types.is_string(f.type) for f in dtype)
    )


# --------------------------------------------------------------------------------- config


def redact_config(config: dict[str, Any]) -> tuple[bool, dict[str, str], list[str]]:
    """The config file's ``[redact]`` table: (enabled, extra patterns, extra keys), checked."""
    raw = config.get("redact", {})
    if not isinstance(raw, dict):
        raise UsageError("config: `redact` must be a table")
    unknown = set(raw) - {"enabled", "patterns", "keys"}
    if unknown:
        raise UsageError(f"config: unknown key(s) in [redact]: {', '.join(sorted(unknown))}")
    enabled = raw.get("enabled", False)
    patterns = raw.get("patterns", {})
    keys = raw.get("keys", [])
    if not isinstance(enabled, bool):
        raise UsageError("config: redact.enabled must be true or false")
    if not isinstance(patterns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in patterns.items()
    ):
        raise UsageError('config: redact.patterns must be a table of name = "regex"')
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise UsageError("config: redact.keys must be a list of attribute keys")
    for name, pattern in patterns.items():
        _check_pattern(name, pattern)
    return enabled, dict(patterns), list(keys)


def _check_pattern(name: str, pattern: str) -> None:
    """A pattern must mean the same to Python and to RE2 (the screen): both must accept it, and
    it must not match the empty string (it would rewrite every value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise UsageError(f"config: redact.patterns: {name!r} is not a plain name (letters, _)")
    try:
        compiled = re.compile(pattern, re.ASCII)
        pc.match_substring_regex(pa.array([""]), pattern)
    except (re.error, pa.ArrowInvalid) as exc:
        raise UsageError(
            f"config: redact.patterns.{name}: not a regex both Python and RE2 accept ({exc})"
        ) from exc
    if compiled.groups:
        raise UsageError(f"config: redact.patterns.{name}: use (?:...) instead of capturing groups")
    if compiled.fullmatch(""):
        raise UsageError(f"config: redact.patterns.{name}: matches the empty string")
