"""Decoders and the ingest pipeline: files, stdin, OTLP JSON/proto, Langfuse exports → the store.

Must not import typer, rich or textual.
"""
