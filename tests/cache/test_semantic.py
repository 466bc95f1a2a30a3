"""The semantic cache: single-turn hits verified (negation, entity, number, content words), the
similarity on the span, never on multi-turn or tool-calling traffic; embeddings offline (builtin) or
from an OpenAI-compatible /v1/embeddings endpoint over HTTP (the mock LLM server's)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from shipyard.cache import (
    BuiltinEmbedder,
    CachedAnswer,
    EmbeddingError,
    MemoryBackend,
    OpenAIEmbedder,
    Scope,
    SemanticCache,
)
from shipyard.llm import MockLLMServer
from shipyard.observe import semconv as sc
from shipyard.runtime import Runtime
from shipyard.store import InteractionRecord

SEMANTIC = "semantic: {ttl_s: 60}\n"


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with MockLLMServer({"default": "ok"}) as url:
        yield url


def lookup_span(r: InteractionRecord) -> dict[str, Any]:
    (span,) = [s.attributes for s in r.spans if s.name == "cache_lookup semantic"]
    return dict(span)


async def test_a_paraphrase_is_answered_with_its_similarity_on_the_span(desk: Any) -> None:
    make, module = desk
    rt = Runtime(make(SEMANTIC))
    first = await rt.invoke("desk", "Can I return my shoes?")
    assert first.output == "You can return items within 30 days."
    calls = module().CALLS["agent"]
    hit = await rt.invoke("desk", "how can i return my shoes")
    assert module().CALLS["agent"] == calls
    assert hit.output == first.output and hit.llm_calls == []
    span = lookup_span(hit)
    assert span[sc.CACHE_HIT] is True and span[sc.CACHE_KIND] == "semantic"
    assert 0.8 <= span[sc.CACHE_SIMILARITY] <= 1.0
    assert hit.metadata["cache"]["kind"] == "semantic"
    assert hit.metadata["cache"]["similarity"] == pytest.approx(span[sc.CACHE_SIMILARITY])


@pytest.mark.parametrize(
    ("stored", "asked", "reason"),
    [
        ("Can I return my shoes?", "Can I not return my shoes?", "negation"),
        ("Can I return my shoes?", "Can't I return my shoes?", "negation"),
        ("Can I return my shoes within 30 days?", "Can I return my shoes within 60 days?", "number"),
        ("Can I return my shoes in Canada?", "Can I return my shoes in Mexico?", "entity"),
        ("Can I return my shoes?", "Can I repair my shoes?", "content"),
    ],
)
async def test_false_hits_are_rejected(stored: str, asked: str, reason: str) -> None:
    cache = SemanticCache(MemoryBackend(), "t", BuiltinEmbedder(), ttl_s=60, threshold=0.5, max_entries=10)
    scope = Scope("a", "v", None)
    await cache.put(scope, stored, CachedAnswer(output="yes", cost_usd=0.01))
    found = await cache.lookup(scope, asked)
    assert found.answer is None
    assert found.similarity >= 0.5  # close enough to be a candidate: verification turned it down
    assert reason in found.rejected


async def test_a_rejected_candidate_is_on_the_span(desk: Any) -> None:
    make, _ = desk
    rt = Runtime(make("semantic: {ttl_s: 60, threshold: 0.6}\n"))
    await rt.invoke("desk", "Can I return my shoes?")
    miss = await rt.invoke("desk", "Can I not return my shoes?")
    assert "cache" not in miss.metadata and miss.llm_calls
    span = lookup_span(miss)
    assert span[sc.CACHE_HIT] is False and list(span[sc.CACHE_REJECTED]) == ["negation"]


async def test_never_on_multi_turn_or_tool_calling_traffic(desk: Any) -> None:
    make, _ = desk
    rt = Runtime(make(SEMANTIC))
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]
    await rt.invoke("desk", "Can I return my shoes?", history=history)
    # not learnt from a multi-turn conversation, and not looked up in one
    assert "cache" not in (await rt.invoke("desk", "how can i return my shoes")).metadata
    again = await rt.invoke("desk", "can i return my shoes please", history=history)
    assert not [s for s in again.spans if s.name == "cache_lookup semantic"]
    # an answer that called a tool is not learnt
    await rt.invoke("desk", "status of order 12")
    assert rt.caches is not None and rt.caches.semantic is not None
    scope = rt.caches.scope("desk", rt.versions("desk")[0].id, {}, None)
    stored = await rt.caches.backend.group_items(rt.caches.semantic.group(scope))
    assert all(b"order 12" not in s for s in stored)


async def test_the_mock_server_serves_openai_embeddings(mock_url: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{mock_url}/embeddings", json={"model": "m", "input": ["a b", "c"]}) as r:
            assert r.status == 200
            body = await r.json()
        assert body["object"] == "list" and [d["index"] for d in body["data"]] == [0, 1]
        assert len(body["data"][0]["embedding"]) == 256
        async with s.post(f"{mock_url}/embeddings", json={"input": 5}) as r:
            assert r.status == 400 and (await r.json())["error"]["param"] == "input"


async def test_the_semantic_cache_on_an_http_embedding_endpoint(desk: Any, mock_url: str) -> None:
    make, module = desk
    cfg = make(
        f"semantic:\n  ttl_s: 60\n  embedding: {{provider: openai, base_url: '{mock_url}', model: m}}\n"
    )
    rt = Runtime(cfg)
    assert rt.caches is not None and isinstance(rt.caches.semantic.embedder, OpenAIEmbedder)  # type: ignore[union-attr]
    await rt.invoke("desk", "Can I return my shoes?")
    calls = module().CALLS["agent"]
    hit = await rt.invoke("desk", "can I return my shoes")
    assert hit.metadata["cache"]["kind"] == "semantic" and module().CALLS["agent"] == calls
    await rt.aclose()


async def test_an_unreachable_embedding_endpoint_is_a_miss_not_a_failure(desk: Any) -> None:
    make, _ = desk
    rt = Runtime(
        make("semantic:\n  embedding: {provider: openai, base_url: 'http://127.0.0.1:9/v1', timeout_s: 2}\n")
    )
    r = await rt.invoke("desk", "Can I return my shoes?")
    assert r.status == "completed" and r.output == "You can return items within 30 days."
    await rt.aclose()
    embedder = OpenAIEmbedder("http://127.0.0.1:9/v1", "m", timeout_s=2)
    with pytest.raises(EmbeddingError):
        await embedder.embed(["x"])
    await embedder.aclose()
