"""The model proxy's one request handler: an OpenAI chat-completions request in, `ctx.llm.chat` of
the interaction it belongs to, an OpenAI answer (or error) out. The in-process transports and the
loopback endpoint both call `answer` / `answer_sync`; the wire format itself is `shipyard.llm`'s.

What reaches `ctx.llm.chat`: the messages, the tools and the options Shipyard passes through
(`shipyard.types.ChatOptions`; `max_completion_tokens` is read as `max_tokens`). The model the
request names is not used: the agent version's configured model (and its fallbacks) answers, which
is what makes the call priced, versioned, retried and replayable. A field Shipyard does not pass
through and that would change the answer is refused with HTTP 400 naming it, never silently dropped.

A streamed request (`stream: true`) is answered once `ctx.llm` has answered, as the SSE chunks of
that answer: true upstream token streaming is not built, so the first token arrives with the last.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

import orjson

from shipyard.agents import Interaction
from shipyard.llm import (
    ChatOptions,
    ChatResponse,
    LLMError,
    Message,
    completion_body,
    completion_chunks,
    error_body,
)

JSON_HEADERS: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
SSE_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
)
# an OpenAI client must not retry a Shipyard answer: ctx.llm has already retried and failed over
NO_RETRY: tuple[str, str] = ("x-should-retry", "false")

# fields read as request options (to ChatOptions), and fields that do not change the answer
_NUMBERS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
_IGNORED = frozenset({"model", "stream", "stream_options", "user", "metadata", "store", "n", "logprobs"})
_TOOL_CHOICES = ("auto", "none", "required")
_FORMATS = ("text", "json_object", "json_schema")

# how a model failure after Shipyard's retries and fallbacks reaches the framework
_STATUS = {"rate_limited": 429, "unavailable": 503, "timeout": 504, "bad_response": 502}
_ERROR_TYPE = {429: "rate_limit_error", 503: "service_unavailable", 504: "timeout", 502: "bad_gateway"}


@dataclass(slots=True)
class Reply:
    """An HTTP answer: status, headers and the body (all of it; a stream's chunks joined)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS


class BadRequest(ValueError):
    """A request the proxy refuses (HTTP 400), with the field at fault."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(slots=True)
class ChatRequest:
    """A checked chat-completions request."""

    messages: list[Message]
    tools: list[dict[str, Any]] | None
    options: ChatOptions
    stream: bool
    include_usage: bool

    def call(self, interaction: Interaction) -> Any:
        """The coroutine of the model call, through the interaction's `ctx.llm`."""
        return interaction.ctx.llm.chat(self.messages, tools=self.tools, **self.options)


def error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None) -> Reply:
    """An OpenAI-style error answer that tells OpenAI clients not to retry."""
    return Reply(status, error_body(message, type_, code, param), (*JSON_HEADERS, NO_RETRY))


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"'{name}' must be a number, got {value!r}", name)
    return float(value)


def _integer(value: Any, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        kind = "an integer" if minimum is None else f"an integer of at least {minimum}"
        raise BadRequest(f"'{name}' must be {kind}, got {value!r}", name)
    return value


def _tool_choice(value: Any) -> str | dict[str, Any]:
    if value in _TOOL_CHOICES:
        return cast(str, value)
    if isinstance(value, dict) and value.get("type") == "function":
        fn = value.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]:
            return value
    raise BadRequest(
        "'tool_choice' must be 'auto', 'none', 'required' or "
        f'{{"type": "function", "function": {{"name": ...}}}}, got {value!r}',
        "tool_choice",
    )


def parse_chat(body: bytes) -> ChatRequest:
    """Check a chat-completions request body; raises BadRequest naming the field at fault."""
    try:
        req = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(req, dict):
        raise BadRequest("the request body must be a JSON object")
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required and must be a non-empty array of messages", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a 'role'", f"messages[{i}]")
    tools = req.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise BadRequest("'tools' must be an array of tool objects", "tools")
    options: dict[str, Any] = {}
    for key, value in req.items():
        if value is None or key in ("messages", "tools") or key in _IGNORED:
            continue
        if key in _NUMBERS:
            options[key] = _number(value, key)
        elif key in ("max_tokens", "max_completion_tokens"):
            options["max_tokens"] = _integer(value, key, 1)
        elif key == "seed":
            options["seed"] = _integer(value, key)
        elif key == "stop":
            if not (
                isinstance(value, str) or (isinstance(value, list) and all(isinstance(s, str) for s in value))
            ):
                raise BadRequest(f"'stop' must be a string or an array of strings, got {value!r}", "stop")
            options["stop"] = value
        elif key == "tool_choice":
            options["tool_choice"] = _tool_choice(value)
        elif key == "response_format":
            if not isinstance(value, dict) or value.get("type") not in _FORMATS:
                raise BadRequest(f"'response_format' must have a type of {', '.join(_FORMATS)}", key)
            options["response_format"] = value
        elif key == "parallel_tool_calls":
            if not isinstance(value, bool):
                raise BadRequest(f"'parallel_tool_calls' must be true or false, got {value!r}", key)
            options["parallel_tool_calls"] = value
        else:
            raise BadRequest(
                f"Shipyard's model proxy does not pass '{key}' through (it passes messages, tools, "
                "temperature, max_tokens, top_p, frequency_penalty, presence_penalty, seed, stop, "
                "tool_choice, response_format, parallel_tool_calls, stream); remove it from the "
                "framework's model settings",
                key,
            )
    if req.get("n") not in (None, 1):
        raise BadRequest("'n' must be 1: Shipyard's model proxy answers one choice per request", "n")
    if req.get("logprobs"):
        raise BadRequest("'logprobs' is not supported by Shipyard's model proxy", "logprobs")
    stream = req.get("stream") is True
    stream_options = req.get("stream_options")
    include_usage = (
        stream and isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    )
    return ChatRequest(messages, tools or None, cast(ChatOptions, options), stream, include_usage)


def _route(method: str, path: str) -> str | None:
    """`chat` or `models` for the OpenAI routes the proxy answers (by the end of the path)."""
    path = path.rstrip("/")
    if path.endswith("/chat/completions") or path == "chat/completions":
        return "chat" if method == "POST" else "method"
    if path.endswith("/models") or path == "models":
        return "models" if method == "GET" else "method"
    return None


def prepare(method: str, path: str, body: bytes, interaction: Interaction | None) -> Reply | ChatRequest:
    """What a request asks for: a checked chat request to send to `ctx.llm`, or the answer right
    away (the model list, or an error: a bad request, a call outside an interaction)."""
    route = _route(method, path)
    if route is None:
        return error(
            404, f"no route {method} {path} in Shipyard's model proxy", "invalid_request_error", "not_found"
        )
    if route == "method":
        return error(405, f"{method} is not allowed on {path}", "invalid_request_error")
    if route == "models":
        model = (
            getattr(interaction.ctx.llm, "model_name", "shipyard") if interaction is not None else "shipyard"
        )
        data = {
            "object": "list",
            "data": [{"id": model, "object": "model", "created": 0, "owned_by": "shipyard"}],
        }
        return Reply(200, orjson.dumps(data))
    if interaction is None or interaction.ended:
        when = "after its interaction ended" if interaction is not None else "outside a Shipyard interaction"
        return error(
            400,
            f"a model call reached Shipyard's model proxy {when}; the proxy only answers calls the "
            "agent makes while the runtime runs it (through `shipyard run`, an eval or the server), "
            "and never calls a model on its own",
            "invalid_request_error",
            "no_interaction",
        )
    try:
        return parse_chat(body)
    except BadRequest as e:
        return error(400, str(e), "invalid_request_error", None, e.param)


def reply_for(request: ChatRequest, resp: ChatResponse) -> Reply:
    """The answer to a chat request: a `chat.completion` body, or the SSE chunks of a stream."""
    if resp.response_id is None:
        resp.response_id = f"chatcmpl-{uuid.uuid4().hex}"
    model = resp.response_model or resp.model
    created = int(time.time())
    if request.stream:
        chunks = completion_chunks(resp, model, include_usage=request.include_usage, created=created)
        return Reply(200, b"".join(chunks), SSE_HEADERS)
    return Reply(200, completion_body(resp, model, created=created))


def failure(interaction: Interaction, e: Exception) -> Reply:
    """The answer when `ctx.llm` failed: the HTTP status a provider would give (429, 503, 504, 502;
    400 when the provider refused the request), so the framework's own error handling works. The
    error is kept on the interaction, so the framework exception that follows is reported as it."""
    interaction.model_failure = e
    if not isinstance(e, LLMError):
        return error(500, f"Shipyard's model proxy failed: {type(e).__name__}: {e}", "server_error")
    status = _STATUS.get(e.kind)
    if status is None:
        last = e.attempts[-1].status_code if e.attempts else None
        status = 400 if last is not None and 400 <= last < 500 else 500 if e.kind == "replay_miss" else 502
    type_ = _ERROR_TYPE.get(status, "invalid_request_error" if status == 400 else "server_error")
    return error(status, str(e), type_, e.kind)


async def answer(method: str, path: str, body: bytes, interaction: Interaction | None) -> Reply:
    """Answer one proxied request from any event loop (the model call runs on the interaction's)."""
    step = prepare(method, path, body, interaction)
    if isinstance(step, Reply):
        return step
    assert interaction is not None
    try:
        resp = await interaction.run(step.call(interaction))
    except Exception as e:
        return failure(interaction, e)
    return reply_for(step, resp)


def answer_sync(method: str, path: str, body: bytes, interaction: Interaction | None) -> Reply:
    """`answer` for a blocking caller in a worker thread (a sync framework)."""
    step = prepare(method, path, body, interaction)
    if isinstance(step, Reply):
        return step
    assert interaction is not None
    try:
        resp = interaction.run_sync(step.call(interaction))
    except Exception as e:
        return failure(interaction, e)
    return reply_for(step, resp)
