"""The in-process budget counters (`MemoryBackend`) write to the store only what changed since the last
flush, so a flush costs what changed, not every counter held (one per session on a busy server)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from shipyard.config import BudgetLimit
from shipyard.cost import MemoryBackend, Subject
from shipyard.cost._budgets import counters_for


class Persistence:
    def __init__(self) -> None:
        self.saved: list[list[tuple[str, int, float]]] = []

    def budget_counter_rows(self, now: float | None = None) -> list[tuple[str, int, float]]:
        return []

    def load_budget_counters_for(self, keys: Sequence[str], now: float | None = None) -> dict[str, int]:
        return {}

    def save_budget_counters(self, rows: list[tuple[str, int, float]]) -> int:
        self.saved.append(sorted(rows))
        return len(rows)


async def test_a_flush_writes_the_counters_that_changed_since_the_last_one() -> None:
    limits = [
        BudgetLimit(name="session", scope="session", window="session", usd=1.0),
        BudgetLimit(name="per-call", scope="global", window="interaction", usd=1.0),  # never persisted
    ]
    persistence = Persistence()
    backend = MemoryBackend(persistence)
    now = time.time()
    sessions = [counters_for(limits, Subject(f"i{n}", f"s{n}", "a"), "{p}", now) for n in range(50)]
    for n, counters in enumerate(sessions):
        assert (await backend.reserve(f"r{n}", counters, [10, 10], 60, now)).ok
        assert await backend.settle(f"r{n}", counters, [7, 7], now)
    assert backend.flush() == 50
    assert [k for k, _, _ in persistence.saved[-1]] == sorted(c[0].key for c in sessions)
    assert all(spent == 7 for _, spent, _ in persistence.saved[-1])
    assert backend.flush() == 0  # nothing changed since
    await backend.settle("again", sessions[3], [5, 5], now)
    assert backend.flush() == 1
    assert persistence.saved[-1] == [(sessions[3][0].key, 12, persistence.saved[-1][0][2])]
    await backend.raise_spent(sessions[4][0], 100)  # reconciliation raised a counter
    await backend.raise_spent(sessions[5][0], 1)  # lower than it is: nothing changes
    assert backend.flush() == 1 and persistence.saved[-1][0][:2] == (sessions[4][0].key, 100)


async def test_a_failed_write_is_tried_again_on_the_next_flush() -> None:
    class Failing(Persistence):
        fail = True

        def save_budget_counters(self, rows: list[tuple[str, int, float]]) -> int:
            if self.fail:
                self.fail = False
                raise OSError("the store is down")
            return super().save_budget_counters(rows)

    persistence = Failing()
    backend = MemoryBackend(persistence)
    counters = counters_for(
        [BudgetLimit(name="day", scope="user", window="day", usd=1.0)],
        Subject("i", "s", "a", user_id="u"),
        "{p}",
        time.time(),
    )
    await backend.settle("r", counters, [3], time.time())
    with pytest.raises(OSError):
        backend.flush()
    assert backend.flush() == 1 and persistence.saved[-1][0][:2] == (counters[0].key, 3)


async def test_request_ids_are_remembered_boundedly_and_recent_retries_stay_idempotent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long-running server does not keep a day of request ids (the soak's memory growth and its
    per-reservation scan): past REQUESTS_KEPT the oldest go, and ids whose time is up go first."""
    from shipyard.cost import _budgets

    monkeypatch.setattr(_budgets, "REQUESTS_KEPT", 100)
    limits = [BudgetLimit(name="user", scope="user", window="day", usd=1000.0)]
    backend = MemoryBackend()
    now = time.time()
    counters = counters_for(limits, Subject("i", "s", "a", user_id="u"), "{p}", now)
    for n in range(1_000):
        assert (await backend.reserve(f"r{n}", counters, [10], 60, now)).ok
        assert await backend.settle(f"r{n}", counters, [10], now)
    assert len(backend._requests) == 100
    assert (await backend.levels(counters, now))[0] == (10_000, 0)
    # a retried settle of a recent request is recognised and counts once
    assert not await backend.settle("r999", counters, [10], now)
    assert (await backend.levels(counters, now))[0] == (10_000, 0)
    # ids whose day is over go even below the cap
    later = now + _budgets.REQUEST_TTL_S + 1
    assert (await backend.reserve("late", counters, [10], 60, later)).ok
    assert list(backend._requests) == ["late"]
