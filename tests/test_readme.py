"""The README's examples work as printed on a demo store: every ``aiobs`` line of its ``sh``
blocks (the quickstart's install lines aside) runs in bash against the session's demo store, with
``AIOBS_NOW`` at the end of that store's week so relative windows find what a freshly built demo
has, and must exit 0 (1 where it asks ``--fail-on``), print nothing on stderr that reads as an
error, and print something when its output is not sent to a file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import DEMO_END
from test_judge import Server

README = Path(__file__).resolve().parents[1] / "README.md"
# Posting to a placeholder URL is not something a test can do as printed; the webhook path runs
# against a real loopback server in tests/test_scan.py. The judge's endpoint line is replaced by
# a chat-completions server on loopback (tests/test_judge.py), so its examples run as printed.
NOT_HERE = ("--webhook https://hooks.example", "export AIOBS_JUDGE_BASE_URL=https://api.openai.com")


def readme_blocks() -> list[list[str]]:
    """Each ``sh`` block's command lines (comments and the install lines left out)."""
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        lines = [line.strip() for line in body.splitlines()]
        lines = [
            line
            for line in lines
            if line
            and not line.startswith(("#", "python3 -m venv"))
            and not any(skip in line for skip in NOT_HERE)
        ]
        if lines:
            blocks.append(lines)
    return blocks


def test_the_readme_has_examples_for_every_command() -> None:
    text = " ".join(line for block in readme_blocks() for line in block)
    for command in ("stats", "query", "export", "ingest", "traces", "sessions", "segment",
                    "diff", "diff-traces", "scan", "replay", "describe", "eval"):  # fmt: skip
        assert re.search(rf"aiobs (--db \S+ )?{command} ", text), command


def test_every_readme_example_runs_on_the_demo_store(
    demo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    import shutil

    # A copy: `aiobs eval` stores its results, and the session's demo store is shared read-only.
    db = tmp_path / "demo.duckdb"
    shutil.copy(demo[0], db)
    script = ["set -o pipefail"]
    lines = []
    for block in readme_blocks():
        for line in block:
            n = len(lines)
            lines.append(line)
            code = re.sub(r"\s+#.*$", "", line)  # the trailing comment
            captured = ">" not in code and "--out " not in code and not re.match(r"^\w+=", code)
            script.append(f"{code} {'> out_' + str(n) if captured else ''} 2> err_{n}")
            script.append(f'echo "{n} $?" >> status')
    bin_dir = str(Path(sys.executable).parent)
    judge = Server()
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "AIOBS_DB": str(db),
        "AIOBS_NOW": DEMO_END,
        "NO_COLOR": "1",
        "AIOBS_JUDGE_BASE_URL": judge.url,
        "AIOBS_JUDGE_MODEL": "gpt-4.1-mini",
        "AIOBS_JUDGE_API_KEY": "sk-test",
        "AIOBS_CACHE_DIR": str(tmp_path / "cache"),
    }
    try:
        subprocess.run(
            ["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, check=False, timeout=600
        )
    finally:
        judge.close()
    assert judge.requests, "the README's judge examples asked the judge nothing"
    statuses = dict(
        (int(n), int(rc))
        for n, rc in (row.split() for row in (tmp_path / "status").read_text().splitlines())
    )
    assert sorted(statuses) == list(range(len(lines)))
    problems = []
    for n, line in enumerate(lines):
        allowed = {0, 1} if "--fail-on" in line else {0}
        err = (tmp_path / f"err_{n}").read_text()
        out = tmp_path / f"out_{n}"
        if statuses[n] not in allowed or "error" in err.lower():
            problems.append(f"{line}\n  exit {statuses[n]}: {err.strip()[:300]}")
        elif out.exists() and not out.read_text().strip():
            problems.append(f"{line}\n  printed nothing: {err.strip()[:300]}")
    assert not problems, "\n".join(problems)
    assert len(lines) > 30
    assert (tmp_path / "incident-1234.md").read_text().startswith("# ")
    assert (tmp_path / "lake" / "otel_traces.parquet").exists()


def test_the_quickstart_replays_the_journey_the_tour_tells(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    """The quickstart's replay is the tour's failed journey, and that journey is coherent: a
    billing question, the payments tool failing, a handoff to a billing queue."""
    from conftest import Cli

    db, summary = demo
    cli = Cli(db)
    quickstart = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)[0]
    sql = re.search(r'aiobs replay \$\(aiobs query "([^"]+)"', quickstart)
    assert sql, quickstart
    (row,) = cli.query(sql.group(1))
    journey = row["value"]
    told = next(s for s in summary["tour"] if " replay " in s["command"])
    assert journey.startswith(told["command"].split()[-1])
    steps = cli.json("replay", journey)["steps"]
    intents = {s["attributes"].get("acme.intent") for s in steps} - {None}
    assert intents and intents <= {"billing_question", "refund_status", "refund_duplicate_charge"}
    assert any(s.get("tool", {}) and s["tool"].get("name") == "lookup_charge_v1" for s in steps)
    (handoff,) = [s["handoff"] for s in steps if s.get("handoff")]
    assert str(handoff.get("queue", "")).startswith("billing")
