"""``aiobs clickhouse ddl``: the optional DDL that keeps the canonical span columns in a cluster
(``aiobs.semantic.clickhouse.ddl``), printed for its operators to run; aiobs never runs it.

Must not import duckdb, polars, pyarrow, sqlglot or rich at module level.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aiobs.cli.context import settings

clickhouse_app = typer.Typer(
    help="Helpers for a ClickHouse backend (--backend clickhouse://…).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(clickhouse_app, name="clickhouse")


@clickhouse_app.command("ddl")
def ddl(
    ctx: typer.Context,
    database: Annotated[
        str, typer.Option("--database", help="The database the collector's exporter writes.")
    ] = "otel",
) -> None:
    """Print DDL for the cluster: a table of the canonical span columns, a materialised view that fills it as the exporter inserts, and a backfill; --backend reads it when present."""
    from aiobs.semantic.clickhouse import ddl as spans_ddl

    s = settings(ctx)
    s.data.write(spans_ddl(database))
