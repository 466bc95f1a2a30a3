"""Why `shipyard serve` with Redis used to hang on stop and ignore SIGTERM: redis-py's asyncio client
can swallow a cancellation that arrives while it connects, so a listener task cancelled right after
start went on listening for ever, and the stop awaited it for ever. The listeners now stop however
the cancellation lands, and `stop_tasks` cancels again until every task has ended."""

from __future__ import annotations

import asyncio
from pathlib import Path

from throwaway import throwaway_redis

from shipyard.rollout import RolloutAssigner, raise_if_cancelling
from shipyard.server._state import stop_tasks

HANG_GUARD_S = 60.0  # only ends a test that would hang; far above any machine's speed


async def _ended(task: asyncio.Task[None]) -> bool:
    done, _ = await asyncio.wait({task}, timeout=HANG_GUARD_S)
    return task in done


def test_stop_tasks_ends_a_task_that_swallowed_its_cancellation() -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.set()  # as redis-py does mid-connect: the cancellation is lost
        await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(stubborn())
        await asyncio.sleep(0)
        await asyncio.wait_for(stop_tasks([task], recancel_s=0.05), HANG_GUARD_S)
        assert swallowed.is_set() and task.done()

    asyncio.run(main())


def test_raise_if_cancelling_raises_only_after_a_cancel_request() -> None:
    async def main() -> None:
        raise_if_cancelling()  # nothing asked: nothing raised
        outcome: list[str] = []

        async def loop() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass  # swallowed
            try:
                raise_if_cancelling()
            except asyncio.CancelledError:
                outcome.append("stopped")
                raise

        task = asyncio.get_running_loop().create_task(loop())
        await asyncio.sleep(0)
        task.cancel()
        assert await _ended(task)
        assert outcome == ["stopped"] and task.cancelled()

    asyncio.run(main())


def test_the_rollout_listener_stops_wherever_a_cancel_lands(tmp_path: Path) -> None:
    """Cancel the real listener at many points of its connect and subscribe, once each: it ends."""
    with throwaway_redis(tmp_path) as redis:

        async def main() -> None:
            assigner = RolloutAssigner(store=None, redis_url=redis.url)
            for step in range(40):
                task = asyncio.get_running_loop().create_task(assigner._listen())
                for _ in range(step):  # let it get this many loop turns into connecting
                    await asyncio.sleep(0)
                task.cancel()
                assert await _ended(task), f"the listener swallowed a cancel after {step} loop turns"

        asyncio.run(main())
