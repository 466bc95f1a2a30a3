"""Small HTTP helpers: JSON responses, bounded body reading, field checks that name the field.

Every error is JSON in the OpenAI shape, so any OpenAI client shows it:
`{"error": {"message": ..., "type": ..., "param": <field or null>, "code": <status>}}`.

What the API accepts can always be stored (SQLite and PostgreSQL alike): malformed JSON is a 400
(orjson refuses lone UTF-16 surrogates and infinite numbers there); a well-formed value the store
could not hold is a 422 naming the field. No string anywhere in a body, nor in a path or query
parameter, may hold a NUL character (PostgreSQL text and JSONB refuse it); ids and parameters are
at most `MAX_ID_CHARS` printable characters (a btree index entry has a size limit); bodies nest at
most `MAX_JSON_DEPTH` levels.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shipyard.errors import NotFoundError, ShipyardError
from shipyard.server._sanitize import safe_value

Handler = Callable[[Request], Awaitable[Response]]

_TYPE_NAMES = {str: "a string", bool: "true or false", dict: "an object", list: "an array", int: "an integer"}

MAX_ID_CHARS = 256  # ids (session, user, interaction, version), names, path and query parameters
MAX_JSON_DEPTH = 64  # any request body; far below what orjson (254) and Python recursion allow
MAX_METADATA_DEPTH = 10
MAX_METADATA_KEYS = 256  # keys of all objects in `metadata`, at every level
MAX_COMMENT_CHARS = 10_000  # a feedback comment
SCORE_MIN, SCORE_MAX = 1.0, 5.0  # a feedback score: CSAT, the scale KPIs, alerts and incidents.low_csat read


class ApiError(Exception):
    """An error answered with `status` and a JSON body naming the field (`param`) when there is one;
    `extra` adds fields to the error object (e.g. the id of an interaction that ran)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.extra = extra

    def response(self) -> Response:
        return error_response(self.status, self.message, type=self.type, param=self.param, extra=self.extra)


def dumps(data: Any) -> bytes:
    """JSON bytes of `data`; a value orjson refuses (a lone surrogate an agent returned, an integer
    over 64 bits) is made safe first (`server/_sanitize.py`) rather than failing the answer."""
    try:
        return orjson.dumps(data, default=str)
    except TypeError:  # orjson.JSONEncodeError
        return orjson.dumps(safe_value(data), default=str)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status, headers, media_type="application/json")


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


_BODY = "shipyard.json_body"  # where the request's scope keeps its body once read and checked


async def read_json(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object. 413 over `max_bytes`, 400 for malformed JSON, 422 for
    anything but an object. Read, parsed and checked once per request: a later call (the handler,
    after the Idempotency-Key check read it) gets the same object."""
    kept: dict[str, Any] | None = request.scope.get(_BODY)
    if kept is not None:
        return kept
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
    check_json(data)
    request.scope[_BODY] = data
    return data


def _child(path: str, key: str | int) -> str:
    """The name of a field inside `path` (`metadata.note`, `messages[2]`), as errors show it."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def check_json(data: dict[str, Any], *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """422 naming the field when a parsed body nests deeper than `max_depth` or a string in it (a key
    or a value) holds a NUL character, which neither PostgreSQL text nor JSONB can store."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if depth > max_depth and isinstance(value, (dict, list)):
            raise ApiError(
                422, f"field {path!r} nests deeper than {max_depth} levels; flatten it", param=path or "body"
            )
        if isinstance(value, dict):
            for k, v in value.items():
                if "\x00" in k:
                    where = path or "body"
                    raise ApiError(
                        422, f"a key in {where!r} holds a NUL character (\\u0000); remove it", param=where
                    )
                stack.append((v, depth + 1, _child(path, k)))
        elif isinstance(value, list):
            stack.extend((v, depth + 1, _child(path, i)) for i, v in enumerate(value))
        elif isinstance(value, str) and "\x00" in value:
            raise ApiError(
                422,
                f"field {path!r} holds a NUL character (\\u0000), which cannot be stored; remove it",
                param=path,
            )


def check_id(value: str, param: str, *, what: str = "field") -> str:
    """`value` if it is at most MAX_ID_CHARS printable characters (no control characters, no NUL,
    no lone surrogates); else 422 naming `param`."""
    if len(value) > MAX_ID_CHARS:
        raise ApiError(
            422,
            f"{what} {param!r} is {len(value)} characters long; the limit is {MAX_ID_CHARS}",
            param=param,
        )
    if not value.isprintable():
        bad = next(i for i, ch in enumerate(value) if not ch.isprintable())
        raise ApiError(
            422,
            f"{what} {param!r} holds a control or non-printable character at position {bad} "
            f"({value[bad]!r}); use printable text",
            param=param,
        )
    return value


def check_params(request: Request) -> None:
    """422 unless every path and query parameter is an id-like value (see `check_id`): they are
    looked up in the store, and a NUL or an oversized value must not reach it."""
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_id(value, name, what="path parameter")
    if not request.scope.get("query_string"):  # nothing to check (and no QueryParams to parse)
        return
    for name, value in request.query_params.multi_items():
        check_id(value, name, what="query parameter")


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


def id_field(body: dict[str, Any], name: str, *, required: bool = False, where: str = "") -> str | None:
    """A string field holding an id or a name (see `check_id`)."""
    value: str | None = field(body, name, str, required=required, where=where)
    return None if value is None else check_id(value, f"{where}{name}")


def text_field(body: dict[str, Any], name: str, max_chars: int) -> str | None:
    """A free-text string field of at most `max_chars` characters (NUL is refused by `read_json`)."""
    value: str | None = field(body, name, str)
    if value is not None and len(value) > max_chars:
        raise ApiError(
            422, f"field {name!r} is {len(value)} characters long; the limit is {max_chars}", param=name
        )
    return value


def metadata_field(body: dict[str, Any], max_bytes: int, name: str = "metadata") -> dict[str, Any] | None:
    """The `metadata` object, bounded: at most MAX_METADATA_DEPTH levels, MAX_METADATA_KEYS keys in
    all, and `max_bytes` once serialized (it is stored with every interaction)."""
    value: dict[str, Any] | None = field(body, name, dict)
    if value is None:
        return None
    keys = 0
    stack: list[tuple[Any, int, str]] = [(value, 1, name)]
    while stack:
        item, depth, path = stack.pop()
        if depth > MAX_METADATA_DEPTH and isinstance(item, (dict, list)):
            raise ApiError(
                422, f"field {path!r} nests deeper than {MAX_METADATA_DEPTH} levels; flatten it", param=path
            )
        if isinstance(item, dict):
            keys += len(item)
            stack.extend((v, depth + 1, _child(path, k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, depth + 1, _child(path, i)) for i, v in enumerate(item))
    if keys > MAX_METADATA_KEYS:
        raise ApiError(
            422, f"field {name!r} has {keys} keys in all; the limit is {MAX_METADATA_KEYS}", param=name
        )
    size = len(orjson.dumps(value))
    if size > max_bytes:
        raise ApiError(
            422,
            f"field {name!r} is {size} bytes as JSON; the limit is {max_bytes} (server.max_metadata_bytes)",
            param=name,
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
                check_params(request)
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
