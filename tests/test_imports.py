"""Import boundaries: ``aiobs --help`` stays light, and lower layers never import upper ones."""

from __future__ import annotations

import json
import subprocess
import sys

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
        " aiobs.semantic.clickhouse"
    )
    loaded = _modules_after(code)
    ui = sorted(m for m in loaded if m.split(".")[0] in ("typer", "rich", "textual", "click"))
    assert ui == [], f"library layers imported {ui}"
    assert "aiobs.cli" not in loaded and "aiobs.tui" not in loaded
