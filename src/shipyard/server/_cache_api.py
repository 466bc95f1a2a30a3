"""The cache admin API (`/admin/cache`): what is cached, and invalidation by version, agent, kind or
tool. An invalidation deletes from the shared backend (SQLite file or Redis), so it reaches every
process and replica using it; with the memory backend it reaches this process only."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.server._http import ApiError, endpoint, field, json_response, read_json


def _caches(state: Any) -> Any:
    rt = state.rt
    caches = getattr(rt, "caches", None) if rt is not None else None
    if caches is None:
        raise ApiError(
            404,
            "no cache is configured on this server: add a `cache:` section to shipyard.yaml "
            "(exact, semantic or tools)",
            type="not_found_error",
        )
    return caches


@endpoint("read")
async def cache_status(request: Request, state: Any) -> Response:
    """GET /admin/cache: the backend and each cache kind with its settings."""
    caches = _caches(state)
    return json_response(
        {
            "backend": caches.backend.name,
            "key_prefix": caches.prefix,
            "traffic_sources": sorted(caches.traffic_sources),
            "exact": {"ttl_s": caches.exact.ttl_s} if caches.exact is not None else None,
            "semantic": {
                "ttl_s": caches.semantic.ttl_s,
                "threshold": caches.semantic.threshold,
                "embedding": caches.semantic.embedder.name,
            }
            if caches.semantic is not None
            else None,
            "tools": {name: {"ttl_s": ttl} for name, ttl in sorted(caches.tools.ttls.items())}
            if caches.tools is not None
            else {},
        }
    )


@endpoint("admin")
async def invalidate(request: Request, state: Any) -> Response:
    """POST /admin/cache/invalidate {"agent", "version", "kind", "tool"} (all optional; none: every
    entry): delete cached answers of an agent or one of its versions (exact / semantic), or one
    tool's results. Answers {"deleted": n}."""
    caches = _caches(state)
    body = await read_json(request, state.cfg.server.max_body_bytes)
    agent = field(body, "agent", str)
    version = field(body, "version", str)
    kind = field(body, "kind", str)
    tool = field(body, "tool", str)
    if version is not None and agent is None:
        agent = version.split("@", 1)[0] if "@" in version else None
        if agent is None:
            raise ApiError(
                422, "field 'version' needs 'agent' (or a full version id agent@label+hash)", param="version"
            )
    if agent is not None and agent not in state.cfg.agents:
        raise ApiError(
            404, f"no agent {agent!r} (agents: {', '.join(sorted(state.cfg.agents))})", param="agent"
        )
    if version is not None and state.rt is not None:
        version = state.rt.resolve_version(agent, version).id  # a label or hash names its version id
    try:
        deleted = await caches.invalidate(kind=kind, agent=agent, version=version, tool=tool)
    except ValueError as e:
        raise ApiError(422, str(e)) from None
    return json_response({"deleted": deleted, "agent": agent, "version": version, "kind": kind, "tool": tool})


def cache_routes() -> list[Route]:
    return [
        Route("/admin/cache", cache_status, methods=["GET"]),
        Route("/admin/cache/invalidate", invalidate, methods=["POST"]),
    ]


def cache_openapi_paths() -> dict[str, Any]:
    """The OpenAPI paths of `cache_routes()`."""
    obj: dict[str, Any] = {"type": "object"}
    ok = {"description": "OK", "content": {"application/json": {"schema": obj}}}
    auth = {"401": {"description": "missing or unknown API key"}, "403": {"description": "role too low"}}
    none = {
        "404": {"description": "no cache is configured", "content": {"application/json": {"schema": obj}}}
    }
    body = {
        "type": "object",
        "properties": {
            "agent": {"type": "string"},
            "version": {"type": "string", "description": "a version id, label or hash (with agent)"},
            "kind": {"type": "string", "enum": ["exact", "semantic", "tool"]},
            "tool": {"type": "string"},
        },
    }
    return {
        "/admin/cache": {
            "get": {
                "summary": "The cache backend and each cache kind with its settings",
                "security": [{"apiKey": []}],
                "responses": {"200": ok, **auth, **none},
            }
        },
        "/admin/cache/invalidate": {
            "post": {
                "summary": "Delete cached answers (of an agent, a version, a kind) or one tool's results; "
                "with no field, every entry",
                "security": [{"apiKey": []}],
                "requestBody": {"required": False, "content": {"application/json": {"schema": body}}},
                "responses": {
                    "200": ok,
                    **auth,
                    **none,
                    "422": {
                        "description": "a field is wrong",
                        "content": {"application/json": {"schema": obj}},
                    },
                },
            }
        },
    }
