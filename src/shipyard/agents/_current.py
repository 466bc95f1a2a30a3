"""The interaction an agent call belongs to, for code that is not handed `ctx`: a framework's HTTP
client, its tool wrappers, its callbacks. The runtime sets it around the agent call
(`interaction_scope`); asyncio tasks and `asyncio.to_thread` copy context variables, so each of
several concurrent interactions sees its own.

    ctx = current_context()          # None outside an interaction
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from shipyard.agents._contract import AgentContext

T = TypeVar("T")


class SpanSink(Protocol):
    """Spans in one interaction's trace, for a framework's own spans (its agents, turns, handoffs):
    the runtime gives each interaction one (`Interaction.spans`). Spans are OpenTelemetry spans;
    one ended through `end` lands on the interaction's record with the runtime's own spans."""

    def start(
        self,
        name: str,
        *,
        parent: Any | None = None,
        attributes: Mapping[str, Any] | None = None,
        start_ns: int | None = None,
    ) -> Any:
        """Start a span under `parent` (a span this sink started; default: the `invoke_agent` span)."""
        ...

    def end(self, span: Any, *, error: str | None = None, end_ns: int | None = None) -> None:
        """End a span this sink started (with an error status when `error` is given) and keep it."""
        ...

    @property
    def root(self) -> Any:
        """The interaction's `invoke_agent` span (the parent of a framework's own top spans)."""
        ...

    def adopt(self, span: Any) -> None:
        """Keep a finished span made elsewhere in this trace (a framework tracing with OpenTelemetry
        itself, under `root`) on the interaction's record. Safe from any thread."""
        ...


class Interaction:
    """One running agent call: its context, the event loop it runs on, and what to do when it ends.

    Attributes:
        ctx: the agent's context (`ctx.llm`, `ctx.tools`, ...).
        loop: the event loop the interaction runs on; `ctx.llm` and `ctx.tools` are called there.
        model_failure: the last model error a proxied call answered with an HTTP error (set by
            `shipyard.integrations`), so a framework exception that follows it is reported as the
            model failure it is.
        spans: opens spans in the interaction's trace (None outside a traced run, e.g. a warm-up).
        span_parent: set by a framework integration: returns the span (from `spans`) that the
            spans `ctx.llm` and `ctx.tools` open now should hang under, e.g. the mirror of the
            framework's current agent span, or None for the `invoke_agent` span. It is called in
            the context of the model or tool call, so it can read the framework's context variables.
    """

    __slots__ = ("_on_end", "ctx", "ended", "loop", "model_failure", "span_parent", "spans")

    def __init__(
        self, ctx: AgentContext, loop: asyncio.AbstractEventLoop, spans: SpanSink | None = None
    ) -> None:
        self.ctx = ctx
        self.loop = loop
        self.ended = False
        self.model_failure: Exception | None = None
        self.spans = spans
        self.span_parent: Callable[[], Any | None] | None = None
        self._on_end: list[Callable[[], None]] = []

    def on_end(self, fn: Callable[[], None]) -> None:
        """Call `fn` when the agent call ends (at once if it has ended). `fn` must not raise."""
        if self.ended:
            fn()
        else:
            self._on_end.append(fn)

    def end(self) -> None:
        """Mark the interaction ended and run the `on_end` callbacks (the runtime calls this)."""
        self.ended = True
        callbacks, self._on_end = self._on_end, []
        for fn in callbacks:
            fn()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the interaction's loop, from any event loop (a framework may run its own
        loop in another thread): directly when already on it, else handed over and awaited."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the interaction's loop and wait for it, from a worker thread (a sync
        framework call). Raises RuntimeError when called on the loop's own thread: waiting there
        would block the loop the call needs."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coro.close()
            raise RuntimeError(
                "a blocking (sync) call was made on the interaction's event loop, which it would "
                "block; use the async client, or run the sync code in a worker thread "
                "(asyncio.to_thread)"
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


_CURRENT: ContextVar[Interaction | None] = ContextVar("shipyard_interaction", default=None)


def current_interaction() -> Interaction | None:
    """The interaction the calling code runs in, or None outside any."""
    return _CURRENT.get()


def current_context() -> AgentContext | None:
    """The `AgentContext` of the interaction the calling code runs in, or None outside any."""
    it = _CURRENT.get()
    return it.ctx if it is not None else None


@contextlib.contextmanager
def interaction_scope(ctx: AgentContext, spans: SpanSink | None = None) -> Iterator[Interaction]:
    """Make `ctx` the current context for the code run inside (the runtime wraps each agent call);
    on exit the interaction ends (its `on_end` callbacks run). Must be entered on the event loop
    the interaction runs on. `spans` opens spans in the interaction's trace (`Interaction.spans`)."""
    interaction = Interaction(ctx, asyncio.get_running_loop(), spans)
    token = _CURRENT.set(interaction)
    try:
        yield interaction
    finally:
        _CURRENT.reset(token)
        interaction.end()
