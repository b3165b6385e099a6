"""Presentation: what the CLI and the TUI show of analysis results, built once for both.

- ``format``: one copy of each value formatter (durations, offsets, money, percentages,
  counts, times, table and Markdown cells, clipped content, token figures).
- ``replay``, ``difftraces``, ``diff``, ``scan``, ``demo``: Rich renderables (and Markdown
  documents) of a replay or session, two aligned traces, a diff, a scan's incidents, the
  demo's summary.
- ``report``: the export's Markdown incident report; ``tables``: the columns the row commands
  show and the sections of ``stats``.
- ``safe``: making telemetry text inert before it reaches a terminal.

Renderers are pure functions of the results they are given: they never change them (a cached
result may be rendered from several threads) and never print; the caller prints.

Must not import typer, textual or anything under ``aiobs.cli``/``aiobs.tui``; rich is imported
by the renderer modules, never by this package or ``format``/``tables``/``safe``, so that
``cli/render.py`` and ``aiobs --help`` stay light.
"""
