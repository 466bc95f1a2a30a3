"""Where cache entries are kept: in memory (one process), in a SQLite file (the processes of one
machine) or in Redis (every replica). All three offer the same small async interface: plain keys
with a TTL, and bounded groups of members (the semantic cache's entries of one scope), and deletion
by key prefix (invalidation)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis


class CacheBackend(Protocol):
    """The storage every cache kind uses. Values are bytes; a TTL is in seconds."""

    name: str

    async def get(self, key: str) -> bytes | None:
        """The value of `key`, or None when it is absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Keep `value` under `key` for `ttl_s` seconds."""
        ...

    async def group_add(self, group: str, member: str, value: bytes, ttl_s: float, max_members: int) -> None:
        """Add (or replace) one member of `group`, kept `ttl_s` seconds; past `max_members` the
        oldest members go."""
        ...

    async def group_items(self, group: str) -> list[bytes]:
        """The values of the live members of `group`, oldest first."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key and group whose name starts with `prefix`; how many went."""
        ...

    async def aclose(self) -> None: ...


class MemoryBackend:
    """Entries in this process's memory (lost on restart, not shared): at most `max_keys` keys, the
    least recently used going first."""

    name = "memory"

    def __init__(self, max_keys: int = 100_000) -> None:
        self._keys: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._groups: dict[str, OrderedDict[str, tuple[float, bytes]]] = {}
        self._max = max_keys

    async def get(self, key: str) -> bytes | None:
        found = self._keys.get(key)
        if found is None:
            return None
        if found[0] <= time.monotonic():
            del self._keys[key]
            return None
        self._keys.move_to_end(key)
        return found[1]

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._keys[key] = (time.monotonic() + ttl_s, value)
        self._keys.move_to_end(key)
        while len(self._keys) > self._max:
            self._keys.popitem(last=False)

    async def group_add(self, group: str, member: str, value: bytes, ttl_s: float, max_members: int) -> None:
        members = self._groups.setdefault(group, OrderedDict())
        members.pop(member, None)
        members[member] = (time.monotonic() + ttl_s, value)
        while len(members) > max_members:
            members.popitem(last=False)

    async def group_items(self, group: str) -> list[bytes]:
        members = self._groups.get(group)
        if not members:
            return []
        now = time.monotonic()
        for m in [m for m, (exp, _) in members.items() if exp <= now]:
            del members[m]
        return [v for _, v in members.values()]

    async def delete_prefix(self, prefix: str) -> int:
        keys = [k for k in self._keys if k.startswith(prefix)]
        groups = [g for g in self._groups if g.startswith(prefix)]
        for k in keys:
            del self._keys[k]
        n = len(keys)
        for g in groups:
            n += len(self._groups.pop(g))
        return n

    async def aclose(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache_entries (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS cache_members (
    grp TEXT NOT NULL, member TEXT NOT NULL, value BLOB NOT NULL, expires REAL NOT NULL, added REAL NOT NULL,
    PRIMARY KEY (grp, member)
);
CREATE INDEX IF NOT EXISTS cache_members_added ON cache_members (grp, added);
"""


def _upper(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix`."""
    return prefix + "\U0010ffff"


class SQLiteBackend:
    """Entries in a SQLite file of their own (WAL; not the records store: a cache is disposable and
    must never contend with the record writer), shared by the processes of one machine. Calls are
    short local statements run inline; expiry is checked on read and expired rows are swept now and
    then on write."""

    name = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # cached answers are the owner's only, like the record store: folder 0700, file 0600 (SQLite
        # gives its -wal and -shm files the database file's mode)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # a short busy wait: statements run on the event loop, and a cache that is busy is a miss
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=0.5)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._writes = 0

    def _sweep(self, now: float) -> None:
        self._writes += 1
        if self._writes % 500 == 0:
            self._db.execute("DELETE FROM cache_entries WHERE expires <= ?", (now,))
            self._db.execute("DELETE FROM cache_members WHERE expires <= ?", (now,))

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM cache_entries WHERE key = ? AND expires > ?", (key, time.time())
            ).fetchone()
        return bytes(row[0]) if row else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO cache_entries (key, value, expires) VALUES (?, ?, ?)",
                (key, value, now + ttl_s),
            )
            self._sweep(now)

    async def group_add(self, group: str, member: str, value: bytes, ttl_s: float, max_members: int) -> None:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO cache_members (grp, member, value, expires, added) VALUES (?, ?, ?, ?, ?)",
                    (group, member, value, now + ttl_s, now),
                )
                self._db.execute(
                    "DELETE FROM cache_members WHERE grp = ? AND member NOT IN "
                    "(SELECT member FROM cache_members WHERE grp = ? ORDER BY added DESC LIMIT ?)",
                    (group, group, max_members),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._sweep(now)

    async def group_items(self, group: str) -> list[bytes]:
        with self._lock:
            rows = self._db.execute(
                "SELECT value FROM cache_members WHERE grp = ? AND expires > ? ORDER BY added",
                (group, time.time()),
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    async def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            a = self._db.execute(
                "DELETE FROM cache_entries WHERE key >= ? AND key < ?", (prefix, _upper(prefix))
            ).rowcount
            b = self._db.execute(
                "DELETE FROM cache_members WHERE grp >= ? AND grp < ?", (prefix, _upper(prefix))
            ).rowcount
        return a + b

    async def aclose(self) -> None:
        with self._lock:
            self._db.close()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisBackend:
    """Entries in Redis, shared by every replica. A key is a Redis string with its TTL; a group is a
    hash of members (`<group>`) beside a sorted set of when each was added (`<group>:added`), both
    expiring with their newest member; each member's own expiry is kept in its value's header."""

    name = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        # one client per event loop: a redis.asyncio connection belongs to the loop that opened it
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            from redis.asyncio import Redis

            client = self._clients[loop] = Redis.from_url(
                self.url, socket_timeout=2.0, socket_connect_timeout=2.0
            )
        return client

    async def get(self, key: str) -> bytes | None:
        value = await self._client().get(key)
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._client().set(key, value, px=max(int(ttl_s * 1000), 1))

    async def group_add(self, group: str, member: str, value: bytes, ttl_s: float, max_members: int) -> None:
        now = time.time()
        expires = now + ttl_s
        ttl_ms = max(int(ttl_s * 1000), 1)
        stamped = f"{expires:.3f}|".encode() + value
        r = self._client()
        async with r.pipeline(transaction=True) as p:
            p.hset(group, member, stamped)
            p.zadd(group + ":added", {member: now})
            p.zrange(group + ":added", 0, -max_members - 1)
            p.zremrangebyrank(group + ":added", 0, -max_members - 1)
            res = await p.execute()
        dropped = res[2]
        async with r.pipeline(transaction=False) as p:
            if dropped:
                p.hdel(group, *dropped)
            # a group lives as long as its newest member (members' own expiry is checked on read)
            p.pexpire(group, ttl_ms, gt=True)
            p.pexpire(group + ":added", ttl_ms, gt=True)
            p.pexpire(group, ttl_ms, nx=True)
            p.pexpire(group + ":added", ttl_ms, nx=True)
            await p.execute()

    async def group_items(self, group: str) -> list[bytes]:
        r = self._client()
        async with r.pipeline(transaction=False) as p:
            p.zrange(group + ":added", 0, -1)
            p.hgetall(group)
            order, values = await p.execute()
        now = time.time()
        out: list[bytes] = []
        for m in order:
            raw = values.get(m)
            if raw is None:
                continue
            head, _, body = bytes(raw).partition(b"|")
            try:
                if float(head) <= now:
                    continue
            except ValueError:
                continue
            out.append(body)
        return out

    async def delete_prefix(self, prefix: str) -> int:
        r = self._client()
        n = 0
        batch: list[bytes] = []
        async for key in r.scan_iter(match=_glob_escape(prefix) + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                n += await r.unlink(*batch)
                batch = []
        if batch:
            n += await r.unlink(*batch)
        return n

    async def aclose(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()
