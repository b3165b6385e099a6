"""aiobs — replay and investigate AI applications from exported OpenTelemetry telemetry.

The package root is lazy (PEP 562): importing ``aiobs`` costs nothing, so ``aiobs --help`` and shell
completion never load duckdb, polars, pyarrow or the protobuf runtime. Library entry points are
resolved on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ingest_paths": "aiobs.ingest.pipeline",
    "IngestSummary": "aiobs.ingest.pipeline",
    "open_store": "aiobs.backend.duckdb",
    "DuckDBBackend": "aiobs.backend.duckdb",
    "Backend": "aiobs.backend",
    "AiobsError": "aiobs.errors",
    "ExitCode": "aiobs.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
