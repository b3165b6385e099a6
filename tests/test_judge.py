"""The LLM judge against a real HTTP server on loopback that speaks the chat-completions API:
canned judgements, malformed replies, timeouts, 429s with Retry-After, 5xx, a refused key; the
sample, the budget, the cache (a rerun sends nothing), and the verdicts stored as evaluation
events like the built-in ones. No network beyond 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aiobs.evals.builtin import Answer, Document
from aiobs.evals.judge import (
    Cache,
    Judge,
    JudgeConfig,
    JudgeError,
    parse_reply,
    prompt,
    sampled,
)
from conftest import REPO, Cli

PROMPT_TOKENS, COMPLETION_TOKENS = 400, 30


def fake_judgement(body: dict[str, Any]) -> tuple[int, str]:
    """What the fake judge answers: the answer fails (score 2) when it mentions a refund, else
    5 — a rule the tests can check the stored verdicts against."""
    user = body["messages"][-1]["content"]
    answer = user.rsplit("ANSWER:\n", 1)[-1].lower()
    return (2, "it promises a refund") if "refund" in answer else (5, "fine")


class Server:
    """A chat-completions endpoint on 127.0.0.1; ``behave(body, n)`` may return (status,
    headers, text, delay) for the n-th request to answer otherwise than the canned judgement."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.behave: Callable[[dict[str, Any], int], Any] | None = None
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with server.lock:
                    n = len(server.requests)
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                answer = server.behave(body, n) if server.behave else None
                if answer is None:
                    score, why = fake_judgement(body)
                    content = json.dumps({"score": score, "explanation": why})
                    answer = (200, {}, completion(content), 0.0)
                status, headers, text, delay = answer
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(text.encode())))
                    self.end_headers()
                    self.wfile.write(text.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out first

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(content: str) -> str:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS},
        }
    )


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def config(server: Server, **kw: Any) -> JudgeConfig:
    base = {
        "base_url": server.url,
        "model": "judge-model",
        "api_key": "sk-test",
        "input_price": 1.0,
        "output_price": 2.0,
        "timeout": 2.0,
        "backoff": 0.01,
    }
    return JudgeConfig(**{**base, **kw})


def answer(text: str, span: str = "s1", **kw: Any) -> Answer:
    return Answer(trace_id="t1", span_id=span, text=text, user_text="where is my order?", **kw)


# -- the judge on its own: HTTP behaviour --------------------------------------------------------


def test_a_judgement_is_a_verdict_with_score_label_and_explanation(server: Server) -> None:
    judge = Judge(config(server), ["tone", "helpfulness"])
    try:
        got = judge.judge([answer("It ships today."), answer("We will refund you.", "s2")])
    finally:
        judge.close()
    verdicts = {(a.span_id, v.name): v for a, v in got}
    assert set(verdicts) == {("s1", "judge_tone"), ("s1", "judge_helpfulness"),
                             ("s2", "judge_tone"), ("s2", "judge_helpfulness")}  # fmt: skip
    good = verdicts["s1", "judge_tone"]
    assert good.label == "pass" and good.score == 5
    bad = verdicts["s2", "judge_tone"]
    assert (bad.label, bad.score, bad.explanation) == ("fail", 2, "2/5: it promises a refund")
    assert bad.version == "judge1:judge-model"
    # the request: the model, the key, temperature 0, JSON mode, the rubric and the answer
    body, headers = server.requests[0], server.headers[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert headers["authorization"] == "Bearer sk-test"
    assert "USER:\nwhere is my order?" in body["messages"][1]["content"]
    s = judge.stats
    assert (s.requests, s.judged, s.failed) == (4, 4, 0)
    assert (s.input_tokens, s.output_tokens) == (4 * PROMPT_TOKENS, 4 * COMPLETION_TOKENS)
    assert s.cost_usd == pytest.approx(4 * (PROMPT_TOKENS * 1.0 + COMPLETION_TOKENS * 2.0) / 1e6)


def test_groundedness_asks_only_with_documents_and_shows_them(server: Server) -> None:
    docs = (Document("d1", 0.9, "Orders ship within 2 days."),)
    assert prompt("groundedness", answer("It ships today.")) is None  # nothing retrieved
    text = prompt("groundedness", answer("It ships today.", documents=docs))
    assert text is not None and "DOCUMENTS:\n[1] Orders ship within 2 days." in text
    assert prompt("tone", answer("   ")) is None  # no answer to judge
    assert prompt("instruction_following", answer("ok")) is None  # no system prompt


def test_429_and_5xx_are_retried_honouring_retry_after(server: Server) -> None:
    script = {0: (429, {"Retry-After": "1.5"}, "{}", 0.0), 1: (503, {}, "busy", 0.0)}
    server.behave = lambda body, n: script.get(n)
    waits: list[float] = []
    judge = Judge(config(server), ["tone"], sleep=waits.append)
    try:
        got = judge.judge([answer("It ships today.")])
    finally:
        judge.close()
    assert [v.label for _, v in got] == ["pass"]
    assert len(server.requests) == 3
    assert waits == [1.5, 0.02]  # the server's Retry-After, then backoff doubling from 0.01


def test_malformed_replies_and_timeouts_are_retried_then_reported(server: Server) -> None:
    replies = [
        (200, {}, "not json at all", 0.0),  # a proxy's page
        (200, {}, completion("I think it is fine."), 0.0),  # no JSON judgement
        (200, {}, completion('```json\n{"score": 4, "explanation": "ok"}\n```'), 0.0),
    ]
    server.behave = lambda body, n: replies[n] if n < len(replies) else None
    judge = Judge(config(server, retries=3), ["tone"], sleep=lambda s: None)
    try:
        got = judge.judge([answer("It ships today.")])
    finally:
        judge.close()
    assert [(v.score, v.explanation) for _, v in got] == [(4.0, "4/5: ok")]  # fenced JSON is read

    server.requests.clear()
    server.behave = lambda body, n: (200, {}, completion("{}"), 1.0)  # slower than the timeout
    judge = Judge(config(server, retries=2, timeout=0.2), ["tone"], sleep=lambda s: None)
    try:
        assert judge.judge([answer("It ships today.")]) == []
    finally:
        judge.close()
    assert len(server.requests) == 2
    assert (judge.stats.failed, judge.stats.problems) == (1, {"timeout": 1})

    server.behave = lambda body, n: (200, {}, completion('{"score": 9}'), 0.0)
    judge = Judge(config(server, retries=2), ["tone"], sleep=lambda s: None)
    try:
        assert judge.judge([answer("It ships today.")]) == []
    finally:
        judge.close()
    assert judge.stats.problems == {"malformed judgement": 1}


def test_an_endpoint_that_fails_every_answer_stops_judging(server: Server) -> None:
    server.behave = lambda body, n: (503, {}, "down", 0.0)
    judge = Judge(config(server, retries=2, concurrency=1), ["tone"], sleep=lambda s: None)
    try:
        with pytest.raises(JudgeError, match="failed 8 answers in a row"):
            judge.judge([answer(f"answer {i}", f"s{i}") for i in range(50)])
    finally:
        judge.close()
    assert len(server.requests) == 16  # 8 answers, 2 attempts each; the other 42 never sent
    # one that comes back resets the count
    flaky = {i for i in range(0, 40, 5)}
    server.requests.clear()
    server.behave = lambda body, n: None if n // 2 in flaky else (503, {}, "down", 0.0)
    judge = Judge(config(server, retries=2, concurrency=1), ["tone"], sleep=lambda s: None)
    try:
        got = judge.judge([answer(f"answer {i}", f"s{i}") for i in range(20)])
    finally:
        judge.close()
    assert got and judge.stats.failed > len(got)


def test_a_refused_key_stops_judging_at_once(server: Server) -> None:
    server.behave = lambda body, n: (401, {}, '{"error": "invalid api key"}', 0.0)
    judge = Judge(config(server), ["tone"], sleep=lambda s: None)
    try:
        with pytest.raises(JudgeError, match="HTTP 401"):
            judge.judge([answer("It ships today.")])
    finally:
        judge.close()
    assert len(server.requests) == 1  # no retry can fix a key


def test_the_budget_stops_judging_before_it_is_passed(server: Server) -> None:
    # $10 and $20 per million tokens: a request costs 400*10e-6 + 30*20e-6 = $0.0046
    cfg = config(server, input_price=10.0, output_price=20.0, concurrency=1)
    judge = Judge(cfg, ["tone"], budget=0.02)
    try:
        got = judge.judge([answer(f"answer number {i}", f"s{i}") for i in range(10)])
    finally:
        judge.close()
    assert 1 <= len(got) <= 4 and judge.stats.skipped_budget == 10 - len(got)
    assert judge.stats.cost_usd <= 0.02
    assert len(server.requests) == len(got)


def test_the_sample_is_the_same_on_every_run() -> None:
    ids = [f"{i:016x}" for i in range(4000)]
    first = [i for i in ids if sampled(i, 0.1)]
    assert first == [i for i in ids if sampled(i, 0.1)]
    assert 320 <= len(first) <= 480  # ~10%
    assert set(first) <= {i for i in ids if sampled(i, 0.3)}  # a larger sample contains it


def test_parse_reply_refuses_what_is_not_a_judgement() -> None:
    assert parse_reply('{"score": 3, "explanation": "meh"}') == (3.0, "meh")
    for bad in ("", "[1, 2]", '{"score": "5"}', '{"score": 0}', '{"score": true}', "{oops}"):
        with pytest.raises(ValueError):
            parse_reply(bad)


def test_the_cache_answers_a_rerun_without_a_request(server: Server, tmp_path: Path) -> None:
    for run in range(2):
        judge = Judge(config(server), ["tone"], cache=Cache(tmp_path / "judge.sqlite"))
        try:
            got = judge.judge([answer("We will refund you.")])
        finally:
            judge.close()
        assert [(v.label, v.explanation) for _, v in got] == [("fail", "2/5: it promises a refund")]
        assert (judge.stats.judged, judge.stats.cached) == ((1, 0) if run == 0 else (0, 1))
    assert len(server.requests) == 1
    # another model is another judgement
    judge = Judge(config(server, model="other"), ["tone"], cache=Cache(tmp_path / "judge.sqlite"))
    try:
        judge.judge([answer("We will refund you.")])
    finally:
        judge.close()
    assert len(server.requests) == 2


# -- aiobs eval --judge on a store ----------------------------------------------------------------


@pytest.fixture
def fixture_store(tmp_path: Path) -> Cli:
    """The committed demo fixture (two days, 727 answers) in a fresh store."""
    cli = Cli(tmp_path / "judge.duckdb")
    result = cli("ingest", *map(str, sorted((REPO / "fixtures" / "demo").glob("*.gz"))))
    assert result.exit_code == 0, result.output
    return cli


def answer_texts(db: Path) -> dict[str, str]:
    """Each LLM step's answer text by span id, as the evaluators read it."""
    from aiobs.analysis.filters import TraceFilter
    from aiobs.backend.duckdb import open_store
    from aiobs.evals.run import load_answers

    with open_store(db, read_only=True) as store:
        return {a.span_id: a.text for a in load_answers(store, TraceFilter())}


def judge_env(server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIOBS_JUDGE_BASE_URL", server.url)
    monkeypatch.setenv("AIOBS_JUDGE_MODEL", "judge-model")
    monkeypatch.setenv("AIOBS_JUDGE_API_KEY", "sk-test")
    monkeypatch.setenv("AIOBS_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "config.toml").write_text(
        "[judge]\ninput_price = 1.0\noutput_price = 2.0\nconcurrency = 8\n"
    )


def test_eval_judge_stores_verdicts_reports_cost_and_a_rerun_costs_nothing(
    fixture_store: Cli, server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    judge_env(server, monkeypatch, tmp_path)
    cli = fixture_store
    args = ("eval", "--since", "60d", "--only", "refusal", "--judge", "groundedness,tone")
    first = cli.json(*args)
    j = first["judge"]
    evaluators = {e["name"]: e for e in first["evaluators"]}
    # tone on every answer with text, groundedness on those with documents (280 retrievals);
    # an answer asked twice in the same words (same user message, same documents) is judged once
    asked = len(server.requests)
    verdicts = evaluators["judge_tone"]["judged"] + evaluators["judge_groundedness"]["judged"]
    assert j["judged"] == asked and j["judged"] + j["cached"] == verdicts
    assert (
        0 < evaluators["judge_groundedness"]["judged"] < evaluators["judge_tone"]["judged"] <= 727
    )
    assert j["cost_usd"] == pytest.approx(asked * (PROMPT_TOKENS + 2 * COMPLETION_TOKENS) / 1e6)
    assert j["input_tokens"] == asked * PROMPT_TOKENS

    # the verdicts are evaluation events, and each says what the judge said about that answer
    stored = cli.query(
        "select TraceId as trace_id, SpanId as span_id, LogAttributes['gen_ai.evaluation.name'] as name,"
        " LogAttributes['gen_ai.evaluation.score.label'] as label,"
        " LogAttributes['gen_ai.evaluation.score.value'] as score,"
        " LogAttributes['aiobs.evaluator.version'] as version from otel_logs"
        " where EventName = 'gen_ai.evaluation.result' and ScopeName = 'aiobs.eval'"
        " and LogAttributes['gen_ai.evaluation.name'] in ('judge_tone', 'judge_groundedness')"
    )
    assert len(stored) == verdicts
    texts = answer_texts(cli.db)
    for row in stored:
        refund = "refund" in texts[row["span_id"]].lower()
        assert (row["label"], float(row["score"])) == (("fail", 2.0) if refund else ("pass", 5.0))
        assert row["version"] == "judge1:judge-model"
    labels = {r["label"] for r in stored}
    assert labels == {"pass", "fail"}
    # other commands read them like any evaluation: replay shows them on their step
    failed = next(r for r in stored if r["label"] == "fail")
    trace = cli.query(f"select trace_id from ai_spans where span_id = '{failed['span_id']}'")
    replay = cli("replay", trace[0]["trace_id"])
    assert replay.exit_code == 0 and f"{failed['name']} fail" in replay.stdout, replay.stdout

    # --where reads them (a trace with an answer the judge failed on tone), and so does segment
    failing = {r["trace_id"] for r in stored if r["name"] == "judge_tone" and r["label"] == "fail"}
    for condition in ("eval.judge_tone = 'fail'", "span(eval.judge_tone.score < 3)"):
        listed = cli.json("traces", "--since", "60d", "--where", condition, "-n", "10000")
        assert {r["trace_id"] for r in listed} == failing, condition
    by_service = {
        r["service_name"]: r for r in cli.json("segment", "--by", "service_name", "--since", "60d")
    }
    judged_traces: dict[str, set[str]] = {}
    for r in stored:
        if r["name"] == "judge_tone":
            judged_traces.setdefault(r["trace_id"], set()).add(r["label"])
    services = {
        r["trace_id"]: r["service_name"]
        for r in cli.query("select trace_id, service_name from ai_traces")
    }
    for service, row in by_service.items():
        mine = [labels for t, labels in judged_traces.items() if services[t] == service]
        want = sum("fail" in labels for labels in mine) / len(mine) if mine else None
        assert row["eval.judge_tone_fail_rate"] == pytest.approx(want), service

    # a rerun: every judgement from the cache, no request, no cost, nothing stored twice
    second = cli.json(*args)
    assert len(server.requests) == asked
    assert (second["judge"]["cached"], second["judge"]["judged"]) == (verdicts, 0)
    assert second["judge"]["cost_usd"] == 0 and second["stored"] == 0


def test_eval_judge_sample_and_budget_on_the_cli(
    fixture_store: Cli, server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    judge_env(server, monkeypatch, tmp_path)
    cli = fixture_store
    base = ("eval", "--since", "60d", "--only", "refusal", "--dry-run", "--judge", "tone")
    sampled_run = cli.json(*base, "--sample", "0.1")
    all_answers = sampled_run["evaluators"][0]["judged"]  # refusal judged every answer
    tone = next(e for e in sampled_run["evaluators"] if e["name"] == "judge_tone")
    assert 0.05 * all_answers < tone["judged"] < 0.15 * all_answers
    # $0.00046 a request: a budget of $0.005 stops after about ten
    budget = cli.json(*base, "--budget", "0.005", "--concurrency", "1", "--sample", "0.5")
    b = budget["judge"]
    assert b["skipped_budget"] > 0 and b["cost_usd"] <= 0.005
    assert 0 < b["judged"] <= 11
    # the answers of the 10% sample are in the 50% one, and cached: they cost nothing
    assert b["cached"] >= tone["judged"]
    result = cli(*base, "--budget", "0.005", "--concurrency", "1", "--sample", "0.5")
    assert "left unjudged at the $0.005 budget" in result.stderr


def test_eval_judge_says_what_is_missing_or_refused(
    fixture_store: Cli, server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli = fixture_store
    result = cli("eval", "--judge", "tone")
    assert result.exit_code == 2 and "AIOBS_JUDGE_BASE_URL" in result.stderr
    result = cli("eval", "--sample", "0.1")
    assert result.exit_code == 2 and "apply to the LLM judge" in result.stderr
    result = cli("eval", "--judge", "politeness")
    assert result.exit_code == 2 and "no judge dimension 'politeness'" in result.stderr
    judge_env(server, monkeypatch, tmp_path)
    server.behave = lambda body, n: (401, {}, '{"error": "invalid api key"}', 0.0)
    result = cli("eval", "--since", "60d", "--judge", "tone")
    assert result.exit_code == 2 and "HTTP 401" in result.stderr, result.output
