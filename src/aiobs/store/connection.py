"""Opening the store's file: one writer at a time, readers read-only, clear errors for every way it
can fail, and the schema migrated to this aiobs' version.

DuckDB allows one writing process per file, or any number of readers; a process that meets the
other kind gets an IOException naming the holder's PID. ``LockWait`` says how long to keep trying
(``--wait``); past that, the lock, a missing or unreadable file, and a schema from a newer aiobs are
``StoreUnavailableError`` (exit 3) with the file's path, and for a lock what holds it (read from
``/proc``: an aiobs writer, an aiobs reader or another program).

A reader that waits leaves a marker (``<store>.waiting/<pid>``); a writer of many files
(``ingest``) looks for markers between files and, when there are any, closes the file until those
readers are in (``readers_waiting``, ``Store.reopen``): a long ingest does not lock readers out
for its whole run, and costs nothing extra when no one waits.

This is the file and its tables only: the canonical views and columns over them are the DuckDB
backend's (``aiobs.backend.duckdb``), which opens the file through ``open_file``. Must not import
``aiobs.semantic`` or ``aiobs.backend``.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiobs.errors import StoreUnavailableError
from aiobs.store import migrations

if TYPE_CHECKING:
    import duckdb


_LOCK_PATTERNS = ("could not set lock", "conflicting lock", "database is locked")
WRITING_COMMANDS = frozenset({"ingest", "demo", "collect"})
FIRST_PAUSE, LONGEST_PAUSE = 0.05, 0.5  # seconds between tries while waiting for a lock
COLLECT_WAIT = 10.0  # how long a reader waits for `aiobs collect` (it yields after each merge)


@dataclass(frozen=True)
class LockHolder:
    """The process DuckDB names as holding the store's lock, as far as ``/proc`` tells."""

    pid: int | None
    command: str | None  # its command line, shortened
    kind: str  # "an aiobs writer", "an aiobs reader", "another program", "another process"

    def describe(self) -> str:
        if self.pid is None:
            return self.kind
        what = f"`{self.command}`, " if self.command else ""
        return f"{self.kind} ({what}PID {self.pid})"


def lock_holder(message: str) -> LockHolder:
    """Who holds the lock, from DuckDB's message ("… Conflicting lock is held in … (PID 123)")."""
    found = re.search(r"PID (\d+)", message)
    if found is None:
        return LockHolder(None, None, "another process")
    pid = int(found.group(1))
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return LockHolder(pid, None, "another process")
    return process(pid, [a.decode("utf-8", "replace") for a in argv if a])


def process(pid: int, args: list[str]) -> LockHolder:
    """What the process ``pid`` with the command line ``args`` is to the store."""
    aiobs_at = next(
        (
            i
            for i, a in enumerate(args)
            if Path(a).name == "aiobs" or (a == "aiobs" and i > 0 and args[i - 1] == "-m")
        ),
        None,
    )
    shown = [Path(args[0]).name, *args[1:]] if args else []
    if aiobs_at is None:
        kind = "another program"
    else:
        command, rest = _command(args[aiobs_at + 1 :])
        shown = ["aiobs", command, *rest]  # the global options (--db …) left out
        writes = command in WRITING_COMMANDS
        kind = "an aiobs writer" if writes else "an aiobs reader"
    command_line = " ".join(shown)
    if len(command_line) > 100:
        command_line = command_line[:99] + "…"
    return LockHolder(pid, command_line or None, kind)


# The global options that take a value (cli/main.py): the word after one is not the command.
_VALUE_OPTIONS = frozenset({"--db", "--backend", "--color", "--wait"})


def _command(args: list[str]) -> tuple[str, list[str]]:
    """The subcommand in an aiobs command line (after the global options) and what follows it."""
    skip = False
    for i, word in enumerate(args):
        if skip:
            skip = False
        elif word in _VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            return word, args[i + 1 :]
    return "", []


@dataclass(frozen=True)
class LockWait:
    """How long to wait for another process's lock, and whom to tell once waiting starts
    (``notice(holder, seconds)``)."""

    seconds: float = 0.0
    notice: Callable[[LockHolder, float], None] | None = None


NO_WAIT = LockWait()


@dataclass
class Store:
    """An open connection to the store's file and how it was opened (writers: ingest and demo
    use ``con`` directly; readers go through ``aiobs.backend``)."""

    path: Path
    con: duckdb.DuckDBPyConnection
    read_only: bool
    schema_version: int = 0
    wait: LockWait = field(default=NO_WAIT, repr=False)
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if not self._closed:
            self.con.close()
            self._closed = True

    def reopen(self, *, admit: float = 5.0, wait: LockWait | None = None) -> None:
        """Close the file until the readers waiting for it are in (at most ``admit`` seconds),
        then connect again, waiting for their locks (``wait``, the store's own by default)."""
        self.con.close()
        until = time.monotonic() + admit
        while readers_waiting(self.path) and time.monotonic() < until:
            time.sleep(FIRST_PAUSE)
        self.con = _connect(self.path, self.read_only, wait or self.wait)
        self.connected()

    def connected(self) -> None:
        """Set up a new connection after ``reopen`` (a backend installs its views again)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _waiting_dir(path: Path) -> Path:
    return path.with_name(path.name + ".waiting")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def readers_waiting(path: Path) -> int:
    """How many live processes wait for the lock on the store at ``path`` (stale markers, of
    processes that died waiting, are removed)."""
    folder = _waiting_dir(path)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    alive = 0
    for entry in entries:
        if entry.name.isdigit() and _alive(int(entry.name)):
            alive += 1
        else:
            entry.unlink(missing_ok=True)
    return alive


def _mark_waiting(path: Path) -> Path | None:
    folder = _waiting_dir(path)
    try:
        folder.mkdir(exist_ok=True)
        marker = folder / str(os.getpid())
        marker.touch()
    except OSError:
        return None  # a read-only directory: wait all the same, unannounced
    return marker


def _unmark(marker: Path | None) -> None:
    if marker is None:
        return
    marker.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # another waiter's marker is still there
        marker.parent.rmdir()


def _connect(path: Path, read_only: bool, wait: LockWait = NO_WAIT) -> duckdb.DuckDBPyConnection:
    from aiobs.store.engine import duckdb_engine

    # A writer scans Python Arrow batches (ingest), which the engine alone refuses: the package
    # sets that up.
    engine = duckdb_engine(package=not read_only)
    started = time.monotonic()
    deadline = started + max(0.0, wait.seconds)
    pause = FIRST_PAUSE
    marker: Path | None = None
    try:
        while True:
            try:
                con: duckdb.DuckDBPyConnection = engine.connect(str(path), read_only=read_only)
                return con
            except engine.Error as exc:
                text = str(exc)
                if not any(p in text.lower() for p in _LOCK_PATTERNS):
                    raise StoreUnavailableError(f"cannot open store {path}: {text}") from exc
                holder = lock_holder(text)
                if read_only and (holder.command or "").startswith("aiobs collect"):
                    # A collector lets waiting readers in after each merge (well under a
                    # second): a reader waits for that, --wait or not.
                    deadline = max(deadline, started + COLLECT_WAIT)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _locked(path, holder, wait.seconds) from exc
                if marker is None:
                    marker = _mark_waiting(path) if read_only else None
                    if wait.notice is not None:
                        wait.notice(holder, round(deadline - started, 1))
                time.sleep(min(pause, remaining))  # and a last try at the deadline
                pause = min(pause * 2, LONGEST_PAUSE)
    finally:
        _unmark(marker)


def _locked(path: Path, holder: LockHolder, waited: float) -> StoreUnavailableError:
    after = f" (waited {waited:g} s)" if waited > 0 else ""
    if holder.kind == "an aiobs writer":
        hint = "it lets waiting readers in between files: retry with --wait SECONDS"
    elif holder.kind == "an aiobs reader":
        hint = "readers hold the store only while they run: retry with --wait SECONDS"
    else:
        hint = "close that program's connection, retry with --wait SECONDS, or use another --db"
    return StoreUnavailableError(f"store {path} is locked by {holder.describe()}{after}", hint=hint)


def connect(path: Path, *, read_only: bool, wait: LockWait = NO_WAIT) -> duckdb.DuckDBPyConnection:
    """A connection to an existing store file (exit 3 when it is locked past ``wait`` or
    unreadable)."""
    return _connect(path, read_only, wait)


def open_file(
    path: Path, *, read_only: bool = True, create: bool = False, wait: LockWait = NO_WAIT
) -> Store:
    """Open the store's file at ``path``, its schema migrated to this aiobs' version.

    Readers (``read_only=True``) never create or change the file, except to apply pending migrations
    to an older store (briefly, as a writer). ``create=True`` (ingest, demo) creates a blank store.
    """
    path = Path(path)
    if not path.exists():
        if not create:
            raise StoreUnavailableError(
                f"no store at {path}",
                hint="run `aiobs demo` or `aiobs ingest FILE…` first, or pass --db / set AIOBS_DB",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    elif path.is_dir():
        raise StoreUnavailableError(f"store path {path} is a directory, not a DuckDB file")

    con = _connect(path, read_only, wait)
    try:
        version = migrations.current_version(con)
    except Exception as exc:
        con.close()
        raise StoreUnavailableError(f"cannot read store {path}: {exc}") from exc
    if version > migrations.LATEST:
        con.close()
        raise StoreUnavailableError(
            f"store {path} has schema version {version}, newer than this aiobs understands"
            f" ({migrations.LATEST})",
            hint="upgrade aiobs (pip install -U aiobs)",
        )
    if version < migrations.LATEST:
        if read_only:
            con.close()
            writer = _connect(path, False, wait)
            try:
                migrations.migrate(writer)
            finally:
                writer.close()
            con = _connect(path, True, wait)
        else:
            migrations.migrate(con)
        version = migrations.LATEST
    return Store(path=path, con=con, read_only=read_only, schema_version=version, wait=wait)
