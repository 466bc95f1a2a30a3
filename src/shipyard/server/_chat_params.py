"""What `POST /v1/chat/completions` does with each OpenAI request parameter.

`model` names an agent, and the agent owns its model settings, so most of OpenAI's parameters cannot
be honoured. A parameter is never ignored silently when ignoring it changes what the client gets back
(`n: 3` expects three choices, `tools` expects tool calls, `response_format` expects JSON,
`max_tokens` expects a cap): the request is refused with 400 in OpenAI's error format, naming the
parameter (`param`), as OpenAI-compatible servers answer unsupported parameters. Three kinds:

- `USED`: read by the gateway (the agent's input, its session, user and metadata).
- `IGNORED`: sampling knobs whose absence changes nothing in the answer's shape; the agent's own model
  settings apply. Accepted with any value, and documented as ignored (README, OpenAPI).
- `DEFAULT_ONLY`: accepted only with the value that asks for nothing beyond what the gateway does
  (`n: 1`, `tools: []`, `response_format: {"type": "text"}`, ...); any other value is refused.

Any other field is refused as OpenAI refuses an unrecognized argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shipyard.server._http import ApiError

USED = ("model", "messages", "stream", "user", "session_id", "version", "metadata")
"""Fields the gateway reads (`session_id` and `version` are Shipyard's own)."""

IGNORED = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
"""Sampling parameters accepted and ignored: the agent's model settings decide them."""


def _none(v: Any) -> bool:
    return v is None


def _empty(v: Any) -> bool:
    return v is None or v in ([], {}, "")


DEFAULT_ONLY: Mapping[str, tuple[Callable[[Any], bool], str]] = {
    "n": (lambda v: v is None or (v == 1 and not isinstance(v, bool)), "1 (one choice)"),
    "stream_options": (
        lambda v: v is None or (isinstance(v, dict) and set(v) <= {"include_usage"}),
        '{"include_usage": ...} (the last chunk always carries usage)',
    ),
    "logprobs": (lambda v: v is None or v is False, "false"),
    "top_logprobs": (lambda v: v is None or v == 0, "0"),
    "tools": (_empty, "[] (the agent calls its own tools)"),
    "functions": (_empty, "[] (the agent calls its own tools)"),
    "tool_choice": (lambda v: v in (None, "none", "auto"), '"none" or "auto" (with no tools)'),
    "function_call": (lambda v: v in (None, "none", "auto"), '"none" or "auto" (with no functions)'),
    "parallel_tool_calls": (lambda v: v is None or isinstance(v, bool), "true or false (with no tools)"),
    "response_format": (lambda v: v is None or v == {"type": "text"}, '{"type": "text"}'),
    "modalities": (lambda v: v is None or v == ["text"], '["text"]'),
    "stop": (_empty, "null (no stop sequences)"),
    "logit_bias": (_empty, "{}"),
    "max_tokens": (_none, "null (the agent's model settings and budgets cap its answer)"),
    "max_completion_tokens": (_none, "null (the agent's model settings and budgets cap its answer)"),
}
"""Parameters accepted only with the value that changes nothing: what each allows, and says so."""

_KNOWN = frozenset((*USED, *IGNORED, *DEFAULT_ONLY))


def check_chat_params(body: Mapping[str, Any]) -> None:
    """Refuse (ApiError 400, `param` naming it) the first field of a chat completions request the
    gateway would otherwise drop while the client expects it to matter; fields in `IGNORED` pass."""
    for name, value in body.items():
        if name in DEFAULT_ONLY:
            ok, allowed = DEFAULT_ONLY[name]
            if not ok(value):
                raise ApiError(
                    400,
                    f"parameter '{name}' is not supported here: `model` names a Shipyard agent, which "
                    f"answers with one choice of its own; '{name}' may only be {allowed}",
                    param=name,
                )
        elif name not in _KNOWN:
            raise ApiError(
                400,
                f"unrecognized request argument supplied: '{name}' (accepted: "
                f"{', '.join(USED)}; ignored: {', '.join(IGNORED)})",
                param=name,
            )
