"""Post a scan's incidents to webhooks (Slack-compatible ``text``, plus the structured incidents).

A failed post never fails the scan: each URL gets ``RETRIES`` attempts with exponential backoff
on connection errors, timeouts, 429 and 5xx; what still fails is reported on stderr.

Must not import duckdb, polars or textual; httpx is imported when a post is made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

TIMEOUT_S = 5.0
RETRIES = 3
BACKOFF_S = 0.5  # then 1 s, 2 s: a receiver restarting gets a few seconds to come back


def payload(result: dict[str, Any], incidents: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON body: ``text`` for Slack-style receivers (one line an incident), then the
    incidents with their severity, insight, causes, impact and a ready replay command."""
    lines = [f"aiobs scan: {len(incidents)} incident(s)"]
    items = []
    for inc in incidents:
        replay = f"aiobs replay {inc['examples'][0]}" if inc["examples"] else None
        lines.append(f"[{inc['severity'].upper()}] {inc['summary']}")
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
                except httpx.HTTPError as exc:
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
    """The URL without its path and query: webhook paths carry their secret (Slack's do)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "<webhook>"
