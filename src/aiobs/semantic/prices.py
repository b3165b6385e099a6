"""The price table: shipped list prices (``prices.toml``) overlaid with the user's config ``[prices]``.

A cost recorded in the telemetry always wins; this table only fills the gap. Model names are matched
after ``model_key`` normalisation, which the SQL views reproduce with the same regular expression.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiobs.errors import UsageError

# Provider prefix ("openai/", "models/", "anthropic.") and date/version suffixes
# ("-2024-08-06", "-20241022", "-2411", "-latest", "@20240229", ":0", "-v1:0", "-001", "-preview…").
# Lookups try the exact (lower-cased) name first, so a name that merely looks suffixed
# (text-embedding-004) keeps its own price.
MODEL_KEY_PATTERN = (
    r"^([a-z0-9_.-]*/|anthropic\.|us\.anthropic\.|eu\.anthropic\.)"
    r"|(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest|@.*|-v\d+(:\d+)?|:\d+|-\d{3}|-preview.*|-exp.*)+$"
)
_MODEL_KEY_RE = re.compile(MODEL_KEY_PATTERN)


def model_key(model: str) -> str:
    """Normalise a model name for price lookup: ``openai/gpt-4o-2024-08-06`` → ``gpt-4o``."""
    return _MODEL_KEY_RE.sub("", model.strip().lower())


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cached_input: float | None = None


def _parse(table: dict[str, Any], origin: str) -> dict[str, Price]:
    out: dict[str, Price] = {}
    for model, entry in table.items():
        if not isinstance(entry, dict):
            raise UsageError(f"{origin}: prices.{model} must be a table with input/output")
        try:
            cached = entry.get("cached_input")
            price = Price(
                float(entry["input"]),
                float(entry["output"]),
                None if cached is None else float(cached),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                f"{origin}: prices.{model}: need numeric input and output ({exc})"
            ) from exc
        if not all(
            math.isfinite(v) and v >= 0
            for v in (price.input, price.output, price.cached_input or 0.0)
        ):
            raise UsageError(f"{origin}: prices.{model}: prices must be finite and not negative")
        out[model.strip().lower()] = price
    return out


def shipped_prices() -> dict[str, Price]:
    # A plain path, not importlib.resources: importing that cost 10-14 ms of every store command.
    text = Path(__file__).with_name("prices.toml").read_text("utf-8")
    return _parse(tomllib.loads(text).get("prices", {}), "prices.toml")


def load_prices(config: Mapping[str, Any] | None = None) -> dict[str, Price]:
    """Shipped prices, overridden model by model by the config's ``prices`` table."""
    prices = shipped_prices()
    user = (config or {}).get("prices", {})
    if user:
        if not isinstance(user, dict):
            raise UsageError("config: `prices` must be a table")
        prices.update(_parse(user, "config"))
    return prices
