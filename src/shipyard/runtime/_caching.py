"""The caches in the pipeline: `cache_lookup` answers from the exact or semantic cache, `cache_store`
keeps a good answer, and `ToolCacheHook` serves idempotent tools' results to `ctx.tools`.

What is never cached: errors, failed or escalated interactions, answers a guardrail blocked, changed
or flagged, interactions with a failed model or tool call (an agent's "sorry, we are having trouble"
is a refusal caused by an outage, not an answer), answers with an `error_kind` (budget_exceeded,
timeouts), replays, and traffic other than `cache.traffic_sources` (evals always run the agent).
An answer that called a tool is cached only when every tool it called is under `cache.tools` (an
idempotent tool whose results the project allows to be reused for its TTL): replaying an answer skips
its tools, so a tool with an effect (a refund) or whose data may change at any time (an order's
status) makes the answer uncacheable; the answer then lives no longer than the shortest of those
tools' TTLs. The semantic cache takes single-turn answers that called no tool only.
A cache that fails (Redis down) is a miss, logged; it never fails the interaction.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span

from shipyard.cache import CachedAnswer, Caches, Scope
from shipyard.flags import interaction_context
from shipyard.observe import end_span, log_event, start_span
from shipyard.observe import semconv as sc
from shipyard.types import ToolResult

if TYPE_CHECKING:
    from shipyard.runtime._pipeline import Exchange
    from shipyard.runtime._runtime import Runtime


def _eligible(ex: Exchange, rt: Runtime) -> Caches | None:
    caches = rt.caches
    if caches is None or ex.traffic_source not in caches.traffic_sources or ex.interceptor is not None:
        return None
    return caches


def _scope(ex: Exchange, caches: Caches) -> Scope:
    """The request's scope, worked out once, before the agent runs (its metadata as the caller sent it)."""
    if ex.cache_scope is None:
        assert ex.version is not None
        ex.cache_scope = caches.scope(ex.agent, ex.version.id, ex.metadata, ex.user_id)
    scope: Scope = ex.cache_scope
    return scope


def _failed_cache(op: str, ex: Exchange, e: BaseException) -> None:
    log_event(
        "cache_error", level="warning", op=op, interaction_id=ex.id, error=f"{type(e).__name__}: {e}"[:300]
    )


def _flags_match(ex: Exchange, rt: Runtime, wanted: dict[str, str]) -> bool:
    """Whether this request would get the flag variants the cached answer was made under."""
    if not wanted:
        return True
    store = rt.flags
    if store is None:
        return False
    v = ex.version
    context = interaction_context(
        session_id=ex.session_id, user_id=ex.user_id, agent=ex.agent, version=v.label if v else None
    )
    for flag, variant in wanted.items():
        try:
            details = store.evaluate(flag, None, context)
        except Exception:
            return False
        if str(details.variant) != variant:
            return False
    return True


async def cache_lookup(ex: Exchange, rt: Runtime) -> None:
    """Answer from the exact cache, else from the semantic cache (single-turn requests only). A hit
    answers the request (`exchange.answer`), notes the saving (the cost of the interaction it
    replays) and says on its `cache_lookup` span which cache answered and, for a semantic hit, the
    similarity."""
    caches = _eligible(ex, rt)
    if caches is None:
        return
    assert ex.root is not None
    scope = _scope(ex, caches)
    if caches.exact is not None:
        span = _span(rt, ex, "exact")
        error = None
        try:
            answer = await caches.exact.get(scope, ex.user_input, ex.history)
        except Exception as e:  # the backend is down: a miss, never a failed interaction
            _failed_cache("exact_get", ex, e)
            answer, error = None, f"{type(e).__name__}: {e}"[:300]
        if answer is not None and not _flags_match(ex, rt, answer.flags):
            span.set_attribute(sc.CACHE_REJECTED, ["flags"])
            answer = None
        if answer is not None:
            _hit(ex, span, "exact", answer, None)
            return
        span.set_attribute(sc.CACHE_HIT, False)
        _end(ex, span, error=error)
    if caches.semantic is not None and not ex.history:
        span = _span(rt, ex, "semantic")
        try:
            found = await caches.semantic.lookup(scope, ex.user_input)
        except Exception as e:
            _failed_cache("semantic_lookup", ex, e)
            span.set_attribute(sc.CACHE_HIT, False)
            _end(ex, span, error=f"{type(e).__name__}: {e}"[:300])
            return
        span.set_attribute(sc.CACHE_SIMILARITY, round(found.similarity, 4))
        rejected = list(found.rejected)
        answer = found.answer
        if answer is not None and not _flags_match(ex, rt, answer.flags):
            rejected.append("flags")
            answer = None
        if rejected:
            span.set_attribute(sc.CACHE_REJECTED, rejected)
        if answer is not None:
            _hit(ex, span, "semantic", answer, found.similarity)
            return
        span.set_attribute(sc.CACHE_HIT, False)
        _end(ex, span)


def _span(rt: Runtime, ex: Exchange, kind: str) -> Span:
    return start_span(
        rt.tracer,
        sc.SPAN_CACHE.format(kind),
        parent=ex.root,
        attributes={sc.SHIPYARD_OPERATION: sc.OP_CACHE, sc.CACHE_KIND: kind},
    )


def _end(ex: Exchange, span: Span, error: str | None = None) -> None:
    end_span(span, error=error, error_type="cache_error")
    ex.trail.spans.append(span)


def _hit(ex: Exchange, span: Span, kind: str, answer: CachedAnswer, similarity: float | None) -> None:
    span.set_attributes({sc.CACHE_HIT: True, sc.CACHE_SAVED_USD: answer.cost_usd})
    _end(ex, span)
    ex.answer(answer.output, by="cache_lookup")
    ex.trail.add_saving("cache", answer.cost_usd)
    hit: dict[str, Any] = {
        "kind": kind,
        "saved_usd": answer.cost_usd,
        "age_s": round(time.time() - answer.created_at, 3),
    }
    if similarity is not None:
        hit["similarity"] = round(similarity, 4)
    if answer.interaction_id:
        hit["source_interaction"] = answer.interaction_id
    ex.metadata["cache"] = hit


def _uncacheable(ex: Exchange, caches: Caches) -> str | None:
    """Why this interaction's answer must not be kept, or None when it may."""
    result = ex.result
    if result is None or ex.answered_by is not None:
        return "not answered by the agent"
    status = ex.status or result.status
    if ex.error or status != "completed" or ex.escalated:
        return f"status {status}"
    if ex.guardrails:
        return "a guardrail acted"
    if "error_kind" in result.metadata or "error_kind" in ex.metadata or "budget_exceeded" in result.metadata:
        return "an error kind"
    if not isinstance(result.output, str) or not result.output.strip():
        return "no text answer"
    trail = ex.trail
    if trail.replayed:
        return "replayed"
    if any(c.status != "ok" for c in trail.llm_calls):
        return "a model call failed"
    cached_tools = caches.tools.ttls if caches.tools is not None else {}
    for t in trail.tool_calls:
        if t.status != "success":
            return f"tool {t.name} did not succeed"
        if t.name not in cached_tools:
            return f"tool {t.name} is not under cache.tools (its data may change at any time)"
    return None


def _flags_of(ex: Exchange) -> dict[str, str]:
    return {
        str(d["flag"]): str(d.get("variant")) for d in ex.metadata.get("flags") or () if isinstance(d, dict)
    }


async def cache_store(ex: Exchange, rt: Runtime) -> None:
    """Keep the agent's answer in the exact cache (and, when it was a single-turn answer that called
    no tool, in the semantic cache), when it may be kept (see the module docstring). Its TTL is the
    cache's, cut to the shortest TTL of the cached tools it used (the answer is no fresher than them)."""
    caches = _eligible(ex, rt)
    if caches is None or (caches.exact is None and caches.semantic is None):
        return
    if _uncacheable(ex, caches) is not None:
        return
    assert ex.result is not None
    trail = ex.trail
    answer = CachedAnswer(
        output=ex.result.output,
        cost_usd=trail.cost_usd,
        input_tokens=trail.usage.input_tokens,
        output_tokens=trail.usage.output_tokens,
        flags=_flags_of(ex),
        interaction_id=ex.id,
    )
    ttl: float | None = None
    if trail.tool_calls and caches.tools is not None:
        ttls = [caches.tools.ttls[t.name] for t in trail.tool_calls if t.name in caches.tools.ttls]
        ttl = min(ttls) if ttls else None
    scope = _scope(ex, caches)
    if caches.exact is not None:
        try:
            await caches.exact.put(scope, ex.user_input, ex.history, answer, ttl)
        except Exception as e:
            _failed_cache("exact_put", ex, e)
    if caches.semantic is not None and not ex.history and not trail.tool_calls:
        if any(c.tool_calls for c in trail.llm_calls):
            return
        try:
            await caches.semantic.put(scope, ex.user_input, answer, ttl)
        except Exception as e:
            _failed_cache("semantic_put", ex, e)


class ToolCacheHook:
    """Idempotent tools' results for one interaction's `ctx.tools`: looked up before a tool runs,
    kept after it succeeds (`runtime._handles.TracedTools`)."""

    __slots__ = ("_audience", "_cache", "_ex")

    def __init__(self, ex: Exchange, caches: Caches) -> None:
        assert caches.tools is not None
        self._cache = caches.tools
        self._ex = ex
        self._audience = _scope(ex, caches).audience

    def caches(self, name: str) -> bool:
        return self._cache.caches(name)

    async def get(self, name: str, arguments: dict[str, Any]) -> ToolResult | None:
        try:
            return await self._cache.get(name, arguments, self._audience)
        except Exception as e:
            _failed_cache("tool_get", self._ex, e)
            return None

    async def put(self, name: str, arguments: dict[str, Any], result: ToolResult) -> None:
        try:
            await self._cache.put(name, arguments, self._audience, result)
        except Exception as e:
            _failed_cache("tool_put", self._ex, e)


def tool_cache(ex: Exchange, rt: Runtime) -> ToolCacheHook | None:
    """The tool cache of `ex`'s `ctx.tools` (None: no tool is cached for this traffic)."""
    caches = _eligible(ex, rt)
    if caches is None or caches.tools is None:
        return None
    return ToolCacheHook(ex, caches)
