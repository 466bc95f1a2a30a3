"""Mirroring live traffic to a candidate (`shadow.mirror`): after a user has the answer, a sampled
share of an agent's production interactions is replayed against the candidate in the background,
as `traffic_source="shadow"`, tools answered as in any shadow replay (`ShadowTools`: nothing with
side effects runs). The request never waits for it: `offer` only schedules a task, skips when the
share, the concurrency bound or the day's spend cap (`shadow.max_cost_usd`, fail closed) says no."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from shipyard.config import ShadowConfig, ShadowMirrorConfig
from shipyard.loop._shadow_tools import ShadowTools
from shipyard.observe import log_event
from shipyard.store import InteractionRecord

if TYPE_CHECKING:
    from shipyard.runtime import Runtime

Lease = Callable[[], AbstractContextManager["Runtime"]]
Finish = Callable[[InteractionRecord], None]


def _day(t: float) -> int:
    return int(t // 86400)


class ShadowMirror:
    """The server's mirror of live traffic to candidates.

    Args:
        cfg: the `shadow:` section.
        lease: the runtime to replay on, held for the replay (the server's `reloader.lease`).
        finish: where a mirrored record goes (the server's record steps: journal, store).
        rng: the sampling dice (seeded in tests)."""

    def __init__(
        self, cfg: ShadowConfig, lease: Lease, finish: Finish, *, rng: random.Random | None = None
    ) -> None:
        self.cfg = cfg
        self._by_agent: dict[str, ShadowMirrorConfig] = {m.agent: m for m in cfg.mirror}
        self._lease = lease
        self._finish = finish
        self._rng = rng or random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        self._day = _day(time.time())
        self.spent_today = 0.0
        self.mirrored = 0
        self.skipped: dict[str, int] = {"busy": 0, "budget": 0}
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return bool(self._by_agent)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def offer(self, record: InteractionRecord) -> bool:
        """Maybe mirror `record` (as it happened); returns at once whether a replay was scheduled.
        Must be called on the event loop; never raises."""
        m = self._by_agent.get(record.agent)
        if m is None or record.traffic_source != "production":
            return False
        if self._rng.random() * 100 >= m.percent:
            return False
        now_day = _day(time.time())
        if now_day != self._day:
            self._day, self.spent_today = now_day, 0.0
        if self.spent_today >= self.cfg.max_cost_usd:
            self.skipped["budget"] += 1
            return False
        if len(self._tasks) >= m.max_concurrent:
            self.skipped["busy"] += 1
            return False
        try:
            task = asyncio.get_running_loop().create_task(self._replay(m, record))
        except RuntimeError:
            return False
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _replay(self, m: ShadowMirrorConfig, r: InteractionRecord) -> None:
        try:
            with self._lease() as rt:
                v = rt.resolve_version(r.agent, m.candidate)
                stubs = self.cfg.tool_stubs.get(r.agent, {})
                outcome = await rt.interact(
                    r.agent,
                    r.input,
                    session_id=r.session_id,
                    user_id=r.user_id,
                    version=v.id,
                    traffic_source="shadow",
                    metadata={"shadow": {"arm": "mirror", "of": r.id, "trace": r.trace_id}},
                    interceptor=ShadowTools(r.tool_calls, v.spec.tools, stubs),
                )
            self.spent_today += outcome.kept.cost_usd
            self.mirrored += 1
            self._finish(outcome.kept)
        except Exception as e:  # a mirror never fails anything but itself
            self.failed += 1
            log_event(
                "shadow_mirror_failed",
                level="warning",
                agent=r.agent,
                interaction_id=r.id,
                error=f"{type(e).__name__}: {e}"[:300],
            )

    async def drain(self) -> None:
        """Wait for the mirrored replays in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        return {
            "mirrored": self.mirrored,
            "in_flight": self.in_flight,
            "spent_today_usd": self.spent_today,
            "skipped": dict(self.skipped),
            "failed": self.failed,
        }
