"""The support desk's five tools, over one `DemoStore` loaded from the packaged data.

Return values are plain JSON objects whose keys the scripted model's rules match and quote
(`"eligible": false`, `{result[reason]}`); a tool that cannot do what was asked raises, which the
agent sees as an error result."""

from __future__ import annotations

from typing import Any, Literal

from shipyard.demo._store import DemoStore
from shipyard.tools import ToolRegistry

STORE = DemoStore.load()
"""The store the tools read and write; `STORE.reset()` forgets refunds and tickets."""

TOOLS = ToolRegistry()


@TOOLS.tool(idempotent=True, tags=("orders", "read"))
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up one order by its 5-digit number: status, items, total, dates and tracking."""
    return STORE.order(order_id)


@TOOLS.tool(idempotent=True, tags=("orders", "read"))
def check_return_eligibility(order_id: str) -> dict[str, Any]:
    """Check whether an order can be returned and refunded today, with the reason."""
    return STORE.eligibility(order_id)


@TOOLS.tool(idempotent=True, tags=("kb", "read"))
def search_knowledge_base(query: str, top_k: int = 3) -> dict[str, Any]:
    """Search the help-center articles (returns, refunds, shipping, warranty, ...); best match first."""
    if not 1 <= top_k <= 10:
        raise ValueError(f"top_k must be between 1 and 10, got {top_k}")
    results = STORE.search(query, top_k)
    top = results[0] if results else {"id": "", "title": "", "body": ""}
    return {
        "query": query,
        "count": len(results),
        "results": results,
        "top_id": top["id"],
        "top_title": top["title"],
        "top_body": top["body"],
    }


@TOOLS.tool(tags=("orders", "write", "money"))
def process_refund(order_id: str, amount: float, reason: str) -> dict[str, Any]:
    """Refund an amount of an order to the original payment method. Does not check return rules."""
    return STORE.refund(order_id, amount, reason)


@TOOLS.tool(tags=("orders", "write", "money"))
def issue_store_credit(order_id: str, amount: float, reason: str) -> dict[str, Any]:
    """Refund an amount of an order instantly as store credit. Does not check return rules.
    Offered to the model only while the `instant_store_credit` flag is on for the user."""
    return STORE.refund(order_id, amount, reason, store_credit=True)


@TOOLS.tool(tags=("handoff",))
def escalate_to_human(
    reason: str, priority: Literal["low", "normal", "high", "urgent"] = "normal"
) -> dict[str, Any]:
    """Hand the conversation to the human support team; returns the ticket id."""
    return STORE.escalate(reason, priority)
