"""The three backends behave alike: keys with a TTL, bounded groups, deletion by prefix. SQLite is a
real file, Redis the local server (DB 13, a key prefix of this test run's own)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.cache import CacheBackend, MemoryBackend, RedisBackend, SQLiteBackend

REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: Any, tmp_path: Path) -> AsyncIterator[tuple[CacheBackend, str]]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    b: CacheBackend
    if request.param == "memory":
        b = MemoryBackend()
    elif request.param == "sqlite":
        b = SQLiteBackend(tmp_path / "cache.db")
    else:
        b = RedisBackend(REDIS_URL)
    try:
        yield b, prefix
    finally:
        await b.delete_prefix(prefix + ":")
        await b.aclose()


async def wait_for(check: Any, what: str) -> None:
    give_up = time.monotonic() + 60
    while not await check():
        if time.monotonic() > give_up:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


async def test_keys_keep_values_until_their_ttl(backend: tuple[CacheBackend, str]) -> None:
    b, p = backend
    assert await b.get(f"{p}:k") is None
    await b.set(f"{p}:k", b"v1", 60)
    await b.set(f"{p}:short", b"v2", 0.05)
    assert await b.get(f"{p}:k") == b"v1"

    async def expired() -> bool:
        return await b.get(f"{p}:short") is None

    await wait_for(expired, "the short key to expire")
    assert await b.get(f"{p}:k") == b"v1"
    await b.set(f"{p}:k", b"v3", 60)
    assert await b.get(f"{p}:k") == b"v3"


async def test_groups_keep_the_newest_members(backend: tuple[CacheBackend, str]) -> None:
    b, p = backend
    g = f"{p}:g"
    assert await b.group_items(g) == []
    for i in range(5):
        await b.group_add(g, f"m{i}", f"v{i}".encode(), 60, max_members=3)
    assert await b.group_items(g) == [b"v2", b"v3", b"v4"]
    await b.group_add(g, "m3", b"v3b", 60, max_members=3)  # replacing a member makes it the newest
    assert await b.group_items(g) == [b"v2", b"v4", b"v3b"]
    await b.group_add(g, "gone", b"x", 0.05, max_members=10)

    async def expired() -> bool:
        return b"x" not in await b.group_items(g)

    await wait_for(expired, "the short member to expire")
    assert await b.group_items(g) == [b"v2", b"v4", b"v3b"]


async def test_delete_by_prefix(backend: tuple[CacheBackend, str]) -> None:
    b, p = backend
    await b.set(f"{p}:exact:a:1", b"1", 60)
    await b.set(f"{p}:exact:a:2", b"2", 60)
    await b.set(f"{p}:exact:ab:1", b"3", 60)
    await b.group_add(f"{p}:semantic:a:x", "m", b"4", 60, 10)
    assert await b.delete_prefix(f"{p}:exact:a:") == 2
    assert await b.get(f"{p}:exact:a:1") is None and await b.get(f"{p}:exact:ab:1") == b"3"
    assert await b.delete_prefix(f"{p}:semantic:") >= 1
    assert await b.group_items(f"{p}:semantic:a:x") == []


async def test_the_sqlite_file_is_shared_by_two_handles(tmp_path: Path) -> None:
    one, two = SQLiteBackend(tmp_path / "c.db"), SQLiteBackend(tmp_path / "c.db")
    await one.set("k", b"v", 60)
    assert await two.get("k") == b"v"
    await one.aclose()
    await two.aclose()
