"""Shared helpers of the llm tests: scripted answers for the tiny loopback server in conftest.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


def ok_body(content: str | None = "hello", **extra: Any) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    message.update(extra.pop("message", {}))
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-test-2024",
        "choices": [{"index": 0, "message": message, "finish_reason": extra.pop("finish_reason", "stop")}],
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": 3,
            "total_tokens": 14,
            "prompt_tokens_details": {"cached_tokens": 4},
        },
    }
    body.update(extra)
    return orjson.dumps(body)


@dataclass
class Step:
    """One scripted answer: an HTTP status and body, or `hang` (never answer in time)."""

    status: int = 200
    body: bytes = field(default_factory=ok_body)
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0


@dataclass
class ScriptServer:
    url: str
    steps: list[Step]
    requests: list[dict[str, Any]] = field(default_factory=list)

    def script(self, *steps: Step) -> None:
        self.steps[:] = list(steps)
