"""The demo store and its five tools, called through the real tool registry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shipyard.demo import STORE, TOOLS, DemoStore
from shipyard.tools import ToolResult


@pytest.fixture(autouse=True)
def _fresh_ledger() -> None:
    STORE.reset()


async def call(name: str, **arguments: Any) -> ToolResult:
    return await TOOLS.call(name, arguments)


async def ok(name: str, **arguments: Any) -> dict[str, Any]:
    r = await call(name, **arguments)
    assert r.ok, r.error
    # what the model sees must be the JSON of the value
    assert json.loads(r.content()) == r.value
    return r.value


# --- data ---------------------------------------------------------------------------------------


def test_packaged_data_is_consistent() -> None:
    store = DemoStore.load()
    assert sorted(store.orders) == [str(n) for n in range(10001, 10041)]
    for o in store.orders.values():
        assert o["total"] == pytest.approx(sum(i["qty"] * i["price"] for i in o["items"]))
        assert o["status"] in {"processing", "shipped", "delivered", "cancelled", "returned"}
        assert (o["delivered_date"] is not None) == (o["status"] in {"delivered", "returned"})
    assert len(store.articles) == 12
    assert len({a["id"] for a in store.articles}) == 12


def test_tools_and_their_idempotent_flags() -> None:
    assert TOOLS.names() == [
        "lookup_order",
        "check_return_eligibility",
        "search_knowledge_base",
        "process_refund",
        "issue_store_credit",
        "escalate_to_human",
    ]
    assert {t.name for t in TOOLS if t.idempotent} == {
        "lookup_order",
        "check_return_eligibility",
        "search_knowledge_base",
    }
    schema = TOOLS.get("escalate_to_human").schema()
    assert schema["properties"]["priority"]["enum"] == ["low", "normal", "high", "urgent"]
    assert schema["required"] == ["reason"]


# --- lookup_order -------------------------------------------------------------------------------


async def test_lookup_order_returns_the_order_with_customer_details_masked() -> None:
    o = await ok("lookup_order", order_id="10001")
    assert o["status"] == "shipped"
    assert o["carrier"] == "UPS" and o["estimated_delivery"] == "2026-11-22"
    assert o["customer"] == {"name": "Maya P.", "email": "m***@example.com"}
    text = json.dumps(o)
    assert "customer_id" not in text and "maya.patel" not in text and "Patel" not in text
    # nothing about any other customer
    others = [x for x in STORE.orders.values() if x["customer_id"] != "C1001"]
    assert not any(x["customer_name"] in text or x["email"] in text for x in others)


async def test_lookup_order_accepts_a_leading_hash_and_spaces() -> None:
    assert (await ok("lookup_order", order_id=" #10002 "))["order_id"] == "10002"


@pytest.mark.parametrize(
    ("order_id", "message"),
    [
        ("99999", "there is no order 99999"),
        ("123", "is not an order number"),
        ("abcde", "is not an order number"),
    ],
)
async def test_lookup_order_of_unknown_ids_is_an_error_result(order_id: str, message: str) -> None:
    r = await call("lookup_order", order_id=order_id)
    assert r.status == "error"
    assert message in (r.error or "")
    assert json.loads(r.content())["status"] == "error"


async def test_lookup_order_checks_its_arguments() -> None:
    r = await call("lookup_order")
    assert r.status == "invalid_arguments"
    assert "order_id: required argument is missing" in (r.error or "")


# --- check_return_eligibility --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_id", "eligible", "code"),
    [
        ("10002", True, "eligible"),  # apparel delivered 12 days ago
        ("10010", True, "eligible"),  # delivered exactly 30 days ago: the last day
        ("10011", False, "outside_window"),  # 31 days ago
        ("10004", False, "outside_window"),  # 66 days ago
        ("10003", False, "final_sale"),
        ("10006", False, "digital_goods"),
        ("10007", False, "perishable"),
        ("10005", False, "not_shipped"),
        ("10001", False, "in_transit"),
        ("10008", False, "cancelled"),
        ("10009", False, "already_refunded"),  # returned and refunded
    ],
)
async def test_return_eligibility_rules(order_id: str, eligible: bool, code: str) -> None:
    e = await ok("check_return_eligibility", order_id=order_id)
    assert (e["order_id"], e["eligible"], e["reason_code"]) == (order_id, eligible, code)
    assert e["reason"]
    assert e["refundable_amount"] == (STORE.orders[order_id]["total"] if eligible else 0.0)


async def test_eligibility_dates_are_counted_from_the_fixed_today() -> None:
    e = await ok("check_return_eligibility", order_id="10011")
    assert e["days_since_delivery"] == 31
    assert e["return_by"] == "2026-11-19"
    assert "31 days ago" in e["reason"] and "2026-11-19" in e["reason"]


async def test_an_order_refunded_in_this_conversation_is_no_longer_eligible() -> None:
    with DemoStore.session("s-1"):
        await ok("process_refund", order_id="10002", amount=89.0, reason="changed my mind")
        assert (await ok("check_return_eligibility", order_id="10002"))["reason_code"] == "already_refunded"
        assert (await ok("lookup_order", order_id="10002"))["refunded"] is True
    with DemoStore.session("s-2"):
        assert (await ok("check_return_eligibility", order_id="10002"))["eligible"] is True


# --- search_knowledge_base -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "top"),
    [
        ("How long do refunds take?", "KB-002"),
        ("Can I return a final sale item?", "KB-003"),
        ("my e-book license key does not work", "KB-004"),
        ("the mug arrived broken", "KB-005"),
        ("Do you ship to Canada? What about customs?", "KB-007"),
        ("how do I cancel my order", "KB-008"),
        ("warranty on headphones", "KB-009"),
        ("exchange for a different size", "KB-010"),
        ("the price dropped after I bought it", "KB-011"),
        ("delete my personal data", "KB-012"),
    ],
)
async def test_search_finds_the_right_article_first(query: str, top: str) -> None:
    r = await ok("search_knowledge_base", query=query)
    assert r["top_id"] == top
    assert r["results"][0]["id"] == top
    assert r["top_body"] == r["results"][0]["body"]


async def test_search_is_ranked_bounded_and_deterministic() -> None:
    a = await ok("search_knowledge_base", query="return refund damaged", top_k=5)
    b = await ok("search_knowledge_base", query="return refund damaged", top_k=5)
    assert a == b
    assert a["count"] == len(a["results"]) == 5
    scores = [x["score"] for x in a["results"]]
    assert scores == sorted(scores, reverse=True)


async def test_search_without_matches_returns_nothing() -> None:
    r = await ok("search_knowledge_base", query="what is the meaning of life")
    assert r["count"] == 0 and r["results"] == [] and r["top_id"] == ""


async def test_search_rejects_a_bad_top_k() -> None:
    r = await call("search_knowledge_base", query="refund", top_k=0)
    assert r.status == "error" and "top_k must be between 1 and 10" in (r.error or "")


# --- process_refund ------------------------------------------------------------------------------


async def test_refund_is_recorded_in_the_conversation_ledger() -> None:
    with DemoStore.session("conv-a"):
        r = await ok("process_refund", order_id="10002", amount="89", reason="arrived broken")
    assert r["order_id"] == "10002" and r["amount"] == 89.0 and r["currency"] == "USD"
    assert r["refund_id"].startswith("RF-10002-")
    assert STORE.refunds("conv-a") == [r]
    assert STORE.refunds("conv-b") == []


async def test_refund_does_not_check_return_eligibility() -> None:
    # final sale: the tool refunds anyway; checking eligibility is the agent's job
    r = await ok("process_refund", order_id="10003", amount=59.99, reason="asked nicely")
    assert r["amount"] == 59.99


@pytest.mark.parametrize(
    ("order_id", "amount", "message"),
    [
        ("10002", 89.01, "more than the order total of 89.00 USD"),
        ("10002", 0, "must be positive"),
        ("10002", -5, "must be positive"),
        ("10009", 10, "already been refunded"),  # returned earlier
        ("99999", 10, "there is no order 99999"),
    ],
)
async def test_refund_refusals(order_id: str, amount: float, message: str) -> None:
    r = await call("process_refund", order_id=order_id, amount=amount, reason="r")
    assert r.status == "error"
    assert message in (r.error or "")
    assert STORE.refunds() == []


async def test_a_second_refund_of_the_same_order_is_refused() -> None:
    await ok("process_refund", order_id="10013", amount=50, reason="partial")
    r = await call("process_refund", order_id="10013", amount=50, reason="again")
    assert r.status == "error" and "already been refunded" in (r.error or "")
    assert len(STORE.refunds()) == 1


async def test_refund_needs_a_reason() -> None:
    r = await call("process_refund", order_id="10002", amount=1, reason="  ")
    assert r.status == "error" and "needs a reason" in (r.error or "")


# --- escalate_to_human ---------------------------------------------------------------------------


async def test_escalation_opens_a_ticket() -> None:
    with DemoStore.session("conv-x"):
        t1 = await ok("escalate_to_human", reason="wants a manager")
        t2 = await ok("escalate_to_human", reason="legal threat", priority="high")
    assert t1["priority"] == "normal" and t1["expected_response"] == "within 24 hours"
    assert t2["priority"] == "high" and t2["expected_response"] == "within 4 hours"
    assert t1["ticket_id"].startswith("TCK-") and t1["ticket_id"] != t2["ticket_id"]
    assert [t["ticket_id"] for t in STORE.tickets("conv-x")] == [t1["ticket_id"], t2["ticket_id"]]


async def test_escalation_rejects_an_unknown_priority() -> None:
    r = await call("escalate_to_human", reason="x", priority="asap")
    assert r.status == "invalid_arguments" and "priority" in (r.error or "")


def test_the_ledger_keeps_a_bounded_number_of_conversations() -> None:
    store = DemoStore(list(STORE.orders.values()), STORE.articles, STORE.today, max_sessions=2)
    for sid in ("a", "b", "c"):
        with DemoStore.session(sid):
            store.escalate("help")
    assert store.tickets("a") == []  # dropped, oldest first
    assert len(store.tickets("c")) == 1
