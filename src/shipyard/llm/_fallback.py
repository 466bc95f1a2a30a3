"""A chain of models: when one fails after its own retries (or its circuit is open), the next answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

from shipyard.llm._events import LLMEvent, emit, listening
from shipyard.llm._types import Attempt, ChatClient, ChatOptions, ChatResponse, LLMError, Message, model_id


class FallbackClient:
    """Try each client in order; move to the next only when the previous raised LLMError.

    Args:
        clients: the primary model first, then its fallbacks.

    The response (or the final LLMError) carries the attempts of every model tried, in order, so a
    trace shows the failed primary and the fallback that answered. Each move to the next model is
    reported as a `fallback` LLMEvent. A model whose circuit is open, or whose endpoint asked to wait
    longer than its `retry_after_max_s`, fails at once, so the next one answers without delay.
    """

    def __init__(self, clients: Sequence[ChatClient]) -> None:
        if not clients:
            raise ValueError("FallbackClient needs at least one client")
        self.clients = list(clients)
        self.name = self.clients[0].name
        self.provider = self.clients[0].provider
        self.model = model_id(self.clients[0])  # what the first request asks for

    def __repr__(self) -> str:
        return f"FallbackClient([{', '.join(c.name for c in self.clients)}])"

    async def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        **options: Unpack[ChatOptions],
    ) -> ChatResponse:
        """Ask each client in turn with the same messages, tools and options."""
        attempts: list[Attempt] = []
        failures: list[str] = []
        last: LLMError | None = None
        for i, client in enumerate(self.clients):
            try:
                resp = await client.chat(messages, tools=tools, **options)
            except LLMError as e:
                attempts.extend(e.attempts)
                failures.append(f"{client.name}: {e}")
                last = e
                if i + 1 < len(self.clients) and listening():
                    emit(LLMEvent("fallback", client.name, "", e.kind, self.clients[i + 1].name))
                continue
            if attempts:
                resp.attempts = attempts + resp.attempts
            return resp
        assert last is not None
        raise LLMError("every model failed: " + " | ".join(failures), attempts, kind=last.kind)

    async def aclose(self) -> None:
        for c in self.clients:
            await c.aclose()
