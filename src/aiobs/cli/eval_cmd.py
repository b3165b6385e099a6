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
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge",
            help="Also ask an LLM judge (an OpenAI-compatible endpoint: AIOBS_JUDGE_BASE_URL, "
            "AIOBS_JUDGE_MODEL, AIOBS_JUDGE_API_KEY) to score these dimensions 1-5, "
            "comma-separated: groundedness, helpfulness, tone, instruction_following, or all.",
        ),
    ] = None,
    sample: Annotated[
        float,
        typer.Option(
            "--sample",
            min=0.0,
            max=1.0,
            help="The fraction of answers the judge sees (the same ones on every run).",
        ),
    ] = 1.0,
    budget: Annotated[
        float | None,
        typer.Option("--budget", min=0.0, help="Stop judging before the judge's cost passes USD."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", min=1, max=64, help="Judge requests in flight (default 4)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Processes judging the built-in evaluators (default: one per core, on a "
            "selection of 10,000 traces or more).",
        ),
    ] = None,
    fmt: o.Format = OutputFormat.table,
) -> None:
    """Judge every LLM answer with the built-in evaluators (no network) and, with --judge, an LLM judge; store the results as OTel evaluation events."""
    from aiobs.evals.builtin import select
    from aiobs.evals.run import run, workers_for

    s = settings(ctx)
    s.refuse_backend()
    the_judge = None
    if judge is None and (sample != 1.0 or budget is not None or concurrency is not None):
        from aiobs.errors import UsageError

        raise UsageError(
            "--sample, --budget and --concurrency apply to the LLM judge",
            hint="add --judge DIMENSIONS (the built-in evaluators judge every answer, for free)",
        )
    if judge is not None:
        from dataclasses import replace

        from aiobs.evals.judge import Cache, Judge, cache_path, judge_config, parse_dimensions
        from aiobs.semantic.prices import load_prices

        dimensions = parse_dimensions(judge)
        config = judge_config(s.config.tables.get("judge"), load_prices(s.config.tables))
        if concurrency:
            config = replace(config, concurrency=concurrency)
        the_judge = Judge(
            config, dimensions, sample=sample, budget=budget, cache=Cache(cache_path())
        )
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
            processes = 1 if the_judge is not None else workers_for(reader, filt, workers)
            if dry_run:
                summary = run(reader, filt, evaluators, judge=the_judge, workers=processes)
            else:
                from aiobs.evals.store import VerdictWriter

                summary = run(
                    reader,
                    filt,
                    evaluators,
                    write=VerdictWriter(store),
                    judge=the_judge,
                    workers=processes,
                )
        finally:
            reader.close()
            if the_judge is not None:
                the_judge.close()
    result: dict[str, Any] = {
        "answers": summary.answers,
        "seconds": round(summary.seconds, 3),
        "stored": summary.written,
        "replaced": summary.replaced,
        "dry_run": dry_run,
        "evaluators": [{"name": name, **e} for name, e in summary.evaluators.items()],
    }
    if the_judge is not None:
        from dataclasses import asdict

        j = the_judge.stats
        result["judge"] = {
            "model": the_judge.config.model,
            "sample": sample,
            "budget_usd": budget,
            **asdict(j),
            "cost_usd": round(j.cost_usd, 6),
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
        if the_judge is not None:
            s.err.print(judge_line(result["judge"]), markup=False, highlight=False)


def judge_line(j: dict[str, Any]) -> str:
    """One line of what the judge did and cost."""
    line = (
        f"judge {j['model']}: {j['judged']:,} judged, {j['cached']:,} from the cache, "
        f"{j['requests']:,} requests, {j['input_tokens']:,} + {j['output_tokens']:,} tokens, "
        f"${j['cost_usd']:.4f}"
    )
    if j["failed"]:
        why = ", ".join(f"{k} ×{n}" for k, n in j["problems"].items())
        line += f"; {j['failed']:,} not judged ({why})"
    if j["skipped_budget"]:
        line += f"; {j['skipped_budget']:,} left unjudged at the ${j['budget_usd']:g} budget"
    return line
