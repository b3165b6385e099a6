"""A scan's incidents (``aiobs.analysis.scan``) as Rich renderables and as a Markdown report: per
incident its severity, window, insight, anomalies, likely causes, impact and a replay to start.

Pure functions of the scan result; every string from telemetry is made inert.

Must not import typer, textual, duckdb, polars, pyarrow or sqlglot; rich only when rendering.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiobs.analysis.incidents import label
from aiobs.analysis.series import metric_info
from aiobs.present.format import duration, md_cell, minute, money, num, pct, plural
from aiobs.present.safe import inert
from aiobs.present.tables import KEY, Col, FittedTable, markdown_table

if TYPE_CHECKING:
    from rich.console import RenderableType

    from aiobs.analysis.results import Anomaly, Incident, Scan

STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}
TEXT_ANOMALIES = 6  # rows of an incident's anomaly table on a terminal
TEXT_CAUSES = 3  # likely causes shown on a terminal
MD_ANOMALIES = 12  # rows of an incident's anomaly table in the Markdown report


ANOMALY_TABLE = (
    Col("anomaly", KEY, "text", wrap=True), Col("segment", 1, "text", wrap=True), Col("expected", 1, "figure"),
    Col("observed", 1, "figure"), Col("z", 2, "figure"), Col("from", 3, "text"),
    Col("kind", 4, "text"),
)  # fmt: skip


def figure(metric: str, v: float | None) -> str:
    """An anomaly's expected or observed value in its metric's unit: a rate as a percentage, a
    cost in dollars, a latency in the unit that reads, a count or level to three digits."""
    if v is None:
        return "-"
    if metric_info(metric).kind == "rate":
        return pct(v)
    if metric.startswith("cost"):
        return money(v)
    if metric.endswith("_ms"):
        return duration(v)
    return num(v)


def distinct_anomalies(inc: Incident) -> list[Anomaly]:
    """An incident's anomalies, one per (metric, segment), in the incident's order: a series
    found by two detectors (a shift measured from two baselines) reads as one anomaly on a
    terminal or in a report; ``-f json`` keeps every finding."""
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    distinct = []
    for a in inc["anomalies"]:
        key = (a["metric"], tuple(sorted(a["segment"].items())))
        if key not in seen:
            seen.add(key)
            distinct.append(a)
    return distinct


def anomaly_rows(inc: Incident, limit: int) -> list[dict[str, str]]:
    """An incident's first ``limit`` distinct anomalies as shown: the segment within the
    incident's service (named in its header and insight; another service by name), values in
    their metric's unit, the onset."""
    return [
        {
            "anomaly": label(a["metric"]),
            # Another service's anomaly (infra co-moving with the incident) keeps its name.
            "segment": ", ".join(
                f"{k}={v}"
                for k, v in a["segment"].items()
                if not (k == "service" and v == inc["segment"].get("service"))
            )
            or "(all)",
            "expected": figure(a["metric"], a["expected"]),
            "observed": figure(a["metric"], a["observed"]),
            "z": f"{a['score']:.1f}",
            "from": f"{a['onset']:%m-%d %H:%M}",
            "kind": a["kind"],
        }
        for a in distinct_anomalies(inc)[:limit]
    ]


def renderables(r: Scan) -> Iterator[RenderableType]:
    """The scan ``r`` on a terminal, to print one after another: the window scanned, then each
    incident, or ``no incidents``."""
    # Rich is loaded here, not with the module: -f markdown needs none of it.
    from rich.text import Text

    w = r["window"]
    yield Text(
        f"scanned {minute(w['since'])} .. {minute(w['until'])} UTC in "
        f"{w['bucket_minutes']:g}-minute buckets: {r['series_scanned']} series, "
        f"{plural(len(r['incidents']), 'incident')}",
        style="dim",
    )
    for inc in r["incidents"]:
        yield Text("")
        yield from incident_renderables(inc)
    if not r["incidents"]:
        yield Text("no incidents", style="green")


def incident_renderables(inc: Incident) -> Iterator[RenderableType]:
    """One incident: its severity, id and window, the insight, the anomaly table, the likely
    causes and a replay to start (a scan's block; the TUI's incident pane)."""
    from rich.padding import Padding
    from rich.text import Text

    end = "ongoing" if inc["end"] is None else minute(inc["end"])
    yield Text.assemble(
        (f"{inc['severity'].upper():<9}", STYLE[inc["severity"]]),
        (inert(inc["id"]), "bold"),
        f"  {minute(inc['start'])} → {end}",
    )
    yield Padding(Text(inert(inc["summary"])), (0, 0, 0, 2))
    rows = anomaly_rows(inc, TEXT_ANOMALIES)
    table = FittedTable(ANOMALY_TABLE, rows, rule=False, name_hidden=False)
    yield Padding(table, (0, 0, 0, 2))
    if inc["likely_causes"]:
        yield Padding(Text("likely causes", style="bold"), (0, 0, 0, 2))
        for c in inc["likely_causes"][:TEXT_CAUSES]:
            yield Padding(
                Text.assemble(
                    (f"{c['confidence']:.2f} ", "dim"),
                    (f"{c['kind']}: ", "bold"),
                    inert(c["description"]),
                    ("  — " + inert("; ".join(c["evidence"])), "dim"),
                ),
                (0, 0, 0, 4),
            )
    if inc["examples"]:
        yield Padding(
            Text.assemble(("replay: ", "dim"), f"aiobs replay {inc['examples'][0]}"),
            (0, 0, 0, 2),
        )


def markdown(r: Scan) -> str:
    """An incident report: per incident its insight, anomalies, causes, impact and replays."""
    w = r["window"]
    lines = [
        f"# aiobs scan — {minute(w['since'])} .. {minute(w['until'])} UTC",
        "",
        f"{plural(len(r['incidents']), 'incident')}; {r['series_scanned']} series in "
        f"{w['bucket_minutes']:g}-minute buckets.",
    ]
    for n, inc in enumerate(r["incidents"], 1):
        end = "ongoing" if inc["end"] is None else f"{minute(inc['end'])} UTC"
        seg = ", ".join(f"{k} {v}" for k, v in inc["segment"].items())
        lines += [
            "",
            f"## {n}. {inc['severity'].upper()} — {md_cell(inc['id'])}",
            "",
            f"**{minute(inc['start'])} UTC → {end}** · {md_cell(seg)}",
            "",
            md_cell(inc["summary"]),
            "",
        ]
        rows = anomaly_rows(inc, MD_ANOMALIES)
        lines.append(markdown_table(ANOMALY_TABLE, rows) if rows else "")
        if len(distinct_anomalies(inc)) > MD_ANOMALIES:
            more = len(distinct_anomalies(inc)) - MD_ANOMALIES
            lines += [f"… and {more} more anomalies (`-f json` has them all).", ""]
        if inc["likely_causes"]:
            lines.append("**Likely causes**")
            lines.append("")
            for i, c in enumerate(inc["likely_causes"], 1):
                evidence = "; ".join(c["evidence"])
                lines.append(
                    f"{i}. ({c['confidence']:.2f}) {c['kind']}: {md_cell(c['description'])}"
                    f" — {md_cell(evidence)}"
                )
            lines.append("")
        imp = inc["impact"]
        signals = ", ".join(
            f"{label(name)} {pct(s['during'])} (normal {pct(s['normal'])})"
            for name, s in imp["signals"].items()
            if s["during"] is not None and s["normal"] is not None
        )
        cost = imp.get("extra_cost_usd")
        lines.append(
            f"**Impact**: {plural(imp['traces'], 'trace')}, {plural(imp['sessions'], 'session')}, "
            f"{plural(imp['users'], 'user')}" + (f"; {signals}" if signals else "")
            + (f"; extra cost ${cost:,.2f}" if cost else "") + "."
        )  # fmt: skip
        if inc["examples"]:
            lines += [
                "",
                "**Replay**: " + ", ".join(f"`aiobs replay {t}`" for t in inc["examples"]),
            ]
    return "\n".join(lines) + "\n"
