"""The flags admin API (`/admin/flags`): the same operations as `shipyard flags`, for a running server.

Changes go through `FlagAdmin`: validated, written to the flag file, published to the other replicas
(Redis), and applied to this server's flag store at once."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.server._http import ApiError, endpoint, json_response, number_field, read_json


def _admin(state: Any) -> Any:
    if state.flag_admin is None:
        raise ApiError(503, "feature flags are not loaded on this server", type="unavailable_error")
    return state.flag_admin


def _flag(definition: Any) -> dict[str, Any]:
    return {"name": definition.name, **definition.to_json()}


@endpoint("read")
async def list_flags(request: Request, state: Any) -> Response:
    """GET /admin/flags: every flag with its definition."""
    return json_response({"flags": [_flag(f) for f in _admin(state).list()]})


@endpoint("read")
async def get_flag(request: Request, state: Any) -> Response:
    """GET /admin/flags/{name}"""
    return json_response(_flag(_admin(state).get(request.path_params["name"])))


@endpoint("admin")
async def put_flag(request: Request, state: Any) -> Response:
    """PUT /admin/flags/{name}: create or replace a flag (flagd flag definition as the body)."""
    body = await read_json(request, state.cfg.server.max_body_bytes)
    return json_response(_flag(_admin(state).set(request.path_params["name"], body)))


@endpoint("admin")
async def enable_flag(request: Request, state: Any) -> Response:
    """POST /admin/flags/{name}/enable"""
    return json_response(_flag(_admin(state).enable(request.path_params["name"])))


@endpoint("admin")
async def disable_flag(request: Request, state: Any) -> Response:
    """POST /admin/flags/{name}/disable"""
    return json_response(_flag(_admin(state).disable(request.path_params["name"])))


@endpoint("admin")
async def rollout_flag(request: Request, state: Any) -> Response:
    """POST /admin/flags/{name}/rollout {"percent": 10}: the share of users who get the flag on."""
    body = await read_json(request, state.cfg.server.max_body_bytes)
    percent = number_field(body, "percent")
    if percent is None:
        raise ApiError(422, "percent is required (0-100)", param="percent")
    if not 0 <= percent <= 100:
        raise ApiError(422, f"percent must be between 0 and 100, got {percent:g}", param="percent")
    return json_response(_flag(_admin(state).rollout(request.path_params["name"], percent)))


def flag_routes() -> list[Route]:
    return [
        Route("/admin/flags", list_flags, methods=["GET"]),
        Route("/admin/flags/{name}", get_flag, methods=["GET"]),
        Route("/admin/flags/{name}", put_flag, methods=["PUT"]),
        Route("/admin/flags/{name}/enable", enable_flag, methods=["POST"]),
        Route("/admin/flags/{name}/disable", disable_flag, methods=["POST"]),
        Route("/admin/flags/{name}/rollout", rollout_flag, methods=["POST"]),
    ]
