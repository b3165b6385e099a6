"""Shared test fixtures: a temporary store, the real CLI through CliRunner, and the conformance corpus.

The suite runs in parallel (pytest-xdist, ``-n`` in pyproject.toml's addopts). A store that takes
seconds to build is built once per run, not once per worker: ``built_once`` makes it in a folder
that every worker of the run shares, under a file lock, and the workers then only read it (read
commands open a store read-only, which DuckDB lets several processes do at once). A test that writes
to a store builds its own.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import typer.testing
from hypothesis import settings
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO.parent / "shared" / "conformance"
# ingest's exit code for each outcome of its summary (README, "Ingest").
OUTCOME_EXIT = {"all": 0, "partial": 5, "nothing": 2}

# Property tests: CI (.ci/run) runs the "ci" profile, every example count as written in the tests;
# a developer's plain `pytest -q` runs the default profile, a fifth of them (at least 10). The
# examples that @example pins run in both.
PROFILE = os.environ.get("AIOBS_TEST_PROFILE", "default")
if PROFILE not in ("default", "ci"):
    raise pytest.UsageError(f"AIOBS_TEST_PROFILE={PROFILE!r}: expected 'default' or 'ci'")
settings.register_profile("ci", print_blob=True)
settings.register_profile("default")
settings.load_profile(PROFILE)


# typer's CliRunner rebuilds the Click command from the Typer app on every invoke (~30 ms, the
# app's every signature inspected again); the app does not change during a run, so it is built
# once. The guard keeps the suite working, only slower, if typer renames its private hook.
if hasattr(typer.testing, "_get_command"):
    typer.testing._get_command = functools.cache(typer.main.get_command)


def examples(n: int) -> int:
    """How many examples a property test with ``n`` in CI runs under the current profile."""
    return n if PROFILE == "ci" else max(10, n // 5)


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the marks to group by
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that share a module-scoped fixture run on one xdist worker (``--dist loadgroup``),
    so the fixture is made once; every other test goes to whichever worker is free."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        if any(d.scope == "module" for defs in info.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def built_once(
    tmp_path_factory: pytest.TempPathFactory, key: str, build: Callable[[Path], None]
) -> Path:
    """A folder that ``build`` filled, made once per test run whatever the number of workers.

    Under xdist each worker has its own base temp folder, all in the run's one; the folder and
    its lock live there, so the first worker to ask builds and the others wait for it, then
    reuse it. ``key`` names what is built and must change with anything that changes it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    target = root / f"built-{key}"
    with (root / f"built-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            # A build that failed part way (in this run) is started afresh.
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            build(target)
            (target / ".complete").touch()
    return target


def build_with_cli(folder: Path, db_name: str, *commands: list[str]) -> list[Any]:
    """Run ``commands`` through the real CLI on ``folder/db_name`` with a config of the folder's
    own (none: the defaults); each must succeed. Returns their stdout, parsed as JSON when it is."""
    outputs: list[Any] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOBS_CONFIG", str(folder / "config.toml"))
        mp.delenv("AIOBS_DB", raising=False)
        cli = Cli(folder / db_name)
        for args in commands:
            result = cli(*args)
            assert result.exit_code == 0, (args, result.output)
            try:
                outputs.append(json.loads(result.stdout))
            except ValueError:
                outputs.append(result.stdout)
    return outputs


# An xdist worker imports readline (pdb does), and GNU readline sets COLUMNS and LINES to the
# terminal's size, 80x24 without one; aiobs reads COLUMNS (tables are 200 wide when piped), so a
# worker would render narrower than a serial run. The run's own values are handed to the workers.
TERMINAL = ("COLUMNS", "LINES")


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["AIOBS_TEST_TERMINAL"] = json.dumps({n: os.environ.get(n) for n in TERMINAL})


@pytest.fixture(scope="session", autouse=True)
def _isolated_session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Module and session fixtures, too, never read the developer's config or store; a worker's
    terminal size is the run's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOBS_CONFIG", str(tmp_path_factory.mktemp("session-env") / "config.toml"))
        mp.delenv("AIOBS_DB", raising=False)
        # The ClickHouse translations and the judge's answers: never the developer's.
        mp.setenv("AIOBS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        terminal = json.loads(os.environ.get("AIOBS_TEST_TERMINAL", "{}"))
        for name, value in terminal.items():
            if value is None:
                mp.delenv(name, raising=False)
            else:
                mp.setenv(name, value)
        yield


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the developer's real store or config."""
    monkeypatch.setenv("AIOBS_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("AIOBS_DB", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


DEMO_END = "2026-11-15T00:00Z"
DEMO_SCALE = "0.25"


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One demo store for the run (a week at a quarter of the default traffic), built by the
    real CLI: (path, the `aiobs demo -f json` summary with manifest and tour). Read only."""
    args = ["demo", "--scale", DEMO_SCALE, "--end", DEMO_END, "-f", "json"]

    def build(folder: Path) -> None:
        (summary,) = build_with_cli(folder, "demo.duckdb", args)
        (folder / "summary.json").write_text(json.dumps(summary))

    folder = built_once(tmp_path_factory, "demo", build)
    return folder / "demo.duckdb", json.loads((folder / "summary.json").read_text())


CLEAN_SEEDS = (11, 12, 13)


def clean_world(tmp_path_factory: pytest.TempPathFactory, seed: int) -> Path:
    """A demo week at its default traffic with no incidents planted (seed ``seed``), built once
    per run by the real CLI and shared read only: scan's and diff's false-alarm tests read it.
    Those tests share the xdist group "clean-worlds", so one worker builds the three while the
    other goes on (split across workers, one would wait ~25 s on the other's build)."""
    args = ["demo", "--seed", str(seed), "--end", DEMO_END, "--no-incidents", "-f", "json"]
    folder = built_once(
        tmp_path_factory, f"clean-{seed}", lambda f: build_with_cli(f, "clean.duckdb", args)
    )
    return folder / "clean.duckdb"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


class Cli:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | bytes | None = None) -> Any:
        from aiobs.cli.main import app

        return self.runner.invoke(app, ["--db", str(self.db), *args], input=input)

    def json(self, *args: str) -> Any:
        result = self(*args, "-f", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def query(self, sql: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.json("query", sql)
        return rows

    def on_terminal(self, *args: str, columns: int = 80) -> str:
        """``aiobs --db DB ARGS`` in a real process whose stdout is a terminal (a pseudo-terminal
        ``columns`` wide), as a person sees it: the text without colours or styles."""
        return on_terminal("--db", str(self.db), *args, columns=columns)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def on_terminal(*args: str, columns: int = 80) -> str:
    """``aiobs ARGS`` with stdout on a pseudo-terminal ``columns`` wide (stderr on a pipe);
    the output without escape sequences and with the terminal's CR LF as LF."""
    import pty
    import struct
    import subprocess
    import sys
    import termios

    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiobs", *args],
        stdout=secondary,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**env, "NO_COLOR": "1", "TERM": "xterm"},
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    proc.wait(timeout=120)
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
    return _ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


@pytest.fixture
def cli(db: Path) -> Cli:
    return Cli(db)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, Path]:
    """A store of every convention fixture, the demo sample and the conformance GenAI files:
    (its CLI, a directory for its Parquet export). The store is read only and shared by the
    run's workers; the export directory is this worker's own (tests write it)."""
    from test_conformance import GENAI_FILES

    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance corpus not found at {CONFORMANCE}")
    paths = [
        *sorted((REPO / "fixtures" / "conventions").iterdir()),
        REPO / "fixtures" / "demo",
        *(CONFORMANCE / f for f in GENAI_FILES),
    ]

    def build(folder: Path) -> None:
        build_with_cli(folder, "corpus.duckdb", *(["ingest", str(path)] for path in paths))

    folder = built_once(tmp_path_factory, "clickhouse-corpus", build)
    return Cli(folder / "corpus.duckdb"), tmp_path_factory.mktemp("clickhouse-lake") / "lake"


def exported(corpus: tuple[Cli, Path]) -> Path:
    """The corpus's Parquet export (``aiobs export --to parquet``), made once a worker: the
    store is read only, so every ClickHouse comparison reads the same files."""
    cli, lake = corpus
    done = lake.with_name(lake.name + ".done")
    if not done.exists():
        result = cli("export", "--to", "parquet", "--out", str(lake))
        assert result.exit_code == 0, result.output
        done.touch()
    return lake


@pytest.fixture
def conformance() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance corpus not found at {CONFORMANCE}")
    return CONFORMANCE


def otlp_span(
    trace_id: str = "0af7651916cd43dd8448eb211c80319c",
    span_id: str = "b7ad6b7169203331",
    parent: str = "",
    name: str = "chat gpt-4o",
    start: int = 1_763_000_000_000_000_000,
    duration: int = 1_000_000,
    attrs: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One OTLP/JSON span with attributes given as a plain dict (string/int/float/bool values)."""

    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": str(v)}

    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + duration),
        "attributes": [{"key": k, "value": value(v)} for k, v in (attrs or {}).items()],
        "status": {},
    }
    span.update(extra)
    return span


def traces_doc(*spans: dict[str, Any], service: str = "svc") -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
            }
        ]
    }


WriteFn = Callable[..., Path]


@pytest.fixture
def write_jsonl(tmp_path: Path) -> WriteFn:
    def write(name: str, *docs: Any, raw_lines: list[str] | None = None) -> Path:
        path = tmp_path / name
        lines = [json.dumps(d) for d in docs] + (raw_lines or [])
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


def env_without_aiobs() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AIOBS_")}
