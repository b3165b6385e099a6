"""Shared test fixtures: a temporary store, the real CLI through CliRunner, and the conformance corpus."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO.parent / "shared" / "conformance"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the developer's real store or config."""
    monkeypatch.setenv("AIOBS_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("AIOBS_DB", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


DEMO_END = "2026-11-15T00:00Z"
DEMO_SCALE = "0.25"


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """One demo store for the session (a week at a quarter of the default traffic), built by the
    real CLI: (path, the `aiobs demo -f json` summary with manifest and tour)."""
    base = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOBS_CONFIG", str(base / "config.toml"))
        mp.delenv("AIOBS_DB", raising=False)
        db = base / "demo.duckdb"
        result = Cli(db)("demo", "--scale", DEMO_SCALE, "--end", DEMO_END, "-f", "json")
        assert result.exit_code == 0, result.output
        yield db, json.loads(result.stdout)


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


@pytest.fixture
def cli(db: Path) -> Cli:
    return Cli(db)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, Path]]:
    """A store of every convention fixture, the demo sample and the conformance GenAI files:
    (its CLI, a directory for its Parquet export)."""
    from test_conformance import GENAI_FILES

    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance corpus not found at {CONFORMANCE}")
    base = tmp_path_factory.mktemp("clickhouse-corpus")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOBS_CONFIG", str(base / "config.toml"))
        mp.delenv("AIOBS_DB", raising=False)
        cli = Cli(base / "corpus.duckdb")
        for path in [
            *sorted((REPO / "fixtures" / "conventions").iterdir()),
            REPO / "fixtures" / "demo",
            *(CONFORMANCE / f for f in GENAI_FILES),
        ]:
            assert cli("ingest", str(path)).exit_code == 0, path
        yield cli, base / "lake"


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
