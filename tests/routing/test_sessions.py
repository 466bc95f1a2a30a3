"""A session's tier across replicas: two runtimes sharing Redis (DB 13) see one tier per session, an
escalation on one is kept by the other, and a session tier only moves up; with Redis unreachable a
call goes to the reference tier (never a worse answer), and the in-process store works alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
import redis

from shipyard.config import ShipyardConfig
from shipyard.errors import ConfigError
from shipyard.observe import semconv as sc
from shipyard.routing import MemoryTiers, RedisTiers
from shipyard.runtime import Runtime

Project = Callable[..., ShipyardConfig]
REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def prefix() -> str:
    return f"test-routing-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def clean(prefix: str):  # type: ignore[no-untyped-def]
    yield
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)


def _redis(routing_yaml: str, url: str, prefix: str) -> str:
    return (
        routing_yaml
        + f"  sessions: {{backend: redis, redis_url: '{url}', key_prefix: '{prefix}', ttl_s: 600}}\n"
    )


def _chat_models(rec) -> list[str]:  # type: ignore[no-untyped-def]
    spans = sorted((s for s in rec.spans if s.name.startswith("chat ")), key=lambda s: s.start_ns)
    return [s.attributes[sc.MODEL_KEY] for s in spans]


@pytest.mark.redis
async def test_two_replicas_share_a_sessions_tier_through_redis(
    routed: Project, routing_yaml: str, prefix: str, clean: None
) -> None:
    cfg = routed(_redis(routing_yaml, REDIS_URL, prefix))
    a, b = Runtime(cfg), Runtime(cfg)
    first = (await a.interact("desk", "hello flaky", session_id="shared")).full
    assert _chat_models(first) == ["small-model", "small-model", "large-model"]  # escalated on replica a
    second = (await b.interact("desk", "hello", session_id="shared")).full
    assert _chat_models(second)[1] == "large-model"  # replica b keeps the escalated tier
    assert int(redis.Redis.from_url(REDIS_URL).get(f"{prefix}desk:shared") or -1) == 1
    fresh = (await b.interact("desk", "hello", session_id="fresh")).full
    assert _chat_models(fresh)[1] == "small-model"
    await a.aclose()
    await b.aclose()


@pytest.mark.redis
async def test_concurrent_first_calls_agree_on_the_higher_tier(prefix: str, clean: None) -> None:
    tiers = RedisTiers(REDIS_URL, prefix, 600)
    kept = await asyncio.gather(*(tiers.raise_to("race", r) for r in (0, 2, 1, 0, 2)))
    assert max(kept) == 2 and await tiers.get("race") == 2
    assert await tiers.raise_to("race", 0) == 2  # never down
    assert await tiers.get("missing") is None
    await tiers.aclose()


async def test_unreachable_redis_routes_to_the_reference_tier(routed: Project, routing_yaml: str) -> None:
    cfg = routed(_redis(routing_yaml, "redis://127.0.0.1:9/0", "x:"))
    rt = Runtime(cfg)
    rec = (await rt.interact("desk", "hello", session_id="s")).full
    chat = sorted((s for s in rec.spans if s.name.startswith("chat ")), key=lambda s: s.start_ns)[1]
    assert (
        chat.attributes[sc.MODEL_KEY] == "large-model"
        and chat.attributes[sc.ROUTING_DECIDED_BY] == "fallback"
    )
    assert "session store unavailable" in chat.attributes[sc.ROUTING_REASONS][0]
    assert rec.status == "completed"
    await rt.aclose()


def test_the_redis_backend_needs_a_url(
    routed: Project, routing_yaml: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPYARD_REDIS_URL", raising=False)
    cfg = routed(routing_yaml + "  sessions: {backend: redis}\n")
    with pytest.raises(ConfigError, match="no Redis URL is set"):
        Runtime(cfg)


async def test_the_memory_store_raises_only_and_forgets_idle_sessions() -> None:
    tiers = MemoryTiers(ttl_s=600, capacity=2)
    assert await tiers.get("a") is None
    assert await tiers.raise_to("a", 1) == 1 and await tiers.raise_to("a", 0) == 1
    await tiers.raise_to("b", 0)
    await tiers.raise_to("c", 2)  # over capacity: the least recently used ("a") goes
    assert await tiers.get("a") is None and await tiers.get("c") == 2
    expired = MemoryTiers(ttl_s=1e-9)
    await expired.raise_to("a", 2)
    await asyncio.sleep(0.01)
    assert await expired.get("a") is None


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_an_interactions_first_call_reads_and_decides_in_one_step(
    kind: str, prefix: str, clean: None
) -> None:
    tiers = MemoryTiers(ttl_s=600) if kind == "memory" else RedisTiers(REDIS_URL, prefix, 600)
    assert await tiers.decide("s", 1, raise_kept=False) == (1, None)  # a new session: the router's rank
    assert await tiers.decide("s", 2, raise_kept=False) == (1, 1)  # a kept session stays on its tier
    assert await tiers.decide("s", 0, raise_kept=True) == (1, 1)  # never down
    assert await tiers.decide("s", 2, raise_kept=True) == (2, 1)  # a harder new turn raises it
    assert await tiers.get("s") == 2
    if isinstance(tiers, RedisTiers):
        await tiers.aclose()
