"""``python -m aiobs`` — same as the ``aiobs`` console script."""

from aiobs.cli.main import run

run()
