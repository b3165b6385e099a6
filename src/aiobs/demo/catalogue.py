"""The fixed content of the demo world: Acme's help-centre pages, what customers ask, how the bot answers.

Plain data, no randomness: the generator picks from these with its seeded RNG. Kept apart from the
generator so the text can grow without touching the timeline logic.

Must not import typer, rich or textual.
"""

from __future__ import annotations

from dataclasses import dataclass

# Help-centre pages the retriever searches: (id, title, snippet). Ids are stable: tests and the tour
# refer to them.
HELP_CENTRE: tuple[tuple[str, str, str], ...] = (
    (
        "kb-refunds-101",
        "How refunds work",
        "Refunds go back to the original payment method within 5-10 business days. Duplicate charges are refunded automatically once confirmed.",
    ),
    (
        "kb-refunds-duplicate",
        "I was charged twice",
        "If you see two charges for one order, one is usually a pending authorisation that drops off within 3 days. If both settle, we refund the duplicate.",
    ),
    (
        "kb-refunds-partial",
        "Partial refunds",
        "Items returned separately are refunded one by one; shipping is refunded only when the whole order is returned.",
    ),
    (
        "kb-billing-invoice",
        "Download an invoice",
        "Invoices are under Account > Orders > Invoice. Business invoices with a VAT number can be requested for orders from the last 12 months.",
    ),
    (
        "kb-billing-cards",
        "Update your payment card",
        "Go to Account > Payment methods to add a card. The default card is charged for subscriptions on the renewal date.",
    ),
    (
        "kb-billing-subscription",
        "Acme Plus subscription",
        "Acme Plus renews monthly. Cancel any time before the renewal date from Account > Subscription; no partial-month refunds.",
    ),
    (
        "kb-billing-currency",
        "Charges in another currency",
        "Orders are charged in the currency of the store you bought from; your bank sets the exchange rate and may add a fee.",
    ),
    (
        "kb-orders-tracking",
        "Track your order",
        "Tracking links are emailed when the parcel ships. Standard delivery takes 2-4 business days, express 1 day.",
    ),
    (
        "kb-orders-delayed",
        "My order is late",
        "If tracking has not moved for 3 business days we open an investigation with the carrier and can resend or refund.",
    ),
    (
        "kb-orders-change-address",
        "Change a delivery address",
        "You can change the address until the order is packed. After that, use the carrier's redirect link in the shipping email.",
    ),
    (
        "kb-orders-cancel",
        "Cancel an order",
        "Orders can be cancelled until they are packed. Cancelled orders are refunded in full.",
    ),
    (
        "kb-returns-start",
        "Start a return",
        "Returns are free within 30 days. Start one from Account > Orders > Return items and print the label.",
    ),
    (
        "kb-returns-damaged",
        "Damaged or wrong item",
        "Send a photo of the damaged item from the order page; we replace it or refund it without a return.",
    ),
    (
        "kb-account-password",
        "Reset your password",
        "Use 'Forgot password' on the sign-in page. Reset links expire after 30 minutes.",
    ),
    (
        "kb-account-2fa",
        "Two-factor authentication",
        "Turn on 2FA under Account > Security. If you lost your phone, use a backup code or contact support.",
    ),
    (
        "kb-account-delete",
        "Delete your account",
        "Account deletion is permanent and takes effect after 14 days; open orders must be completed first.",
    ),
    (
        "kb-account-email",
        "Change your email address",
        "Change your email under Account > Profile; we send a confirmation link to the new address.",
    ),
    (
        "kb-appointments-book",
        "Book a setup appointment",
        "Acme Plus members can book a free 30-minute setup call. Slots are shown in your local time zone.",
    ),
    (
        "kb-appointments-reschedule",
        "Reschedule an appointment",
        "Reschedule or cancel up to 2 hours before the call from the confirmation email.",
    ),
    (
        "kb-products-warranty",
        "Warranty",
        "Electronics carry a 2-year warranty. Claims need the order number and a short description of the fault.",
    ),
    (
        "kb-products-compat",
        "Is it compatible?",
        "Compatibility lists are on each product page under Specifications.",
    ),
    (
        "kb-shipping-international",
        "International shipping",
        "We ship to 32 countries. Import duties are shown at checkout and collected by the carrier.",
    ),
    (
        "kb-promo-codes",
        "Promo codes",
        "One promo code per order. Codes cannot be applied after the order is placed.",
    ),
    (
        "kb-gift-cards",
        "Gift cards",
        "Gift cards never expire and can be combined with a card payment at checkout.",
    ),
)

HELP_CENTRE_BY_ID = {page[0]: page for page in HELP_CENTRE}


@dataclass(frozen=True)
class Intent:
    """One kind of customer request: which service handles it and what the customer says."""

    name: str
    service: str  # support-chat | order-assistant
    weight: float
    pages: tuple[str, ...]  # help-centre pages that answer it (empty: nothing relevant exists)
    tools: tuple[str, ...]  # tool calls the agent makes for it, in order
    messages: tuple[str, ...]
    rephrases: tuple[str, ...]
    answer: str
    workflow: str = ""


INTENTS: tuple[Intent, ...] = (
    Intent(
        "refund_duplicate_charge",
        "support-chat",
        0.14,
        ("kb-refunds-duplicate", "kb-refunds-101"),
        ("lookup_charge", "payments_refund"),
        (
            "I was charged twice for order {order}, please refund one of them",
            "There are two charges of ${amount} on my card for the same order {order}",
            "why did you take ${amount} twice?? order {order}",
        ),
        (
            "No, I meant the second charge from {date}, not the subscription",
            "I already waited 3 days, both charges are still there",
        ),
        "I found two settled charges of ${amount} for order {order}. I've refunded the duplicate ({refund}); it will be back on your card within 5-10 business days.",
    ),
    Intent(
        "refund_status",
        "support-chat",
        0.08,
        ("kb-refunds-101", "kb-refunds-partial"),
        ("lookup_charge",),
        (
            "Where is my refund for order {order}?",
            "I returned order {order} two weeks ago and still no refund",
        ),
        ("No, the refund for the return, not the cancelled order",),
        "Your refund of ${amount} for order {order} was issued on {date}. Banks usually take 5-10 business days to show it.",
    ),
    Intent(
        "billing_question",
        "support-chat",
        0.12,
        (
            "kb-billing-invoice",
            "kb-billing-subscription",
            "kb-billing-cards",
            "kb-billing-currency",
        ),
        (),
        (
            "How do I get a VAT invoice for my last order?",
            "How do I cancel Acme Plus before it renews?",
            "Why was I charged in euros?",
            "how do I change the card for my subscription",
        ),
        ("No, I meant a business invoice with our company name",),
        "You can do that from your account: {page_hint}",
    ),
    Intent(
        "how_to",
        "support-chat",
        0.18,
        (
            "kb-account-password",
            "kb-account-2fa",
            "kb-returns-start",
            "kb-products-warranty",
            "kb-promo-codes",
            "kb-shipping-international",
        ),
        (),
        (
            "How do I reset my password?",
            "How do I start a return?",
            "Do you ship to Norway?",
            "Can I use two promo codes on one order?",
            "What does the warranty cover?",
            "I lost my phone and can't log in with 2FA",
        ),
        ("No, I meant for a business account",),
        "Here's how: {page_hint}",
    ),
    Intent(
        "unsupported_question",
        "support-chat",
        0.07,
        (),
        (),
        (
            "Do you price-match competitors' Black Friday deals?",
            "Can I pay with crypto?",
            "Is your warehouse hiring for the holidays?",
            "Can you store my order in your warehouse until March?",
        ),
        ("I mean do you do it at all, yes or no",),
        "I couldn't find that in our help centre, so I don't want to guess. Let me connect you with a colleague who can check.",
    ),
    Intent(
        "account_lookup",
        "support-chat",
        0.09,
        ("kb-account-email", "kb-account-delete"),
        ("crm_lookup_customer",),
        (
            "Which email is my account registered under?",
            "Can you delete my account? My customer number is {customer}",
        ),
        ("No, I meant my old work email",),
        "Your account {customer} is registered to {email}. {page_hint}",
    ),
    Intent(
        "book_appointment",
        "support-chat",
        0.07,
        ("kb-appointments-book", "kb-appointments-reschedule"),
        ("calendar_find_slots", "calendar_book"),
        (
            "I'd like to book a setup call for my new router",
            "Can I get a setup appointment on {date}?",
        ),
        ("No, I meant next week, not this week",),
        "You're booked for a 30-minute setup call on {date} at {time}. The confirmation email has a reschedule link.",
    ),
    Intent(
        "order_status",
        "order-assistant",
        0.19,
        (),
        ("get_order_status",),
        (
            "Where is my order {order}?",
            "order {order} still hasn't arrived",
            "When will {order} be delivered?",
        ),
        ("No, I meant the order from {date}",),
        "Order {order} shipped on {date} with DHL and is due {eta}. Tracking: {tracking}.",
        workflow="order_status",
    ),
    Intent(
        "change_delivery",
        "order-assistant",
        0.06,
        (),
        ("get_order_status", "update_delivery_address"),
        (
            "Can I change the delivery address for {order}?",
            "Please deliver order {order} to my office instead",
        ),
        ("No, the other address, the one in Leeds",),
        "Done: order {order} will now go to your office address. You'll get an updated tracking email.",
        workflow="change_delivery",
    ),
)

# Tools: name -> (backend service, HTTP method, route template, normal latency ms median).
TOOLS: dict[str, tuple[str, str, str, float]] = {
    "lookup_charge": ("payments-api", "GET", "/v2/charges/{id}", 120.0),
    "lookup_charge_v1": ("payments-api", "GET", "/v1/charges/{id}", 140.0),
    "payments_refund": ("payments-api", "POST", "/v2/refunds", 260.0),
    "crm_lookup_customer": ("crm-api", "GET", "/customers/{id}", 90.0),
    "calendar_find_slots": ("calendar-api", "GET", "/slots", 110.0),
    "calendar_book": ("calendar-api", "POST", "/bookings", 180.0),
    "get_order_status": ("orders-api", "GET", "/orders/{id}", 80.0),
    "update_delivery_address": ("orders-api", "PATCH", "/orders/{id}/delivery", 150.0),
}

TOOL_DESCRIPTIONS: dict[str, str] = {
    "lookup_charge": "Look up the card charges of an order (payments API v2).",
    "lookup_charge_v1": "DEPRECATED: look up charges through the payments API v1.",
    "payments_refund": "Refund one settled charge.",
    "crm_lookup_customer": "Find a customer record in the CRM.",
    "calendar_find_slots": "List free setup-call slots.",
    "calendar_book": "Book a setup-call slot.",
    "get_order_status": "Fetch an order's shipping status.",
    "update_delivery_address": "Change an order's delivery address before it is packed.",
}

SYSTEM_PROMPTS: dict[str, str] = {
    "v5": "You are Acme's support assistant. Answer from the help-centre context only. Use tools to look up charges, customers and bookings.",
    "v6": "You are Acme's support assistant. Answer only from the help-centre context and tool results; if the context does not answer the question, say so and offer a human. Use lookup_charge before any refund.",
    "v7": "You are Acme's support assistant, friendly and concise. Answer only from the help-centre context and tool results. For payment questions always verify the charge first (tools: lookup_charge_v1, lookup_charge, payments_refund). If unsure, offer a human.",
    "v8": "You are Acme's support assistant, friendly and concise. Answer only from the help-centre context and tool results. For payment questions verify the charge with lookup_charge before any refund. If unsure, offer a human.",
}

ORDERS_PROMPT = 'You are the Acme order assistant. Call get_order_status, then answer with the status, carrier and ETA as JSON {"status","carrier","eta"}.'

# The requests about a charge: under v7's prompt the agent looks the charge up with the
# deprecated lookup_charge_v1 for these (and only these), so the question, the tool, the answer
# ("a colleague in billing") and the queue belong to one intent.
PAYMENT_INTENTS = frozenset({"refund_duplicate_charge", "refund_status", "billing_question"})

# How the assistant names a tool's backend to the customer when it fails.
SYSTEM_NAMES = {"crm-api": "our account system", "calendar-api": "our booking calendar"}

HANDOFF_QUEUES = {
    "refund_duplicate_charge": "billing-tier2",
    "refund_status": "billing-tier1",
    "billing_question": "billing-tier1",
    "how_to": "general",
    "unsupported_question": "general",
    "account_lookup": "accounts",
    "book_appointment": "general",
    "order_status": "orders",
    "change_delivery": "orders",
}

LEAKED_REASONING = (
    "<thinking>The user seems frustrated. Policy says not to promise a refund date, but I'll hedge. Check whether the help-centre page covers this before answering.</thinking>\n",
    "<thinking>Retrieved pages 1 and 3 are relevant; page 2 is about subscriptions, ignore it. Keep the answer short.</thinking>\n",
    "<thinking>I should not reveal internal tool names. Summarise the tool result in plain words.</thinking>\n",
)

UNSUPPORTED_ANSWERS = (
    "Yes! We price-match any competitor's advertised price, including Black Friday deals. Just send us the link and we'll refund the difference.",
    "Absolutely, we accept Bitcoin and Ethereum at checkout.",
    "Yes, we're hiring seasonal warehouse staff; you can apply directly in the chat.",
    "Sure, we can hold your order in our warehouse for up to 6 months at no charge.",
)
