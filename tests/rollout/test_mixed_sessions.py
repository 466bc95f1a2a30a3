"""A session served by both versions of a canary (replicas refresh their assignment a moment apart)
counts in neither arm: it is left out of both, the analysis says how many were, and a verdict it
would have swung is the one of the other sessions."""

from __future__ import annotations

import random
from typing import Any

import httpx
from records import interaction
from rollout_helpers import Clock, fill, gate_run

from shipyard.rollout import ArmSample, RolloutController, analyze, analyze_arms, canary_arms
from shipyard.store import InteractionRecord, Store

STABLE, CANDIDATE = "support@1.0.0+aaaaaaa", "support@1.2.0+bbbbbbb"


def clean_arm(version: str, source: str, sessions: int, *, seed: int) -> list[InteractionRecord]:
    """Completed sessions of 1-3 turns of one arm, latency and cost drawn alike for every arm."""
    rng = random.Random(seed)
    return [
        interaction(
            session_id=f"{source}-{seed}-{s}",
            version=version,
            traffic_source=source,
            latency_ms=rng.gauss(900, 120),
            cost_usd=max(0.0, rng.gauss(0.0004, 0.00005)),
        )
        for s in range(sessions)
        for _ in range(rng.randint(1, 3))
    ]


def moved_session(name: str, *, stable_turns: int = 1, canary_turns: int = 4) -> list[InteractionRecord]:
    """A session the stable version began and the candidate went on with after a step up: the
    candidate's turns fail (it picked up the other version's conversation)."""
    return [
        *(interaction(session_id=name, version=STABLE, latency_ms=900.0) for _ in range(stable_turns)),
        *(
            interaction(
                session_id=name, version=CANDIDATE, traffic_source="canary", status="failed", latency_ms=900.0
            )
            for _ in range(canary_turns)
        ),
    ]


def split(records: list[InteractionRecord]) -> tuple[list[InteractionRecord], list[InteractionRecord]]:
    return [r for r in records if r.version == STABLE], [r for r in records if r.version == CANDIDATE]


def test_a_mixed_session_is_left_out_of_both_arms_and_counted() -> None:
    base = clean_arm(STABLE, "production", 30, seed=1)
    cand = clean_arm(CANDIDATE, "canary", 10, seed=2)
    moved = [*moved_session("m1", stable_turns=2, canary_turns=3), *moved_session("m2")]
    # records without a session id are never taken as one session served by both versions
    bare = [interaction(session_id="", version=STABLE), interaction(session_id="", version=CANDIDATE)]
    mixed_base, mixed_cand = split(moved + bare)
    arm_b, arm_c, left_out = canary_arms(base + mixed_base, cand + mixed_cand)
    assert left_out == {"mixed_sessions": 2, "mixed_interactions": {"baseline": 3, "canary": 7}}
    assert arm_b.n == len(base) + 1 and arm_c.n == len(cand) + 1  # only the session-less record each
    assert arm_c.completed == arm_c.n  # none of the moved sessions' failed turns
    assert arm_b.units == 31 and len(arm_b.sessions) == 31
    # the sample-ratio check counts the moved sessions where the assignment now puts them: the canary
    assert len(arm_c.sessions) == 11 and arm_c.units == 13
    # the statistics are those of the records left (bar the canary's unit count)
    plain_b = ArmSample.from_records([*base, bare[0]])
    assert arm_b.to_dict() == plain_b.to_dict() and len(arm_b.sessions) == len(plain_b.sessions)
    nothing = canary_arms(base, cand)[2]
    assert nothing == {"mixed_sessions": 0, "mixed_interactions": {"baseline": 0, "canary": 0}}
    assert canary_arms(base, cand)[1].units == 10


def test_mixed_sessions_do_not_swing_the_verdict() -> None:
    """Twelve sessions moved to the candidate mid-conversation, whose candidate turns failed: counted
    in the canary they fail it; left out, the verdict is that of the other sessions, a pass."""
    base = clean_arm(STABLE, "production", 300, seed=3)
    cand = clean_arm(CANDIDATE, "canary", 100, seed=4)
    mixed_base, mixed_cand = split([r for k in range(12) for r in moved_session(f"moved-{k}")])
    settings: dict[str, Any] = dict(expected_split=0.25, min_samples_per_arm=100)

    biased = analyze(
        ArmSample.from_records(base + mixed_base), ArmSample.from_records(cand + mixed_cand), **settings
    )
    assert biased.verdict == "FAIL" and biased.metric("task_completion").failed

    analysis = analyze_arms(base + mixed_base, cand + mixed_cand, **settings)
    clean = analyze_arms(base, cand, **settings)
    assert analysis["verdict"] == clean["verdict"] == "PASS"
    assert analysis["mixed_sessions"] == 12 and clean["mixed_sessions"] == 0
    assert analysis["mixed_interactions"] == {"baseline": 12, "canary": 48}
    assert analysis["metrics"] == clean["metrics"] and analysis["score"] == clean["score"]
    assert analysis["canary"]["n"] == clean["canary"]["n"] == len(cand)
    assert analysis["canary"]["units"] == 112 and analysis["srm"]["observed"] == [300, 112]
    assert not analysis["srm"]["flagged"]


def start(ctl: RolloutController) -> None:
    gate_run(ctl.store, ctl.resolve("support", "1.2"), "PASS")
    ctl.start_canary(
        "support", "1.2", actor="alice", steps="10,50,100", min_interactions=100, min_duration_s=60
    )


def test_the_controller_tick_leaves_mixed_sessions_out(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    """A canary step in the real store: sessions that replicas served with both versions around the
    step's start would fail it; the tick leaves them out, says so, and steps up."""
    start(ctl)
    fill(store, ids, clock, 10, total=1500)
    at = clock.t + 2
    moved = [
        r
        for k in range(10)
        for r in [
            interaction(session_id=f"moved-{k}", version=ids["1.0"], created_at=at),
            *(
                interaction(
                    session_id=f"moved-{k}",
                    version=ids["1.2"],
                    traffic_source="canary",
                    status="failed",
                    created_at=at + 1 + t,
                )
                for t in range(4)
            ),
        ]
    ]
    store.write_interactions(moved)
    clock.advance(61)
    baseline = store.list_interactions("support", version=ids["1.0"], traffic_source="production", limit=None)
    canary = store.list_interactions("support", version=ids["1.2"], traffic_source="canary", limit=None)
    assert (len(baseline), len(canary)) == (1350 + 10, 150 + 40)
    biased = analyze(
        ArmSample.from_records(baseline),
        ArmSample.from_records(canary),
        expected_split=0.1,
        min_samples_per_arm=100,
    )
    assert biased.verdict == "FAIL"  # what counting them in both arms would do

    d = ctl.tick("support")
    assert d is not None and (d.action, d.verdict) == ("step_up", "PASS"), d.reasons
    assert d.numbers["analysis"]["mixed_sessions"] == 10
    assert d.numbers["analysis"]["mixed_interactions"] == {"baseline": 10, "canary": 40}
    assert d.numbers["canary"]["interactions"] == 150 + 40  # as read from the store
    logged = ctl.decisions("support")[0]
    assert logged["action"] == "step_up" and logged["numbers"]["analysis"]["mixed_sessions"] == 10


def test_the_argo_endpoint_reports_mixed_sessions(
    server: tuple[str, Any], store: Store, ids: dict[str, str]
) -> None:
    """The Argo Rollouts web metric judges through the same place, and shows the count."""
    url, _ = server
    records = [
        *clean_arm(ids["1.0"], "production", 150, seed=5),
        *clean_arm(ids["1.2"], "canary", 150, seed=6),
        *(
            interaction(
                session_id=f"moved-{k}",
                version=ids["1.0" if t == 0 else "1.2"],
                traffic_source="production" if t == 0 else "canary",
                status="completed" if t == 0 else "failed",
            )
            for k in range(15)
            for t in range(4)
        ),
    ]
    store.write_interactions(records)
    query = {"agent": "support", "canary": "1.2.0", "stable": "1.0.0", "window": "1h", "min_samples": "100"}
    body = httpx.get(f"{url}/k8s/argo/analysis", params=query, timeout=60).json()
    assert body["analysis_verdict"] == "PASS", body
    assert body["mixed_sessions"] == 15
    assert body["mixed_interactions"] == {"baseline": 15, "canary": 45}
