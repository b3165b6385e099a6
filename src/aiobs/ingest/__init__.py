"""Decoders and the ingest pipeline: files, stdin, OTLP JSON/proto, Langfuse exports → the store.

The modules form layers, each importing only those below it (checked by import-linter, the
``aiobs.ingest`` layers contract in pyproject.toml):

- ``pipeline``: inputs → decoded rows → Arrow batches → the store, one transaction per file;
- ``fastpath``: the vectorised reader of regular OTLP/JSON span, log and metric lines;
- ``otlp``: the general decoder, handing foreign documents to ``jaeger`` and ``langfuse``;
- ``jaeger``, ``langfuse``, ``sources``, ``redact``, ``proto``: converters, input framing, redaction;
- ``arrow_schema``, ``values``: what several of the above share (Arrow types, record errors, enums).

Must not import typer, rich or textual.
"""
