"""Where things live: the store path and the user's config file.

Resolution order for the store: ``--db`` > ``AIOBS_DB`` > ``<user data dir>/aiobs/aiobs.duckdb``.
The config file is ``$AIOBS_CONFIG`` or ``<user config dir>/aiobs/config.toml`` (on Linux
``~/.config/aiobs/config.toml``). Imports only the standard library and platformdirs.
"""

from __future__ import annotations

import os
from pathlib import Path
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


def config_path() -> Path:
    env = os.environ.get("AIOBS_CONFIG")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_path

    return user_config_path("aiobs", appauthor=False) / "config.toml"


def load_config() -> dict[str, Any]:
    """The user's config as a dict; ``{}`` when there is no file."""
    path = config_path()
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
