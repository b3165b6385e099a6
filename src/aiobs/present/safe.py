"""Making untrusted telemetry text inert before it reaches a terminal.

Prompts, completions, attribute values and error messages come from the systems being debugged and
may hold terminal escape sequences or Rich markup. Every string shown in table/markdown output goes
through ``inert``: C0/C1 control characters (ESC included) become visible ``\\xNN`` escapes; newlines
and tabs are kept only where the caller allows. Rich markup is never interpreted because cells are
built as ``rich.text.Text`` objects, not markup strings.

Imports only the standard library.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_CONTROL_NO_NL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character (and bidi override) shown as an escape."""
    pattern = _CONTROL if keep_newlines else _CONTROL_NO_NL
    return pattern.sub(_escape, text)
