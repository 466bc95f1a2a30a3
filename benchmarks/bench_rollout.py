"""Rollout costs: the hot-path assignment (per request) and one canary tick (per agent, every 5 s).

    .venv/bin/python benchmarks/bench_rollout.py [--n 200000] [--records 5000]

Assignment runs on every request: `RolloutAssigner(ex)` reads the in-memory deployment and buckets
the session id with flagd's fractional (murmur3). A tick reads both arms' records of the step's
window from a SQLite store and runs the canary analysis.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from shipyard.rollout import Deployment, RolloutAssigner, RolloutController, assign
from shipyard.runtime import Exchange
from shipyard.store import InteractionRecord, Store, ToolCallRecord, new_id

STABLE, CANDIDATE = "support@1.0.0+aaaaaaa", "support@1.2.0+bbbbbbb"


def records(rng: random.Random, version: str, source: str, n: int, at: float) -> list[InteractionRecord]:
    return [
        InteractionRecord(
            id=new_id(),
            trace_id=new_id(),
            session_id=f"s{rng.getrandbits(40)}",
            user_id=None,
            agent="support",
            version=version,
            traffic_source=source,
            input="Where is my order 10001?",
            output="It shipped.",
            status="completed" if rng.random() < 0.92 else "escalated",
            latency_ms=rng.gauss(900, 150),
            cost_usd=abs(rng.gauss(0.0004, 0.00005)),
            tool_calls=[ToolCallRecord("lookup_order", {"order_id": "10001"}, "success", 3.0)],
            created_at=at,
        )
        for _ in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000, help="assignments to time")
    parser.add_argument("--records", type=int, default=5_000, help="records per arm for the tick")
    args = parser.parse_args()

    dep = Deployment(agent="support", stable_version=STABLE, candidate_version=CANDIDATE, strategy="canary",
                     weight=25, state="running")  # fmt: skip
    keys = [f"session-{i}" for i in range(args.n)]
    t0 = time.perf_counter()
    for k in keys:
        assign(dep, k)
    pure = (time.perf_counter() - t0) / args.n * 1e6

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.save_deployment(
            "support", {"stable_version": STABLE, "candidate_version": CANDIDATE, "strategy": "canary",
                        "weight": 25, "state": "running", "config": {"steps": [25, 50, 100], "step_started_at": 0,
                                                                     "min_interactions": 100, "min_duration_s": 0}},
            expected_revision=None,
        )  # fmt: skip
        assigner = RolloutAssigner(store)
        assigner.refresh()
        exchanges = [
            Exchange("support", "hi", k, None, "production", [], {}, None, None, None) for k in keys[:50_000]
        ]
        t0 = time.perf_counter()
        for ex in exchanges:
            assigner(ex)
        hot = (time.perf_counter() - t0) / len(exchanges) * 1e6

        rng = random.Random(1)
        now = time.time()
        store.write_interactions(records(rng, STABLE, "production", args.records * 3, now - 10))
        store.write_interactions(records(rng, CANDIDATE, "canary", args.records, now - 10))
        gate = store.create_eval_run("support", CANDIDATE, ["broad.yaml"], stage="production")
        store.finish_eval_run(gate, "finished", {}, {"verdict": "PASS"})  # the tick reads the gate again
        ctl = RolloutController(store, lambda agent, ref: ref or STABLE, hold_every_s=0)
        t0 = time.perf_counter()
        decision = ctl.tick("support")
        tick_s = time.perf_counter() - t0
        store.close()

    print(f"assign (pure function):          {pure:6.2f} µs per request")
    print(f"RolloutAssigner (runtime hook):  {hot:6.2f} µs per request (incl. canary tagging)")
    print(f"canary tick ({args.records * 3} + {args.records} records): {tick_s * 1000:8.1f} ms "
          f"-> {decision.action if decision else None} {decision.verdict if decision else ''}")  # fmt: skip


if __name__ == "__main__":
    main()
