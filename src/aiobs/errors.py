"""The one error tree and the exit-code contract.

Every failure a user can cause or meet is an ``AiobsError`` carrying its exit code; the CLI renders it
to stderr in one place. Must not import anything heavy (it is loaded by ``aiobs --help``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes: a public contract for scripts and CI (DESIGN.md, "CLI contract")."""

    OK = 0
    FINDINGS = 1  # only with --fail-on: anomalies or regressions at/above the level
    USAGE = 2  # usage error or bad input
    STORE_UNAVAILABLE = 3  # locked by another writer, unreadable, newer schema
    NOT_FOUND = 4  # unknown trace / session
    PARTIAL = 5  # ingest: some input landed, some was refused (records, files, paths)


class AiobsError(Exception):
    """Base of every error aiobs reports to a user."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(AiobsError):
    """A command was called wrongly (bad option value, bad expression)."""

    exit_code = ExitCode.USAGE


class BadInputError(AiobsError):
    """An input could not be read or nothing in it could be parsed."""

    exit_code = ExitCode.USAGE


class StoreUnavailableError(AiobsError):
    """The store cannot be opened: locked, unreadable, missing, or from a newer aiobs."""

    exit_code = ExitCode.STORE_UNAVAILABLE


class NotFoundError(AiobsError):
    """A trace, session or other named object is not in the store."""

    exit_code = ExitCode.NOT_FOUND
