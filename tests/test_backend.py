"""The ``Backend`` seam on the real DuckDB store: what analyses may rely on, whatever the engine.

Readers in worker threads see the canonical views; engine errors arrive as ``QueryError`` with
the user-fixable ones marked; capabilities say how the store was built; a locked-down handle
reads nothing outside the store; the store layer itself never loads the semantic layer.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from aiobs.backend import Backend, QueryError
from aiobs.backend.duckdb import DuckDBBackend, open_store
from aiobs.errors import UsageError


def _count(store: Backend, sql: str) -> int:
    row = store.one(sql)
    assert row is not None
    return int(row[0])


def test_readers_in_threads_see_the_views(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    with open_store(db) as store:
        expected = {
            "ai_traces": _count(store, "SELECT count(*) FROM ai_traces"),
            "ai_spans": _count(store, "SELECT count(*) FROM ai_spans"),
        }
        assert expected["ai_traces"] > 100 and expected["ai_spans"] > expected["ai_traces"]
        seen: dict[str, list[int]] = {name: [] for name in expected}
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with store.reader() as reader:
                    for name in expected:
                        seen[name].append(_count(reader, f"SELECT count(*) FROM {name}"))
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert seen == {name: [n] * 4 for name, n in expected.items()}
        # The main handle still works after its readers closed.
        assert _count(store, "SELECT count(*) FROM ai_traces") == expected["ai_traces"]


def test_a_reader_prices_like_its_store(demo: tuple[Path, dict[str, Any]]) -> None:
    """A reader installs the store's own price table, not the shipped one: costs agree."""
    from aiobs.semantic.prices import Price

    db, _ = demo
    sql = "SELECT round(sum(cost_usd), 9) FROM ai_traces"
    with open_store(db, prices={"gpt-4.1": Price(input=1000.0, output=1000.0)}) as store:
        main = store.one(sql)
        with store.reader() as reader:
            assert reader.one(sql) == main
    with open_store(db) as shipped:
        assert shipped.one(sql) != main


def test_engine_errors_are_query_errors(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    with open_store(db) as store:
        with pytest.raises(QueryError) as bad_column:
            store.rows("SELECT no_such_column FROM ai_traces")
        assert bad_column.value.evaluation
        assert "no_such_column" in bad_column.value.message
        with pytest.raises(QueryError) as bad_cast:
            store.rows("SELECT CAST('x' AS INTEGER)")
        assert bad_cast.value.evaluation
        # Every QueryError is an aiobs error with an exit code, never an engine class.
        assert isinstance(bad_cast.value, UsageError)
        assert type(bad_cast.value.__cause__).__module__ in ("_duckdb", "duckdb")


def test_capabilities_follow_the_store(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    with open_store(db) as store:
        assert isinstance(store, DuckDBBackend)
        caps = store.capabilities
        assert caps.materialised and caps.log_time_index and caps.temp_tables
        assert store.engine == store.dialect.name == "duckdb"
        assert store.dialect.canonical
        assert store.location == str(db)
        with store.reader() as reader:
            assert reader.capabilities == caps


def test_a_locked_down_handle_reads_nothing_outside_the_store(
    demo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    db, _ = demo
    with open_store(db) as store:
        assert store.rows(f"SELECT * FROM read_csv('{outside}')") == [(1,)]
        store.lock_down()
        with pytest.raises(QueryError):
            store.rows(f"SELECT * FROM read_csv('{outside}')")
        with pytest.raises(QueryError):
            store.execute("SET enable_external_access = true")
        assert _count(store, "SELECT count(*) FROM ai_traces") > 0


def test_batches_stream_every_row(demo: tuple[Path, dict[str, Any]]) -> None:
    db, _ = demo
    with open_store(db) as store:
        total = _count(store, "SELECT count(*) FROM otel_traces")
        sizes = [
            len(b) for b in store.batches("SELECT SpanId FROM otel_traces ORDER BY 1", size=1000)
        ]
        assert sum(sizes) == total and max(sizes) == 1000 and len(sizes) > 1


def test_the_store_layer_does_not_load_the_semantic_layer(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    """Opening the file and migrating it is ``aiobs.store``'s; the views are the backend's."""
    db, _ = demo
    code = (
        "import sys; from aiobs.store.connection import open_file;"
        f" open_file({str(db)!r}).close();"
        " print(sorted(m for m in sys.modules if m.startswith(('aiobs.semantic', 'aiobs.backend'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
