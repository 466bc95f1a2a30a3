"""PostgreSQL goes away under load and comes back: answers keep flowing (the journal holds the
records), nothing acknowledged is lost, and the records reach the store without a restart. Redis goes
away: flags keep their last known values, and changes made elsewhere arrive again once it is back,
without a restart. Throwaway
PostgreSQL and Redis servers of the test's own; every wait is on an event."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path

import httpx
from fault_helpers import SHIPYARD, demo_project, env_with, start_ready
from server_helpers import HTTP
from throwaway import throwaway_postgres, throwaway_redis
from waiting import wait_until

from shipyard.store import Store


class Load:
    """Requests from 6 concurrent clients until stopped; keeps the ids of the answered ones."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        async def client(c: httpx.AsyncClient, k: int) -> None:
            i = 0
            while not self._stop.is_set():
                i += 1
                r = await c.post(
                    "/v1/agents/support/invoke",
                    json={"input": f"Where is my order {10001 + i % 3}?", "session_id": f"c{k}-{i}"},
                )
                if r.status_code == 200:
                    self.acked.append(r.json()["interaction_id"])
                else:
                    self.errors.append(f"{r.status_code} {r.text[:200]}")

        async with httpx.AsyncClient(base_url=self.url, timeout=120) as c:
            await asyncio.gather(*(client(c, k) for k in range(6)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=300)


def test_postgresql_goes_away_under_load_and_comes_back(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    with throwaway_postgres() as pg:
        served = start_ready(project, env_with(SHIPYARD_DATABASE_URL=pg.url))
        load = Load(served.url)
        try:
            wait_until(lambda: len(load.acked) >= 30, "answers before the outage")
            pg.stop()
            during = len(load.acked)
            wait_until(lambda: len(load.acked) >= during + 60, "answers during the outage")
            ready = HTTP.get(served.url + "/readyz", timeout=60).json()
            assert ready["status"] == "ready" and ready["store"] == "unreachable"
            assert ready["journal_pending"] > 0
            wait_until(
                lambda: served.events("journal_store_write_failed"), "the journal to notice the outage"
            )
            pg.start()
            after = len(load.acked)
            wait_until(lambda: len(load.acked) >= after + 30, "answers after the outage")
            load.stop()
            acked = list(load.acked)
            with Store(pg.url) as store:
                # no restart: the same process moves what its journal held once the store is back
                wait_until(
                    lambda: all(store.get_interaction(i) is not None for i in acked),
                    "every acknowledged interaction in the store",
                )
            assert served.proc.poll() is None
            assert HTTP.get(served.url + "/readyz", timeout=60).json()["store"] == "ok"
            served.signal()
            assert served.wait() == 0
        finally:
            load.stop()
            served.kill()
    assert not load.errors, load.errors[:3]
    assert len(set(acked)) == len(acked) >= 120


def _flag_seen(url: str, name: str) -> str:
    """What the server's agents see of the flag now (`ctx.flags`), through the probe agent."""
    r = HTTP.post(f"{url}/v1/agents/probe/invoke", json={"input": name}, timeout=60)
    assert r.status_code == 200, r.text
    return str(r.json()["output"])


def test_redis_goes_away_flags_keep_their_values_and_everything_recovers(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p", test_agents=True)
    with throwaway_redis(tmp_path) as redis:
        env = env_with(SHIPYARD_REDIS_URL=redis.url)
        served = start_ready(project, env)

        def flags(*args: str) -> None:  # a change made elsewhere, as another replica's admin makes it
            done = subprocess.run(
                [str(SHIPYARD), "flags", *args, "--config", str(project / "shipyard.yaml")],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr

        try:
            assert _flag_seen(served.url, "instant_store_credit") == "off"
            flags("rollout", "instant_store_credit", "100")
            wait_until(lambda: _flag_seen(served.url, "instant_store_credit") == "on", "the change to arrive")

            redis.stop()
            wait_until(
                lambda: served.events("background_loop_failed"), "the listeners to notice Redis is gone"
            )
            # the last known values hold, and requests are served as before
            assert _flag_seen(served.url, "instant_store_credit") == "on"
            r = HTTP.post(
                served.url + "/v1/agents/support/invoke",
                json={"input": "Where is my order 10001?"},
                timeout=120,
            )
            assert r.status_code == 200

            redis.start()  # an empty Redis (no persistence); nothing is restarted
            flags("rollout", "instant_store_credit", "0")
            wait_until(
                lambda: _flag_seen(served.url, "instant_store_credit") == "off", "the next change to arrive"
            )
            served.signal()
            assert served.wait() == 0
        finally:
            served.kill()
