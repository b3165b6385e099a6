"""The local DuckDB store: exporter-compatible tables, migrations, read-only/writer connections.

Must not import typer, rich or textual.
"""
