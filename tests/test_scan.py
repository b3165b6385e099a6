"""``aiobs scan`` on the demo world at its default traffic: every planted incident is found (onset
within a bucket, the right segment, the planted cause first or second, impact close to the
truth counted in SQL), the clean worlds stay quiet, and the CLI contract, --fail-on and webhooks
(against a real local HTTP server) hold."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aiobs.units import duration
from conftest import CLEAN_SEEDS, DEMO_END, Cli, clean_world

WINDOW = "2026-11-08T00:00Z..2026-11-15T00:00Z"


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, dict[str, Any]]]:
    """The default demo week (scale 1, seed 7) and its scan as JSON."""
    base = tmp_path_factory.mktemp("scan-world")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOBS_CONFIG", str(base / "config.toml"))
        cli = Cli(base / "demo.duckdb")
        built = cli("demo", "--end", DEMO_END, "-f", "json")
        assert built.exit_code == 0, built.output
        manifest = json.loads(built.stdout)["manifest"]
        result = cli("scan", "--since", WINDOW, "-f", "json")
        assert result.exit_code == 0, result.output
        yield cli, {"manifest": manifest, "scan": json.loads(result.stdout)}


def _truth(cli: Cli, sql: str, *params: Any) -> int:
    """A count straight from the store's views (ai_traces, ai_spans)."""
    from aiobs.backend.duckdb import open_store

    with open_store(cli.db) as store:
        row = store.con.execute(sql, list(params)).fetchone()
    assert row is not None
    return int(row[0])


def _match(scan: dict[str, Any], planted: dict[str, Any], service: str) -> dict[str, Any]:
    bucket = timedelta(minutes=scan["window"]["bucket_minutes"])
    truth = _t(planted["start"])
    truth_bucket = _t(scan["window"]["since"]) + bucket * (
        (truth - _t(scan["window"]["since"])) // bucket
    )
    found = [
        i for i in scan["incidents"]
        if i["segment"]["service"] == service and abs(_t(i["start"]) - truth_bucket) <= bucket
    ]  # fmt: skip
    assert found, f"{planted['id']}: no incident in {service} within a bucket of {truth}"
    return found[0]


def _cause_rank(incident: dict[str, Any], test: Any) -> int:
    for rank, cause in enumerate(incident["likely_causes"], 1):
        if test(cause):
            return rank
    return 99


def _planted(manifest: dict[str, Any], incident_id: str) -> dict[str, Any]:
    return next(i for i in manifest["incidents"] if i["id"] == incident_id)


def _planted_change(manifest: dict[str, Any], incident_id: str) -> dict[str, Any]:
    return manifest["changes"][_planted(manifest, incident_id)["trigger"]]


def _found(
    world: tuple[Cli, dict[str, Any]], incident_id: str, service: str
) -> tuple[Cli, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(cli, manifest, the planted incident, the scan's incident matching it)."""
    cli, data = world
    planted = _planted(data["manifest"], incident_id)
    return cli, data["manifest"], planted, _match(data["scan"], planted, service)


def test_the_json_contract(world: tuple[Cli, dict[str, Any]]) -> None:
    scan = world[1]["scan"]
    assert set(scan) >= {"window", "incidents", "series_scanned"}
    assert scan["series_scanned"] > 100
    assert {"since", "until", "bucket_minutes"} <= set(scan["window"])
    rank = {"info": 0, "warning": 1, "critical": 2}
    severities = [rank[i["severity"]] for i in scan["incidents"]]
    assert severities == sorted(severities, reverse=True)  # most severe first
    for inc in scan["incidents"]:
        assert {"id", "start", "end", "severity", "summary", "anomalies", "likely_causes",
                "impact", "examples"} <= set(inc)  # fmt: skip
        for a in inc["anomalies"]:
            assert {"metric", "segment", "observed", "expected", "score", "onset"} <= set(a)
        for c in inc["likely_causes"]:
            assert {"kind", "description", "evidence", "confidence"} <= set(c)
            assert 0 <= c["confidence"] <= 1
        assert {"traces", "sessions", "users", "signals"} <= set(inc["impact"])
        assert inc["examples"] and inc["summary"].endswith(".")
        assert inc["start"].endswith("Z")


def test_deprecated_tool_503(world: tuple[Cli, dict[str, Any]]) -> None:
    cli, manifest, planted, inc = _found(world, "deprecated-tool-503", "support-chat")
    assert inc["severity"] == "critical"
    assert inc["segment"].get("tool") == "lookup_charge_v1"
    change = _planted_change(manifest, "deprecated-tool-503")
    assert (
        _cause_rank(inc, lambda c: bool(c.get("time")) and _t(c["time"]) == _t(change["at"])) <= 2
    )
    assert any(a["segment"].get("service") == "payments-api" for a in inc["anomalies"])
    truth = _truth(
        cli,
        "SELECT count(DISTINCT trace_id) FROM ai_spans WHERE tool_name = 'lookup_charge_v1'"
        " AND start_time >= ? AND start_time < ?",
        _t(planted["start"]), _t(planted["end"]),
    )  # fmt: skip
    assert 0.9 * truth <= inc["impact"]["traces"] <= 1.1 * truth
    assert inc["impact"]["signals"]["abandonment_rate"]["ratio"] > 2
    assert "lookup_charge_v1" in inc["summary"] and "2.4.0" in inc["summary"]
    # The first example is a journey that hit the broken tool.
    shown = cli("replay", inc["examples"][0], "-f", "json")
    steps = json.loads(shown.stdout)["steps"]
    assert any(s.get("tool_name") == "lookup_charge_v1" and s["status"] == "error" for s in steps)


def test_retry_loop_tokens(world: tuple[Cli, dict[str, Any]]) -> None:
    cli, manifest, planted, inc = _found(world, "retry-loop-tokens", "order-assistant")
    assert inc["segment"].get("workflow") == "order_status"
    assert inc["end"] is None  # still going at the end of the world, like the truth
    change = _planted_change(manifest, "retry-loop-tokens")
    assert (
        _cause_rank(inc, lambda c: bool(c.get("time")) and _t(c["time"]) == _t(change["at"])) <= 2
    )
    lead = inc["anomalies"][0]
    assert lead["metric"] in ("tokens_per_trace", "cost_per_trace", "llm_calls_per_trace")
    assert lead["observed"] / lead["expected"] > 5
    truth = _truth(
        cli,
        "SELECT count(*) FROM ai_traces WHERE root_name = 'order_status' AND start_time >= ?",
        _t(planted["start"]),
    )
    assert 0.9 * truth <= inc["impact"]["traces"] <= 1.1 * truth
    assert inc["impact"]["extra_cost_usd"] > 0


def test_vector_index_rebuild(world: tuple[Cli, dict[str, Any]]) -> None:
    cli, manifest, planted, inc = _found(world, "vector-index-rebuild", "support-chat")
    assert any(a["metric"].startswith("retrieval_") for a in inc["anomalies"])
    assert inc["end"] is not None and _t(inc["end"]) - _t(planted["end"]) <= timedelta(hours=1)
    change = _planted_change(manifest, "vector-index-rebuild")
    assert (
        _cause_rank(inc, lambda c: bool(c.get("time")) and _t(c["time"]) == _t(change["at"])) <= 2
    )
    assert _cause_rank(inc, lambda c: c["kind"] == "infra" and "vector-db" in c["description"]) <= 2
    # Impact: the support-chat journeys of the incident, against the truth's hour (the onset
    # and end are refined from the traces, not known to a bucket).
    truth = _truth(
        cli,
        "SELECT count(*) FROM ai_traces WHERE service_name = 'support-chat'"
        " AND start_time >= ? AND start_time < ?",
        _t(planted["start"]), _t(planted["end"]),
    )  # fmt: skip
    assert 0.85 * truth <= inc["impact"]["traces"] <= 1.15 * truth


def test_reasoning_leak(world: tuple[Cli, dict[str, Any]]) -> None:
    cli, manifest, planted, inc = _found(world, "reasoning-leak", "support-chat")
    assert inc["segment"].get("model", "").startswith("claude-sonnet-4-5")
    change = _planted_change(manifest, "reasoning-leak")
    assert (
        _cause_rank(inc, lambda c: bool(c.get("time")) and _t(c["time"]) == _t(change["at"])) <= 2
    )
    assert inc["impact"]["signals"]["thumbs_down_rate"]["ratio"] > 1.5
    truth = _truth(
        cli,
        "SELECT count(*) FROM ai_traces WHERE list_contains(models, ?) AND start_time >= ?",
        inc["segment"]["model"], _t(planted["start"]),
    )  # fmt: skip
    assert 0.9 * truth <= inc["impact"]["traces"] <= 1.1 * truth


def test_unsupported_answers(world: tuple[Cli, dict[str, Any]]) -> None:
    cli, _, _, inc = _found(world, "unsupported-answers", "support-chat")
    assert inc["segment"].get("model", "").startswith("gpt-4.1")
    assert inc["anomalies"][0]["metric"] == "eval_fail_rate"
    # No trigger: the cause is the condition — retrieval found nothing relevant (top score < 0.45).
    rank = _cause_rank(
        inc,
        lambda c: (
            c["kind"] == "condition"
            and c["field"] == "retrieval_top_score"
            and 0.4 <= c["threshold"] <= 0.5
        ),
    )
    assert rank <= 2
    truth = _truth(
        cli,
        "SELECT count(*) FROM ai_traces WHERE list_contains(models, ?)",
        inc["segment"]["model"],
    )
    assert inc["impact"]["traces"] == truth


def test_fail_on_and_min_severity(world: tuple[Cli, dict[str, Any]]) -> None:
    cli = world[0]
    failed = cli("scan", "--since", WINDOW, "--fail-on", "critical", "-f", "json")
    assert failed.exit_code == 1
    kept = json.loads(
        cli("scan", "--since", WINDOW, "--min-severity", "critical", "-f", "json").stdout
    )
    assert kept["incidents"] and {i["severity"] for i in kept["incidents"]} == {"critical"}
    # Before the first change only the model that was worse all along shows (a warning): no
    # page at critical, and a first morning is not mistaken for an incident against the night.
    early = cli(
        "scan", "--since", "2026-11-08T00:00Z..2026-11-09T12:00Z", "--fail-on", "critical",
        "-f", "json",
    )  # fmt: skip
    assert early.exit_code == 0, early.output
    kinds = [
        (i["severity"], i["anomalies"][0]["kind"]) for i in json.loads(early.stdout)["incidents"]
    ]
    assert kinds == [("warning", "outlier")]
    assert "no incidents" in cli("scan", "--since", WINDOW, "--service", "nope").stdout


# --- the real cause, the real onset, the real symptom (issue 15 §2) ------------------------------


def test_the_planted_deployment_is_the_top_cause_not_a_one_bucket_co_mover(
    world: tuple[Cli, dict[str, Any]],
) -> None:
    """A co-moving infra series needs a shift that held over the incident, significant against
    its own history, and relevance (a dependency the affected traces call, or a backend
    nothing traces); the deployment it followed comes first."""
    for incident_id, service in (
        ("vector-index-rebuild", "support-chat"),
        ("retry-loop-tokens", "order-assistant"),
    ):
        _, manifest, _, inc = _found(world, incident_id, service)
        change = _planted_change(manifest, incident_id)
        top = inc["likely_causes"][0]
        assert top.get("time") and _t(top["time"]) == _t(change["at"]), (incident_id, top)
        for cause in inc["likely_causes"]:
            if cause["kind"] == "infra":
                assert cause["confidence"] < top["confidence"]
                assert "held in" in " ".join(cause["evidence"])
    _, _, _, retry = _found(world, "retry-loop-tokens", "order-assistant")
    # order-assistant's journeys never call calendar-api or crm-api: not among its causes' top.
    for cause in retry["likely_causes"][:3]:
        assert not cause["description"].startswith(("calendar-api", "crm-api")), cause


def test_onset_and_end_are_refined_from_the_traces(world: tuple[Cli, dict[str, Any]]) -> None:
    """The vector-index slowdown ran 14:22–15:22 (planted); the deployment at 14:18 is minutes
    before an onset dated within the bucket, and the incident lasts about an hour."""
    _, _, planted, inc = _found(world, "vector-index-rebuild", "support-chat")
    assert abs(_t(inc["start"]) - _t(planted["start"])) <= timedelta(minutes=5)
    assert abs(_t(inc["end"]) - _t(planted["end"])) <= timedelta(minutes=5)
    assert 50 <= inc["duration_minutes"] <= 70
    assert "for 5" in inc["summary"] or "for 6" in inc["summary"]  # "for 59 min"
    deploy = next(c for c in inc["likely_causes"] if c.get("time"))
    before = (_t(inc["start"]) - _t(deploy["time"])).total_seconds() / 60
    assert 1 <= before <= 10
    assert (
        f"{duration(before * 60_000)} before the onset ({_t(inc['start']):%H:%M})"
        in deploy["evidence"][0]
    )
    # Every planted incident with a start: the onset within 10 minutes of the truth.
    for incident_id, service in (
        ("deprecated-tool-503", "support-chat"),
        ("retry-loop-tokens", "order-assistant"),
        ("reasoning-leak", "support-chat"),
    ):
        _, _, planted, inc = _found(world, incident_id, service)
        assert abs(_t(inc["start"]) - _t(planted["start"])) <= timedelta(minutes=10), incident_id


def test_every_planted_change_is_the_top_cause_and_ongoing_matches_the_truth(
    world: tuple[Cli, dict[str, Any]],
) -> None:
    for incident_id, service in (
        ("deprecated-tool-503", "support-chat"),
        ("retry-loop-tokens", "order-assistant"),
        ("vector-index-rebuild", "support-chat"),
        ("reasoning-leak", "support-chat"),
    ):
        _, manifest, planted, inc = _found(world, incident_id, service)
        change = _planted_change(manifest, incident_id)
        assert _cause_rank(
            inc, lambda c, at=change["at"]: bool(c.get("time")) and _t(c["time"]) == _t(at)
        ) == 1, (incident_id, inc["likely_causes"][:2])  # fmt: skip
        # Still going at the end of the world where the truth is (a model on a third of a
        # quiet night's traffic unseen for an hour has not gone away).
        assert inc["ongoing"] == (planted["end"] is None), incident_id


def test_figures_are_computed_over_traces(world: tuple[Cli, dict[str, Any]]) -> None:
    """The quoted p95 of the retrieval steps is the p95 of the incident's retrieval steps, and
    the tokens per trace the mean over its traces — not a median of bucket summaries."""
    cli, _, _, inc = _found(world, "vector-index-rebuild", "support-chat")
    lead = next(a for a in inc["anomalies"] if a["metric"] == "retrieval_p95_ms")
    from aiobs.backend.duckdb import open_store

    with open_store(cli.db) as store:
        row = store.con.execute(
            "SELECT quantile_cont(s.duration_ms, 0.95) FROM ai_spans s JOIN ai_traces t"
            " USING (trace_id) WHERE t.service_name = 'support-chat' AND s.step_kind = 'retrieval'"
            " AND t.start_time >= ? AND t.start_time < ?",
            [_t(inc["start"]), _t(inc["end"]) + timedelta(microseconds=1)],
        ).fetchone()
    assert row is not None and lead["observed"] == pytest.approx(row[0], rel=1e-6)
    _, _, _, retry = _found(world, "retry-loop-tokens", "order-assistant")
    tokens = next(a for a in retry["anomalies"] if a["metric"] == "tokens_per_trace"
                  and a["segment"].get("workflow") == "order_status")  # fmt: skip
    with open_store(cli.db) as store:
        row = store.con.execute(
            "SELECT avg(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) FROM ai_traces"
            " WHERE service_name = 'order-assistant' AND root_name = 'order_status'"
            " AND start_time >= ?",
            [_t(retry["start"])],
        ).fetchone()
    assert row is not None and tokens["observed"] == pytest.approx(row[0], rel=1e-6)


def test_the_reasoning_leak_is_headlined_by_what_users_see(
    world: tuple[Cli, dict[str, Any]],
) -> None:
    _, _, _, inc = _found(world, "reasoning-leak", "support-chat")
    metrics = {a["metric"] for a in inc["anomalies"]}
    assert "thumbs_down_rate" in metrics
    # Longer answers: a third of them beyond the usual 90th percentile (the leak's share), found
    # by a rank test over the traces though the bucket means barely moved.
    longer = next(a for a in inc["anomalies"] if a["metric"] == "response_chars")
    assert longer["direction"] == "up" and longer["answers_beyond_usual"] >= 0.25
    assert inc["symptom"] == "thumbs_down_rate" == inc["anomalies"][0]["metric"]
    assert inc["summary"].startswith("Thumbs-down rate of support-chat")
    assert not inc["summary"].startswith("Cost per trace")


def test_ids_are_stable_across_scan_windows(world: tuple[Cli, dict[str, Any]]) -> None:
    """A day's scan and the week's name the incidents they share alike (the model worse all
    along too, whose window start used to be its id) and agree on whether each is ongoing."""
    cli, data = world
    week = {i["id"]: i for i in data["scan"]["incidents"]}
    day = cli.json("scan", "--since", "2026-11-14T00:00Z..2026-11-15T00:00Z")["incidents"]
    shared = [i for i in day if i["id"] in week]
    assert len(shared) >= 2, ([i["id"] for i in day], list(week))
    outlier = next(i for i in day if i["anomalies"][0]["kind"] == "outlier")
    assert outlier["id"] in week
    for inc in shared:
        assert inc["ongoing"] == week[inc["id"]]["ongoing"], inc["id"]
    # The retry loop began three days before the day scanned and still runs: both say so.
    _, _, _, retry = _found(world, "retry-loop-tokens", "order-assistant")
    assert retry["id"] in {i["id"] for i in shared} and retry["ongoing"]
    # Every incident the week's scan calls ongoing is ongoing in the day's, under the same id.
    for ident, inc in week.items():
        if inc["ongoing"]:
            assert ident in {i["id"] for i in day}, ident


def test_text_and_other_formats(world: tuple[Cli, dict[str, Any]]) -> None:
    cli = world[0]
    text = cli("scan", "--since", WINDOW, "--service", "order-assistant")
    assert text.exit_code == 0, text.output
    assert "CRITICAL" not in text.stdout and "WARNING" in text.stdout
    assert "Likely cause: deployed order-assistant 1.9.0" in text.stdout.replace("\n", " ")
    assert "aiobs replay " in text.stdout
    for fmt in ("jsonl", "csv", "markdown"):
        out = cli("scan", "--since", WINDOW, "--service", "order-assistant", "-f", fmt)
        assert out.exit_code == 0 and "order_status" in out.stdout, fmt
    report = cli("scan", "--since", WINDOW, "-f", "markdown").stdout
    assert report.startswith("# aiobs scan — 2026-11-08 00:00 .. 2026-11-15 00:00 UTC")
    assert "## 1. CRITICAL — " in report and "**Likely causes**" in report
    assert "`aiobs replay " in report and "more anomalies" in report


def test_a_window_far_wider_than_the_data_scans_only_the_data(
    world: tuple[Cli, dict[str, Any]],
) -> None:
    """Twenty years around a week of data: the same incidents, the same buckets (it once walked
    every empty hour: minutes and gigabytes)."""
    cli, data = world
    wide = cli.json("scan", "--since", "2016-01-01T00:00Z..2036-01-01T00:00Z")
    assert wide["window"]["bucket_minutes"] == data["scan"]["window"]["bucket_minutes"]
    assert [i["id"] for i in wide["incidents"]] == [i["id"] for i in data["scan"]["incidents"]]
    # The walk starts at the first trace's bucket, not in 2016 (ten empty years took 141 s).
    assert wide["window"]["history_since"] == data["scan"]["window"]["history_since"]


def test_usage_errors(world: tuple[Cli, dict[str, Any]]) -> None:
    cli = world[0]
    assert cli("scan", "--since", WINDOW, "--by", "colour").exit_code == 2
    assert cli("scan", "--since", WINDOW, "--bucket", "10s").exit_code == 2
    assert cli("scan", "--since", WINDOW, "--fail-on", "sometimes").exit_code == 2
    hourly = cli.json("scan", "--since", WINDOW, "--bucket", "1h")
    assert hourly["window"]["bucket_minutes"] == 60
    # A week of 1-minute buckets is 10,080 steps of the detectors' walk: refused up front.
    too_fine = cli("scan", "--since", WINDOW, "--bucket", "1m")
    assert too_fine.exit_code == 2 and "buckets" in too_fine.stderr
    # A webhook that cannot be posted to is a usage error before the scan, its secret not shown.
    bad = cli("scan", "--since", WINDOW, "--webhook", "https://hooks.example:abc/T0/SECRET")
    assert bad.exit_code == 2 and "SECRET" not in bad.stderr and bad.stdout == ""


def test_webhook_text_is_inert_and_urls_are_redacted() -> None:
    from aiobs.cli.webhook import redact, slack_text

    text = slack_text("deployed <!channel> <http://evil.example|details> \x1b[31m & co\n")
    assert "<" not in text and ">" not in text and "\x1b" not in text
    assert "&lt;!channel&gt;" in text and "&amp; co" in text
    assert redact("http://user:s3cret@127.0.0.1:8080/T0/SECRET") == "http://127.0.0.1:8080/…"
    assert redact("not a url") == "<webhook>"


def test_a_level_falling_to_zero_is_still_a_level() -> None:
    import math

    import numpy as np

    from aiobs.analysis.scan import _log_levels

    levels = _log_levels(np.array([[500.0, 480.0, 0.0, np.nan]]))
    assert math.isfinite(levels[0, 2]) and levels[0, 2] < levels[0, 1]
    assert math.isnan(levels[0, 3])


class _Receiver(BaseHTTPRequestHandler):
    """Answers with the next status of ``statuses`` (then 200) and keeps every body."""

    statuses: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).bodies.append(json.loads(body))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"statuses": [], "bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/T123/secret", handler
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_retries_then_delivers(
    world: tuple[Cli, dict[str, Any]], receiver: tuple[str, type[_Receiver]]
) -> None:
    cli = world[0]
    url, handler = receiver
    handler.statuses = [503]  # the first attempt fails; the retry lands
    result = cli(
        "scan", "--since", WINDOW, "--service", "order-assistant", "--webhook", url,
        "--fail-on", "warning", "-f", "json",
    )  # fmt: skip
    assert result.exit_code == 1  # the webhook does not change the verdict
    assert len(handler.bodies) == 2 and handler.bodies[0] == handler.bodies[1]
    body = handler.bodies[-1]
    assert "[WARNING]" in body["text"] and "aiobs replay " in body["text"]
    inc = body["incidents"][0]
    assert inc["replay"].startswith("aiobs replay ")
    assert inc["likely_causes"][0]["description"].startswith("deployed order-assistant 1.9.0")
    assert {"traces", "sessions", "users", "signals"} <= set(inc["impact"])
    assert "not delivered" not in result.stderr


def test_webhook_failures_are_reported_not_fatal(
    world: tuple[Cli, dict[str, Any]], receiver: tuple[str, type[_Receiver]], tmp_path: Path
) -> None:
    cli = world[0]
    url, handler = receiver
    handler.statuses = [400]  # refused: not retried
    closed = "http://127.0.0.1:9/hooks/nobody-listens"
    # One more from the config file.
    (tmp_path / "config.toml").write_text(f'[scan]\nwebhooks = ["{url}"]\n')
    result = cli("scan", "--since", WINDOW, "--service", "order-assistant", "--webhook", closed)
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.stdout  # the scan itself printed
    assert len(handler.bodies) == 1  # a 400 is not retried
    assert result.stderr.count("not delivered") == 2
    assert "secret" not in result.stderr and "nobody-listens" not in result.stderr  # redacted


@pytest.mark.xdist_group("clean-worlds")
@pytest.mark.parametrize("seed", CLEAN_SEEDS)
def test_the_clean_world_stays_quiet(tmp_path_factory: pytest.TempPathFactory, seed: int) -> None:
    """No incidents planted: at most one incident in the simulated week, none critical."""
    cli = Cli(clean_world(tmp_path_factory, seed))
    result = cli("scan", "--since", WINDOW, "--fail-on", "critical", "-f", "json")
    incidents = json.loads(result.stdout)["incidents"]
    assert result.exit_code == 0 and len(incidents) <= 1, [i["summary"] for i in incidents]
