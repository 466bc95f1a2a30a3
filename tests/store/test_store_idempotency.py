"""Idempotency keys in the store: one request wins a key, on SQLite and PostgreSQL, even at once."""

from __future__ import annotations

import threading

from shipyard.store import Store

NOW = 1_000_000.0


def claim(store: Store, owner: str, *, key: str = "k1", fingerprint: str = "f1", now: float = NOW):  # type: ignore[no-untyped-def]
    return store.claim_idempotency_key(
        "caller/agent", key, fingerprint, owner, lease_s=30, ttl_s=3600, now=now
    )


def test_the_first_claim_wins_and_the_answer_is_kept(store: Store) -> None:
    won, entry = claim(store, "a")
    assert won and entry.state == "running" and entry.owner == "a" and entry.lease_until == NOW + 30
    won, seen = claim(store, "b", fingerprint="other")
    assert not won and seen.owner == "a" and seen.fingerprint == "f1"  # b compares fingerprints itself
    assert store.renew_idempotency_lease("caller/agent", "k1", "a", 30, now=NOW + 10)
    assert not store.renew_idempotency_lease("caller/agent", "k1", "b", 30)
    assert not store.complete_idempotency_key(
        "caller/agent", "k1", "b", status_code=200, body="{}", headers={}, interaction_id=None
    )
    assert store.complete_idempotency_key(
        "caller/agent",
        "k1",
        "a",
        status_code=200,
        body='{"output": "done \\u0000"}',
        headers={"x-interaction-id": "i1"},
        interaction_id="i1",
    )
    done = store.get_idempotency_key("caller/agent", "k1")
    assert done is not None and done.state == "done" and done.body == '{"output": "done \\u0000"}'
    assert done.headers == {"x-interaction-id": "i1"} and done.lease_until == NOW + 40
    assert not store.release_idempotency_key("caller/agent", "k1", "a")  # done keys stay
    assert store.get_idempotency_key("other/agent", "k1") is None  # scopes never meet


def test_a_released_or_expired_key_can_be_claimed_again(store: Store) -> None:
    claim(store, "a")
    assert store.release_idempotency_key("caller/agent", "k1", "a")
    assert claim(store, "b")[0]
    assert not claim(store, "c", now=NOW + 3599)[0]
    won, entry = claim(store, "c", now=NOW + 3600)  # b's entry expired
    assert won and entry.owner == "c"
    claim(store, "d", key="k2", now=NOW)
    assert store.purge_idempotency_keys(now=NOW + 3600) == 1  # k2; c's entry lives until NOW + 7200
    assert store.get_idempotency_key("caller/agent", "k2") is None


def test_concurrent_claims_have_exactly_one_winner(db_url: str) -> None:
    stores = [Store(db_url) for _ in range(2)]  # two replicas' connection pools
    results: list[bool] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def race(i: int) -> None:
        try:
            start.wait()
            results.append(claim(stores[i % 2], f"owner{i}")[0])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == [False] * 7 + [True]
    for s in stores:
        s.close()
