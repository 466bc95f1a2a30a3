"""Shadow replay on the demo agent: interactions replayed per second (each runs three times: the
baseline twice and the candidate once), as a ratio to serving the same interactions once in the
same run, and the noise rate of the baseline against itself per kind (the candidate is the version
that served the traffic, so every reported difference would be a false one).

    .venv/bin/python benchmarks/bench_shadow.py [--n 60] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.loop import ShadowRunner
from shipyard.runtime import Runtime
from shipyard.store import BatchWriter, Store

INPUTS = [
    "Where is my order {n}?",
    "I want to return order {n}",
    "Please refund order {n}.",
    "How long do refunds take?",
    "Can I still cancel order {n}?",
]


def texts(n: int) -> list[str]:
    return [INPUTS[i % len(INPUTS)].format(n=10001 + i % 40) for i in range(n)]


async def serve(rt: Runtime, inputs: list[str], version: str, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, text: str) -> None:
        async with gate:
            await rt.invoke("support", text, session_id=f"bench-{i}", user_id=f"u{i}", version=version)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i, t) for i, t in enumerate(inputs)))
    return time.perf_counter() - t0


async def main(n: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(Path(tmp) / "demo")
        cfg = load_config(root / "shipyard.yaml")
        cfg.shadow.max_cost_usd = 100.0
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        writer = BatchWriter(store)
        rt = Runtime(cfg, store=store, writer=writer)
        inputs = texts(n)
        await serve(rt, inputs[: min(10, n)], "1.2.0", concurrency)  # warm up (not stored as the sample)
        served_s = await serve(rt, inputs, "1.2.0", concurrency)
        writer.flush()
        runner = ShadowRunner(rt, store, concurrency=concurrency)
        records = runner.select("support", since_s=3600, sample=n, seed=1)
        t0 = time.perf_counter()
        report = await runner.run("support", "1.2.0", records)
        shadow_s = time.perf_counter() - t0
        await rt.aclose()
        writer.close()
        store.close()
    served_rate = n / served_s
    replay_rate = len(report.comparisons) / shadow_s
    print(
        f"shadow replay of the demo agent: {len(report.comparisons)} interactions, concurrency {concurrency}"
    )
    print(f"  served once (reference):   {served_rate:8.1f} interactions/s")
    print(
        f"  shadow-replayed (x3 runs): {replay_rate:8.1f} interactions/s  ratio {replay_rate / served_rate:.2f}"
    )
    print(
        f"  agent runs per second: shadow {replay_rate * 3:.1f} vs serving {served_rate:.1f} "
        f"(ratio {replay_rate * 3 / served_rate:.2f}; the three arms of an interaction run at once)"
    )
    print("  noise of the baseline against itself (candidate = the served version):")
    for k in report.summary["kinds"].values():
        print(
            f"    {k['kind']:<11} noise rate {k['noise_rate']:6.1%}  false differences {k['different']:3d}"
            f"  reported: {'yes' if k['reported'] else 'no'}"
        )
    print(f"  verdict {report.verdict}, differences reported: {len(report.differences)}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=60)
    p.add_argument("--concurrency", type=int, default=4)
    a = p.parse_args()
    asyncio.run(main(a.n, a.concurrency))
