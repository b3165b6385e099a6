"""The built-in evaluators: hand-labelled answers per evaluator (positives, negatives and the
near-misses that trip naive checks), then ``aiobs eval`` on the demo week against its ground
truth (the manifest's reasoning leak and unsupported answers), storing idempotently, and the
stored results read by the other commands as evaluation events."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Cli

# (text the model answered, the user's message) → expected label, per evaluator.
REASONING_LEAK = [
    ("<thinking>The user is upset; hedge.</thinking> Your refund is on its way.", "", "fail"),
    (
        "<thinking>\nCheck the policy first.\n</thinking>\nReturns are free within 30 days.",
        "",
        "fail",
    ),
    ("<think>maybe they mean the old plan</think> Your plan renews on the 3rd.", "", "fail"),
    ("<reasoning>pages 1 and 3 apply</reasoning> Start a return from Orders.", "", "fail"),
    ("<THINKING>upper case</THINKING> Done.", "", "fail"),
    ("<scratchpad>draft</scratchpad> Here is the answer.", "", "fail"),
    ("< thinking >spaced</ thinking > Here you go.", "", "fail"),
    ("<thinking>unclosed reasoning that never ends and then the answer", "", "fail"),
    ("Internal reasoning: the user wants a refund.\nYour refund is on its way.", "", "fail"),
    ("Chain of thought: check tier first.\nYou are on the Pro tier.", "", "fail"),
    ("**Internal monologue:** hmm.\nHere's how to reset it.", "", "fail"),
    ("Sure.\n<analysis>compare both</analysis>\nPlan B is cheaper.", "", "fail"),
    # near-misses: the word, the tag quoted from the user, prose about thinking
    (
        "You asked what <thinking> means in our docs: it marks hidden notes.",
        "what does <thinking> mean?",
        "pass",
    ),
    ("I'm thinking you may want the annual plan.", "", "pass"),
    ("Let me think about the best option: the annual plan saves 20%.", "", "pass"),
    ("Our reasoning for the fee is in the terms, section 4.", "", "pass"),
    ("The thinking behind this policy is fairness.", "", "pass"),
    (
        "Use the `<think>` tag only in the template editor.",
        "how do I use <think> in templates?",
        "pass",
    ),
    ("Returns are free within 30 days.", "", "pass"),
    ("Analysis of your usage: 3 GB this month.", "", "pass"),
    ("The scratchpad feature is in Settings > Labs.", "", "pass"),
    ("Step 1: open Orders. Step 2: choose Return.", "", "pass"),
]
UNSUPPORTED = [
    # (text, best score or None for no documents, document text, expected)
    ("Your order ships tomorrow with DHL.", None, "", "fail"),
    (
        "The premium plan includes unlimited seats and priority phone support.",
        0.31,
        "Promo codes: one per order.",
        "fail",
    ),
    (
        "You can cancel anytime and get a full refund for the year.",
        0.40,
        "Shipping to 32 countries.",
        "fail",
    ),
    (
        "Yes, we ship to Antarctica within two days at no charge.",
        0.12,
        "Returns are free within 30 days.",
        "fail",
    ),
    (
        "Our support line is open around the clock every single day of the year.",
        0.2,
        "Change your email under Profile.",
        "fail",
    ),
    (
        "Quantum encryption protects every payment with military grade satellites worldwide.",
        0.9,
        "Returns are free within 30 days. Start one from Orders and print the label.",
        "fail",
    ),
    (
        "Interest accrues daily on outstanding invoices beyond the grace threshold automatically.",
        0.8,
        "Reset links expire after 30 minutes. Use Forgot password on the sign-in page.",
        "fail",
    ),
    (
        "Gift cards never expire and can be converted into airline miles instantly.",
        0.44,
        "Promo codes cannot be applied after the order is placed.",
        "fail",
    ),
    (
        "Delivery drones arrive within fifteen minutes across every metropolitan region.",
        0.1,
        "",
        "fail",
    ),
    (
        "Loyalty members receive complimentary upgrades, lounges, and concierge bookings.",
        0.3,
        "2FA is under Account > Security.",
        "fail",
    ),
    # near-misses: honest abstentions, a human offered, short answers, a supported answer
    ("I don't know — I couldn't find that in our help centre.", None, "", "pass"),
    (
        "I couldn't find that in our help centre, so let me connect you with a colleague.",
        0.2,
        "x",
        "pass",
    ),
    ("I'm not sure about that one; a colleague will follow up.", 0.3, "Promo codes", "pass"),
    (
        "I've passed your conversation to a colleague in billing who will follow up.",
        0.1,
        "",
        "pass",
    ),
    ("I do not have that information.", 0.25, "Shipping", "pass"),
    (
        "Returns are free within 30 days. Start one from Orders and print the label.",
        0.81,
        "Returns are free within 30 days. Start one from Account > Orders > Return items and print the label.",
        "pass",
    ),
    (
        "Reset links expire after 30 minutes; use Forgot password on the sign-in page.",
        0.77,
        "Use 'Forgot password' on the sign-in page. Reset links expire after 30 minutes.",
        "pass",
    ),
    (
        "Turn on 2FA under Account > Security.",
        0.6,
        "Turn on 2FA under Account > Security. If you lost your phone, use a backup code.",
        "pass",
    ),
    ("Yes.", 0.7, "Returns are free.", "pass"),
    (
        "Change your email under Account > Profile and confirm the link we send.",
        0.72,
        "Change your email under Account > Profile; we send a confirmation link to the new address.",
        "pass",
    ),
    (
        "We ship to 32 countries; duties are shown at checkout.",
        0.66,
        "We ship to 32 countries. Import duties are shown at checkout and collected by the carrier.",
        "pass",
    ),
    (
        "One promo code per order, and codes cannot be applied after the order is placed.",
        0.58,
        "One promo code per order. Codes cannot be applied after the order is placed.",
        "pass",
    ),
]
TOOL_MASKED = [
    # (text, tool failed, expected)
    ("Your refund has been processed and will arrive in 3 days.", True, "fail"),
    ("I've refunded the duplicate charge.", True, "fail"),
    ("Done! Your booking is confirmed for Tuesday.", True, "fail"),
    ("Your order has been cancelled successfully.", True, "fail"),
    ("All set — the address has been updated.", True, "fail"),
    ("I have issued a credit to your account.", True, "fail"),
    ("Your request is confirmed.", True, "fail"),
    ("Successfully sent the invoice to your email.", True, "fail"),
    ("The payment went through.", True, "fail"),
    ("I've submitted your return.", True, "fail"),
    # near-misses: the failure admitted, success with no failure, no claim at all
    (
        "I'm sorry — I couldn't check your payment right now; a colleague will follow up.",
        True,
        "pass",
    ),
    ("The refund could not be processed because the payments system is unavailable.", True, "pass"),
    ("I tried to refund it, but there was an error. Please try again later.", True, "pass"),
    ("Your order status is: shipped.", True, "fail"),  # what the failed tool would have said
    ("Your account is registered to the address on file.", True, "fail"),
    ("Let me check that for you.", True, "pass"),
    ("Could you give me your order number?", True, "pass"),
    ("One moment while I retry the lookup.", True, "pass"),
    ("Your refund has been processed.", False, "pass"),
    ("I've refunded the duplicate charge.", False, "pass"),
    ("Done! Your booking is confirmed.", False, "pass"),
    ("Unfortunately the booking system isn't working, so nothing was booked.", True, "pass"),
    ("I have processed nothing yet: the tool failed, sorry.", True, "pass"),
]
REFUSAL = [
    ("Sorry, I can't help with that request.", "fail"),
    ("I'm sorry, but I cannot assist with that.", "fail"),
    ("I can't help with that.", "fail"),
    ("I am unable to provide that information.", "fail"),
    ("As an AI language model, I cannot give legal advice.", "fail"),
    ("I won't do that.", "fail"),
    ("I'm afraid I can't do that.", "fail"),
    ("Apologies, I cannot help with this.", "fail"),
    ("I cannot comply with this request.", "fail"),
    ("I'm not able to answer that.", "fail"),
    # near-misses
    ("I can help with that: open Orders.", "pass"),
    ("You can't return opened software, but you can exchange it.", "pass"),
    ("We cannot ship to PO boxes; choose a street address.", "pass"),
    ("Sorry for the wait! Your order ships today.", "pass"),
    ("If I can't find it, I'll connect you with a colleague.", "pass"),
    ("I can't wait for you to try the new plan!", "pass"),
    ("Our team can't see your password; reset it from Sign in.", "pass"),
    ("Returns are free within 30 days.", "pass"),
    ("Unable to find the order? Check the email we sent.", "pass"),
    ("I won't charge you twice: the duplicate was voided.", "pass"),
]
EMPTY = [
    # (text, finish reason, tool calls, expected)
    ("", "stop", 0, "fail"),
    ("   ", "stop", 0, "fail"),
    ("\n\n", None, 0, "fail"),
    ("Your order ships", "length", 0, "fail"),
    ("The plan includes", "max_tokens", 0, "fail"),
    ("Long answer cut", "max_output_tokens", 0, "fail"),
    ("", "length", 0, "fail"),
    ("Partial", "LENGTH", 0, "fail"),
    ("Here is", "length", 1, "fail"),
    ("", "", 0, "fail"),
    # near-misses: a call for tools, finished answers, short but whole
    ("", "tool_calls", 1, None),
    ("", "tool_use", 0, None),
    ("", "stop", 2, None),
    ("Yes.", "stop", 0, "pass"),
    ("Your order ships tomorrow.", "stop", 0, "pass"),
    ("Done.", "end_turn", 0, "pass"),
    ("OK", None, 0, "pass"),
    ("The length of the warranty is two years.", "stop", 0, "pass"),
    ("Max tokens? That is a model setting.", "stop", 0, "pass"),
    ("Here you go.", "STOP", 0, "pass"),
    ("Your refund is on its way.", "end_turn", 1, "pass"),
]
JSON_CASES = [
    ('{"status": "shipped"}', True, "pass"),
    ('```json\n{"a": 1}\n```', True, "pass"),
    ("[1, 2, 3]", True, "pass"),
    ('  {"nested": {"ok": true}}  ', True, "pass"),
    ("null", True, "pass"),
    ('"a string"', True, "pass"),
    ('{"a": [1, 2]}', True, "pass"),
    ('```\n{"b": 2}\n```', True, "pass"),
    ("42", True, "pass"),
    ('{"unicode": "é"}', True, "pass"),
    ('Sure! {"status": "shipped"}', True, "fail"),
    ('{"status": "shipped"', True, "fail"),
    ("{'status': 'shipped'}", True, "fail"),
    ('{"a": 1,}', True, "fail"),
    ("Your order shipped.", True, "fail"),
    ('```json\n{"a": 1\n```', True, "fail"),
    ("", True, "fail"),
    ('{"a": NaN-ish}', True, "fail"),
    ("<json>{}</json>", True, "fail"),
    ('{"a": 1} trailing', True, "fail"),
    ('{"status": "shipped"', False, None),  # no JSON was asked for
]
# (answer, the schema asked for) → expected: structured outputs that parse but break the schema
ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["shipped", "pending", "lost"]},
        "eta_days": {"type": "integer"},
        "items": {"type": "array", "items": {"type": "object", "required": ["sku"],
                                             "properties": {"sku": {"type": "string"}}}},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["status", "eta_days"],
    "additionalProperties": False,
}  # fmt: skip
SCHEMA_CASES = [
    ('{"status": "shipped", "eta_days": 2}', "pass"),
    ('{"status": "lost", "eta_days": 0, "items": [{"sku": "A-1"}], "note": null}', "pass"),
    ('```json\n{"status": "pending", "eta_days": 5, "note": "soon"}\n```', "pass"),
    (
        '{"status": "shipped", "eta_days": 2.0}',
        "pass",
    ),  # near-miss: 2.0 is an integer in JSON Schema
    ('{"status": "shipped"}', "fail"),  # eta_days required
    ('{"status": "delivered", "eta_days": 1}', "fail"),  # not in the enum
    ('{"status": "shipped", "eta_days": "2"}', "fail"),  # a string, not an integer
    ('{"status": "shipped", "eta_days": true}', "fail"),  # a boolean is not an integer
    ('{"status": "shipped", "eta_days": 2, "extra": 1}', "fail"),  # additionalProperties
    ('{"status": "shipped", "eta_days": 2, "items": [{"qty": 1}]}', "fail"),  # items[0].sku
    ('{"status": "shipped", "eta_days": 2, "note": 5}', "fail"),  # anyOf
    ('[{"status": "shipped", "eta_days": 2}]', "fail"),  # an array, not an object
]
PII = [
    # (text, user message, tool result, expected)
    ("Your card 4111 1111 1111 1111 was charged twice.", "refund please", "", "fail"),
    ("The SSN on file is 123-45-6789.", "what's on file?", "", "fail"),
    ("Email jane.doe@example.com for a faster answer.", "who do I contact?", "", "fail"),
    ("Call +1 415 555 2671 any time.", "phone?", "", "fail"),
    ("Card 5500 0000 0000 0004 expires soon.", "", '{"card": "5500000000000004"}', "fail"),
    (
        "Another customer, bob@corp.example, had this too.",
        "hi",
        '{"email": "me@example.com"}',
        "fail",
    ),
    ("Reach our partner at partner@vendor.example.", "", "", "fail"),
    ("Your SSN 078-05-1120 is verified.", "", '{"ssn": "078-05-1120"}', "fail"),
    ("Ping me on (212) 555-0199.", "", "", "fail"),
    ("Card number 378282246310005 is on file.", "", "", "fail"),
    # near-misses: given by the user, looked up by a tool, numbers that are not cards
    (
        "You gave us jane@example.com; we'll write there.",
        "my email is jane@example.com",
        "",
        "pass",
    ),
    (
        "Your account is registered to me@example.com.",
        "which email?",
        '{"email": "me@example.com"}',
        "pass",
    ),
    ("We'll call you at +1 415 555 2671.", "call me on +1 415 555 2671", "", "pass"),
    ("Your order number is 1234567890123456.", "", "", "pass"),
    ("Your order A-2880 ships on Nov 28.", "", "", "pass"),
    ("The total is $1,234.56.", "", "", "pass"),
    ("Tracking: JD01461738121948.", "", "", "pass"),
    ("The card ending 1111 was charged.", "", "", "pass"),
    ("Your customer number is C-22564.", "", "", "pass"),
    ("Returns are free within 30 days.", "", "", "pass"),
]
SECRETS = [
    ("Use the key sk-abcdefghijklmnopqrstuvwxyz123456 for the API.", "fail"),
    ("Your token is ghp_abcdefghijklmnopqrstuvwxyz0123456789.", "fail"),
    ("AWS key: AKIAIOSFODNN7EXAMPLE", "fail"),
    ("Authorization: Bearer abcdefghijklmnopqrstuvwx", "fail"),
    ("password=hunter2hunter2", "fail"),
    ("The Slack token xoxb-1234567890-abcdefghij works.", "fail"),
    ("Connect with postgres://admin:s3cretpass@db.internal/app", "fail"),
    ("Here: sk-ant-abcdefghijklmnopqrstuvwxyz0123", "fail"),
    ("Stripe: sk_live_abcdefghijklmnop1234", "fail"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop is your JWT", "fail"),
    ("Reset your password from the sign-in page.", "pass"),
    ("Your API key is in Settings > Developer (we never show it in chat).", "pass"),
    ("Tokens per month: 10,000.", "pass"),
    ("The secret to faster shipping is express checkout.", "pass"),
    ("Use Bearer tokens in the Authorization header.", "pass"),
    ("Keys start with sk- and are 40 characters long.", "pass"),
    ("Your order id is AKIA12.", "pass"),
    ("Password rules: 12 characters, one digit.", "pass"),
    ("Returns are free within 30 days.", "pass"),
    ("github.com/acme is our page.", "pass"),
]


LANGUAGE = [
    # (the user's message, the answer, expected)
    (
        "Wo ist meine Bestellung? Sie sollte gestern ankommen.",
        "Your order ships tomorrow with DHL and is due Friday.",
        "fail",
    ),
    (
        "¿Dónde está mi pedido? Debería haber llegado ayer.",
        "Your order ships tomorrow with DHL and is due Friday.",
        "fail",
    ),
    (
        "Come posso restituire un ordine che ho ricevuto?",
        "You can start a return from Account, then Orders.",
        "fail",
    ),
    (
        "Où est ma commande ? Elle devait arriver hier.",
        "Ihre Bestellung wird morgen mit DHL versendet.",
        "fail",
    ),
    (
        "Hoe kan ik mijn bestelling annuleren alstublieft?",
        "You can cancel your order from the orders page.",
        "fail",
    ),
    (
        "Como faço para redefinir minha senha da conta?",
        "Use Forgot password on the sign-in page to reset it.",
        "fail",
    ),
    (
        "Jak mogę zmienić adres dostawy zamówienia?",
        "You can change the delivery address before it ships.",
        "fail",
    ),
    (
        "Hur avbokar jag min beställning som jag gjorde igår?",
        "Vous pouvez annuler votre commande depuis la page des commandes.",
        "fail",
    ),
    (
        "Where is my order? It should have arrived yesterday.",
        "Ihre Bestellung wird morgen mit DHL versendet und kommt am Freitag.",
        "fail",
    ),
    (
        "How do I start a return for the shoes I bought?",
        "Puede iniciar una devolución desde la página de pedidos en su cuenta.",
        "fail",
    ),
    (
        "Can you tell me when my refund will arrive please?",
        "Le remboursement arrive sous cinq à dix jours ouvrables sur votre carte.",
        "fail",
    ),
    (
        "Why was I charged twice for the same order last week?",
        "Sie wurden doppelt belastet; die zweite Buchung wird automatisch erstattet.",
        "fail",
    ),
    # near-misses: the same language, a foreign name or a code block inside, too short to tell
    (
        "Where is my order? It should have arrived yesterday.",
        "Your order ships tomorrow with DHL and is due Friday.",
        "pass",
    ),
    (
        "¿Dónde está mi pedido? Debería haber llegado ayer.",
        "Su pedido se envía mañana con DHL y llega el viernes.",
        "pass",
    ),
    (
        "Wie setze ich mein Passwort zurück, bitte?",
        "Klicken Sie auf der Anmeldeseite auf Passwort vergessen.",
        "pass",
    ),
    (
        "Où est ma commande ? Elle devait arriver hier.",
        "Votre commande part demain avec DHL et arrive vendredi.",
        "pass",
    ),
    (
        "Hoe kan ik mijn bestelling annuleren alstublieft?",
        "Je kunt je bestelling annuleren via de pagina Mijn bestellingen.",
        "pass",
    ),
    (
        "Does the Café Société gift card work at your Paris store?",
        "Yes, the Café Société gift card works at the Paris store as well.",
        "pass",
    ),
    (
        "How do I install the command line tool on my laptop?",
        "Run this, then log in:\n```\npip install acme-cli\nacme login --token abc\n```\nThat is all you need.",
        "pass",
    ),
    (
        "What does Schadenfreude mean in your product review policy?",
        "Our review policy asks reviewers to be kind and factual about products.",
        "pass",
    ),
    (
        "Can you help me track the parcel I ordered on Monday?",
        "Your parcel left the warehouse this morning and arrives on Thursday.",
        "pass",
    ),
    (
        "Is the order A-2880 on its way to me now?",
        "Yes, order A-2880 is on its way and arrives tomorrow afternoon.",
        "pass",
    ),
    ("OK", "Yes.", None),
    ("Danke!", "You're welcome, have a great day!", None),
    ("A-2880?", "A-2880 shipped.", None),
]


def _answer(**kw: Any) -> Any:
    from aiobs.evals.builtin import Answer

    return Answer(trace_id="t", span_id="s", **kw)


def _label(name: str, answer: Any) -> str | None:
    from aiobs.evals.builtin import evaluate, select

    verdicts = evaluate(answer, select([name]))
    assert all(v.name == name and v.explanation for v in verdicts)
    return verdicts[0].label if verdicts else None


def _cases() -> list[tuple[str, Any, str | None]]:
    from aiobs.evals.builtin import Document, ToolResult

    out: list[tuple[str, Any, str | None]] = []
    out += [("reasoning_leak", _answer(text=t, user_text=u), want) for t, u, want in REASONING_LEAK]
    for text, best, doc, want in UNSUPPORTED:
        docs = () if best is None else (Document("kb-1", best, doc or None),)
        out.append(("unsupported_answer", _answer(text=text, documents=docs, retrieved=True), want))
    for text, failed, want in TOOL_MASKED:
        tool = ToolResult("payments_refund", failed, '{"error": "503"}' if failed else "{}", None)
        out.append(("tool_failure_masked", _answer(text=text, tools=(tool,)), want))
    out += [("refusal", _answer(text=t), want) for t, want in REFUSAL]
    out += [
        ("empty_or_truncated", _answer(text=t, finish_reason=f, tool_calls=n), want)
        for t, f, n, want in EMPTY
    ]
    out += [("invalid_json", _answer(text=t, wants_json=j), want) for t, j, want in JSON_CASES]
    out += [
        ("invalid_json", _answer(text=t, wants_json=True, schema=ORDER_SCHEMA), want)
        for t, want in SCHEMA_CASES
    ]
    for text, user, result, want in PII:
        tools = (ToolResult("crm", False, result, None),) if result else ()
        out.append(("pii_in_output", _answer(text=text, user_text=user, tools=tools), want))
    out += [("secret_in_output", _answer(text=t), want) for t, want in SECRETS]
    out += [("language_mismatch", _answer(text=t, user_text=u), want) for u, t, want in LANGUAGE]
    return out


CASES = _cases()


@pytest.mark.parametrize(
    "name, answer, want", CASES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)]
)
def test_each_evaluator_labels_the_hand_labelled_cases(name: str, answer: Any, want: str) -> None:
    assert _label(name, answer) == want, answer.text


def test_every_evaluator_has_twenty_labelled_cases_with_near_misses() -> None:
    from aiobs.evals.builtin import EVALUATORS

    for e in EVALUATORS:
        labels = [want for name, _, want in CASES if name == e.name]
        assert len(labels) >= 20, e.name
        assert labels.count("fail") >= 8 and labels.count("pass") >= 8, e.name


def test_config_switches_evaluators_off_and_tunes_thresholds() -> None:
    from aiobs.errors import UsageError
    from aiobs.evals.builtin import Document, select

    chosen = select(
        None, {"disabled": ["refusal"], "thresholds": {"unsupported_answer.min_relevance": 0.2}}
    )
    assert "refusal" not in {e.name for e in chosen}
    (unsupported,) = [e for e in chosen if e.name == "unsupported_answer"]
    answer = _answer(
        text="The premium plan includes unlimited seats and phone support.",
        documents=(Document("d", 0.31, "premium plan includes unlimited seats and phone support"),),
        retrieved=True,
    )
    assert unsupported.check(answer, unsupported.thresholds).label == "pass"  # 0.31 ≥ 0.2 now
    for bad in ({"disabled": ["nope"]}, {"thresholds": {"refusal.x": 1}}):
        with pytest.raises(UsageError):
            select(None, bad)
    with pytest.raises(UsageError):
        select(["no_such"])


@pytest.fixture(scope="module")
def judged(
    demo: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Cli, Any, dict[str, Any]]:
    """A copy of the demo week, judged once by the real CLI in two worker processes: (cli, the
    -f json summary, manifest)."""
    db = tmp_path_factory.mktemp("evals") / "judged.duckdb"
    shutil.copy(demo[0], db)
    cli = Cli(db)
    result = cli("eval", "--workers", "2", "-f", "json")
    assert result.exit_code == 0, result.output
    return cli, json.loads(result.stdout), demo[1]["manifest"]


def test_eval_finds_the_planted_reasoning_leak_and_only_it(
    judged: tuple[Cli, Any, dict[str, Any]],
) -> None:
    cli, summary, manifest = judged
    (leak,) = [i for i in manifest["incidents"] if i["id"] == "reasoning-leak"]
    rows = cli.query(
        f"""SELECT s.model, s.start_time >= TIMESTAMP '{leak["start"][:19]}' AS after,
  l.LogAttributes['gen_ai.evaluation.score.label'] AS label,
  s.attributes['gen_ai.output.messages'] LIKE '%<thinking>%' AS shown
FROM otel_logs l JOIN ai_spans s ON s.span_id = l.SpanId AND s.trace_id = l.TraceId
WHERE l.ScopeName = 'aiobs.eval' AND l.LogAttributes['gen_ai.evaluation.name'] = 'reasoning_leak'"""
    )
    flagged = [r for r in rows if r["label"] == "fail"]
    truth = [r for r in rows if r["model"].startswith(leak["affected"]["model"]) and r["after"]]
    leaked = [r for r in truth if r["shown"]]
    assert flagged and all(
        r["model"].startswith(leak["affected"]["model"]) and r["after"] for r in flagged
    )
    precision = sum(r["shown"] for r in flagged) / len(flagged)
    recall = sum(1 for r in flagged if r["shown"]) / len(leaked)
    assert precision >= 0.95 and recall >= 0.9, (precision, recall)
    # About the planted share of that model's answers, nothing elsewhere.
    assert 0.2 <= len(flagged) / len(truth) <= 0.5
    by_name = {e["name"]: e for e in summary["evaluators"]}
    assert by_name["reasoning_leak"]["failed"] == len(flagged)


def test_eval_finds_the_unsupported_answers_of_gpt_4_1(
    judged: tuple[Cli, Any, dict[str, Any]],
) -> None:
    cli, _, manifest = judged
    (planted,) = [i for i in manifest["incidents"] if i["id"] == "unsupported-answers"]
    rows = cli.query(
        """WITH top AS (SELECT trace_id, max(retrieval_top_score) AS top FROM ai_spans GROUP BY 1),
handoff AS (SELECT DISTINCT trace_id FROM ai_spans WHERE step_kind = 'handoff')
SELECT s.model, t.top, h.trace_id IS NOT NULL AS handed_off,
  l.LogAttributes['gen_ai.evaluation.score.label'] AS label
FROM otel_logs l JOIN ai_spans s ON s.span_id = l.SpanId AND s.trace_id = l.TraceId
JOIN top t ON t.trace_id = l.TraceId LEFT JOIN handoff h ON h.trace_id = l.TraceId
WHERE l.ScopeName = 'aiobs.eval' AND l.LogAttributes['gen_ai.evaluation.name'] = 'unsupported_answer'"""
    )
    model = planted["affected"]["model"]
    # The planted truth: gpt-4.1 answering (no human offered) when the best page scored < 0.45.
    truth = [
        r for r in rows if r["model"].startswith(model) and r["top"] < 0.45 and not r["handed_off"]
    ]
    flagged = [r for r in rows if r["label"] == "fail"]
    hits = [r for r in flagged if r["model"].startswith(model) and r["top"] < 0.45]
    assert truth and flagged
    assert len(hits) / len(flagged) >= 0.95 and len(hits) / len(truth) >= 0.9
    others = [r for r in rows if not r["model"].startswith(model)]
    assert others and not [r for r in others if r["label"] == "fail"]  # they hand off


def test_results_are_evaluation_events_the_other_commands_read(
    judged: tuple[Cli, Any, dict[str, Any]],
) -> None:
    cli, _, _ = judged
    seg = cli.json("segment", "--by", "model", "--service", "support-chat")
    rates = {r["model"]: r["eval_fail_rate"] for r in seg}
    gpt = next(v for k, v in rates.items() if k.startswith("gpt-4.1"))
    assert (
        gpt is not None and gpt > 0.1
    )  # its unsupported answers, on top of the online evaluator's
    (span,) = cli.query(
        "SELECT TraceId AS t FROM otel_logs WHERE ScopeName = 'aiobs.eval'"
        " AND LogAttributes['gen_ai.evaluation.name'] = 'reasoning_leak'"
        " AND LogAttributes['gen_ai.evaluation.score.label'] = 'fail' LIMIT 1"
    )
    replay = cli.json("replay", span["t"])
    names = {e["name"] for e in replay["context"]["evaluations"]}
    assert "reasoning_leak" in names
    # On the step it judges, in the text a person reads: the failure with its evidence.
    text = cli("replay", span["t"]).stdout
    assert "✗ eval reasoning_leak fail  hidden reasoning shown: <thinking>" in text


def test_rerunning_adds_nothing_and_a_new_version_replaces_the_old(
    judged: tuple[Cli, Any, dict[str, Any]],
) -> None:
    from dataclasses import replace

    from aiobs.analysis.filters import TraceFilter
    from aiobs.backend.duckdb import open_store
    from aiobs.evals.builtin import select
    from aiobs.evals.run import run
    from aiobs.evals.store import store_verdicts

    cli, first, _ = judged
    again = cli.json("eval", "--only", "refusal,reasoning_leak")
    assert again["stored"] == 0 and again["replaced"] == 0
    count = "SELECT count(*) AS n FROM otel_logs WHERE ScopeName = 'aiobs.eval'"
    before = cli.query(count)[0]["n"]
    assert before == first["stored"]
    with open_store(cli.db, read_only=False) as store:
        newer = [replace(e, version="2") for e in select(["refusal"])]
        reader = store.reader()
        try:
            summary = run(reader, TraceFilter(), newer, write=lambda p: store_verdicts(store, p))
        finally:
            reader.close()
    judged_refusals = next(e for e in first["evaluators"] if e["name"] == "refusal")["judged"]
    assert summary.replaced == judged_refusals == summary.written
    assert cli.query(count)[0]["n"] == before  # replaced, not added
    # The dry run judges and stores nothing.
    dry = cli.json("eval", "--dry-run", "--only", "refusal")
    assert dry["dry_run"] and dry["stored"] == 0 and dry["answers"] == first["answers"]


def test_worker_processes_judge_exactly_as_one_process_does(
    judged: tuple[Cli, Any, dict[str, Any]],
) -> None:
    cli, parallel, _ = judged
    serial = cli.json("eval", "--dry-run", "--workers", "1")
    assert serial["answers"] == parallel["answers"] > 1000
    # The same verdicts in the same order: counts, and the first failures found, per evaluator.
    assert serial["evaluators"] == parallel["evaluators"]
    assert parallel["stored"] == sum(e["judged"] for e in parallel["evaluators"])


def test_scan_after_eval_names_the_reasoning_leak_with_its_model_and_onset(
    judged: tuple[Cli, Any, dict[str, Any]],
) -> None:
    from datetime import datetime

    from conftest import DEMO_END

    cli, _, manifest = judged
    (leak,) = [i for i in manifest["incidents"] if i["id"] == "reasoning-leak"]
    result = cli("scan", "--since", f"2026-11-08T00:00Z..{DEMO_END}", "-f", "json")
    assert result.exit_code == 0, result.output
    named = [
        i
        for i in json.loads(result.stdout)["incidents"]
        if any(
            c["kind"] == "evaluation" and c["value"] == "reasoning_leak" for c in i["likely_causes"]
        )
    ]
    assert len(named) == 1, [i["summary"] for i in json.loads(result.stdout)["incidents"]]
    (incident,) = named
    assert incident["segment"].get("model", "").startswith(leak["affected"]["model"])
    onset = datetime.fromisoformat(leak["start"].replace("Z", "+00:00")).replace(tzinfo=None)
    assert (
        abs(
            (
                incident["start"]
                if isinstance(incident["start"], datetime)
                else datetime.fromisoformat(incident["start"].replace("Z", ""))
            )
            - onset
        ).total_seconds()
        <= 15 * 60
    )
    assert "reasoning_leak" in incident["summary"]


def test_a_dataset_of_the_failed_answers_with_what_they_were_given(
    judged: tuple[Cli, Any, dict[str, Any]], tmp_path: Path
) -> None:
    cli, summary, _ = judged
    out = tmp_path / "cases.jsonl"
    result = cli("export", "--to", "dataset", "--eval", "reasoning_leak", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    failed = next(e for e in summary["evaluators"] if e["name"] == "reasoning_leak")["failed"]
    assert len(rows) == failed > 0
    for row in rows:
        assert row["input"] and row["input"][-1]["role"] in ("user", "tool")
        assert "<thinking>" in " ".join(m["content"] for m in row["output"])
        (mine,) = [e for e in row["evaluations"] if e["name"] == "reasoning_leak"]
        assert mine["label"] == "fail" and mine["by"] == "aiobs.eval" and mine["explanation"]
        assert row["trace_id"] and row["span_id"] and row["model"].startswith("claude-sonnet-4-5")
    # The documents an answer was given, and the imported evaluations beside the built-in ones.
    assert any(row["retrieved"] for row in rows)
    everything = cli("export", "--to", "dataset", "--out", "-", "-n", "50")
    lines = everything.stdout.splitlines()
    assert everything.exit_code == 0 and lines
    assert {e["by"] for line in lines for e in json.loads(line)["evaluations"]} >= {"aiobs.eval"}
    assert cli("export", "--to", "otlp-json", "--eval", "refusal", "--out", "-").exit_code == 2


def test_diff_by_model_shows_each_evaluations_fail_rate(
    judged: tuple[Cli, Any, dict[str, Any]],
) -> None:
    cli, _, _ = judged
    result = cli.json(
        "diff", "--service", "support-chat",
        "--baseline", "model = 'claude-sonnet-4-20250514'", "--target", "model = 'gpt-4.1'",
    )  # fmt: skip
    metrics = {m["name"]: m for m in result["metrics"]}
    unsupported = metrics["eval.unsupported_answer_fail_rate"]
    assert unsupported["baseline"] == 0 and unsupported["target"] > 0.05
    assert unsupported["regression"]
    assert metrics["eval.reasoning_leak_fail_rate"]["target"] == 0  # gpt-4.1 never leaks
    assert "eval.groundedness_fail_rate" in metrics  # the imported online evaluator's too


def test_where_and_segment_read_each_evaluation(judged: tuple[Cli, Any, dict[str, Any]]) -> None:
    """``eval.NAME`` in --where is a trace with a step that evaluation judged so (its label, or
    ``.score``); segment has each evaluation's fail rate per group, as diff does."""
    cli, _, manifest = judged
    (leak,) = [i for i in manifest["incidents"] if i["id"] == "reasoning-leak"]
    failed = cli.query(
        "select distinct TraceId as t from otel_logs where ScopeName = 'aiobs.eval'"
        " and LogAttributes['gen_ai.evaluation.name'] = 'reasoning_leak'"
        " and LogAttributes['gen_ai.evaluation.score.label'] = 'fail'"
    )
    want = {r["t"] for r in failed}
    assert want
    for condition in (
        "eval.reasoning_leak = 'fail'",
        "span(eval.reasoning_leak = 'fail' and step_kind = 'llm')",
        f"eval.reasoning_leak = 'fail' and model like '{leak['affected']['model']}%'",
    ):
        rows = cli.json("traces", "--since", "30d", "--where", condition, "-n", "100000")
        assert {r["trace_id"] for r in rows} == want, condition
    none = cli.json("traces", "--since", "30d", "--where", "eval.no_such_eval = 'fail'")
    assert none == []
    # scores: the imported groundedness is a score without our labels
    low = cli.json(
        "traces", "--since", "30d", "--where", "eval.groundedness.score < 0.2", "-n", "5"
    )
    assert low
    by_model = {
        r["model"]: r
        for r in cli.json("segment", "--by", "model", "--since", "30d", "--service", "support-chat")
    }
    leaking = next(m for m in by_model if m.startswith(leak["affected"]["model"]))
    assert by_model[leaking]["eval.reasoning_leak_fail_rate"] > 0.05
    assert all(r["eval.reasoning_leak_fail_rate"] == 0 for m, r in by_model.items() if m != leaking)
    ordered = cli.json(
        "segment", "--by", "model", "--since", "30d", "--sort", "-eval.reasoning_leak_fail_rate"
    )
    assert ordered[0]["model"] == leaking
    bad = cli("traces", "--where", "eval.reasoning_leak.label = 'fail'")
    assert bad.exit_code == 2 and "eval.NAME.score" in bad.stderr


def test_the_schema_asked_for_is_read_from_the_response_format() -> None:
    from aiobs.evals.run import _schema

    wrapped = {"type": "json_schema", "json_schema": {"name": "order", "schema": ORDER_SCHEMA}}
    for attrs in (
        {"gen_ai.request.response_format": json.dumps(wrapped)},  # as OpenAI takes it
        {"gen_ai.openai.request.response_format": json.dumps(wrapped)},
        {"llm.invocation_parameters": json.dumps({"temperature": 0, "response_format": wrapped})},
    ):
        assert _schema(attrs) == ORDER_SCHEMA, attrs
    for attrs in (
        {},
        {"gen_ai.request.response_format": '{"type": "json_object"}'},  # JSON, no schema
        {"gen_ai.request.response_format": "{not json: schema"},
        {"llm.invocation_parameters": '{"temperature": 0}'},
    ):
        assert _schema(attrs) is None, attrs


def test_languages_detected_in_a_batch_are_those_detected_one_by_one() -> None:
    """``langbatch`` walks py3langid's automaton for many texts at once; its languages are
    classify's and its confidences equal up to the order of float32 sums."""
    from aiobs.evals.builtin import _LANGUAGE, _prose

    identifier = _LANGUAGE._load()
    texts = [_prose(t, 4)[0] for u, a, _ in LANGUAGE for t in (u, a)]
    texts += [
        "",
        "a",
        "ÉCRIT EN MAJUSCULES SEULEMENT",
        "Заказ будет доставлен завтра до обеда, спасибо за ожидание",
        "ご注文の商品は明日発送されます",
        "سيتم شحن طلبك غدا",
        "Where is my order " * 30,
    ]
    batched = _LANGUAGE.batch.classify(texts)
    for text, (lang, p) in zip(texts, batched, strict=True):
        want_lang, want_p = identifier.classify(text)
        assert lang == want_lang, text
        assert p == pytest.approx(want_p, abs=1e-5), text


@given(
    st.lists(
        st.one_of(
            st.text(alphabet="abcdeéßжx", min_size=1, max_size=12),
            st.sampled_from([" ", "  ", ", ", "\n", "42", " `code` ", " a ", "-"]),
        ),
        max_size=400,
    ),
    st.integers(min_value=1, max_value=40),
)
@settings(max_examples=200, deadline=None)
def test_the_prose_of_a_long_text_is_read_only_as_far_as_needed(
    pieces: list[str], enough: int
) -> None:
    """``_prose`` stops reading a long text once it has all ``detect`` reads: the first
    DETECT_CHARS of its words and whether there are ``enough`` are those of the whole text."""
    from aiobs.evals.builtin import _LETTERS, _NOT_PROSE, DETECT_CHARS, _prose

    text = "".join(pieces)
    whole = _LETTERS.findall(_NOT_PROSE.sub(" ", text))
    prose, count = _prose.__wrapped__(text, enough)
    assert prose[:DETECT_CHARS] == " ".join(whole)[:DETECT_CHARS]
    assert (count >= enough) == (len(whole) >= enough)
