"""``aiobs eval``: the built-in evaluators over the LLM answers a filter selects, each verdict
stored as an OTel evaluation event (``aiobs.evals``); prints per evaluator how many answers it
judged and failed, with examples.

Must not import duckdb, polars, pyarrow, sqlglot or rich at module level.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aiobs.cli import options as o
from aiobs.cli.context import OutputFormat, settings

EVAL_MEMORY = "512MB"  # DuckDB's memory limit while evaluating (it spills beyond)


def register(app: typer.Typer) -> None:
    app.command("eval", help=eval_.__doc__)(eval_)


def eval_(
    ctx: typer.Context,
    since: o.Since = None,
    until: o.Until = None,
    service: o.Service = None,
    model: o.Model = None,
    prompt_version: o.PromptVersion = None,
    status: o.Status = None,
    where: o.Where = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Only these evaluators, comma-separated (reasoning_leak, unsupported_answer, "
            "tool_failure_masked, refusal, empty_or_truncated, invalid_json, pii_in_output, "
            "secret_in_output, language_mismatch).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Judge and report, store nothing.")
    ] = False,
    fmt: o.Format = OutputFormat.table,
) -> None:
    """Judge every LLM answer with the built-in evaluators (no network) and store the results as OTel evaluation events."""
    from aiobs.evals.builtin import select
    from aiobs.evals.run import run

    s = settings(ctx)
    filt = o.trace_filter(
        since=since,
        until=until,
        service=service,
        model=model,
        prompt_version=prompt_version,
        status=status,
        where=where,
    )
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    evaluators = select(names, s.config.tables.get("eval"))
    with s.open_store(read_only=dry_run) as store:
        # DuckDB keeps what it scanned cached up to its limit (80% of RAM); a pass over every
        # span's attributes needs none of it again. 1M spans: 1,265 -> 959 MB, no slower.
        store.execute(f"SET memory_limit = '{EVAL_MEMORY}'")
        reader = store.reader()  # the answers stream on their own handle while verdicts land
        try:
            if dry_run:
                summary = run(reader, filt, evaluators)
            else:
                from aiobs.evals.store import store_verdicts

                summary = run(reader, filt, evaluators, write=lambda p: store_verdicts(store, p))
        finally:
            reader.close()
    result: dict[str, Any] = {
        "answers": summary.answers,
        "seconds": round(summary.seconds, 3),
        "stored": summary.written,
        "replaced": summary.replaced,
        "dry_run": dry_run,
        "evaluators": [{"name": name, **e} for name, e in summary.evaluators.items()],
    }
    if fmt == OutputFormat.json:
        from aiobs.cli.render import render_json

        render_json(s, result)
        return
    from aiobs.cli.render import render_rows
    from aiobs.present.tables import KEY, Col

    rows = [
        {
            "evaluator": e["name"],
            "judged": e["judged"],
            "failed": e["failed"],
            "fail_rate": e["fail_rate"],
            "what a failure means": e["what"],
            "example": e["examples"][0]["trace_id"] if e["examples"] else None,
        }
        for e in result["evaluators"]
    ]
    columns = [
        Col("evaluator", KEY, "text"), Col("judged", 1), Col("failed", 1), Col("fail_rate", 1),
        Col("what a failure means", 3, "text", wrap=True), Col("example", 2, "id"),
    ]  # fmt: skip
    render_rows(s, fmt, columns, rows)
    if fmt == OutputFormat.table and not s.quiet:
        stored = (
            "nothing stored (--dry-run)"
            if dry_run
            else f"{summary.written:,} results stored"
            + (
                f", {summary.replaced:,} of an older evaluator version replaced"
                if summary.replaced
                else ""
            )
        )
        s.err.print(
            f"{summary.answers:,} answers judged in {summary.seconds:.1f} s; {stored}",
            markup=False,
            highlight=False,
        )
