"""Two runtimes on one SQLite file or one Redis (two processes or replicas): what one learns the
other serves, and an invalidation by either reaches both."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shipyard.runtime import Runtime


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_replicas_share_answers_and_tool_results(desk: Any, backend: str) -> None:
    make, module = desk
    prefix = f"t{uuid.uuid4().hex[:10]}"
    cfg = make(
        f"backend: {backend}\nredis_url: redis://127.0.0.1:6379/13\nkey_prefix: {prefix}\n"
        "exact: {ttl_s: 60}\nsemantic: {ttl_s: 60}\ntools:\n  lookup: {ttl_s: 60}\n"
    )
    one, two = Runtime(cfg), Runtime(cfg)
    try:
        await one.invoke("desk", "Can I return my shoes?")
        await one.invoke("desk", "status of order 3", session_id="a")
        assert (await two.invoke("desk", "can i return my shoes?")).metadata["cache"]["kind"] == "exact"
        assert (await two.invoke("desk", "Can I return my shoes please")).metadata["cache"][
            "kind"
        ] == "semantic"
        served = await two.invoke("desk", "status of order 3", session_id="b")  # an exact hit
        assert served.metadata["cache"]["kind"] == "exact"
        assert module().CALLS["lookup"] == 1
        # invalidate the agent version's answers on one replica: the other runs the agent again
        assert two.caches is not None and one.caches is not None
        version = one.versions("desk")[0].id
        assert await one.caches.invalidate(agent="desk", version=version) >= 2
        again = await two.invoke("desk", "status of order 3", session_id="c")
        assert "cache" not in again.metadata
        assert [t.cached for t in again.tool_calls] == [True]  # tool results are kept apart
        assert module().CALLS["lookup"] == 1
        assert await two.caches.invalidate(tool="lookup") == 1
        # the answer itself was learnt again above: an exact hit, the tool is not needed
        assert (await one.invoke("desk", "status of order 3", session_id="d")).metadata["cache"][
            "kind"
        ] == "exact"
        assert module().CALLS["lookup"] == 1
        assert await one.caches.invalidate() >= 1
        await one.invoke("desk", "status of order 3", session_id="e")
        assert module().CALLS["lookup"] == 2
    finally:
        if one.caches is not None:
            await one.caches.invalidate()
        await one.aclose()
        await two.aclose()


async def test_an_unreachable_backend_is_a_miss_never_a_failure(desk: Any) -> None:
    make, module = desk
    cfg = make(
        "backend: redis\nredis_url: redis://127.0.0.1:9/13\nexact: {ttl_s: 60}\ntools:\n  lookup: {ttl_s: 60}\n"
    )
    rt = Runtime(cfg)
    for _ in range(2):
        r = await rt.invoke("desk", "status of order 5")
        assert r.status == "completed" and r.output == "Order 5 is shipped." and "cache" not in r.metadata
    assert module().CALLS["lookup"] == 2  # the tool ran each time: nothing could be cached
    (span,) = [s for s in r.spans if s.name == "cache_lookup exact"]
    assert span.status == "error"
    await rt.aclose()
