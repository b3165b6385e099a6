"""Shell completion scripts for bash, zsh and fish, generated from the Typer app.

The scripts call back into ``aiobs`` (Typer's dynamic completion), so they stay right as commands
change; ``completions/`` holds the generated files and a test checks they are current.
Regenerate: ``python -m aiobs.cli.completions completions/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

SHELLS = {"bash": "aiobs.bash", "zsh": "_aiobs", "fish": "aiobs.fish"}


def completion_script(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    script: str = get_completion_script(
        prog_name="aiobs", complete_var="_AIOBS_COMPLETE", shell=shell
    )
    return script.rstrip("\n") + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for shell, name in SHELLS.items():
        path = directory / name
        path.write_text(completion_script(shell), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "completions")):
        print(p)
