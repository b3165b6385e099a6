"""Arrow schemas of the store's tables: how a decoded batch is typed on its way to DuckDB.

Both ingest paths build ``otel_*``-shaped Arrow tables — the general decoder from Python rows
(``rows_to_arrow``), the vectorised path from parsed JSON columns (``fastpath``) — against the same
schema, derived here from the table declarations in ``aiobs.store.schema`` so the two cannot drift.

Imports pyarrow only inside the functions (``aiobs --help`` and read commands never load it). Must
not import any other ``aiobs.ingest`` module, nor duckdb, typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiobs.store import schema

if TYPE_CHECKING:
    import pyarrow as pa


def _arrow_type(duck: str) -> pa.DataType:
    import pyarrow as pa

    if duck.endswith("[]"):
        return pa.list_(_arrow_type(duck[:-2]))
    simple = {
        "VARCHAR": pa.string(),
        "TIMESTAMP_NS": pa.timestamp("ns"),
        "TIMESTAMP": pa.timestamp("us"),
        "UBIGINT": pa.uint64(),
        "BIGINT": pa.int64(),
        "UINTEGER": pa.uint32(),
        "INTEGER": pa.int32(),
        "UTINYINT": pa.uint8(),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
    }
    if duck in simple:
        return simple[duck]
    if duck == schema.MAP:
        return entries_type()
    raise ValueError(f"no Arrow type for {duck}")


def entries_type() -> pa.DataType:
    """How a MAP column travels to DuckDB: a list of {key, value} entries, made a MAP by
    ``map_from_entries`` in the insert. DuckDB converts Arrow maps slowly: 100k GenAI spans'
    SpanAttributes took 0.65 s to insert as an Arrow map, 0.40 s as entries + map_from_entries."""
    import pyarrow as pa

    return pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))


_SCHEMAS: dict[str, pa.Schema] = {}


def arrow_schema(table: schema.Table) -> pa.Schema:
    import pyarrow as pa

    if table.name not in _SCHEMAS:
        _SCHEMAS[table.name] = pa.schema([(c, _arrow_type(t)) for c, t in table.columns])
    return _SCHEMAS[table.name]


def rows_to_arrow(table: schema.Table, rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    import pyarrow as pa

    arrow = arrow_schema(table)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in table.columns]
    arrays = [pa.array(col, type=f.type) for col, f in zip(columns, arrow, strict=True)]
    return pa.Table.from_arrays(arrays, schema=arrow)
