"""The assigner records what it bucketed an experiment's request by (`metadata.assignment_unit`), and
an experiment arm clusters by that recorded unit; records from before it was recorded are still
grouped by inference."""

from __future__ import annotations

import asyncio

from records import interaction

from shipyard.rollout import RolloutAssigner, assign, assignment_unit
from shipyard.rollout._experiment import experiment_arm
from shipyard.runtime import Runtime
from shipyard.store import InteractionRecord, Store


def turn(session: str, user: str | None, unit: str | None, *, status: str = "completed") -> InteractionRecord:
    metadata = {"experiment": "e1", "arm": "a"}
    if unit is not None:
        metadata["assignment_unit"] = unit
    return interaction(session_id=session, user_id=user, status=status, metadata=metadata)


def test_recorded_units_split_users_that_share_a_placeholder_id() -> None:
    """Callers that send one placeholder user id for everyone, with their own session ids: each
    session was its own unit to the assigner, and stays one; inferred, they were one big user."""
    recorded = [turn(f"chat-{i}", "anonymous", "session") for i in range(12)]
    arm = experiment_arm(recorded, name="v1")
    assert arm.n == 12 and arm.units == 12 and all(s.n == 1 for s in arm.sessions)
    old = [turn(f"chat-{i}", "anonymous", None) for i in range(12)]
    inferred = experiment_arm(old, name="v1")
    assert inferred.units == 1 and inferred.sessions[0].n == 12  # today's inference, kept for old records


def test_each_recorded_unit_kind_and_old_records_together() -> None:
    records = [
        *(turn(f"fresh-{i}", "alice", "user") for i in range(3)),  # no session supplied: alice's unit
        *(turn("chat-1", "bob", "session") for _ in range(4)),  # a session of four turns
        turn("chat-2", "bob", "session"),  # bob's one-turn session: its own unit (inferred: bob's)
        *(turn(f"anon-{i}", None, "request") for i in range(2)),  # neither: each request alone
        turn("req-x", "carol", "request"),  # a request unit is the record, whatever its user
        turn("req-y", "carol", "request"),
        *(turn(f"old-{i}", "dave", None) for i in range(2)),  # old records: inferred, dave's unit
        turn("odd", "erin", "team"),  # a value the assigner never writes: inferred too
    ]
    arm = experiment_arm(records)
    assert arm.n == 15
    assert sorted(s.n for s in arm.sessions) == [1, 1, 1, 1, 1, 1, 2, 3, 4] and arm.units == 9


def test_a_recorded_unit_without_its_id_falls_back_to_inference() -> None:
    """`user` recorded on a record that has no user id (a record edited or imported): inferred."""
    records = [turn(f"s{i}", None, "user") for i in range(3)]
    assert experiment_arm(records).units == 3


def test_assignment_unit_names_what_assignment_key_keys_on() -> None:
    assert assignment_unit("sess", "user") == "session"
    assert assignment_unit(None, "user") == assignment_unit("", "user") == "user"
    assert assignment_unit(None, None) == "request"


def test_the_runtime_assigner_records_the_unit(rt: Runtime, store: Store, ids: dict[str, str]) -> None:
    """Through the real runtime: the unit lands on the stored record, overriding what a request's own
    metadata said, and the arm's clusters are the assigner's units, e-mail user ids included (the
    record's metadata is masked at rest, its user id is not)."""
    store.save_deployment(
        "support",
        {
            "stable_version": ids["1.0"],
            "candidate_version": ids["1.2"],
            "strategy": "experiment",
            "weight": 50,
            "state": "running",
            "config": {"arms": {"a": ids["1.0"], "b": ids["1.2"]}, "split": 50, "experiment_id": "e1"},
        },
        expected_revision=None,
    )
    RolloutAssigner.for_runtime(rt, store)

    async def run() -> list[InteractionRecord]:
        out: list[InteractionRecord] = []
        for i in range(6):  # one placeholder user, its own session each: six units
            out.append(await rt.invoke("support", "Where is my order 10001?", session_id=f"chat-{i}",
                                       user_id="anonymous", metadata={"assignment_unit": "user"}))  # fmt: skip
        for user in ("ann@example.com", "bob@example.com"):  # no session: the user, twice each
            for _ in range(2):
                out.append(await rt.invoke("support", "hi", user_id=user))
        out.append(await rt.invoke("support", "hi"))  # neither: the request
        return out

    kept = asyncio.run(run())  # the records as they are kept (masked at rest), then stored
    store.write_interactions(kept)
    stored = [store.get_interaction(r.id) for r in kept]
    assert all(r is not None for r in stored)
    units = [r.metadata.get("assignment_unit") for r in stored if r is not None]
    assert units == ["session"] * 6 + ["user"] * 4 + ["request"]
    assert all(r is not None and r.metadata["experiment"] == "e1" for r in stored)
    dep = rt.assigner.deployment("support")  # type: ignore[union-attr]
    assert dep is not None
    for r in stored[6:10]:
        assert r is not None and r.version == assign(dep, r.user_id or "")
    assert [r.user_id for r in stored[6:10] if r is not None] == ["ann@example.com"] * 2 + [
        "bob@example.com"
    ] * 2
    arm = experiment_arm([r for r in stored if r is not None])
    assert arm.n == 11 and arm.units == 6 + 2 + 1
