"""Small HTTP helpers: JSON responses, bounded body reading, field checks that name the field.

Every error is JSON in the OpenAI shape, so any OpenAI client shows it:
`{"error": {"message": ..., "type": ..., "param": <field or null>, "code": <status>}}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shipyard.errors import NotFoundError, ShipyardError

Handler = Callable[[Request], Awaitable[Response]]

_TYPE_NAMES = {str: "a string", bool: "true or false", dict: "an object", list: "an array", int: "an integer"}


class ApiError(Exception):
    """An error answered with `status` and a JSON body naming the field (`param`) when there is one."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param

    def response(self) -> Response:
        return error_response(self.status, self.message, type=self.type, param=self.param)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data, default=str), status, headers, media_type="application/json")


def error_response(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {"message": message, "type": type, "param": param, "code": status}
    if extra:
        body.update(extra)
    return json_response({"error": body}, status)


async def read_json(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object. 413 over `max_bytes`, 400 for malformed JSON, 422 for
    anything but an object."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"request body is {declared} bytes; the limit is {max_bytes}", param="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"request body is over the limit of {max_bytes} bytes", param="body")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "the request body is empty; send a JSON object", param="body")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ApiError(400, f"malformed JSON in the request body: {e}", param="body") from None
    if not isinstance(data, dict):
        raise ApiError(422, f"the request body must be a JSON object, got {_kind(data)}", param="body")
    return data


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def field(body: dict[str, Any], name: str, kind: type, *, required: bool = False, where: str = "") -> Any:
    """`body[name]` checked to be of `kind` (None when absent and not required); 422 naming the field."""
    param = f"{where}{name}"
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(422, f"field {param!r} is required", param=param)
        return None
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise ApiError(
            422,
            f"field {param!r} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {_kind(value)}",
            param=param,
        )
    return value


def number_field(body: dict[str, Any], name: str) -> float | None:
    """A finite number field (ints and floats; not booleans)."""
    value = body.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value != value
        or abs(value) == float("inf")
    ):
        raise ApiError(422, f"field {name!r} must be a finite number, got {_kind(value)}", param=name)
    return float(value)


def query_int(request: Request, name: str, default: int, *, low: int = 1, high: int = 1000) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"query parameter {name!r} must be an integer, got {raw!r}", param=name) from None
    if not low <= value <= high:
        raise ApiError(
            422, f"query parameter {name!r} must be between {low} and {high}, got {value}", param=name
        )
    return value


def endpoint(
    role: str | None, state: Any = None
) -> Callable[[Callable[[Request, Any], Awaitable[Response]]], Handler]:
    """Wrap a handler `(request, state)`: check the key's role (None: an open route) and turn errors
    into JSON answers, never a 500. `state` defaults to the app's ServerState."""

    def wrap(fn: Callable[[Request, Any], Awaitable[Response]]) -> Handler:
        async def handler(request: Request) -> Response:
            st = state if state is not None else request.app.state.shipyard
            try:
                if role is not None and st.keys is not None:
                    await st.keys.check(request.headers, role)
                return await fn(request, st)
            except ApiError as e:
                return e.response()
            except NotFoundError as e:
                return error_response(404, e.message, type="not_found_error")
            except ShipyardError as e:
                return error_response(422, e.message)

        handler.__name__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return handler

    return wrap
