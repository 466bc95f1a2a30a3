"""The anchor of many replicas: three `shipyard serve` behind a real HAProxy (Debian's package,
roundrobin, health checks on /readyz), on a throwaway PostgreSQL and a throwaway Redis of the test's
own, with budgets in Redis and the mock LLM server over HTTP.

Sessions of several turns go through HAProxy, so each session's turns land on different replicas.
Meanwhile flags and a rollout are changed through different replicas, one replica is SIGKILLed (and
started again on its own folder, as a pod's container restarts), and PostgreSQL is stopped and started
again. Afterwards:

- every acknowledged interaction (a 2xx answer's interaction id) is in the store, once;
- every session kept its version (the `chat` agent runs a 50/50 experiment) across the replicas that
  answered it;
- no flag or rollout change was lost: the final flag set and deployment hold every change, every
  replica serves the stored flag revision, and the decision log holds each rollout change once;
- spend stayed under the budget caps (the fleet-wide one and each session's).

A request whose replica died (HAProxy's 502/503, a dropped connection) was not acknowledged: the
client retries it, as a client of any load balancer does. Every wait is on an event (a count of
answers, a row, a port), with generous give-up limits.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from replica_cluster import HAProxy, Replica, clean_env, start_replicas, write_project
from throwaway import throwaway_postgres, throwaway_redis
from waiting import wait_until

from shipyard.llm._mockserver import MockLLMServer
from shipyard.store import Store

_HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
"""For one-off requests instead of `httpx.get(...)`: a new connection per request as those make, without
the SSL context each `httpx.get` builds (some 30 ms of CPU per call, a lot in a polling loop)."""

GLOBAL_CAP_USD = 5.0
SESSION_CAP_USD = 0.02
TURNS = (3, 4, 8)  # sessions of 8 turns run into their session cap
WORKERS = 8
BUDGETS = f"""\
key_prefix: anchor
min_output_tokens: 8
redis_timeout_s: 5  # a starved CI machine is not a Redis outage (fail_closed would refuse)
limits:
  - {{name: fleet-daily, scope: global, window: day, usd: {GLOBAL_CAP_USD}}}
  - {{name: per-session, scope: session, window: session, usd: {SESSION_CAP_USD}}}
"""
FLAG = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}


class Load:
    """Sessions of several turns through HAProxy, from WORKERS concurrent clients, until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: list[dict[str, Any]] = []  # one per 2xx answer: id, session, version, replica, status
        self.retried: list[str] = []  # why a turn was sent again (its replica died, HAProxy said so)
        self.errors: list[str] = []  # answers of the product that were neither 2xx nor a retry case
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    def count(self) -> int:
        return len(self.acked)

    async def _turn(self, c: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any] | None:
        for _ in range(100):  # a hang guard: each retry waits on HAProxy noticing a dead replica
            try:
                r = await c.post("/v1/agents/chat/invoke", json=body)
            except httpx.TransportError as e:  # the replica died with the request: not acknowledged
                self.retried.append(f"transport: {type(e).__name__}")
                await asyncio.sleep(0.2)
                continue
            if r.status_code in (502, 503, 504) and "json" not in r.headers.get("content-type", ""):
                self.retried.append(f"haproxy {r.status_code}")  # HAProxy's own answer: no replica ran it
                await asyncio.sleep(0.2)
                continue
            if r.status_code // 100 != 2:
                self.errors.append(f"{r.status_code} {r.text[:300]}")
                return None
            data = r.json()
            return {
                "id": data["interaction_id"],
                "session": data["session_id"],
                "version": data["version"],
                "status": data["status"],
                "replica": r.headers.get("x-replica"),
            }
        self.errors.append(f"gave up on a turn of {body['session_id']}: {self.retried[-3:]}")
        return None

    async def _run(self) -> None:
        async def worker(c: httpx.AsyncClient, w: int) -> None:
            n = 0
            while not self._stop.is_set():
                n += 1
                session = f"w{w}-s{n}"
                for turn in range(TURNS[n % len(TURNS)]):
                    body = {"input": f"{session} turn {turn}: where is my order?", "session_id": session}
                    got = await self._turn(c, body)
                    if got is None:
                        break
                    self.acked.append(got)
                    if got["status"] == "budget_exceeded" or self._stop.is_set():
                        break

        limits = httpx.Limits(max_connections=WORKERS * 2, max_keepalive_connections=WORKERS * 2)
        async with httpx.AsyncClient(base_url=self.url, timeout=180, limits=limits) as c:
            await asyncio.gather(*(worker(c, w) for w in range(WORKERS)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=600)


class Changes:
    """Admin changes made through chosen replicas, each retried until acknowledged (a dead replica, a
    store that is away, a lost compare-and-set race): `done` lists what was acknowledged."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self.done: list[str] = []
        self.failures: list[str] = []

    def send(
        self,
        what: str,
        via: int,
        method: str,
        path: str,
        body: dict[str, Any],
        applied: Callable[[], bool] | None = None,
    ) -> None:
        """Send the change to replica `via` (then the next one on failure) until a 2xx answer, or until
        `applied()` says an earlier attempt whose answer was lost took effect."""
        give_up = time.monotonic() + 300
        attempt = 0
        while time.monotonic() < give_up:
            replica = self.replicas[(via + attempt) % len(self.replicas)]
            attempt += 1
            try:
                r = _HTTP.request(method, f"{replica.url}{path}", json=body, timeout=60)
            except httpx.HTTPError as e:
                self.failures.append(f"{what} via {replica.name}: {type(e).__name__}")
            else:
                if r.status_code // 100 == 2:
                    self.done.append(what)
                    return
                self.failures.append(f"{what} via {replica.name}: {r.status_code} {r.text[:200]}")
                if r.status_code // 100 == 4 and r.status_code != 409:
                    # refused: only right when an earlier attempt, whose answer was lost, did it
                    if applied is not None and _quietly(applied):
                        self.done.append(what)
                        return
                    raise AssertionError(f"{what} was refused: {r.status_code} {r.text[:500]}")
            if applied is not None and _quietly(applied):
                self.done.append(what)
                return
            time.sleep(0.3)
        raise AssertionError(f"{what} was never acknowledged: {self.failures[-5:]}")


def _quietly(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except Exception:  # the store or the replica is away right now: not known to be applied yet
        return False


def _flags(replica: Replica) -> dict[str, Any]:
    r = _HTTP.get(f"{replica.url}/admin/flags", timeout=60)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _converged(replicas: list[Replica]) -> bool:
    views = [_flags(r) for r in replicas]
    first = views[0]
    return all(
        v["revision"] == first["revision"]
        and v["served"] == {"revision": first["revision"], "digest": first["digest"]}
        for v in views
    )


def _store_seen_away(replicas: list[Replica]) -> bool:
    views = [_HTTP.get(f"{r.url}/readyz", timeout=60).json() for r in replicas]
    return all(v["status"] == "ready" and v["store"] == "unreachable" for v in views)


def _decision_by(store_url: str, actor: str) -> Callable[[], bool]:
    def applied() -> bool:
        with Store(store_url) as store:
            return any(d.get("actor") == actor for d in store.rollout_decisions("helper", limit=200))

    return applied


def _flag_changes(changes: Changes, wait_for: Callable[[int], None]) -> None:
    """Flags changed through every replica in turn, spread over the load: new flags with a rollout
    step each, and one flag's rollout raised step by step through different replicas (the bug where a
    change through replica 2 reverted replica 1's rollout)."""
    changes.send("put shared", 0, "PUT", "/admin/flags/shared", FLAG)
    for i in range(9):
        wait_for(12)
        changes.send(f"put f{i}", i % 3, "PUT", f"/admin/flags/f{i}", FLAG)
        changes.send(
            f"rollout f{i}", (i + 1) % 3, "POST", f"/admin/flags/f{i}/rollout", {"percent": 10 * (i + 1)}
        )
        changes.send(
            f"rollout shared {10 * (i + 1)}",
            (i + 2) % 3,
            "POST",
            "/admin/flags/shared/rollout",
            {"percent": 10 * (i + 1)},
        )


def _rollout_changes(changes: Changes, store_url: str, wait_for: Callable[[int], None]) -> None:
    """The `helper` agent's rollout changed through different replicas, spread over the load."""
    steps: list[tuple[str, dict[str, Any]]] = [
        (
            "canary",
            {"version": "2.0.0", "steps": [10, 50], "min_duration_s": 3600, "override_gate": "anchor test"},
        ),
        ("pause", {}),
        ("resume", {}),
        ("abort", {}),
        (
            "canary",
            {"version": "2.0.0", "steps": [20, 60], "min_duration_s": 3600, "override_gate": "anchor test"},
        ),
        ("pause", {}),
    ]
    for i, (action, body) in enumerate(steps):
        wait_for(20)
        actor = f"anchor-{i}-{action}"
        changes.send(
            f"rollout {i} {action}",
            i % 3,
            "POST",
            f"/admin/rollouts/helper/{action}",
            {**body, "by": actor},
            applied=_decision_by(store_url, actor),
        )


def test_three_replicas_behind_haproxy_lose_nothing_through_faults(tmp_path: Path) -> None:
    llm = MockLLMServer(
        {"default": "Your order shipped yesterday and arrives on Friday."},
        latency_ms=30,
        seed=3,
        subprocess=True,
    )
    llm_url = llm.start()
    replicas: list[Replica] = []
    proxy: HAProxy | None = None
    load: Load | None = None
    try:
        with throwaway_postgres() as pg, throwaway_redis(tmp_path) as redis_server:
            project = tmp_path / "project"
            write_project(
                project,
                llm_url,
                pg.url,
                redis_url=redis_server.url,
                budgets=BUDGETS,
                flags_channel=f"shipyard:flags:anchor:{uuid.uuid4().hex[:8]}",
            )
            env = clean_env(SHIPYARD_REDIS_URL=redis_server.url)
            replicas = start_replicas(project, tmp_path, env)
            proxy = HAProxy(tmp_path, [(r.name, r.port) for r in replicas])

            # a 50/50 experiment on `chat` through replica 0, before any session starts
            admin = Changes(replicas)
            admin.send(
                "experiment chat",
                0,
                "POST",
                "/admin/experiments/chat",
                {"a": "1.0.0", "b": "2.0.0", "split": 50, "override_gate": "anchor test", "by": "anchor"},
            )
            _wait_experiment_everywhere(replicas)

            load = Load(proxy.url)
            running = load

            def wait_for(more: int) -> None:
                target = running.count() + more
                wait_until(lambda: running.count() >= target or bool(running.errors), f"{more} more answers")

            flag_changes = Changes(replicas)
            rollout_changes = Changes(replicas)
            threads = [
                threading.Thread(target=_flag_changes, args=(flag_changes, wait_for), daemon=True),
                threading.Thread(
                    target=_rollout_changes, args=(rollout_changes, pg.url, wait_for), daemon=True
                ),
            ]
            thread_errors: list[BaseException] = []

            def guarded(t: threading.Thread) -> Callable[[], None]:
                run = t.run

                def wrapped() -> None:
                    try:
                        run()
                    except BaseException as e:  # reported below
                        thread_errors.append(e)

                return wrapped

            for t in threads:
                t.run = guarded(t)  # type: ignore[method-assign]
                t.start()

            # SIGKILL one replica mid-load; its container "restarts" on the same folder and port
            wait_for(60)
            victim = replicas[1]
            victim.kill()
            wait_for(40)  # the other two answer, HAProxy took the dead one out
            victim.start()
            victim.wait_ready()
            wait_for(30)

            # PostgreSQL goes away under load and comes back
            pg.stop()
            wait_until(lambda: _store_seen_away(replicas), "the replicas to see the store away")
            wait_for(60)  # answers keep flowing: the journals hold the records
            pg.start()
            wait_for(60)

            for t in threads:
                t.join(timeout=900)
            assert not thread_errors, thread_errors
            load.stop()
            assert not load.errors, load.errors[:5]
            acked = list(load.acked)

            # every acknowledged interaction reaches the store once everything settles
            ids = [a["id"] for a in acked]
            assert len(set(ids)) == len(ids), "an interaction id was answered twice"
            with Store(pg.url) as store:

                def missing() -> list[str]:
                    try:
                        return [i for i in ids if store.get_interaction(i) is None]
                    except Exception:  # a pooled connection from before the restart: ask again
                        return ids

                wait_until(lambda: not missing(), "every acknowledged interaction in the store", 300)
                records = {i: store.get_interaction(i) for i in ids}

                # every session kept its version, whichever replica answered
                versions: dict[str, set[str]] = defaultdict(set)
                served_by: dict[str, set[str]] = defaultdict(set)
                for a in acked:
                    rec = records[a["id"]]
                    assert rec is not None and rec.session_id == a["session"]
                    assert rec.version == a["version"]
                    versions[a["session"]].add(a["version"])
                    served_by[a["session"]].add(str(a["replica"]))
                changed = {s: v for s, v in versions.items() if len(v) > 1}
                assert not changed, f"sessions changed version: {list(changed.items())[:5]}"
                arms = {next(iter(v)).split("@", 1)[1].split("+", 1)[0] for v in versions.values()}
                assert arms == {"1.0.0", "2.0.0"}, arms
                spread = sum(1 for s in served_by.values() if len(s) >= 2)
                assert spread >= len(served_by) // 2, "sessions were not spread over replicas"
                assert {r for s in served_by.values() for r in s} == {"r0", "r1", "r2"}

                # spend under the caps: the fleet's and each session's (every record, retried ones too)
                spent = store.list_interactions(agent="chat", limit=None)
                total = sum(r.cost_usd for r in spent)
                assert 0 < total <= GLOBAL_CAP_USD, total
                per_session: dict[str, float] = defaultdict(float)
                for r in spent:
                    per_session[str(r.session_id)] += r.cost_usd
                over = {s: c for s, c in per_session.items() if c > SESSION_CAP_USD + 1e-9}
                assert not over, f"sessions over their cap: {list(over.items())[:5]}"
                cut = [a for a in acked if a["status"] == "budget_exceeded"]
                assert cut, (
                    f"no session reached its cap (most spent by one: ${max(per_session.values()):.4f})"
                )

                # no rollout change lost: the final deployment and the log of decisions
                wait_until(lambda: _converged(replicas), "every replica to serve the stored flags", 300)
                dep = store.get_deployment("helper")
                assert dep is not None
                assert dep["state"] == "paused" and dep["strategy"] == "canary", dep
                assert dep["weight"] == 20 and str(dep["candidate_version"]).startswith("helper@2.0.0")
                mine = [
                    d["actor"]
                    for d in reversed(store.rollout_decisions("helper", limit=None))
                    if str(d.get("actor", "")).startswith("anchor-")
                ]
                assert mine == [
                    "anchor-0-canary",
                    "anchor-1-pause",
                    "anchor-2-resume",
                    "anchor-3-abort",
                    "anchor-4-canary",
                    "anchor-5-pause",
                ], mine

            # no flag change lost: every replica shows the same final set
            for replica in replicas:
                view = _flags(replica)
                by_name = {f["name"]: f for f in view["flags"]}
                assert by_name["shared"]["targeting"] == {"fractional": [["on", 90], ["off", 10]]}
                for i in range(9):
                    pct = 10 * (i + 1)
                    assert by_name[f"f{i}"]["targeting"] == {"fractional": [["on", pct], ["off", 100 - pct]]}
                # one revision per change at least (an attempt whose answer was lost may count twice)
                assert view["revision"] >= 1 + len(flag_changes.done)

            print(
                f"\n{len(acked)} acknowledged interactions in {len(versions)} sessions; "
                f"{len(load.retried)} turns retried ({sorted(set(load.retried))}); "
                f"{len(cut)} sessions cut by their cap; spent ${total:.4f} of ${GLOBAL_CAP_USD}; "
                f"flag changes {len(flag_changes.done)}, rollout changes {len(rollout_changes.done)} "
                f"({len(flag_changes.failures) + len(rollout_changes.failures)} attempts retried)"
            )
            for replica in replicas:  # a graceful stop drains
                assert replica.stop() == 0, replica.err.read_text(errors="replace")[-2000:]
    finally:
        if load is not None:
            load.stop()
        if proxy is not None:
            proxy.close()
        for replica in replicas:
            if replica.proc is not None and replica.proc.poll() is None:
                replica.proc.kill()
                replica.proc.wait(timeout=60)
        llm.stop()


def _wait_experiment_everywhere(replicas: list[Replica]) -> None:
    """Every replica assigns by the experiment: probe sessions sent to each replica directly get the
    same version from all of them, and both arms appear."""
    probes = [f"probe-{i}" for i in range(8)]

    def agreed() -> bool:
        seen: dict[str, set[str]] = defaultdict(set)
        for replica in replicas:
            for p in probes:
                r = _HTTP.post(
                    f"{replica.url}/v1/agents/chat/invoke",
                    json={"input": f"{p}: hello", "session_id": p},
                    timeout=60,
                )
                if r.status_code != 200:
                    return False
                seen[p].add(r.json()["version"])
        labels = {next(iter(v)).split("@", 1)[1].split("+", 1)[0] for v in seen.values()}
        return all(len(v) == 1 for v in seen.values()) and labels == {"1.0.0", "2.0.0"}

    wait_until(agreed, "every replica to assign versions by the experiment")
