"""Import boundaries: ``aiobs --help`` stays light, and lower layers never import upper ones."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli

HEAVY = ("duckdb", "polars", "textual", "httpx", "sqlglot", "opentelemetry", "pyarrow", "numpy")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys\nsys.argv = ['aiobs', '--help']\nfrom aiobs.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    loaded = _modules_after(code)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], f"aiobs --help imported {heavy}"


def test_package_root_is_lazy() -> None:
    loaded = _modules_after("import aiobs")
    assert not [m for m in loaded if m.startswith("aiobs.")], "import aiobs loaded submodules"


def test_lower_layers_import_no_ui() -> None:
    code = (
        "import aiobs.ingest.pipeline, aiobs.store.connection, aiobs.semantic.views, "
        "aiobs.analysis.stats, aiobs.analysis.query, aiobs.ingest.proto, aiobs.ingest.langfuse, "
        "aiobs.demo.build, aiobs.demo.tour, aiobs.analysis.scan, aiobs.analysis.incidents, "
        "aiobs.analysis.detect, aiobs.analysis.series, aiobs.analysis.diff,"
        " aiobs.semantic.clickhouse, aiobs.sql, aiobs.sql.clickhouse"
    )
    loaded = _modules_after(code)
    ui = sorted(m for m in loaded if m.split(".")[0] in ("typer", "rich", "textual", "click"))
    assert ui == [], f"library layers imported {ui}"
    assert "aiobs.cli" not in loaded and "aiobs.tui" not in loaded


# What only writing a store needs: the decoders and the libraries only they use (Arrow batches,
# zstd framing, RE2 redaction, protobuf).
DECODERS = ("pyarrow", "zstandard", "re2", "google")


def test_read_commands_import_no_decoder(demo: tuple[Path, dict[str, Any]]) -> None:
    """Reading a store never loads what ingest needs (python -X importtime: pyarrow alone is
    ~100 ms): one process runs each read command in turn and lists what is loaded after each."""
    db, _ = demo
    probe = (
        "import sys, json, contextlib, io\n"
        "from aiobs.cli.main import main\n"
        "seen = {}\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n            main(args)\n"
        "        except SystemExit as e:\n            assert not e.code, (args, e.code)\n"
        "    seen[' '.join(args[2:])] = sorted(sys.modules)\n"
        "print(json.dumps(seen))"
    )
    trace = Cli(db).query("select trace_id from ai_traces order by trace_id limit 1")[0]["trace_id"]
    commands = [
        ["traces", "--limit", "5", "-f", "json"],
        ["sessions", "--limit", "5", "-f", "json"],
        ["replay", trace, "-f", "json"],
        ["describe", trace],
        ["diff-traces", trace, trace, "-f", "json"],
        ["segment", "--by", "model", "-f", "json"],
        ["stats", "-f", "json"],
        ["query", "select count(*) n from ai_spans", "-f", "json"],
    ]
    proc = subprocess.run(
        [sys.executable, "-c", probe, json.dumps([["--db", str(db), *c] for c in commands])],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(seen) == len(commands)
    for command, loaded in seen.items():
        decoding = [
            m
            for m in loaded
            if m.split(".")[0] in DECODERS or m.split(".")[:2] == ["aiobs", "ingest"]
        ]
        assert decoding == [], f"aiobs {command} imported {decoding}"


def test_read_commands_run_on_the_engine_alone(demo: tuple[Path, dict[str, Any]]) -> None:
    """Read commands load DuckDB's compiled engine without its Python package (duckdb >= 2.0:
    ~80 ms less a command, store/engine.py), and give what they give with the package loaded
    (the CliRunner here, in a process that has imported it)."""
    import importlib.util

    if importlib.util.find_spec("_duckdb") is None:
        pytest.skip("this duckdb has no separate engine module (< 2.0)")
    db, _ = demo
    failed = (
        "select trace_id from ai_traces where status = 'error' order by duration_ms desc limit 1"
    )
    trace = Cli(db).query(failed)[0]["trace_id"]
    commands = [
        ["replay", trace, "-f", "json"],
        ["describe", trace],
        ["traces", "--limit", "20", "--sort", "-duration_ms", "-f", "json"],
        ["sessions", "--limit", "5", "-f", "json"],
        ["query", "select model, count(*) n, sum(cost_usd) c from ai_spans group by 1 order by 1",
         "-f", "json"],
        ["segment", "--by", "model", "-f", "json"],
        ["stats", "-f", "json"],
    ]  # fmt: skip
    probe = (
        "import sys, json, contextlib, io\n"
        "from aiobs.cli.main import main\n"
        "out = io.StringIO()\n"
        "sys.argv = ['aiobs'] + json.loads(sys.argv[1])\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n        main()\n    except SystemExit as e:\n        assert not e.code, e.code\n"
        "print(json.dumps({'out': out.getvalue(), 'pkg': 'duckdb' in sys.modules,"
        " 'engine': '_duckdb' in sys.modules}))"
    )
    for args in commands:
        proc = subprocess.run(
            [sys.executable, "-c", probe, json.dumps(["--db", str(db), *args])],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert proc.returncode == 0, proc.stderr
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        assert child["engine"] and not child["pkg"], args
        here = Cli(db)(*args)
        assert here.exit_code == 0, here.output
        if "-f" in args:
            assert _close(json.loads(child["out"]), json.loads(here.stdout)), args
        else:
            assert child["out"] == here.stdout, args


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9: DuckDB's parallel aggregation sums in no fixed order."""
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-9)
        )
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)
