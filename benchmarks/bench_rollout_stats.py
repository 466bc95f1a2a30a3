"""Canary and experiment analysis speed.

1. `ArmSample.from_records` over N interaction records per arm (what a controller tick reads).
2. `analyze` (the seven default canary metrics) on two arms of N interactions: with N = 50,000 the
   Hodges-Lehmann estimates sample 1,000,000 of the 2.5e9 pairwise differences.
3. `analyze_experiment` (five metrics, fixed-horizon and sequential) on the same arms.

    .venv/bin/python benchmarks/bench_rollout_stats.py [--n 50000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from shipyard.rollout import ArmSample, analyze, analyze_experiment
from shipyard.store import InteractionRecord, ToolCallRecord


def records(rng: np.random.Generator, n: int, version: str) -> list[InteractionRecord]:
    statuses = rng.choice(["completed", "escalated", "failed", "blocked"], n, p=[0.9, 0.05, 0.04, 0.01])
    latency, cost = rng.lognormal(7, 0.4, n), rng.lognormal(-5, 0.3, n)
    return [
        InteractionRecord(
            id=f"{version}-{i}",
            trace_id=f"t{i}",
            session_id=f"s{i // 4}",
            user_id=None,
            agent="support",
            version=version,
            traffic_source="production",
            input="",
            output="",
            status=str(statuses[i]),
            latency_ms=float(latency[i]),
            cost_usd=float(cost[i]),
            tool_calls=[ToolCallRecord("lookup_order", {}, "success", 10.0)],
            guardrails=[{"name": "pii", "verdict": "allow"}],
            feedback={"thumbs": 1} if i % 3 == 0 else None,
        )
        for i in range(n)
    ]


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=50_000, help="interactions per arm")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the best is printed")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    base, cand = records(rng, args.n, "v1"), records(rng, args.n, "v2")
    t_build = best_of(args.repeat, lambda: ArmSample.from_records(base))
    a, b = ArmSample.from_records(base), ArmSample.from_records(cand)
    t_canary = best_of(args.repeat, lambda: analyze(a, b, expected_split=0.5))
    t_exp = best_of(args.repeat, lambda: analyze_experiment(a, b))
    print(f"interactions per arm:           {args.n:,}")
    print(
        f"ArmSample.from_records:         {t_build * 1e3:8.1f} ms per arm ({t_build / args.n * 1e6:.2f} µs/record)"
    )
    print(f"analyze (7 canary metrics):     {t_canary * 1e3:8.1f} ms")
    print(f"analyze_experiment (5 metrics): {t_exp * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
