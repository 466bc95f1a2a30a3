"""A circuit breaker per endpoint: stop calling an endpoint that keeps failing, probe it again later."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed -> open after `failure_threshold` consecutive failures -> half-open after `cooldown_s`,
    when exactly one probe call is let through: its success closes the circuit, its failure opens it again.

    Args:
        failure_threshold: consecutive failed attempts that open the circuit.
        cooldown_s: how long an open circuit fails fast before one probe is allowed.
        clock: a monotonic clock in seconds (tests may pass their own).
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None

    @property
    def state(self) -> str:
        """`closed`, `open` or `half_open` (an open circuit past its cooldown reads as half-open)."""
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.cooldown_s:
                return HALF_OPEN
            return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May a call go out now? In half-open state only the first caller (the probe) gets True.
        A probe that never reports back is replaced after another cooldown."""
        with self._lock:
            if self._state == CLOSED:
                return True
            now = self._clock()
            if self._state == OPEN:
                if now - self._opened_at < self.cooldown_s:
                    return False
                self._state = HALF_OPEN
                self._probe_started = now
                return True
            # half-open: a probe is out
            if self._probe_started is not None and now - self._probe_started >= self.cooldown_s:
                self._probe_started = now
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._probe_started = None

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = OPEN
                self._opened_at = self._clock()
                self._probe_started = None

    def reset(self) -> None:
        """Back to closed with no failures counted."""
        self.record_success()


_BREAKERS: dict[str, CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker_for(endpoint: str, *, failure_threshold: int = 5, cooldown_s: float = 30.0) -> CircuitBreaker:
    """The process-wide breaker of an endpoint (its base URL), created on first use with these settings."""
    key = endpoint.rstrip("/")
    with _BREAKERS_LOCK:
        found = _BREAKERS.get(key)
        if found is None:
            found = _BREAKERS[key] = CircuitBreaker(failure_threshold, cooldown_s)
        return found


def reset_breakers() -> None:
    """Forget every shared breaker (for tests and long-lived processes that reload config)."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()
