"""Flag evaluation on the hot path: microseconds per evaluation (aim: < 20 µs with targeting).

Run: .venv/bin/python benchmarks/bench_flags.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shipyard.flags import FlagsForContext, FlagStore, bucket, interaction_context, parse_flag_set

FLAGS = {
    "flags": {
        "static_flag": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"},
        "targeted_flag": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {
                "if": [
                    {"starts_with": [{"var": "user_id"}, "beta-"]},
                    "on",
                    {"fractional": [["on", 10], ["off", 90]]},
                ]
            },
        },
        "semver_flag": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "1.2.0"]}, "on", "off"]},
        },
    }
}


def per_call_us(fn: Callable[[int], object], n: int) -> float:
    """Best of 5 runs of n calls, in microseconds per call."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def main() -> None:
    store = FlagStore(parse_flag_set(FLAGS))
    users = [f"user-{i}" for i in range(1000)]
    contexts = [
        interaction_context(session_id=f"s-{u}", user_id=u, agent="support", version="1.3.0") for u in users
    ]
    n = 50_000
    rows = [
        ("static flag (store.evaluate)", per_call_us(lambda i: store.evaluate("static_flag", False, contexts[i % 1000]), n)),
        (
            "targeting: starts_with + fractional",
            per_call_us(lambda i: store.evaluate("targeted_flag", False, contexts[i % 1000], kind="boolean"), n),
        ),
        (
            "targeting: sem_ver",
            per_call_us(lambda i: store.evaluate("semver_flag", False, contexts[i % 1000], kind="boolean"), n),
        ),
        ("ctx.flags.enabled (targeting, recorded)", per_call_us(
            lambda i: FlagsForContext(store, contexts[i % 1000]).enabled("targeted_flag"), n)),
        ("assignment hash alone (bucket)", per_call_us(lambda i: bucket(f"targeted_flag{users[i % 1000]}", 100), n)),
    ]  # fmt: skip
    print(f"{'flag evaluation':<42} {'µs/eval':>8}")
    for name, us in rows:
        print(f"{name:<42} {us:>8.2f}")
    on = sum(store.evaluate("targeted_flag", False, c).value for c in contexts)
    print(f"(targeted_flag is on for {on}/1000 users at a 10% rollout)")


if __name__ == "__main__":
    main()
