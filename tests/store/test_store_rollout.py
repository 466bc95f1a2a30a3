"""Deployments, decisions and experiments in a real SQLite file and the local PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from shipyard.errors import ConflictError
from shipyard.store import Store


def test_first_save_creates_the_row_and_logs_the_decision(store: Store) -> None:
    assert store.get_deployment("support") is None
    row = store.save_deployment(
        "support",
        {"stable_version": "support@1.0.0+aaaaaaa"},
        expected_revision=None,
        decision={"action": "deploy", "candidate": "support@1.0.0+aaaaaaa", "numbers": {"gate_run": "r1"}},
    )
    assert row["revision"] == 1 and row["strategy"] == "none" and row["state"] == "stable"
    assert store.get_deployment("support") == row
    [d] = store.rollout_decisions("support")
    assert d["action"] == "deploy" and d["numbers"] == {"gate_run": "r1"} and d["actor"] == "auto"


def test_update_needs_the_revision_it_read(store: Store) -> None:
    store.save_deployment("support", {"stable_version": "v1"}, expected_revision=None)
    row = store.save_deployment(
        "support",
        {
            "candidate_version": "v2",
            "strategy": "canary",
            "weight": 5,
            "state": "running",
            "config": {"steps": [5]},
        },
        expected_revision=1,
        decision={"action": "start", "candidate": "v2"},
    )
    assert row["revision"] == 2 and row["weight"] == 5 and row["config"] == {"steps": [5]}
    with pytest.raises(ConflictError) as err:
        store.save_deployment(
            "support", {"weight": 25}, expected_revision=1, decision={"action": "step_up", "candidate": "v2"}
        )
    assert "changed since you read it: now canary running, 5% to v2 (revision 2); retry" in err.value.message
    # the loser's decision was not written and the state is untouched
    assert [d["action"] for d in store.rollout_decisions("support")] == ["start"]
    assert store.get_deployment("support")["weight"] == 5  # type: ignore[index]


def test_creating_twice_is_a_conflict(store: Store) -> None:
    store.save_deployment("support", {"stable_version": "v1"}, expected_revision=None)
    with pytest.raises(ConflictError, match="now none stable"):
        store.save_deployment("support", {"stable_version": "v2"}, expected_revision=None)


def test_two_admins_at_once_one_wins(db_url: str) -> None:
    """Threads with their own Store (own connections) race on the same revision: exactly one wins."""
    setup = Store(db_url)
    setup.save_deployment("support", {"stable_version": "v1"}, expected_revision=None)
    setup.close()
    barrier = threading.Barrier(6)
    results: list[str] = []
    lock = threading.Lock()

    def admin(n: int) -> None:
        s = Store(db_url, migrate=False)
        try:
            barrier.wait()
            s.save_deployment(
                "support",
                {"weight": n * 10},
                expected_revision=1,
                decision={"action": "pause", "actor": f"a{n}"},
            )
            outcome = "won"
        except ConflictError:
            outcome = "conflict"
        finally:
            s.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=admin, args=(n,)) for n in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 5 + ["won"]
    check = Store(db_url, migrate=False)
    try:
        row = check.get_deployment("support")
        decisions = check.rollout_decisions("support")
    finally:
        check.close()
    assert row is not None and row["revision"] == 2
    assert len(decisions) == 1 and row["weight"] == int(decisions[0]["actor"][1:]) * 10


def test_decisions_newest_first_and_by_candidate(store: Store) -> None:
    for i, cand in enumerate(["v2", "v2", "v3"]):
        store.add_rollout_decision(
            "support", {"action": "hold", "candidate": cand, "step": i, "verdict": "PASS"}
        )
    assert [d["step"] for d in store.rollout_decisions("support")] == [2, 1, 0]
    assert [d["step"] for d in store.rollout_decisions("support", candidate="v2", limit=1)] == [1]
    with pytest.raises(ValueError, match="action must be one of"):
        store.add_rollout_decision("support", {"action": "explode"})


def test_experiment_lifecycle(store: Store) -> None:
    exp = store.create_experiment("support", {"a": "v1", "b": "v2"}, 30, ["completion"], experiment_id="e1")
    assert store.get_experiment("e1") == {**exp, "started_at": store.get_experiment("e1")["started_at"]}  # type: ignore[index]
    assert [e["id"] for e in store.list_experiments("support", "running")] == ["e1"]
    stopped = store.stop_experiment("e1", {"verdict": "no detectable difference"})
    assert stopped["state"] == "stopped" and stopped["report"] == {"verdict": "no detectable difference"}
    again = store.stop_experiment("e1", {"verdict": "other"})
    assert again["report"] == {"verdict": "no detectable difference"}
    assert store.list_experiments("support", "running") == []
