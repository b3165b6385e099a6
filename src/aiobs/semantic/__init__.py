"""The semantic layer: canonical AI fields over raw OTel attributes, as SQL views and Python values.

Must not import typer, rich or textual.
"""
