"""Optional redaction of secrets and personal data at ingest (``aiobs ingest --redact``).

Prompts, completions, tool arguments, error messages and HTTP headers carry API keys, e-mail
addresses and card numbers. With redaction on, every batch is rewritten before it reaches the
store, so the file never holds them:

- **secrets** (API keys of the common providers, cloud and chat tokens, JWTs, bearer and basic
  credentials, private key blocks, ``password=…``-style pairs, credential members of JSON objects
  and OTLP attribute lists), **card numbers** (grouped as cards are, issuer range and Luhn
  checked) and **US SSNs** become ``[REDACTED:<kind>]``;
- **e-mail addresses and phone numbers** become a stable pseudonym, ``[email:<12 hex>]``: a keyed
  hash (HMAC-SHA256 with a random per-store key kept in ``aiobs_meta``), so the same customer
  is the same token across files and sessions and users still group, without the address. The
  key is in the store, so this is pseudonymisation, not anonymisation: whoever has the file can
  test a guessed address;
- the whole value of an attribute whose key names a credential (``…authorization``,
  ``…cookie``, ``…password``, ``…api_key``, ``…secret``, ``…access_token``, ``…card_number`` …)
  becomes ``[REDACTED:secret]``.

A value that is a number and nothing else (a score, a cost, a decimal id), and a number in JSON,
are left alone: they are telemetry, and a 16-digit id passes a card's checks one time in ten.

The config file's ``[redact]`` table adds ``patterns`` (name → RE2 regex, masked as
``[REDACTED:<name>]`` wherever they match) and ``keys`` (attribute keys whose values are always
masked), and ``enabled = true`` makes it the default.

It applies to the attribute maps of every table (resource, scope, span, event, link, log and
metric attributes), the free-text columns (span and event names, service and scope names, status
messages, log bodies and severity texts, trace states, schema URLs, metric descriptions) and
rejects' excerpts; never to ids, times or enums. Replacements hold no quote or backslash and no pattern ends inside an escape, so
a JSON-encoded attribute (``gen_ai.input.messages``) stays valid JSON; a match may begin right
after a JSON escape (``\\n``, ``\\u00e9``) or a URL escape (``%3D``).

Both passes are RE2, which runs in time linear in the text (telemetry is untrusted: Python's
``re`` took 20 s on one adversarial 200 KB value): pyarrow's RE2 screens each content column in
C++ with every pattern, and google-re2 rewrites, in Python, only the values that screen positive.
The same patterns in the same engine, so the screen misses nothing the rewrite would change.

Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiobs.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

# What may stand right before a match: the start, a character that cannot continue a token, or
# an escape (JSON ``\n``, ``\"``, ``\u00e9``, also JSON-encoded again: ``\\n``; URL ``%3D``).
# Captured, and put back.
_ESCAPES = r"(?:\\\\)*\\(?:[nrtbf\"/]|u[0-9a-fA-F]{4})|%[0-9A-Fa-f]{2}"
_BOUNDARY = rf"[^\p{{L}}\p{{N}}\\]|{_ESCAPES}"
# Digits are stricter: not a decimal's fraction or exponent, nor the tail of a dashed or
# underscored id (``sess_4539578763621486``).
_DIGIT_BOUNDARY = rf"[^\p{{L}}\p{{N}}\\.+_-]|{_ESCAPES}"
# A character of an e-mail address, or one JSON-escaped (once or twice).
# Surrogates (an emoji's two escapes) are not part of an address.
_U = r"(?:\\\\)*\\u(?:[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2})"

_CREDENTIAL = (
    r"password|passwd|passphrase|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?token"
    r"|refresh[_-]?token|auth[_-]?token|id[_-]?token|session[_-]?token|bearer[_-]?token"
    r"|private[_-]?key|authorization|proxy[_-]authorization|cookie|set[_-]cookie"
    r"|card[_-]?number|cc[_-]?number|credit[_-]?card|cvv|cvc"
)
# Keys whose values are credentials whatever they look like, matched on the whole key, case
# aside: ``http.request.header.authorization``, ``db.password``, ``x-api-key``; not
# ``gen_ai.usage.input_tokens``.
SECRET_KEYS = rf"(?i:(?:^|[._-])(?:{_CREDENTIAL})$)"


@dataclass(frozen=True)
class Detector:
    kind: str
    # RE2. A member's or pair's value is the group (?P<v>…): only it is masked.
    core: str
    action: str  # "mask", "pseudonym", or "value" (mask the (?P<v>) group)
    digits: bool = False  # starts at a digit boundary (_DIGIT_BOUNDARY)
    # Given the whole text and the match's span: whether it is one after all (not a Luhn
    # failure, a number that goes on, a JSON number).
    check: Callable[[bytes, int, int], bool] | None = None
    # For "value": how a bare number is quoted when masked, in a JSON member ('"', or '\\"' inside
    # a JSON string); None elsewhere (a key=value pair in text gets no quotes).
    quote: str | None = None
    # For "value": an unquoted value is matched up to this many bytes (so a chain of pairs stays
    # linear) and its mask extended to the end of its token.
    capped: int | None = None


# A number and nothing else; unambiguous, so a long run of digits cannot make it backtrack.
# No leading "+": "+14155552671" is a phone number.
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _ends_token(after: bytes) -> bool:
    """Whether a digit run ends here: not followed by a letter or digit, nor by ``.``/``-`` and
    more of them (a decimal, a dashed id)."""
    if not after:
        return True
    if after[:1].isalnum() or after[:1] == b"_":
        return False
    return not (after[:1] in (b".", b"-") and after[1:2].isalnum())


class _JsonStrings:
    """Whether byte offsets of a text, asked in increasing order, lie inside a JSON string (a
    quote not escaped opens or closes one). One pass over the text for all the questions."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.inside = False
        self.escaped = False

    def inside_at(self, offset: int) -> bool:
        data, inside, escaped = self.data, self.inside, self.escaped
        for i in range(self.pos, offset):
            c = data[i]
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = inside
            elif c == 0x22:  # quote
                inside = not inside
        self.pos, self.inside, self.escaped = max(self.pos, offset), inside, escaped
        return inside


def _bare_json_number(data: bytes, start: int, end: int) -> str | None:
    """Where plain digits stand outside any JSON string: "member" (``"order_id": 4532…,``, an
    id: kept), "element" (``[4532…, 1]``: masked in quotes, so the JSON stays JSON), or None."""
    i = _skip_space_back(data, start)
    before = data[i - 1 : i]
    after = data[_skip_space(data, end) :][:1]
    key_closed = data[_skip_space_back(data, i - 1) - 1 :][:1] == b'"'
    if before == b":" and key_closed and after in (b",", b"}"):
        return "member"
    if before in (b"[", b",") and after in (b",", b"]"):
        return "element"
    return None


def _skip_space(data: bytes, i: int) -> int:
    while i < len(data) and data[i] in b" \t\r\n":
        i += 1
    return i


def _skip_space_back(data: bytes, i: int) -> int:
    while i > 0 and data[i - 1] in b" \t\r\n":
        i -= 1
    return i


def _card_number(digits: str) -> bool:
    """Issuer range and length of the card schemes, then Luhn."""
    n = len(digits)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    ok = (
        (digits[0] == "4" and n in (13, 16, 19))  # Visa
        or ((51 <= two <= 55 or 222100 <= six <= 272099) and n == 16)  # Mastercard
        or (two in (34, 37) and n == 15)  # Amex
        or ((four == 6011 or 644 <= int(digits[:3]) <= 649 or two == 65) and 16 <= n <= 19)
        or ((300 <= int(digits[:3]) <= 305 or two in (36, 38, 39)) and 14 <= n <= 19)  # Diners
        or (3528 <= four <= 3589 and 16 <= n <= 19)  # JCB
        or (two == 62 and 16 <= n <= 19)  # UnionPay
    )
    if not ok:
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# A check gets the UTF-8 text and a match's byte span; the matches are ASCII.


def _card(data: bytes, start: int, end: int) -> bool:
    if not _ends_token(data[end : end + 2]):
        return False
    return _card_number(re.sub(r"[ -]", "", data[start:end].decode()))


def _ssn(data: bytes, start: int, end: int) -> bool:
    if not _ends_token(data[end : end + 2]):
        return False
    area, group, serial = data[start:end].decode().split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _phone_end(data: bytes, start: int, end: int) -> int | None:
    """Where the phone number in data[start:end] ends: the greedy match may have taken in a
    group of the digits that follow ("+1 415 555 0100 00000"); those groups are given back."""
    while not _ends_token(data[end : end + 2]):
        end = max(
            data.rfind(b" ", start, end), data.rfind(b".", start, end), data.rfind(b"-", start, end)
        )
        if end <= start or sum(48 <= c <= 57 for c in data[start:end]) < 8:
            return None
    return end


def _phone(data: bytes, start: int, end: int) -> bool:
    return _phone_end(data, start, end) is not None


_DOTTED = re.compile(rb"\.[A-Za-z0-9_-]{8}")


def _basic(data: bytes, start: int, end: int) -> bool:
    """``Basic <base64 of user:password>``: only if it decodes to that (not prose)."""
    if _DOTTED.match(data, end):
        return False  # a dotted token (a JWT after "Basic"): the other patterns' to judge
    token = data[start:end].decode().split()[-1]
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        plain = decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return ":" in plain and plain.isprintable()


def _pair(data: bytes, start: int, end: int) -> bool:
    """A pair's value is not the next pair: "password: api_key=…" or "password: password: …"
    (that one has its own value), nor the quotes around the next pair's key: in 'password: "
    api_key="abc123"' the "value" '" api_key="' would leave abc123 shown. "password=supersecret:"
    is a value."""
    value = _PAIR_VALUE.split(data[start:end], 1)[-1]
    inner = value.strip(b"\"'\\").strip()
    return not (_next_pair().match(value) or (inner != value and _next_pair().match(inner)))


_PAIR_VALUE = re.compile(rb"[=:][ \t]*")
# What ends an unquoted pair value (the pattern's class and the mask's extension alike).
_UNQUOTED_STOP = r"\s&\"',;\\"
_UNQUOTED_END = re.compile(f"[{_UNQUOTED_STOP}]".encode())
_PAIR_CAP = 256


def _token_end(data: bytes, i: int) -> int:
    m = _UNQUOTED_END.search(data, i)
    return m.start() if m else len(data)


@functools.cache
def _next_pair() -> Any:
    # A whole key=value, or a bare credential word and its separator (not "supersecret:").
    return _compile(
        rf"^(?:{_KEY}'?[ \t]*[=:][ \t]*[^\s]|(?:[A-Za-z0-9_.-]*[._-])?(?i:{_CREDENTIAL})'?[=:]$)"
    )


# A JSON member's value: a string or a number; plain, or JSON-encoded inside another string,
# where its quotes are \" and a quote inside it \\\".
_JSON_VALUE = r'"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*'
_ESCAPED_VALUE = r'\\"(?:[^"\\]|\\\\\\"|\\[^"])*\\"|-?[0-9][0-9.eE+-]*'
_KEY = rf"[A-Za-z0-9_.-]*(?i:{_CREDENTIAL})"

# Order matters where cores overlap: the first that matches at a position names the kind.
DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[^\"]*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|(?:[A-Za-z0-9+/=\s]|\\[nrt])*)",
        "mask",
    ),
    # A credential attribute in OTLP JSON (a rejected line's excerpt):
    # {"key": "db.password", "value": {"stringValue": "…"}}.
    Detector(
        "secret",
        rf'"key"\s*:\s*"{_KEY}"\s*,\s*"value"\s*:\s*\{{\s*"[a-zA-Z]+Value"\s*:\s*(?P<v>{_JSON_VALUE})',
        "value",
        quote='"',
    ),
    Detector("secret", rf'"{_KEY}"\s*:\s*(?P<v>{_JSON_VALUE})', "value", quote='"'),
    Detector("secret", rf'\\"{_KEY}\\"\s*:\s*(?P<v>{_ESCAPED_VALUE})', "value", quote='\\"'),
    Detector("jwt", r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", "mask"),
    Detector("anthropic_key", r"sk-ant-[A-Za-z0-9_-]{20,}", "mask"),
    Detector("openai_key", r"sk-[A-Za-z0-9_-]{20,}", "mask"),
    Detector("stripe_key", r"[rs]k_(?:live|test)_[A-Za-z0-9]{16,}", "mask"),
    Detector("aws_access_key", r"(?:AKIA|ASIA)[A-Z0-9]{16}", "mask"),
    Detector("github_token", r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}", "mask"),
    Detector("slack_token", r"xox[abposr]-[A-Za-z0-9-]{10,}", "mask"),
    Detector("google_api_key", r"AIza[A-Za-z0-9_-]{35}", "mask"),
    Detector("bearer_token", r"(?i:bearer)[ \t]+[A-Za-z0-9._~+/=-]{16,}", "mask"),
    Detector("basic_auth", r"(?i:basic)[ \t]+[A-Za-z0-9+/]{6,}={0,2}", "mask", check=_basic),
    # A URL's password: scheme://user:password@host.
    Detector("secret", r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"'\\]*:(?P<v>[^\s/@\"'\\]+)@", "value"),
    # password=…, api_key: '…', PGPASSWORD=…, {'password': '…'} (a Python repr). The value never
    # starts a JSON structure, and a quoted one holds none of its punctuation: the key may end a
    # JSON string ("Enter your password:"}, {…) whose next quotes are not a value's.
    Detector(
        "secret",
        rf"{_KEY}'?[ \t]*[=:][ \t]*(?:(?i:basic|bearer|digest|token)[ \t]+)?"
        r"(?P<v>\"[^\"\n{}\[\],:]*\"|\\+\"[^\"\n{}\[\],:]*\\\"|[bu]?'(?:[^'\"\\\n{}\[\],:]|\\[^\"])*'"
        rf"|[^{_UNQUOTED_STOP}{{\[][^{_UNQUOTED_STOP}]{{0,{_PAIR_CAP - 1}}})",
        "value",
        check=_pair,
        capped=_PAIR_CAP,
    ),
    Detector(
        "email",
        rf"(?:[\p{{L}}\p{{N}}._%+-]|{_U})+(?:@|%40)(?:[\p{{L}}\p{{N}}-]|{_U})+"
        rf"(?:\.(?:[\p{{L}}\p{{N}}-]|{_U})+)*\.(?:\p{{L}}|{_U}){{2,}}",
        "pseudonym",
    ),
    Detector(
        "card",
        r"[2-6][0-9]{12,18}|[2-6][0-9]{3}(?: [0-9]{4}){2} [0-9]{1,7}"
        r"|[2-6][0-9]{3}(?:-[0-9]{4}){2}-[0-9]{1,7}|3[47][0-9]{2}[ -][0-9]{6}[ -][0-9]{5}",
        "mask",
        digits=True,
        check=_card,
    ),
    Detector("ssn", r"[0-9]{3}-[0-9]{2}-[0-9]{4}", "mask", digits=True, check=_ssn),
    Detector(
        "phone",
        r"\+[0-9]{1,3}[ .-]?\(?[0-9]{1,4}\)?(?:[ .-][0-9]{2,5}){2,4}"
        r"|\+[0-9]{10,14}|\([0-9]{3}\) ?[0-9]{3}[ .-][0-9]{4}|[0-9]{3}[.-][0-9]{3}[.-][0-9]{4}",
        "pseudonym",
        digits=True,
        check=_phone,
    ),
)

_UNESCAPE = re.compile(r"\\+u([0-9a-fA-F]{4})")
_QUOTE_OPEN = re.compile(r"\\*\"|'")
_QUOTE_CLOSE = re.compile(r"\\*\"\Z|'\Z")


def _compile(pattern: str) -> Any:
    import re2

    options = re2.Options()
    # The combined pattern's automaton outgrows RE2's default 8 MB, which then logs "DFA out of
    # memory" to stderr on every search and falls back to its slower NFA.
    options.max_mem = 64 << 20
    options.log_errors = False  # a refused config pattern is reported as a usage error
    return re2.compile(pattern, options)


def _named(core: str, i: int) -> str:
    """A detector's core with its value group named uniquely (RE2 refuses repeated names)."""
    return core.replace("(?P<v>", f"(?P<v{i}>")


@dataclass
class Redactor:
    """Rewrites text and Arrow batches; ``key`` is the per-store pseudonym key."""

    key: bytes
    extra: dict[str, str] = field(default_factory=dict)
    extra_keys: Iterable[str] = ()

    def __post_init__(self) -> None:
        self._detectors: dict[str, tuple[Detector, str | None]] = {}
        words: list[str] = []
        digits: list[str] = []
        cores: list[str] = []
        for i, d in enumerate(DETECTORS):
            core = _named(d.core, i)
            value = f"v{i}" if core != d.core else None
            self._detectors[f"d{i}"] = (d, value)
            (digits if d.digits else words).append(f"(?P<d{i}>{core})")
            cores.append(core)
        # The config's patterns match anywhere, as a search for them would.
        user = []
        for i, (name, pattern) in enumerate(self.extra.items()):
            self._detectors[f"u{i}"] = (Detector(name, pattern, "mask"), None)
            user.append(f"(?P<u{i}>{pattern})")
            cores.append(pattern)
        self._pattern = _compile(
            "|".join(
                [
                    f"(?:^|(?P<pre>{_BOUNDARY}))(?:{'|'.join(words)})",
                    f"(?:^|(?P<dpre>{_DIGIT_BOUNDARY}))(?:{'|'.join(digits)})",
                    *user,
                ]
            )
        )
        # Per detector group: its index, the detector, and its value group's index (or None).
        index = self._pattern.groupindex
        self._groups = [
            (index[g], d, None if v is None else index[v]) for g, (d, v) in self._detectors.items()
        ]
        # The screen: every pattern without the boundaries (they only narrow a match).
        self.screen = "|".join(f"(?:{c})" for c in cores)
        exact = "|".join(re.escape(k.lower()) for k in self.extra_keys)
        self.secret_keys = SECRET_KEYS + (f"|(?i:^(?:{exact})$)" if exact else "")
        self._secret_key = _compile(self.secret_keys)

    # ------------------------------------------------------------------------------ text

    def text(self, value: str) -> str:
        if _NUMBER.fullmatch(value):
            return value  # a number is telemetry (a score, a cost, an id), not a card
        # Searched as UTF-8 bytes: google-re2 encodes a str argument again at every search(), so
        # searching a str match by match was quadratic (21.7 s for 200 KB of addresses).
        data = value.encode("utf-8", "surrogatepass")
        out: list[bytes] = []
        pos = 0  # data[:pos] is decided
        search = 0
        strings: _JsonStrings | None = None
        while True:
            m = self._pattern.search(data, search)
            if m is None:
                break
            group, detector, value_group = next(
                g for g in self._groups if m.group(g[0]) is not None
            )
            start, end = m.start(group), m.end(group)
            if detector.check is not None and not detector.check(data, start, end):
                # Not one after all; look again from just inside it (a phone number in a
                # card-shaped run, a JWT after a word "Basic"), or for a pair from its value
                # on (the value may be the next pair; starting inside the key again and again
                # was quadratic). Its first byte is ASCII.
                search = start + 1 if value_group is None else m.start(value_group) - 1
                continue
            if detector.kind == "phone":
                end = _phone_end(data, start, end) or end
            quoted = False
            if detector.kind == "card" and data[start:end].isdigit():
                strings = strings or _JsonStrings(data)
                place = None if strings.inside_at(start) else _bare_json_number(data, start, end)
                if place == "member":
                    search = start + 1
                    continue
                quoted = place == "element"
            if value_group is not None:
                start, end = m.start(value_group), m.end(value_group)
                if (
                    detector.capped == end - start
                    and data[start : start + 1] not in (b'"', b"'", b"\\")
                    and data[end - 1 : end] not in (b'"', b"'")
                ):
                    # The pattern takes this much of an unquoted value (so a chain of pairs is
                    # linear: 172 s for 200 KB of "password=" before); the mask takes the rest.
                    # Only a pair's, and never a quoted one's (a JSON string would lose its end).
                    end = _token_end(data, end)
            out.append(data[pos:start])
            token = self._token(detector, data[start:end].decode("utf-8", "surrogatepass"))
            out.append((f'"{token}"' if quoted else token).encode("utf-8", "surrogatepass"))
            pos = search = end
        if not out:
            return value
        out.append(data[pos:])
        return b"".join(out).decode("utf-8", "surrogatepass")

    def value(self, key: str | None, value: str) -> str:
        """An attribute's value: all of it for a credential key, else what the patterns find."""
        if key is not None and value and self._secret_key.search(key):
            return "[REDACTED:secret]"
        return self.text(value)

    def _token(self, detector: Detector, found: str) -> str:
        if detector.action == "value":
            # Keep the value's quotes (escaped to any depth), so JSON stays JSON; a JSON
            # member's bare number gets some.
            opening, closing = _QUOTE_OPEN.match(found), _QUOTE_CLOSE.search(found)
            if opening and closing and opening.end() <= closing.start():
                return f"{opening.group()}[REDACTED:secret]{closing.group()}"
            if detector.quote is not None and _NUMBER.fullmatch(found):
                return f"{detector.quote}[REDACTED:secret]{detector.quote}"
            return "[REDACTED:secret]"
        if detector.action == "pseudonym":
            if detector.kind == "email":
                unescaped = _UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), found)
                norm = unescaped.replace("%40", "@").lower()
                # Escaped surrogate pairs rejoined (an address with an emoji in it, escaped).
                norm = norm.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
            else:
                norm = re.sub(r"[^0-9+]", "", found)
            raw = norm.encode("utf-8", "surrogatepass")
            digest = hmac.new(self.key, raw, hashlib.sha256).hexdigest()[:12]
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
            elif kind == "text_list":
                new, n = self._text_list(arr)
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
            named = pc.match_substring_regex(keys, self.secret_keys)
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

    def _text_list(self, lists: pa.Array) -> tuple[pa.Array, int]:
        """A list<string> column (Events.Name, Links.TraceState)."""
        values = lists.flatten()
        if len(values) == 0:
            return lists, 0
        new, n = self._strings(values, None)
        return (_relist(lists, new), n) if n else (lists, 0)

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


# Free-text columns rewritten besides every attribute map (MAP and MAP[] columns). ServiceName is
# a copy of the resource's service.name, rewritten alike so the two agree.
TEXT_COLUMNS = frozenset(
    {
        "SpanName",
        "StatusMessage",
        "Body",
        "ServiceName",
        "TraceState",
        "ScopeName",
        "ScopeVersion",
        "EventName",
        "MetricName",
        "MetricDescription",
        "MetricUnit",
        "SeverityText",
        "ResourceSchemaUrl",
        "ScopeSchemaUrl",
    }
)
TEXT_LIST_COLUMNS = frozenset({"Events.Name", "Links.TraceState"})


def _content_kind(name: str, dtype: Any) -> str | None:
    import pyarrow as pa

    if name in TEXT_COLUMNS and pa.types.is_string(dtype):
        return "text"
    if not pa.types.is_list(dtype):
        return None
    inner = dtype.value_type
    if name in TEXT_LIST_COLUMNS and pa.types.is_string(inner):
        return "text_list"
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


# A truncated excerpt may end inside a secret whose rest was cut (``… sk-proj-ABC``): the patterns
# cannot know it, so its last run of token characters goes.
# (A card written in groups leaves its earlier groups: a trailing run of digits goes too.)
_TRAILING_TOKEN = re.compile(r"(?:[0-9][0-9 -]*)?[A-Za-z0-9_\-+/=.@%:]*\Z")


def excerpt(redactor: Redactor, text: str) -> str:
    """A rejected line's excerpt, rewritten, without a token its truncation may have cut."""
    if not text:
        return text
    return _TRAILING_TOKEN.sub(lambda m: "…" if m.group(0) else "", redactor.text(text), count=1)


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
    if patterns or keys:
        # Built once, as ingest will: what compiles alone must also compile together.
        try:
            Redactor(b"check", dict(patterns), list(keys))
        except Exception as exc:  # re2's errors have no common base class
            raise UsageError(f"config: redact.patterns: {exc}") from exc
    return enabled, dict(patterns), list(keys)


def _check_pattern(name: str, pattern: str) -> None:
    """An RE2 regex (the engine of both passes) without capturing groups that cannot match the
    empty string (it would rewrite every value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise UsageError(f"config: redact.patterns: {name!r} is not a plain name (letters, _)")
    try:
        # pyarrow first: google-re2 also logs a refused pattern to stderr.
        matches_empty = bool(pc.match_substring_regex(pa.array([""]), pattern)[0].as_py())
        compiled = _compile(pattern)
    except Exception as exc:  # pa.ArrowInvalid, re2.error
        raise UsageError(f"config: redact.patterns.{name}: not an RE2 regex ({exc})") from exc
    if compiled.groups:
        raise UsageError(f"config: redact.patterns.{name}: use (?:...) instead of capturing groups")
    if matches_empty:
        raise UsageError(f"config: redact.patterns.{name}: matches the empty string")
