"""The cost ledger over HTTP: `GET /admin/cost/report` (the same report as `shipyard cost report`,
JSON or CSV) and the dashboard's cost panel data (`GET /admin/api/dashboard/cost`: spend and savings
per day, the top users and features). Both need a key with the `read` role."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from shipyard.cost import REPORT_DIMENSIONS, CostRow, cost_report, parse_since
from shipyard.server._http import ApiError, endpoint, json_response, query_int

_FORMATS = ("json", "csv")
_FILTERS = ("agent", "version", "model", "traffic_source", "user", "feature")
DASHBOARD_DAYS = 14


def _since(request: Request) -> float | None:
    raw = request.query_params.get("since")
    if raw is None or raw == "":
        return None
    try:
        return parse_since(raw)
    except ValueError as e:
        raise ApiError(422, f"query parameter 'since': {e}", param="since") from None


def _choice(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise ApiError(
            422, f"query parameter {name!r} must be one of {', '.join(allowed)}, got {value!r}", param=name
        )
    return value


@endpoint("read")
async def admin_cost_report(request: Request, state: Any) -> Response:
    """GET /admin/cost/report?by=user&since=24h&top=10&agent=&traffic_source=&format=json|csv"""
    by = _choice(request, "by", REPORT_DIMENSIONS, "user")
    fmt = _choice(request, "format", _FORMATS, "json")
    since = _since(request)
    top = query_int(request, "top", 0, low=1, high=100_000) or None  # none given: every key
    q = request.query_params
    filters = {k: q[k] for k in _FILTERS if q.get(k)}
    for name, value in filters.items():
        if "\x00" in value or len(value) > 512:
            raise ApiError(
                422, f"query parameter {name!r} must be a name (no NUL, at most 512 characters)", param=name
            )
    report = await asyncio.to_thread(cost_report, state.store, by, since=since, top=top, filters=filters)
    if fmt == "csv":
        return Response(report.to_csv(), media_type="text/csv; charset=utf-8")
    return json_response(report.to_dict())


def _day_row(day: str, row: CostRow | None) -> dict[str, Any]:
    return {
        "day": day,
        "spent_usd": row.spent_usd if row else 0.0,
        "saved_usd": row.saved_usd if row else 0.0,
        "calls": row.calls if row else 0,
    }


def cost_panel(store: Any, days: int, top: int, now: float | None = None) -> dict[str, Any]:
    """The dashboard's cost panel: spend and savings of each of the last `days` UTC days (today
    included, days without calls at zero), the `top` users and features by spend, and the total."""
    today = datetime.fromtimestamp(time.time() if now is None else now, UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    by_day = {r.key: r for r in cost_report(store, "day", since=since).rows}
    users = cost_report(store, "user", since=since, top=top)
    features = cost_report(store, "feature", since=since, top=top)
    return {
        "since": since,
        "days": [
            _day_row(d, by_day.get(d)) for d in ((first + timedelta(days=i)).isoformat() for i in range(days))
        ],
        "top_users": [r.to_dict() for r in users.rows],
        "top_features": [r.to_dict() for r in features.rows if r.key is not None],
        "total": users.total.to_dict(),
    }


@endpoint("read")
async def dashboard_cost(request: Request, state: Any) -> Response:
    """GET /admin/api/dashboard/cost?days=14&top=5"""
    days = query_int(request, "days", DASHBOARD_DAYS, low=1, high=366)
    top = query_int(request, "top", 5, low=1, high=100)
    panel = await asyncio.to_thread(cost_panel, state.store, days, top)
    return json_response(panel, headers={"Cache-Control": "no-store"})


def cost_routes() -> list[BaseRoute]:
    """The cost routes of the server's app."""
    return [
        Route("/admin/cost/report", admin_cost_report, methods=["GET"]),
        Route("/admin/api/dashboard/cost", dashboard_cost, methods=["GET"]),
    ]


def cost_openapi_paths() -> dict[str, Any]:
    """The OpenAPI paths of `cost_routes()`."""
    obj: dict[str, Any] = {"type": "object"}
    ok = {"description": "OK", "content": {"application/json": {"schema": obj}}}
    auth = {"401": {"description": "missing or unknown API key"}, "403": {"description": "role too low"}}
    bad = {
        "422": {"description": "a query parameter is wrong", "content": {"application/json": {"schema": obj}}}
    }

    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}

    report_params = [
        query("by", "what to total by", {"type": "string", "enum": list(REPORT_DIMENSIONS)}),
        query("since", "24h, 7d, or a UTC date such as 2026-12-01", {"type": "string"}),
        query("top", "at most this many rows, biggest spend first", {"type": "integer", "minimum": 1}),
        query("format", "json (default) or csv", {"type": "string", "enum": list(_FORMATS)}),
        *(query(f, f"only calls with this {f}", {"type": "string"}) for f in _FILTERS),
    ]
    csv_ok = {
        "description": "OK",
        "content": {"application/json": {"schema": obj}, "text/csv": {"schema": {"type": "string"}}},
    }
    return {
        "/admin/cost/report": {
            "get": {
                "summary": "Spend and savings from the cost ledger per user, session, feature, model, "
                "version, day, ... (as `shipyard cost report`)",
                "security": [{"apiKey": []}],
                "parameters": report_params,
                "responses": {"200": csv_ok, **auth, **bad},
            }
        },
        "/admin/api/dashboard/cost": {
            "get": {
                "summary": "The dashboard's cost panel: spend and savings per day, top users and features",
                "security": [{"apiKey": []}],
                "parameters": [
                    query(
                        "days",
                        "how many UTC days, today included",
                        {"type": "integer", "minimum": 1, "maximum": 366},
                    ),
                    query(
                        "top",
                        "how many users and features",
                        {"type": "integer", "minimum": 1, "maximum": 100},
                    ),
                ],
                "responses": {"200": ok, **auth, **bad},
            }
        },
    }
