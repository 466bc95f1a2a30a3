"""Changes reach other replicas: file polling, and Redis pub/sub (real Redis on 127.0.0.1:6379)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from waiting import wait_until

from shipyard.flags import FlagAdmin, FlagStore, FlagSync, Reason, parse_flag_set, project_flags

REDIS_URL = "redis://127.0.0.1:6379/0"

FLAG = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}


@pytest.fixture
def channel() -> Iterator[str]:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    name = f"shipyard:flags:test:{uuid.uuid4().hex[:8]}"
    yield name
    redis.Redis.from_url(REDIS_URL).delete(f"{name}:document")


def test_a_change_published_on_redis_reaches_a_second_store(tmp_path: Path, channel: str) -> None:
    writer_file = tmp_path / "a" / "flags.json"
    replica = FlagStore()
    with FlagSync(replica, redis_url=REDIS_URL, channel=channel) as sync:
        assert sync.wait_subscribed()
        admin = FlagAdmin(writer_file, redis_url=REDIS_URL, channel=channel)
        admin.set("new_refund_flow", FLAG)
        assert admin.published == 1  # our replica was listening
        wait_until(lambda: replica.get("new_refund_flow") is not None, "the replica to hear of the flag")
        assert replica.evaluate("new_refund_flow", True).value is False
        admin.rollout("new_refund_flow", 100)
        wait_until(lambda: replica.revision == 2, "the replica to hear of the rollout")
        assert replica.evaluate("new_refund_flow", False, {"targetingKey": "u1"}).reason == Reason.SPLIT
        admin.disable("new_refund_flow")
        wait_until(
            lambda: replica.evaluate("new_refund_flow", False).reason == Reason.DISABLED,
            "the replica to hear the flag is disabled",
        )


def test_a_replica_starting_later_catches_up_from_redis(tmp_path: Path, channel: str) -> None:
    FlagAdmin(tmp_path / "flags.json", redis_url=REDIS_URL, channel=channel).set("late", FLAG)
    replica = FlagStore()
    with FlagSync(replica, redis_url=REDIS_URL, channel=channel) as sync:
        assert sync.wait_subscribed()
        assert replica.get("late") is not None


def test_file_polling_reloads_changes_and_keeps_flags_when_the_file_is_bad(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": {"a": FLAG}}))
    store = FlagStore.from_file(path)
    sync = FlagSync(store, file=path, poll_interval_s=0.05)
    assert sync.check_file() is False  # unchanged since the sync was made
    path.write_text(json.dumps({"flags": {"a": {**FLAG, "defaultVariant": "on"}, "b": FLAG}}))
    assert sync.check_file() is True and store.evaluate("a", False).value is True
    path.write_text(json.dumps({"flags": {"a": {**FLAG, "defaultVariant": "onn"}}}))
    assert sync.check_file() is False
    assert "flags.a.defaultVariant: 'onn' is not a variant" in (sync.last_error or "")
    assert store.names() == ["a", "b"]  # the bad file did not replace the good flags
    # and the background poller picks up a fix without being asked
    with sync:
        path.write_text(json.dumps({"flags": {"c": FLAG}}))
        wait_until(lambda: store.names() == ["c"], "the poller to load the fixed file")
    assert sync.last_error is None


def test_admin_updates_a_local_store_at_once(tmp_path: Path) -> None:
    store = FlagStore(parse_flag_set({"flags": {}}))
    FlagAdmin(tmp_path / "flags.json", store=store).set("x", FLAG)
    assert store.get("x") is not None and store.revision == 1


def test_concurrent_admins_never_lose_a_change(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "flags.json"
    names = [f"flag_{i}" for i in range(12)]
    threads = [threading.Thread(target=FlagAdmin(path).set, args=(n, FLAG)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fs = FlagAdmin(path).flag_set()
    assert sorted(fs.flags) == sorted(names) and fs.revision == len(names)


def test_project_flags_from_shipyard_yaml(
    tmp_path: Path, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from shipyard.cli import app
    from shipyard.config import load_config

    monkeypatch.chdir(tmp_path)
    for var in ("SHIPYARD_CONFIG", "SHIPYARD_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    (tmp_path / "shipyard.yaml").write_text(f"flags:\n  file: flags.yaml\n  channel: {channel}\n")
    store, sync = project_flags(load_config(tmp_path / "shipyard.yaml"))
    try:
        assert store.names() == [] and sync.wait_subscribed()
        # the CLI writes the YAML file and publishes: the running replica has the flag without a restart
        result = CliRunner().invoke(app, ["flags", "rollout", "x", "50"])
        assert result.exit_code == 2 and "no flag named 'x'" in result.output
        flag = json.dumps(FLAG)
        result = CliRunner().invoke(app, ["flags", "set", "x", flag])
        assert result.exit_code == 0 and "published to redis: 1 replica(s) listening" in result.output
        wait_until(lambda: store.get("x") is not None, "the flag set by the CLI to arrive")
        assert "defaultVariant: 'off'" in (tmp_path / "flags.yaml").read_text().replace('"', "'")
    finally:
        sync.stop()
