"""Demo-generation benchmark: the worlds the test suite builds, generated into files, timed.

python bench/demo_gen.py [--out DIR] [--worlds demo,clean-11,...] [--md5]

The suite builds the ``demo`` fixture's world (a week at scale 0.25) and three clean worlds
(seeds 11-13, full scale, no incidents; ``clean_world`` in tests/conftest.py). Each is written as
``build.write_files`` writes it (no store), one day after another in this process, and timed.
``--md5`` prints every file's md5, so two builds of the generator can be checked byte for byte:
run it with ``PYTHONPATH=<other checkout>/src`` and diff the outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiobs.demo.build import write_files
from aiobs.demo.world import WorldConfig

# tests/conftest.py: DEMO_END, DEMO_SCALE, CLEAN_SEEDS.
SUITE_END = datetime(2026, 11, 15, tzinfo=UTC)
WORLDS = {
    "demo": WorldConfig(scale=0.25, end=SUITE_END),
    **{
        f"clean-{seed}": WorldConfig(seed=seed, end=SUITE_END, incidents=False)
        for seed in (11, 12, 13)
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the files here (default: a temp folder)")
    parser.add_argument("--worlds", default=",".join(WORLDS), help="comma-separated world names")
    parser.add_argument("--md5", action="store_true", help="print every written file's md5")
    args = parser.parse_args()
    names = args.worlds.split(",")
    unknown = [n for n in names if n not in WORLDS]
    if unknown:
        sys.exit(f"unknown worlds {unknown}; known: {', '.join(WORLDS)}")
    with tempfile.TemporaryDirectory(prefix="demo-gen-") as scratch:
        root = args.out or Path(scratch)
        total = 0.0
        for name in names:
            started = time.perf_counter()
            files = write_files(WORLDS[name], root / name)
            seconds = time.perf_counter() - started
            total += seconds
            size = sum(f.stat().st_size for f in files)
            print(f"{name}: {seconds:.2f} s, {len(files)} files, {size / 1e6:.1f} MB", flush=True)
            if args.md5:
                for path in sorted((root / name).iterdir()):
                    digest = hashlib.md5(path.read_bytes()).hexdigest()
                    print(f"  {digest}  {name}/{path.name}")
        print(f"total: {total:.2f} s")


if __name__ == "__main__":
    main()
