"""The CLI contract: every command has help (and -h), is in the README, and completions are current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from aiobs.cli.completions import SHELLS, completion_script
from aiobs.cli.main import app

REPO = Path(__file__).resolve().parents[1]
COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


def test_there_are_commands() -> None:
    assert {"ingest", "stats", "query"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_is_documented(name: str) -> None:
    runner = CliRunner()
    for flag in ("--help", "-h"):
        result = runner.invoke(app, [name, flag])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output
    command = get_command(app).commands[name]  # type: ignore[attr-defined]
    assert command.help and len(command.help) > 20
    assert f"aiobs {name}" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("name", COMMANDS)
def test_the_slim_app_of_each_command_is_the_full_apps_command(name: str) -> None:
    # `aiobs NAME …` builds only NAME's module (main.modules_for); it must define NAME the same way.
    from aiobs.cli.main import build_app, modules_for

    for args in ([name], ["--db", "x.duckdb", "-q", "--color", "never", name, "--help"]):
        slim = get_command(build_app(modules_for(args))).commands  # type: ignore[attr-defined]
        assert len(slim) < len(COMMANDS)
        full = get_command(app).commands[name]  # type: ignore[attr-defined]
        assert [p.name for p in slim[name].params] == [p.name for p in full.params]
        assert slim[name].help == full.help


def test_unknown_commands_and_top_level_help_see_every_command() -> None:
    from aiobs.cli.main import _MODULES, modules_for

    for args in ([], ["--help"], ["-q"], ["--db", "replay"], ["nosuch"], ["--db=x", "replya"]):
        assert modules_for(args) == _MODULES
    result = subprocess.run(
        [sys.executable, "-m", "aiobs", "replya"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "replay" in result.stderr


def test_top_level_help_shows_each_commands_summary_whole() -> None:
    """Click cut each summary at 45 characters; the first sentence is shown whole, wrapped."""
    output = " ".join(CliRunner().invoke(app, ["--help"], terminal_width=80).output.split())
    for name in COMMANDS:
        command = get_command(app).commands[name]  # type: ignore[attr-defined]
        first = " ".join(command.help.split("\n\n")[0].split(". ")[0].split())
        assert f"{name} {first}" in output, name
    assert "..." not in output.partition("Commands:")[2]


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_completion_scripts_are_current(shell: str) -> None:
    committed = (REPO / "completions" / SHELLS[shell]).read_text()
    assert committed == completion_script(shell), (
        "completions/ is stale: run `python -m aiobs.cli.completions completions/`"
    )


def test_completion_answers_from_the_real_program() -> None:
    env = {"_AIOBS_COMPLETE": "complete_bash", "COMP_WORDS": "aiobs in", "COMP_CWORD": "1"}
    import os

    out = subprocess.run(
        [sys.executable, "-m", "aiobs"], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert "ingest" in out.stdout.split()


def test_version_and_no_args() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.startswith("aiobs ")
    result = runner.invoke(app, [])
    assert "Usage" in result.output


def test_missing_store_is_exit_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "none.duckdb"), "stats"])
    assert result.exit_code == 3
    assert "no store at" in result.stderr and "none.duckdb" in result.stderr


def test_a_reader_that_stops_early_is_not_a_failure() -> None:
    # `aiobs … | head`: Rich meets the closed pipe while printing and, by default, exits 1 — read
    # by a runbook as "found something". aiobs' console exits 0 instead. The reader is gone
    # before the child starts (its end of the pipe closed), so every write meets EPIPE.
    import os

    code = (
        "from aiobs.cli.context import Settings\n"
        "out = Settings().out\n"
        "for i in range(20000):\n"
        "    out.print('row', i)\n"
    )
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], stdout=write_end, stderr=subprocess.PIPE, timeout=60
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr.decode()[-500:]


def test_backend_is_offered_checked_and_never_written_to(tmp_path: Path) -> None:
    """``--backend`` (or AIOBS_BACKEND) names a ClickHouse backend for the read commands; a URL
    that is no backend, or one that cannot be reached, is exit 2 without its password, and a
    command that writes refuses it rather than write to the laptop's store instead."""
    runner = CliRunner()
    assert "--backend" in runner.invoke(app, ["--help"]).output
    db = str(tmp_path / "none.duckdb")
    wrong = runner.invoke(app, ["--db", db, "--backend", "mysql://ch:3306/otel", "traces"])
    assert wrong.exit_code == 2 and "not a backend URL" in wrong.stderr, wrong.output
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    down = runner.invoke(
        app, ["--backend", "clickhouse://reader:s3cret@127.0.0.1:1/otel", "traces"]
    )
    assert down.exit_code == 2, down.output
    assert "reader:***@127.0.0.1:1" in down.stderr and "s3cret" not in down.stderr
    env = {"AIOBS_BACKEND": "clickhouse://127.0.0.1:1/otel"}
    for args in (["ingest", str(tmp_path)], ["eval"], ["demo"]):
        refused = runner.invoke(app, ["--db", db, *args], env=env)
        assert refused.exit_code == 2 and "this command writes" in refused.stderr, args
    assert not Path(db).exists()
