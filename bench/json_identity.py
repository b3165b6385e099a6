"""Byte-identity of every read command's machine output between two builds (issue 16's check).

    git worktree add /tmp/base 285581f                  # the pre-refactor build, once
    python bench/json_identity.py --record              # its output: the baseline
    python bench/json_identity.py --compare             # this working tree against that baseline
    python bench/json_identity.py --compare --only scan # commands whose name contains "scan"
    python bench/json_identity.py --record --sql        # also every SQL text the backend runs
    python bench/json_identity.py --compare --sql       # (both sides need --sql)

The store is the demo world at a quarter of the default traffic (a week ending 2026-11-15, as the
tests build it), built once by the baseline build into the work directory. Each build runs on a
fresh copy of it (opening a store may re-materialise it when field definitions differ, which must
not leak from one build into the other). Every command of the list below runs as its own process,
``python -m aiobs`` with ``PYTHONPATH`` pointing at the build's ``src``; its stdout and exit code
are kept. ``--compare`` prints each command whose output differs, with the first differing line,
and exits 1 if any did. The commands are the demo tour's plus every read command in each machine
format it takes (json, jsonl, csv) and the options that pick other code paths.

``--sql`` also keeps, after each command's output, every SQL statement the command handed to the
DuckDB backend (its ``records``, ``rows``, ``one``, ``batches``, ``columns``, ``execute`` and
``copy_parquet``), sorted (replay's background reader runs beside the main thread). A change that
moves SQL between modules, or behind a dialect, must leave that text byte-identical on DuckDB.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = Path(tempfile.gettempdir()) / "aiobs-json-identity"
END = "2026-11-15T00:00Z"
WEEK = "2026-11-08T00:00:00Z..2026-11-15T00:00:00Z"
BEFORE = "2026-11-11T19:58:00Z..2026-11-12T15:05:00Z"
AFTER = "2026-11-12T15:05:00Z..2026-11-13T10:12:00Z"


def _env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    env["AIOBS_CONFIG"] = str(WORK / "no-config.toml")
    env.pop("AIOBS_DB", None)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    # Set iteration order of strings must not differ between the two runs.
    env["PYTHONHASHSEED"] = "0"
    return env


# Runs ``python -m aiobs`` with the backend's query methods recording each SQL text they get.
_RECORD_SQL = """
import os, runpy
from aiobs.backend import duckdb as engine

log = open(os.environ["AIOBS_BENCH_SQL_LOG"], "a", encoding="utf-8")

def recording(method):
    def run(self, sql, *args, **kwargs):
        log.write(sql + "\\n;;\\n")
        log.flush()
        return method(self, sql, *args, **kwargs)
    return run

for name in ("records", "rows", "one", "batches", "columns", "execute", "copy_parquet"):
    setattr(engine.DuckDBBackend, name, recording(getattr(engine.DuckDBBackend, name)))
runpy.run_module("aiobs", run_name="__main__")
"""


def _aiobs(src: Path, db: Path, args: list[str], sql_log: Path | None = None) -> tuple[int, bytes]:
    env = _env(src)
    launch = ["-m", "aiobs"]
    if sql_log is not None:
        env["AIOBS_BENCH_SQL_LOG"] = str(sql_log)
        launch = ["-c", _RECORD_SQL]
    proc = subprocess.run(
        [sys.executable, *launch, "--db", str(db), *args],
        env=env,
        capture_output=True,
        cwd=WORK,
    )
    return proc.returncode, proc.stdout


def _store(base_src: Path) -> tuple[Path, dict[str, object]]:
    """The demo store built by the baseline build, and what the commands need of it: the tour's
    commands and a few trace and session ids, picked once by the baseline build."""
    WORK.mkdir(parents=True, exist_ok=True)
    db = WORK / "demo.duckdb"
    picked = WORK / "picked.json"
    if not db.exists() or not picked.exists():
        db.unlink(missing_ok=True)
        code, out = _aiobs(base_src, db, ["demo", "--scale", "0.25", "--end", END, "-f", "json"])
        if code != 0:
            raise SystemExit(f"demo build failed ({code})")
        tour = [str(t["command"]).split(f"{db} ", 1)[1] for t in json.loads(out)["tour"]]

        def ids(args: list[str], key: str) -> list[str]:
            code, out = _aiobs(base_src, db, [*args, "-f", "json"])
            if code != 0:
                raise SystemExit(f"picking ids failed: {args}")
            return [str(r[key]) for r in json.loads(out)]

        traces = ids(["traces", "--where", "tool_name = 'lookup_charge_v1'", "-n", "2"], "trace_id")
        traces += ids(
            ["traces", "--service", "order-assistant", "--sort", "-input_tokens", "-n", "1"],
            "trace_id",
        )
        traces += ids(
            ["traces", "--where", "step_kind = 'retrieval'", "--sort", "-duration_ms", "-n", "1"],
            "trace_id",
        )
        sessions = ids(["sessions", "--sort", "-thumbs_down", "-n", "1"], "session_id")
        picked.write_text(json.dumps({"tour": tour, "traces": traces, "sessions": sessions}))
    return db, json.loads(picked.read_text())


def commands(picked: dict[str, object]) -> dict[str, list[str]]:
    """Name → arguments of every command whose output is compared."""
    import shlex

    tour = picked["tour"]
    journeys = picked["traces"]
    sessions = picked["sessions"]
    assert isinstance(tour, list) and isinstance(journeys, list) and isinstance(sessions, list)
    cmds: dict[str, list[str]] = {}
    for i, line in enumerate(tour):
        cmds[f"tour-{i}"] = shlex.split(line)
        cmds[f"tour-{i}-json"] = [*shlex.split(line), "-f", "json"]
    for fmt in ("json", "jsonl", "csv"):
        cmds[f"stats-{fmt}"] = ["stats", "-f", fmt]
        cmds[f"traces-{fmt}"] = ["traces", "--since", WEEK, "-n", "40", "-f", fmt]
        cmds[f"sessions-{fmt}"] = ["sessions", "--since", WEEK, "-n", "40", "-f", fmt]
        cmds[f"segment-prompt-{fmt}"] = ["segment", "--by", "prompt_version", "-f", fmt]
        cmds[f"diff-{fmt}"] = [
            "diff", "--baseline", BEFORE, "--target", AFTER,
            "--where", "service_name = 'support-chat'", "-f", fmt,
        ]  # fmt: skip
        cmds[f"scan-{fmt}"] = ["scan", "--since", WEEK, "-f", fmt]
    cmds["traces-where-tool"] = [
        "traces", "--since", AFTER, "--where", "tool_name = 'lookup_charge_v1'",
        "--sort", "-duration_ms", "-n", "10", "-f", "json",
    ]  # fmt: skip
    cmds["traces-where-span"] = [
        "traces", "--since", WEEK, "--where",
        "span(tool_name = 'lookup_charge_v1' and span.status = 'error') and cost_usd > 0",
        "-n", "25", "-f", "json",
    ]  # fmt: skip
    cmds["traces-errors-cost"] = [
        "traces", "--status", "error", "--sort", "-cost_usd", "-n", "25", "-f", "json",
    ]  # fmt: skip
    cmds["traces-model"] = ["traces", "--model", "gemini-2.5-flash", "-n", "25", "-f", "json"]
    cmds["sessions-unhappy"] = [
        "sessions", "--status", "error", "--sort", "-thumbs_down", "-n", "10", "-f", "json",
    ]  # fmt: skip
    cmds["segment-version-workflow"] = [
        "segment", "--by", "service_version,workflow", "--service", "order-assistant", "-f", "json",
    ]  # fmt: skip
    cmds["segment-model-where"] = [
        "segment", "--by", "model", "--where", "input_tokens > 500", "-f", "json",
    ]  # fmt: skip
    cmds["segment-buckets"] = ["segment", "--by", "model", "--sort", "-cost_usd", "-f", "json"]
    cmds["diff-prompt"] = [
        "diff", "--baseline", "prompt_version = 'v6'", "--target", "prompt_version = 'v7'",
        "-f", "json",
    ]  # fmt: skip
    cmds["scan-day"] = ["scan", "--since", "2026-11-12T00:00Z..2026-11-13T00:00Z", "-f", "json"]
    cmds["scan-service"] = ["scan", "--since", WEEK, "--service", "order-assistant", "-f", "json"]
    cmds["query"] = [
        "query",
        "select service_name, count(*) n, sum(cost_usd) c from ai_traces group by 1 order by 1",
        "-f", "json",
    ]  # fmt: skip
    cmds["query-spans"] = [
        "query",
        "select step_kind, count(*) n, avg(duration_ms) d from ai_spans group by 1 order by 1",
        "-f", "json",
    ]  # fmt: skip
    journeys = [str(t) for t in journeys]
    for i, trace in enumerate(journeys):
        cmds[f"replay-{i}"] = ["replay", trace, "-f", "json"]
        cmds[f"replay-full-{i}"] = ["replay", trace, "--full", "-f", "json"]
        cmds[f"describe-{i}"] = ["describe", trace, "--max-tokens", "400"]
        cmds[f"replay-text-{i}"] = ["replay", trace]
    if len(journeys) >= 2:
        cmds["diff-traces"] = ["diff-traces", journeys[0], journeys[1], "-f", "json"]
    for i, session in enumerate(sessions):
        cmds[f"replay-session-{i}"] = ["replay", "--session", str(session), "-f", "json"]
        cmds[f"replay-session-text-{i}"] = ["replay", "--session", str(session)]
    # Files a command writes ({out}) are compared as well as its stdout.
    where = "tool_name = 'lookup_charge_v1'"
    cmds["export-otlp"] = [
        "export",
        "--to",
        "otlp-json",
        "--where",
        where,
        "-n",
        "20",
        "--out",
        "{out}",
    ]
    cmds["export-markdown"] = [
        "export",
        "--to",
        "markdown",
        "--where",
        where,
        "-n",
        "20",
        "--out",
        "{out}",
    ]
    return cmds


def run_build(
    src: Path, db: Path, cmds: dict[str, list[str]], out: Path, *, sql: bool = False
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # The same path for each build: `stats` prints it.
    tmp = WORK / "run"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    copy = tmp / "demo.duckdb"
    shutil.copyfile(db, copy)
    for name, args in cmds.items():
        written = tmp / f"{name}.written"
        sql_log = tmp / f"{name}.sql" if sql else None
        argv = [a.replace("{out}", str(written)) for a in args]
        code, stdout = _aiobs(src, copy, argv, sql_log)
        if written.is_file():
            stdout += b"\n--- written file ---\n" + written.read_bytes()
        if sql_log is not None:
            statements = (
                sql_log.read_text(encoding="utf-8").split("\n;;\n") if sql_log.is_file() else []
            )
            stdout += b"\n--- sql ---\n" + "\n;;\n".join(sorted(statements)).encode()
        (out / f"{name}.out").write_bytes(f"exit {code}\n".encode() + stdout)


_NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")


def same_but_float_noise(old: bytes, new: bytes) -> bool:
    """Equal once each decimal number is read as a float and compared to 1e-9 relative.

    DuckDB sums floats in parallel, in an order that varies run to run: the same build, the same
    store, gives 0.001815040492170023 one run and ...022 the next. Only such last-digit noise is
    forgiven; any other byte differs."""
    a, b = old.decode(errors="replace"), new.decode(errors="replace")
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    for x, y in zip(_NUMBER.findall(a), _NUMBER.findall(b), strict=True):
        fx, fy = float(x), float(y)
        if fx != fy and abs(fx - fy) > 1e-9 * max(abs(fx), abs(fy)):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", action="store_true", help="record the baseline build's output")
    mode.add_argument("--compare", action="store_true", help="compare --src against the baseline")
    parser.add_argument("--base-src", type=Path, default=Path("/tmp/base/src"))
    parser.add_argument("--src", type=Path, default=REPO / "src")
    parser.add_argument("--only", help="only commands whose name contains this")
    parser.add_argument("--sql", action="store_true", help="also compare the SQL each command runs")
    args = parser.parse_args()
    if not (args.base_src / "aiobs").is_dir():
        raise SystemExit(
            f"no baseline build at {args.base_src}: `git worktree add /tmp/base 285581f`"
        )
    db, picked = _store(args.base_src)
    cmds = commands(picked)
    if args.only:
        cmds = {k: v for k, v in cmds.items() if args.only in k}
    baseline = WORK / "baseline"
    if args.record:
        run_build(args.base_src, db, cmds, baseline, sql=args.sql)
        print(f"recorded {len(cmds)} commands into {baseline}")
        return 0
    if not baseline.is_dir():
        run_build(args.base_src, db, commands(picked), baseline, sql=args.sql)
    current = WORK / "current"
    shutil.rmtree(current, ignore_errors=True)
    run_build(args.src, db, cmds, current, sql=args.sql)
    differ = noisy = 0
    for name in cmds:
        old = (baseline / f"{name}.out").read_bytes()
        new = (current / f"{name}.out").read_bytes()
        if old == new:
            continue
        if same_but_float_noise(old, new):
            noisy += 1
            continue
        differ += 1
        first = next(
            difflib.unified_diff(
                old.decode(errors="replace").splitlines(),
                new.decode(errors="replace").splitlines(),
                lineterm="",
                n=0,
            ),
            None,
        )
        lines = list(
            difflib.unified_diff(
                old.decode(errors="replace").splitlines(),
                new.decode(errors="replace").splitlines(),
                lineterm="",
                n=0,
            )
        )[2:6]
        print(f"DIFFERS {name}: {' '.join(cmds[name])}")
        for line in lines if first is not None else []:
            print(f"    {line[:200]}")
    same = len(cmds) - differ - noisy
    print(
        f"{same}/{len(cmds)} commands byte-identical, {noisy} identical but for float summation"
        f" noise in the last digits, {differ} differ ({baseline} vs {current})"
    )
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
