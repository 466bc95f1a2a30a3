"""`ctx.llm` and `ctx.tools` as the runtime gives them: traced, priced, checked, interceptable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

import orjson
from opentelemetry.trace import Span, SpanKind, Tracer

from shipyard.config import ModelPrices
from shipyard.cost import call_cost
from shipyard.llm import ChatClient, ChatResponse, LLMError, Message, ToolCall, Usage
from shipyard.observe import end_span, start_span
from shipyard.observe import semconv as sc
from shipyard.store import LLMCallRecord, ToolCallRecord
from shipyard.tools import ToolRegistry, ToolResult

T = TypeVar("T")


class CallInterceptor(Protocol):
    """Sits around every model and tool call of an interaction (evals use it to record and replay).

    Each method returns the result and whether it was replayed rather than really called."""

    async def llm_call(
        self, request: dict[str, Any], call: Callable[[], Awaitable[ChatResponse]]
    ) -> tuple[ChatResponse, bool]: ...

    async def tool_call(
        self, name: str, arguments: dict[str, Any], call: Callable[[], Awaitable[ToolResult]]
    ) -> tuple[ToolResult, bool]: ...


class Trail:
    """What one interaction did: spans, model calls, tool calls, usage and cost, in order."""

    __slots__ = ("cost_usd", "llm_calls", "loop", "replayed", "spans", "tool_calls", "usage")

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.llm_calls: list[LLMCallRecord] = []
        self.tool_calls: list[ToolCallRecord] = []
        self.usage = Usage()
        self.cost_usd = 0.0
        self.replayed = False
        self.loop: asyncio.AbstractEventLoop | None = None


def _run_sync(trail: Trail, coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from the worker thread a sync agent runs in."""
    if trail.loop is None:
        raise RuntimeError("sync calls are only available to agents the runtime runs")
    return asyncio.run_coroutine_threadsafe(coro, trail.loop).result()


class TracedLLM:
    """`ctx.llm`: one chat call = one `chat {model}` span (plus one span per retry attempt)."""

    __slots__ = (
        "_client",
        "_interceptor",
        "_parent",
        "_prices",
        "_tracer",
        "_trail",
        "model_name",
        "settings",
    )

    def __init__(
        self,
        client: ChatClient,
        prices: Callable[[str], ModelPrices],
        tracer: Tracer,
        parent: Span,
        trail: Trail,
        *,
        model_name: str,
        settings: dict[str, Any],
        interceptor: CallInterceptor | None = None,
    ) -> None:
        self._client = client
        self._prices = prices
        self._tracer = tracer
        self._parent = parent
        self._trail = trail
        self._interceptor = interceptor
        self.model_name = model_name
        self.settings = settings

    async def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse:
        temperature = self.settings.get("temperature") if temperature is None else temperature
        max_tokens = self.settings.get("max_tokens") if max_tokens is None else max_tokens
        span = start_span(
            self._tracer,
            sc.SPAN_CHAT.format(self.model_name),
            parent=self._parent,
            kind=SpanKind.CLIENT,
            attributes={sc.OPERATION: sc.OP_CHAT, sc.REQUEST_MODEL: self.model_name},
        )
        t0 = time.perf_counter()

        async def call() -> ChatResponse:
            return await self._client.chat(
                messages, tools=tools, temperature=temperature, max_tokens=max_tokens
            )

        replayed = False
        try:
            if self._interceptor is not None:
                request = {
                    "messages": messages,
                    "tools": tools,
                    "temperature": temperature,
                    "max_tokens": max_tokens,
                }
                resp, replayed = await self._interceptor.llm_call(request, call)
            else:
                resp = await call()
        except LLMError as e:
            self._attempt_spans(span, e.attempts)
            self._trail.llm_calls.append(
                LLMCallRecord(
                    model=self.model_name,
                    provider=getattr(self._client, "provider", ""),
                    duration_ms=(time.perf_counter() - t0) * 1000,
                    input_tokens=0,
                    output_tokens=0,
                    cached_input_tokens=0,
                    cost_usd=0.0,
                    attempts=len(e.attempts),
                    status="error",
                    error=str(e),
                )
            )
            end_span(span, error=str(e), error_type=e.kind)
            self._trail.spans.append(span)
            raise
        cost = 0.0 if replayed else call_cost(self._prices(resp.model), resp.usage)
        u = resp.usage
        span.set_attributes(
            {
                sc.PROVIDER: resp.provider,
                sc.RESPONSE_MODEL: resp.model,
                sc.INPUT_TOKENS: u.input_tokens,
                sc.OUTPUT_TOKENS: u.output_tokens,
                sc.CACHE_READ_TOKENS: u.cached_input_tokens,
                sc.FINISH_REASONS: (resp.finish_reason,),
                sc.COST_USD: cost,
                sc.REPLAYED: replayed,
            }
        )
        self._attempt_spans(span, resp.attempts)
        end_span(span)
        self._trail.spans.append(span)
        self._trail.usage = self._trail.usage + u
        self._trail.cost_usd += cost
        self._trail.replayed |= replayed
        self._trail.llm_calls.append(
            LLMCallRecord(
                model=resp.model,
                provider=resp.provider,
                duration_ms=(time.perf_counter() - t0) * 1000,
                input_tokens=u.input_tokens,
                output_tokens=u.output_tokens,
                cached_input_tokens=u.cached_input_tokens,
                cost_usd=cost,
                attempts=max(len(resp.attempts), 1),
                tool_calls=[tc.name for tc in resp.tool_calls],
            )
        )
        return resp

    def _attempt_spans(self, parent: Span, attempts: list[Any]) -> None:
        """One child span per attempt when there was more than one, or when the only one failed."""
        if len(attempts) < 2 and all(a.outcome == "ok" for a in attempts):
            return
        for i, a in enumerate(attempts, 1):
            s = start_span(
                self._tracer,
                sc.SPAN_ATTEMPT.format(i),
                parent=parent,
                kind=SpanKind.CLIENT,
                start_ns=a.start_ns,
                attributes={
                    sc.OPERATION: sc.OP_CHAT,
                    sc.REQUEST_MODEL: a.model,
                    sc.PROVIDER: a.provider,
                    sc.SERVER_ADDRESS: a.endpoint,
                    sc.ATTEMPT: i,
                    sc.ATTEMPT_OUTCOME: a.outcome,
                    **({sc.HTTP_STATUS: a.status_code} if a.status_code else {}),
                },
            )
            end_span(
                s,
                error=a.error or a.outcome if a.outcome != "ok" else None,
                error_type=a.outcome,
                end_ns=a.end_ns,
            )
            self._trail.spans.append(s)

    def chat_sync(self, messages: list[Message], **kwargs: Any) -> ChatResponse:
        """`chat` for sync agents (they run in a worker thread)."""
        return _run_sync(self._trail, self.chat(messages, **kwargs))


class TracedTools:
    """`ctx.tools`: one call = one `execute_tool {name}` span; arguments checked before the call."""

    __slots__ = ("_definitions", "_interceptor", "_parent", "_registry", "_tracer", "_trail")

    def __init__(
        self,
        registry: ToolRegistry,
        definitions: list[dict[str, Any]],
        tracer: Tracer,
        parent: Span,
        trail: Trail,
        interceptor: CallInterceptor | None = None,
    ) -> None:
        self._registry = registry
        self._definitions = definitions
        self._tracer = tracer
        self._parent = parent
        self._trail = trail
        self._interceptor = interceptor

    def definitions(self) -> list[dict[str, Any]]:
        return self._definitions

    def names(self) -> list[str]:
        return self._registry.names()

    async def call(self, name: str, /, **arguments: Any) -> ToolResult:
        return await self._call(name, arguments, None)

    async def run(self, tool_call: ToolCall) -> ToolResult:
        return await self._call(tool_call.name, tool_call.arguments, tool_call.id)

    async def _call(self, name: str, arguments: dict[str, Any], call_id: str | None) -> ToolResult:
        span = start_span(
            self._tracer,
            sc.SPAN_TOOL.format(name),
            parent=self._parent,
            attributes={
                sc.OPERATION: sc.OP_TOOL,
                sc.TOOL_NAME: name,
                sc.TOOL_TYPE: "function",
                **({sc.TOOL_CALL_ID: call_id} if call_id else {}),
            },
        )
        replayed = False
        if self._interceptor is not None:
            result, replayed = await self._interceptor.tool_call(
                name, arguments, lambda: self._registry.call(name, arguments)
            )
        else:
            result = await self._registry.call(name, arguments)
        span.set_attributes(
            {
                sc.TOOL_STATUS: result.status,
                sc.TOOL_CACHED: result.cached,
                sc.TOOL_ARGUMENTS: orjson.dumps(arguments, default=str).decode(),
                sc.REPLAYED: replayed,
            }
        )
        end_span(span, error=result.error if not result.ok else None, error_type=result.status)
        self._trail.spans.append(span)
        self._trail.replayed |= replayed
        self._trail.tool_calls.append(
            ToolCallRecord(
                name=name,
                arguments=arguments,
                status=result.status,
                duration_ms=result.duration_ms,
                error=result.error,
                cached=result.cached,
                result=result.value if result.ok else None,
            )
        )
        return result

    def call_sync(self, name: str, /, **arguments: Any) -> ToolResult:
        """`call` for sync agents (they run in a worker thread)."""
        return _run_sync(self._trail, self.call(name, **arguments))

    def run_sync(self, tool_call: ToolCall) -> ToolResult:
        return _run_sync(self._trail, self.run(tool_call))
