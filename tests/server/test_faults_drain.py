"""SIGTERM drains: /readyz turns unready at once, the server stops accepting, the request in flight
finishes, the journal reaches the store, and the process exits 0; also when Redis and PostgreSQL are
unreachable (then the journal stays on disk, and the next start loads it). Real `shipyard serve`
processes; every step waits on an event (a file, an answer, a refused connection)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
from fault_helpers import demo_project, env_with, invoke, start_ready
from server_helpers import HTTP
from throwaway import throwaway_postgres, throwaway_redis
from waiting import wait_until

from shipyard.store import Store

DRAIN = "\nserver:\n  drain: {delay_s: 300, timeout_s: 600}\n"  # long: the test ends each wait by an event


def refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_sigterm_drains_in_flight_requests_and_exits_0(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p", extra_yaml=DRAIN, test_agents=True)
    env = env_with(FAULT_TEST_DIR=str(tmp_path))
    served = start_ready(project, env)
    answers: list[httpx.Response] = []
    try:
        assert invoke(served.url, "Where is my order 10001?").status_code == 200
        slow = threading.Thread(target=lambda: answers.append(invoke(served.url, "one", agent="slow")))
        slow.start()
        wait_until(lambda: (tmp_path / "started-one").exists(), "the slow request to be in flight")

        served.signal()  # the drain starts: unready at once, still serving for drain.delay_s
        wait_until(lambda: served.events("server_draining"), "the server to start draining")
        ready = HTTP.get(served.url + "/readyz", timeout=60)
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        assert HTTP.get(served.url + "/healthz", timeout=60).status_code == 200

        served.signal()  # a second signal ends the delay: the socket closes, the request runs on
        wait_until(lambda: refuses(served.port), "the server to stop accepting connections")
        assert served.proc.poll() is None and not answers, "the request in flight was cut"
        (tmp_path / "release").touch()
        slow.join(timeout=120)
        assert served.wait() == 0
    finally:
        (tmp_path / "release").touch()
        served.kill()
    (answer,) = answers
    assert answer.status_code == 200 and answer.json()["output"] == "done one"
    with Store(f"sqlite:///{project / '.shipyard' / 'shipyard.db'}") as store:
        assert store.get_interaction(answer.json()["interaction_id"]) is not None
    assert not list((project / ".shipyard" / "journal").glob("*.journal")), (
        "the journal was flushed and removed"
    )


def test_sigterm_exits_0_with_redis_and_postgresql_gone_and_loses_nothing(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    with throwaway_postgres() as pg, throwaway_redis(tmp_path) as redis:
        env = env_with(SHIPYARD_DATABASE_URL=pg.url, SHIPYARD_REDIS_URL=redis.url)
        served = start_ready(project, env)
        try:
            ids = [invoke(served.url, "Where is my order 10001?").json()["interaction_id"]]
            redis.stop()
            pg.stop()
            # answers keep flowing: the journal holds them
            for i in range(5):
                r = invoke(served.url, f"Where is my order {10001 + i % 3}?")
                assert r.status_code == 200, r.text
                ids.append(r.json()["interaction_id"])
            ready = HTTP.get(served.url + "/readyz", timeout=60).json()
            assert ready["store"] == "unreachable" and ready["status"] == "ready"
            served.signal()
            assert served.wait() == 0
        finally:
            served.kill()
        assert served.events("server_stopped")
        assert list((project / ".shipyard" / "journal").glob("*.journal")), (
            "the journal kept what the store missed"
        )

        pg.start()
        redis.start()
        again = start_ready(project, env, tag="again")  # recovery runs before it is ready
        try:
            with Store(pg.url) as store:
                wait_until(
                    lambda: all(store.get_interaction(i) for i in ids), "every answered record in the store"
                )
            again.signal()
            assert again.wait() == 0
        finally:
            again.kill()
    assert again.events("journal_recovered")
