"""What model clients report as it happens: retries, give-ups, fallbacks and breaker transitions.

The llm package does not import observe (DESIGN.md §3); whoever observes (the server's `Metrics`)
subscribes a listener here. Listeners run synchronously in the calling thread, so they must be quick
(a counter increment); an exception in one is logged and never reaches the model call. With no
listener registered, clients build no event at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

EventKind = Literal["retry", "give_up", "fallback", "breaker"]

_log = logging.getLogger("shipyard.llm")


@dataclass(frozen=True, slots=True)
class LLMEvent:
    """One thing a model client did besides a plain successful call.

    Attributes:
        kind: `retry` (an attempt failed and another follows), `give_up` (a model stopped trying:
            its call fails, or the next fallback model is asked), `fallback` (the next model of a
            chain is asked), `breaker` (a circuit breaker changed state).
        model: the model (its config key) the event is about; for `fallback`, the model that failed.
        endpoint: `host:port` of the model's endpoint ("" for `fallback`).
        reason: `retry`: the failed attempt's outcome (`http_5xx`, `http_429`, `timeout`,
            `connect_error`); `give_up`: `retries_exhausted`, `rate_limit_retries_exhausted`,
            `retry_after_too_long`, `circuit_open` or `not_retryable` (a 4xx, an unreadable answer); `fallback`: the failed model's error kind;
            `breaker`: the state it left (`closed`, `open`, `half_open`).
        target: `fallback`: the model asked next; `breaker`: the state it entered; else "".
        wait_s: `retry`: how long the client waits before the next attempt.
    """

    kind: EventKind
    model: str
    endpoint: str
    reason: str
    target: str = ""
    wait_s: float = 0.0


Listener = Callable[[LLMEvent], None]

_LISTENERS: tuple[Listener, ...] = ()
_LOCK = threading.Lock()


def add_listener(listener: Listener) -> Callable[[], None]:
    """Call `listener(event)` for every LLMEvent of every client in this process.

    Returns the function that removes it again (call it when the observer goes away)."""
    global _LISTENERS
    with _LOCK:
        _LISTENERS = (*_LISTENERS, listener)

    def remove() -> None:
        global _LISTENERS
        with _LOCK:
            found = list(_LISTENERS)
            if listener in found:
                found.remove(listener)
            _LISTENERS = tuple(found)

    return remove


def listening() -> bool:
    """Is anyone listening? (Callers skip building events when not.)"""
    return bool(_LISTENERS)


def emit(event: LLMEvent) -> None:
    """Hand `event` to every listener; a failing listener is logged, never raised."""
    for listener in _LISTENERS:
        try:
            listener(event)
        except Exception:
            _log.exception("an LLM event listener failed on %s", event.kind)
