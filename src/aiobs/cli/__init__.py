"""The command line: thin Typer commands that parse options, call one library function, render.

Heavy libraries are imported inside command bodies, never at module level, so that ``aiobs --help``
and shell completion stay fast (tests/test_imports.py checks ``sys.modules``).
"""
