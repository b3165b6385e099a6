"""``aiobs diff``: two windows or two filters compared — metric deltas with significance, and the
fields and values that explain the change.

Must not import duckdb, polars, pyarrow or sqlglot at module level.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from aiobs.cli import options as o
from aiobs.cli.context import OutputFormat, Settings, settings
from aiobs.errors import ExitCode


class FailOn(StrEnum):
    regression = "regression"


def register(app: typer.Typer) -> None:
    app.command("diff", help=diff.__doc__)(diff)


def diff(
    ctx: typer.Context,
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            help="A window A..B (ISO or relative ends) or a filter such as \"prompt_version = 'v6'\".",
        ),
    ],
    target: Annotated[
        str, typer.Option("--target", help="The window or filter to compare with the baseline.")
    ],
    since: o.Since = None,
    until: o.Until = None,
    service: o.Service = None,
    model: o.Model = None,
    prompt_version: o.PromptVersion = None,
    status: o.Status = None,
    min_duration: o.MinDuration = None,
    user: o.User = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="A condition both sides must also meet (same language as traces --where).",
        ),
    ] = None,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on", help="Exit 1 when the target has a significant regression (for CI gates)."
        ),
    ] = None,
    min_change: Annotated[
        float,
        typer.Option(
            "--min-change",
            min=0.0,
            help="Smallest relative change that counts as a regression (0.05 = 5%).",
        ),
    ] = 0.05,
    top: Annotated[
        int, typer.Option("--top", min=1, help="How many explaining factors to list.")
    ] = 15,
    fmt: o.Format = OutputFormat.table,
) -> None:
    """Compare a baseline with a target: metric deltas with confidence intervals and p-values, and the factors that explain them."""
    from aiobs.analysis.diff import diff as run_diff

    s = settings(ctx)
    base = o.trace_filter(
        since=since,
        until=until,
        service=service,
        model=model,
        prompt_version=prompt_version,
        status=status,
        min_duration=min_duration,
        user=user,
        where=where,
    )
    with s.open_store() as store:
        result = run_diff(store, base, baseline, target, min_change=min_change, top=top)
    if fmt == OutputFormat.json:
        from aiobs.cli.render import render_json

        render_json(s, result)
    elif fmt in (OutputFormat.jsonl, OutputFormat.csv, OutputFormat.markdown):
        from aiobs.cli.render import render_rows

        render_rows(s, fmt, list(result["metrics"][0]), result["metrics"], title="metrics")
        if fmt == OutputFormat.markdown:
            render_rows(s, fmt, _FACTOR_COLUMNS, result["factors"], title="factors")
    else:
        _text(s, result)
    if fail_on == FailOn.regression and any(m["regression"] for m in result["metrics"]):
        raise typer.Exit(int(ExitCode.FINDINGS))


_FACTOR_COLUMNS = [
    "field",
    "value",
    "baseline_share",
    "target_share",
    "lift",
    "kind",
    "score",
    "examples",
]


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _num(v: Any, name: str) -> str:
    if v is None:
        return "-"
    if name.endswith("_rate"):
        return _pct(v)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _text(s: Settings, r: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from aiobs.cli.safe import inert

    out = s.out
    out.print(
        Text.assemble(
            ("baseline ", "bold"),
            inert(f"{r['baseline']['text']}  ({r['baseline']['traces']:,} traces)"),
        )
    )
    out.print(
        Text.assemble(
            ("target   ", "bold"),
            inert(f"{r['target']['text']}  ({r['target']['traces']:,} traces)"),
        )
    )
    table = Table(title="metrics", header_style="bold")
    for col in ("metric", "baseline", "target", "change", "95% CI of Δ", "q", ""):
        table.add_column(col, justify="right" if col not in ("metric", "") else "left")
    for m in r["metrics"]:
        if m["baseline"] is None:
            continue
        ci = m["ci"]
        ci_text = "-" if not ci else f"{_num(ci[0], m['name'])} … {_num(ci[1], m['name'])}"
        rel = "" if m["rel_change"] is None else f" ({m['rel_change'] * 100:+.0f}%)"
        mark = (
            Text("REGRESSION", style="bold red")
            if m["regression"]
            else (Text("significant", style="yellow") if m["significant"] else Text(""))
        )
        table.add_row(
            m["name"], _num(m["baseline"], m["name"]), _num(m["target"], m["name"]),
            _num(m["delta"], m["name"]) + rel, ci_text,
            "-" if m["q_value"] is None else f"{m['q_value']:.2g}", mark,
        )  # fmt: skip
    out.print(table)
    factors = Table(
        title=f"what explains it ({r['primary_metric'] or 'no regression'})", header_style="bold"
    )
    for col in (
        "field",
        "value",
        "baseline",
        "target",
        "lift",
        "kind",
        "explains",
        "examples (target)",
    ):
        factors.add_column(col, overflow="fold")
    for f in r["factors"]:
        factors.add_row(
            f["field"], Text(inert(f["value"])), _pct(f["baseline_share"]), _pct(f["target_share"]),
            "new" if f["lift"] is None else f"×{f['lift']:.2f}", f["kind"],
            "-" if f["explained"] is None else f"{f['explained'] * 100:.0f}%",
            " ".join(t[:12] for t in f["examples"]["target"]),
        )  # fmt: skip
    out.print(factors)
