"""Post a scan's incidents to webhooks (Slack-compatible ``text``, plus the structured incidents).

A failed post never fails the scan: each URL gets ``RETRIES`` attempts with exponential backoff
on connection errors, timeouts, 429 and 5xx; what still fails is reported on stderr.

Must not import duckdb, polars or textual; httpx is imported when a post is made.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

TIMEOUT_S = 5.0
RETRIES = 3
BACKOFF_S = 0.5  # then 1 s, 2 s: a receiver restarting gets a few seconds to come back


def payload(result: Mapping[str, Any], incidents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON body: ``text`` for Slack-style receivers (one line an incident), then the
    incidents with their severity, insight, causes, impact and a ready replay command."""
    lines = [f"aiobs scan: {len(incidents)} incident(s)"]
    items = []
    for inc in incidents:
        replay = f"aiobs replay {inc['examples'][0]}" if inc["examples"] else None
        lines.append(f"[{inc['severity'].upper()}] {slack_text(inc['summary'])}")
        if replay:
            lines.append(f"    replay: {replay}")
        items.append(
            {
                "id": inc["id"],
                "severity": inc["severity"],
                "start": inc["start"],
                "end": inc["end"],
                "summary": inc["summary"],
                "segment": inc["segment"],
                "likely_causes": inc["likely_causes"],
                "impact": inc["impact"],
                "examples": inc["examples"],
                "replay": replay,
            }
        )
    return {"text": "\n".join(lines), "window": result["window"], "incidents": items}


def post(
    urls: Sequence[str],
    body: dict[str, Any],
    *,
    warn: Callable[[str], None],
    timeout: float = TIMEOUT_S,
    retries: int = RETRIES,
    backoff: float = BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, bool]:
    """POST ``body`` to each URL; {url: delivered}."""
    import httpx

    from aiobs.cli.render import json_text

    content = json_text(body).encode()
    delivered: dict[str, bool] = {}
    with httpx.Client(timeout=timeout, headers={"content-type": "application/json"}) as client:
        for url in urls:
            delivered[url] = False
            problem = ""
            for attempt in range(retries):
                if attempt:
                    sleep(backoff * 2 ** (attempt - 1))
                try:
                    response = client.post(url, content=content)
                except (httpx.HTTPError, httpx.InvalidURL) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                    continue
                if response.status_code < 300:
                    delivered[url] = True
                    break
                problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    break  # the receiver refuses this request: retrying will not change that
            if not delivered[url]:
                warn(f"webhook {redact(url)}: not delivered ({problem})")
    return delivered


def redact(url: str) -> str:
    """Scheme, host and port only: webhook paths carry their secret (Slack's do), and so may
    the user-info part."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<webhook>"
    return f"{parts.scheme}://{parts.hostname}{port}/…" if parts.hostname else "<webhook>"


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be posted to, or None."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an http:// or https:// URL"
    return None


_CONTROL = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def slack_text(text: str) -> str:
    """Telemetry text made inert for Slack-style ``text``: control characters dropped, and
    ``&``, ``<``, ``>`` escaped so a log line cannot ping @channel or disguise a link."""
    text = _CONTROL.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
