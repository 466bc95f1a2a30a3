"""Flags as one truth across replicas: the flag set lives in the store with a revision and
compare-and-set changes; replicas converge through Redis notices and a revision poll.

Unit tests run on real SQLite files; the replica tests start real `shipyard serve` processes on one
PostgreSQL schema (tests/support/testdb.py) and Redis DB 6 (127.0.0.1:6379)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from testdb import fresh_database
from waiting import wait_until

from shipyard.errors import ConflictError
from shipyard.flags import (
    FlagAdmin,
    FlagStore,
    FlagSync,
    SharedFlags,
    content_digest,
    load_flag_file,
    parse_flag_set,
    rollout_percent,
)
from shipyard.store import Store

_HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
"""For one-off requests instead of `httpx.get(...)`: a new connection per request as those make, without
the SSL context each `httpx.get` builds (some 30 ms of CPU per call, a lot in a polling loop)."""

FLAG = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
REDIS_URL = "redis://127.0.0.1:6379/6"  # this work's Redis DB
SHIPYARD = Path(sys.executable).with_name("shipyard")


def _doc(flags: dict[str, Any], revision: int) -> dict[str, Any]:
    return parse_flag_set({"flags": flags}).with_revision(revision).to_json()


# --- the store: compare-and-set on SQLite -----------------------------------------------------------


def test_compare_and_set_refuses_a_change_made_on_a_stale_revision(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        assert store.get_flag_set("p") is None and store.flag_set_revision("p") is None
        first = store.save_flag_set("p", _doc({"a": FLAG}, 1), expected_revision=None, actor="file")
        assert first["revision"] == 1 and first["updated_by"] == "file"
        with pytest.raises(ConflictError, match="now revision 1"):  # created twice: the second loses
            store.save_flag_set("p", _doc({"b": FLAG}, 1), expected_revision=None, actor="api")
        store.save_flag_set("p", _doc({"a": FLAG, "c": FLAG}, 2), expected_revision=1, actor="api")
        with pytest.raises(ConflictError, match="expected revision 1, now revision 2"):
            store.save_flag_set("p", _doc({"a": FLAG, "b": FLAG}, 2), expected_revision=1, actor="api")
        row = store.get_flag_set("p")
        assert row is not None and row["revision"] == 2 and sorted(row["document"]["flags"]) == ["a", "c"]
        assert store.flag_set_revision("other") is None  # one row per project


def test_two_replicas_changing_at_once_lose_nothing(tmp_path: Path) -> None:
    """Two Store objects on one SQLite file and two flag files (two machines): every change stays."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    one, two = Store(url), Store(url)
    try:
        admins = [
            FlagAdmin(
                tmp_path / name / "flags.json", shared=SharedFlags(store, "p", tmp_path / name / "flags.json")
            )
            for name, store in (("one", one), ("two", two))
        ]
        admins[0].set("seed", FLAG)
        errors: list[BaseException] = []

        def work(admin: FlagAdmin, prefix: str) -> None:
            try:
                for i in range(10):
                    admin.set(f"{prefix}{i}", FLAG)
            except BaseException as e:  # reported below: a lost change must fail the test
                errors.append(e)

        threads = [
            threading.Thread(target=work, args=(a, p)) for a, p in zip(admins, ("a", "b"), strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        stored = admins[1].flag_set()
        assert sorted(stored.flags) == sorted(
            ["seed", *(f"a{i}" for i in range(10)), *(f"b{i}" for i in range(10))]
        )
        assert stored.revision == 21
    finally:
        one.close()
        two.close()


def test_the_file_seeds_the_store_and_only_new_file_content_is_imported(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    file_one, file_two = tmp_path / "one" / "flags.json", tmp_path / "two" / "flags.json"
    for f in (file_one, file_two):
        f.parent.mkdir()
        f.write_text(json.dumps({"flags": {"a": FLAG}}))
    with Store(url) as store:
        one, two = SharedFlags(store, "p", file_one), SharedFlags(store, "p", file_two)
        assert one.current().revision == 1  # seeded from the first file
        assert two.current().revision == 1  # the same content on another machine: not imported again
        FlagAdmin(file_two, shared=two).rollout("a", 25)  # revision 2, written to machine two's file
        assert load_flag_file(file_two).revision == 2
        # machine one's file still says what it said: the store wins, the rollout stays
        kept = one.current()
        assert kept.revision == 2 and rollout_percent(kept.flags["a"]) == 25
        # someone edits machine one's file: content the store never saw is imported as a new revision
        file_one.write_text(json.dumps({"flags": {"a": FLAG, "b": FLAG}}))
        edited = one.current()
        assert edited.revision == 3 and sorted(edited.flags) == ["a", "b"]
        assert store.get_flag_set("p")["updated_by"] == "file"  # type: ignore[index]
        # machine two's file (the content its own change wrote) is not brought back
        assert two.current().revision == 3
        assert content_digest(two.current()) == content_digest(edited)


def test_a_replica_catches_up_by_polling_the_store_without_redis(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with Store(url) as store, Store(url) as other:
        shared = SharedFlags(store, "p")
        FlagAdmin(tmp_path / "w" / "flags.json", shared=SharedFlags(other, "p")).set("a", FLAG)
        local = FlagStore(shared.current())
        # Redis at a port nothing listens on: its loop fails and retries; the poll still catches up
        dead = f"redis://127.0.0.1:{_free_port()}/6"
        with FlagSync(local, shared=shared, redis_url=dead, poll_interval_s=0.05):
            FlagAdmin(tmp_path / "w" / "flags.json", shared=SharedFlags(other, "p")).rollout("a", 40)
            wait_until(lambda: local.revision == 2, "the replica to read revision 2 from the store")
        assert rollout_percent(local.get("a")) == 40  # type: ignore[arg-type]


def test_a_redis_notice_carries_only_the_revision_and_brings_the_change(tmp_path: Path) -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    channel = f"shipyard:flags:test:{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with Store(url) as store, Store(url) as other:
        shared = SharedFlags(store, "p")
        writer = FlagAdmin(
            tmp_path / "w" / "flags.json",
            redis_url=REDIS_URL,
            channel=channel,
            shared=SharedFlags(other, "p"),
        )
        writer.set("a", FLAG)
        local = FlagStore(shared.current())
        listener = redis.Redis.from_url(REDIS_URL).pubsub(ignore_subscribe_messages=True)
        listener.subscribe(channel)
        # the poll never comes round in this test: only the notice can bring the change
        with FlagSync(
            local, shared=shared, redis_url=REDIS_URL, channel=channel, poll_interval_s=3600
        ) as sync:
            assert sync.wait_subscribed()
            writer.enable("a", variant="on")
            assert writer.published == 2  # the sync and this test's listener
            wait_until(lambda: local.revision == 2, "the notice to bring revision 2")
        assert local.evaluate("a", False).value is True
        got: list[Any] = []

        def heard() -> bool:
            got.append(listener.get_message(timeout=0.1))
            return got[-1] is not None

        wait_until(heard, "the notice on the channel")
        assert json.loads(got[-1]["data"]) == {"revision": 2}  # no document on Redis: the store has it
        assert not redis.Redis.from_url(REDIS_URL).exists(f"{channel}:document")
        listener.close()


def test_the_store_going_away_keeps_the_last_flags_and_the_poll_recovers(tmp_path: Path) -> None:
    from throwaway import throwaway_postgres

    with throwaway_postgres() as pg, Store(pg.url) as store, Store(pg.url) as other:
        shared = SharedFlags(store, "p")
        writer = FlagAdmin(tmp_path / "w" / "flags.json", shared=SharedFlags(other, "p"))
        writer.set("a", FLAG)
        local = FlagStore(shared.current())
        failures: list[str] = []

        class Loops:
            def failed(self, loop: str, error: BaseException) -> None:
                failures.append(loop)

            def succeeded(self, loop: str) -> None:
                pass

        with FlagSync(local, shared=shared, poll_interval_s=0.05, loops=Loops()):
            pg.stop()
            wait_until(lambda: "flag_file_poll" in failures, "the poll to find the store gone")
            assert local.revision == 1 and local.evaluate("a", True).value is False  # the last known flags
            pg.start()
            wait_until(lambda: _changed(writer), "the store to take a change again")
            wait_until(lambda: local.revision == 2, "the poll to bring the change once the store is back")
        assert local.evaluate("a", False).value is True


def _changed(admin: FlagAdmin) -> bool:
    try:
        admin.enable("a", variant="on")
    except Exception:  # the pool's connections died with the old server: the next try reconnects
        return False
    return True


# --- real replicas: `shipyard serve` on one PostgreSQL schema and Redis ----------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    folder: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return (self.folder / "serve.err").read_text(errors="replace")

    def flags(self) -> dict[str, Any]:
        r = _HTTP.get(f"{self.url}/admin/flags", timeout=60)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def flags_panel(self) -> dict[str, Any]:
        r = _HTTP.get(f"{self.url}/admin/api/dashboard/overview", timeout=60)
        assert r.status_code == 200, r.text
        (panel,) = [p for p in r.json()["panels"] if p["name"] == "flags"]
        return dict(panel)

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = _HTTP.post(f"{self.url}/admin/flags/{path}", json=body or {}, timeout=120)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def put(self, name: str, definition: dict[str, Any]) -> None:
        r = _HTTP.put(f"{self.url}/admin/flags/{name}", json=definition, timeout=120)
        assert r.status_code == 200, r.text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=60)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    """start(name, channel) -> a running replica (its own copy of the demo project, one shared
    PostgreSQL schema and Redis DB 6)."""
    from shipyard.demo import copy_project

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    replicas: list[Replica] = []
    with fresh_database("postgresql", tmp_path) as db_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "REDIS_URL"))}
        env.update(SHIPYARD_DATABASE_URL=db_url, SHIPYARD_REDIS_URL=REDIS_URL)

        def start(name: str, channel: str) -> Replica:
            folder = tmp_path / name
            copy_project(folder)
            cfg = folder / "shipyard.yaml"
            cfg.write_text(cfg.read_text() + f"\nflags:\n  channel: {channel}\n  poll_interval_s: 1.0\n")
            port = _free_port()
            with open(folder / "serve.out", "ab") as out, open(folder / "serve.err", "ab") as err:
                proc = subprocess.Popen(
                    [str(SHIPYARD), "serve", "--port", str(port), "--config", str(cfg)],
                    cwd=folder,
                    stdout=out,
                    stderr=err,
                    env=env,
                )
            replica = Replica(folder, port, proc)
            replicas.append(replica)

            def serving() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(
                        f"shipyard serve exited {proc.returncode}:\n{replica.stderr()[-3000:]}"
                    )
                return "shipyard serving" in replica.stderr()

            wait_until(serving, f"replica {name} to serve")
            return replica

        try:
            yield start
        finally:
            for r in replicas:
                r.stop()


def _converged(replicas: list[Replica]) -> bool:
    """Every replica serves the stored revision and content, and every admin API shows the same."""
    views = [r.flags() for r in replicas]
    first = views[0]
    return all(
        v["revision"] == first["revision"]
        and v["digest"] == first["digest"]
        and v["served"] == {"revision": first["revision"], "digest": first["digest"]}
        for v in views
    )


def test_replicas_share_one_flag_set(cluster: Any) -> None:
    channel = f"shipyard:flags:test:{uuid.uuid4().hex[:8]}"
    one, two = cluster("one", channel), cluster("two", channel)
    seeded = one.flags()
    assert seeded["revision"] == 1 and {f["name"] for f in seeded["flags"]} == {
        "refunds",
        "instant_store_credit",
    }
    wait_until(lambda: _converged([one, two]), "both replicas to serve the seeded flags")

    # the bug: a rollout step through replica 1, then an unrelated change through replica 2
    one.put("new_flow", FLAG)
    one.post("new_flow/rollout", {"percent": 10})
    one.post("new_flow/rollout", {"percent": 20})
    two.post("instant_store_credit/disable")
    wait_until(lambda: _converged([one, two]), "both replicas to converge after the rollout")
    for replica in (one, two):
        view = replica.flags()
        assert view["revision"] == 5
        by_name = {f["name"]: f for f in view["flags"]}
        assert by_name["new_flow"]["targeting"] == {"fractional": [["on", 20], ["off", 80]]}  # kept
        assert by_name["instant_store_credit"]["state"] == "DISABLED"

    # 20 interleaved changes of different flags through both replicas at once: none lost
    for i in range(10):
        one.put(f"f{i}", FLAG)
        two.put(f"g{i}", FLAG)
    before = one.flags()["revision"]
    errors: list[BaseException] = []

    def run(fn: Any) -> None:
        try:
            fn()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [
        threading.Thread(
            target=run,
            args=(lambda: [one.post(f"f{i}/rollout", {"percent": 5 * (i + 1)}) for i in range(10)],),
        ),
        threading.Thread(target=run, args=(lambda: [two.post(f"g{i}/disable") for i in range(10)],)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    wait_until(lambda: _converged([one, two]), "both replicas to converge after 20 concurrent changes")
    final = {f["name"]: f for f in two.flags()["flags"]}
    assert two.flags()["revision"] == before + 20
    for i in range(10):
        assert final[f"f{i}"]["targeting"] == {
            "fractional": [["on", 5 * (i + 1)], ["off", 100 - 5 * (i + 1)]]
        }
        assert final[f"f{i}"]["state"] == "ENABLED"
        assert final[f"g{i}"]["state"] == "DISABLED"
    assert final["new_flow"]["targeting"] == {"fractional": [["on", 20], ["off", 80]]}

    # a replica started after all this catches up, and its stale copy of the flag file (the demo's
    # original) is not imported over the store; it listens on another channel, so it misses every
    # notice and converges through the revision poll alone
    three = cluster("three", f"{channel}:elsewhere")
    wait_until(lambda: _converged([one, two, three]), "the late replica to catch up")
    assert three.flags()["revision"] == before + 20
    one.post("new_flow/rollout", {"percent": 50})
    wait_until(lambda: _converged([one, two, three]), "the replica that missed the notice to poll the change")
    served = {f["name"]: f for f in three.flags()["flags"]}
    assert served["new_flow"]["targeting"] == {"fractional": [["on", 50], ["off", 50]]}
    # the dashboard of every replica shows the same flags and revision
    panels = [three.flags_panel(), one.flags_panel(), two.flags_panel()]
    assert all(p == panels[0] for p in panels)
    assert (
        f"revision {before + 21} (stored" in panels[0]["note"]
        and "this replica serves it" in panels[0]["note"]
    )
    assert ["new_flow", "ENABLED", "off", "rollout 50% on"] in panels[0]["rows"]
