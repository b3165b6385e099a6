"""Analyses over the store: stats, query, and (later) replay, segment, diff, scan.

Must not import typer, rich or textual.
"""
