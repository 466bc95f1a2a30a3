"""Token and money budgets: reserve → settle → release around each model call.

A budget (`budgets.limits` in shipyard.yaml, or set through the admin API) caps what one session,
user, API key, feature, agent or everyone spends in a window (one interaction, one session, a UTC
day or month), in USD or in tokens. Each (budget, scope value, window) is one *counter* holding
what was spent and what running calls have reserved.

Before a model call, its worst case is reserved on every counter it touches, all or nothing and
once per request id: the prompt's estimated tokens plus `max_tokens` at the output price, capped
per call (`reservation_share` of the smallest budget, or `max_reservation_usd` / `_tokens`; the call's `max_tokens` is lowered so
its worst case fits the cap). After the call the reservation is settled to the real cost; a failed
call releases it; a cancelled call keeps its input cost. A reservation not settled within
`reservation_ttl_s` lapses, so a crashed replica leaks nothing. A call that fits the budget but not
beside other calls' reservations waits for them (`wait_s`); one that does not fit what is left is
refused (`BudgetExceeded`).

Counters live in a `BudgetBackend`: `MemoryBackend` (one machine: in this process, persisted to the
store; at most SLOTS_KEPT held, the least recently used read back from the store when used again)
or `RedisBackend` (`cost/_budget_redis.py`: many replicas, one Lua script; a model call costs one
round trip: its reserve, with the previous call's settle riding along). A settle is queued, not
waited for: the answer never waits on it. Both are raised now and then to what the store recorded
(`reconcile`), by taking the larger value, so reseeding a counter never counts a call twice.

The check before the agent runs (`InteractionBudget.check`) makes no round trip: it refuses an
interaction whose budget this process has already seen spent (spent only grows within a window);
otherwise the first model call's reserve is the check (an exhausted budget refuses it at once), and
its answer is what `ctx.budget` shows from then on.

Amounts are integers: tokens, or USD in nano-dollars (`NANO`), so counters add up exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from shipyard.config import BudgetLimit, BudgetsConfig, PriceRates
from shipyard.cost._errors import BudgetExceeded, BudgetUnavailable
from shipyard.observe import log_event
from shipyard.types import BudgetRemaining, ChatOptions, Message, Usage

NANO = 1_000_000_000  # nano-dollars per USD: USD counters are integers
MILLION = 1_000_000
TOKENS_PER_CHAR = 0.25  # the prompt estimate before the provider counts it (settle corrects it)
TOKENS_PER_MESSAGE = 4
_WINDOW_TTL_S = {
    "interaction": 86_400.0,
    "session": 30 * 86_400.0,
    "day": 3 * 86_400.0,
    "month": 70 * 86_400.0,
}
REQUEST_TTL_S = 3_600.0  # a request id is remembered this long (idempotent retries of reserve / settle)
REQUESTS_KEPT = 50_000
"""At most this many request ids are remembered in one process (the oldest go first): a retried reserve
or settle comes seconds after the first, so this bounds memory without losing idempotency."""
POLL_S = 0.02
ADMIN_REFRESH_S = 5.0  # how often the budgets set through the admin API are read again
RECONCILE_MAX = 10_000  # counters reconciled per pass (the most used since the last one)
SWEEP_S = 60.0  # how often the in-process counters whose window is over are dropped from memory
SLOTS_KEPT = 20_000
"""At most this many counters are held in one process (a store to read them back from given): the
least recently used written ones beyond it are let go of at each flush and read back when used again.
A counter is used for the minutes its session is active (a day / month / user counter: all day), so
20,000 holds every session active in the last few minutes at hundreds of new sessions a minute, in
about 10 MB; a session that comes back later costs one indexed read."""
EVICTED_PER_GENERATION = 1_000_000  # keys per generation of the let-go-of keys' filter (`_EvictedKeys`)
EVICTED_FILTER_HASHES = 10  # bits set per key: 0.1% false positives in a full generation...
EVICTED_FILTER_BITS = 14_377_588  # ...of this many bits (1.8 MB: ~14.4 bits a key; m = -n ln p / ln(2)^2)


# what is counted -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Subject:
    """Who spends: the scope values an interaction's calls are counted under."""

    interaction_id: str
    session_id: str
    agent: str
    user_id: str | None = None
    api_key: str | None = None
    features: frozenset[str] = frozenset()
    traffic_source: str = "production"


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter a call touches: `key` names (budget, scope value, window); `limit` in units."""

    budget: BudgetLimit
    key: str
    limit: int
    ttl_s: float
    unit: str = "usd"  # the budget's: usd (counted in nano-dollars) or tokens

    def to_units(self, value: float) -> float:
        return value / NANO if self.unit == "usd" else value


def window_id(window: str, subject: Subject, now: float) -> str:
    """The window a call at `now` falls in: the interaction, the session, the UTC day or month."""
    if window == "interaction":
        return f"i:{subject.interaction_id}"
    if window == "session":
        return f"s:{subject.session_id}"
    day, month = _calendar_ids(int(now // 86_400))
    return day if window == "day" else month


@functools.lru_cache(maxsize=4)
def _calendar_ids(day_number: int) -> tuple[str, str]:
    """The ids of the UTC day and month of a day number (days since the epoch; POSIX days are 86,400
    seconds long): formatted once a day, not on every model call."""
    day = datetime.fromtimestamp(day_number * 86_400, UTC)
    return f"d:{day:%Y-%m-%d}", f"m:{day:%Y-%m}"


def window_start(window: str, now: float) -> float | None:
    """When the day or month window holding `now` began (None for the other windows)."""
    t = datetime.fromtimestamp(now, UTC)
    if window == "day":
        return t.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    if window == "month":
        return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    return None


def scope_value(b: BudgetLimit, s: Subject) -> str | None:
    """The value `b` counts `s` under (None: the budget does not apply to this interaction)."""
    if (b.agent is not None and b.agent != s.agent) or s.traffic_source not in b.traffic:
        return None
    match b.scope:
        case "session":
            return s.session_id
        case "user":
            return s.user_id
        case "api_key":
            return s.api_key
        case "feature":
            return b.feature if b.feature in s.features else None
        case "agent":
            return s.agent
        case _:
            return "*"


def counters_for(limits: Iterable[BudgetLimit], s: Subject, prefix: str, now: float) -> list[Counter]:
    out = []
    for b in limits:
        value = scope_value(b, s)
        if value is None:
            continue
        limit = math.floor(b.usd * NANO) if b.usd is not None else int(b.tokens or 0)
        key = f"{prefix}:b:{b.name}:{b.scope}:{value}:{window_id(b.window, s, now)}"
        out.append(Counter(b, key, limit, _WINDOW_TTL_S[b.window], b.unit))
    return out


# backends ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Reserved:
    """What a reserve call answered: ok, or the first counter without room (`blocked`, an index into
    the counters) and whether it is exhausted (no room even if every other reservation lapsed);
    `levels`: (spent, reserved) of each counter as the backend saw them."""

    ok: bool
    levels: list[tuple[int, int]]
    blocked: int | None = None
    exhausted: bool = False


class BudgetBackend(Protocol):
    """Where counters live. Every method is one atomic step."""

    async def reserve(
        self, rid: str, counters: list[Counter], amounts: list[int], ttl_s: float, now: float
    ) -> Reserved:
        """Reserve `amounts` on `counters`, all or nothing, once per `rid` (a repeat answers ok)."""
        ...

    async def settle(self, rid: str, counters: list[Counter], amounts: list[int], now: float) -> bool:
        """Drop `rid`'s reservations and add `amounts` as spent, once per `rid` (False: already settled)."""
        ...

    def settle_soon(
        self, rid: str, counters: list[Counter], amounts: list[int], now: float, *, quiet: bool = False
    ) -> None:
        """`settle` without waiting for it (it is applied before this process's next step on these
        counters); `quiet`: a failure is not logged (a release of a reserve that may not have been made)."""
        ...

    async def levels(self, counters: list[Counter], now: float) -> list[tuple[int, int]]:
        """(spent, reserved) of each counter (lapsed reservations not counted)."""
        ...

    def peek(self, counters: list[Counter], now: float) -> list[tuple[int, int] | None]:
        """The levels of each counter as far as known without a round trip (None: not known)."""
        ...

    async def raise_spent(self, counter: Counter, spent: int) -> None:
        """spent = max(spent, `spent`) (reconciliation: never counts a call twice)."""
        ...

    def end_interaction(self, counters: list[Counter]) -> None:
        """The interaction these counters (window `interaction`) belong to is over: what this process
        holds of them can go (no round trip)."""
        ...

    async def aclose(self) -> None: ...


class CounterPersistence(Protocol):
    """The store's budget counter table (`Store`): read row by row at start-up, key by key after an
    eviction, and written by `flush`."""

    def budget_counter_rows(self, now: float | None = None) -> Iterable[tuple[str, int, float]]: ...

    def load_budget_counters_for(self, keys: Sequence[str], now: float | None = None) -> dict[str, int]: ...

    def save_budget_counters(self, rows: list[tuple[str, int, float]]) -> int: ...


class CountersUnreadable(Exception):
    """A counter this process let go of (it holds at most SLOTS_KEPT) could not be read back from the
    store: the budget's `on_unavailable` decides whether the call goes ahead."""


@dataclass(slots=True)
class _Slot:
    spent: int = 0
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # rid -> (amount, lapses at)
    expires_at: float = 0.0
    dirty: bool = False
    kept: bool = True  # persisted (an interaction's own counter is not: it ends with the interaction)
    loaded: bool = True  # False: let go of and used again before it was read back: `spent` is what was
    # added since, and what the store holds is added to it when read (the next reserve, or flush)

    def reserved(self, now: float) -> int:
        if not self.holds:
            return 0
        lapsed = [r for r, (_, until) in self.holds.items() if until <= now]
        for r in lapsed:
            del self.holds[r]
        return sum(a for a, _ in self.holds.values())


class _Generation:
    __slots__ = ("bits", "count", "until")

    def __init__(self) -> None:
        self.bits = bytearray((EVICTED_FILTER_BITS + 7) // 8)
        self.count = 0
        self.until = 0.0  # when the last of its keys' windows is over: then it is dropped


class _EvictedKeys:
    """The keys of the counters let go of from memory: a Bloom filter per generation of
    EVICTED_PER_GENERATION keys (a new one when one is full), dropped once every key in it has had
    its window end. No false negatives: a key added is found until its generation is dropped, so a
    counter in the store is never taken for a new one. A false positive (at most ~0.1% per full
    generation, so <= ~1% while fewer than 10 generations, 10M evicted keys, are within their
    windows) costs one store read. In this process only: Python's `hash()` with double hashing."""

    __slots__ = ("_generations",)

    def __init__(self) -> None:
        self._generations: list[_Generation] = []

    @staticmethod
    def _hashes(key: str) -> tuple[int, int]:
        h = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        return h & 0xFFFF_FFFF, (h >> 32) | 1  # bit i of a key: (h1 + i * h2) % EVICTED_FILTER_BITS

    def add(self, key: str, until: float) -> None:
        gens = self._generations
        if not gens or gens[-1].count >= EVICTED_PER_GENERATION:
            gens.append(_Generation())
        g = gens[-1]
        bits = g.bits
        h1, h2 = self._hashes(key)
        for i in range(EVICTED_FILTER_HASHES):
            p = (h1 + i * h2) % EVICTED_FILTER_BITS
            bits[p >> 3] |= 1 << (p & 7)
        g.count += 1
        g.until = max(g.until, until)

    def may_contain(self, key: str, now: float) -> bool:
        if not self._generations:
            return False
        h1, h2 = self._hashes(key)
        for g in self._generations:
            if g.until <= now:
                continue
            bits = g.bits
            for i in range(EVICTED_FILTER_HASHES):  # a key never added stops at its first clear bit
                p = (h1 + i * h2) % EVICTED_FILTER_BITS
                if not bits[p >> 3] & (1 << (p & 7)):
                    break
            else:
                return True
        return False

    def drop_over(self, now: float) -> None:
        """Drop the generations whose keys' windows are all over."""
        self._generations = [g for g in self._generations if g.until > now]

    def __len__(self) -> int:
        return sum(g.count for g in self._generations)

    @property
    def nbytes(self) -> int:
        return sum(len(g.bits) for g in self._generations)


class MemoryBackend:
    """Counters in this process (one machine), persisted to the store: written by `flush` (the
    runtime's budget task calls it every few seconds, and on close). Thread-safe.

    At most SLOTS_KEPT counters are held (with a store: without one, nothing could be read back):
    past that, `flush` lets go of the least recently used ones that are written, hold nothing and
    are persisted, and remembers their keys (`_EvictedKeys`, a couple of bytes each). A counter used
    again is read back from the store (one query, off the event loop); one never let go of is new and
    starts at 0 without a read, so new sessions are counted while the store is down. Start-up loads
    the SLOTS_KEPT latest-to-expire counters and only the keys of the rest. An interaction's own
    counters (not persisted, so never let go of) are held apart until their window is over."""

    def __init__(self, persistence: CounterPersistence | None = None) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one flush at a time: it lets go of what it wrote
        self._slots: OrderedDict[str, _Slot] = OrderedDict()  # persisted ones, least recently used first
        # an interaction's own counters (not persisted, never let go of): held to their window's end
        self._fleeting: dict[str, _Slot] = {}
        # rid -> (reserved | settled, forget at), oldest first: forgetting pops from the front
        self._requests: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._persistence = persistence
        self._dirty: set[str] = set()  # keys of the persisted counters changed since the last flush
        self._evicted = _EvictedKeys()
        self._swept_at = time.monotonic()
        if persistence is not None:
            self._start_up(persistence)

    def _start_up(self, persistence: CounterPersistence) -> None:
        now = time.time()
        kept: list[tuple[str, int, float]] = []
        for key, spent, expires_at in persistence.budget_counter_rows(now):  # the latest to expire first
            if len(kept) < SLOTS_KEPT:
                kept.append((key, spent, expires_at))
            else:
                self._evicted.add(key, expires_at)
        for key, spent, expires_at in reversed(kept):  # the earliest to expire are let go of first
            self._slots[key] = _Slot(spent=spent, expires_at=expires_at)

    def _read(self, keys: list[str], now: float) -> dict[str, int]:
        """What the store holds for `keys` (blocking)."""
        persistence = self._persistence
        assert persistence is not None
        try:
            return persistence.load_budget_counters_for(keys, now)
        except Exception as e:
            reason = (str(e).strip().splitlines() or [""])[0]
            raise CountersUnreadable(
                f"budget counters this process let go of cannot be read back from the store "
                f"({type(e).__name__}: {reason})"
            ) from e

    def _unread(self, counters: list[Counter]) -> list[str]:
        """The keys of `counters` held again since they were let go of (maybe: `_slot` asks the
        filter) and not read back yet."""
        keys = []
        for c in counters:
            slot = self._slots.get(c.key)  # an interaction's own are never let go of: not there
            if slot is not None and not slot.loaded:
                keys.append(c.key)
        return keys

    async def _read_back(self, counters: list[Counter], now: float) -> None:
        """Read back the counters of `counters` this process let go of (off the event loop); raises
        CountersUnreadable when the store cannot be read."""
        if self._persistence is None:
            return
        with self._lock:
            keys = self._unread(counters)
        if not keys:
            return
        stored = await asyncio.to_thread(self._read, keys, now)
        with self._lock:
            for key in keys:
                self._merge(key, stored.get(key, 0))

    def _merge(self, key: str, stored: int) -> None:
        """Under the lock: the store's value of a counter read back, added to what it counted since
        it was held again (a counter not read back is never let go of, so it is still there)."""
        slot = self._slots.get(key)
        if slot is not None and not slot.loaded:
            slot.spent += stored
            slot.loaded = True

    def _table(self, c: Counter) -> dict[str, _Slot]:
        return self._slots if c.budget.window != "interaction" else self._fleeting

    def _slot(self, c: Counter, now: float) -> _Slot:
        kept = c.budget.window != "interaction"
        slots = self._slots if kept else self._fleeting
        slot = slots.get(c.key)
        if slot is None or (slot.expires_at <= now and not slot.holds):
            # maybe let go of: held again but not read back (`loaded` False) until `_read_back` (or
            # a flush) adds what the store holds to what it counts from 0 here
            maybe_stored = slot is None and kept and self._evicted.may_contain(c.key, now)
            slot = slots[c.key] = _Slot(kept=kept, loaded=not maybe_stored)
        if kept:
            self._slots.move_to_end(c.key)
        slot.expires_at = max(slot.expires_at, now + c.ttl_s)
        return slot

    def _slots_for(self, counters: list[Counter], now: float) -> list[_Slot] | None:
        """Under the lock: the slots of `counters`; None when one may have been let go of and is
        not read back yet (`_read_back` reads it, then this is asked again)."""
        slots = [self._slot(c, now) for c in counters]
        return slots if all(s.loaded for s in slots) else None

    async def reserve(
        self, rid: str, counters: list[Counter], amounts: list[int], ttl_s: float, now: float
    ) -> Reserved:
        while True:
            with self._lock:
                slots = self._slots_for(counters, now)
                if slots is not None:
                    return self._reserve(rid, counters, slots, amounts, ttl_s, now)
            await self._read_back(counters, now)

    def _reserve(
        self,
        rid: str,
        counters: list[Counter],
        slots: list[_Slot],
        amounts: list[int],
        ttl_s: float,
        now: float,
    ) -> Reserved:
        """Under the lock: `reserve` on the slots of `counters`."""
        levels = [(s.spent, s.reserved(now)) for s in slots]
        if rid in self._requests:
            return Reserved(True, levels)
        for i, (c, (spent, reserved), amount) in enumerate(zip(counters, levels, amounts, strict=True)):
            if spent + reserved + amount > c.limit:
                return Reserved(False, levels, i, spent + amount > c.limit)
        for s, amount in zip(slots, amounts, strict=True):
            s.holds[rid] = (amount, now + ttl_s)
        self._requests[rid] = ("reserved", now + REQUEST_TTL_S)
        self._forget(now)
        return Reserved(True, [(sp, r + a) for (sp, r), a in zip(levels, amounts, strict=True)])

    async def settle(self, rid: str, counters: list[Counter], amounts: list[int], now: float) -> bool:
        return self._settle(rid, counters, amounts, now)

    def settle_soon(
        self, rid: str, counters: list[Counter], amounts: list[int], now: float, *, quiet: bool = False
    ) -> None:
        self._settle(rid, counters, amounts, now)  # in this process: applied at once

    def _settle(self, rid: str, counters: list[Counter], amounts: list[int], now: float) -> bool:
        with self._lock:
            state = self._requests.get(rid)
            if state is not None and state[0] == "settled":
                return False
            for c, amount in zip(counters, amounts, strict=True):
                if not amount and c.key not in self._table(c):
                    continue  # a release of nothing held: no counter to make
                s = self._slot(c, now)
                s.holds.pop(rid, None)
                if amount:
                    s.spent += amount
                    s.dirty = True
                    if s.kept:
                        self._dirty.add(c.key)
            self._requests[rid] = ("settled", now + REQUEST_TTL_S)
            self._requests.move_to_end(rid)
            self._forget(now)
            return True

    async def levels(self, counters: list[Counter], now: float) -> list[tuple[int, int]]:
        while True:
            with self._lock:
                slots = self._slots_for(counters, now)
                if slots is not None:
                    return [(s.spent, s.reserved(now)) for s in slots]
            await self._read_back(counters, now)

    def peek(self, counters: list[Counter], now: float) -> list[tuple[int, int] | None]:
        """Exact for the counters held; a counter let go of (or maybe) is not known until read back;
        one never seen is at 0 (no counter is made for it: the reserve makes it)."""
        out: list[tuple[int, int] | None] = []
        with self._lock:
            for c in counters:
                table = self._table(c)
                s = table.get(c.key)
                if s is not None and (s.expires_at > now or s.holds):
                    if table is self._slots:
                        self._slots.move_to_end(c.key)
                    out.append((s.spent, s.reserved(now)) if s.loaded else None)
                elif s is None and c.budget.window != "interaction" and self._evicted.may_contain(c.key, now):
                    out.append(None)
                else:
                    out.append((0, 0))
        return out

    async def raise_spent(self, counter: Counter, spent: int) -> None:
        now = time.time()
        while True:
            with self._lock:
                slots = self._slots_for([counter], now)
                if slots is not None:
                    (s,) = slots
                    if spent > s.spent:
                        s.spent, s.dirty = spent, True
                        if s.kept:
                            self._dirty.add(counter.key)
                    return
            await self._read_back([counter], now)

    def end_interaction(self, counters: list[Counter]) -> None:
        """An interaction's own counters go when it ends (one that still holds a reservation, a call
        whose settle is late, stays until its window is over)."""
        now = time.time()
        with self._lock:
            for c in counters:
                s = self._fleeting.get(c.key)
                if s is not None:
                    s.reserved(now)  # drops the lapsed holds
                    if not s.holds:
                        del self._fleeting[c.key]

    def _forget(self, now: float) -> None:
        """Drop the request ids whose time is up, and the oldest beyond REQUESTS_KEPT: O(1) amortized
        (ids are kept in the order their time runs out)."""
        requests = self._requests
        while requests:
            _, until = next(iter(requests.values()))
            if until > now and len(requests) <= REQUESTS_KEPT:
                break
            requests.popitem(last=False)

    def flush(self) -> int:
        """Write changed counters to the store (blocking); returns how many. Then let go of the least
        recently used counters beyond SLOTS_KEPT that are written. Counters whose window is over are
        dropped from memory at most once every SWEEP_S (a pass over all of them; the changed ones
        are tracked as they change, so a flush costs what changed, not what is held)."""
        with self._flush_lock:
            return self._flush()

    def _flush(self) -> int:
        now = time.time()
        if time.monotonic() - self._swept_at >= SWEEP_S:
            self._swept_at = time.monotonic()
            with self._lock:
                for table in (self._slots, self._fleeting):
                    for key in [k for k, s in table.items() if s.expires_at <= now and not s.holds]:
                        del table[key]  # its window is over
                        self._dirty.discard(key)
                self._evicted.drop_over(now)
        if self._persistence is None:
            self._dirty.clear()
            return 0
        with self._lock:
            unread = [k for k in self._dirty if (s := self._slots.get(k)) is not None and not s.loaded]
        if unread:  # changed before they were read back: what the store holds is added first
            try:
                stored = self._read(unread, now)
            except CountersUnreadable:
                with self._lock:
                    self._dirty.update(unread)
                raise
            with self._lock:
                for k in unread:
                    self._merge(k, stored.get(k, 0))
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            rows = []
            for k in dirty:
                slot = self._slots.get(k)
                if slot is not None and slot.dirty and slot.kept:
                    if not slot.loaded:  # changed after the read above: the next flush writes it
                        self._dirty.add(k)
                        continue
                    rows.append((k, slot.spent, slot.expires_at))
                    slot.dirty = False
        written = 0
        if rows:
            try:
                written = self._persistence.save_budget_counters(rows)
            except Exception:
                with self._lock:  # written next time
                    for k, *_ in rows:
                        if k in self._slots:
                            self._slots[k].dirty = True
                            self._dirty.add(k)
                raise
        self._evict(now)
        return written

    def _evict(self, now: float) -> None:
        """Let go of the least recently used persisted counters beyond SLOTS_KEPT that are written (not
        dirty) and hold nothing, remembering their keys. Looks at no more than twice the excess
        (and a little): the others are moved to the back, looked at again after the rest."""
        with self._lock:
            slots = self._slots
            excess = len(slots) - SLOTS_KEPT
            if excess <= 0:
                return
            for _ in range(min(len(slots), 2 * excess + 64)):
                if len(slots) <= SLOTS_KEPT:
                    break
                key, slot = next(iter(slots.items()))
                if slot.dirty or not slot.loaded or slot.reserved(now):
                    slots.move_to_end(key)
                    continue
                del slots[key]
                if slot.expires_at > now:
                    self._evicted.add(key, slot.expires_at)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.flush)


# the budgets of one runtime ---------------------------------------------------------------------------
class Budgets:
    """The project's budgets and their counters; one per runtime (see `make_budgets`).

    Args:
        cfg: the `budgets:` section.
        backend: where the counters live.
        usage_source: what the store recorded for a counter's scope and window (for `reconcile`):
            `(budget, scope value, since) -> amount in units`; None: no reconciliation.
        admin_limits: budgets set through the admin API (`name -> limit`), read when refreshed.
    """

    def __init__(
        self,
        cfg: BudgetsConfig,
        backend: BudgetBackend,
        *,
        usage_source: Callable[[BudgetLimit, str, float], float | None] | None = None,
        admin_limits: Callable[[], Mapping[str, BudgetLimit]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.backend = backend
        self.prefix = "{" + cfg.key_prefix + "}"  # one Redis hash tag: every key on one node
        self._usage_source = usage_source
        self._admin_limits = admin_limits
        self._admin: dict[str, BudgetLimit] = {}
        self._admin_read_at = 0.0
        self._touched: dict[str, tuple[Counter, str]] = {}  # day / month counters, to reconcile
        self._loop_task: asyncio.Task[None] | None = None
        self.refresh_admin()

    # which budgets ---------------------------------------------------------------------------------
    def refresh_admin(self) -> None:
        """Read the budgets set through the admin API again (they override config ones by name)."""
        if self._admin_limits is None:
            return
        try:
            self._admin = dict(self._admin_limits())
        except Exception as e:  # the store is down: keep the last known ones
            log_event("budget_admin_limits_unread", level="warning", error=f"{type(e).__name__}: {e}"[:300])
        self._admin_read_at = time.monotonic()

    @property
    def limits(self) -> list[BudgetLimit]:
        """The config's budgets, with the admin API's (read by the background task) over them."""
        merged = {b.name: b for b in self.cfg.limits}
        merged.update(self._admin)
        return list(merged.values())

    def counters(self, s: Subject, now: float | None = None) -> list[Counter]:
        now = time.time() if now is None else now
        found = counters_for(self.limits, s, self.prefix, now)
        self._start()
        for c in found:
            if c.budget.window in ("day", "month") and c.key not in self._touched:
                value = scope_value(c.budget, s)
                assert value is not None
                self._touched[c.key] = (c, value)
        return found

    def for_interaction(self, s: Subject, refresh: Callable[[], Subject] | None = None) -> InteractionBudget:
        """The budgets of one interaction; `refresh` gives its subject again before each model call
        (features tagged meanwhile count from then on)."""
        return InteractionBudget(self, s, refresh)

    # background work: persistence, reconciliation ----------------------------------------------------
    def _start(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            with contextlib.suppress(RuntimeError):
                self._loop_task = asyncio.get_running_loop().create_task(self._background())

    async def _background(self) -> None:
        last_reconcile = time.monotonic()
        while True:
            await asyncio.sleep(2.0)
            try:
                if (
                    self._admin_limits is not None
                    and time.monotonic() - self._admin_read_at >= ADMIN_REFRESH_S
                ):
                    await asyncio.to_thread(self.refresh_admin)
                if isinstance(self.backend, MemoryBackend):
                    await asyncio.to_thread(self.backend.flush)
                if time.monotonic() - last_reconcile >= self.cfg.reconcile_interval_s:
                    last_reconcile = time.monotonic()
                    await self.reconcile()
            except Exception as e:  # next round tries again
                log_event("budget_background_failed", level="warning", error=f"{type(e).__name__}: {e}"[:300])

    async def reconcile(self, now: float | None = None) -> int:
        """Raise each day / month counter this process used since the last pass to what the store
        recorded for its scope and window (the larger value wins, so a reseeded counter never counts a
        call twice); at most RECONCILE_MAX counters a pass. Returns how many were raised or confirmed."""
        if self._usage_source is None:
            return 0
        now = time.time() if now is None else now
        done = 0
        touched, self._touched = self._touched, {}
        if len(touched) > RECONCILE_MAX:
            log_event(
                "budget_reconcile_truncated", level="warning", counters=len(touched), done=RECONCILE_MAX
            )
        for key, (c, value) in list(touched.items())[:RECONCILE_MAX]:
            since = window_start(c.budget.window, now)
            if since is None or not key.endswith(window_id(c.budget.window, _ANY, now)):
                continue  # its window is over
            recorded = await asyncio.to_thread(self._usage_source, c.budget, value, since)
            if recorded is None:
                continue
            units = math.ceil(recorded * NANO) if c.unit == "usd" else int(recorded)
            await self.backend.raise_spent(c, units)
            done += 1
        return done

    async def aclose(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(BaseException):
                await self._loop_task
        await self.backend.aclose()  # sends the settles still queued


_ANY = Subject("", "", "")  # window ids of day / month windows do not depend on the subject


def estimate_input_tokens(messages: list[Message], tools: list[dict[str, Any]] | None) -> int:
    """A prompt's tokens before the provider counts them: a quarter of its JSON characters plus a
    few per message (the settle uses the provider's count)."""
    chars = len(orjson.dumps(messages, default=str)) + (len(orjson.dumps(tools, default=str)) if tools else 0)
    return math.ceil(chars * TOKENS_PER_CHAR) + TOKENS_PER_MESSAGE * len(messages)


@dataclass(slots=True)
class Hold:
    """One model call's reservation: settle it to the real cost, or release it. Neither waits: the
    step is queued (`BudgetBackend.settle_soon`) and reaches the counters before this process's next
    step on them, so `ctx.budget` and the next call's reserve count it."""

    budget: InteractionBudget
    rid: str
    counters: list[Counter]
    input_tokens: int
    rates: PriceRates
    active: bool = True  # False: nothing was reserved (no counters, or fail_open while unreachable)
    done: bool = False
    held: list[int] = field(default_factory=list)  # what was reserved on each counter

    def _amounts(self, tokens: int, usd: float) -> list[int]:
        return [math.ceil(usd * NANO) if c.unit == "usd" else tokens for c in self.counters]

    def settle(self, usage: Usage, cost_usd: float) -> None:
        """The call answered: count what it really cost."""
        self._finish(usage.input_tokens + usage.output_tokens, cost_usd)

    def release(self, *, keep_input: bool = False) -> None:
        """The call failed (nothing spent), or was cancelled (`keep_input`: its prompt was sent and
        is paid for, at the estimate)."""
        if keep_input:
            self._finish(self.input_tokens, self.input_tokens * self.rates.input / MILLION)
        else:
            self._finish(0, 0.0)

    def _finish(self, tokens: int, usd: float) -> None:
        if self.done or not self.counters:
            return
        self.done = True
        amounts = self._amounts(tokens, usd)
        try:
            self.budget.budgets.backend.settle_soon(self.rid, self.counters, amounts, time.time())
        except Exception as e:  # its reservation lapses; reconciliation counts the spend
            log_event(
                "budget_settle_failed",
                level="warning",
                request_id=self.rid,
                error=f"{type(e).__name__}: {e}"[:300],
            )
            return
        self.budget.note_spent(self.counters, amounts, self.held or [0] * len(amounts))


class InteractionBudget:
    """The budgets of one interaction: checked up front (`check`), reserved around each model call
    (`reserve`), and what the agent sees as `ctx.budget` (`remaining`, `can_proceed`)."""

    def __init__(
        self, budgets: Budgets, subject: Subject, refresh: Callable[[], Subject] | None = None
    ) -> None:
        self.budgets = budgets
        self.subject = subject
        self._refresh = refresh
        self.exceeded: BudgetExceeded | None = None  # a budget stopped a call of this interaction
        self.unavailable: str | None = None
        self._seq = 0
        self._levels: dict[str, tuple[Counter, int, int]] = {}  # key -> (counter, spent, reserved)
        self._rates: PriceRates | None = None
        self._counted: tuple[Subject, int, list[Counter]] | None = None  # (subject, UTC day, its counters)
        self._own: dict[str, Counter] = {}  # the interaction's own counters (window `interaction`) used

    def _counters(self) -> list[Counter]:
        """The counters of this interaction's calls: worked out again when its subject (a feature
        tagged) or the UTC day changes."""
        now = time.time()
        day = int(now // 86_400)
        counted = self._counted
        if (
            counted is not None
            and counted[1] == day
            and (counted[0] is self.subject or counted[0] == self.subject)
        ):
            return counted[2]
        counters = self.budgets.counters(self.subject, now)
        self._counted = (self.subject, day, counters)
        for c in counters:
            if c.budget.window == "interaction":
                self._own[c.key] = c
        return counters

    def end(self) -> None:
        """The interaction is over: the backend may let go of its own counters (a budget with window
        `interaction` counts one interaction; kept until their window's end, each would stay a day)."""
        if self._own:
            self.budgets.backend.end_interaction(list(self._own.values()))
            self._own.clear()

    # what the agent sees -----------------------------------------------------------------------------
    @property
    def remaining(self) -> BudgetRemaining:
        """What is left of the tightest USD and token budget, as of the last model call or check."""
        usd: float | None = None
        tokens: int | None = None
        for c, spent, reserved in self._levels.values():
            left = max(c.limit - spent - reserved, 0)
            if c.unit == "usd":
                usd = left / NANO if usd is None else min(usd, left / NANO)
            else:
                tokens = left if tokens is None else min(tokens, left)
        return BudgetRemaining(usd, tokens)

    def can_proceed(self, estimate_tokens: int) -> bool:
        """Whether a call of about `estimate_tokens` (prompt + answer) fits what is left: tokens as
        they are, USD at the model's output price (the worst case)."""
        left = self.remaining
        if left.tokens is not None and estimate_tokens > left.tokens:
            return False
        if left.usd is not None:
            rates = self._rates
            price = max(rates.output, rates.reasoning or 0.0) if rates is not None else 0.0
            if estimate_tokens * price / MILLION > left.usd:
                return False
        return self.exceeded is None

    def note_spent(self, counters: list[Counter], amounts: list[int], held: list[int]) -> None:
        """A call of this interaction settled: `amounts` spent, its hold (`held`) no longer held."""
        for c, a, h in zip(counters, amounts, held, strict=True):
            _, spent, reserved = self._levels.get(c.key, (c, 0, 0))
            self._levels[c.key] = (c, spent + a, max(reserved - h, 0))

    def _note(self, counters: list[Counter], levels: list[tuple[int, int]]) -> None:
        for c, (spent, reserved) in zip(counters, levels, strict=True):
            self._levels[c.key] = (c, spent, reserved)

    # the pipeline's check -------------------------------------------------------------------------------
    def check(self) -> BudgetExceeded | None:
        """Before the agent runs, without a round trip: the first budget this process knows to be
        spent (None: none is, as far as it knows). The counters in Redis are read by the first model
        call's reserve, which refuses an exhausted budget at once; until then `ctx.budget` shows the
        levels this process last saw (a counter it has not seen yet: its whole limit)."""
        counters = self._counters()
        if not counters:
            return None
        refused = None
        for c, known in zip(counters, self.budgets.backend.peek(counters, time.time()), strict=True):
            spent, reserved = known or (0, 0)
            self._levels[c.key] = (c, spent, reserved)
            if refused is None and spent >= c.limit:
                refused = BudgetExceeded(
                    c.budget.name, c.budget.scope, c.to_units(spent), c.to_units(c.limit), c.unit
                )
        return refused

    def _unreachable(self, counters: list[Counter], e: Exception, during: str) -> None:
        closed = sorted({c.budget.name for c in counters if c.budget.on_unavailable == "fail_closed"})
        error = f"{type(e).__name__}: {e}"[:300]
        if closed:
            self.unavailable = error
            log_event(
                "budget_unavailable_refused",
                level="error",
                during=during,
                budgets=closed,
                interaction_id=self.subject.interaction_id,
                error=error,
            )
            raise BudgetUnavailable(
                f"the counters of budget(s) {', '.join(closed)} cannot be reached ({error}); they are "
                "fail_closed, so the call is refused (on_unavailable: fail_open lets calls through)"
            ) from e
        log_event(
            "budget_unavailable_allowed",
            level="warning",
            during=during,
            budgets=sorted({c.budget.name for c in counters}),
            interaction_id=self.subject.interaction_id,
            error=error,
        )

    # around each model call --------------------------------------------------------------------------------
    async def reserve(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None,
        options: ChatOptions,
        rates: PriceRates,
    ) -> Hold:
        """Reserve the worst case of the call about to be made, lowering `options["max_tokens"]` so
        it fits the per-call cap. Raises BudgetExceeded (no room) or BudgetUnavailable."""
        self._rates = rates
        budgets = self.budgets
        cfg = budgets.cfg
        if self._refresh is not None:
            self.subject = self._refresh()
        self._seq += 1
        rid = f"{self.subject.interaction_id}:{self._seq}"
        counters = self._counters()
        input_tokens = estimate_input_tokens(messages, tools)
        hold = Hold(self, rid, counters, input_tokens, rates)
        if not counters:
            hold.active = False
            return hold
        out_price = max(rates.output, rates.reasoning or 0.0)
        max_out = options.get("max_tokens")
        # the most output tokens the per-call cap (and the smallest budget) leaves room for, but not
        # fewer than min_output_tokens: below that the call's real worst case is reserved
        fit = []
        usd_limits = [c.limit / NANO for c in counters if c.unit == "usd"]
        if usd_limits and out_price > 0:
            cap_usd = cfg.max_reservation_usd or cfg.reservation_share * min(usd_limits)
            fit.append(math.floor((cap_usd * MILLION - input_tokens * rates.input) / out_price))
        token_limits = [c.limit for c in counters if c.unit == "tokens"]
        if token_limits:
            cap_tokens = cfg.max_reservation_tokens or math.floor(cfg.reservation_share * min(token_limits))
            fit.append(cap_tokens - input_tokens)
        if fit:
            cap = max(min(fit), cfg.min_output_tokens)
            if max_out is None or max_out > cap:
                options["max_tokens"] = max_out = cap
        out = int(max_out or 0)
        usd = (input_tokens * rates.input + out * out_price) / MILLION
        amounts = hold._amounts(input_tokens + out, usd)
        deadline = time.monotonic() + cfg.wait_s
        while True:
            now = time.time()
            try:
                got = await budgets.backend.reserve(rid, counters, amounts, cfg.reservation_ttl_s, now)
            except asyncio.CancelledError:
                # cancelled while the reserve was on its way (an agent timeout, a client hang-up): it
                # may have been applied, so release it (once per request id; queued after it)
                budgets.backend.settle_soon(rid, counters, [0] * len(counters), time.time(), quiet=True)
                raise
            except Exception as e:
                # a reserve that timed out may still have been applied: release it (settle nothing,
                # once per request id) when the counters answer again, rather than at its lapse
                budgets.backend.settle_soon(rid, counters, [0] * len(counters), time.time(), quiet=True)
                self._unreachable(counters, e, "reserve")
                hold.active = False
                hold.counters = []
                return hold
            self._note(counters, got.levels)
            if got.ok:
                hold.held = amounts
                return hold
            assert got.blocked is not None
            c = counters[got.blocked]
            if got.exhausted or time.monotonic() >= deadline:
                spent, _ = got.levels[got.blocked]
                self.exceeded = BudgetExceeded(
                    c.budget.name, c.budget.scope, c.to_units(spent), c.to_units(c.limit), c.unit
                )
                raise self.exceeded
            await asyncio.sleep(POLL_S)


# making them ------------------------------------------------------------------------------------------
_MEMORY: dict[str, MemoryBackend] = {}  # one per store per process: a config reload keeps the counters
_MEMORY_LOCK = threading.Lock()

LEDGER_SCOPES = {
    "session": "session",
    "user": "user",
    "api_key": "api_key",
    "feature": "feature",
    "agent": "agent",
}


def ledger_usage(store: Any) -> Callable[[BudgetLimit, str, float], float | None]:
    """What the store's cost ledger recorded for a budget's scope value since a time (for
    `Budgets.reconcile`): USD spent, or input + output tokens."""

    def usage(b: BudgetLimit, value: str, since: float) -> float | None:
        filters: dict[str, str] = {}
        if b.scope in LEDGER_SCOPES:
            filters[LEDGER_SCOPES[b.scope]] = value
        if b.agent is not None:
            filters["agent"] = b.agent
        rows = store.ledger_totals(None, since=since, filters=filters)
        if not rows:
            return 0.0
        row = rows[0]
        if b.unit == "usd":
            return float(row["spent_usd"])
        return float(row["input_tokens"] + row["output_tokens"])

    return usage


def _admin_limits(store: Any) -> Callable[[], dict[str, BudgetLimit]]:
    def read() -> dict[str, BudgetLimit]:
        out = {}
        for name, row in store.admin_budgets().items():
            try:
                out[name] = BudgetLimit.model_validate({**row["definition"], "name": name})
            except ValueError as e:  # written by an older Shipyard: say so, keep the others
                log_event("budget_admin_limit_invalid", level="warning", budget=name, error=str(e)[:300])
        return out

    return read


def make_budgets(cfg: BudgetsConfig, store: Any | None = None) -> Budgets:
    """The budgets of a project: counters in Redis (`backend: redis`) or in this process, persisted
    to `store` (`memory`); admin-set budgets and reconciliation read `store` when there is one."""
    backend: BudgetBackend
    prefix = "{" + cfg.key_prefix + "}"
    if cfg.backend == "redis":
        from shipyard.cost._budget_redis import RedisBackend, redis_url

        backend = RedisBackend(redis_url(cfg.redis_url), prefix, timeout_s=cfg.redis_timeout_s)
    else:
        ident = f"{getattr(store, 'url', '')}|{prefix}"
        with _MEMORY_LOCK:
            memory = _MEMORY.get(ident)
            if memory is None:
                memory = _MEMORY[ident] = MemoryBackend(store)
        backend = memory
    return Budgets(
        cfg,
        backend,
        usage_source=ledger_usage(store) if store is not None and hasattr(store, "ledger_totals") else None,
        admin_limits=_admin_limits(store) if store is not None else None,
    )
