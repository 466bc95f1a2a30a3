"""Background loops never fail unseen: each failure is logged with its traceback and counted, a loop
that keeps failing raises the built-in `background_loops` alert, and the loop goes on."""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

import orjson
import pytest
from prometheus_client import generate_latest

from shipyard.config import AlertsConfig
from shipyard.observe import (
    LOOP_ALERT_AFTER,
    LOOP_EVENT,
    AlertEngine,
    EventCounter,
    KpiWindow,
    LoopSupervisor,
    Metrics,
    configure_logging,
)


def events(out: io.StringIO, name: str) -> list[dict[str, Any]]:
    return [e for e in map(orjson.loads, out.getvalue().splitlines()) if e["event"] == name]


@pytest.fixture
def out() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(stream=stream)
    return stream


def engine() -> AlertEngine:
    window = KpiWindow(horizon_s=3600)
    return AlertEngine(
        AlertsConfig().effective_rules(),
        lambda rule, now: window.kpis(rule.window_s, now=now),
        counters={LOOP_EVENT: EventCounter()},
    )


def failures(metrics: Metrics, loop: str) -> float:
    value = metrics.registry.get_sample_value("shipyard_background_loop_failures_total", {"loop": loop})
    return value or 0.0


def boom() -> None:
    raise ConnectionError("the store is unreachable")


def test_each_failure_is_logged_with_its_traceback_counted_and_a_failing_loop_alerts(
    out: io.StringIO,
) -> None:
    metrics, alerts = Metrics(), engine()
    loops = LoopSupervisor(metrics, alerts)
    for _ in range(LOOP_ALERT_AFTER):
        with loops.guard("canary_ticks"):
            boom()
        alerts.evaluate()
    failed = events(out, "background_loop_failed")
    assert [e["consecutive"] for e in failed] == list(range(1, LOOP_ALERT_AFTER + 1))
    assert all(e["loop"] == "canary_ticks" and e["level"] == "error" for e in failed)
    assert "ConnectionError: the store is unreachable" in failed[0]["traceback"]
    assert "in boom" in failed[0]["traceback"]  # the whole traceback, not just the message
    assert failures(metrics, "canary_ticks") == LOOP_ALERT_AFTER
    assert loops.failing() == ["canary_ticks"] and [
        e["loop"] for e in events(out, "background_loop_failing")
    ] == ["canary_ticks"]
    [rule] = [s for s in alerts.states() if s.rule.name == "background_loops"]
    assert rule.state == "alert" and alerts.status() == "DOWN"
    assert b"shipyard_background_loop_failures_total" in generate_latest(metrics.registry)


def test_a_pass_that_works_resets_the_count_and_says_it_recovered(out: io.StringIO) -> None:
    loops = LoopSupervisor(alert_after=2)
    with loops.guard("flag_redis_listener"):
        boom()
    assert loops.consecutive_failures("flag_redis_listener") == 1 and loops.failing() == []
    with loops.guard("flag_redis_listener"):
        pass
    assert loops.consecutive_failures("flag_redis_listener") == 0
    [recovered] = events(out, "background_loop_recovered")
    assert recovered["loop"] == "flag_redis_listener" and recovered["failures"] == 1
    with loops.guard("flag_redis_listener"):
        pass
    assert len(events(out, "background_loop_recovered")) == 1  # only after failures


def test_a_loop_that_keeps_failing_keeps_its_alert_alive() -> None:
    alerts = engine()
    loops = LoopSupervisor(alerts=alerts, alert_after=2)
    for _ in range(6):
        loops.failed("journal_mover", RuntimeError("disk"))
    assert alerts.counters[LOOP_EVENT].count(0, float("inf")) == 3  # one event per 2 failures in a row


def test_failures_reported_from_threads_are_counted() -> None:
    metrics = Metrics()
    loops = LoopSupervisor(metrics)
    threads = [
        threading.Thread(target=loops.failed, args=("flag_file_poll", OSError("gone"))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loops.consecutive_failures("flag_file_poll") == 8 and failures(metrics, "flag_file_poll") == 8


async def test_every_keeps_the_loop_running_through_failures(out: io.StringIO) -> None:
    loops = LoopSupervisor(Metrics())
    passes: list[int] = []
    recovered = asyncio.Event()

    async def step() -> None:
        passes.append(len(passes))
        if len(passes) <= 4:
            raise RuntimeError(f"pass {len(passes)} failed")
        recovered.set()

    task = asyncio.create_task(loops.every("version_recorder", 0, step))
    await asyncio.wait_for(recovered.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (
        len(events(out, "background_loop_failed")) == 4
        and loops.consecutive_failures("version_recorder") == 0
    )
    assert events(out, "background_loop_recovered")[0]["failures"] == 4


def test_a_supervisor_needs_a_positive_threshold() -> None:
    with pytest.raises(ValueError, match="alert_after"):
        LoopSupervisor(alert_after=0)
