"""``python -m aiobs`` — same as the ``aiobs`` console script."""

from aiobs.cli.main import run

if __name__ == "__main__":  # not in a worker process that re-imports the main module (eval)
    run()
