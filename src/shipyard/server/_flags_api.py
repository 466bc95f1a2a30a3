"""The flags admin API (`/admin/flags`): the same operations as `shipyard flags`, for a running server.

Changes go through `FlagAdmin`: validated and compare-and-set into the store's flag set (retried on a
conflict, so changes through different replicas never lose one another), applied to this server's
flag store at once, and announced to the other replicas (a Redis notice; they also poll the stored
revision). Every replica reads the same stored set, so every replica's admin API shows the same
state; `served` says which revision this replica evaluates right now."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.errors import ConflictError, ShipyardError
from shipyard.server._http import ApiError, endpoint, json_response, number_field, read_json

T = TypeVar("T")


def _admin(state: Any) -> Any:
    if state.flag_admin is None:
        raise ApiError(503, "feature flags are not loaded on this server", type="unavailable_error")
    return state.flag_admin


async def _call(fn: Callable[..., T], *args: Any) -> T:
    """Run a FlagAdmin call off the event loop (it reads and writes the store): a conflict that
    retries could not settle is a 409, a store that does not answer a 503."""
    try:
        return await asyncio.to_thread(fn, *args)
    except ConflictError as e:
        raise ApiError(409, e.message, type="conflict_error") from None
    except ShipyardError:
        raise
    except Exception as e:  # the database is unreachable: nothing was changed
        first = (str(e) or type(e).__name__).splitlines()[0][:300]
        raise ApiError(
            503,
            f"the store holding the flags does not answer ({first}); nothing was changed",
            type="unavailable_error",
        ) from None


def _flag(definition: Any) -> dict[str, Any]:
    return {"name": definition.name, **definition.to_json()}


@endpoint("read")
async def list_flags(request: Request, state: Any) -> Response:
    """GET /admin/flags: every flag with its definition, the stored revision, and what this replica
    serves (`served.revision`, `served.digest`: equal on every replica once they have converged)."""
    from shipyard.flags import content_digest

    flag_set = await _call(_admin(state).flag_set)
    flags = sorted(flag_set.flags.values(), key=lambda f: f.name)
    served = state.flags.flag_set if state.flags is not None else None
    return json_response(
        {
            "revision": flag_set.revision,
            "digest": content_digest(flag_set),
            "served": None
            if served is None
            else {"revision": served.revision, "digest": content_digest(served)},
            "flags": [_flag(f) for f in flags],
        }
    )


@endpoint("read")
async def get_flag(request: Request, state: Any) -> Response:
    """GET /admin/flags/{name}"""
    return json_response(_flag(await _call(_admin(state).get, request.path_params["name"])))


@endpoint("admin")
async def put_flag(request: Request, state: Any) -> Response:
    """PUT /admin/flags/{name}: create or replace a flag (flagd flag definition as the body)."""
    body = await read_json(request, state.cfg.server.max_body_bytes)
    return json_response(_flag(await _call(_admin(state).set, request.path_params["name"], body)))


@endpoint("admin")
async def enable_flag(request: Request, state: Any) -> Response:
    """POST /admin/flags/{name}/enable"""
    return json_response(_flag(await _call(_admin(state).enable, request.path_params["name"])))


@endpoint("admin")
async def disable_flag(request: Request, state: Any) -> Response:
    """POST /admin/flags/{name}/disable"""
    return json_response(_flag(await _call(_admin(state).disable, request.path_params["name"])))


@endpoint("admin")
async def rollout_flag(request: Request, state: Any) -> Response:
    """POST /admin/flags/{name}/rollout {"percent": 10}: the share of users who get the flag on."""
    body = await read_json(request, state.cfg.server.max_body_bytes)
    percent = number_field(body, "percent")
    if percent is None:
        raise ApiError(422, "percent is required (0-100)", param="percent")
    if not 0 <= percent <= 100:
        raise ApiError(422, f"percent must be between 0 and 100, got {percent:g}", param="percent")
    return json_response(_flag(await _call(_admin(state).rollout, request.path_params["name"], percent)))


async def _flags_panel(state: Any) -> dict[str, Any]:
    """The dashboard's flags: the stored set (the same on every replica) and what this one serves."""
    from shipyard.flags import content_digest, rollout_percent

    if state.flag_admin is None:
        return {"columns": [], "rows": [], "note": "feature flags are not loaded on this server"}
    flag_set = await _call(state.flag_admin.flag_set)
    served = state.flags.flag_set if state.flags is not None else None
    rows = []
    for f in sorted(flag_set.flags.values(), key=lambda f: f.name):
        pct = rollout_percent(f)
        rule = f"rollout {pct:g}% on" if pct is not None else "targeting" if f.targeting else "static"
        rows.append([f.name, f.state, f.default_variant, rule])
    if served is None:
        serving = "this replica has no flags loaded"
    elif content_digest(served) == content_digest(flag_set) and served.revision == flag_set.revision:
        serving = "this replica serves it"
    else:
        serving = f"this replica still serves revision {served.revision} (catching up)"
    return {
        "columns": ["flag", "state", "default", "rule"],
        "rows": rows,
        "note": f"revision {flag_set.revision} (stored; every replica reads it); {serving}",
    }


def flag_routes() -> list[Route]:
    from shipyard.server._dashboard import DashboardPanel, register_panel

    register_panel(DashboardPanel("flags", "Feature flags", _flags_panel))
    return [
        Route("/admin/flags", list_flags, methods=["GET"]),
        Route("/admin/flags/{name}", get_flag, methods=["GET"]),
        Route("/admin/flags/{name}", put_flag, methods=["PUT"]),
        Route("/admin/flags/{name}/enable", enable_flag, methods=["POST"]),
        Route("/admin/flags/{name}/disable", disable_flag, methods=["POST"]),
        Route("/admin/flags/{name}/rollout", rollout_flag, methods=["POST"]),
    ]
