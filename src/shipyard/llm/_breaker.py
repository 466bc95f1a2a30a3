"""A circuit breaker per (endpoint, model): stop calling a model whose calls mostly fail, probe it later.

The rule, in the words of `shipyard.yaml` (`models.<key>.breaker`):

- **closed**: every call goes out. Each attempt's result is counted in a sliding time window of
  `window_s` seconds (kept as 10 slices, so the oldest slice leaves in one step). Once the window
  holds at least `min_calls` counted attempts and the share that failed is at least `failure_rate`,
  the circuit opens.
- **open**: calls fail fast (outcome `circuit_open`), so a fallback model answers at once, for
  `cooldown_s` seconds.
- **half_open**: after the cooldown, up to `half_open_probes` calls go out as probes; the others
  still fail fast. When the share of failed probes reaches `failure_rate` the circuit opens again for
  another cooldown; when every probe has answered below that share it closes, with an empty window.
  Probes that never report back are replaced after another cooldown.

What counts: HTTP 5xx, timeouts and connection errors are failures; any other answer of the endpoint
(2xx, and 4xx other than 429: the request was wrong, the endpoint is up) is a success. A 429 is
back-pressure, not a fault: it is not counted at all (and frees its probe slot when half-open).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from shipyard.llm._events import LLMEvent, emit, listening

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

_SLICES = 10


class CircuitBreaker:
    """Closed -> open on a failure rate over a sliding window -> half-open probes -> closed or open.

    Args:
        failure_rate: share of failed attempts in the window (0 < rate <= 1) that opens the circuit.
        window_s: length of the sliding window in seconds.
        min_calls: attempts the window must hold before its failure rate can open the circuit.
        cooldown_s: how long an open circuit fails fast before probes are let through.
        half_open_probes: calls let through when half-open; their results close or reopen it.
        endpoint, model: what the breaker guards, as its state changes report it (`host:port`,
            the model's config key).
        clock: a monotonic clock in seconds (tests pass their own).

    Thread-safe; each method takes one short lock. State changes are reported as `breaker`
    LLMEvents (see `shipyard.llm.add_listener`) after the lock is released.
    """

    def __init__(
        self,
        failure_rate: float = 0.5,
        window_s: float = 60.0,
        min_calls: int = 50,
        cooldown_s: float = 30.0,
        half_open_probes: int = 3,
        *,
        endpoint: str = "",
        model: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < failure_rate <= 1:
            raise ValueError("failure_rate must be more than 0 and at most 1")
        if window_s <= 0 or cooldown_s <= 0:
            raise ValueError("window_s and cooldown_s must be positive")
        if min_calls < 1 or half_open_probes < 1:
            raise ValueError("min_calls and half_open_probes must be at least 1")
        self.failure_rate = failure_rate
        self.window_s = window_s
        self.min_calls = min_calls
        self.cooldown_s = cooldown_s
        self.half_open_probes = half_open_probes
        self.endpoint = endpoint
        self.model = model
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._slice_s = window_s / _SLICES
        self._calls = [0] * _SLICES
        self._fails = [0] * _SLICES
        self._slice_no = [-1] * _SLICES
        self._opened_at = 0.0
        self._round_started = 0.0  # when the current half-open round began
        self._probes_out = 0
        self._probe_ok = 0
        self._probe_failed = 0

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.endpoint!r}, {self.model!r}, state={self._state!r})"

    # reading -----------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """`closed`, `open` or `half_open` (an open circuit becomes half-open when the first probe
        goes out after the cooldown)."""
        return self._state

    def window(self) -> tuple[int, int]:
        """(attempts, failed attempts) counted in the current window."""
        with self._lock:
            return self._totals(self._clock())

    def _totals(self, now: float) -> tuple[int, int]:
        oldest = int(now / self._slice_s) - _SLICES + 1
        calls = fails = 0
        for i in range(_SLICES):
            if self._slice_no[i] >= oldest:
                calls += self._calls[i]
                fails += self._fails[i]
        return calls, fails

    # deciding ----------------------------------------------------------------------------------
    def allow(self) -> bool:
        """May a call go out now? Always when closed; when half-open, only up to `half_open_probes`
        callers (the probes) get True until their results are in."""
        if self._state == CLOSED:  # the hot path: one attribute read, no lock
            return True
        change = None
        with self._lock:
            now = self._clock()
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if now - self._opened_at < self.cooldown_s:
                    return False
                change = self._set(HALF_OPEN)
                self._new_round(now)
            elif self._probes_out >= self.half_open_probes and now - self._round_started >= self.cooldown_s:
                self._new_round(now)  # probes were lost (cancelled calls): start a new round
            allowed = self._probes_out < self.half_open_probes
            if allowed:
                self._probes_out += 1
        self._report(change)
        return allowed

    def record_success(self) -> tuple[str, str] | None:
        """The endpoint answered. Returns the state change it caused, if any."""
        return self._record(False)

    def record_failure(self) -> tuple[str, str] | None:
        """5xx, timeout or connection error. Returns the state change it caused, if any."""
        return self._record(True)

    def release(self) -> None:
        """A call that neither proves nor disproves health (a 429): not counted; when half-open,
        its probe slot goes to the next caller."""
        if self._state != HALF_OPEN:
            return
        with self._lock:
            if self._state == HALF_OPEN and self._probes_out > 0:
                self._probes_out -= 1

    def reset(self) -> None:
        """Back to closed with an empty window."""
        with self._lock:
            change = self._set(CLOSED)
            self._clear()
        self._report(change)

    # internals ---------------------------------------------------------------------------------
    def _record(self, failed: bool) -> tuple[str, str] | None:
        change = None
        with self._lock:
            now = self._clock()
            if self._state == CLOSED:
                n = int(now / self._slice_s)
                i = n % _SLICES
                if self._slice_no[i] != n:
                    self._slice_no[i] = n
                    self._calls[i] = 0
                    self._fails[i] = 0
                self._calls[i] += 1
                if failed:
                    self._fails[i] += 1
                    calls, fails = self._totals(now)
                    if calls >= self.min_calls and fails >= self.failure_rate * calls:
                        change = self._open(now)
            elif self._state == HALF_OPEN:
                if failed:
                    self._probe_failed += 1
                else:
                    self._probe_ok += 1
                if self._probe_failed >= self.failure_rate * self.half_open_probes:
                    change = self._open(now)
                elif self._probe_ok + self._probe_failed >= self.half_open_probes:
                    change = self._set(CLOSED)
                    self._clear()
            # open: a late answer of a call let through before the circuit opened; not counted
        self._report(change)
        return change

    def _open(self, now: float) -> tuple[str, str] | None:
        change = self._set(OPEN)
        self._opened_at = now
        self._clear()
        return change

    def _new_round(self, now: float) -> None:
        self._round_started = now
        self._probes_out = self._probe_ok = self._probe_failed = 0

    def _clear(self) -> None:
        for i in range(_SLICES):
            self._calls[i] = self._fails[i] = 0
            self._slice_no[i] = -1
        self._probes_out = self._probe_ok = self._probe_failed = 0

    def _set(self, state: str) -> tuple[str, str] | None:
        old, self._state = self._state, state
        return None if old == state else (old, state)

    def _report(self, change: tuple[str, str] | None) -> None:
        if change is not None and listening():
            emit(LLMEvent("breaker", self.model, self.endpoint, change[0], change[1]))


_BREAKERS: dict[tuple[object, ...], CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def endpoint_of(base_url: str) -> str:
    """How events and traces name an endpoint: `host:port` of its base URL (the scheme's port when
    the URL names none, so traces can give `server.port`)."""
    parts = urlsplit(base_url)
    if not parts.netloc:
        return base_url.rstrip("/")
    try:
        explicit = parts.port
    except ValueError:
        explicit = None
    if explicit is not None or parts.hostname is None:
        return parts.netloc
    return f"{parts.netloc}:{443 if parts.scheme == 'https' else 80}"


def breaker_for(
    base_url: str,
    model: str,
    *,
    name: str | None = None,
    failure_rate: float = 0.5,
    window_s: float = 60.0,
    min_calls: int = 50,
    cooldown_s: float = 30.0,
    half_open_probes: int = 3,
) -> CircuitBreaker:
    """The process-wide breaker of one model at one endpoint, created on first use. Clients with
    the same base URL, model, name and settings share it (every agent version, every pool of the
    process); a fallback model at the same base URL has its own.

    Args:
        base_url: the API root the model is called at.
        model: the provider's model id (what the request's `model` field says).
        name: what Shipyard calls the model (its config key), as its events report it; default `model`.
        failure_rate, window_s, min_calls, cooldown_s, half_open_probes: as for CircuitBreaker.
    """
    settings = (failure_rate, window_s, min_calls, cooldown_s, half_open_probes)
    key = (base_url.rstrip("/"), model, name or model, *settings)
    with _BREAKERS_LOCK:
        found = _BREAKERS.get(key)
        if found is None:
            found = _BREAKERS[key] = CircuitBreaker(
                *settings, endpoint=endpoint_of(base_url), model=name or model
            )
        return found


def reset_breakers() -> None:
    """Forget every shared breaker (for tests and long-lived processes that reload config)."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()
