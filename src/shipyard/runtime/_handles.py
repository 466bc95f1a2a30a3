"""`ctx.llm` and `ctx.tools` as the runtime gives them: traced, priced, checked, interceptable."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, Unpack

import orjson
from opentelemetry.trace import Span, SpanKind, Tracer

from shipyard.agents import ReplayedToolError, ToolRefusedError, current_interaction
from shipyard.config import ModelPrices
from shipyard.cost import call_cost
from shipyard.llm import (
    Attempt,
    ChatClient,
    ChatOptions,
    ChatResponse,
    LLMError,
    Message,
    ToolCall,
    Usage,
    model_id,
)
from shipyard.observe import end_span, start_span
from shipyard.observe import semconv as sc
from shipyard.store import LLMCallRecord, ToolCallRecord
from shipyard.types import ToolResult, ToolSet

if TYPE_CHECKING:
    from shipyard.cost import InteractionBudget
    from shipyard.routing import Route, SessionRouter

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


class ToolGuard(Protocol):
    """The guardrails around each tool call of an interaction (`runtime._guarding.ToolGate`)."""

    async def before(
        self, name: str, arguments: dict[str, Any], span: Span
    ) -> tuple[dict[str, Any], ToolResult | None]:
        """The arguments to call with, and the result the agent gets instead when the call is
        refused (None: the tool runs)."""
        ...

    async def after(self, name: str, arguments: dict[str, Any], result: ToolResult, span: Span) -> ToolResult:
        """The result the agent gets for what the tool returned."""
        ...


class ToolCache(Protocol):
    """Idempotent tools' results for `ctx.tools` (`runtime._caching.ToolCacheHook`)."""

    def caches(self, name: str) -> bool:
        """Whether results of tool `name` may be served from the cache."""
        ...

    async def get(self, name: str, arguments: dict[str, Any]) -> ToolResult | None:
        """The cached result (`cached=True`) of the tool with these arguments, or None."""
        ...

    async def put(self, name: str, arguments: dict[str, Any], result: ToolResult) -> None: ...


class Trail:
    """What one interaction did: spans, model calls, tool calls, usage and cost, in order."""

    __slots__ = (
        "cost_usd",
        "features",
        "llm_calls",
        "loop",
        "replayed",
        "savings",
        "spans",
        "tool_calls",
        "usage",
    )

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.llm_calls: list[LLMCallRecord] = []
        self.tool_calls: list[ToolCallRecord] = []
        self.usage = Usage()
        self.cost_usd = 0.0
        self.savings: dict[str, float] = {}  # USD not spent, by reason ("cache", "routing", ...)
        self.features: list[str] = []  # what `ctx.tag_feature` and flags tagged (the cost ledger's)
        self.replayed = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def add_saving(self, reason: str, usd: float) -> None:
        """Note money this interaction did not spend thanks to `reason` (a cache hit, routing to a
        cheaper tier): the cost ledger records it next to what was spent."""
        self.savings[reason] = self.savings.get(reason, 0.0) + usd


class TraceSpans:
    """`Interaction.spans` (`shipyard.agents.SpanSink`): a framework's own spans, opened in the
    interaction's trace (under the `invoke_agent` span unless given another parent) and kept on
    its trail when they end, so they land on the record with the runtime's spans."""

    __slots__ = ("_parent", "_tracer", "_trail")

    def __init__(self, tracer: Tracer, parent: Span, trail: Trail) -> None:
        self._tracer = tracer
        self._parent = parent
        self._trail = trail

    def start(
        self,
        name: str,
        *,
        parent: Span | None = None,
        attributes: Mapping[str, Any] | None = None,
        start_ns: int | None = None,
    ) -> Span:
        return start_span(
            self._tracer, name, parent=parent or self._parent, attributes=attributes, start_ns=start_ns
        )

    def end(self, span: Span, *, error: str | None = None, end_ns: int | None = None) -> None:
        end_span(span, error=error, end_ns=end_ns)
        self._trail.spans.append(span)

    @property
    def root(self) -> Span:
        """The interaction's `invoke_agent` span."""
        return self._parent

    def adopt(self, span: Span) -> None:
        """Keep a finished span made elsewhere in this trace (by a framework that traces with
        OpenTelemetry itself) on the trail. Safe from any thread."""
        self._trail.spans.append(span)


def _parent_now(default: Span, owner: object) -> Span:
    """The parent of a span `ctx.llm` or `ctx.tools` (`owner`) opens now: the span a framework
    integration names for this moment (`Interaction.span_parent`, e.g. its current agent span),
    else the interaction's `invoke_agent` span."""
    interaction = current_interaction()
    if interaction is None or interaction.span_parent is None:
        return default
    if interaction.ctx.llm is not owner and interaction.ctx.tools is not owner:
        return default
    parent = interaction.span_parent()
    return parent if parent is not None else default


def _run_sync(trail: Trail, coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from the worker thread a sync agent runs in."""
    if trail.loop is None:
        raise RuntimeError("sync calls are only available to agents the runtime runs")
    return asyncio.run_coroutine_threadsafe(coro, trail.loop).result()


class TracedLLM:
    """`ctx.llm`: one chat call = one `chat {model}` span (plus one span per retry attempt, and
    span events for retries, give-ups, fallbacks and circuit breaker changes)."""

    __slots__ = (
        "_budget",
        "_capture",
        "_client",
        "_interceptor",
        "_parent",
        "_prices",
        "_router",
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
        capture_content: bool = False,
        router: SessionRouter | None = None,
        budget: InteractionBudget | None = None,
    ) -> None:
        self._budget = budget  # budgets: each call reserved before, settled after (None: no budgets)
        # `gen_ai.input.messages` / `gen_ai.output.messages` are opt-in content: only with capture on
        self._capture = capture_content
        self._router = router  # model routing: each call's tier and model (None: the configured model)
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
        step: str | None = None,
        **options: Unpack[ChatOptions],
    ) -> ChatResponse:
        """One model call. `options` (`ChatOptions`) go to the model and onto the span under their
        OTel GenAI names; temperature and max_tokens default to the version's model settings.
        `step` names the agent's step (`classify_intent`, `final_answer`): model routing can
        send steps to tiers of their own."""
        if options.get("temperature") is None:
            options["temperature"] = self.settings.get("temperature")
        if options.get("max_tokens") is None:
            options["max_tokens"] = self.settings.get("max_tokens")
        route = await self._router.route(messages, tools, step) if self._router is not None else None
        client = route.client if route is not None else self._client
        model_name = route.model if route is not None else self.model_name
        budget = self._budget
        # the call's worst case is held on its budgets (max_tokens lowered to the per-call cap); raises
        # BudgetExceeded when a budget has no room
        hold = (
            await budget.reserve(messages, tools, options, self._prices(model_name).rates_at(None))
            if budget is not None
            else None
        )
        requested = model_id(client)  # the provider's model id sent, not the config key
        attributes: dict[str, Any] = {
            sc.OPERATION: sc.OP_CHAT,
            sc.PROVIDER: getattr(client, "provider", "") or "unknown",  # failed calls keep it
            sc.REQUEST_MODEL: requested,
            sc.MODEL_KEY: model_name,
        }
        if route is not None:
            attributes.update(route_attributes(route))
        for key, value in options.items():
            if value is not None:
                attributes[sc.CHAT_OPTION_ATTRIBUTES[key]] = _option_attribute(key, value)
        if self._capture:
            attributes[sc.INPUT_MESSAGES] = input_messages_json(messages)
        span = start_span(
            self._tracer,
            sc.SPAN_CHAT.format(requested),
            parent=_parent_now(self._parent, self),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        t0 = time.perf_counter()

        started = False  # whether the model call ran (it then settles or releases its own hold)

        def release_unstarted() -> None:
            # the call never ran (a replay miss, a cancel before it started): nothing was spent
            if hold is not None and not started:
                hold.release()

        async def call() -> ChatResponse:
            nonlocal started
            started = True
            if hold is None:
                return await client.chat(messages, tools=tools, **options)
            try:
                return await client.chat(messages, tools=tools, **options)
            except asyncio.CancelledError:  # the client went away: the prompt was sent, and is paid for
                hold.release(keep_input=True)
                raise
            except BaseException:  # failed: nothing spent
                hold.release()
                raise

        replayed = False
        try:
            if self._interceptor is not None:
                # the keys of recordings made before other options existed stay the same
                request: dict[str, Any] = {
                    "messages": messages,
                    "tools": tools,
                    "temperature": options["temperature"],
                    "max_tokens": options["max_tokens"],
                }
                for key, value in options.items():
                    if value is not None and key not in request:
                        request[key] = value
                resp, replayed = await self._interceptor.llm_call(request, call)
            else:
                resp = await call()
        except LLMError as e:
            release_unstarted()
            span.set_attributes(_server_attributes(self._endpoint(e.attempts)))
            self._attempt_spans(span, e.attempts)
            self._trail.llm_calls.append(
                LLMCallRecord(
                    model=model_name,
                    provider=getattr(client, "provider", ""),
                    duration_ms=_ms_since(t0),
                    input_tokens=0,
                    output_tokens=0,
                    cached_input_tokens=0,
                    cost_usd=0.0,
                    attempts=len(e.attempts),
                    status="error",
                    error=str(e),
                    request_model=requested,
                    tier=route.tier if route is not None else None,
                )
            )
            end_span(span, error=str(e), error_type=e.kind)
            self._trail.spans.append(span)
            raise
        except BaseException:
            release_unstarted()
            raise
        cost = 0.0 if replayed else call_cost(self._prices(resp.model), resp.usage)
        u = resp.usage
        if hold is not None:
            hold.settle(u, cost)  # queued: it rides with the next reserve, the answer does not wait
        if route is not None and self._router is not None and resp.logprobs:
            self._router.answered(route, resp.logprobs)  # a low-confidence answer: the next call goes up
        if route is not None and not replayed and route.model != route.reference_model:
            # routed below the reference tier: what the same tokens cost there, minus what they cost
            saving = call_cost(self._prices(route.reference_model), u) - cost
            if saving > 0:
                span.set_attribute(sc.ROUTING_SAVING_USD, saving)
                self._trail.add_saving("routing", saving)
        # built in place, not from `**` of small dicts (this runs on every model call); this order
        done = dict(_server_attributes(self._endpoint(resp.attempts)))
        if resp.response_id:
            done[sc.RESPONSE_ID] = resp.response_id
        done[sc.PROVIDER] = resp.provider or span_provider(span)
        # what the provider reported, else the model id of the attempt that answered
        done[sc.RESPONSE_MODEL] = resp.response_model or _answered_by(resp.attempts, requested)
        done[sc.INPUT_TOKENS] = u.input_tokens
        done[sc.OUTPUT_TOKENS] = u.output_tokens
        done[sc.CACHE_READ_TOKENS] = u.cached_input_tokens
        if u.cache_write_input_tokens:
            done[sc.CACHE_WRITE_TOKENS] = u.cache_write_input_tokens
        if u.reasoning_tokens:
            done[sc.REASONING_TOKENS] = u.reasoning_tokens
        done[sc.FINISH_REASONS] = (resp.finish_reason,)
        done[sc.COST_USD] = cost
        done[sc.REPLAYED] = replayed
        span.set_attributes(done)
        if resp.logprobs:  # promptfoo's perplexity checks read these (not content: no capture needed)
            span.set_attribute(sc.LOGPROB_MEAN, sum(resp.logprobs) / len(resp.logprobs))
            span.set_attribute(sc.LOGPROB_TOKENS, len(resp.logprobs))
        if self._capture:
            span.set_attribute(sc.OUTPUT_MESSAGES, output_messages_json(resp))
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
                duration_ms=_ms_since(t0),
                input_tokens=u.input_tokens,
                output_tokens=u.output_tokens,
                cached_input_tokens=u.cached_input_tokens,
                cache_write_input_tokens=u.cache_write_input_tokens,
                reasoning_tokens=u.reasoning_tokens,
                cost_usd=cost,
                attempts=max(len(resp.attempts), 1),
                tool_calls=[tc.name for tc in resp.tool_calls],
                request_model=requested,
                tier=route.tier if route is not None else None,  # routed: the tier it was sent to
            )
        )
        return resp

    def _endpoint(self, attempts: list[Attempt]) -> str:
        """The endpoint that answered (or last refused): the last attempt's, else the client's."""
        return attempts[-1].endpoint if attempts else str(getattr(self._client, "endpoint", ""))

    def _attempt_spans(self, parent: Span, attempts: list[Attempt]) -> None:
        """One child span per attempt when there was more than one, or when the only one failed;
        retries, give-ups, fallbacks and breaker changes as events on the `chat` span.

        An attempt is an HTTP client span (`POST`, `http.request.resend_count` from the second on),
        not a GenAI operation: it has no `gen_ai.operation.name`, so GenAI-aware backends count the
        `chat {model}` span once, however many attempts it took."""
        if not attempts or (
            len(attempts) == 1 and attempts[0].outcome == "ok" and attempts[0].breaker is None
        ):
            return  # the usual call: one attempt, answered, the breaker unchanged
        _attempt_events(parent, attempts)
        if len(attempts) < 2 and all(a.outcome == "ok" for a in attempts):
            return
        for i, a in enumerate(attempts, 1):
            s = start_span(
                self._tracer,
                sc.SPAN_ATTEMPT,
                parent=parent,
                kind=SpanKind.CLIENT,
                start_ns=a.start_ns,
                attributes={
                    sc.HTTP_METHOD: "POST",
                    **({sc.HTTP_RESEND_COUNT: i - 1} if i > 1 else {}),
                    sc.REQUEST_MODEL: a.model_id or a.model,
                    sc.MODEL_KEY: a.model,
                    **_server_attributes(a.endpoint),
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


def route_attributes(route: Route) -> dict[str, Any]:
    """A routing decision as `chat` span attributes (`shipyard.routing.*`)."""
    out: dict[str, Any] = {
        sc.ROUTING_TIER: route.tier,
        sc.ROUTING_DECIDED_BY: route.decided_by,
        sc.ROUTING_REASONS: list(route.reasons),
        sc.ROUTING_ESCALATED: route.escalated,
    }
    if route.confidence is not None:
        out[sc.ROUTING_CONFIDENCE] = round(route.confidence, 4)
    if route.step is not None:
        out[sc.ROUTING_STEP] = route.step
    return out


def _parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as GenAI message parts (text; other content parts as they are)."""
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, list):
        return [
            {"type": "text", "content": p.get("text", "")}
            if isinstance(p, dict) and p.get("type") == "text"
            else p
            for p in content
        ]
    return [{"type": "text", "content": str(content)}]


def input_messages_json(messages: list[Message]) -> str:
    """`gen_ai.input.messages`: OpenAI-style chat messages in the GenAI conventions' schema (tool calls
    as `tool_call` parts, tool results as `tool_call_response` parts), as JSON."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = str(m.get("role", "user"))
        if role == "tool":
            parts = [
                {"type": "tool_call_response", "id": m.get("tool_call_id"), "response": m.get("content")}
            ]
        else:
            parts = _parts(m.get("content"))
            for tc in m.get("tool_calls") or ():
                fn = tc.get("function") or {}
                raw = fn.get("arguments")
                try:
                    args = orjson.loads(raw) if isinstance(raw, str) and raw.strip() else raw
                except orjson.JSONDecodeError:
                    args = raw
                parts.append(
                    {"type": "tool_call", "id": tc.get("id"), "name": fn.get("name", ""), "arguments": args}
                )
        out.append({"role": role, "parts": parts})
    return orjson.dumps(out, default=str).decode()


def output_messages_json(resp: ChatResponse) -> str:
    """`gen_ai.output.messages`: the model's answer in the GenAI conventions' schema, as JSON."""
    parts = _parts(resp.text)
    parts += [
        {"type": "tool_call", "id": tc.id, "name": tc.name, "arguments": tc.arguments}
        for tc in resp.tool_calls
    ]
    message = {"role": "assistant", "parts": parts, "finish_reason": resp.finish_reason}
    return orjson.dumps([message], default=str).decode()


def server_attributes(endpoint: str) -> dict[str, Any]:
    """`server.address` and `server.port` of a `host:port` endpoint (none for an in-process model)."""
    return dict(_server_attributes(endpoint))


@functools.lru_cache(maxsize=256)  # a process calls a few endpoints, each on every model call
def _server_attributes(endpoint: str) -> dict[str, Any]:
    """`server_attributes`, shared: only read (spread into other attributes), never changed."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return {}
    return {sc.SERVER_ADDRESS: host.strip("[]"), sc.SERVER_PORT: int(port)}


def span_provider(span: Span) -> str:
    attributes = getattr(span, "attributes", None) or {}
    return str(attributes.get(sc.PROVIDER, "unknown"))


def _option_attribute(key: str, value: Any) -> Any:
    """A request option as a span attribute value (a primitive or a list of strings)."""
    if key == "stop":
        return [value] if isinstance(value, str) else [str(v) for v in value]
    if key == "response_format":
        kind = value.get("type") if isinstance(value, dict) else None
        return "json" if kind in ("json_object", "json_schema") else "text"
    if key == "tool_choice" and not isinstance(value, str):
        return orjson.dumps(value, default=str).decode()
    return value


def _attempt_events(span: Span, attempts: list[Attempt]) -> None:
    """Span events, at the end of the attempt they follow: `shipyard.llm.breaker` (the attempt's
    result changed its breaker's state), `shipyard.llm.retry` (another attempt of the same model
    follows, after `wait_s`), `shipyard.llm.give_up` (the model stopped trying, and why) and
    `shipyard.llm.fallback` (the next model of the chain is asked)."""
    for i, a in enumerate(attempts):
        base: dict[str, Any] = {
            sc.REQUEST_MODEL: a.model_id or a.model,
            sc.MODEL_KEY: a.model,
            **_server_attributes(a.endpoint),
            sc.ATTEMPT: i + 1,
        }
        if a.breaker is not None:
            span.add_event(
                sc.EVENT_LLM_BREAKER,
                {**base, sc.LLM_BREAKER_FROM: a.breaker[0], sc.LLM_BREAKER_TO: a.breaker[1]},
                timestamp=a.end_ns,
            )
        if a.wait_s is not None:
            span.add_event(
                sc.EVENT_LLM_RETRY,
                {**base, sc.ATTEMPT_OUTCOME: a.outcome, sc.LLM_WAIT_S: a.wait_s},
                timestamp=a.end_ns,
            )
        if a.gave_up is not None:
            span.add_event(
                sc.EVENT_LLM_GIVE_UP,
                {**base, sc.ATTEMPT_OUTCOME: a.outcome, sc.LLM_GIVE_UP_REASON: a.gave_up},
                timestamp=a.end_ns,
            )
        if i + 1 < len(attempts) and attempts[i + 1].model != a.model:
            span.add_event(
                sc.EVENT_LLM_FALLBACK,
                {sc.LLM_FALLBACK_FROM: a.model, sc.LLM_FALLBACK_TO: attempts[i + 1].model, sc.ATTEMPT: i + 1},
                timestamp=a.end_ns,
            )


def _answered_by(attempts: list[Attempt], requested: str) -> str:
    """The provider's model id of the last attempt (the one that answered), else `requested`."""
    last = attempts[-1] if attempts else None
    return (last.model_id or last.model) if last is not None else requested


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _arguments(arguments: dict[str, Any] | str) -> dict[str, Any]:
    """Tool arguments as a mapping: JSON text is parsed; text that is not a JSON object is kept as
    `{"__invalid_json__": text}` (as for a model's tool calls), so the record shows what was sent."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str):
        return dict(arguments)
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"__invalid_json__": arguments}


def _refused(name: str, arguments: dict[str, Any], e: BaseException) -> ToolResult:
    """The record of a call whose guardrail check raised: it did not run (or its value is withheld)."""
    return ToolResult(name, arguments, "blocked", error=f"{type(e).__name__}: {e}"[:1000])


class TracedTools:
    """`ctx.tools`: one call = one `execute_tool {name}` span; arguments checked before the call.
    Tools the agent's framework runs itself are recorded the same way through `observe`. With a
    `guard`, the agent's tool_call guardrails run before each tool (a refused call does not run: the
    agent gets a `blocked` result, or `ToolRefusedError` from `observe`) and its tool_result
    guardrails on what the tool returned."""

    __slots__ = (
        "_cache",
        "_capture",
        "_definitions",
        "_guard",
        "_interceptor",
        "_parent",
        "_registry",
        "_tracer",
        "_trail",
    )

    def __init__(
        self,
        registry: ToolSet,
        definitions: list[dict[str, Any]],
        tracer: Tracer,
        parent: Span,
        trail: Trail,
        interceptor: CallInterceptor | None = None,
        guard: ToolGuard | None = None,
        *,
        capture_content: bool = False,
        cache: ToolCache | None = None,
    ) -> None:
        self._cache = cache  # idempotent tools' result cache (None: every call runs its tool)
        # `gen_ai.tool.call.arguments` is an opt-in (content) attribute: on spans only with content
        # capture on (`server.content_capture`); the record keeps the arguments either way
        self._capture = capture_content
        self._registry = registry
        self._definitions = definitions
        self._tracer = tracer
        self._parent = parent
        self._trail = trail
        self._interceptor = interceptor
        self._guard = guard

    def definitions(self) -> list[dict[str, Any]]:
        return self._definitions

    def names(self) -> list[str]:
        return self._registry.names()

    async def call(self, name: str, /, **arguments: Any) -> ToolResult:
        return await self._call(name, arguments, None)

    async def run(self, tool_call: ToolCall) -> ToolResult:
        return await self._call(tool_call.name, tool_call.arguments, tool_call.id)

    async def _call(self, name: str, arguments: dict[str, Any], call_id: str | None) -> ToolResult:
        span = self._start(name, call_id)
        args, refused = await self._checked_call(span, name, arguments)
        if refused is not None:
            return refused
        cache = self._cache if self._cache is not None and self._cache.caches(name) else None
        hit = await cache.get(name, args) if cache is not None else None
        if hit is not None:  # served from the tool cache: the tool does not run
            result, replayed = hit, False
        elif self._interceptor is not None:
            result, replayed = await self._interceptor.tool_call(
                name, args, lambda: self._registry.call(name, args)
            )
        else:
            result, replayed = await self._registry.call(name, args), False
        if cache is not None and hit is None and not replayed and result.ok:
            await cache.put(name, args, result)
        result = await self._checked_result(span, name, args, result, replayed)
        self._finish(span, name, args, result, replayed)
        return result

    async def _checked_call(
        self, span: Span, name: str, arguments: dict[str, Any]
    ) -> tuple[dict[str, Any], ToolResult | None]:
        """The guard's tool_call checks: the arguments to run with, and the refusal when the call
        must not run (already recorded on the span and the trail). A check that raises is recorded
        as a refused call and re-raised."""
        if self._guard is None:
            return arguments, None
        try:
            arguments, refused = await self._guard.before(name, arguments, span)
        except BaseException as e:
            self._finish(span, name, arguments, _refused(name, arguments, e), False)
            raise
        if refused is not None:
            self._finish(span, name, arguments, refused, False)
        return arguments, refused

    async def _checked_result(
        self, span: Span, name: str, arguments: dict[str, Any], result: ToolResult, replayed: bool
    ) -> ToolResult:
        """The guard's tool_result checks: the result the agent gets. A check that raises is
        recorded as a withheld result and re-raised."""
        if self._guard is None:
            return result
        try:
            return await self._guard.after(name, arguments, result, span)
        except BaseException as e:
            self._finish(span, name, arguments, _refused(name, arguments, e), replayed)
            raise

    def _start(self, name: str, call_id: str | None) -> Span:
        return start_span(
            self._tracer,
            sc.SPAN_TOOL.format(name),
            parent=_parent_now(self._parent, self),
            attributes={
                sc.OPERATION: sc.OP_TOOL,
                sc.TOOL_NAME: name,
                sc.TOOL_TYPE: "function",
                **({sc.TOOL_CALL_ID: call_id} if call_id else {}),
            },
        )

    def _finish(
        self, span: Span, name: str, arguments: dict[str, Any], result: ToolResult, replayed: bool
    ) -> None:
        """End a tool's span and add its record to the trail."""
        span.set_attributes(
            {
                sc.TOOL_STATUS: result.status,
                sc.TOOL_CACHED: result.cached,
                sc.REPLAYED: replayed,
            }
        )
        if self._capture:
            span.set_attribute(sc.TOOL_ARGUMENTS, orjson.dumps(arguments, default=str).decode())
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

    async def observe(
        self,
        name: str,
        arguments: dict[str, Any] | str,
        run: Callable[[], Awaitable[Any]],
        *,
        call_id: str | None = None,
    ) -> Any:
        """Record a tool call the agent's framework executes itself (its tools are not declared a
        second time): one `execute_tool {name}` span and one tool-call record with the arguments,
        the result, the status (success, or error with the exception's text) and the duration.

        Args:
            name: the tool's name.
            arguments: the arguments, as a mapping or as the JSON text the model sent.
            run: awaited to run the tool; its value is returned.
            call_id: the model's tool-call id, if the framework has it.

        The call goes through the interaction's CallInterceptor: in an eval replay, `run` is not
        called and the recorded value is returned (a recorded failure raises ReplayedToolError,
        whose text is the original exception's).
        An exception `run` raises is recorded, then re-raised to the framework unchanged."""
        span = self._start(name, call_id)
        args, refused = await self._checked_call(span, name, _arguments(arguments))
        if refused is not None:
            raise ToolRefusedError(refused.error or f"{name} was refused")
        raised: list[BaseException] = []

        async def call() -> ToolResult:
            t0 = time.perf_counter()
            try:
                value = await run()
            except Exception as e:  # recorded here, re-raised below, after the interceptor kept it
                raised.append(e)
                return ToolResult(
                    name,
                    args,
                    "error",
                    value={"type": type(e).__name__, "message": str(e)},  # what a replay raises
                    error=f"{type(e).__name__}: {e}",
                    duration_ms=_ms_since(t0),
                )
            return ToolResult(name, args, "success", value=value, duration_ms=_ms_since(t0))

        t0 = time.perf_counter()
        try:
            if self._interceptor is not None:
                result, replayed = await self._interceptor.tool_call(name, args, call)
            else:
                result, replayed = await call(), False
        except BaseException as e:  # cancelled, or a replay without this call: recorded, re-raised
            failed = ToolResult(
                name, args, "error", error=f"{type(e).__name__}: {e}", duration_ms=_ms_since(t0)
            )
            self._finish(span, name, args, failed, False)
            raise
        if not raised:
            result = await self._checked_result(span, name, args, result, replayed)
            if result.status == "blocked":
                self._finish(span, name, args, result, replayed)
                raise ToolRefusedError(result.error or f"the result of {name} was withheld")
        self._finish(span, name, args, result, replayed)
        if raised:
            raise raised[0]
        if not result.ok:
            raised_then = result.value if isinstance(result.value, dict) else {}
            raise ReplayedToolError(
                str(raised_then.get("message", result.error or f"tool {name!r} failed")),
                str(raised_then.get("type", "Exception")),
            )
        return result.value

    def observe_sync(
        self,
        name: str,
        arguments: dict[str, Any] | str,
        run: Callable[[], Any],
        *,
        call_id: str | None = None,
    ) -> Any:
        """`observe` for a sync tool called from a worker thread (a sync framework): the record is
        kept on the interaction's loop, and `run()` runs here, in the calling thread, only when the
        call is not replayed. Raises RuntimeError on the loop's own thread (use `observe`)."""
        loop = self._trail.loop
        if loop is None:
            raise RuntimeError("sync calls are only available to agents the runtime runs")
        if _running_loop() is loop:
            raise RuntimeError(
                f"ctx.tools.observe_sync({name!r}) was called on the interaction's event loop, which it "
                "would block; await ctx.tools.observe(...) there instead"
            )
        wake = threading.Event()
        asked: list[bool] = []
        outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()

        async def run_in_caller() -> Any:
            asked.append(True)
            wake.set()
            return await asyncio.wrap_future(outcome)

        done = asyncio.run_coroutine_threadsafe(
            self.observe(name, arguments, run_in_caller, call_id=call_id), loop
        )
        done.add_done_callback(lambda _: wake.set())
        wake.wait()
        if asked:
            try:
                outcome.set_result(run())
            except BaseException as e:
                outcome.set_exception(e)
        return done.result()

    def call_sync(self, name: str, /, **arguments: Any) -> ToolResult:
        """`call` for sync agents (they run in a worker thread)."""
        return _run_sync(self._trail, self.call(name, **arguments))

    def run_sync(self, tool_call: ToolCall) -> ToolResult:
        return _run_sync(self._trail, self.run(tool_call))
