"""The DuckDB engine, loaded as cheaply as it can be.

duckdb 2.0's Python package wraps its compiled engine (the ``_duckdb`` extension module) in a
relational API written in Python and reads its own version from the package metadata when
imported: ``import duckdb`` took 113-118 ms of a ~350 ms read command here, ``import _duckdb``
22-35 ms (``python -X importtime``; the conversions of the first query then cost ~15 ms more,
which the package paid at import). Reading uses only what the engine itself provides —
``connect``, ``execute``, fetching, the exception classes — so read commands load the engine
alone. Scanning a Python Arrow table (ingest's batches, read by name) needs the package, which
sets the engine up for it (``_duckdb`` alone: "the duckdb package did not set up
duckdb._sources"), so writers ask for the package. The classes are the same objects
either way: the package only adds to them.

Must not import the duckdb package at module level.
"""

from __future__ import annotations

import sys
from types import ModuleType


def duckdb_engine(*, package: bool = False) -> ModuleType:
    """``_duckdb`` (duckdb >= 2.0) unless the package is loaded or asked for (``package``: to
    register Arrow tables); the package on older versions, where the engine is not a module of its
    own."""
    loaded = sys.modules.get("duckdb")
    if loaded is not None:
        return loaded
    if package:
        import duckdb

        return duckdb
    try:
        import _duckdb
    except ImportError:
        import duckdb

        return duckdb
    if not all(hasattr(_duckdb, name) for name in ("connect", "Error", "DuckDBPyConnection")):
        import duckdb

        return duckdb
    return _duckdb
