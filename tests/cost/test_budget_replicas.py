"""The anchors' budget bugs, reproduced and shown not to happen here.

Three real `shipyard serve` processes share one Redis (DB 13) and one PostgreSQL store (SQLite when
PostgreSQL is unreachable). 64 sessions of ONE user talk to them at once against a small daily cap;
the mock LLM server fails calls at random, clients hang up at random, and the agent's timeout cuts
some interactions short (the server cancels their model calls). Afterwards:

- the user's counter in Redis never went past the cap by more than one call's reservation cap, and
  what the store recorded as spent is no more than the counter (nothing was spent uncounted);
- no reservation leaked (nothing is still held once every request is over);
- every refusal happened with the counter at 95% of the cap or more (no request was refused
  because other replicas' reservations were in the way, nor because of per-replica state);
- some requests were refused (the cap was really reached), some calls failed, some were cut off.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from budget_project import write_project
from testdb import fresh_database, postgres_problem

from shipyard.config import BudgetLimit
from shipyard.cost import Subject
from shipyard.cost._budget_redis import RedisBackend
from shipyard.cost._budgets import NANO, counters_for
from shipyard.llm._mockserver import MockLLMServer
from shipyard.store import Store

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/13"
CAP_USD = 10.0
RESERVATION_CAP_USD = 0.5  # 5% of the cap
SESSIONS = 64
REQUESTS_PER_SESSION = 6
USER = "one-user"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(folder), "SHIPYARD_REDIS_URL": REDIS_URL}
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipyard",
                "serve",
                "--port",
                str(port),
                "--config",
                str(folder / "shipyard.yaml"),
            ],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    give_up = time.monotonic() + 120  # a hang guard, not a timing
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            pytest.fail(f"shipyard serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"shipyard serve at {url} never became ready:\n{log.read_text()[-3000:]}")


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    kind = "sqlite" if postgres_problem() else "postgresql"
    with fresh_database(kind, tmp_path) as url:
        yield url


async def _session(
    client: httpx.AsyncClient, urls: list[str], n: int, rng: random.Random, seen: dict[str, int]
) -> None:
    session = f"sess-{n}"
    for i in range(REQUESTS_PER_SESSION):
        url = urls[(n + i) % len(urls)]  # a session's requests land on every replica
        body = {
            "input": f"steps={rng.randint(1, 3)} where is order {n}-{i}?",
            "session_id": session,
            "user_id": USER,
        }
        hang_up = rng.random() < 0.2
        try:
            post = client.post(f"{url}/v1/agents/budgeted/invoke", json=body)
            resp = await (asyncio.wait_for(post, rng.uniform(0.01, 0.2)) if hang_up else post)
        except TimeoutError:
            seen["hung_up"] += 1
            continue
        except httpx.TransportError:  # a pooled connection a hang-up broke: one more client gone
            seen["dropped"] = seen.get("dropped", 0) + 1
            continue
        data = resp.json()
        status = data.get("status") or data.get("error", {}).get("type", "error")
        seen[status] = seen.get(status, 0) + 1
        if status == "budget_exceeded":
            return


async def _traffic(urls: list[str]) -> dict[str, int]:
    rng = random.Random(11)
    seen: dict[str, int] = {"hung_up": 0}
    limits = httpx.Limits(max_connections=SESSIONS * 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(_session(client, urls, n, rng, seen) for n in range(SESSIONS)))
    return seen


def test_three_replicas_one_user_64_sessions_never_overspend(tmp_path: Path, store_url: str) -> None:
    prefix = f"anchor-{uuid.uuid4().hex[:8]}"
    llm = MockLLMServer(
        {"default": "Here is a short answer about your order and its delivery."},
        latency_ms=40,
        error_rate=0.15,
        seed=5,
        subprocess=True,
    )
    llm_url = llm.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        write_project(
            tmp_path,
            llm_url,
            f"""\
            budgets:
              backend: redis
              key_prefix: {prefix}
              max_reservation_usd: {RESERVATION_CAP_USD}
              min_output_tokens: 64   # at $2000 per million output tokens, 256 would not fit the cap
              redis_timeout_s: 5      # a starved CI machine is not a Redis outage (fail_closed would refuse)
              limits:
                - {{name: user-daily, scope: user, window: day, usd: {CAP_USD}}}
            """,
            store_url=store_url,
            timeout_s=0.3,  # some interactions are cut short: their model calls are cancelled
        )
        urls = []
        for i in range(3):
            port = _free_port()
            log = tmp_path / f"serve-{i}.log"
            procs.append(_serve(tmp_path, port, log))
            urls.append(f"http://127.0.0.1:{port}")
        for i, (url, proc) in enumerate(zip(urls, procs, strict=True)):
            _wait_ready(url, proc, tmp_path / f"serve-{i}.log")

        seen = asyncio.run(_traffic(urls))

        # the counter, as every replica sees it (reservations of hung-up requests settle on their own)
        limit = BudgetLimit(name="user-daily", scope="user", window="day", usd=CAP_USD)
        (c,) = counters_for(
            [limit], Subject("x", "s", "budgeted", user_id=USER), "{" + prefix + "}", time.time()
        )

        async def read() -> tuple[int, int]:
            backend = RedisBackend(REDIS_URL, "{" + prefix + "}")
            try:
                return (await backend.levels([c], time.time()))[0]
            finally:
                await backend.aclose()

        def levels() -> tuple[int, int]:
            return asyncio.run(read())

        give_up = time.monotonic() + 120
        spent, reserved = levels()
        while reserved and time.monotonic() < give_up:
            time.sleep(0.05)
            spent, reserved = levels()
        assert reserved == 0, "a reservation leaked"
        assert spent / NANO <= CAP_USD + RESERVATION_CAP_USD, f"overspent: ${spent / NANO:.4f} of ${CAP_USD}"

        for proc in procs:  # a graceful stop moves every journaled record into the store
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(120)
        store = Store(store_url, root=tmp_path)
        records = store.list_interactions(user_id=USER, limit=None)
        recorded = sum(r.cost_usd for r in records)
        assert recorded <= spent / NANO + 1e-9, "spent more than the budget counted"
        refused = [r for r in records if r.status == "budget_exceeded"]
        assert refused, f"the cap was never reached: {seen}"
        for r in refused:
            at = r.metadata["budget"]["spent"]
            assert at >= 0.95 * CAP_USD, f"refused at ${at:.4f}, below 95% of the ${CAP_USD} cap"
        statuses = {r.status for r in records}
        assert "failed" in statuses  # model errors and timeouts happened (and released their holds)
        assert "completed" in statuses
        assert seen["hung_up"] > 0
        print(
            f"\nspent ${spent / NANO:.4f} of ${CAP_USD} (recorded ${recorded:.4f}); {len(records)} interactions; "
            f"refused {len(refused)}; client view {seen}"
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        llm.stop()
        # the budget counters, and the KPIs the replicas shared through the same Redis
        _delete_keys("{" + prefix + "}*", "shipyard:*:kpi*")


def _delete_keys(*patterns: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for pattern in patterns:
        keys = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    client.close()
