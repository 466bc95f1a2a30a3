"""The in-process budget counters (`MemoryBackend`) hold at most SLOTS_KEPT counters: past that, the
least recently used written ones are let go of and read back from the store when used again, so a
long-running server's memory stays flat while an old session's spend is still enforced. A counter
never let go of is new: it needs no store read, so new sessions are counted while the store is down.
Real stores: a SQLite file and the local PostgreSQL."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from testdb import KINDS, newest_schema_database

from shipyard.config import BudgetLimit, BudgetsConfig, PriceRates
from shipyard.cost import BudgetExceeded, Budgets, BudgetUnavailable, MemoryBackend, Subject, _budgets
from shipyard.cost._budgets import Counter, counters_for
from shipyard.store import Store

KEPT = 20
LIMIT = 100  # tokens a session may spend
SPENT = 90  # what each session spends
PREFIX = "{" + BudgetsConfig().key_prefix + "}"  # as `Budgets` names its counters


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = Store(newest_schema_database(request.param, tmp_path), root=tmp_path)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def few_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_budgets, "SLOTS_KEPT", KEPT)


def _limit(policy: str = "fail_closed") -> BudgetLimit:
    return BudgetLimit(name="session", scope="session", window="session", tokens=LIMIT, on_unavailable=policy)


def _counters(n: int, limit: BudgetLimit | None = None) -> list[Counter]:
    return counters_for([limit or _limit()], Subject(f"i{n}", f"sess-{n}", "a"), PREFIX, time.time())


async def _spend(backend: MemoryBackend, sessions: range) -> None:
    """Each session spends SPENT, with a flush every 10 sessions (as the runtime's budget task does)."""
    for n in sessions:
        counters = _counters(n)
        assert (await backend.reserve(f"r{n}", counters, [SPENT], 60, time.time())).ok
        assert await backend.settle(f"r{n}", counters, [SPENT], time.time())
        if n % 10 == 9:
            backend.flush()
            assert len(backend._slots) <= KEPT


async def test_memory_holds_at_most_n_counters_and_an_evicted_sessions_spend_is_still_enforced(
    store: Store,
) -> None:
    backend = MemoryBackend(store)
    await _spend(backend, range(300))
    backend.flush()
    assert len(backend._slots) <= KEPT
    old = _counters(0)
    assert old[0].key not in backend._slots  # let go of long ago
    assert backend.peek(old, time.time()) == [None]  # not known without a read
    # read back from the store: its spend counts, so a call over what is left is refused
    got = await backend.reserve("over", old, [LIMIT - SPENT + 1], 60, time.time())
    assert not got.ok and got.exhausted and got.levels == [(SPENT, 0)]
    assert (await backend.reserve("fits", old, [LIMIT - SPENT], 60, time.time())).ok
    assert await backend.levels(old, time.time()) == [(SPENT, LIMIT - SPENT)]
    # a session never seen starts at 0
    assert await backend.levels(_counters(10_000), time.time()) == [(0, 0)]


async def test_a_settle_on_an_evicted_counter_adds_to_what_the_store_holds(store: Store) -> None:
    """A settle whose hold lapsed and whose counter was let go of meanwhile: counted from 0, and what
    the store holds is added when it is read back (by the next reserve, or the flush)."""
    backend = MemoryBackend(store)
    await _spend(backend, range(100))
    backend.flush()
    old = _counters(1)
    assert old[0].key not in backend._slots
    backend.settle_soon("late", old, [5], time.time())
    assert backend.peek(old, time.time()) == [None]
    assert backend.flush() == 1
    assert store.load_budget_counters_for([old[0].key]) == {old[0].key: SPENT + 5}
    assert await backend.levels(old, time.time()) == [(SPENT + 5, 0)]


async def test_a_restart_loads_at_most_n_counters_and_still_enforces_an_old_session(store: Store) -> None:
    first = MemoryBackend(store)
    await _spend(first, range(150))
    await first.aclose()
    assert len(list(store.budget_counter_rows())) == 150
    restarted = MemoryBackend(store)
    assert len(restarted._slots) == KEPT
    assert len(restarted._evicted) == 150 - KEPT
    for n in (0, 75, 149):  # the oldest, one in the middle, the newest
        got = await restarted.reserve(f"again{n}", _counters(n), [LIMIT - SPENT + 1], 60, time.time())
        assert not got.ok and got.levels[0][0] == SPENT


@contextlib.contextmanager
def _unreadable(store: Store) -> Iterator[None]:
    """The store's counter table cannot be read (as when the database is gone)."""
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE budget_counters RENAME TO budget_counters_away"))
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE budget_counters_away RENAME TO budget_counters"))


@pytest.mark.parametrize("policy", ["fail_closed", "fail_open"])
async def test_with_the_store_unreadable_an_evicted_session_follows_its_policy_and_new_ones_flow(
    store: Store, policy: str
) -> None:
    limit = _limit(policy)
    backend = MemoryBackend(store)
    await _spend(backend, range(100))
    backend.flush()
    # a call reserves at most 20 tokens: one fits a new session, none fits an old one
    cfg = BudgetsConfig(limits=[limit], wait_s=0, max_reservation_tokens=20, min_output_tokens=1)
    budgets = Budgets(cfg, backend)
    rates = PriceRates(input=1.0, output=1.0)
    messages = [{"role": "user", "content": "hi"}]
    try:
        with _unreadable(store):
            # a session never let go of: a new counter, no store read, the call goes ahead
            new = budgets.for_interaction(Subject("i-new", "sess-new", "a"))
            hold = await new.reserve(messages, None, {"max_tokens": 10}, rates)  # type: ignore[list-item]
            assert hold.active and hold.held
            # an evicted session: its spend cannot be read back
            old = budgets.for_interaction(Subject("i-old", "sess-3", "a"))
            if policy == "fail_closed":
                with pytest.raises(BudgetUnavailable, match="fail_closed"):
                    await old.reserve(messages, None, {"max_tokens": 10}, rates)  # type: ignore[list-item]
            else:
                allowed = await old.reserve(messages, None, {"max_tokens": 10}, rates)  # type: ignore[list-item]
                assert not allowed.active  # let through, nothing reserved
        # the store is back: the evicted session's spend is read back and enforced
        again = budgets.for_interaction(Subject("i-old2", "sess-3", "a"))
        with pytest.raises(BudgetExceeded):
            await again.reserve(messages, None, {"max_tokens": 10}, rates)  # type: ignore[list-item]
    finally:
        if budgets._loop_task is not None:
            budgets._loop_task.cancel()


def test_the_evicted_keys_filter_has_no_false_negatives_few_false_positives_and_ages_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sized as in production (14.4 bits a key, 10 bits set), scaled down to 10,000 keys a generation."""
    monkeypatch.setattr(_budgets, "EVICTED_PER_GENERATION", 10_000)
    monkeypatch.setattr(_budgets, "EVICTED_FILTER_BITS", 143_776)
    keys = _budgets._EvictedKeys()
    now = time.time()
    for n in range(25_000):  # three generations: the first two full
        keys.add(f"{PREFIX}:b:session:session:sess-{n}:s:sess-{n}", now + (100 if n < 10_000 else 1_000))
    assert len(keys) == 25_000 and keys.nbytes == 3 * ((143_776 + 7) // 8)
    assert all(
        keys.may_contain(f"{PREFIX}:b:session:session:sess-{n}:s:sess-{n}", now) for n in range(25_000)
    )
    false = sum(keys.may_contain(f"{PREFIX}:b:session:session:new-{n}:s:new-{n}", now) for n in range(20_000))
    assert false <= 0.01 * 20_000  # ~0.1% per full generation is expected
    # once every key of a generation has had its window end, it is no longer asked, then dropped
    aged = [f"{PREFIX}:b:session:session:sess-{n}:s:sess-{n}" for n in range(1_000)]
    assert sum(keys.may_contain(k, now + 101) for k in aged) <= 0.02 * len(
        aged
    )  # the others' false positives
    keys.drop_over(now + 101)
    assert len(keys) == 15_000
