"""The demo's new refund tool behind a feature flag: offered only to the users the flag is on for."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.flags import FlagAdmin, FlagStore, load_flag_file
from shipyard.runtime import Runtime

REFUND = "Please refund order 10002, it arrived broken"


async def test_store_credit_tool_follows_the_flag_per_user(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    rt = Runtime(load_config(root / "shipyard.yaml"))
    rt.flags = FlagStore(load_flag_file(root / "flags.json"))
    off = await rt.invoke("support", REFUND, user_id="u1")
    assert [t.name for t in off.tool_calls][-1] == "process_refund"
    # the refund ran while the `refunds` kill switch is on (its tool policy looked at it)
    assert off.metadata["flags"] == [
        {"flag": "instant_store_credit", "variant": "off", "reason": "STATIC"},
        {"flag": "refunds", "variant": "on", "reason": "STATIC"},
    ]

    FlagAdmin(root / "flags.json", store=rt.flags).rollout("instant_store_credit", 10)
    used = {}
    at_once = asyncio.Semaphore(50)  # 300 customers whose conversations overlap, each in its own session

    async def customer(i: int) -> None:
        async with at_once:
            r = await rt.invoke("support", REFUND, user_id=f"user-{i}", session_id=f"s-{i}")
        assert r.status == "completed" and r.metadata["refunded"]
        used[f"user-{i}"] = r.tool_calls[-1].name

    await asyncio.gather(*(customer(i) for i in range(300)))
    share = sum(name == "issue_store_credit" for name in used.values()) / len(used)
    assert 0.05 < share < 0.16
    # sticky: a user who got the new tool keeps it in a new session
    lucky = next(u for u, name in used.items() if name == "issue_store_credit")
    again = await rt.invoke("support", REFUND, user_id=lucky, session_id="another")
    assert again.tool_calls[-1].name == "issue_store_credit" and "store credit" in again.output
    await rt.aclose()
