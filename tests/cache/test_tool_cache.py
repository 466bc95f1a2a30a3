"""Idempotent tools' results: a hit skips the tool and says so on the span and the record."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from shipyard.errors import ConfigError
from shipyard.observe import semconv as sc
from shipyard.runtime import Runtime

TOOLS = "tools:\n  lookup: {ttl_s: 60}\n"


async def test_a_cached_tool_result_skips_the_tool(desk: Any) -> None:
    make, module = desk
    rt = Runtime(make(TOOLS))
    assert "cache_lookup" not in rt.pipeline.names  # only the tool cache is on
    first = await rt.invoke("desk", "status of order 123", session_id="s1")
    assert first.output == "Order 123 is shipped."
    assert module().CALLS["lookup"] == 1
    assert [t.cached for t in first.tool_calls] == [False]
    second = await rt.invoke("desk", "status of order 123", session_id="s2")
    assert second.output == "Order 123 is shipped."
    assert module().CALLS["lookup"] == 1  # served from the tool cache: the tool did not run
    assert [t.cached for t in second.tool_calls] == [True]
    assert second.tool_calls[0].status == "success"
    (span,) = [s for s in second.spans if s.name == "execute_tool lookup"]
    assert span.attributes[sc.TOOL_CACHED] is True
    # other arguments are another entry
    await rt.invoke("desk", "status of order 124")
    assert module().CALLS["lookup"] == 2


async def test_tools_not_listed_and_tools_with_effects_always_run(desk: Any) -> None:
    make, module = desk
    rt = Runtime(make(TOOLS))
    for _ in range(2):
        await rt.invoke("desk", "refund order 5")
    assert module().CALLS["refund"] == 2


async def test_a_tool_with_effects_cannot_be_listed(desk: Any) -> None:
    make, _ = desk
    rt = Runtime(make("tools:\n  refund: {ttl_s: 60}\n"))
    with pytest.raises(ConfigError, match=r"cache.tools.refund: tool 'refund' of desk@.* is not idempotent"):
        rt.versions("desk")


async def test_tenants_do_not_share_tool_results(desk: Any) -> None:
    make, module = desk
    rt = Runtime(make(TOOLS))
    await rt.invoke("desk", "status of order 9", metadata={"tenant": "a"})
    await rt.invoke("desk", "status of order 9", metadata={"tenant": "b"})
    assert module().CALLS["lookup"] == 2
    await rt.invoke("desk", "status of order 9", metadata={"tenant": "b"})
    assert module().CALLS["lookup"] == 2


async def test_invalidating_a_tool_runs_it_again(desk: Any) -> None:
    make, module = desk
    rt = Runtime(make(TOOLS))
    await rt.invoke("desk", "status of order 1")
    assert rt.caches is not None
    assert await rt.caches.invalidate(tool="lookup") == 1
    await rt.invoke("desk", "status of order 1")
    assert module().CALLS["lookup"] == 2


async def test_an_exact_answer_that_used_a_cached_tool_lives_no_longer_than_its_tool(desk: Any) -> None:
    make, _ = desk
    cfg = make("backend: sqlite\nexact: {ttl_s: 3600}\ntools:\n  lookup: {ttl_s: 30}\n")
    rt = Runtime(cfg)
    await rt.invoke("desk", "status of order 77")
    await rt.invoke("desk", "hello")
    db = sqlite3.connect(cfg.resolve(cfg.cache.path))
    rows = db.execute("SELECT key, expires FROM cache_entries").fetchall()
    exact = sorted(expires - time.time() for key, expires in rows if key.split(":")[1] == "exact")
    # the answer that used the tool is kept for the tool's 30 s, the one that did not for the hour
    assert len(exact) == 2 and exact[0] <= 30 and exact[1] > 3000


async def test_a_tool_no_agent_has_is_a_config_error_once_every_agent_is_loaded(desk: Any) -> None:
    make, _ = desk
    rt = Runtime(make("tools:\n  lookpu: {ttl_s: 60}\n"))
    rt.versions("desk")  # the other agent is not loaded yet: it may have the tool
    with pytest.raises(
        ConfigError, match=r"cache.tools.lookpu: no agent has a tool 'lookpu' \(tools: lookup, refund\)"
    ):
        rt.versions("fragile")
