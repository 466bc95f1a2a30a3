"""Statistics, gate decision and reports over a large run: 20,000 cases x 3 repeats.

Prints the time to summarise, decide (with a paired regression test against a baseline) and write
each report kind, and the peak memory Python allocated for them. Run: .venv/bin/python benchmarks/bench_gate.py
"""

from __future__ import annotations

import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from shipyard.config import StagePolicy
from shipyard.evals import (
    REPORT_KINDS,
    EvalRunResult,
    RepeatResult,
    ScoreResult,
    decide_gate,
    summarize_run,
    write_report,
)

CASES = 20_000
REPEATS = 3
CATS = ("functional", "tool_usage", "safety", "latency", "cost")


def make_run(run_id: str, fail_rate: float, seed: int) -> EvalRunResult:
    rnd = random.Random(seed)
    results = []
    for i in range(CASES):
        cat = CATS[i % len(CATS)]
        for r in range(REPEATS):
            ok = rnd.random() > fail_rate
            results.append(
                RepeatResult(
                    case_id=f"c{i}",
                    category=cat,
                    repeat=r,
                    outcome="PASS" if ok else "FAIL",
                    suite="broad",
                    scores=[ScoreResult("contains", ok, float(ok), "" if ok else "expected '42'")],
                    output="The answer is 42." if ok else "I do not know.",
                    latency_ms=rnd.lognormvariate(5, 0.5),
                    cost_usd=0.0004,
                )
            )
    return EvalRunResult(
        run_id=run_id,
        agent="support",
        version=f"support@{run_id}",
        stage="production",
        suites=["broad"],
        results=results,
    )


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    print(f"{label:<34} {time.perf_counter() - t0:8.3f} s")
    return out


def main() -> None:
    base_run, cand_run = make_run("base", 0.01, 1), make_run("cand", 0.02, 2)
    policy = StagePolicy.model_validate(
        {
            "min_pass_rate": {"functional": 0.9, "tool_usage": 0.9},
            "safety": {"min_pass_rate": 0.9},
            "max_p95_latency_ms": 5000,
            "max_mean_cost_usd": 0.01,
            "regression": {},
            "marginal_margin": 0.02,
        }
    )
    print(f"{CASES:,} cases x {REPEATS} repeats = {CASES * REPEATS:,} repeat results")
    tracemalloc.start()
    base = timed("summarise (baseline)", lambda: summarize_run(base_run))
    cand = timed("summarise (candidate)", lambda: summarize_run(cand_run))
    decision = timed(
        "decide (with paired regression)", lambda: decide_gate(cand, policy, base, stage="production")
    )
    with tempfile.TemporaryDirectory() as tmp:
        for kind in REPORT_KINDS:
            path = Path(tmp) / f"report.{kind}"
            timed(f"report {kind}", lambda k=kind, p=path: write_report(k, p, cand_run, cand, decision))
            print(f"{'':<34} {path.stat().st_size / 1e6:8.1f} MB")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"verdict {decision.verdict}; regression p={decision.regression.p_value if decision.regression else None}"
    )
    print(f"peak memory allocated by the steps above: {peak / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
