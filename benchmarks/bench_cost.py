"""Cost control on the gateway: the benchmark of bench_gateway.py with the cost ledger, budgets (in
Redis), the exact cache and routing on, against the raw ASGI floor measured in the same run; and what
a budget reserve + settle costs against local Redis, next to a plain PING round trip.

1. Gateway (issue 11: <= 12x the floor): `shipyard serve` with the demo project on a zero-latency mock
   LLM, 32 keep-alive clients. Each model call reserves on three budgets (session, user per day,
   global per day) and settles; the settle is queued and rides with the next reserve (one Redis
   script call per model call; the Redis command counters give the script calls per request); the
   ledger rows are written with each interaction by the background writer. Two runs:
   - "ledger + budgets + routing": the exact cache off, every request runs the agent;
   - "+ exact cache": the demo's cache on (SQLite), with bench_gateway's three questions. The demo keeps
     order lookups live (`lookup_order` is not under `cache.tools`), so these answers are never kept:
     every request is a miss, i.e. this row is what having the cache on costs, without its savings
     (an exact hit's own cost is bench_cache.py's figure).
   Routing uses the rule router on two mock tiers (the demo's learned router needs a fitted file).
   The floor and the bare ASGI app are bench_gateway.py's (the same two model calls and tool call,
   nothing else). Prints CPU per request and the ratio to the floor.

2. Budget round trips: 2000 sequential model calls' reserve + settle on three counters, through the
   RedisBackend Shipyard uses, as `ctx.llm` makes them (the settle queued, riding with the next
   reserve), and with each step awaited on its own; against 2000 PINGs on the same connection.
   Redis's own command counters (INFO commandstats) give the script calls per pair.

The Redis keys the benchmark made are deleted when it ends.

    .venv/bin/python benchmarks/bench_cost.py [--seconds 5] [--concurrency 32] [--redis-only]
        [--redis-url URL] [--profile FILE [--gil]]

    --redis-url URL the Redis of the budgets (default DB 13; use a DB of your own)

    --profile FILE  record the "ledger + budgets + routing" server with py-spy during its measurement
                    (speedscope JSON); with --gil only the thread holding the GIL is sampled, as in
                    bench_gateway.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import bench_gateway as gw
from helpers import free_port, py_spy, wait_ready
from shipyard.demo import copy_project

REDIS_URL = "redis://127.0.0.1:6379/13"


def _config(
    text: str, mock_port: int, prefix: str, *, cache: bool, cost: bool = True, redis_url: str = REDIS_URL
) -> str:
    """The demo's shipyard.yaml on the mock LLM, with budgets in Redis, rule routing, the cache on or off."""
    mock = (
        "models:\n"
        "  mock:\n    provider: openai\n    model: mock\n"
        f"    base_url: http://127.0.0.1:{mock_port}/v1\n    tier: small\n"
        "    prices: {input: 0.15, output: 0.60}\n"
        "  mock-large:\n    provider: openai\n    model: mock\n"
        f"    base_url: http://127.0.0.1:{mock_port}/v1\n    tier: large\n"
        "    prices: {input: 2.5, output: 10.0}\n"
    )
    text = text.replace("models:\n", mock, 1).replace("model: {name: scripted-small}", "model: {name: mock}")
    budgets = (
        "budgets:\n"
        "  backend: redis\n"
        f"  redis_url: {redis_url}\n"
        f"  key_prefix: {prefix}\n"
        "  limits:\n"
        "    - {name: per-session, scope: session, window: session, usd: 1.0}\n"
        "    - {name: user-daily, scope: user, window: day, usd: 1000}\n"
        "    - {name: global-daily, scope: global, window: day, usd: 100000}\n"
    )
    head, _, rest = text.partition("budgets:\n")
    rest = rest.split("\n\n", 1)[1]  # drop the demo's own budgets section
    text = head + (budgets + "\n" if cost else "") + rest
    head, _, rest = text.partition("routing:\n")
    rest = rest.split("\n\n", 1)[1]
    routing = "routing:\n  enabled: true\n  agents: [support]\n  tiers: {small: mock, large: mock-large}\n  router: rules\n"
    text = head + (routing + "\n" if cost else "") + rest
    if not cache:
        head, _, rest = text.partition("cache:\n")
        text = head + rest.split("\n\n", 1)[1]
    return text


def _script_calls(url: str) -> int:
    """EVAL / EVALSHA calls Redis has answered so far (every client of this Redis)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("commandstats")
        return sum(int(v["calls"]) for k, v in info.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    finally:
        client.close()


def _delete_keys(url: str, prefixes: list[str]) -> int:
    """Delete the keys of the benchmark's runs (every key under each `{prefix}` hash tag)."""
    import redis

    client = redis.Redis.from_url(url)
    deleted = 0
    try:
        for prefix in prefixes:
            keys = list(client.scan_iter(match="{" + prefix + "}*", count=1000))
            for i in range(0, len(keys), 500):
                deleted += int(client.delete(*keys[i : i + 500]))
    finally:
        client.close()
    return deleted


def gateway(args: argparse.Namespace) -> None:
    shipyard = str(Path(sys.executable).with_name("shipyard"))
    results: dict[str, dict[str, float]] = {}
    prefixes: list[str] = []
    scripts_per_request: float | None = None
    with tempfile.TemporaryDirectory() as tmp:
        mock_port = free_port()
        root = copy_project(Path(tmp) / "demo")
        demo = (root / "shipyard.yaml").read_text()
        mock = gw.start(
            [shipyard, "mock-llm", "--rules", str(root / "rules" / "support.yaml"), "--port", str(mock_port)]
        )
        procs = [mock]
        try:
            wait_ready(f"http://127.0.0.1:{mock_port}/health", mock, "shipyard mock-llm")
            runs = (
                ("ledger only (no budgets, routing, cache)", False, False),
                ("ledger + budgets + routing", False, True),
                ("+ exact cache", True, True),
            )
            for name, cache, cost in runs:
                prefix = f"bench-{uuid.uuid4().hex[:8]}"
                prefixes.append(prefix)
                (root / "shipyard.yaml").write_text(
                    _config(demo, mock_port, prefix, cache=cache, cost=cost, redis_url=args.redis_url)
                )
                port = free_port()
                with open(Path(tmp) / f"server-{cache}-{cost}.log", "wb") as log:
                    server = gw.start(
                        [shipyard, "serve", "--port", str(port), "--config", str(root / "shipyard.yaml")],
                        cwd=root,
                        stdout=log,
                    )
                    procs.append(server)
                    wait_ready(f"http://127.0.0.1:{port}/readyz", server, "shipyard serve")
                    spy = (
                        py_spy(server.pid, args.profile, args.seconds + args.warmup + 2, gil=args.gil)
                        if args.profile and cost and not cache
                        else None
                    )
                    calls0 = _script_calls(args.redis_url)
                    results[name] = gw.measure(
                        f"http://127.0.0.1:{port}/v1/agents/support/invoke", server.pid, mock.pid, args
                    )
                    if cost and not cache:  # warm-up and measured requests alike
                        scripts_per_request = (_script_calls(args.redis_url) - calls0) / results[name]["sent"]
                    if spy is not None:
                        spy.wait(timeout=120)
                    server.terminate()
                    server.wait(timeout=60)
            for mode in ("floor", "bare"):
                fport = free_port()
                floor = gw.start(
                    [sys.executable, gw.__file__, "--serve-floor", str(fport), str(mock_port), mode]
                )
                procs.append(floor)
                wait_ready(f"http://127.0.0.1:{fport}/readyz", floor, f"the {mode} app")
                results[mode] = gw.measure(f"http://127.0.0.1:{fport}/invoke", floor.pid, mock.pid, args)
                floor.terminate()
                floor.wait(timeout=30)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
            _delete_keys(args.redis_url, prefixes)
        errors = [line for line in open(Path(tmp) / "server-False-True.log") if '"level": "error"' in line]  # noqa: SIM115
    floor = results["floor"]
    print(f"gateway with cost control: {args.seconds:g}s per measurement, {args.concurrency} clients")
    print(f"  {'':<42}{'requests/s':>12}{'p50 ms':>10}{'CPU/req us':>12}{'/ floor':>10}")
    for name, m in results.items():
        print(
            f"  {name:<42}{m['rps']:12.0f}{m['p50_ms']:10.2f}{m['cpu_us']:12.0f}{m['cpu_us'] / floor['cpu_us']:9.2f}x"
        )
    print(
        "  on: cost ledger, budgets (Redis, 3 counters per call), routing (rule router); target <= 12x the floor"
    )
    if scripts_per_request is not None:
        print(
            f"  Redis script calls per request (2 model calls), ledger + budgets + routing: {scripts_per_request:.2f} "
            "(INFO commandstats, every client of this Redis)"
        )
    if errors:
        print(f"  ({len(errors)} error lines in the server log, e.g. {errors[0][:200]})")


async def _redis_round_trips(n: int, url: str) -> None:
    import redis.asyncio as aioredis

    from shipyard.config import BudgetLimit
    from shipyard.cost import MemoryBackend, Subject
    from shipyard.cost._budget_redis import RedisBackend
    from shipyard.cost._budgets import counters_for

    prefix = "{bench-" + uuid.uuid4().hex[:8] + "}"
    limits = [
        BudgetLimit(name="session", scope="session", window="session", usd=1e6),
        BudgetLimit(name="user", scope="user", window="day", usd=1e6),
        BudgetLimit(name="global", scope="global", window="day", usd=1e6),
    ]
    counters = counters_for(limits, Subject("i", "s", "a", user_id="u"), prefix, time.time())
    backend = RedisBackend(url, prefix)
    stats = aioredis.Redis.from_url(url)

    async def script_calls() -> int:
        info = await stats.info("commandstats")
        return sum(int(v["calls"]) for k, v in info.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))

    try:
        await backend.reserve("warm", counters, [1, 1, 1], 60, time.time())
        await backend.settle("warm", counters, [1, 1, 1], time.time())
        for _ in range(100):
            await backend.client.ping()
        t0 = time.perf_counter()
        for _ in range(n):
            await backend.client.ping()
        ping_us = (time.perf_counter() - t0) / n * 1e6

        # as ctx.llm does it: the settle is queued and rides with the next call's reserve
        calls0 = await script_calls()
        t0 = time.perf_counter()
        for i in range(n):
            now = time.time()
            ok = await backend.reserve(f"q{i}", counters, [1000, 1000, 1000], 60, now)
            assert ok.ok
            backend.settle_soon(f"q{i}", counters, [900, 900, 900], now)
        await backend.levels(counters, time.time())  # sends the last settle
        queued_us = (time.perf_counter() - t0) / n * 1e6
        queued_calls = (await script_calls() - calls0 - 1) / n

        # each step awaited on its own (what a reserve and a settle cost apart)
        calls0 = await script_calls()
        t0 = time.perf_counter()
        for i in range(n):
            now = time.time()
            ok = await backend.reserve(f"r{i}", counters, [1000, 1000, 1000], 60, now)
            assert ok.ok
            await backend.settle(f"r{i}", counters, [900, 900, 900], now)
        pair_us = (time.perf_counter() - t0) / n * 1e6
        calls = (await script_calls() - calls0) / n
        spent, reserved = (await backend.levels(counters, time.time()))[0]
        assert reserved == 0 and spent == 1 + 2 * n * 900, (spent, reserved)
        info = await stats.info("commandstats")
        in_redis_us = float(info.get("cmdstat_evalsha", {}).get("usec_per_call", 0.0))
        ping_in_redis_us = float(info.get("cmdstat_ping", {}).get("usec_per_call", 0.0))
    finally:
        await backend.aclose()
        keys = [k async for k in stats.scan_iter(match=prefix + "*")]
        if keys:
            await stats.delete(*keys)
        await stats.aclose()
    memory = MemoryBackend()
    t0 = time.perf_counter()
    for i in range(n):
        now = time.time()
        await memory.reserve(f"r{i}", counters, [1000, 1000, 1000], 60, now)
        memory.settle_soon(f"r{i}", counters, [900, 900, 900], now)
    memory_us = (time.perf_counter() - t0) / n * 1e6
    print(f"budget reserve + settle, one model call on 3 counters ({n} sequential calls, local Redis):")
    print(f"  Redis PING round trip                    {ping_us:8.1f} us")
    print(
        f"  reserve + settle, settle queued (ctx.llm) {queued_us:8.1f} us = {queued_us / ping_us:.2f}x a PING; "
        f"{queued_calls:.2f} script calls per call (the settle rides with the next reserve)"
    )
    print(
        f"  reserve + settle, each awaited           {pair_us:8.1f} us = {pair_us / ping_us:.2f}x a PING; "
        f"{calls:.2f} script calls per pair (one round trip each)"
    )
    print(
        f"  inside Redis: a budget script {in_redis_us:.1f} us, a PING {ping_in_redis_us:.1f} us "
        "(INFO commandstats, every client of this Redis)"
    )
    print(f"  reserve + settle (in-process)            {memory_us:8.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--redis-only", action="store_true")
    parser.add_argument("--redis-url", default=REDIS_URL, help="the Redis of the budgets (a DB of your own)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the budgets server into this file")
    parser.add_argument("--gil", action="store_true", help="with --profile: sample the GIL holder only")
    args = parser.parse_args()
    asyncio.run(_redis_round_trips(args.pairs, args.redis_url))
    if not args.redis_only:
        gateway(args)


if __name__ == "__main__":
    main()
