"""Golden output: the text renderings of replay, diff, diff-traces and scan on the demo store.

Each case runs the real command (through the CLI, so the command's hand-over to ``aiobs.present``
is covered too) on the session's demo store, with its table output written by a Rich console of
a fixed width (``COLUMNS=120``) and no colour, and compares stdout with a committed file in
``tests/golden/``. The files are made by the code; a change to them is reviewed like code:

    AIOBS_REGEN_GOLDEN=1 pytest tests/test_golden.py    # rewrite tests/golden/*, then git diff

A case whose file is missing fails (it is not written silently) unless regenerating. The
renderables of ``aiobs.present`` printed to a recorded Console without the CLI give the same files
(as the TUI will use them), and rendering never changes the result rendered.
"""

from __future__ import annotations

import difflib
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli

GOLDEN = Path(__file__).resolve().parent / "golden"
WIDTH = "120"
WEEK = "2026-11-08T00:00:00Z..2026-11-15T00:00:00Z"
EXPORT = [
    "export", "--to", "markdown", "--where", "tool_name = 'lookup_charge_v1'",
    "-n", "20", "--out", "{out}",
]  # fmt: skip
REGEN = os.environ.get("AIOBS_REGEN_GOLDEN") == "1"


def _tour(summary: dict[str, Any], verb: str) -> list[str]:
    """The arguments of the tour's first ``verb`` command, without its ``--db`` prefix."""
    for step in summary["tour"]:
        args = shlex.split(step["command"])[1:]  # drop "aiobs"
        if args[:1] == ["--db"]:
            args = args[2:]
        if args[:1] == [verb]:
            return args
    raise AssertionError(f"the demo tour has no {verb} command")


def _one(cli: Cli, sql: str) -> str:
    rows = cli.query(sql)
    assert rows, sql
    return str(rows[0]["id"])


def _cases(cli: Cli, summary: dict[str, Any]) -> dict[str, list[str]]:
    """Case name → command arguments. Traces are picked by SQL with a total order, so the same
    store picks the same ones."""
    failed = _tour(summary, "replay")[1]
    ok = _one(
        cli,
        "select trace_id id from ai_traces where status = 'ok' and tool_calls > 0 "
        "and service_name = 'order-assistant' order by start_time, trace_id limit 1",
    )
    retrieval = _one(
        cli,
        "select t.trace_id id from ai_traces t where t.status = 'error' and exists (select 1 "
        "from ai_spans s where s.trace_id = t.trace_id and s.step_kind = 'retrieval') "
        "order by t.start_time, t.trace_id limit 1",
    )
    session = _one(
        cli,
        "select session_id id from ai_traces where session_id is not null group by 1 "
        "having count(*) >= 2 and count_if(status = 'error') > 0 order by min(start_time), 1 "
        "limit 1",
    )
    return {
        "replay-failed": ["replay", failed],
        "replay-ok": ["replay", ok],
        "replay-retrieval-error": ["replay", retrieval],
        "replay-failed-full-no-context": ["replay", failed, "--full", "--no-context"],
        "replay-session": ["replay", "--session", session],
        "replay-failed-markdown": ["replay", failed, "-f", "markdown"],
        "replay-session-markdown": ["replay", "--session", session, "-f", "markdown"],
        "diff-traces": ["diff-traces", ok, failed],
        "diff": _tour(summary, "diff"),
        "diff-markdown": [*_tour(summary, "diff"), "-f", "markdown"],
        "scan": ["scan", "--since", WEEK],
        "scan-markdown": ["scan", "--since", WEEK, "-f", "markdown"],
        "scan-empty": ["scan", "--since", "2026-10-01T00:00:00Z..2026-10-02T00:00:00Z"],
        "segment": ["segment", "--by", "prompt_version"],
        # The report is written to --out; its text is what is compared.
        "export-markdown": EXPORT,
    }


@pytest.fixture(scope="module")
def outputs(
    demo: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[list[str], str]]:
    """Every case's arguments and stdout (or the file it wrote), run once for the module."""
    db, summary = demo
    out = tmp_path_factory.mktemp("golden") / "report.md"
    cli = Cli(db)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", WIDTH)
        mp.setenv("NO_COLOR", "1")
        result: dict[str, tuple[list[str], str]] = {}
        for name, args in _cases(cli, summary).items():
            run = cli(*(str(out) if a == "{out}" else a for a in args))
            assert run.exit_code == 0, (args, run.output)
            written = "{out}" in args
            result[name] = (args, out.read_text(encoding="utf-8") if written else run.stdout)
    return result


CASES = [
    "replay-failed",
    "replay-ok",
    "replay-retrieval-error",
    "replay-failed-full-no-context",
    "replay-session",
    "replay-failed-markdown",
    "replay-session-markdown",
    "diff-traces",
    "diff",
    "diff-markdown",
    "scan",
    "scan-markdown",
    "scan-empty",
    "segment",
    "export-markdown",
]


@pytest.mark.parametrize("name", CASES)
def test_text_output_matches_golden(name: str, outputs: dict[str, tuple[list[str], str]]) -> None:
    args, text = outputs[name]
    path = GOLDEN / f"{name}.txt"
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: AIOBS_REGEN_GOLDEN=1 pytest tests/test_golden.py"
    want = path.read_text(encoding="utf-8")
    if text != want:
        delta = "".join(
            difflib.unified_diff(
                want.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"golden/{name}.txt",
                "aiobs " + shlex.join(args),
            )
        )
        pytest.fail(f"output differs from golden/{name}.txt:\n{delta}")


def test_every_case_has_a_file_and_every_file_a_case() -> None:
    files = {p.stem for p in GOLDEN.glob("*.txt")}
    assert files == set(CASES)


def test_the_cases_cover_errors_and_incidents(outputs: dict[str, tuple[list[str], str]]) -> None:
    """The golden files prove something only if they show what the renderers do: a failed step,
    a session of several traces, aligned steps that differ, and incidents with causes."""
    assert "ERROR" in outputs["replay-failed"][1] and "failed at" in outputs["replay-failed"][1]
    assert "✗" in outputs["replay-retrieval-error"][1]
    assert "trace 2 of" in outputs["replay-session"][1]
    assert "changed" in outputs["diff-traces"][1]
    assert "REGRESSION" in outputs["diff"][1] or "significant" in outputs["diff"][1]
    assert "likely causes" in outputs["scan"][1]
    assert "no incidents" in outputs["scan-empty"][1]


class _Frozen(dict[str, Any]):
    """A dict that refuses every change: a renderer that writes into its input fails loudly."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a renderer changed the result it renders")

    __setitem__ = __delitem__ = _refuse  # type: ignore[assignment]
    update = pop = popitem = clear = setdefault = _refuse  # type: ignore[assignment]


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return _Frozen({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_freeze(v) for v in value]
    return value


def test_replay_renderers_never_change_the_replay(demo: tuple[Path, dict[str, Any]]) -> None:
    """A cached replay may be rendered from several threads: rendering it as text (alone and in
    a session) and as Markdown writes nothing into it."""
    from rich.console import Console

    from aiobs.analysis.replay import load_session, load_trace, resolve_trace_id
    from aiobs.cli.context import Settings
    from aiobs.present.replay import journeys, markdown, session_markdown

    db, summary = demo
    trace = _tour(summary, "replay")[1]
    with Settings(db=str(db)).open_store() as store:
        replay = load_trace(store, resolve_trace_id(store, trace))
        session = load_session(store, replay["trace"]["session_id"])
    frozen, frozen_session = _freeze(replay), _freeze(session)
    console = Console(record=True, width=120, no_color=True)
    for blocks in [
        *journeys([frozen], False),
        *journeys(frozen_session["traces"], True, frozen_session),
    ]:
        for block in blocks:
            for item in block:
                console.print(item, soft_wrap=False, overflow="fold")
    assert "failed at" in console.export_text()
    assert markdown(frozen, False) and session_markdown(frozen_session, False)
    assert frozen == replay and frozen_session == session


def test_present_renders_what_the_cli_prints(
    demo: tuple[Path, dict[str, Any]], outputs: dict[str, tuple[list[str], str]]
) -> None:
    """``aiobs.present``'s renderables, printed to a recorded Console of the golden width (as a
    TUI or a script would use them, without the CLI), give the golden files byte for byte."""
    import io

    from rich.console import Console

    from aiobs.analysis.difftraces import diff_traces
    from aiobs.analysis.filters import TraceFilter
    from aiobs.analysis.replay import load_session, load_trace, resolve_trace_id
    from aiobs.analysis.scan import scan
    from aiobs.cli.context import Settings, TrimmedLines
    from aiobs.present import difftraces, replay
    from aiobs.present import scan as scan_view

    db, _ = demo
    failed = outputs["replay-failed"][0][1]
    session = outputs["replay-session"][0][2]
    ok = outputs["diff-traces"][0][1]
    with Settings(db=str(db)).open_store() as store:
        trace = load_trace(store, resolve_trace_id(store, failed))
        loaded = load_session(store, session)
        aligned = diff_traces(
            load_trace(store, ok, context=False),
            load_trace(store, trace["trace"]["trace_id"], context=False),
        )
        scanned = scan(store, TraceFilter.from_options(since=WEEK))

    def recorded(items: list[Any], **options: Any) -> str:
        out = io.StringIO()
        # Into a pipe the CLI's console drops the spaces Rich pads lines with; so does this one.
        trimmed = TrimmedLines(out)
        console = Console(
            file=trimmed,  # type: ignore[arg-type]
            width=int(WIDTH),
            no_color=True,
            highlight=False,
            record=True,
        )
        for item in items:
            console.print(item, **options)
        trimmed.flush()
        return out.getvalue()

    step = {"soft_wrap": False, "overflow": "fold"}
    texts = {
        "replay-failed": recorded(
            [i for blocks in replay.journeys([trace], False) for b in blocks for i in b], **step
        ),
        "replay-session": recorded([replay.session_title(loaded)])
        + recorded(
            [
                i
                for blocks in replay.journeys(loaded["traces"], False, loaded)
                for b in blocks
                for i in b
            ],
            **step,
        ),
        "diff-traces": recorded(list(difftraces.renderables(aligned))),
        "scan": recorded(list(scan_view.renderables(scanned))),
    }
    for name, text in texts.items():
        assert text == (GOLDEN / f"{name}.txt").read_text(encoding="utf-8"), name
