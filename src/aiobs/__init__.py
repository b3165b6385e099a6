"""aiobs — replay and investigate AI applications from exported OpenTelemetry telemetry.

The rooms, from the data up (each imports only the ones before it; pyproject.toml's import
contracts hold them to that, ``lint-imports``):

- ``store``: the DuckDB file: the exporter's tables, aiobs' bookkeeping, migrations, opening it.
- ``semantic``: the canonical AI fields across conventions and the views over them
  (``ai_spans``, ``ai_traces``), rendered for DuckDB and ClickHouse.
- ``ingest``: decoders (OTLP JSON/protobuf, Langfuse, Jaeger), redaction, the write path.
- ``backend``: the ``Backend`` protocol every analysis reads through (records, capabilities,
  worker-thread readers, ``QueryError``); ``backend.duckdb`` is the embedded store.
- ``analysis``: replay, traces/sessions, segment, diff, diff-traces, scan, stats, export, query,
  as functions of a ``Backend`` returning the typed results of ``analysis.results``.
- ``present``: Rich renderings of those results, shared by the CLI and the TUI.
- ``cli``: the Typer commands: options in, a result out in the asked format. ``demo`` builds the
  demo world; ``config`` and ``errors`` are shared by all.

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
