"""Sticky, pure assignment; the runtime's assigner; canary tagging; version fallback."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from rollout_helpers import gate_run

from shipyard.flags import fractional
from shipyard.rollout import Deployment, RolloutAssigner, VersionUnavailable, assign, assignment_key
from shipyard.runtime import Runtime
from shipyard.store import Store

A, B = "support@1.0.0+aaaaaaa", "support@1.2.0+bbbbbbb"


def canary(weight: int, **kw: object) -> Deployment:
    return Deployment(
        agent="support",
        stable_version=A,
        candidate_version=B,
        strategy="canary",
        weight=weight,
        state="running",
        **kw,  # type: ignore[arg-type]
    )


def test_same_key_same_version_every_time() -> None:
    dep = canary(25)
    for i in range(200):
        key = f"session-{i}"
        first = assign(dep, key)
        assert all(assign(dep, key) == first for _ in range(3))
        # the same answer another replica computes from nothing but the deployment and the key
        assert first == fractional(f"support:{key}", [(B, 25), (A, 75)])


def test_distribution_follows_the_weight() -> None:
    counts = Counter(assign(canary(25), f"s{i}") for i in range(20_000))
    assert 0.23 < counts[B] / 20_000 < 0.27


def test_raising_the_weight_never_moves_a_session_off_the_candidate() -> None:
    keys = [f"s{i}" for i in range(5_000)]
    previous = {k for k in keys if assign(canary(5), k) == B}
    for w in (25, 50, 75, 100):
        now = {k for k in keys if assign(canary(w), k) == B}
        assert previous <= now
        previous = now
    assert previous == set(keys)


def test_no_candidate_traffic_unless_active() -> None:
    assert {
        assign(
            canary(
                30,
            ),
            f"k{i}",
        )
        for i in range(100)
    } == {A, B}
    for state in ("rolled_back", "aborted", "promoted"):
        dep = Deployment(
            agent="support", stable_version=A, candidate_version=B, strategy="canary", weight=0, state=state
        )
        assert {assign(dep, f"k{i}") for i in range(100)} == {A}
    assert assign(Deployment(agent="support"), "k") is None  # never deployed: the configured current version


def test_assignment_key_prefers_session_then_user() -> None:
    assert assignment_key("sess", "user") == "sess"
    assert assignment_key(None, "user") == "user"
    a, b = assignment_key(None, None), assignment_key(None, None)
    assert a != b  # random per request


def test_experiment_arms_by_split() -> None:
    dep = Deployment(
        agent="support",
        stable_version=A,
        candidate_version=B,
        strategy="experiment",
        weight=30,
        state="running",
        config={"arms": {"a": A, "b": B}, "split": 30, "experiment_id": "e1"},
    )
    counts = Counter(assign(dep, f"s{i}") for i in range(10_000))
    assert 0.27 < counts[B] / 10_000 < 0.33


def test_runtime_assigner_tags_canary_traffic(rt: Runtime, store: Store, ids: dict[str, str]) -> None:
    store.save_deployment(
        "support",
        {
            "stable_version": ids["1.0"],
            "candidate_version": ids["1.2"],
            "strategy": "canary",
            "weight": 50,
            "state": "running",
        },
        expected_revision=None,
    )
    assigner = RolloutAssigner.for_runtime(rt, store)
    assert rt.assigner is assigner

    async def run() -> list:
        return [
            await rt.invoke("support", "Where is my order 10001?", session_id=f"sess-{i}") for i in range(30)
        ]

    records = asyncio.run(run())
    by_version = Counter((r.version, r.traffic_source) for r in records)
    assert set(by_version) == {(ids["1.0"], "production"), (ids["1.2"], "canary")}
    for r in records:
        assert r.version == assign(assigner.deployment("support"), r.session_id)  # type: ignore[arg-type]
    # an explicit version (the admin preview header) wins and is not canary traffic
    forced = asyncio.run(rt.invoke("support", "hi", session_id="sess-0", version="1.1.0"))
    assert forced.version == ids["1.1"] and forced.traffic_source == "production"
    # eval traffic keeps its source
    ev = asyncio.run(rt.invoke("support", "hi", session_id="sess-x", traffic_source="eval"))
    assert ev.traffic_source == "eval"
    # without a session id, the user id is the key: one user keeps one version across requests
    dep = assigner.deployment("support")
    assert dep is not None
    for user in ("user-1", "user-2", "user-3", "user-4"):
        seen = {asyncio.run(rt.invoke("support", "hi", user_id=user)).version for _ in range(4)}
        assert seen == {assign(dep, user)}


def test_a_version_this_process_cannot_run_falls_back_only_to_a_gated_one(
    rt: Runtime, store: Store, ids: dict[str, str]
) -> None:
    store.save_deployment("support", {"stable_version": "support@9.9.9+deadbee"}, expected_revision=None)
    assigner = RolloutAssigner.for_runtime(rt, store)
    # its own current version (1.0) never passed a production gate: serving it would be ungated traffic
    with pytest.raises(VersionUnavailable, match=r"cannot run support@9\.9\.9"):
        asyncio.run(rt.invoke("support", "Where is my order 10001?", session_id="s"))
    gate_run(store, ids["1.0"], "PASS")
    assigner.refresh()  # the gate is read from the store at each refresh, like the deployments
    record = asyncio.run(rt.invoke("support", "Where is my order 10001?", session_id="s"))
    assert record.version == ids["1.0"] and record.status == "completed"


def test_a_candidate_this_process_cannot_run_serves_the_stable_version(
    rt: Runtime, store: Store, ids: dict[str, str]
) -> None:
    store.save_deployment(
        "support",
        {"stable_version": ids["1.1"], "candidate_version": "support@9.9.9+deadbee", "strategy": "canary",
         "weight": 100, "state": "running"},
        expected_revision=None,
    )  # fmt: skip
    RolloutAssigner.for_runtime(rt, store)
    record = asyncio.run(rt.invoke("support", "Where is my order 10001?", session_id="s"))
    assert record.version == ids["1.1"] and record.traffic_source == "production"


def test_refresh_picks_up_changes(rt: Runtime, store: Store, ids: dict[str, str]) -> None:
    assigner = RolloutAssigner.for_runtime(rt, store)
    assert assigner.deployment("support") is None
    store.save_deployment("support", {"stable_version": ids["1.2"]}, expected_revision=None)
    assert assigner.deployment("support") is None  # the hot path never reads the store
    assigner.refresh()
    assert assigner.deployment("support").stable_version == ids["1.2"]  # type: ignore[union-attr]
