"""What routing adds to a model call, next to what the call itself costs on this machine.

For the demo's support requests (the inputs of evals/support/broad.yaml), in this process:
- the reference: one answer of the in-process scripted model (`ScriptedModel.respond`, no latency)
  to the same request, the cheapest model call there is;
- the feature scorer's decision, the learned router's decision (fitted here on synthetic outcomes:
  its cost does not depend on what it learned), and a whole routed call's decision
  (`SessionRouter.route`: session store read, rules, router, escalation checks) with the in-process
  session store and, with `--redis`, with Redis (one round trip per interaction).

Each is printed as time per call and as a ratio to the reference. Routing's quality and savings are
measured by `shipyard routing evaluate`, not here.

    .venv/bin/python benchmarks/bench_routing.py [--calls 3000] [--redis redis://127.0.0.1:6379/14]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.llm import ScriptedModel
from shipyard.llm._scripted import load_rules
from shipyard.routing import CaseOutcome, FeatureScorer, RedisTiers, RouteRequest, Routing, Signals, fit


def per_call(fn: Callable[[int], Any], n: int) -> float:
    """Seconds per call of fn(i), the best of three rounds."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


async def per_call_async(fn: Callable[[int], Any], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(n):
            await fn(i)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


async def _routed_calls(cfg: Any, requests: list[Any], n: int) -> float:
    """Seconds per routed call, each in a new interaction and session (one session-store read, one
    write: the worst case)."""
    routing = Routing(cfg, router="rules", agents=["support"])
    run = uuid.uuid4().hex[:6]

    async def one(i: int) -> None:
        calls = routing.for_session("support", f"{run}-{i}", lambda m: None, lambda: Signals())
        await calls.route(requests[i % len(requests)], None, None)

    try:
        return await per_call_async(one, n)
    finally:
        store = routing.sessions
        if isinstance(store, RedisTiers):  # leave nothing behind in the shared Redis
            client, _ = store._client()
            keys = [k async for k in client.scan_iter(f"{store.prefix}*")]
            for i in range(0, len(keys), 500):
                await client.delete(*keys[i : i + 500])
        await routing.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--redis", default=None, help="also time the Redis session store (a URL)")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(Path(tmp) / "demo")
        inputs = [
            c["input"] for c in yaml.safe_load((root / "evals/support/broad.yaml").read_text())["cases"]
        ]
        system = "You are the support assistant."
        requests = [[{"role": "system", "content": system}, {"role": "user", "content": t}] for t in inputs]
        model = ScriptedModel(load_rules(root / "rules/support.yaml"))
        n = args.calls
        ref = per_call(lambda i: model.respond(requests[i % len(requests)]), n)

        scorer = FeatureScorer(["small", "large"], [0.5])
        routed = [RouteRequest.of("support", m) for m in requests]
        rules_t = per_call(lambda i: scorer.decide(routed[i % len(routed)]), n)
        outcomes = [
            CaseOutcome(
                f"s/{i}", t, {"small": float("refund" not in t), "large": 1.0}, {"small": 1, "large": 20}
            )
            for i, t in enumerate(inputs)
        ]
        learned = fit("support", outcomes, ["small", "large"], "large", 0.01, ["synthetic"])
        learned_t = per_call(lambda i: learned.decide(routed[i % len(routed)]), n)

        rows = [
            ("scripted model answer (reference)", ref),
            ("feature scorer decision", rules_t),
            ("learned router decision", learned_t),
        ]
        text = (root / "shipyard.yaml").read_text()
        stores = [("memory", "")]
        if args.redis:
            prefix = f"bench-routing-{uuid.uuid4().hex[:8]}:"
            stores.append(
                (
                    "redis",
                    f"  sessions: {{backend: redis, redis_url: '{args.redis}', key_prefix: '{prefix}'}}\n",
                )
            )
        for name, sessions in stores:
            (root / "shipyard.yaml").write_text(
                text.replace("routing:\n  enabled: false\n", "routing:\n  enabled: false\n" + sessions)
            )
            cfg = load_config(root / "shipyard.yaml")
            t = asyncio.run(_routed_calls(cfg, requests, n))
            rows.append((f"routed call, new session ({name} session store)", t))
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'us / call':>10}  {'x reference':>11}")
    for label, t in rows:
        print(f"{label:{width}}  {t * 1e6:>10.1f}  {t / ref:>11.2f}")


if __name__ == "__main__":
    main()
