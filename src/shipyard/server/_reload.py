"""Changing the config of a running server: on a file change, on SIGHUP, or `POST /admin/config/reload`.

A reload (`Reloader.reload`):

1. reads shipyard.yaml (`shipyard.config.load_config_file`); a YAML or schema error names the file,
   the field and the line;
2. keeps the running value of every setting only read at start (`RESTART_ONLY`: the address, the
   workers, the connection limits, the store, the flags wiring, OTLP, content capture, the alert
   loop), and reports each one the file changed under `needs_restart`, never half-applied;
3. builds a new Runtime for the new config and loads every agent's versions in a worker thread
   (imports of entry modules not imported yet, prompt bundles, model clients, system prompts, tool
   definitions), then runs their warm-ups. On any error the old config keeps serving and the result
   says why (file, field, line), in the log (`config_reload_failed`), in `GET /admin/config` and in
   `shipyard_config_reloads_total{outcome="failed"}`;
4. swaps on the event loop, with nothing awaited in between: `state.cfg`, `state.rt`, the load
   errors and the parts that hold config (`_apply`). A request keeps the runtime it started on
   (`lease`); the old runtime's model clients are closed once its last request has finished.

What a reload updates: agents and their versions, models (new clients; a changed breaker setting
gets a breaker of its own), each agent's guardrails and pipeline (built by the new runtime), gates
(the canary eval gate reads the current config), alert rules and webhooks (a rule that did not change
keeps its state), the KPI window's horizon, the trace sample rate, request limits, idempotency
settings, the project name, and `server.reload` itself. The flag file has its own watcher
(flags/_sync.py); `flags:` (where that file is) needs a restart.

Code is not reloaded. A version id names the code this process imported (runtime/_versions.py), and
re-importing a module in a running server is not safe in general: what the old module made (agents
and tools it registered, its module state, classes that `isinstance` compares with, a framework's
compiled graph) lives on beside the new one, and a module several agents import would change under
versions that never asked for it. So a reload imports only modules not imported yet (a new agent's
entry), and when the source of a loaded module changed on disk the result says so under
`code_changed` ("restart to load it").

Every replica converges: each one watches its own files (stat every `server.reload.interval_s`, then
a content hash when something changed, so a `touch` is not a reload). With Redis
(`SHIPYARD_REDIS_URL`), a reload through the admin endpoint also publishes a notice on
`shipyard:config`; every other replica of the project reloads at once, from its own file.

The fleet keeps one record of its config: at start and after each applied reload a replica records the
hash it serves in the store's config revisions (store/_config_revisions.py, compare-and-set, so
replicas recording at once lose none), and `GET /admin/config` of every replica shows the newest
revision under `fleet`, with whether this replica serves it (`serving`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.config import AlertRule, Lines, ShipyardConfig, line_of, load_config_file
from shipyard.errors import ConfigError, ShipyardError
from shipyard.observe import log_event
from shipyard.server._config_diff import (
    agent_error,
    changed_fields,
    config_error,
    error_text,
    keep_running_settings,
)
from shipyard.server._config_watch import code_changes, digest, file_sha256, stamps, watched_paths
from shipyard.server._http import endpoint, error_response, json_response

if TYPE_CHECKING:
    from shipyard.runtime import Runtime
    from shipyard.server._state import ServerState

NOTICE_CHANNEL = "shipyard:config"  # a reload through the admin API tells the other replicas here
REDIS_RETRY_S = 2.0
INVALID_REMINDER_S = 300.0  # while the file on disk stays invalid, say so again this often


def kpi_horizon(rules: Sequence[AlertRule]) -> float:
    """How long the KPI window keeps samples: a day, or twice the longest alert window."""
    return max([86400.0, *(r.window_s * 2 for r in rules)])


# results --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class ReloadResult:
    """What one reload did. `outcome`: applied (a new config serves) | unchanged (nothing to swap) |
    failed (the previous config still serves; `error` says why)."""

    trigger: str  # file | signal | api | notice | start
    outcome: str
    at: float
    duration_ms: float = 0.0
    config_hash: str | None = None  # sha256 of the shipyard.yaml read (None: it could not be read)
    changes: dict[str, Any] = field(default_factory=dict)
    needs_restart: list[dict[str, Any]] = field(default_factory=list)
    code_changed: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Refused(Exception):
    """A reload that cannot be applied; `error` is what the result reports."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


# the reloader --------------------------------------------------------------------------------------
class Reloader:
    """A server's config reloads: the watcher, SIGHUP, Redis notices, and the runtime swap.

    Args:
        state: the server's parts; `state.cfg` and `state.rt` are what a reload replaces.
    """

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.instance = uuid.uuid4().hex[:12]  # tells this replica's notices from the others'
        self.loaded_at = time.time()
        self.config_hash: str | None = None
        self.last: ReloadResult | None = None
        self.needs_restart: list[dict[str, Any]] = []
        self.fleet: dict[str, Any] | None = None  # the fleet's newest config revision (store)
        self.code_changed: list[dict[str, Any]] = []
        self.redis_url: str | None = None
        self.subscribed = False
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._pending: str | None = None
        self.looks = 0  # how many times the watcher looked at the files
        self._paths: list[Path] = []
        self._stamps: tuple[Any, ...] | None = None
        self._digest: str | None = None
        self._invalid_since: float | None = None
        self._reminded_at = 0.0
        self._inflight: dict[int, int] = {}  # id(runtime) -> requests running on it
        self._retired: dict[int, Runtime] = {}  # swapped out, closed when their last request ends
        self._closing: set[asyncio.Task[None]] = set()
        self._signal: tuple[asyncio.AbstractEventLoop, Any] | None = None
        r = state.metrics.registry
        self.reloads = Counter(
            "shipyard_config_reloads",
            "Config reloads by trigger (file, signal, api, notice) and outcome (applied, unchanged, failed).",
            ["trigger", "outcome"],
            registry=r,
        )
        self.file_valid = Gauge(
            "shipyard_config_file_valid",
            "1 while the config on disk loads; 0 while it is invalid and the previous config serves.",
            registry=r,
            multiprocess_mode="livemin",  # --workers N: 0 when any live worker's file is invalid
        )
        self.restart_pending = Gauge(
            "shipyard_config_restart_pending",
            "Changes on disk that only a restart applies: settings read at start, agent code.",
            registry=r,
            multiprocess_mode="livemax",  # --workers N: the most any live worker waits for
        )
        self.loaded_gauge = Gauge(
            "shipyard_config_loaded_timestamp_seconds",
            "When the running config was loaded.",
            registry=r,
            multiprocess_mode="livemin",  # --workers N: the oldest config a live worker runs
        )
        self.file_valid.set(1)

    # lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> list[asyncio.Task[None]]:
        """Look at the files, listen for SIGHUP and Redis notices; returns the background tasks."""
        from shipyard.rollout import REDIS_ENV

        cfg = self.state.cfg
        self.loaded_at = time.time()
        self.loaded_gauge.set(self.loaded_at)
        self._paths, self._stamps, self._digest = await asyncio.to_thread(self._look)
        self.config_hash = await asyncio.to_thread(file_sha256, cfg.path)
        await self._note_revision("start")
        if cfg.path is not None and await asyncio.to_thread(self._differs_on_disk, cfg):
            self.request("file")  # the file changed between its load and now
        self._install_signal()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self.run())]
        self.redis_url = os.environ.get(REDIS_ENV) or None
        if self.redis_url:
            tasks.append(loop.create_task(self._listen(self.redis_url)))
        return tasks

    def _look(self) -> tuple[list[Path], tuple[Any, ...], str]:
        """The files the running config depends on, and how they look now (blocking)."""
        st = self.state
        paths = watched_paths(st.cfg, st.rt, skip=set(st.load_errors))
        return paths, stamps(st.cfg, paths), digest(st.cfg, paths)

    @staticmethod
    def _differs_on_disk(cfg: ShipyardConfig) -> bool:
        try:
            on_disk = load_config_file(cfg.path).config  # type: ignore[arg-type]
        except ShipyardError:
            return True  # the reload reports it
        return on_disk.model_dump(mode="json") != cfg.model_dump(mode="json")

    async def aclose(self) -> None:
        """Stop listening for SIGHUP and close every runtime swapped out (the server is stopping)."""
        self._remove_signal()
        for rt in list(self._retired.values()):
            self._retired.pop(id(rt), None)
            await self._close(rt)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def request(self, trigger: str) -> None:
        """Ask the watcher task to reload now (thread-unsafe: call on the event loop)."""
        self._pending = self._pending or trigger
        self._wake.set()

    # SIGHUP ---------------------------------------------------------------------------------------
    def _install_signal(self) -> None:
        """SIGHUP reloads. uvicorn handles SIGINT and SIGTERM itself (graceful shutdown); SIGHUP is
        left to us. Only the main thread can take signals (not a server run in a thread)."""
        if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGHUP)
        try:
            loop.add_signal_handler(signal.SIGHUP, self.request, "signal")
        except (ValueError, RuntimeError, NotImplementedError):
            return
        self._signal = (loop, previous)

    def _remove_signal(self) -> None:
        if self._signal is None:
            return
        loop, previous = self._signal
        self._signal = None
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGHUP)
            if previous is not None:
                signal.signal(signal.SIGHUP, previous)

    # the watcher ----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Reload when asked (SIGHUP, a notice) or when a watched file's content changed; until
        cancelled. Each pass reports to the server's loop supervisor as `config_watch` (a failure is
        logged with its traceback, counted, alerted when it keeps failing) and the next pass goes on."""
        while True:
            settings = self.state.cfg.server.reload
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), settings.interval_s)
            self._wake.clear()
            trigger, self._pending = self._pending, None
            with self.state.loops.guard("config_watch"):
                if trigger is not None:
                    await self.reload(trigger)
                elif settings.watch and self.state.cfg.path is not None:
                    await self._poll()

    async def _poll(self) -> None:
        cfg, paths = self.state.cfg, self._paths
        now = await asyncio.to_thread(stamps, cfg, paths)
        self.looks += 1
        if now == self._stamps:
            self._remind_invalid()
            return
        self._stamps = now
        content = await asyncio.to_thread(digest, cfg, paths)
        if content != self._digest:
            await self.reload("file")

    def _remind_invalid(self) -> None:
        if self._invalid_since is None or time.time() - self._reminded_at < INVALID_REMINDER_S:
            return
        self._reminded_at = time.time()
        error = (self.last.error if self.last else None) or {}
        log_event(
            "config_file_invalid",
            level="warning",
            since=self._invalid_since,
            file=error.get("file"),
            line=error.get("line"),
            error=error.get("message"),
        )

    # the reload -----------------------------------------------------------------------------------
    async def reload(self, trigger: str) -> ReloadResult:
        """Read the config again and swap it in when all of it loads; see the module docstring."""
        async with self._lock:
            t0 = time.perf_counter()
            result = ReloadResult(trigger=trigger, outcome="failed", at=time.time())
            try:
                await self._reload(result)
            except _Refused as e:
                result.outcome, result.error = "failed", e.error
            except Exception as e:  # a bug, not the user's config: still keep serving the old one
                result.outcome = "failed"
                result.error = {"message": f"the reload broke down: {type(e).__name__}: {e}"[:1000]}
                log_event("config_reload_crashed", level="error", traceback=traceback.format_exc())
            result.duration_ms = (time.perf_counter() - t0) * 1000
            self._record(result)
            if result.outcome == "applied":
                await self._note_revision(result.trigger, result.changes)
            return result

    async def _note_revision(self, trigger: str, changes: dict[str, Any] | None = None) -> None:
        """Record the config this replica now serves in the fleet's config revisions (a store that
        cannot take it is logged: the config still serves)."""
        store = self.state.store
        if self.config_hash is None or not hasattr(store, "record_config_revision"):
            return
        by = f"{socket.gethostname()}/{os.getpid()}/{self.instance}"
        try:
            self.fleet = await asyncio.to_thread(
                store.record_config_revision,
                self.state.cfg.project,
                self.config_hash,
                by=by,
                trigger=trigger,
                changes=changes,
            )
        except Exception as e:
            log_event("config_revision_unrecorded", level="warning", error=f"{type(e).__name__}: {e}"[:300])

    async def refresh_fleet(self) -> None:
        """Read the fleet's newest config revision (for `GET /admin/config`); keeps the last one
        known when the store cannot answer."""
        store = self.state.store
        if not hasattr(store, "config_revision"):
            return
        with contextlib.suppress(Exception):
            self.fleet = await asyncio.to_thread(store.config_revision, self.state.cfg.project)

    async def _reload(self, result: ReloadResult) -> None:
        st = self.state
        path = st.cfg.path
        if path is None:
            raise _Refused(
                {"message": "this server's config was not loaded from a file; restart it to change it"}
            )
        paths = self._paths
        seen_stamps, seen_digest = await asyncio.to_thread(
            lambda: (stamps(st.cfg, paths), digest(st.cfg, paths))
        )
        self._stamps, self._digest = seen_stamps, seen_digest  # what this reload judged
        try:
            loaded = await asyncio.to_thread(load_config_file, path)
        except ConfigError as e:
            result.config_hash = await asyncio.to_thread(file_sha256, path)
            raise _Refused(config_error(e)) from None
        result.config_hash = loaded.sha256
        cfg, result.needs_restart = keep_running_settings(st.cfg, loaded.config)
        rt = await asyncio.to_thread(self._build, cfg, loaded.lines)
        try:
            result.code_changed = await asyncio.to_thread(code_changes, rt)
            result.changes = self._changes(cfg, rt)
            unchanged = not result.changes and not st.load_errors
            for agent in [] if unchanged else cfg.agents:
                failed = await rt.warm_up(agent)
                if failed:
                    version, error = next(iter(failed.items()))
                    raise _Refused(
                        {
                            "message": f"agent {agent!r}: the warm-up of {version} failed: {error}",
                            "file": str(path),
                            "field": f"agents.{agent}",
                            "line": line_of(("agents", agent), loaded.lines),
                            "agent": agent,
                        }
                    )
        except BaseException:
            await rt.aclose()
            raise
        if unchanged:
            result.outcome = "unchanged"
            await rt.aclose()
        else:
            result.outcome = "applied"
            serving = await self._serving(cfg, rt)
            self._swap(cfg, rt, serving)
        self.config_hash = loaded.sha256
        self._paths, self._stamps, self._digest = await asyncio.to_thread(self._look)
        if await asyncio.to_thread(file_sha256, path) != loaded.sha256:
            self.request("file")  # written again while this reload ran

    def _build(self, cfg: ShipyardConfig, lines: Lines) -> Runtime:
        """A runtime for `cfg` with every version loaded and what each needs built (blocking)."""
        from shipyard.runtime import Runtime

        try:
            rt = Runtime(cfg, store=self.state.store)
        except ConfigError as e:
            raise _Refused(config_error(e)) from None
        except Exception as e:
            raise _Refused({"message": error_text(e), "file": str(cfg.path)}) from None
        old = self.state.rt
        if old is not None:  # per-process parts that outlive a config
            rt.sampler, rt.flags, rt.assigner = old.sampler, old.flags, old.assigner
        for agent in cfg.agents:
            index: int | None = None
            try:
                for v in rt.versions(agent):
                    index = 0 if index is None else index + 1  # which version, if one fails below
                    rt.client_for(v)
                    rt.system_prompt(v)
                    rt.tool_definitions(v)
            except Exception as e:
                raise _Refused(agent_error(cfg, lines, agent, index, e)) from None
        return rt

    def _changes(self, cfg: ShipyardConfig, rt: Runtime) -> dict[str, Any]:
        """What the new config changes: fields, agents, versions (empty: nothing to swap)."""
        st = self.state
        out: dict[str, Any] = {}
        fields = changed_fields(st.cfg, cfg)
        if fields:
            out["fields"] = fields
        before = set(st.cfg.agents)
        after = set(cfg.agents)
        if before != after:
            out["agents"] = {"added": sorted(after - before), "removed": sorted(before - after)}
        versions: dict[str, Any] = {}
        for agent in sorted(before | after):
            old = (
                [v.id for v in st.rt.versions(agent)]
                if agent in before and agent not in st.load_errors
                else []
            )
            new = [v.id for v in rt.versions(agent)] if agent in after else []
            if old != new:
                versions[agent] = {
                    "added": [v for v in new if v not in old],
                    "removed": [v for v in old if v not in new],
                    "current": new[0] if new else None,
                }
        if versions:
            out["versions"] = versions
        return out

    async def _serving(self, cfg: ShipyardConfig, rt: Runtime) -> dict[str, Any] | None:
        """Whether the new current versions may serve on their own (rollout/_serving.py), read
        before the swap so it brings them along: a new version id is subject to the same gate rule
        as at start. None when the store cannot say now (they are refused until the next refresh)."""
        from shipyard.server._rollout_api import _PARTS, warn_ungated

        parts = _PARTS.get(self.state)
        if parts is None:
            return None
        assigner = parts.assigner
        try:
            serving = await asyncio.to_thread(
                assigner.read_serving, lambda agent: [v.id for v in rt.versions(agent)], list(cfg.agents)
            )
        except Exception as e:
            log_event("version_gates_unreadable", level="warning", error=error_text(e))
            return None
        before = {a: g.version for a, g in assigner.gates().items()}
        for agent, gate in serving.items():
            if not gate.gated and before.get(agent) != gate.version:
                warn_ungated(gate)
        for agent in cfg.agents:
            _warn_deployed_gone(assigner.deployment(agent), {v.id for v in rt.versions(agent)})
        return serving

    def _swap(self, cfg: ShipyardConfig, rt: Runtime, serving: dict[str, Any] | None = None) -> None:
        """Put `cfg` and `rt` in place, with every part that holds config. Nothing is awaited here,
        so no request sees half of it. `serving`: the gates of the new current versions."""
        st = self.state
        old = st.rt
        st.cfg, st.rt, st.load_errors = cfg, rt, {}
        _apply(st, cfg, serving)
        if old is not None and old is not rt:
            if self._inflight.get(id(old)):
                self._retired[id(old)] = old
            else:
                self._close_later(old)
        self.loaded_at = time.time()
        self.loaded_gauge.set(self.loaded_at)

    def _record(self, result: ReloadResult) -> None:
        """Keep the result, count it, log it."""
        self.last = result
        self.reloads.labels(result.trigger, result.outcome).inc()
        if result.outcome == "failed":
            self.file_valid.set(0)
            if self._invalid_since is None:
                self._invalid_since = result.at
            self._reminded_at = time.time()
            error = result.error or {}
            log_event(
                "config_reload_failed",
                level="error",
                trigger=result.trigger,
                pid=os.getpid(),
                file=error.get("file"),
                line=error.get("line"),
                field=error.get("field"),
                error=error.get("message"),
                problems=error.get("problems"),
            )
            return
        self.file_valid.set(1)
        self._invalid_since = None
        self.needs_restart, self.code_changed = result.needs_restart, result.code_changed
        self.restart_pending.set(len(result.needs_restart) + len(result.code_changed))
        waiting = bool(result.needs_restart or result.code_changed)
        log_event(
            "config_reloaded" if result.outcome == "applied" else "config_unchanged",
            level="warning" if waiting else "info",
            trigger=result.trigger,
            pid=os.getpid(),
            config_hash=result.config_hash,
            changes=result.changes,
            needs_restart=[p["field"] for p in result.needs_restart],
            code_changed=[c["module"] for c in result.code_changed],
            duration_ms=round(result.duration_ms, 1),
        )

    # runtimes in use ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lease(self) -> Iterator[Runtime]:
        """The current runtime, held for one request: a reload swaps in another for new requests,
        and closes this one once no request runs on it."""
        rt = self.state.rt
        key = id(rt)
        self._inflight[key] = self._inflight.get(key, 0) + 1
        try:
            yield rt
        finally:
            left = self._inflight[key] - 1
            if left:
                self._inflight[key] = left
            else:
                del self._inflight[key]
                retired = self._retired.pop(key, None)
                if retired is not None:
                    self._close_later(retired)

    def _close_later(self, rt: Runtime) -> None:
        task = asyncio.get_running_loop().create_task(self._close(rt))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, rt: Runtime) -> None:
        try:
            await rt.aclose()
        except Exception as e:
            log_event("runtime_close_failed", level="warning", error=f"{type(e).__name__}: {e}"[:300])

    # replicas ------------------------------------------------------------------------------------
    async def publish_notice(self) -> int | None:
        """Tell the other replicas to reload (Redis); how many listeners heard it, None without Redis."""
        if not self.redis_url:
            return None
        notice = json.dumps({"project": self.state.cfg.project, "origin": self.instance})

        def publish() -> int:
            import redis

            client = redis.Redis.from_url(self.redis_url or "", socket_timeout=2, socket_connect_timeout=2)
            try:
                return int(client.publish(NOTICE_CHANNEL, notice))
            finally:
                client.close()

        try:
            return await asyncio.to_thread(publish)
        except Exception as e:  # the other replicas still see their own files change
            log_event("config_notice_failed", level="warning", error=f"{type(e).__name__}: {e}"[:300])
            return None

    async def _listen(self, url: str) -> None:
        import redis.asyncio as aioredis

        from shipyard.rollout import raise_if_cancelling

        loops = self.state.loops
        while True:
            try:
                async with aioredis.Redis.from_url(url) as client, client.pubsub() as pubsub:
                    await pubsub.subscribe(NOTICE_CHANNEL)
                    self.subscribed = True
                    loops.succeeded("config_notice_listener")
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        raise_if_cancelling()  # redis-py may swallow a cancel that came mid-connect
                        if message is not None and self._for_me(message.get("data")):
                            self.request("notice")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis down: each replica still watches its own files
                self.subscribed = False
                loops.failed("config_notice_listener", e)
                await asyncio.sleep(REDIS_RETRY_S)

    def _for_me(self, data: Any) -> bool:
        try:
            notice = json.loads(data)
        except (TypeError, ValueError):
            return False
        return (
            isinstance(notice, dict)
            and notice.get("project") == self.state.cfg.project
            and notice.get("origin") != self.instance
        )

    # GET /admin/config ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The loaded config and the last reload."""
        cfg = self.state.cfg
        return {
            "path": str(cfg.path) if cfg.path else None,
            "hash": self.config_hash,
            "loaded_at": self.loaded_at,
            "file_valid": self._invalid_since is None,
            "watch": {
                "enabled": cfg.server.reload.watch and cfg.path is not None,
                "interval_s": cfg.server.reload.interval_s,
                "looks": self.looks,
                "files": [str(p) for p in self._paths],
            },
            "notices": {
                "redis": bool(self.redis_url),
                "subscribed": self.subscribed,
                "channel": NOTICE_CHANNEL,
            },
            "needs_restart": self.needs_restart,
            "code_changed": self.code_changed,
            "draining_runtimes": len(self._retired) + len(self._closing),
            "last_reload": self.last.to_dict() if self.last else None,
            "fleet": None
            if self.fleet is None
            else {
                "revision": self.fleet["revision"],
                "config_hash": self.fleet["config_hash"],
                "recorded_at": self.fleet["recorded_at"],
                "recorded_by": self.fleet["recorded_by"],
                "trigger": self.fleet["trigger"],
                "serving": self.fleet["config_hash"] == self.config_hash,
            },
        }


def _warn_deployed_gone(dep: Any, known: set[str]) -> None:
    """One warning line when the new config no longer has a version the agent's deployment serves
    (an edited prompt bundle, model or rules file makes every version it touches a new id): this
    replica then serves what `RolloutAssigner` falls back to, or refuses (503)."""
    if dep is None:
        return
    gone = {
        role: version
        for role, version in (("stable", dep.stable_version), ("candidate", dep.candidate_version))
        if version and version not in known
    }
    if gone:
        log_event(
            "deployed_version_removed",
            level="warning",
            agent=dep.agent,
            **gone,
            message=(
                f"the reloaded config no longer has {', '.join(f'{v} ({r})' for r, v in gone.items())}, which "
                f"the deployment of {dep.agent!r} serves: this replica serves the stable version if it still "
                "has it, else its current version if that passed its production gate, else answers 503; "
                "gate and deploy a version of the new config (or restore the files)"
            ),
        )


def _apply(st: ServerState, cfg: ShipyardConfig, serving: dict[str, Any] | None = None) -> None:
    """The parts of a running server that hold config beside the runtime, set from `cfg`."""
    from shipyard.server._idempotency import _KEEPERS
    from shipyard.server._rollout_api import _PARTS

    rules = cfg.alerts.effective_rules()
    st.window.horizon_s = kpi_horizon(rules)
    st.alerts.replace_rules(rules)
    st.alerts.webhooks = list(cfg.alerts.webhooks)
    st.alerts.files = [cfg.resolve(f) for f in cfg.alerts.files]
    st.alerts.project = cfg.project
    if st.rt.sampler is not None:
        st.rt.sampler.set_rate(cfg.server.trace_sample_rate)
    keeper = _KEEPERS.get(st)
    if keeper is not None:
        keeper.ttl_s, keeper.wait_s = cfg.server.idempotency.ttl_s, cfg.server.idempotency.wait_s
    parts = _PARTS.get(st)
    if parts is not None:
        # versions added by this config take their rollouts' traffic; its current versions' gates
        parts.assigner.forget_versions(serving)


# the admin API -------------------------------------------------------------------------------------
@endpoint("admin")
async def admin_config_reload(request: Request, state: ServerState) -> Response:
    """POST /admin/config/reload: reload now; the other replicas are told (Redis)."""
    result = await state.reload("api")
    notified = await state.reloader.publish_notice()
    body = {"reload": result.to_dict(), "replicas_notified": notified}
    if result.outcome == "failed":
        error = result.error or {}
        return error_response(
            422,
            f"the config was not reloaded; the previous one still serves: {error.get('message')}",
            type="config_error",
            param=error.get("field"),
            extra=body,
        )
    return json_response(body)


@endpoint("read")
async def admin_config(request: Request, state: ServerState) -> Response:
    """GET /admin/config: the loaded config's path, hash and load time, the last reload, and the
    fleet's newest config revision."""
    await state.reloader.refresh_fleet()
    return json_response(state.reloader.status())


def config_routes() -> list[Route]:
    return [
        Route("/admin/config", admin_config, methods=["GET"]),
        Route("/admin/config/reload", admin_config_reload, methods=["POST"]),
    ]


def config_openapi_paths() -> dict[str, Any]:
    """The OpenAPI paths of `config_routes()`."""
    obj: dict[str, Any] = {"type": "object"}
    ok = {"description": "OK", "content": {"application/json": {"schema": obj}}}
    auth = {"401": {"description": "missing or unknown API key"}, "403": {"description": "role too low"}}
    return {
        "/admin/config": {
            "get": {
                "summary": "The loaded config: path, hash, load time, watched files, pending restarts, last reload",
                "security": [{"apiKey": []}],
                "responses": {"200": ok, **auth},
            }
        },
        "/admin/config/reload": {
            "post": {
                "summary": "Reload the config now (validated fully first; the previous one keeps serving on "
                "any error); other replicas are told through Redis",
                "security": [{"apiKey": []}],
                "responses": {
                    "200": ok,
                    **auth,
                    "422": {
                        "description": "the config on disk does not load (file, field, line); nothing changed",
                        "content": {"application/json": {"schema": obj}},
                    },
                },
            }
        },
    }
