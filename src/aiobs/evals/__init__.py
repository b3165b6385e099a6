"""Evaluations: whether the AI's answers were good, computed offline by deterministic
evaluators (``builtin``) over the stored LLM steps and stored back as OTel evaluation events
(``run``), so every analysis reads them as it reads imported ones.

Must not import typer, rich or textual.
"""
