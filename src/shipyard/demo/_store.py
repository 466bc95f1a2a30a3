"""The demo store: orders and help-center articles loaded once from the packaged data, return
rules, keyword search, and a refund / ticket ledger.

The data is fixed and dated relative to a fixed "today" (in orders.json), so every answer is the
same on every machine and every day. Refunds and tickets are kept per conversation (session):
each conversation starts from the packaged data, so replayed traffic and repeated eval runs see
the same world instead of one another's refunds."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import json
import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

RETURN_WINDOW_DAYS = 30
NOT_RETURNABLE = {
    "final-sale": (
        "final_sale",
        "final-sale items cannot be returned or refunded unless they arrived damaged",
    ),
    "digital": ("digital_goods", "digital goods cannot be returned once they have been delivered"),
    "perishable": (
        "perishable",
        "perishable goods cannot be returned (damage must be reported within 48 hours of delivery)",
    ),
}
STATUS_RULES = {
    "processing": ("not_shipped", "it has not shipped yet, so it can be cancelled instead of returned"),
    "shipped": ("in_transit", "it is still on its way; a return can be started once it is delivered"),
    "cancelled": ("cancelled", "it was cancelled before shipping and was never charged"),
}
PRIORITIES = ("low", "normal", "high", "urgent")
RESPONSE_TIMES = {
    "low": "within 2 business days",
    "normal": "within 24 hours",
    "high": "within 4 hours",
    "urgent": "within 1 hour",
}
_ORDER_ID = re.compile(r"\d{5}")
_DEFAULT_SESSION = "default"
_session: contextvars.ContextVar[str] = contextvars.ContextVar(
    "shipyard_demo_session", default=_DEFAULT_SESSION
)


class OrderNotFound(LookupError):
    """No order has this id. The message is what the agent (and the model) reads."""


class RefundRefused(ValueError):
    """A refund that the ledger does not allow (too large, or already refunded)."""


@dataclass(slots=True)
class _Sandbox:
    """One conversation's changes to the store."""

    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    tickets: list[dict[str, Any]] = field(default_factory=list)


# --- search -------------------------------------------------------------------------------------

_STOPWORD_TEXT = (
    "a an and are as at be but by can could do does for from have how i if in is it its me my of on or "
    "our please so that the their them there this to was we what when where which who will with would you "
    "your yours about any get got"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_SUFFIXES = ("ations", "ation", "ings", "ing", "ied", "ies", "ed", "es", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    # "cancell" -> "cancel", "shipp" -> "ship"
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed words without stop words."""
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 1 and w not in _STOPWORDS]


class _BM25:
    """Okapi BM25 over short documents; deterministic (ties break on document order)."""

    def __init__(self, docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(d) for d in docs]
        self.lengths = [len(d) for d in docs]
        self.avg = sum(self.lengths) / max(len(docs), 1)
        df = Counter(t for d in docs for t in set(d))
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: list[str]) -> list[float]:
        out = []
        for tf, length in zip(self.tfs, self.lengths, strict=True):
            s = 0.0
            for t in set(query):
                f = tf.get(t, 0)
                if f:
                    s += (
                        self.idf[t]
                        * f
                        * (self.k1 + 1)
                        / (f + self.k1 * (1 - self.b + self.b * length / self.avg))
                    )
            out.append(s)
        return out


# --- the store ----------------------------------------------------------------------------------


class DemoStore:
    """Orders, help-center articles and the refund / ticket ledger of the demo support desk.

    Args:
        orders: order records (see data/orders.json).
        articles: help-center articles with id, title, body and tags (see data/kb.yaml).
        today: the date eligibility is computed against.
        max_sessions: how many conversations' ledgers to keep (oldest are dropped first).
    """

    def __init__(
        self,
        orders: list[dict[str, Any]],
        articles: list[dict[str, Any]],
        today: dt.date,
        *,
        max_sessions: int = 10_000,
    ) -> None:
        self.orders = {o["order_id"]: o for o in orders}
        self.articles = articles
        self.today = today
        self.max_sessions = max_sessions
        # title words count twice: a query naming the topic should find that article first
        self._index = _BM25(
            [
                tokenize(f"{a['title']} {a['title']} {' '.join(a.get('tags', []))} {a['body']}")
                for a in articles
            ]
        )
        self._sandboxes: OrderedDict[str, _Sandbox] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def load(cls) -> DemoStore:
        """The store over the packaged data (a fresh ledger each call)."""
        data = resources.files("shipyard.demo") / "data"
        orders = json.loads((data / "orders.json").read_text(encoding="utf-8"))
        kb = yaml.safe_load((data / "kb.yaml").read_text(encoding="utf-8"))
        return cls(orders["orders"], kb["articles"], dt.date.fromisoformat(orders["today"]))

    # conversations ------------------------------------------------------------------------------
    @staticmethod
    @contextlib.contextmanager
    def session(session_id: str) -> Iterator[None]:
        """Make refunds and tickets inside the block belong to this conversation."""
        token = _session.set(session_id)
        try:
            yield
        finally:
            _session.reset(token)

    def _sandbox(self, session_id: str | None = None) -> _Sandbox:
        sid = session_id or _session.get()
        box = self._sandboxes.get(sid)
        if box is None:
            box = self._sandboxes[sid] = _Sandbox()
            while len(self._sandboxes) > self.max_sessions:
                self._sandboxes.popitem(last=False)
        else:
            self._sandboxes.move_to_end(sid)
        return box

    def refunds(self, session_id: str | None = None) -> list[dict[str, Any]]:
        """Refunds made in a conversation (default: the current one)."""
        return list(self._sandbox(session_id).refunds.values())

    def tickets(self, session_id: str | None = None) -> list[dict[str, Any]]:
        """Escalation tickets opened in a conversation (default: the current one)."""
        return list(self._sandbox(session_id).tickets)

    def reset(self) -> None:
        """Forget every refund and ticket."""
        with self._lock:
            self._sandboxes.clear()

    # reads --------------------------------------------------------------------------------------
    def _order(self, order_id: str) -> dict[str, Any]:
        oid = order_id.strip().lstrip("#")
        if not _ORDER_ID.fullmatch(oid):
            raise OrderNotFound(
                f"{order_id!r} is not an order number (order numbers have 5 digits, like 10001)"
            )
        try:
            return self.orders[oid]
        except KeyError:
            raise OrderNotFound(f"there is no order {oid}") from None

    def order(self, order_id: str) -> dict[str, Any]:
        """One order as the support agent may see it: the order itself, with the customer's name
        shortened and email masked; never anything about other orders or customers."""
        o = self._order(order_id)
        first, _, last = o["customer_name"].partition(" ")
        user, _, domain = o["email"].partition("@")
        refund = self._refunded(o)
        return {
            "order_id": o["order_id"],
            "status": o["status"],
            "category": o["category"],
            "items": [dict(i) for i in o["items"]],
            "total": o["total"],
            "currency": o["currency"],
            "order_date": o["order_date"],
            "shipped_date": o.get("shipped_date"),
            "delivered_date": o.get("delivered_date"),
            "carrier": o.get("carrier"),
            "tracking_number": o.get("tracking_number"),
            "estimated_delivery": o.get("estimated_delivery"),
            "customer": {
                "name": f"{first} {last[:1]}." if last else first,
                "email": f"{user[:1]}***@{domain}",
            },
            "refunded": refund is not None,
            "refunded_amount": refund or 0.0,
        }

    def _refunded(self, o: dict[str, Any]) -> float | None:
        """The amount already refunded for an order, or None."""
        done = self._sandbox().refunds.get(o["order_id"])
        if done is not None:
            return float(done["amount"])
        return float(o["refunded_amount"]) if o.get("refunded_amount") else None

    def eligibility(self, order_id: str) -> dict[str, Any]:
        """Whether an order can be returned (and refunded) today, and why."""
        o = self._order(order_id)
        out: dict[str, Any] = {
            "order_id": o["order_id"],
            "status": o["status"],
            "category": o["category"],
            "delivered_date": o.get("delivered_date"),
            "days_since_delivery": None,
            "return_by": None,
            "window_days": RETURN_WINDOW_DAYS,
            "currency": o["currency"],
            "refundable_amount": 0.0,
        }
        if o.get("delivered_date"):
            delivered = dt.date.fromisoformat(o["delivered_date"])
            out["days_since_delivery"] = (self.today - delivered).days
            out["return_by"] = (delivered + dt.timedelta(days=RETURN_WINDOW_DAYS)).isoformat()
        code, reason = self._ineligible(o, out["days_since_delivery"], out["return_by"])
        out.update(eligible=code is None, reason_code=code or "eligible", reason=reason)
        if code is None:
            out["refundable_amount"] = o["total"]
        return out

    def _ineligible(
        self, o: dict[str, Any], days: int | None, return_by: str | None
    ) -> tuple[str | None, str]:
        """(reason code, reason) — the code is None when the order is eligible."""
        if self._refunded(o) is not None:
            return "already_refunded", "it has already been returned and refunded"
        if o["status"] in STATUS_RULES:
            return STATUS_RULES[o["status"]]
        if o["category"] in NOT_RETURNABLE:
            return NOT_RETURNABLE[o["category"]]
        assert days is not None
        if days > RETURN_WINDOW_DAYS:
            return "outside_window", (
                f"it was delivered {days} days ago, outside the {RETURN_WINDOW_DAYS}-day return window "
                f"(which closed on {return_by})"
            )
        return None, f"it was delivered {days} days ago, within the {RETURN_WINDOW_DAYS}-day return window"

    def search(self, query: str, top_k: int = 3) -> list[dict[str, Any]]:
        """The best-matching articles for a query, best first; only articles sharing a word with it."""
        scores = self._index.scores(tokenize(query))
        ranked = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (-scores[i], i))[:top_k]
        return [
            {"id": a["id"], "title": a["title"], "score": round(scores[i], 3), "body": a["body"].strip()}
            for i in ranked
            for a in [self.articles[i]]
        ]

    # writes -------------------------------------------------------------------------------------
    def refund(
        self, order_id: str, amount: float, reason: str, *, store_credit: bool = False
    ) -> dict[str, Any]:
        """Record a refund, to the original payment method or (`store_credit`) as instant store
        credit. Checks only the ledger (amount, already refunded), not return rules."""
        o = self._order(order_id)
        amount = round(float(amount), 2)
        if not math.isfinite(amount) or amount <= 0:
            raise RefundRefused(f"the refund amount must be positive, got {amount}")
        if amount > o["total"]:
            raise RefundRefused(
                f"{amount:.2f} {o['currency']} is more than the order total of "
                f"{o['total']:.2f} {o['currency']}"
            )
        if not reason.strip():
            raise RefundRefused("a refund needs a reason")
        with self._lock:
            if self._refunded(o) is not None:
                raise RefundRefused(f"order {o['order_id']} has already been refunded")
            box = self._sandbox()
            entry = {
                "refund_id": f"{'SC' if store_credit else 'RF'}-{o['order_id']}-{_short(_session.get(), o['order_id'])}",
                "order_id": o["order_id"],
                "amount": amount,
                "currency": o["currency"],
                "reason": reason.strip(),
                "refund_status": "issued",
                "method": "store credit" if store_credit else "original payment method",
                "expected_in": "right away" if store_credit else "5-10 business days",
            }
            box.refunds[o["order_id"]] = entry
        return dict(entry)

    def escalate(self, reason: str, priority: str = "normal") -> dict[str, Any]:
        """Open a ticket for the human support team."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
        if not reason.strip():
            raise ValueError("an escalation needs a reason")
        with self._lock:
            box = self._sandbox()
            ticket = {
                "ticket_id": f"TCK-{_short(_session.get(), str(len(box.tickets))).upper()}",
                "priority": priority,
                "reason": reason.strip(),
                "ticket_status": "open",
                "expected_response": RESPONSE_TIMES[priority],
            }
            box.tickets.append(ticket)
        return dict(ticket)


def _short(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:6]
