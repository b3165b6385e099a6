"""Run aiobs in the benchmarks as a user's installed copy runs: with its bytecode cached.

pip writes .pyc files when it installs a package, and Python writes them on first import of an
editable install, so a user's second run loads bytecode. PYTHONDONTWRITEBYTECODE (set on some CI
and sandbox machines, this one included) stops that: every aiobs module is then compiled on every
run, which added 35-45 ms to a replay here (11 alternating runs, 974k-span store).
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path


def installed_env() -> dict[str, str]:
    """Compile aiobs's bytecode; the environment to run it in, bytecode caching on."""
    import aiobs

    compileall.compile_dir(Path(aiobs.__file__).parent, quiet=1)
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
