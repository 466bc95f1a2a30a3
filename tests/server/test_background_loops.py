"""A background loop of the server that keeps failing is seen: the canary tick loop against a store
whose deployments table is gone logs each failure with its traceback, counts it in /metrics, raises
the `background_loops` alert, keeps ticking, and recovers when the table is back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from server_helpers import Served
from testdb import PG_DSN, fresh_database
from waiting import wait_until

from shipyard.observe import LOOP_ALERT_AFTER
from shipyard.server import _rollout_api
from shipyard.store import Store

pytestmark = pytest.mark.postgres


def logged(served: Served, event: str, loop: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in served.logs.getvalue().splitlines() if line.startswith("{")]
    return [e for e in lines if e.get("event") == event and e.get("loop") == loop]


def alert_state(served: Served) -> str:
    with served.client() as c:
        rules = c.get("/admin/alerts").json()["rules"]
    return next(r["state"] for r in rules if r["name"] == "background_loops")


def test_a_persistent_error_in_the_canary_tick_loop_is_logged_counted_alerted_and_survived(
    serve_project: Callable[..., Served], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_rollout_api, "TICK_S", 0.05)  # tick often, so the test waits less
    with fresh_database("postgresql", tmp_path) as url, Store(url) as store:
        served = serve_project(store=store)
        loops = served.state.loops
        schema = url.split("search_path%3D", 1)[1]
        wait_until(
            lambda: (
                logged(served, "background_loop_failed", "canary_ticks") == [] and alert_state(served) == "ok"
            ),
            "the first evaluation",
        )

        with psycopg.connect(PG_DSN, autocommit=True) as conn:  # the store loses the table ticks read
            conn.execute(f'ALTER TABLE "{schema}".deployments RENAME TO deployments_gone')
        wait_until(lambda: alert_state(served) == "alert", "the background_loops alert")
        failed = logged(served, "background_loop_failed", "canary_ticks")
        assert len(failed) >= LOOP_ALERT_AFTER and failed[0]["level"] == "error"
        assert (
            "deployments" in failed[0]["error"]
            and "Traceback (most recent call last)" in failed[0]["traceback"]
        )
        assert "tick_all" in failed[0]["traceback"]  # where it failed, not just what
        assert logged(served, "background_loop_failing", "canary_ticks")
        with served.client() as c:
            metrics = c.get("/metrics").text
        [line] = [
            m
            for m in metrics.splitlines()
            if m.startswith('shipyard_background_loop_failures_total{loop="canary_ticks"}')
        ]
        assert float(line.rsplit(" ", 1)[1]) >= LOOP_ALERT_AFTER

        with psycopg.connect(PG_DSN, autocommit=True) as conn:  # the table is back
            conn.execute(f'ALTER TABLE "{schema}".deployments_gone RENAME TO deployments')
        wait_until(lambda: logged(served, "background_loop_recovered", "canary_ticks"), "the loop to recover")
        assert loops.consecutive_failures("canary_ticks") == 0
        [recovered] = logged(served, "background_loop_recovered", "canary_ticks")
        assert recovered["failures"] >= LOOP_ALERT_AFTER
