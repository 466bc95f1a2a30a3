"""Several interactions at once through the model proxy, in process and over loopback: each model
call and tool call lands in the record of the interaction that made it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from proxy_project import ProxyProject

from shipyard.integrations._loopback import loopback_proxy
from shipyard.store import InteractionRecord

N = 20


def assert_own(rec: InteractionRecord, order: str) -> None:
    assert rec.status == "completed", rec.error
    assert rec.output == f"Order {order} is shipped."
    assert len(rec.llm_calls) == 2 and rec.input_tokens > 0 and rec.cost_usd > 0
    assert [(t.name, t.arguments) for t in rec.tool_calls] == [("lookup_order", {"order_id": order})]
    names = sorted(s.name for s in rec.spans)
    assert names == ["chat mock", "chat mock", "execute_tool lookup_order", "invoke_agent " + rec.agent]
    assert {s.trace_id for s in rec.spans} == {rec.trace_id}


async def test_concurrent_interactions_through_the_transport(
    make_project: Callable[..., ProxyProject],
) -> None:
    p = make_project()
    orders = [str(10000 + i) for i in range(N)]
    records = await asyncio.gather(
        *(
            p.rt.invoke("proxied", f"where is order {o}?", metadata={"stream": i % 2 == 1})
            for i, o in enumerate(orders)
        )
    )
    for rec, order in zip(records, orders, strict=True):
        assert_own(rec, order)
    assert sorted(p.agents.TOOL_RUNS) == orders


async def test_concurrent_interactions_through_the_loopback_endpoint(
    make_project: Callable[..., ProxyProject],
) -> None:
    p = make_project()
    orders = [str(20000 + i) for i in range(N)]
    records = await asyncio.gather(*(p.rt.invoke("loopback", f"where is order {o}?") for o in orders))
    for rec, order in zip(records, orders, strict=True):
        assert_own(rec, order)
        assert rec.metadata["models"]["data"][0]["id"] == "mock"
    urls = {p.agents.LEAKED[f"where is order {o}?"] for o in orders}
    assert len(urls) == N and all(u.startswith("http://127.0.0.1:") and "/i/" in u for u in urls)
    assert loopback_proxy().live == 0  # every interaction's URL was forgotten when it ended
    # a URL used after its interaction ended is refused, and nothing reaches the model
    before = len(p.requests)
    async with httpx.AsyncClient(timeout=60) as h:
        url = next(iter(urls))
        r = await h.post(
            f"{url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
        )
        assert r.status_code == 400 and "has ended" in r.json()["error"]["message"]
        assert r.headers["x-should-retry"] == "false"
        port = url.split(":")[2].split("/")[0]
        r = await h.get(f"http://127.0.0.1:{port}/v1/models")
        assert r.status_code == 404
    assert len(p.requests) == before


async def test_a_framework_on_its_own_event_loop_in_a_thread(
    make_project: Callable[..., ProxyProject],
) -> None:
    p = make_project()
    records = await asyncio.gather(*(p.rt.invoke("foreign_loop", f"hello {i}") for i in range(4)))
    for rec in records:
        assert rec.status == "completed", rec.error
        assert rec.output == "I can only look up orders." and len(rec.llm_calls) == 1
        assert {s.trace_id for s in rec.spans} == {rec.trace_id}
