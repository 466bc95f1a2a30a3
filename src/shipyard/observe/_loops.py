"""Background loops that never fail unseen: the canary ticks, flag sync, alert evaluation, the
journal mover, key refresh, the version recorder and the idempotency purge of a server.

A loop reports each pass to its process's `LoopSupervisor` (with `guard`, `every`, or `failed` /
`succeeded` from code that has its own structure, such as a thread). Each failure is logged as
`background_loop_failed` with the loop's name, the consecutive count and the traceback, and counted
in `shipyard_background_loop_failures_total{loop=...}`. A loop that fails `alert_after` times in a
row is failing: that is logged (`background_loop_failing`) and counted as a `loop_failures` event, so
the built-in `background_loops` alert rule fires (and keeps firing while it keeps failing: one event
per `alert_after` further failures); the first pass that works again logs `background_loop_recovered`.
The loop itself keeps going: a failed pass is tried again on the next one."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from shipyard.observe._logging import log_event

if TYPE_CHECKING:
    from shipyard.observe._alerts import AlertEngine
    from shipyard.observe._metrics import Metrics

LOOP_ALERT_AFTER = 3
"""Consecutive failures after which a loop counts as failing (an alert event)."""

LOOP_EVENT = "loop_failures"
"""The event metric a failing loop counts in (`shipyard.config.EVENT_METRICS`)."""


def _log(event: str, **fields: Any) -> None:
    """`log_event`, except that a log stream that cannot be written (closed, full) is no reason to
    stop a loop: the failure is still counted and alerted."""
    with contextlib.suppress(Exception):
        log_event(event, **fields)


class LoopSupervisor:
    """The health of one process's background loops. Thread-safe.

    Args:
        metrics: where failures are counted (optional).
        alerts: the alert engine that hears of failing loops (`record_event(LOOP_EVENT)`; optional).
        alert_after: consecutive failures that make a loop failing.
    """

    def __init__(
        self,
        metrics: Metrics | None = None,
        alerts: AlertEngine | None = None,
        *,
        alert_after: int = LOOP_ALERT_AFTER,
    ) -> None:
        if alert_after < 1:
            raise ValueError(f"alert_after must be at least 1, got {alert_after}")
        self.metrics = metrics
        self.alerts = alerts
        self.alert_after = alert_after
        self._consecutive: dict[str, int] = {}
        self._lock = threading.Lock()

    def consecutive_failures(self, loop: str) -> int:
        """How many passes of `loop` failed in a row (0: the last one worked)."""
        with self._lock:
            return self._consecutive.get(loop, 0)

    def failing(self) -> list[str]:
        """The loops failing now (at least `alert_after` failures in a row)."""
        with self._lock:
            return sorted(name for name, n in self._consecutive.items() if n >= self.alert_after)

    def failed(self, loop: str, error: BaseException) -> None:
        """One pass of `loop` raised `error`: count it, log it with its traceback, alert when it
        keeps failing. Never raises (a loop must outlive a broken log stream)."""
        with self._lock:
            n = self._consecutive[loop] = self._consecutive.get(loop, 0) + 1
        if self.metrics is not None:
            self.metrics.observe_loop_failure(loop)
        _log(
            "background_loop_failed",
            level="error",
            loop=loop,
            consecutive=n,
            error=f"{type(error).__name__}: {error}"[:500],
            traceback="".join(traceback.format_exception(error)),
        )
        if n % self.alert_after == 0:
            if n == self.alert_after:
                _log("background_loop_failing", level="error", loop=loop, consecutive=n)
            if self.alerts is not None:
                self.alerts.record_event(LOOP_EVENT)

    def succeeded(self, loop: str) -> None:
        """One pass of `loop` worked: a loop that was failing has recovered."""
        with self._lock:
            n = self._consecutive.pop(loop, 0)
        if n:
            _log("background_loop_recovered", level="warning", loop=loop, failures=n)

    @contextlib.contextmanager
    def guard(self, loop: str) -> Iterator[None]:
        """One pass of `loop`: an exception in the block is reported (and not raised), a block that
        ends normally is a success. Cancellation passes through."""
        try:
            yield
        except Exception as e:
            self.failed(loop, e)
        else:
            self.succeeded(loop)

    async def every(
        self, loop: str, interval_s: float | Callable[[], float], step: Callable[[], Awaitable[object]]
    ) -> None:
        """Run `step` every `interval_s` seconds (a callable: read before each wait) until cancelled,
        each pass guarded."""
        while True:
            await asyncio.sleep(interval_s() if callable(interval_s) else interval_s)
            with self.guard(loop):
                await step()
