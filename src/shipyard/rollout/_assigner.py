"""The runtime's assigner: which version serves a request, from deployments cached in memory.

`Runtime.assigner` is called on the hot path, so it does no I/O: deployments are re-read from the
store every `refresh_s` seconds (and at once when a change notice arrives on the Redis channel
`shipyard:rollout`, when Redis is configured), so replicas agree within seconds of a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from shipyard.observe import LoopSupervisor
from shipyard.rollout._deployment import Deployment, Strategy, assign, assignment_key
from shipyard.types import TrafficSource

if TYPE_CHECKING:
    from shipyard.runtime import Exchange, Runtime

CHANNEL = "shipyard:rollout"
REDIS_ENV = "SHIPYARD_REDIS_URL"  # where replicas publish and hear change notices
REFRESH_S = 2.0


def publish_change(redis_url: str | None, agent: str) -> None:
    """Tell every replica that `agent`'s deployment changed (no-op without Redis; never raises)."""
    if not redis_url:
        return
    import redis

    with contextlib.suppress(Exception):
        client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.publish(CHANNEL, agent)
        finally:
            client.close()


class RolloutAssigner:
    """Assigns each exchange a version from the cached deployments; install with `install(rt)`.

    Args:
        store: the Store deployments are read from.
        known_versions: the version ids an agent can run (default: none checked); a deployment
            naming a version this process cannot run falls back to the current version rather
            than failing requests. Asked once per agent, until `forget_versions()`.
        refresh_s: how often `run()` re-reads deployments.
        redis_url: listen on `shipyard:rollout` for change notices (optional).
    """

    def __init__(
        self,
        store: Any,
        *,
        known_versions: Callable[[str], Iterable[str]] | None = None,
        refresh_s: float = REFRESH_S,
        redis_url: str | None = None,
    ) -> None:
        self.store = store
        self.known_versions = known_versions
        self.refresh_s = refresh_s
        self.redis_url = redis_url
        self._deployments: dict[str, Deployment] = {}
        self._known: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()
        self._wake = asyncio.Event()

    @classmethod
    def for_runtime(cls, rt: Runtime, store: Any, **options: Any) -> RolloutAssigner:
        """An assigner that checks versions against `rt`'s configured ones, installed on `rt`."""
        assigner = cls(store, known_versions=lambda agent: (v.id for v in rt.versions(agent)), **options)
        assigner.refresh()
        rt.assigner = assigner
        return assigner

    def deployment(self, agent: str) -> Deployment | None:
        """The cached deployment of an agent."""
        return self._deployments.get(agent)

    def refresh(self) -> None:
        """Re-read every deployment (blocking: call it in a thread from async code)."""
        fresh = {row["agent"]: Deployment.from_row(row) for row in self.store.list_deployments()}
        with self._lock:
            self._deployments = fresh

    def forget_versions(self) -> None:
        """Ask `known_versions` again from now on: the versions this process can run changed (a
        config reload swapped the runtime). Without it, a version added after start would stay
        unknown here and its canary would get no traffic."""
        self._known = {}

    def _is_known(self, agent: str, version: str) -> bool:
        if self.known_versions is None:
            return True
        known = self._known.get(agent)
        if known is None:
            try:
                known = self._known[agent] = frozenset(self.known_versions(agent))
            except Exception:  # an agent that does not load: its requests fail elsewhere, clearly
                known = self._known[agent] = frozenset()
        return version in known

    def __call__(self, ex: Exchange) -> str | None:
        """The version for one exchange; tags canary traffic and experiment arms on it."""
        dep = self._deployments.get(ex.agent)
        if dep is None:
            return None
        key = assignment_key(ex.session_id if ex.session_supplied else None, ex.user_id)
        version = assign(dep, key)
        if version is None or not self._is_known(ex.agent, version):
            return None
        canary = dep.strategy is Strategy.CANARY and dep.active and version == dep.candidate_version
        if canary and ex.traffic_source == TrafficSource.PRODUCTION:
            ex.traffic_source = TrafficSource.CANARY
        if dep.strategy is Strategy.EXPERIMENT and dep.active:
            arms = dep.config.get("arms", {})
            ex.metadata["experiment"] = dep.config.get("experiment_id")
            ex.metadata["arm"] = "b" if version == arms.get("b") else "a"
        return version

    def notify(self) -> None:
        """Wake `run()` to refresh now (e.g. after this process changed a deployment)."""
        self._wake.set()

    async def run(self, *, loops: LoopSupervisor | None = None) -> None:
        """Refresh every `refresh_s` seconds, or at once on a notice; runs until cancelled. A failed
        refresh keeps the last known state and is reported to `loops` as loop `rollout_refresh`
        (logged with its traceback, counted, alerted when it keeps failing; default: logged)."""
        supervisor = loops or LoopSupervisor()
        listener = asyncio.get_running_loop().create_task(self._listen()) if self.redis_url else None
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.refresh_s)
                self._wake.clear()
                with supervisor.guard("rollout_refresh"):  # a failure keeps the last known state
                    await asyncio.to_thread(self.refresh)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        while True:
            try:
                client = aioredis.Redis.from_url(self.redis_url or "")
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis down: polling still converges; try again shortly
                await asyncio.sleep(self.refresh_s)
