"""OpenAI's chat-completions wire format, written once: a ChatResponse as a `chat.completion` body,
as the SSE chunks of a streamed answer, and OpenAI-style error bodies. The mock server and the
model proxy of `shipyard.integrations` both answer with these."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from shipyard.types import ChatResponse, Usage

SSE_DONE = b"data: [DONE]\n\n"
_WORDS = re.compile(r"\S+\s*|\s+")


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    """An OpenAI-style error body: `{"error": {"message", "type", "param", "code"}}`."""
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def usage_json(u: Usage) -> dict[str, Any]:
    """Usage in OpenAI's names, with cached input tokens under `prompt_tokens_details` and
    reasoning tokens under `completion_tokens_details` (OpenAI has no cache-write count)."""
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def completion_body(resp: ChatResponse, model: str, *, created: int | None = None) -> bytes:
    """The `chat.completion` JSON of a response (one choice).

    Args:
        resp: the answer.
        model: the model id to report.
        created: the Unix time to report (default: now)."""
    message: dict[str, Any] = {"role": "assistant", "content": resp.text}
    if resp.tool_calls:
        message["tool_calls"] = [tc.to_message() for tc in resp.tool_calls]
    return orjson.dumps(
        {
            "id": resp.response_id,
            "object": "chat.completion",
            "created": int(time.time()) if created is None else created,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": resp.finish_reason, "logprobs": None}
            ],
            "usage": usage_json(resp.usage),
        }
    )


def completion_chunks(
    resp: ChatResponse, model: str, *, include_usage: bool = True, created: int | None = None
) -> list[bytes]:
    """The SSE events of a streamed answer, `[DONE]` last: a role delta, the text in word-sized
    content deltas, one delta per tool call (index, id, name and arguments), a final chunk with the
    finish reason, then (with `include_usage`) a chunk with no choices and the usage."""
    head = orjson.dumps(
        {
            "id": resp.response_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()) if created is None else created,
            "model": model,
        }
    )[:-1]  # the object without its closing brace: each chunk appends its own fields

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        rest = orjson.dumps({"choices": choices, **extra})
        return b"data: " + head + b"," + rest[1:] + b"\n\n"

    def delta(d: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": d, "finish_reason": finish}]

    out = [event(delta({"role": "assistant", "content": ""}))]
    out += [event(delta({"content": piece})) for piece in _WORDS.findall(resp.text or "")]
    out += [
        event(delta({"tool_calls": [{"index": i, **tc.to_message()}]}))
        for i, tc in enumerate(resp.tool_calls)
    ]
    out.append(event(delta({}, resp.finish_reason)))
    if include_usage:
        out.append(event([], usage=usage_json(resp.usage)))
    out.append(SSE_DONE)
    return out
