"""Where things live, and what the user configured: the store path, the cache directory and
the config file.

Resolution order for the store: ``--db`` > ``AIOBS_DB`` > ``<user data dir>/aiobs/aiobs.duckdb``.
The config file is ``$AIOBS_CONFIG`` or ``<user config dir>/aiobs/config.toml`` (on Linux
``~/.config/aiobs/config.toml``). The CLI reads it once into a ``Config`` and hands the parts
down (prices to the backend, redaction to ingest, webhooks to scan); nothing below the CLI reads
the file. Imports only the standard library and platformdirs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from aiobs.errors import UsageError


def default_db_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path("aiobs", appauthor=False) / "aiobs.duckdb"


def resolve_db_path(db: str | os.PathLike[str] | None) -> Path:
    if db:
        return Path(db).expanduser()
    env = os.environ.get("AIOBS_DB")
    if env:
        return Path(env).expanduser()
    return default_db_path()


def cache_dir() -> Path:
    """Where aiobs keeps what it can compute again (the judge's answers, ClickHouse
    translations): ``$AIOBS_CACHE_DIR`` or the user cache directory."""
    env = os.environ.get("AIOBS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("aiobs", appauthor=False)


def config_path() -> Path:
    env = os.environ.get("AIOBS_CONFIG")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_path

    return user_config_path("aiobs", appauthor=False) / "config.toml"


@dataclass(frozen=True, kw_only=True)
class Config:
    """The user's config file, read once (an empty one when there is no file).

    Each table is handed to the layer that understands it, which checks it when it is used (a
    malformed ``[scan]`` table fails ``scan``, not every command): ``[prices]`` overlays the
    shipped price list (``aiobs.semantic.prices.load_prices(config.tables)``), ``[redact]`` is
    ingest's (``aiobs.ingest.redact.redact_config(config.tables)``)."""

    path: Path | None = None
    tables: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def scan_webhooks(self) -> list[str]:
        """``[scan] webhooks``: the URLs every ``scan`` posts to (with ``--webhook``, more)."""
        scan = self.tables.get("scan", {})
        hooks = scan.get("webhooks", []) if isinstance(scan, Mapping) else None
        if not isinstance(hooks, list) or not all(isinstance(h, str) for h in hooks):
            raise UsageError("config [scan] webhooks must be a list of URLs")
        return list(hooks)


def read_config() -> Config:
    """The user's config file as a ``Config``."""
    path = config_path()
    return Config(path=path, tables=load_config(path))


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The user's config (at ``path``, else ``config_path()``) as a dict; ``{}`` without a file."""
    path = path or config_path()
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from exc
    # tomllib only when there is a file: its import is ~4 ms of every command's start.
    import tomllib

    try:
        with fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from exc
