"""The triage TUI (``aiobs tui``): find, replay, compare and scan traces with the keyboard.

``app`` (the Textual app), ``screens``, ``widgets`` and ``data`` (the headless calls the workers
make). The package imports ``analysis`` and ``present``, never ``cli``; Textual is loaded only when
``aiobs.tui.app`` is, after the CLI has opened the store.
"""
