"""The budgets admin API (`/admin/budgets`): list budgets, set or remove one, and see a counter's usage.

Budgets set here are kept in the store (table `budgets`), so every replica sharing it applies them
(each reads them again within a few seconds; this one at once). One with the name of a budget in
shipyard.yaml overrides it; removing it brings the file's back. Budgets must be on (`budgets:` in
shipyard.yaml with limits, or `enabled: true`) for any of this to mean something.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.config import BudgetLimit
from shipyard.cost import Budgets, Subject
from shipyard.cost._budgets import NANO
from shipyard.server._auth import prefix_of, presented_key
from shipyard.server._http import ApiError, check_id, endpoint, json_response, read_json

_SCOPE_PARAMS = ("session", "user", "api_key", "agent", "feature")


def _budgets(state: Any) -> Budgets:
    with state.reloader.lease() as rt:
        budgets: Budgets | None = rt.budgets
    if budgets is None:
        raise ApiError(
            409,
            "budgets are off on this server: add a budgets: section to shipyard.yaml with limits (or "
            "enabled: true to manage them here only)",
            type="conflict_error",
        )
    return budgets


def _limit_json(b: BudgetLimit, source: str, admin: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {**b.model_dump(exclude_none=True), "source": source}
    if admin is not None:
        out["updated_at"] = admin["updated_at"]
        out["updated_by"] = admin["updated_by"]
    return out


@endpoint("read")
async def list_budgets(request: Request, state: Any) -> Response:
    """GET /admin/budgets: every budget in force (from shipyard.yaml or set here) and where it lives."""
    budgets = _budgets(state)
    await asyncio.to_thread(budgets.refresh_admin)
    admin = await asyncio.to_thread(state.store.admin_budgets) if state.store is not None else {}
    rows = [
        _limit_json(b, "admin" if b.name in admin else "config", admin.get(b.name)) for b in budgets.limits
    ]
    cfg = budgets.cfg
    return json_response(
        {
            "backend": cfg.backend,
            "reservation_share": cfg.reservation_share,
            "max_reservation_usd": cfg.max_reservation_usd,
            "max_reservation_tokens": cfg.max_reservation_tokens,
            "budgets": rows,
        }
    )


@endpoint("admin")
async def put_budget(request: Request, state: Any) -> Response:
    """PUT /admin/budgets/{name}: add or replace a budget; the body is a `budgets.limits` entry
    (`{"scope": "user", "window": "day", "usd": 5}`)."""
    name = check_id(request.path_params["name"], "name", what="path parameter")
    budgets = _budgets(state)
    body = await read_json(request, state.cfg.server.max_body_bytes)
    try:
        limit = BudgetLimit.model_validate({**body, "name": name})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, f"{where}: {first['msg'].removeprefix('Value error, ')}", param=where) from None
    who = prefix_of(presented_key(request.headers)) or "local"
    definition = limit.model_dump(mode="json", exclude_none=True, exclude={"name"})
    await asyncio.to_thread(state.store.put_admin_budget, name, definition, who)
    await asyncio.to_thread(budgets.refresh_admin)
    return json_response(_limit_json(limit, "admin", {"updated_at": time.time(), "updated_by": who}))


@endpoint("admin")
async def delete_budget(request: Request, state: Any) -> Response:
    """DELETE /admin/budgets/{name}: remove a budget set here (one from shipyard.yaml comes back)."""
    name = request.path_params["name"]
    budgets = _budgets(state)
    if not await asyncio.to_thread(state.store.delete_admin_budget, name):
        in_file = any(b.name == name for b in budgets.cfg.limits)
        raise ApiError(
            409 if in_file else 404,
            f"budget {name!r} is defined in shipyard.yaml; change it there (or override it with PUT)"
            if in_file
            else f"no budget {name!r} was set through the admin API",
            type="conflict_error" if in_file else "not_found_error",
        )
    await asyncio.to_thread(budgets.refresh_admin)
    return json_response({"deleted": name})


@endpoint("read")
async def budget_usage(request: Request, state: Any) -> Response:
    """GET /admin/budgets/usage?user=U&session=S&api_key=K&agent=A&feature=F: the counters those
    values touch now (spent, held by running calls, limit, left), one per budget that applies."""
    budgets = _budgets(state)
    q = request.query_params
    unknown = sorted(set(q) - set(_SCOPE_PARAMS))
    if unknown:
        raise ApiError(
            422, f"unknown query parameter {unknown[0]!r}; use {', '.join(_SCOPE_PARAMS)}", param=unknown[0]
        )
    subject = Subject(
        interaction_id="-",
        session_id=q.get("session", ""),
        agent=q.get("agent", ""),
        user_id=q.get("user"),
        api_key=q.get("api_key"),
        features=frozenset([q["feature"]]) if "feature" in q else frozenset(),
    )
    counters = [
        c
        for c in budgets.counters(subject)
        if c.budget.window != "interaction"
        and (c.budget.scope != "session" or subject.session_id)
        and (c.budget.scope != "agent" or subject.agent)
    ]
    if not counters:
        return json_response({"usage": []})
    try:
        levels = await budgets.backend.levels(counters, time.time())
    except Exception as e:
        raise ApiError(
            503, f"the budget counters cannot be read: {type(e).__name__}: {e}", type="unavailable_error"
        ) from None
    rows = []
    for c, (spent, held) in zip(counters, levels, strict=True):
        div = NANO if c.unit == "usd" else 1
        rows.append(
            {
                "budget": c.budget.name,
                "scope": c.budget.scope,
                "window": c.budget.window,
                "unit": c.unit,
                "limit": c.limit / div,
                "spent": spent / div,
                "reserved": held / div,
                "remaining": max(c.limit - spent - held, 0) / div,
                "key": c.key,
            }
        )
    return json_response({"usage": rows})


def budget_routes() -> list[Route]:
    return [
        Route("/admin/budgets", list_budgets, methods=["GET"]),
        Route("/admin/budgets/usage", budget_usage, methods=["GET"]),
        Route("/admin/budgets/{name}", put_budget, methods=["PUT"]),
        Route("/admin/budgets/{name}", delete_budget, methods=["DELETE"]),
    ]
