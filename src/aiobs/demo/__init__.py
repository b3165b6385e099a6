"""The demo world: a seeded week of "Acme Support" telemetry with planted incidents (issue 3).

``world`` holds the configuration, timeline and ground-truth manifest; ``generate`` writes the OTLP;
``build`` ingests it into a store; ``tour`` prints commands to try. Must not import typer, rich or
textual.
"""
