"""Rate limits: the cost of one check, in this process (memory) and in Redis (one Lua script call).

Runs `RateLimiter.admit` for a key and a user (both limits, requests and tokens) with limits high
enough that nothing is refused, then the same with a limit that refuses every check. Prints checks per
second and microseconds per check for each, and the ratio of each to the memory backend's let-in check
measured in the same run (the reference). Redis: the local one, DB 7, a key prefix of its own that is
deleted afterwards.

    .venv/bin/python benchmarks/bench_rate_limits.py [--checks 5000] [--redis redis://127.0.0.1:6379/7]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from shipyard.config import RateLimitsConfig
from shipyard.server._rate_limits import RateLimited, RateLimiter


async def _run(limiter: RateLimiter, cfg: RateLimitsConfig, checks: int) -> float:
    """Seconds per check."""
    start = time.perf_counter()
    for i in range(checks):
        try:
            callers = await limiter.admit(cfg, api_key="shp_bench000", user_id=f"user{i % 50}")
            await limiter.count_tokens(cfg, callers, 1)
        except RateLimited:
            pass
    return (time.perf_counter() - start) / checks


async def main(checks: int, url: str) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    big = {"requests_per_minute": 10**9, "tokens_per_minute": 10**9}
    tiny = {"requests_per_minute": 1}
    cases = []
    for backend in ("memory", "redis"):
        for name, limits in (("let in", big), ("refused", tiny)):
            extra = {"backend": "redis", "redis_url": url, "key_prefix": prefix} if backend == "redis" else {}
            cfg = RateLimitsConfig.model_validate({**extra, "per_key": limits, "per_user": limits})
            cases.append((f"{backend}, {name}", cfg))
    results = []
    for label, cfg in cases:
        limiter = RateLimiter(cfg)
        await _run(limiter, cfg, min(200, checks))  # warm up (the connection, the script cached)
        results.append((label, await _run(limiter, cfg, checks)))
        if limiter.url is not None:
            client = limiter.counters.client  # type: ignore[union-attr]
            async for key in client.scan_iter(match=f"*{prefix}*"):
                await client.delete(key)
        await limiter.aclose()
    reference = results[0][1]
    print(f"{'case':<20}{'checks/s':>12}{'us/check':>12}{'x memory let-in':>18}")
    for label, per in results:
        print(f"{label:<20}{1 / per:>12.0f}{per * 1e6:>12.1f}{per / reference:>18.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()
    asyncio.run(main(args.checks, args.redis))
