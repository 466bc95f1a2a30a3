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

from shipyard.errors import ShipyardError
from shipyard.observe import LoopSupervisor
from shipyard.rollout._deployment import (
    UNIT_KEY,
    Deployment,
    Strategy,
    assign,
    assignment_key,
    assignment_unit,
)
from shipyard.types import TrafficSource

if TYPE_CHECKING:
    from shipyard.rollout._serving import ServingGate
    from shipyard.runtime import Exchange, Runtime


class VersionUnavailable(ShipyardError):
    """A replica cannot run the deployed version, and has no gated version to serve instead."""


CHANNEL = "shipyard:rollout"
REDIS_ENV = "SHIPYARD_REDIS_URL"  # where replicas publish and hear change notices
REFRESH_S = 2.0


def raise_if_cancelling() -> None:
    """Raise CancelledError when this task was asked to stop. redis-py's asyncio client can swallow a
    cancellation that arrives while it connects; a listener loop calls this after each await of it, so
    it still stops (else a server's shutdown would wait on it for ever)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


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
        known_versions: the version ids an agent can run, the current one first (default: none
            checked). A deployment naming a version this process cannot run serves its stable
            version instead, else this process's current version if that passed its production
            gate (read from the store at each refresh); else the request is refused
            (`VersionUnavailable`, a 503), since no version reaches production traffic ungated.
            Asked once per agent, until `forget_versions()`.
        refresh_s: how often `run()` re-reads deployments.
        redis_url: listen on `shipyard:rollout` for change notices (optional).
        agents: the agents this process serves (with `known_versions`): production traffic of an
            agent no deployment chooses a version for gets its current version only when that may
            serve on its own (`rollout/_serving.py`, read at each refresh); else `VersionUnavailable`.
            Default: not checked (the current version serves).
        require_gate: `server.require_gate` as applied (True: required; False: not; None: latched
            per agent by the store, see `gate_required`).
    """

    def __init__(
        self,
        store: Any,
        *,
        known_versions: Callable[[str], Iterable[str]] | None = None,
        refresh_s: float = REFRESH_S,
        redis_url: str | None = None,
        agents: Callable[[], Iterable[str]] | None = None,
        require_gate: bool | None = None,
    ) -> None:
        self.store = store
        self.known_versions = known_versions
        self.agents = agents
        self.require_gate = require_gate
        self.refresh_s = refresh_s
        self.redis_url = redis_url
        self._deployments: dict[str, Deployment] = {}
        self._known: dict[str, frozenset[str]] = {}
        self._current: dict[str, str | None] = {}  # agent -> this process's current version
        # agent -> whether its current version may serve on its own (read at each refresh)
        self._serving: dict[str, ServingGate] = {}
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
        """Re-read every deployment, and whether this process's current version of each agent may
        serve on its own (blocking: call it in a thread from async code)."""
        fresh = {row["agent"]: Deployment.from_row(row) for row in self.store.list_deployments()}
        serving = self.read_serving(deployed=set(fresh)) if self.known_versions is not None else {}
        with self._lock:
            self._deployments = fresh
            self._serving = serving

    def read_serving(
        self,
        versions_of: Callable[[str], Iterable[str]] | None = None,
        agents: Iterable[str] | None = None,
        *,
        deployed: set[str] | None = None,
    ) -> dict[str, ServingGate]:
        """Whether each agent's current version may serve on its own (`serving_gate`), blocking: of
        the agents served (and the deployed ones), or of `agents` with `versions_of` (a runtime a
        config reload is about to swap in, so the swap brings its versions' gates with it)."""
        from shipyard.rollout._serving import serving_gate

        if deployed is None:
            deployed = {row["agent"] for row in self.store.list_deployments()}
        if agents is None:
            agents = set(self.agents() if self.agents is not None else ()) | deployed
        out: dict[str, ServingGate] = {}
        for agent in sorted(agents):
            listed = _listed(versions_of or self.known_versions or (lambda _: ()), agent)
            if listed:
                out[agent] = serving_gate(
                    self.store, agent, listed[0], self.require_gate, deployed=agent in deployed
                )
        return out

    def serving(self, agent: str) -> ServingGate | None:
        """What the last refresh read of `agent`'s current version (None: not read)."""
        return self._serving.get(agent)

    def gates(self) -> dict[str, ServingGate]:
        """What the last refresh read of each agent's current version."""
        return dict(self._serving)

    def forget_versions(self, serving: dict[str, ServingGate] | None = None) -> None:
        """Ask `known_versions` again from now on: the versions this process can run changed (a
        config reload swapped the runtime). Without it, a version added after start would stay
        unknown here and its canary would get no traffic. `serving`: the gates of the new current
        versions (`read_serving`); without it they are read at the next refresh (woken now), and
        an ungated-looking current version is refused until then."""
        self._known = {}
        self._current = {}
        if serving is not None:
            self._serving = serving
        self._wake.set()

    def _versions_of(self, agent: str) -> list[str]:
        assert self.known_versions is not None
        return _listed(self.known_versions, agent)

    def _current_of(self, agent: str) -> str | None:
        if agent not in self._current:
            self._current[agent] = next(iter(self._versions_of(agent)), None)
        return self._current[agent]

    def _is_known(self, agent: str, version: str) -> bool:
        if self.known_versions is None:
            return True
        known = self._known.get(agent)
        if known is None:
            known = self._known[agent] = frozenset(self._versions_of(agent))
        return version in known

    def __call__(self, ex: Exchange) -> str | None:
        """The version for one exchange; tags canary traffic, and experiment arms with the unit
        they were assigned by (`assignment_unit`), on it."""
        dep = self._deployments.get(ex.agent)
        if dep is None:
            return self._own(ex)
        session = ex.session_id if ex.session_supplied else None
        key = assignment_key(session, ex.user_id)
        version = assign(dep, key)
        if version is None:
            return self._own(ex)
        if not self._is_known(ex.agent, version):
            return self._fallback(dep, version)
        canary = dep.strategy is Strategy.CANARY and dep.active and version == dep.candidate_version
        if canary and ex.traffic_source == TrafficSource.PRODUCTION:
            ex.traffic_source = TrafficSource.CANARY
        if dep.strategy is Strategy.EXPERIMENT and dep.active:
            arms = dep.config.get("arms", {})
            ex.metadata["experiment"] = dep.config.get("experiment_id")
            ex.metadata["arm"] = "b" if version == arms.get("b") else "a"
            ex.metadata[UNIT_KEY] = assignment_unit(session, ex.user_id)  # the experiment's unit
        return version

    def _own(self, ex: Exchange) -> str | None:
        """No deployment chooses a version: the current one (None), when it may serve on its own
        (see `rollout/_serving.py`). Traffic other than production (eval, shadow, replay) runs."""
        if self.agents is None or self.known_versions is None:
            return None
        if ex.traffic_source != TrafficSource.PRODUCTION:
            return None
        gate = self._serving.get(ex.agent)
        current = self._current_of(ex.agent)
        if gate is not None and gate.version == current:
            if gate.serves:
                return None
            raise VersionUnavailable(gate.refusal())
        if self.require_gate is False or current is None:
            return None
        raise VersionUnavailable(
            f"whether {current} passed its production gate has not been read yet (this server may "
            "require a passed gate for production traffic); retry in a few seconds"
        )

    def _fallback(self, dep: Deployment, version: str) -> str | None:
        """What this process serves when it cannot run the version the deployment chose: the stable
        version, else its own current version if that passed its production gate (or an admin
        overrode it); else refuse."""
        stable = dep.stable_version
        if stable and stable != version and self._is_known(dep.agent, stable):
            return stable
        gate = self._serving.get(dep.agent)
        if gate is not None and gate.gated and gate.version == self._current_of(dep.agent):
            return gate.version
        raise VersionUnavailable(
            f"this replica cannot run {version}, the version the deployment of {dep.agent!r} serves, and "
            "its own current version has not passed its production gate",
            hint="deploy the same project to every replica, or gate and `shipyard deploy` this one's version",
        )

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
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        raise_if_cancelling()  # redis-py may swallow a cancel that came mid-connect
                        if message is not None:
                            self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis down: polling still converges; try again shortly
                await asyncio.sleep(self.refresh_s)


def _listed(versions_of: Callable[[str], Iterable[str]], agent: str) -> list[str]:
    try:
        return list(versions_of(agent))
    except Exception:  # an agent that does not load: its requests fail elsewhere, clearly
        return []
