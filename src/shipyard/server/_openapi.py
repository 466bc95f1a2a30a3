"""The OpenAPI 3.1 document of the server, written by hand next to the routes (keep them in step:
tests/server/test_openapi.py runs schemathesis against it and checks every route is described)."""

from __future__ import annotations

from typing import Any

from shipyard import __version__
from shipyard.server._cache_api import cache_openapi_paths
from shipyard.server._chat_params import IGNORED as IGNORED_CHAT_PARAMS
from shipyard.server._cost_api import cost_openapi_paths
from shipyard.server._idempotency import HEADER as IDEMPOTENCY_HEADER
from shipyard.server._idempotency import KEY_PATTERN
from shipyard.server._incidents_api import incident_openapi_paths
from shipyard.server._k8s_api import k8s_openapi_paths
from shipyard.server._reload import config_openapi_paths
from shipyard.server._rollout_api import rollout_openapi_paths

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": "integer"},
            },
        }
    },
}


def _err(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_AUTH_ERRORS = {"401": _err("missing or unknown API key"), "403": _err("the key's role does not allow this")}
_BODY_ERRORS = {
    "400": _err("malformed JSON"),
    "413": _err("body over the size limit"),
    "422": _err("a field is missing or has the wrong type (named in error.param)"),
}
_OBJ: dict[str, Any] = {"type": "object"}
_LIST_QUERY = [
    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
    for n in ("agent", "version", "session_id", "status")
] + [
    {
        "name": "since",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "pattern": r"^\d+(\.\d+)?[smhd]?$"},
        "description": "a window back from now: 90s, 15m, 1h, 1d",
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
]


_IDEMPOTENCY_KEY = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": f"^{KEY_PATTERN.pattern}$"},  # what the server checks
    "description": "makes a retry safe: the same key (per caller and agent) with the same body returns the "
    "first answer, with `Idempotent-Replayed: true`, and the agent's tools run once. Kept "
    "`server.idempotency.ttl_s` (24 h). A retry while the first request runs waits up to "
    "`server.idempotency.wait_s`, then gets 409; the same key with another body is 422.",
}


def path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document(agents: list[str]) -> dict[str, Any]:
    """The document; `agents` are the served agent names (listed as examples)."""
    invoke_req = {
        "type": "object",
        "required": ["input"],
        "properties": {
            "input": {"type": "string", "description": "what the user says"},
            "session_id": {"type": "string"},
            "user_id": {"type": "string"},
            "version": {
                "type": "string",
                "description": "admin keys only (else 403): a version label, hash or id "
                "(default: what the deployment serves)",
            },
            "metadata": {"type": "object"},
        },
    }
    invoke_resp = {
        "type": "object",
        "required": ["output", "status", "interaction_id", "trace_id", "session_id", "version"],
        "properties": {
            "output": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["completed", "escalated", "failed", "blocked", "budget_exceeded"],
            },
            "interaction_id": {"type": "string"},
            "trace_id": {"type": "string"},
            "session_id": {"type": "string"},
            "version": {"type": "string"},
        },
    }
    message = {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
            "content": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "null"},
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"type": {"type": "string"}, "text": {"type": "string"}},
                        },
                    },
                ]
            },
        },
    }
    chat_req = {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string", "description": "the agent's name", "examples": agents},
            "messages": {"type": "array", "items": message},
            "stream": {"type": "boolean"},
            "user": {"type": "string"},
            "session_id": {"type": "string"},
            "version": {"type": "string", "description": "admin keys only (else 403), as in invoke"},
            "metadata": {"type": "object"},
            "n": {"type": "integer", "enum": [1], "description": "one choice only (else 400)"},
            **{
                name: {
                    "type": "number",
                    "description": "accepted and ignored: the agent's model settings apply",
                }
                for name in IGNORED_CHAT_PARAMS
            },
        },
        "description": "Other OpenAI parameters are refused (400, `param` names it) unless they hold the "
        "value that asks for nothing: n 1, tools [], response_format {type: text}, max_tokens null, ...",
    }
    feedback_req = {
        "type": "object",
        "properties": {
            "interaction_id": {"type": "string"},
            "trace_id": {"type": "string"},
            "thumbs": {
                "oneOf": [{"type": "integer", "enum": [1, -1]}, {"type": "string", "enum": ["up", "down"]}]
            },
            "score": {
                "type": "number",
                "minimum": 1,
                "maximum": 5,
                "description": "satisfaction, 1 (worst) to 5",
            },
            "comment": {"type": "string"},
        },
        "description": "interaction_id or trace_id, and at least one of thumbs, score (1-5), comment",
    }
    gateway = {**_AUTH_ERRORS, **_BODY_ERRORS}

    def read(
        summary: str, params: list[dict[str, Any]] | None = None, not_found: bool = False
    ) -> dict[str, Any]:
        responses: dict[str, Any] = {"200": _ok(_OBJ), **_AUTH_ERRORS}
        op: dict[str, Any] = {"summary": summary, "security": [{"apiKey": []}], "responses": responses}
        if params:
            op["parameters"] = params
            op["responses"]["422"] = _err("a query parameter is wrong")
        if not_found:
            op["responses"]["404"] = _err("not found")
        return op

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shipyard server",
            "version": __version__,
            "description": "Serve agents with logs, traces, metrics, alerts and a journal that loses nothing.",
        },
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a key from `shipyard keys create --role R`",
                }
            },
        },
        "paths": {
            "/v1/agents/{agent}/invoke": {
                "post": {
                    "summary": "Run one interaction with an agent",
                    "security": [{"apiKey": []}],
                    "parameters": [path_param("agent"), _IDEMPOTENCY_KEY],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": invoke_req}},
                    },
                    "responses": {
                        "200": _ok(invoke_resp),
                        **gateway,
                        "404": _err("unknown agent or version"),
                        "409": _err(
                            "a request with this Idempotency-Key is still running (Retry-After), or "
                            "its server stopped before it finished (never run again)"
                        ),
                        "422": _err(
                            "a field is missing or has the wrong type (named in error.param), or the "
                            "Idempotency-Key was first used with another body"
                        ),
                        "502": _err("the model or the agent failed (the record is kept)"),
                        "503": _err(
                            "the agent could not be loaded, or the Idempotency-Key cannot be checked now"
                        ),
                        "504": _err("the interaction timed out (the record is kept)"),
                    },
                }
            },
            "/v1/chat/completions": {
                "post": {
                    "summary": "OpenAI-compatible chat completions; `model` names an agent (`stream: true` gives SSE)",
                    "security": [{"apiKey": []}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": chat_req}}},
                    "responses": {
                        "200": {
                            "description": "a chat.completion, or an SSE stream of chunks",
                            "content": {
                                "application/json": {"schema": _OBJ},
                                "text/event-stream": {"schema": {"type": "string"}},
                            },
                        },
                        **gateway,
                        "404": _err("unknown agent or version"),
                        "502": _err("the model or the agent failed"),
                        "503": _err("agent not loaded"),
                        "504": _err("timed out"),
                    },
                }
            },
            "/v1/feedback": {
                "post": {
                    "summary": "Rate an interaction",
                    "security": [{"apiKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": feedback_req}},
                    },
                    "responses": {"200": _ok(_OBJ), **gateway, "404": _err("no such interaction")},
                }
            },
            "/healthz": {"get": {"summary": "The process is alive", "responses": {"200": _ok(_OBJ)}}},
            "/readyz": {
                "get": {
                    "summary": "Store reachable and agents loaded",
                    "responses": {"200": _ok(_OBJ), "503": _ok(_OBJ, "not ready")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": [{"apiKey": []}],
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/admin/interactions": {
                "get": read(
                    "List interactions",
                    [
                        *_LIST_QUERY,
                        {
                            "name": "traffic_source",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                    ],
                )
            },
            "/admin/interactions/{id}": {
                "get": read("One interaction with its spans", [path_param("id")], True)
            },
            "/admin/traces": {"get": read("List traces", _LIST_QUERY)},
            "/admin/traces/{trace_id}": {
                "get": read("One trace: spans and tree", [path_param("trace_id")], True)
            },
            "/admin/alerts": {"get": read("Alert rules and their states")},
            "/admin/kpis": {
                "get": read(
                    "KPIs of this and the previous window, per version, and a series",
                    [
                        {
                            "name": "window",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "pattern": r"^\d+(\.\d+)?[smhd]?$"},
                        },
                        {"name": "agent", "in": "query", "required": False, "schema": {"type": "string"}},
                        {
                            "name": "points",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 2, "maximum": 200},
                        },
                    ],
                )
            },
            "/admin/versions": {"get": read("Agent versions")},
            "/admin/keys": {
                "get": read("API keys (never their hashes)"),
                "post": {
                    "summary": "Create an API key (shown once)",
                    "security": [{"apiKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["role"],
                                    "properties": {
                                        "role": {"type": "string", "enum": ["invoke", "read", "admin"]},
                                        "name": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {"201": _ok(_OBJ, "created"), **_AUTH_ERRORS, **_BODY_ERRORS},
                },
            },
            "/admin/keys/{ref}": {
                "delete": {
                    "summary": "Revoke an API key by id or prefix",
                    "security": [{"apiKey": []}],
                    "parameters": [path_param("ref")],
                    "responses": {"200": _ok(_OBJ), **_AUTH_ERRORS, "404": _err("no such key")},
                }
            },
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ok(_OBJ)}}},
            **_dashboard_paths(),
            **rollout_openapi_paths(),  # server/_rollout_api.py
            **_flag_paths(),  # server/_flags_api.py
            **_budget_paths(),  # server/_budgets_api.py
            **config_openapi_paths(),  # server/_reload.py
            **cache_openapi_paths(),  # server/_cache_api.py
            **cost_openapi_paths(),  # server/_cost_api.py
            **incident_openapi_paths(),  # server/_incidents_api.py
            **k8s_openapi_paths(),  # server/_k8s_api.py
        },
    }


def _budget_paths() -> dict[str, Any]:
    """/admin/budgets: token and money budgets (from shipyard.yaml or set here) and their usage."""
    name = path_param("name")
    off = {"409": _err("budgets are off on this server, or the budget is defined in shipyard.yaml")}
    query = [
        {"name": p, "in": "query", "required": False, "schema": {"type": "string"}}
        for p in ("session", "user", "api_key", "agent", "feature")
    ]
    return {
        "/admin/budgets": {
            "get": {
                "summary": "List the budgets in force and where each comes from (config or admin)",
                "security": [{"apiKey": []}],
                "responses": {"200": _ok(_OBJ), **_AUTH_ERRORS, **off},
            }
        },
        "/admin/budgets/usage": {
            "get": {
                "summary": "Spent, held and left on each counter these scope values touch now",
                "security": [{"apiKey": []}],
                "parameters": query,
                "responses": {"200": _ok(_OBJ), **_AUTH_ERRORS, **off, "503": _err("Redis unreachable")},
            }
        },
        "/admin/budgets/{name}": {
            "put": {
                "summary": "Add or replace a budget (a budgets.limits entry without its name)",
                "security": [{"apiKey": []}],
                "parameters": [name],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _OBJ}}},
                "responses": {"200": _ok(_OBJ), **_AUTH_ERRORS, **_BODY_ERRORS, **off},
            },
            "delete": {
                "summary": "Remove a budget set through this API",
                "security": [{"apiKey": []}],
                "parameters": [name],
                "responses": {"200": _ok(_OBJ), **_AUTH_ERRORS, "404": _err("no such admin budget"), **off},
            },
        },
    }


def _flag_paths() -> dict[str, Any]:
    """/admin/flags: the feature flags (flagd definitions) of the running server."""
    name = path_param("name")
    found = {**_AUTH_ERRORS, "404": _err("no such flag")}
    flag = _ok(_OBJ, "the flag's flagd definition, with its name")
    action = {"security": [{"apiKey": []}], "parameters": [name], "responses": {"200": flag, **found}}
    return {
        "/admin/flags": {
            "get": {
                "summary": "List feature flags",
                "security": [{"apiKey": []}],
                "responses": {"200": _ok(_OBJ), **_AUTH_ERRORS},
            }
        },
        "/admin/flags/{name}": {
            "get": {"summary": "One flag", **action},
            "put": {
                "summary": "Create or replace a flag (flagd definition; errors name the JSON path)",
                "security": [{"apiKey": []}],
                "parameters": [name],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _OBJ}}},
                "responses": {"200": flag, **_AUTH_ERRORS, **_BODY_ERRORS},
            },
        },
        "/admin/flags/{name}/enable": {"post": {"summary": "Enable a flag", **action}},
        "/admin/flags/{name}/disable": {"post": {"summary": "Disable a flag", **action}},
        "/admin/flags/{name}/rollout": {
            "post": {
                "summary": "Serve the flag's on variant to a percentage of users (sticky)",
                "security": [{"apiKey": []}],
                "parameters": [name],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["percent"],
                                "properties": {"percent": {"type": "number", "minimum": 0, "maximum": 100}},
                            }
                        }
                    },
                },
                "responses": {"200": flag, **found, **_BODY_ERRORS},
            }
        },
    }


def _dashboard_paths() -> dict[str, Any]:
    """The dashboard's pages and its read-only JSON under /admin/api/dashboard (see `_dashboard`)."""
    html = {"200": {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}}
    window = {
        "name": "window",
        "in": "query",
        "required": False,
        "description": "15m, 1h, 24h (at most 24h)",
        "schema": {"type": "string", "pattern": r"^\d+(\.\d+)?[smhd]?$"},
    }

    def api(summary: str, params: list[dict[str, Any]], not_found: bool = False) -> dict[str, Any]:
        responses: dict[str, Any] = {
            "200": _ok(_OBJ),
            **_AUTH_ERRORS,
            "422": _err("a query parameter is wrong"),
        }
        if not_found:
            responses["404"] = _err("no such trace")
        return {
            "get": {
                "summary": summary,
                "security": [{"apiKey": []}],
                "parameters": params,
                "responses": responses,
            }
        }

    text = lambda name: {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}  # noqa: E731
    return {
        "/dashboard": {"get": {"summary": "The health dashboard (HTML)", "responses": html}},
        "/dashboard/traces/{trace_id}": {
            "get": {
                "summary": "A trace page (HTML)",
                "responses": html,
                "parameters": [
                    {"name": "trace_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
            }
        },
        "/admin/api/dashboard/overview": api("Status, KPI cards with changes, last 24 hours", [window]),
        "/admin/api/dashboard/timeseries": api(
            "KPIs over time for the charts",
            [window, {**window, "name": "bucket", "description": "bucket width, e.g. 1m"}],
        ),
        "/admin/api/dashboard/versions": api("KPIs per agent version", [window]),
        "/admin/api/dashboard/traces": api(
            "Traces with filters",
            [
                text("agent"),
                text("version"),
                text("session_id"),
                {
                    "name": "status",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "string",
                        "enum": ["completed", "escalated", "failed", "blocked", "budget_exceeded"],
                    },
                },
                {
                    "name": "traffic_source",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "string",
                        "enum": ["production", "canary", "eval", "shadow", "replay"],
                    },
                },
                window,
                {"name": "before", "in": "query", "required": False, "schema": {"type": "number"}},
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                },
            ],
        ),
        "/admin/api/dashboard/traces/{trace_id}": api(
            "One trace: spans, waterfall, tree",
            [{"name": "trace_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            True,
        ),
    }
