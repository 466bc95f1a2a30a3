"""The flag sync's background threads report every pass: a Redis that cannot be reached is a loop
failure (logged with its traceback, counted, alerted when it keeps failing), not a silent retry."""

from __future__ import annotations

import socket

from waiting import wait_until

from shipyard.flags import FlagStore, FlagSync
from shipyard.observe import LoopSupervisor, Metrics


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


def test_an_unreachable_redis_is_reported_as_a_failing_loop() -> None:
    metrics = Metrics()
    loops = LoopSupervisor(metrics, alert_after=2)
    sync = FlagSync(FlagStore(), redis_url=f"redis://127.0.0.1:{closed_port()}/0", loops=loops)
    with sync:
        wait_until(
            lambda: loops.consecutive_failures("flag_redis_listener") >= 2, "two failed listener passes"
        )
    assert loops.failing() == ["flag_redis_listener"]
    count = metrics.registry.get_sample_value(
        "shipyard_background_loop_failures_total", {"loop": "flag_redis_listener"}
    )
    assert count is not None and count >= 2
    assert sync.last_error is not None and sync.last_error.startswith("redis:")
